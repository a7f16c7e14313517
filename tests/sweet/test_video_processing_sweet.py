"""SweetVideoProcessor: layouts, frame sampling, shared per-frame pipeline, save / load, postprocess, errors."""

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import AutoConfig, PreTrainedConfig

# the real class: `from transformers import AutoVideoProcessor` is a dummy when torchvision is missing
from transformers.models.auto.video_processing_auto import AutoVideoProcessor

from modeling_sweet.image_processing_sweet import SweetImageProcessor
from modeling_sweet.video_processing_sweet import SweetVideoProcessor, sample_frame_indices

SMALL = {"height": 16, "width": 24}


@pytest.fixture(scope="module")
def processor():
    return SweetVideoProcessor()


def random_video(frames=17, height=12, width=20, channels=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (frames, height, width, channels), dtype=np.uint8)


def counting_video(frames, height=8, width=8):
    """Frame t is filled with the value t, so the sampled frames can be read back from the pixel values."""
    return np.broadcast_to(np.arange(frames, dtype=np.uint8)[:, None, None, None], (frames, height, width, 3)).copy()


def frame_values(pixel_values):
    """(batch, C, T, H, W) of a `counting_video` -> the frame index of each output frame of video 0."""
    return (pixel_values[0, 0, :, 0, 0] + 0.5).mul(255).round().long().tolist()


def test_defaults_shape_and_range(processor):
    assert processor.num_frames == 17 and processor.size.height == 256 and processor.frame_sampling == "uniform"
    pixel_values = processor(random_video(frames=20))["pixel_values"]
    assert pixel_values.shape == (1, 3, 17, 256, 256) and pixel_values.dtype == torch.float32
    assert pixel_values.min() >= -0.5 and pixel_values.max() <= 0.5


def test_every_video_layout_gives_the_same_values(processor):
    video, native = random_video(), {"height": 12, "width": 20}  # no resize: uint8 and float inputs agree exactly
    layouts = [
        video,  # (T, H, W, C)
        torch.from_numpy(video).permute(0, 3, 1, 2),  # (T, C, H, W) tensor
        [PIL.Image.fromarray(frame) for frame in video],
        [frame for frame in video],
        list(video.astype(np.float32) / 255),
    ]
    batch = processor(list(map(list, layouts)), size=native)["pixel_values"]  # a list of videos
    assert batch.shape == (len(layouts), 3, 17, 12, 20)
    for pixel_values in batch[1:]:
        torch.testing.assert_close(pixel_values, batch[0])
    for single in layouts:
        torch.testing.assert_close(processor(single, size=native)["pixel_values"][0], batch[0])
    assert processor(np.stack([video, video]), size=SMALL)["pixel_values"].shape == (2, 3, 17, 16, 24)  # 5-d


def test_frames_match_the_image_processor(processor):
    video = random_video()
    pixel_values = processor(video, size=SMALL)["pixel_values"][0]  # (C, T, H, W)
    images = SweetImageProcessor(size=SMALL)(list(video))["pixel_values"]  # (T, C, H, W)
    assert torch.equal(pixel_values.transpose(0, 1), images)


def test_uniform_sampling_keeps_first_and_last_frames(processor):
    assert frame_values(processor(counting_video(33), size=SMALL)["pixel_values"]) == list(range(0, 33, 2))
    assert frame_values(processor(counting_video(17), size=SMALL)["pixel_values"]) == list(range(17))
    assert frame_values(processor(counting_video(40), num_frames=3, size=SMALL)["pixel_values"]) == [0, 20, 39]
    assert sample_frame_indices(100, 1).tolist() == [0]


def test_first_frames_sampling(processor):
    pixel_values = processor(counting_video(30), frame_sampling="first", size=SMALL)["pixel_values"]
    assert frame_values(pixel_values) == list(range(17))
    assert SweetVideoProcessor(frame_sampling="first", num_frames=4).frame_sampling == "first"


def test_grayscale_frames_become_rgb(processor):
    gray = random_video(frames=5, channels=1)
    for video in (gray, [frame[..., 0] for frame in gray], [PIL.Image.fromarray(frame[..., 0]) for frame in gray]):
        pixel_values = processor(video, num_frames=5, size=SMALL)["pixel_values"]
        assert pixel_values.shape == (1, 3, 5, 16, 24)
        assert torch.equal(pixel_values[0, 0], pixel_values[0, 2])


def test_resize_of_non_square_frames(processor):
    video = np.zeros((3, 20, 60, 3), np.uint8)
    video[:, :, 30:] = 255
    pixel_values = processor(video, num_frames=3, size={"height": 32, "width": 32})["pixel_values"]
    assert pixel_values.shape == (1, 3, 3, 32, 32)
    assert torch.all(pixel_values[..., :12] == -0.5) and torch.all(pixel_values[..., -12:] == 0.5)


