"""SweetTokenizer image processing: images -> `pixel_values` in [-0.5, 0.5], and back to PIL images.

One image (or each frame of a video) goes through:

    image_to_array   PIL / NumPy / torch -> (channels, height, width) uint8 or float32, checked (type, shape,
                     at most MAX_INPUT_PIXELS pixels, channels, dtype, NaN / inf); grayscale is repeated to RGB
                     when 3 channels are wanted
    resize_array     Pillow resampling, bicubic by default; uint8 images are resized as 8-bit images (as
                     `PIL.Image.resize` does), float images as 32-bit float images, clipped to the input's range
    rescale          uint8 (and integer) images times `rescale_factor` (1/255); float images are taken to be in [0, 1]
    normalize        (x - image_mean) / image_std, the authors' convention x - 0.5 by default

so a batch is `pixel_values` `(batch, channels, height, width)` float32. The video processor
(`video_processing_sweet.py`) reuses these functions frame by frame. No torchvision is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL.Image
import torch
from huggingface_hub.dataclasses import validate_typed_dict
from huggingface_hub.errors import StrictDataclassError
from transformers import BatchFeature
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import ChannelDimension, PILImageResampling, SizeDict
from transformers.processing_utils import ImagesKwargs

from .configuration_sweet import MAX_IMAGE_SIZE, UPPER_BOUNDS
from .hub_sweet import push_to_hub_with_model_card

ACCEPTED_TYPES = "a PIL image, a NumPy array or a torch tensor"
# Bounds of the settings and inputs, checked before anything is allocated (one image of MAX_IMAGE_SIZE x
# MAX_IMAGE_SIZE is 0.8 GB as float32 RGB). `size` (each side) is bounded by the model's MAX_IMAGE_SIZE and
# `num_channels` by its channel bound (configuration_sweet.py). An input image may have at most MAX_INPUT_PIXELS
# pixels (height x width): Pillow's own decompression-bomb limit (2 x PIL.Image.MAX_IMAGE_PIXELS by default, e.g.
# 13,000 x 13,000); downscale larger images (gigapixel scans) first. A processed clip (`num_frames` frames of the
# output size) may have at most MAX_CLIP_PIXELS pixels (e.g. 1,024 frames of 1,024 x 1,024, or 17 of 7,936 x 7,936).
MAX_NUM_CHANNELS = UPPER_BOUNDS["num_channels"]
MAX_INPUT_PIXELS = 178_956_970
MAX_CLIP_PIXELS = 2**30
_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def is_frame(obj: Any) -> bool:
    """One image: a PIL image, or an array / tensor of 2 (height, width) or 3 dimensions."""
    return isinstance(obj, PIL.Image.Image) or (isinstance(obj, (np.ndarray, torch.Tensor)) and obj.ndim in (2, 3))


def _to_numpy(image: Any, name: str) -> np.ndarray:
    """PIL image / torch tensor / NumPy array -> NumPy array, as is (no layout or dtype change besides bf16)."""
    if isinstance(image, PIL.Image.Image):
        return np.asarray(image)
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        return (image.float() if image.dtype in (torch.bfloat16, torch.float16) else image).numpy()
    if isinstance(image, np.ndarray):
        return image
    raise TypeError(f"{name} is a {type(image).__name__}; expected {ACCEPTED_TYPES}")


def _pil_to_mode(image: PIL.Image.Image, num_channels: int, name: str) -> PIL.Image.Image | np.ndarray:
    """Let Pillow convert the mode (palette, RGBA, CMYK, grayscale ...) to one with `num_channels` channels.

    32-bit integer / float images ("I", "I;16", "F") are returned as arrays, since Pillow would clip them to 8 bits.
    """
    if image.mode == "F" or image.mode.startswith("I"):
        return np.asarray(image)
    if num_channels not in _PIL_MODES:
        raise ValueError(f"{name} is a PIL image, which gives 1, 3 or 4 channels, but {num_channels} are expected")
    mode = _PIL_MODES[num_channels]
    return image if image.mode == mode else image.convert(mode)


def _channel_axis(shape: tuple[int, ...], num_channels: int, input_data_format) -> int:
    """Channel axis (0 or 2) of a 3-d image. Without `input_data_format`: the end axis whose size is 1 or
    `num_channels` (channels-last preferred when both fit); when neither fits, the smaller one (ties: last)."""
    if input_data_format is not None:
        return 0 if ChannelDimension(input_data_format) == ChannelDimension.FIRST else 2
    accepted = (1, num_channels)
    if shape[2] in accepted:
        return 2
    if shape[0] in accepted:
        return 0
    return 0 if shape[0] < shape[2] else 2


def frame_size(image: Any, num_channels: int = 3, input_data_format=None) -> tuple[int, int] | None:
    """(height, width) of one image from its shape alone (no conversion), or None when it is not an image."""
    if isinstance(image, PIL.Image.Image):
        return image.height, image.width
    if not isinstance(image, (np.ndarray, torch.Tensor)) or image.ndim not in (2, 3):
        return None
    shape = tuple(image.shape)
    if len(shape) == 3:
        shape = shape[1:] if _channel_axis(shape, num_channels, input_data_format) == 0 else shape[:2]
    return shape


def check_input_size(image: Any, name: str, num_channels: int = 3, input_data_format=None) -> None:
    """Raise a `ValueError` naming the image when it has more than MAX_INPUT_PIXELS pixels (height x width), read
    from its shape before any conversion (a broadcast array or an expanded tensor holds no memory until converted)."""
    size = frame_size(image, num_channels, input_data_format)
    if size is None:
        return  # other types and shapes: image_to_array names the problem
    height, width = size
    if height * width > MAX_INPUT_PIXELS:
        raise ValueError(f"{name} has {height} x {width} = {height * width:,} pixels, more than MAX_INPUT_PIXELS="
                         f"{MAX_INPUT_PIXELS:,} (image_processing_sweet.py); downscale it first")


def image_to_array(
    image: Any, name: str = "image #0", num_channels: int = 3, input_data_format: str | ChannelDimension | None = None
) -> np.ndarray:
    """One image -> `(num_channels, height, width)` array: uint8 (0-255) or float32 (as given, normally 0-1).

    Accepts PIL images, NumPy arrays and torch tensors of shape (H, W), (H, W, C) or (C, H, W); integer images
    must lie in [0, 255]. One channel is repeated when `num_channels` is 3. `name` (e.g. "image #2",
    "video #0 frame #5") names the image in errors.
    """
    check_input_size(image, name, num_channels, input_data_format)
    if isinstance(image, PIL.Image.Image):
        image = _pil_to_mode(image, num_channels, name)
    array = _to_numpy(image, name)
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3:
        array = np.moveaxis(array, _channel_axis(array.shape, num_channels, input_data_format), 0)
    else:
        raise ValueError(
            f"{name} has shape {tuple(array.shape)}; expected (height, width), (height, width, channels) "
            "or (channels, height, width)"
        )
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise ValueError(f"{name} is empty: height {array.shape[1]}, width {array.shape[2]}")
    channels = array.shape[0]
    if channels == 1 and num_channels == 3:
        array = np.repeat(array, 3, axis=0)
    elif channels != num_channels:
        hint = " (drop the alpha channel, or pass a PIL image)" if channels == 4 and num_channels == 3 else ""
        raise ValueError(f"{name} has {channels} channels, expected {num_channels}{hint}")
    return _checked_dtype(array, name)


def _checked_dtype(array: np.ndarray, name: str) -> np.ndarray:
    """uint8 stays uint8; integers in [0, 255] become uint8; floats become float32 and must be finite."""
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise ValueError(f"{name} has {bad} NaN or infinite values")
        return np.ascontiguousarray(array, dtype=np.float32)
    if np.issubdtype(array.dtype, np.integer) and array.dtype != np.bool_:
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ValueError(f"{name} has integer values in [{low}, {high}]; integer images must lie in [0, 255]")
        return np.ascontiguousarray(array, dtype=np.uint8)
    raise ValueError(
        f"{name} has dtype {array.dtype}; expected uint8 (0-255), other integers in 0-255 or floats (0-1)"
    )


def resize_array(array: np.ndarray, height: int, width: int, resample=PILImageResampling.BICUBIC) -> np.ndarray:
    """Resize `(channels, height, width)` channel by channel with Pillow; no-op when the size already matches.

    uint8 -> 8-bit ("L") resampling, as `PIL.Image.resize` on an RGB image; float32 -> 32-bit ("F") resampling,
    clipped to the input's value range (bicubic overshoot).
    """
    if array.shape[1:] == (height, width):
        return array
    resized = np.stack([
        np.asarray(PIL.Image.fromarray(channel).resize((width, height), resample=PILImageResampling(resample)))
        for channel in array
    ])
    if array.dtype != np.uint8:
        resized = np.clip(resized, array.min(), array.max())
    return resized


def _per_channel(value: float | Sequence[float], num_channels: int, label: str) -> np.ndarray:
    """Scalar or per-channel mean / std -> `(num_channels, 1, 1)` float32."""
    values = np.asarray(value, dtype=np.float32).reshape(-1)
    if values.size == 1:
        values = np.repeat(values, num_channels)
    if values.size != num_channels:
        raise ValueError(f"{label} has {values.size} values but the images have {num_channels} channels")
    return values.reshape(-1, 1, 1)


def array_to_pixel_values(
    array: np.ndarray,
    do_resize: bool = True,
    size: SizeDict | dict | None = None,
    resample=PILImageResampling.BICUBIC,
    do_rescale: bool = True,
    rescale_factor: float = 1 / 255,
    do_normalize: bool = True,
    image_mean: float | Sequence[float] = 0.5,
    image_std: float | Sequence[float] = 1.0,
) -> np.ndarray:
    """`image_to_array` output -> normalised `(channels, height, width)` float32 (resize, rescale, normalise)."""
    if do_resize:
        size = size if isinstance(size, SizeDict) else SizeDict(**size)
        array = resize_array(array, size.height, size.width, resample)
    is_integer = array.dtype == np.uint8
    values = array.astype(np.float32)
    if do_rescale and is_integer:
        values = values * np.float32(rescale_factor)
    if do_normalize:
        channels = values.shape[0]
        values = (values - _per_channel(image_mean, channels, "image_mean")) / _per_channel(
            image_std, channels, "image_std"
        )
    return values


def stack_same_size(arrays: Sequence[np.ndarray], names: Sequence[str], axis: int = 0) -> np.ndarray:
    """Stack equally shaped arrays; when sizes differ, name the first item that differs from the first one."""
    for array, name in zip(arrays[1:], names[1:]):
        if array.shape != arrays[0].shape:
            raise ValueError(
                f"{name} has size {tuple(array.shape[-2:])} after processing but {names[0]} has "
                f"{tuple(arrays[0].shape[-2:])}; set do_resize=True to batch images of different sizes"
            )
    return np.stack(arrays, axis=axis)


def pixel_values_to_image(
    pixel_values: np.ndarray, image_mean: float | Sequence[float] = 0.5, image_std: float | Sequence[float] = 1.0
) -> PIL.Image.Image:
    """Inverse of normalisation for one `(channels, height, width)` array: x * std + mean, clipped to [0, 1],
    rounded to uint8 -> PIL image ("L", "RGB" or "RGBA" for 1, 3 or 4 channels)."""
    channels = pixel_values.shape[0]
    if channels not in _PIL_MODES:
        raise ValueError(f"cannot make a PIL image of {channels} channels (1, 3 or 4 expected)")
    values = pixel_values.astype(np.float32) * _per_channel(image_std, channels, "image_std")
    values = values + _per_channel(image_mean, channels, "image_mean")
    array = np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    array = array[0] if channels == 1 else np.moveaxis(array, 0, -1)
    return PIL.Image.fromarray(np.ascontiguousarray(array))


def as_numpy(values: Any, name: str = "pixel_values") -> np.ndarray:
    """torch tensor (any device / dtype) or array -> float32 NumPy array."""
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float32).numpy()
    if isinstance(values, np.ndarray):
        return values.astype(np.float32, copy=False)
    raise TypeError(f"{name} is a {type(values).__name__}; expected a torch tensor or a NumPy array")


def check_call_kwargs(schema: type, kwargs: dict) -> None:
    """transformers' type check of a processor call's keyword arguments (`validate_typed_dict`), raising a
    `TypeError` that names the argument instead of huggingface_hub's `StrictDataclassFieldValidationError`."""
    try:
        validate_typed_dict(schema, kwargs)
    except StrictDataclassError as error:
        raise TypeError(" ".join(str(error).split())) from None


