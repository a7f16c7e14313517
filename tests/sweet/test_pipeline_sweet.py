import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, pipeline
from transformers.models.auto.video_processing_auto import AutoVideoProcessor

from modeling_sweet import SweetImageProcessor, SweetVideoProcessor
from modeling_sweet.data_sweet import load_sample_photographs, moving_digit_clips


@pytest.fixture
def saved(tmp_path, word_model):
    word_model.eval().save_pretrained(tmp_path)
    SweetImageProcessor(size={"height": 16, "width": 16}).save_pretrained(tmp_path)
    SweetVideoProcessor(size={"height": 16, "width": 16}, num_frames=5).save_pretrained(tmp_path)
    return word_model, str(tmp_path)


def photographs(count=3):
    return [Image.fromarray((p.transpose(1, 2, 0) * 255).astype(np.uint8)) for p in load_sample_photographs(48)[:count]]


def test_auto_processors_resolve(saved):
    _, path = saved
    assert isinstance(AutoImageProcessor.from_pretrained(path), SweetImageProcessor)
    assert isinstance(AutoVideoProcessor.from_pretrained(path), SweetVideoProcessor)


def test_image_tokenization_pipeline(saved):
    model, path = saved
    tokenizer = pipeline("image-tokenization", model=path)
    images = photographs()
    results = tokenizer(images, batch_size=2, return_reconstruction=True)
    assert len(results) == 3
    pixel_values = SweetImageProcessor(size={"height": 16, "width": 16})(images)["pixel_values"]
    with torch.no_grad():
        expected = model.encode(pixel_values).spatial_ids
    assert [r["spatial_ids"] for r in results] == expected.tolist()
    assert results[1]["spatial_words"] == model.ids_to_words(expected[1], "spatial")
    assert isinstance(results[0]["reconstruction"], Image.Image) and results[0]["reconstruction"].size == (16, 16)
    assert "temporal_ids" not in results[0]
    single = tokenizer(images[2])
    assert single["spatial_ids"] == results[2]["spatial_ids"] and "reconstruction" not in single


def test_video_tokenization_pipeline(saved):
    model, path = saved
    tokenizer = pipeline("video-tokenization", model=path)
    clips = [(clip.transpose(1, 2, 3, 0) * 255).astype(np.uint8) for clip in moving_digit_clips(3, 9, 16, seed=1)]
    results = tokenizer(clips, batch_size=2, return_reconstruction=True)
    assert len(results) == 3 and len(results[0]["temporal_ids"]) == model.config.num_temporal_queries
    assert len(results[0]["temporal_words"]) == model.config.num_temporal_queries
    assert len(results[0]["reconstruction"]) == model.config.num_frames
    with pytest.raises(ValueError, match="video #0 has 3 frames but 5 frames are required"):
        tokenizer(clips[0][:3])


def test_pipelines_reject_empty_input(saved):
    _, path = saved
    with pytest.raises(ValueError, match="empty list"):
        pipeline("image-tokenization", model=path)([])
