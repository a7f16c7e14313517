"""SweetTokenizer video processing: videos -> `pixel_values` (batch, channels, frames, height, width) in [-0.5, 0.5].

Each video is cut to `num_frames` frames (17 by default: the tokenizer reads 1 + 16 frames), then every frame goes
through the image pipeline of `image_processing_sweet.py` (checks, resize, rescale, x - 0.5), so an image and the
same picture as a video frame give the same values.

- more frames than `num_frames`: `frame_sampling="uniform"` keeps `num_frames` evenly spaced frames, first and last
  included (`round(linspace(0, n - 1, num_frames))`); `"first"` keeps the first `num_frames`;
- fewer frames: an error naming the video, its frame count and the count required.

Built on transformers' `VideoProcessorMixin` (the torchvision-free part of `BaseVideoProcessor`), which gives
`save_pretrained` / `from_pretrained` (`video_preprocessor_config.json`) and `AutoVideoProcessor` registration.
Note the layout differs from transformers' video models (`pixel_values_videos`, frames before channels): it is the
layout of SweetTokenizer's 3-d convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL.Image
import torch
from transformers import BatchFeature
from transformers.processing_utils import VideosKwargs
from transformers.video_processing_utils import VideoProcessorMixin

from .configuration_sweet import MAX_NUM_FRAMES
from .image_processing_sweet import (
    ACCEPTED_TYPES,
    MAX_CLIP_PIXELS,
    SweetPixelDefaults,
    array_to_pixel_values,
    as_numpy,
    check_call_kwargs,
    check_settings,
    frame_size,
    image_to_array,
    is_frame,
    pixel_values_to_image,
    stack_same_size,
)

FRAME_SAMPLINGS = ("uniform", "first")


def _is_video(obj: Any) -> bool:
    """One video: a list / tuple of frames, or a 4-d array / tensor (frames, ...)."""
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return obj.ndim == 4
    return isinstance(obj, (list, tuple)) and len(obj) > 0 and all(is_frame(frame) for frame in obj)


def as_video_list(videos: Any) -> list[Sequence]:
    """One video, a list of videos, or a 5-d array / tensor (batch, frames, ...) -> list of videos (frame lists or
    4-d arrays / tensors)."""
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        if videos.ndim == 4:  # kept as an array: only the sampled frames are read (no view per frame)
            return [videos]
        if videos.ndim == 5:
            return list(videos)
        raise ValueError(
            f"videos array has shape {tuple(videos.shape)}; expected (frames, height, width, channels), "
            "(frames, channels, height, width) or a batch of those"
        )
    if not isinstance(videos, (list, tuple)):
        raise TypeError(
            f"videos is a {type(videos).__name__}; expected a video (a list of frames or a 4-d array / tensor) "
            "or a list of videos"
        )
    if len(videos) == 0:
        raise ValueError("got an empty list of videos; expected at least one video")
    if all(is_frame(frame) for frame in videos):
        return [list(videos)]
    result = []
    for index, video in enumerate(videos):
        if isinstance(video, (list, tuple)) and len(video) == 0:
            raise ValueError(f"video #{index} has no frames")
        if not _is_video(video):
            shape = f" of shape {tuple(video.shape)}" if isinstance(video, (np.ndarray, torch.Tensor)) else ""
            raise TypeError(
                f"video #{index} is a {type(video).__name__}{shape}; expected a list of frames ({ACCEPTED_TYPES}) "
                "or a 4-d array / tensor (frames, height, width, channels) or (frames, channels, height, width)"
            )
        result.append(video if isinstance(video, (np.ndarray, torch.Tensor)) else list(video))
    return result


def sample_frame_indices(num_available: int, num_frames: int, frame_sampling: str = "uniform",
                         name: str = "video #0") -> np.ndarray:
    """Indices of the frames to keep, see the module docstring. Returns `(num_frames,)` int64."""
    if num_available < num_frames:
        raise ValueError(f"{name} has {num_available} frames but {num_frames} frames are required")
    if frame_sampling == "first":
        return np.arange(num_frames)
    if frame_sampling == "uniform":
        return np.round(np.linspace(0, num_available - 1, num_frames)).astype(np.int64)
    raise ValueError(f"frame_sampling must be one of {list(FRAME_SAMPLINGS)}, got {frame_sampling!r}")


class SweetVideosKwargs(VideosKwargs, total=False):
    """`VideosKwargs` plus `num_channels` (3: RGB, 1: grayscale) and `frame_sampling` ("uniform" or "first")."""

    num_channels: int | None
    frame_sampling: str | None


class SweetVideoProcessor(SweetPixelDefaults, VideoProcessorMixin):
    r"""
    SweetTokenizer video processor (Pillow / NumPy, no torchvision). Settings go to `video_preprocessor_config.json`.

    `processor(videos)` -> `BatchFeature({"pixel_values": (batch, num_channels, num_frames, height, width)})`;
    `processor.postprocess(pixel_values)` -> one list of PIL frames per video.

    Args:
        num_frames (`int`, *optional*, defaults to 17): frames per video (1 + 16 for the released tokenizer), at most
            `MAX_NUM_FRAMES` (1,025); a clip (`num_frames` x height x width) has at most `MAX_CLIP_PIXELS` pixels.
        frame_sampling (`str`, *optional*, defaults to `"uniform"`): how longer videos are cut, `"uniform"` or
            `"first"`.
        size, resample, do_resize, do_rescale, rescale_factor, do_normalize, image_mean, image_std, num_channels:
            as `SweetImageProcessor` (256x256 bicubic, x / 255 - 0.5, RGB).

    Videos: a list of frames (PIL images, (H, W, C) / (C, H, W) arrays or tensors), a 4-d array / tensor
    (frames, H, W, C) or (frames, C, H, W), a list of such videos, or a 5-d array / tensor (batch, frames, ...).
    """

    valid_kwargs = SweetVideosKwargs
    model_input_names = ["pixel_values"]

    num_frames = 17
    frame_sampling = "uniform"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._set_attributes(**kwargs)
        self._validate_preprocess_kwargs(**{name: getattr(self, name, None) for name in self._valid_kwargs_names})

    def _validate_preprocess_kwargs(self, num_channels=None, size=None, do_resize=None, image_mean=None,
                                    image_std=None, do_normalize=None, num_frames=None, frame_sampling=None,
                                    do_center_crop=None, do_pad=None, **kwargs):
        if do_center_crop or do_pad:
            raise ValueError("SweetVideoProcessor does not center-crop or pad; it resizes to `size`")
        if not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames < 1:
            raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
        if num_frames > MAX_NUM_FRAMES:
            raise ValueError(f"num_frames must be at most {MAX_NUM_FRAMES:,} (MAX_NUM_FRAMES in "
                             f"configuration_sweet.py), got {num_frames:,}")
        if not isinstance(frame_sampling, str) or frame_sampling not in FRAME_SAMPLINGS:
            raise ValueError(f"frame_sampling must be one of {list(FRAME_SAMPLINGS)}, got {frame_sampling!r}")
        check_settings(num_channels, size, do_resize, image_mean, image_std, do_normalize, kwargs.get("do_rescale"),
                       kwargs.get("rescale_factor"), kwargs.get("resample"))
        if do_resize and num_frames * size.height * size.width > MAX_CLIP_PIXELS:
            raise ValueError(
                f"num_frames x size = {num_frames} x {size.height} x {size.width} = "
                f"{num_frames * size.height * size.width:,} pixels per clip, more than MAX_CLIP_PIXELS="
                f"{MAX_CLIP_PIXELS:,} (image_processing_sweet.py); lower num_frames or size"
            )

    def preprocess(self, videos, **kwargs) -> BatchFeature:
        """Videos -> `BatchFeature({"pixel_values": (batch, C, T, H, W)})`; kwargs override the settings."""
        check_call_kwargs(self.valid_kwargs, kwargs)
        for name in self._valid_kwargs_names:
            kwargs.setdefault(name, getattr(self, name, None))
        kwargs = self._standardize_kwargs(**kwargs)
        self._validate_preprocess_kwargs(**kwargs)
        videos = as_video_list(videos)
        names = [f"video #{index}" for index in range(len(videos))]
        pixel_values = [self._video_to_pixel_values(video, name, **kwargs) for video, name in zip(videos, names)]
        return BatchFeature({"pixel_values": stack_same_size(pixel_values, names)},
                            tensor_type=kwargs.get("return_tensors") or "pt")

    def _video_to_pixel_values(self, frames: Sequence, name: str, num_frames: int, frame_sampling: str,
                               num_channels: int, input_data_format=None, do_resize=True, size=None, resample=None,
                               do_rescale=True, rescale_factor=1 / 255, do_normalize=True, image_mean=0.5,
                               image_std=1.0, **kwargs) -> np.ndarray:
        """One video's frames -> `(C, num_frames, H, W)` float32; errors name "video #i frame #j" (input index)."""
        indices = sample_frame_indices(len(frames), num_frames, frame_sampling, name)
        frame_names = [f"{name} frame #{index}" for index in indices]
        first = frame_size(frames[indices[0]], num_channels, input_data_format)
        if not do_resize and first is not None and len(indices) * first[0] * first[1] > MAX_CLIP_PIXELS:
            raise ValueError(f"{name} would be {len(indices)} frames of {first[0]} x {first[1]} pixels (do_resize="
                             f"False), more than MAX_CLIP_PIXELS={MAX_CLIP_PIXELS:,} (image_processing_sweet.py)")
        arrays = [
            array_to_pixel_values(
                image_to_array(frames[index], frame_name, num_channels, input_data_format),
                do_resize, size, resample, do_rescale, rescale_factor, do_normalize, image_mean, image_std,
            )
            for index, frame_name in zip(indices, frame_names)
        ]
        return stack_same_size(arrays, frame_names, axis=1)

    def postprocess(self, pixel_values) -> list[list[PIL.Image.Image]]:
        """`pixel_values` (batch, C, T, H, W) or (C, T, H, W), e.g. a reconstruction -> per video, its PIL frames."""
        values = as_numpy(pixel_values)
        if values.ndim == 4:
            values = values[None]
        if values.ndim != 5:
            raise ValueError(
                f"pixel_values has shape {tuple(values.shape)}; expected (batch, channels, frames, height, width)"
            )
        return [
            [pixel_values_to_image(video[:, t], self.image_mean, self.image_std) for t in range(video.shape[1])]
            for video in values
        ]


__all__ = ["SweetVideoProcessor", "sample_frame_indices"]
