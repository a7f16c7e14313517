"""Pipelines: `image-tokenization` and `video-tokenization`.

Per input, the result holds the token ids of each branch, the words they stand for (ready for an LLM prompt) and,
with `return_reconstruction=True`, the decoded image (a PIL image) or clip (a list of PIL frames).
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from transformers import Pipeline
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator


def _concatenate_pixels(items: list[dict]) -> dict:
    return {"pixel_values": torch.cat([item["pixel_values"] for item in items])}


class _VisualTokenizationPipeline(Pipeline):
    """Shared plumbing: preprocess one item, encode a batch, optionally decode, one result per input in order."""

    _load_tokenizer = False
    _load_feature_extractor = False
    _load_processor = False

    def _processor(self):
        raise NotImplementedError

    def __call__(self, inputs, **kwargs):
        if isinstance(inputs, (list, tuple)) and len(inputs) == 0:
            raise ValueError(f"{self.task}: expected at least one input, got an empty list")
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, return_reconstruction=None, **kwargs):
        forward = {} if return_reconstruction is None else {"return_reconstruction": return_reconstruction}
        return {}, forward, {}

    def preprocess(self, item) -> dict:
        return {"pixel_values": self._processor()(item, return_tensors="pt")["pixel_values"]}

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        dataloader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=_concatenate_pixels)
        model_iterator = PipelineIterator(dataloader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

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


class ImageTokenizationPipeline(_VisualTokenizationPipeline):
    """Image(s) -> spatial token ids and words (and the reconstruction on request) with `SweetTokenizerModel`.

    Example:
    ```python
    >>> tokenizer = pipeline("image-tokenization", model="path/to/sweet")
    >>> tokenizer(image)["spatial_words"][:5]
    ```
    """

    _load_image_processor = True
    _load_video_processor = False

    def _processor(self):
        return self.image_processor


class VideoTokenizationPipeline(_VisualTokenizationPipeline):
    """Clip(s) of `num_frames` frames -> spatial and temporal token ids and words (and the reconstruction)."""

    _load_image_processor = False
    _load_video_processor = True

    def _processor(self):
        return self.video_processor


__all__ = ["ImageTokenizationPipeline", "VideoTokenizationPipeline"]
