"""Checks the model cards in model_cards/: metadata that huggingface_hub reads, the sections, the citations, and the
```python blocks (they compile; every pipeline task and Auto class they use is registered by this repository).

The blocks are compiled, not run: the HSA-Net block loads the checkpoint that `make demo` writes.
"""

import ast
import importlib
import pathlib
import re

import pytest
from huggingface_hub import ModelCard
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.auto.feature_extraction_auto import FEATURE_EXTRACTOR_MAPPING
from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING
from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
from transformers.models.auto.video_processing_auto import VIDEO_PROCESSOR_MAPPING
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils.import_utils import DummyObject

import modeling_hsanet
import modeling_sweet

ROOT = pathlib.Path(__file__).resolve().parents[1]
CARDS_DIR = ROOT / "model_cards"
PYPROJECT_LICENSE = re.search(r'^license\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)

# pipeline_tag must be a Hub task (huggingface.js packages/tasks/src/pipelines.ts); this repository's own pipeline
# tasks are not Hub tasks, so they go in `tags`.
CARDS = {
    "hsanet.md": dict(
        license=PYPROJECT_LICENSE.lower(),  # the package's license (SPDX "Apache-2.0" -> Hub id "apache-2.0")
        pipeline_tag="graph-ml",
        tags={"hsanet", "molecular-property-prediction", "molecular-feature-extraction"},
        tasks={"molecular-property-prediction", "molecular-feature-extraction"},
        package="modeling_hsanet",
        config_class=modeling_hsanet.HSANetConfig,
        arxiv="2508.08334",
    ),
    "sweet_tokenizer.md": dict(
        license=PYPROJECT_LICENSE.lower(),  # our own code, under the package license (the authors' code is MIT)
        pipeline_tag=None,
        tags={"sweet-tokenizer", "image-tokenization", "video-tokenization"},
        tasks={"image-tokenization", "video-tokenization"},
        package="modeling_sweet",
        config_class=modeling_sweet.SweetTokenizerConfig,
        arxiv="2412.10443",
    ),
}
SECTIONS = ("Model description", "Intended uses & limitations", "How to use", "Training data and procedure",
            "Evaluation", "Citation")
# Mappings that say which configs an Auto class knows (model Auto classes carry their own `_model_mapping`).
AUTO_MAPPINGS = {
    "AutoProcessor": PROCESSOR_MAPPING,
    "AutoFeatureExtractor": FEATURE_EXTRACTOR_MAPPING,
    "AutoImageProcessor": IMAGE_PROCESSOR_MAPPING,
    "AutoVideoProcessor": VIDEO_PROCESSOR_MAPPING,
}


def _text(name: str) -> str:
    return (CARDS_DIR / name).read_text()


def _python_blocks(name: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", _text(name), flags=re.DOTALL)


def _section(name: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", _text(name), flags=re.M | re.DOTALL)
    assert match, f"{name}: no '## {title}' section"
    return match.group(1)


def _imports(tree: ast.AST) -> dict[str, str]:
    """Name bound by `from module import name` -> module."""
    return {alias.asname or alias.name: node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            for alias in node.names}


def _imported_modules(tree: ast.AST) -> set[str]:
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return {module.split(".")[0] for module in modules if module}


def _pipeline_tasks(tree: ast.AST) -> set[str]:
    tasks = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "pipeline":
            task = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "task"), None)
            assert isinstance(task, ast.Constant), f"pipeline() without a literal task: {ast.unparse(node)}"
            tasks.add(task.value)
    return tasks


def _auto_class_knows(auto_name: str, auto_class, config_class) -> bool:
    if auto_name == "AutoConfig":
        return CONFIG_MAPPING[config_class.model_type] is config_class
    mapping = getattr(auto_class, "_model_mapping", None) or AUTO_MAPPINGS[auto_name]
    return config_class in mapping


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_metadata(name):
    expected = CARDS[name]
    card = ModelCard.load(CARDS_DIR / name)
    data = card.data
    assert data.license == expected["license"]
    assert data.library_name == "transformers"
    assert data.pipeline_tag == expected["pipeline_tag"]
    assert data.pipeline_tag not in expected["tasks"]
    assert expected["tags"] <= set(data.tags or ())
    assert "---" not in card.text.split("\n", 1)[0]  # front matter parsed off the body
    assert ModelCard(str(card)).data.to_dict() == data.to_dict()  # round-trips


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_sections(name):
    for title in SECTIONS:
        assert _section(name, title).strip(), f"{name}: section '{title}' is empty"
    citation = _section(name, "Citation")
    assert "```bibtex" in citation and CARDS[name]["arxiv"] in citation


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_python_blocks_compile_and_use_registered_names(name):
    expected = CARDS[name]
    blocks = _python_blocks(name)
    assert blocks, f"{name} has no ```python block"
    tasks = set()
    for index, code in enumerate(blocks):
        tree = compile(code, f"{name} block {index}", "exec", flags=ast.PyCF_ONLY_AST)
        compile(tree, f"{name} block {index}", "exec")
        assert expected["package"] in _imported_modules(tree), f"{name} block {index} does not import the package"
        imports = _imports(tree)
        for auto_name in sorted(set(re.findall(r"\bAuto[A-Za-z]+\b", code))):
            module = imports.get(auto_name)
            assert module and module.startswith("transformers"), f"{auto_name} is not imported from transformers"
            auto_class = getattr(importlib.import_module(module), auto_name)
            # a placeholder for a missing backend (e.g. `from transformers import AutoVideoProcessor` without
            # torchvision) imports fine but fails when called
            assert not isinstance(auto_class, DummyObject), f"{module}.{auto_name} is a placeholder here"
            assert _auto_class_knows(auto_name, auto_class, expected["config_class"]), (
                f"{auto_name} has no {expected['config_class'].__name__} registered")
        tasks |= _pipeline_tasks(tree)
    assert tasks == expected["tasks"]
    assert tasks <= set(PIPELINE_REGISTRY.get_supported_tasks())


def _hsanet_rows(text: str) -> dict[str, tuple[str, str]]:
    """Rows of a markdown table: model name -> (first two numbers after it), bold marks removed."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip().strip("*").strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 3 and re.fullmatch(r"-?\d+\.\d+", cells[1]):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_hsanet_card_numbers_match_the_readme_make_demo_columns():
    card_rows = _hsanet_rows(_section("hsanet.md", "Evaluation"))
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### HSA-Net property prediction ("):readme.index("### SweetTokenizer (")]
    readme_rows = _hsanet_rows(section)
    assert len(card_rows) >= 6
    assert card_rows == {model: readme_rows[model] for model in card_rows}


def test_sweet_card_points_to_readme_instead_of_copying_numbers():
    evaluation = _section("sweet_tokenizer.md", "Evaluation")
    assert "README" in evaluation and "make demo" in evaluation
    assert "|" not in evaluation and not re.search(r"\d+\.\d+", evaluation)
