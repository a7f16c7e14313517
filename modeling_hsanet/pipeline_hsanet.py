"""Pipelines: `molecular-property-prediction`, `molecular-feature-extraction` and `molecule-captioning`.

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


def _concatenate_lists(items: list[dict]) -> dict:
    """Per-item dicts of lists (graphs, prompt tokens) -> one dict of the concatenated lists."""
    return {key: [value for item in items for value in item[key]] for key in items[0]}


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
        if not isinstance(inputs, (str, dict, list, Dataset, GeneratorType)) and isinstance(inputs, Iterable):
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
                                collate_fn=_concatenate_lists)
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


class MoleculeCaptioningPipeline(_MolecularPipeline):
    """SMILES (+ an optional instruction) -> generated text with `HSANetForConditionalGeneration`: captioning,
    naming, question answering.

    An input is a SMILES string (the processor's `default_instruction` is used) or a dict `{"smiles": ...,
    "instruction": ...}`; a list gives a list of `{"generated_text": ...}` in order, a generator or a dataset (e.g.
    `KeyDataset`) streams them. `instruction=` sets one instruction for every SMILES. Generation keyword arguments
    (`max_new_tokens`, `num_beams`, `do_sample`, ...) are passed to `generate`, directly or as `generate_kwargs`.
    Prompts are left-padded per batch, so batching does not change greedy outputs.

    Example:
    ```python
    >>> captioner = pipeline("molecule-captioning", model="path/to/hsanet-captioner")
    >>> captioner(["CCO", {"smiles": "c1ccccc1O", "instruction": "Name this molecule."}], max_new_tokens=64)
    ```
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.processor.has_text:
            raise ValueError("molecule-captioning needs an HSANetProcessor with the language model's tokenizer "
                             "(HSANetProcessor(tokenizer=..., num_graph_tokens=...)) saved with the model")
        self.tokenizer = self.processor.tokenizer

    def _sanitize_parameters(self, instruction=None, generate_kwargs=None, **kwargs):
        preprocess = {"instruction": instruction} if instruction is not None else {}
        forward = {"generate_kwargs": {**(generate_kwargs or {}), **kwargs}}
        return preprocess, forward, {}

    def preprocess(self, item, index: int = 0, instruction: str | None = None) -> dict:
        if isinstance(item, dict):
            if "smiles" not in item:
                raise KeyError(f"input #{index} has no 'smiles' key (keys: {sorted(item)})")
            smiles, instruction = item["smiles"], item.get("instruction", instruction)
        else:
            smiles = item
        if not isinstance(smiles, str):
            raise TypeError(f"SMILES #{index} is a {type(smiles).__name__} ({smiles!r}); expected a SMILES string")
        processor = self.processor
        tokens, _ = processor.prompt_token_ids(smiles, instruction or processor.default_instruction, index=index)
        return {"graphs": [processor.feature_extractor.featurize_one(smiles, index=index)], "prompts": [tokens]}

    def _forward(self, model_inputs: dict, generate_kwargs: dict | None = None) -> dict:
        inputs = self._model_inputs(model_inputs)
        text = self.processor.pad(model_inputs["prompts"], padding_side="left")
        inputs.update({key: value.to(self.device) for key, value in text.items()})
        generated = self.model.generate(**inputs, **(generate_kwargs or {}))
        return {"generated_ids": generated[:, inputs["input_ids"].shape[1]:]}

    def postprocess(self, model_outputs: dict) -> dict:
        ids = model_outputs["generated_ids"][0]
        return {"generated_text": self.processor.decode(ids, skip_special_tokens=True).strip()}


__all__ = ["MolecularPropertyPredictionPipeline", "MolecularFeatureExtractionPipeline", "MoleculeCaptioningPipeline"]