def test_postprocess_inverts_preprocess():
    processor = SweetVideoProcessor(num_frames=3)
    video = random_video(frames=3, height=256, width=256, seed=2)
    frames = processor.postprocess(processor(video)["pixel_values"])
    assert len(frames) == 1 and len(frames[0]) == 3
    for restored, original in zip(frames[0], video):
        assert restored.mode == "RGB" and np.abs(np.asarray(restored).astype(int) - original).max() <= 1
    assert len(processor.postprocess(torch.zeros(3, 2, 4, 4))[0]) == 2  # (C, T, H, W) also accepted


def test_save_and_load_round_trip(tmp_path):
    processor = SweetVideoProcessor(num_frames=5, frame_sampling="first", size=SMALL, resample=2)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "video_preprocessor_config.json").exists()
    reloaded = SweetVideoProcessor.from_pretrained(tmp_path)
    assert reloaded.to_dict() == processor.to_dict()
    assert (reloaded.num_frames, reloaded.frame_sampling, reloaded.resample) == (5, "first", 2)
    video = random_video(frames=9)
    assert torch.equal(processor(video)["pixel_values"], reloaded(video)["pixel_values"])


class _SweetVideoTestConfig(PreTrainedConfig):
    model_type = "sweet_video_processing_test"


def test_auto_video_processor_registration(tmp_path):
    AutoConfig.register(_SweetVideoTestConfig.model_type, _SweetVideoTestConfig, exist_ok=True)
    AutoVideoProcessor.register(
        _SweetVideoTestConfig,
        video_processor_classes={"torchvision": SweetVideoProcessor, "pil": SweetVideoProcessor},
        exist_ok=True,
    )
    _SweetVideoTestConfig().save_pretrained(tmp_path)
    SweetVideoProcessor(num_frames=9).save_pretrained(tmp_path)
    for kwargs in ({}, {"backend": "pil"}):
        reloaded = AutoVideoProcessor.from_pretrained(tmp_path, **kwargs)
        assert type(reloaded) is SweetVideoProcessor and reloaded.num_frames == 9


def _nan_at_last_frame():
    video = random_video(frames=20).astype(np.float32) / 255
    video[19, 0, 0, 0] = np.nan
    return video


@pytest.mark.parametrize(
    "videos, error, message",
    [
        ([], ValueError, "got an empty list of videos"),
        ([random_video(), []], ValueError, "video #1 has no frames"),
        ([random_video(), random_video(frames=10)], ValueError, "video #1 has 10 frames but 17 frames are required"),
        ([PIL.Image.fromarray(random_video()[0])] * 3, ValueError, "video #0 has 3 frames but 17"),
        (random_video(channels=5), ValueError, "video #0 frame #0 has 5 channels, expected 3"),
        ([random_video(), random_video(channels=2)], ValueError, "video #1 frame #0 has 2 channels, expected 3"),
        (_nan_at_last_frame(), ValueError, "video #0 frame #19 has 1 NaN or infinite values"),
        (random_video()[0], ValueError, r"videos array has shape \(12, 20, 3\)"),
        ([random_video(), "clip.mp4"], TypeError, "video #1 is a str; expected a list of frames"),
        ([random_video(), random_video()[0]], TypeError, r"video #1 is a ndarray of shape \(12, 20, 3\)"),
        ([random_video()[0], random_video()], TypeError, "video #0 is a ndarray"),
        ("clip.mp4", TypeError, "videos is a str"),
    ],
)
def test_errors_name_the_video_and_frame(processor, videos, error, message):
    with pytest.raises(error, match=message):
        processor(videos)


def test_setting_errors(processor):
    frames = [np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)]
    with pytest.raises(ValueError,
                       match=r"video #0 frame #1 has size \(9, 8\) after processing but video #0 frame #0"):
        processor(frames, num_frames=2, do_resize=False)
    with pytest.raises(ValueError, match=r"video #1 has size \(4, 4\) after processing but video #0 has \(8, 8\)"):
        processor([random_video(3, 8, 8), random_video(3, 4, 4)], num_frames=3, do_resize=False)
    with pytest.raises(ValueError, match="num_frames must be a positive integer, got 0"):
        SweetVideoProcessor(num_frames=0)
    with pytest.raises(ValueError, match=r"frame_sampling must be one of \['uniform', 'first'\], got 'random'"):
        processor(random_video(), frame_sampling="random")
    with pytest.raises(ValueError, match="num_channels must be a positive integer"):
        SweetVideoProcessor(num_channels=-1)
    with pytest.raises(ValueError, match=r"pixel_values has shape \(3, 8, 8\)"):
        processor.postprocess(torch.zeros(3, 8, 8))
