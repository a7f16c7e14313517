"""Pipelines: `molecular-property-prediction` and `molecular-feature-extraction`.

Inputs are one SMILES, a list of SMILES, or an iterable of them (a generator, a `datasets` column): a list gives a
list of outputs, one per input, in order; a generator or dataset gives an iterator that streams them (as transformers'
`Pipeline.__call__`). Molecules are featurized in `preprocess` and collated into one graph batch per `batch_size`
molecules (graphs cannot be padded like text, so `get_iterator` uses the graph collator instead of the default padding
collator). Each molecule is featurized with its position in the input, so an error names the user's item
(`SMILES #2 ...`) whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sized
from types import GeneratorType

import torch
from torch.utils.data import DataLoader, Dataset
from transformers import Pipeline
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator
from transformers.utils import logging

from .modeling_hsanet import resolve_problem_type
from .processing_hsanet import collate_graphs

logger = logging.get_logger(__name__)


def _concatenate_graph_lists(items: list[dict]) -> dict:
    return {"graphs": [graph for item in items for graph in item["graphs"]]}


class _NumberedInputs(Dataset):
    """A sized input seen as `(index, item)` pairs, so `preprocess` knows each item's position in the user's input."""

    def __init__(self, inputs: Sized):
        self.inputs = inputs

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[int, object]:
        return index, self.inputs[index]


class _MolecularPipeline(Pipeline):
    """Shared plumbing: SMILES -> graphs (preprocess) -> one collated batch per forward."""

    _load_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # `Pipeline.__init__` copies `processor.tokenizer` here; HSA-Net's is a `NoTextTokenizer` (a note for Trainer),
        # not a tokenizer to save or pad with.
        self.tokenizer = None

    def __call__(self, inputs, **kwargs):
        # transformers' Pipeline reads only a list, a generator or a torch Dataset as several inputs; anything else
        # would be one input. A tuple or a `datasets` column becomes a list, an iterator (iter(), map()) a generator.
        if not isinstance(inputs, (str, list, Dataset, GeneratorType)) and isinstance(inputs, Iterable):
            inputs = list(inputs) if isinstance(inputs, Sized) else (item for item in inputs)
        if isinstance(inputs, list) and len(inputs) == 0:
            raise ValueError("expected at least one SMILES string, got an empty list")
        return super().__call__(inputs, **kwargs)

    def preprocess(self, smiles: str, index: int = 0) -> dict:
        """One molecule -> its graph; `index` is the molecule's position in the user's input (named in errors)."""
        if not isinstance(smiles, str):
            raise TypeError(f"SMILES #{index} is a {type(smiles).__name__} ({smiles!r}); expected a SMILES string")
        return {"graphs": [self.processor.feature_extractor.featurize_one(smiles, index=index)]}

    def _preprocess_numbered(self, numbered: tuple[int, str], **preprocess_params) -> dict:
        index, smiles = numbered
        return self.preprocess(smiles, index=index, **preprocess_params)

    def _model_inputs(self, model_inputs: dict) -> dict[str, torch.Tensor]:
        return {key: value.to(self.device) for key, value in collate_graphs(model_inputs["graphs"]).items()}

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        # As transformers' `Pipeline.get_iterator`: a sized input is indexed, anything else (a generator) is streamed.
        if isinstance(inputs, Sized):
            dataset = PipelineDataset(_NumberedInputs(inputs), self._preprocess_numbered, preprocess_params)
        else:
            if num_workers > 1:
                logger.warning("an iterable input is read by one DataLoader worker (several would each read all of "
                               f"it); setting num_workers=1 instead of {num_workers}")
                num_workers = 1
            dataset = PipelineIterator(enumerate(inputs), self._preprocess_numbered, preprocess_params)
        dataloader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size,
                                collate_fn=_concatenate_graph_lists)
        model_iterator = PipelineIterator(dataloader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)


class MolecularPropertyPredictionPipeline(_MolecularPipeline):
    """SMILES -> predicted properties with `HSANetForMolecularPropertyPrediction`.

    Per molecule: regression gives `{"label", "score"}` (a list of them for several targets); single-label
    classification gives the `top_k` (default 1) most likely classes; multi-label gives every label's probability.

    Example:
    ```python
    >>> predictor = pipeline("molecular-property-prediction", model="path/to/hsanet")
    >>> predictor(["CCO", "c1ccccc1O"], batch_size=32)
    ```
    """

    def _sanitize_parameters(self, top_k=None, **kwargs):
        return {}, {}, ({"top_k": top_k} if top_k is not None else {})

    def _forward(self, model_inputs: dict) -> dict:
        return {"logits": self.model(**self._model_inputs(model_inputs)).logits}

    def postprocess(self, model_outputs: dict, top_k: int = 1):
        logits = model_outputs["logits"][0].float()
        config = self.model.config
        problem_type = resolve_problem_type(config)  # the model's rule; training wrote its decision to the config
        labels = [config.id2label[i] for i in range(config.num_labels)]
        if problem_type == "single_label_classification":
            probabilities = logits.softmax(-1)
            order = probabilities.argsort(descending=True)[:top_k]
            results = [{"label": labels[i], "score": probabilities[i].item()} for i in order]
            return results[0] if top_k == 1 else results
        scores = logits.sigmoid() if problem_type == "multi_label_classification" else logits
        results = [{"label": label, "score": score.item()} for label, score in zip(labels, scores)]
        return results[0] if len(results) == 1 else results


class MolecularFeatureExtractionPipeline(_MolecularPipeline):
    """SMILES -> molecule embedding (`HSANetModel`'s pooled output), as a list of floats or, with
    `return_tensors=True`, a tensor of shape `(hidden,)`; `return_tokens=True` adds the fused tokens
    `(num_tokens, hidden)`."""

    def _sanitize_parameters(self, return_tensors=None, return_tokens=None, **kwargs):
        postprocess = {}
        if return_tensors is not None:
            postprocess["return_tensors"] = return_tensors
        if return_tokens is not None:
            postprocess["return_tokens"] = return_tokens
        return {}, {}, postprocess

    def _forward(self, model_inputs: dict) -> dict:
        model = getattr(self.model, "hsanet", self.model)  # a property-prediction checkpoint embeds too
        outputs = model(**self._model_inputs(model_inputs))
        return {"embedding": outputs.pooler_output, "tokens": outputs.last_hidden_state}

    def postprocess(self, model_outputs: dict, return_tensors: bool = False, return_tokens: bool = False):
        embedding, tokens = model_outputs["embedding"][0], model_outputs["tokens"][0]
        result = {"embedding": embedding if return_tensors else embedding.tolist()}
        if return_tokens:
            result["tokens"] = tokens if return_tensors else tokens.tolist()
        return result


__all__ = ["MolecularPropertyPredictionPipeline", "MolecularFeatureExtractionPipeline"]
