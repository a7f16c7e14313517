"""Pipelines: `image-tokenization` and `video-tokenization`.

Per input, the result holds the token ids of each branch, the words they stand for (ready for an LLM prompt) and,
with `return_reconstruction=True`, the decoded image (a PIL image) or clip (a list of PIL frames).

Inputs, one result per input and in input order:

- `image-tokenization`: an image (PIL image, (H, W) / (H, W, C) / (C, H, W) array or tensor, a path as `str` or
  `pathlib.Path`, a URL or base64 string, read by `transformers.image_utils.load_image`) gives one result; a list /
  tuple of images, a 4-d array / tensor (batch, ...) or a generator of images gives one result per image.
- `video-tokenization`: a clip (a list / tuple of frames, i.e. PIL images or 2-/3-d arrays / tensors, a 4-d array /
  tensor (frames, ...), or a path to a multi-frame file) gives one result; a list / tuple of clips, a 5-d array /
  tensor (batch, frames, ...) or a generator of clips gives one result per clip. Multi-frame files: animated GIF /
  PNG / WebP and multi-page TIFF are read with Pillow; other files (mp4, ...) with
  `transformers.video_utils.load_video` when one of its backends (PyAV, decord, OpenCV, torchcodec) is installed.
  Only the `num_frames` frames the video processor keeps are decoded.

A list is run eagerly and returns a list; a map-style `Dataset` (e.g. `KeyDataset`) is indexed; a generator or any
other iterable (an iterator, an `IterableDataset`, ...) streams: the pipeline returns an iterator whose results come
as they are computed, as transformers' pipelines do. Errors about an input name it (`image #3`, `video #1`).
"""

from __future__ import annotations

import collections.abc
import os
import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from torch.utils.data import DataLoader, Dataset
from transformers import Pipeline
from transformers.image_utils import load_image
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator

from .image_processing_sweet import ACCEPTED_TYPES, is_frame
from .remote_code_sweet import keep_only_its_task
from .video_processing_sweet import sample_frame_indices

PATH_TYPES = (str, pathlib.PurePath)
# iterable, yet one (bad) item rather than a stream of inputs
_NOT_STREAMS = (str, bytes, collections.abc.Mapping, PIL.Image.Image, np.ndarray, torch.Tensor)
# torchvision is left out: its `read_video` is deprecated and gone from recent releases
VIDEO_BACKENDS = ("pyav", "decord", "opencv", "torchcodec")


@dataclass
class _Indexed:
    """One pipeline input and its position in the call, so that errors can name it."""

    index: int
    value: Any


class _IndexedDataset(Dataset):
    """A map-style dataset of inputs (e.g. transformers' `KeyDataset`) whose items carry their index."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> _Indexed:
        return _Indexed(index, self.dataset[index])


def _concatenate_pixels(items: list[dict]) -> dict:
    return {"pixel_values": torch.cat([item["pixel_values"] for item in items])}


def _renamed(error: Exception, kind: str, index: int) -> Exception:
    """The processor sees one input at a time and calls it "<kind> #0": give the error the input's real index."""
    message = str(error.args[0]) if len(error.args) == 1 else str(error)
    own, real = f"{kind} #0", f"{kind} #{index}"
    message = real + message[len(own):] if message.startswith(own) else f"{real}: {message}"
    try:
        return type(error)(message)
    except TypeError:  # an exception type that needs other arguments: keep it as it is
        return error


