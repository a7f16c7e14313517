"""The shared model-test harness (tests/common.py) on SweetTokenizerModel: a batch of images and a batch of clips."""

import re

import pytest
from transformers import AutoModel

from modeling_sweet import SweetTokenizerConfig, SweetTokenizerModel
from tests.common import ModelTesterMixin
from tests.model_testers import SWEET_TINY, SweetTokenizerModelTester


class TestSweetTokenizerModelHarness(SweetTokenizerModelTester, ModelTesterMixin):
    expected_slices = {
        "reconstruction": [0.1669198, 0.02019836, 0.03664966, 0.04672109, 0.006581338, -0.1010811, -0.2146607,
                           -0.1926463],
        "reconstruction_videos": [0.2710586, -0.1455286, -0.07452901, 0.1284284, 0.1243735, 0.08663478, -0.03999577,
                                  -0.1517292],
    }
    hidden_states_names = ("encoder_hidden_states", "decoder_hidden_states", "video_encoder_hidden_states",
                           "video_decoder_hidden_states")
    attentions_names = ("encoder_attentions", "decoder_attentions", "cross_attentions", "video_encoder_attentions",
                        "video_decoder_attentions", "video_cross_attentions")


def test_truncated_checkpoint_raises_an_error_naming_the_file(tmp_path):
    SweetTokenizerModel(SweetTokenizerConfig(**SWEET_TINY)).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(OSError, match=f"^{re.escape(str(weights))} could not be read by safetensors"):
        AutoModel.from_pretrained(tmp_path)
