"""Loading a damaged checkpoint fails with a specific error that names the file.

Replaces `test_modeling_hsanet.py::test_corrupted_checkpoint_raises`, which accepted any `Exception`.
"""

import re

import pytest
from safetensors import SafetensorError
from transformers import AutoModel

from modeling_hsanet import HSANetModel


def truncate_weights(folder, cut: str) -> None:
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    # "header": inside the 8-byte length + JSON header; "tensor data": the tail (an interrupted download or copy)
    weights.write_bytes(data[:100] if cut == "header" else data[:-100])


@pytest.mark.parametrize(
    "cut, message",
    [("header", "invalid header length"), ("tensor data", "incomplete metadata, file not fully covered")],
)
def test_truncated_checkpoint_raises_an_error_naming_the_file(tmp_path, tiny_config, cut, message):
    HSANetModel(tiny_config()).save_pretrained(tmp_path)
    truncate_weights(tmp_path, cut)
    path = re.escape(str(tmp_path / "model.safetensors"))
    with pytest.raises(OSError, match=f"^{path} could not be read by safetensors .*{message}.*truncated") as error:
        AutoModel.from_pretrained(tmp_path)
    assert isinstance(error.value.__cause__, SafetensorError)  # safetensors' own error stays attached
