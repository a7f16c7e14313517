"""`make quality`: every block marked `# Copied from <module>.<name>` must equal its original.

Each model folder is self-contained (a Hub folder carries only its own code), so a helper both models need is
copied, marked the transformers way, and checked here so that the copies cannot drift apart.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = re.compile(r"^\s*# Copied from ([\w.]+)")


def _definitions(path: Path) -> dict[str, ast.AST]:
    """Qualified name -> function / class node, for the module at `path`."""
    found = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found[prefix + child.name] = child
                visit(child, prefix + child.name + ".")

    visit(ast.parse(path.read_text()), "")
    return found


def _body(path: Path, node: ast.AST) -> str:
    """The definition's source from its `def`/`class` line (decorators excluded), dedented."""
    lines = path.read_text().splitlines()[node.lineno - 1 : node.end_lineno]
    indent = len(lines[0]) - len(lines[0].lstrip())
    return "\n".join(line[indent:] for line in lines)


def check(root: Path = ROOT) -> list[str]:
    problems = []
    for path in sorted(root.glob("modeling_*/*.py")):
        lines = path.read_text().splitlines()
        definitions = {node.lineno: node for node in _definitions(path).values()}
        for number, line in enumerate(lines, start=1):
            match = MARK.match(line)
            if not match:
                continue
            copy = next((definitions[n] for n in sorted(definitions) if n > number), None)
            module, _, name = match.group(1).partition(".")
            module_path = root / module / (name.split(".")[0] + ".py")
            qualified = ".".join(name.split(".")[1:])
            original = _definitions(module_path).get(qualified) if module_path.exists() else None
            where = f"{path.relative_to(root)}:{number}"
            if copy is None or original is None:
                problems.append(f"{where}: cannot find the copy or its original {match.group(1)}")
            elif _body(path, copy) != _body(module_path, original):
                problems.append(f"{where}: differs from {match.group(1)}")
    return problems


if __name__ == "__main__":
    problems = check()
    print("\n".join(problems) if problems else "copies are up to date")
    sys.exit(1 if problems else 0)
