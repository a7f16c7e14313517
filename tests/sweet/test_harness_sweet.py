"""The shared model-test harness (tests/common.py) on SweetTokenizerModel: a batch of images and a batch of clips."""

import pytest
import torch
from transformers import AutoModel

from modeling_sweet import SweetTokenizerConfig, SweetTokenizerModel
from tests.common import ModelTesterMixin
from tests.sweet.conftest import TINY


class TestSweetTokenizerModelHarness(ModelTesterMixin):
    model_class = SweetTokenizerModel
    auto_class = AutoModel
    output_name = "reconstruction"
    expected_slice = [0.1669198, 0.02019836, 0.03664966, 0.04672109, 0.006581338, -0.1010811, -0.2146607, -0.1926463]
    hidden_states_names = ("encoder_hidden_states", "decoder_hidden_states", "video_encoder_hidden_states",
                           "video_decoder_hidden_states")
    attentions_names = ("encoder_attentions", "decoder_attentions", "cross_attentions", "video_encoder_attentions",
                        "video_decoder_attentions", "video_cross_attentions")

    def get_config(self):
        return SweetTokenizerConfig(**TINY)

    def get_inputs(self, indices=None):
        """Item i is image i (`pixel_values`) and clip i (`pixel_values_videos`), values x - 0.5."""
        indices = list(range(self.num_items)) if indices is None else list(indices)
        generator = torch.Generator().manual_seed(0)
        config = self.get_config()
        size = config.image_size
        images = torch.rand(self.num_items, 3, size, size, generator=generator) - 0.5
        clips = torch.rand(self.num_items, 3, config.num_frames, size, size, generator=generator) - 0.5
        return {"pixel_values": images[indices], "pixel_values_videos": clips[indices]}


def test_truncated_checkpoint_raises_an_error_naming_the_file(tmp_path):
    import re

    SweetTokenizerModel(SweetTokenizerConfig(**TINY)).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(OSError, match=f"^{re.escape(str(weights))} could not be read by safetensors"):
        AutoModel.from_pretrained(tmp_path)