def check_size_setting(size: Any) -> None:
    """`size` as given (before transformers standardises it): None, an int, (height, width) or a dict of ints, each
    in [1, MAX_IMAGE_SIZE]; else a `ValueError` / `TypeError` naming `size`."""
    if size is None:
        return
    if isinstance(size, (dict, SizeDict)):
        values = [value for value in dict(size).values() if value is not None]
    elif isinstance(size, (list, tuple)) and len(size) == 2:
        values = list(size)
    elif isinstance(size, int) and not isinstance(size, bool):
        values = [size]
    else:
        raise TypeError(f"size must be {{'height': int, 'width': int}}, got {size!r}")
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"size must hold integers, got {size!r}")
        if not 1 <= value <= MAX_IMAGE_SIZE:
            raise ValueError(f"size must hold integers in [1, {MAX_IMAGE_SIZE:,}] (MAX_IMAGE_SIZE in "
                             f"configuration_sweet.py), got {size!r}")


def _finite_values(value: Any, label: str) -> None:
    """A number or a sequence of numbers, all finite; else a `ValueError` naming `label`."""
    try:
        values = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{label} must be a number or a list of numbers, got {value!r}") from None
    if isinstance(value, bool) or values.ndim > 1 or values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"{label} must be a finite number or a list of finite numbers, got {value!r}")


