"""benchmarks/gpu_check.py runs on the CPU (its smoke mode), so the script a GPU session relies on cannot rot."""

import sys
from pathlib import Path

import pytest

from tests.model_testers import TESTERS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_check  # noqa: E402


@pytest.mark.parametrize("tester", TESTERS, ids=lambda tester: tester.model_class.__name__)
def test_gpu_check_dtype_rows_pass_on_cpu(tester):
    rows = gpu_check.check_dtypes(tester(), "cpu")
    assert [check for check, _, _ in rows] == ["fp32 equals CPU", "bf16 autocast forward",
                                               "model.to(bfloat16) forward", "bf16 autocast training step"]
    assert [(check, detail) for check, ok, detail in rows if not ok] == []


def test_gpu_check_refuses_cuda_without_a_gpu(monkeypatch):
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sys, "argv", ["gpu_check.py"])
    assert gpu_check.main() == 2
