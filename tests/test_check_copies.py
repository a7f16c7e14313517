"""utils/check_copies.py (run by `make quality`): marked copies across the model folders equal their originals."""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "utils"))
import check_copies  # noqa: E402


def test_the_copies_in_the_repository_are_up_to_date():
    assert check_copies.check() == []
    marked = [p for p in ROOT.glob("modeling_*/*.py") if "# Copied from" in p.read_text()]
    assert marked, "no marked copy found: the checker would check nothing"


def test_a_copy_that_drifted_is_reported(tmp_path):
    for folder in ("modeling_hsanet", "modeling_sweet"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    sweet = tmp_path / "modeling_sweet" / "modeling_sweet.py"
    text = sweet.read_text()
    assert "save or download it again" in text
    sweet.write_text(text.replace("save or download it again", "download it again", 1))
    problems = check_copies.check(tmp_path)
    assert len(problems) == 1 and "differs from modeling_hsanet.modeling_hsanet.HSANetPreTrainedModel" in problems[0]