def check_settings(
    num_channels: int | None, size: SizeDict | None, do_resize: bool | None, image_mean, image_std, do_normalize,
    do_rescale: bool | None = None, rescale_factor: Any = None, resample: Any = None,
) -> None:
    """Errors for settings SweetTokenizer's processors cannot honour, each naming the setting."""
    for label, flag in (("do_resize", do_resize), ("do_rescale", do_rescale), ("do_normalize", do_normalize)):
        if flag is not None and not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{label} must be a bool, got {flag!r}")
    if not isinstance(num_channels, int) or isinstance(num_channels, bool) or num_channels < 1:
        raise ValueError(f"num_channels must be a positive integer, got {num_channels!r}")
    if num_channels > MAX_NUM_CHANNELS:
        raise ValueError(f"num_channels must be at most {MAX_NUM_CHANNELS} (configuration_sweet.UPPER_BOUNDS), got "
                         f"{num_channels}")
    if do_resize and (size is None or not size.height or not size.width):
        raise ValueError(f"size must be {{'height': int, 'width': int}}, got {dict(size) if size else size}")
    if do_resize:
        check_size_setting(size)
        filters = list(PILImageResampling)
        if isinstance(resample, bool) or not isinstance(resample, int) or resample not in filters:
            raise ValueError(f"resample must be a PIL resampling filter "
                             f"({', '.join(f'{f.name}={int(f)}' for f in filters)}), got {resample!r}")
    if do_rescale:
        if isinstance(rescale_factor, bool) or not isinstance(rescale_factor, (int, float)) or not np.isfinite(
                rescale_factor):
            raise ValueError(f"rescale_factor must be a finite number, got {rescale_factor!r}")
    if do_normalize:
        _finite_values(image_mean, "image_mean")
        _finite_values(image_std, "image_std")
        _per_channel(image_mean, num_channels, "image_mean")
        std = _per_channel(image_std, num_channels, "image_std")
        if (std == 0).any():
            raise ValueError(f"image_std must not be 0, got {image_std}")