def read_video_frames(path: str | os.PathLike, name: str = "video #0", num_frames: int | None = None,
                      frame_sampling: str = "uniform") -> list:
    """Frames of a video file: multi-frame images (GIF, APNG, WebP, TIFF) with Pillow; other files with
    `transformers.video_utils.load_video` and the first installed backend. Returns a list of frames.

    With `num_frames`, only the frames `SweetVideoProcessor` would keep are decoded (`sample_frame_indices` with
    `frame_sampling`, the processor's rule), so a long video is never held in memory whole; the processor then keeps
    all of them. Without it, every frame is read. Too few frames raise the processor's error naming `name`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name}: no file at {path!r}")
    try:
        with PIL.Image.open(path) as image:
            available = getattr(image, "n_frames", 1)
            indices = (range(available) if num_frames is None
                       else sample_frame_indices(available, num_frames, frame_sampling, name).tolist())
            frames = []
            for index in indices:
                image.seek(index)
                frames.append(image.copy())
            return frames
    except PIL.UnidentifiedImageError:
        pass
    from transformers.utils import import_utils
    from transformers.video_utils import load_video

    available = {"pyav": import_utils.is_av_available, "decord": import_utils.is_decord_available,
                 "opencv": import_utils.is_cv2_available, "torchcodec": import_utils.is_torchcodec_available}
    backend = next((backend for backend in VIDEO_BACKENDS if available[backend]()), None)
    if backend is None:
        raise ValueError(
            f"{name}: {path!r} is not a multi-frame image Pillow can read (GIF, PNG, WebP, TIFF) and no video "
            f"decoder is installed for transformers.video_utils.load_video (one of {', '.join(VIDEO_BACKENDS)}); "
            "install one (e.g. `pip install av`) or pass the frames as a list of PIL images / arrays"
        )
    sampling = {}
    if num_frames is not None:
        sampling = {"num_frames": num_frames, "sample_indices_fn": lambda metadata, **_: sample_frame_indices(
            metadata.total_num_frames, num_frames, frame_sampling, name)}
    frames, _ = load_video(path, backend=backend, **sampling)
    return list(frames)


def _is_clip(obj: Any) -> bool:
    """One clip: a non-empty list / tuple of frames, a 4-d array / tensor (frames, ...), or a path."""
    if isinstance(obj, PATH_TYPES):
        return True
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return obj.ndim == 4
    return isinstance(obj, (list, tuple)) and len(obj) > 0 and all(is_frame(frame) for frame in obj)


class _VisualTokenizationPipeline(Pipeline):
    """Shared plumbing: split the call's inputs into items, preprocess one item, encode a batch, optionally decode,
    one result per input in order."""

    _load_tokenizer = False
    _load_feature_extractor = False
    _load_processor = False
    kind = "input"  # "image" / "video": how errors name an input

    def _processor(self):
        raise NotImplementedError

    def save_pretrained(self, save_directory, **kwargs):
        """`Pipeline.save_pretrained` (the model, the pipeline's code, the image processor, `custom_pipelines` naming
        this task only: `keep_only_its_task`), plus the video processor (`video_preprocessor_config.json` and its
        code), which it leaves out."""
        super().save_pretrained(save_directory, **kwargs)
        keep_only_its_task(self, save_directory)
        if self.video_processor is not None:
            self.video_processor.save_pretrained(save_directory, **kwargs)

    def _split(self, inputs) -> tuple[Any, bool]:
        """The call's inputs -> (a list or an iterator of items, whether `inputs` was a single item)."""
        raise NotImplementedError

    def _load(self, value: Any, name: str) -> Any:
        """One item as the processor takes it (files read here)."""
        raise NotImplementedError

    def __call__(self, inputs, **kwargs):
        if isinstance(inputs, Dataset) and isinstance(inputs, collections.abc.Sized):  # e.g. KeyDataset
            return super().__call__(_IndexedDataset(inputs), **kwargs)
        if isinstance(inputs, Dataset):  # no length, e.g. an IterableDataset: streamed
            items, single = inputs, False
        else:
            items, single = self._split(inputs)
        if single:
            return super().__call__(_Indexed(0, items), **kwargs)
        if isinstance(items, list):
            if len(items) == 0:
                raise ValueError(f"{self.task}: expected at least one input, got an empty list")
            return super().__call__([_Indexed(index, item) for index, item in enumerate(items)], **kwargs)
        # Stream: a generator is what transformers' Pipeline.__call__ turns into a lazy iterator.
        return super().__call__((_Indexed(index, item) for index, item in enumerate(items)), **kwargs)

    def _sanitize_parameters(self, return_reconstruction=None, **kwargs):
        forward = {} if return_reconstruction is None else {"return_reconstruction": return_reconstruction}
        return {}, forward, {}

    def preprocess(self, item: _Indexed) -> dict:
        value = self._load(item.value, f"{self.kind} #{item.index}")  # its errors name the input
        try:
            pixel_values = self._processor()(value, return_tensors="pt")["pixel_values"]
            # the model's input checks (e.g. float pixels in 0-255, which the processor takes as 0-1) here, where the
            # error can name the input: in `_forward` it could only name the item's position in its batch
            self.model._as_video(pixel_values)
            return {"pixel_values": pixel_values}
        except (ValueError, TypeError) as error:
            renamed = _renamed(error, self.kind, item.index)
            if renamed is error:
                raise
            raise renamed from error

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        if isinstance(inputs, collections.abc.Sized):
            dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        else:  # a generator: iterate it once, in order (as transformers' Pipeline.get_iterator)
            num_workers = min(num_workers, 1)
            dataset = PipelineIterator(inputs, self.preprocess, preprocess_params)
        dataloader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size,
                                collate_fn=_concatenate_pixels)
        model_iterator = PipelineIterator(dataloader, self.forward, forward_params, loader_batch_size=batch_size)
        # iter(): started, so that `next(pipe(generator))` works as well as `for result in pipe(generator)`
        return iter(PipelineIterator(model_iterator, self.postprocess, postprocess_params))

    def _forward(self, model_inputs: dict, return_reconstruction: bool = False) -> dict:
        pixel_values = model_inputs["pixel_values"].to(self.device, self.model.dtype)
        encoded = self.model.encode(pixel_values)
        outputs = {"spatial_ids": encoded.spatial_ids}
        if encoded.temporal_ids is not None:
            outputs["temporal_ids"] = encoded.temporal_ids
        if return_reconstruction:
            outputs["reconstruction"] = self.model.decode(encoded.spatial_ids, encoded.temporal_ids).float().cpu()
        return outputs

    def postprocess(self, model_outputs: dict) -> dict:
        result = {}
        for branch in ("spatial", "temporal"):
            if f"{branch}_ids" in model_outputs:
                ids = model_outputs[f"{branch}_ids"][0]
                result[f"{branch}_ids"] = ids.tolist()
                has_words = getattr(self.model.config, f"{branch}_words") is not None
                result[f"{branch}_words"] = self.model.ids_to_words(ids, branch) if has_words else None
        if "reconstruction" in model_outputs:
            result["reconstruction"] = self._processor().postprocess(model_outputs["reconstruction"])[0]
        return result