class SweetImagesKwargs(ImagesKwargs, total=False):
    """`ImagesKwargs` plus `num_channels`: channels of `pixel_values` (3: RGB, 1: grayscale)."""

    num_channels: int | None


class SweetPixelDefaults:
    """Default per-frame settings shared by `SweetImageProcessor` and `SweetVideoProcessor`: 256x256 bicubic,
    x / 255 - 0.5 (the authors' normalisation), RGB."""

    resample = PILImageResampling.BICUBIC
    size = {"height": 256, "width": 256}
    do_resize = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = 0.5
    image_std = 1.0
    num_channels = 3

    def _standardize_kwargs(self, size=None, **kwargs) -> dict:
        check_size_setting(size)  # before transformers turns it into a SizeDict (or fails on it)
        return super()._standardize_kwargs(size=size, **kwargs)

    def push_to_hub(self, repo_id: str, *, model_card=None, **kwargs):
        """`push_to_hub` (same arguments) that uploads this repository's model card as `README.md` unless the
        repository has one from a model push or a person (`hub_sweet.push_to_hub_with_model_card`)."""
        return push_to_hub_with_model_card(self, repo_id, model_card=model_card, **kwargs)


class SweetImageProcessor(SweetPixelDefaults, PilBackend):
    r"""
    SweetTokenizer image processor (Pillow / NumPy, no torchvision). Settings go to `preprocessor_config.json`.

    `processor(images)` -> `BatchFeature({"pixel_values": (batch, num_channels, height, width) float32})`;
    `processor.postprocess(pixel_values)` -> list of PIL images (for reconstructions).

    Args:
        size (`dict`, *optional*, defaults to `{"height": 256, "width": 256}`): output size, each side at most
            `MAX_IMAGE_SIZE` (8,192); the aspect ratio is not kept (no crop).
        resample (`PILImageResampling`, *optional*, defaults to `BICUBIC`): Pillow resampling filter.
        do_resize / do_rescale / do_normalize (`bool`, *optional*, default `True`): the steps of the module docstring.
        rescale_factor (`float`, *optional*, defaults to 1/255): applied to uint8 / integer images only.
        image_mean / image_std (`float` or per-channel list, *optional*, defaults to 0.5 / 1.0): values in
            [-0.5, 0.5].
        num_channels (`int`, *optional*, defaults to 3): 3 converts PIL images to RGB and repeats grayscale arrays;
            1 converts PIL images to "L". Other channel counts are errors.

    Images: a PIL image, an array / tensor (H, W), (H, W, C) or (C, H, W), a list of these, or a 4-d array / tensor
    (batch, ...) of equally sized images. `input_data_format="channels_first" | "channels_last"` settles the layout
    when it is ambiguous (otherwise the channel axis is the end axis of size 1 or `num_channels`, last first).
    `return_tensors` is "pt" (default) or "np".
    """

    valid_kwargs = SweetImagesKwargs
    model_input_names = ["pixel_values"]


    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        check_settings(self.num_channels, self.size, self.do_resize, self.image_mean, self.image_std,
                       self.do_normalize, self.do_rescale, self.rescale_factor, self.resample)

    def _validate_preprocess_kwargs(self, num_channels=None, size=None, do_resize=None, image_mean=None,
                                    image_std=None, do_normalize=None, do_center_crop=None, do_pad=None, **kwargs):
        if do_center_crop or do_pad:
            raise ValueError("SweetImageProcessor does not center-crop or pad; it resizes to `size`")
        check_settings(num_channels, size, do_resize, image_mean, image_std, do_normalize, kwargs.get("do_rescale"),
                       kwargs.get("rescale_factor"), kwargs.get("resample"))
        super()._validate_preprocess_kwargs(size=size, do_resize=do_resize, image_mean=image_mean,
                                            image_std=image_std, do_normalize=do_normalize, **kwargs)

    def preprocess(self, images, *args, **kwargs) -> BatchFeature:
        """`BaseImageProcessor.preprocess`; a keyword argument of the wrong type raises a `TypeError` naming it."""
        check_call_kwargs(self.valid_kwargs, kwargs)
        return super().preprocess(images, *args, **kwargs)

    def _preprocess_image_like_inputs(self, images, *args, num_channels: int = 3, input_data_format=None, **kwargs):
        """Images -> checked `(C, H, W)` arrays (`image_to_array`, naming "image #i" in errors) -> `_preprocess`."""
        images = as_image_list(images)
        names = [f"image #{index}" for index in range(len(images))]
        arrays = [image_to_array(image, name, num_channels, input_data_format) for image, name in zip(images, names)]
        return self._preprocess(arrays, names=names, **kwargs)

    def _preprocess(
        self,
        images: list[np.ndarray],
        do_resize: bool,
        size: SizeDict,
        resample,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean,
        image_std,
        return_tensors=None,
        names: Sequence[str] | None = None,
        **kwargs,
    ) -> BatchFeature:
        names = names or [f"image #{index}" for index in range(len(images))]
        pixel_values = [
            array_to_pixel_values(image, do_resize, size, resample, do_rescale, rescale_factor, do_normalize,
                                  image_mean, image_std)
            for image in images
        ]
        return BatchFeature({"pixel_values": stack_same_size(pixel_values, names)},
                            tensor_type=return_tensors or "pt")

    def postprocess(self, pixel_values) -> list[PIL.Image.Image]:
        """`pixel_values` (batch, C, H, W) or (C, H, W), e.g. a reconstruction -> list of PIL images (undoes
        normalisation, clips to [0, 1], rounds to uint8)."""
        values = as_numpy(pixel_values)
        if values.ndim == 3:
            values = values[None]
        if values.ndim != 4:
            raise ValueError(
                f"pixel_values has shape {tuple(values.shape)}; expected (batch, channels, height, width)"
            )
        return [pixel_values_to_image(image, self.image_mean, self.image_std) for image in values]


def as_image_list(images: Any) -> list:
    """One image, a list / tuple of images, or a 4-d array / tensor (batch, ...) -> list of images."""
    if is_frame(images):
        return [images]
    if isinstance(images, (np.ndarray, torch.Tensor)):
        if images.ndim != 4:
            raise ValueError(f"images array has shape {tuple(images.shape)}; expected 2 to 4 dimensions")
        images = list(images)
    if not isinstance(images, (list, tuple)):
        raise TypeError(f"images is a {type(images).__name__}; expected {ACCEPTED_TYPES}, or a list of them")
    if len(images) == 0:
        raise ValueError("got an empty list of images; expected at least one image")
    return list(images)


__all__ = ["SweetImageProcessor", "image_to_array", "array_to_pixel_values", "pixel_values_to_image"]