def _split_stream_or_batch(inputs, is_single, batch_ndim: int) -> tuple[Any, bool]:
    """Common cases of `_split`: a single item, a batch array / tensor, a list / tuple, or any other iterable (a
    generator, an iterator, an `IterableDataset`, ...), which is streamed."""
    if is_single(inputs):
        return inputs, True
    if isinstance(inputs, (np.ndarray, torch.Tensor)) and inputs.ndim == batch_ndim:
        return list(inputs), False
    if isinstance(inputs, (list, tuple)):
        return list(inputs), False
    if isinstance(inputs, _NOT_STREAMS) or not isinstance(inputs, collections.abc.Iterable):
        return inputs, True  # let preprocess name what is wrong with it
    return inputs, False


class ImageTokenizationPipeline(_VisualTokenizationPipeline):
    """Image(s) -> spatial token ids and words (and the reconstruction on request) with `SweetTokenizerModel`.

    Takes an image (PIL, array, tensor, path, URL), a list of them, a (batch, ...) array / tensor or a generator
    (streamed); see the module docstring.

    Example:
    ```python
    >>> tokenizer = pipeline("image-tokenization", model="path/to/sweet")
    >>> tokenizer("photo.png")["spatial_words"][:5]
    ```
    """

    _load_image_processor = True
    _load_video_processor = False
    kind = "image"

    def _processor(self):
        return self.image_processor

    def _split(self, inputs) -> tuple[Any, bool]:
        return _split_stream_or_batch(inputs, lambda obj: is_frame(obj) or isinstance(obj, PATH_TYPES), 4)

    def _load(self, value: Any, name: str) -> Any:
        if isinstance(value, PATH_TYPES):
            try:
                return load_image(os.fspath(value))
            except (ValueError, OSError) as error:
                raise ValueError(f"{name}: could not read an image from {str(value)[:200]!r} ({error})") from error
        if not is_frame(value):
            shape = f" of shape {tuple(value.shape)}" if isinstance(value, (np.ndarray, torch.Tensor)) else ""
            raise TypeError(f"{name} is a {type(value).__name__}{shape}; expected {ACCEPTED_TYPES} of 2 or 3 "
                            "dimensions, or a path to an image file")
        return value


class VideoTokenizationPipeline(_VisualTokenizationPipeline):
    """Clip(s) of `num_frames` frames -> spatial and temporal token ids and words (and the reconstruction).

    A list of frames (PIL images or (H, W, C) arrays) is ONE clip; a list of such lists (or of 4-d arrays, or of
    paths) is a batch of clips; a path to a multi-frame file is one clip; a generator of clips streams. See the
    module docstring.

    Example:
    ```python
    >>> tokenizer = pipeline("video-tokenization", model="path/to/sweet")
    >>> tokenizer("clip.gif")["temporal_words"][:5]
    ```
    """

    _load_image_processor = False
    _load_video_processor = True
    kind = "video"

    def _processor(self):
        return self.video_processor

    def _split(self, inputs) -> tuple[Any, bool]:
        if isinstance(inputs, (list, tuple)) and len(inputs) > 0 and all(is_frame(frame) for frame in inputs):
            return inputs, True  # a list of frames is one clip
        return _split_stream_or_batch(inputs, lambda obj: isinstance(obj, PATH_TYPES) or (
            isinstance(obj, (np.ndarray, torch.Tensor)) and obj.ndim == 4), 5)

    def _load(self, value: Any, name: str) -> Any:
        if isinstance(value, PATH_TYPES):
            processor = self.video_processor
            return read_video_frames(value, name, processor.num_frames, processor.frame_sampling)
        if not _is_clip(value):
            if is_frame(value):
                raise TypeError(f"{name} is a single frame ({type(value).__name__}); a clip is a list of frames, a "
                                "4-d array / tensor (frames, ...) or a path to a video file; a list of frames as the "
                                "pipeline's input is one clip")
            raise TypeError(f"{name} is a {type(value).__name__}; expected a clip: a non-empty list of frames "
                            f"({ACCEPTED_TYPES}), a 4-d array / tensor (frames, ...) or a path to a video file")
        return list(value)


__all__ = ["ImageTokenizationPipeline", "VideoTokenizationPipeline", "read_video_frames"]
