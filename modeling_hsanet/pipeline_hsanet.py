"""Pipelines: `molecular-property-prediction`, `molecular-feature-extraction` and `molecule-captioning`.

Inputs are one SMILES, a list of SMILES, or an iterable of them (a generator, a `datasets` column): a list gives a
list of outputs, one per input, in order; a generator or dataset gives an iterator that streams them (as transformers'
`Pipeline.__call__`). `preprocess` checks each input and numbers it by its position in the input; the collator
(`collate_items`) featurizes the `batch_size` molecules of a batch together (`HSANetFeatureExtractor.featurize`, one
stacked pass instead of one per molecule) and collates them into one graph batch (graphs cannot be padded like text,
so `get_iterator` uses the graph collator instead of the default padding collator). An error names the user's item
(`SMILES #2 ...`) whatever the batch size.

Feeding an accelerator: `num_workers=N` featurizes and collates in N DataLoader worker processes (transformers'
`get_iterator`) while the model runs; what a worker runs holds the processor only, not the model, so it also pickles
small under the `spawn` start method. `bucket_by_size` (on by default for a list input with `batch_size > 1`) sorts
the molecules by their atom count, read off the SMILES, into batches, largest first, within windows of
`BUCKET_WINDOW_BATCHES` batches, so a batch pads its molecules to a similar size; results still come back in input
order. The model's outputs do not depend on which molecules share a batch (tested), so bucketing changes only speed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence, Sized
from functools import partial
from types import GeneratorType

import torch
from torch.utils.data import DataLoader, Dataset
from transformers import Pipeline
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator
from transformers.utils import logging

from .modeling_hsanet import resolve_problem_type
from .processing_hsanet import GRAPH_KEYS, collate_graphs
from .remote_code_hsanet import keep_only_its_task

logger = logging.get_logger(__name__)


# Bucketing sorts within windows of this many batches (transformers' `LengthGroupedSampler` sorts 50 at a time), so a
# streamed input holds at most one window of results back to return them in input order.
BUCKET_WINDOW_BATCHES = 64
# Atoms as written in a SMILES: a bracket atom, a two-letter or one-letter organic-subset element (aromatic lowercase
# too) or the `*` wildcard. A size estimate for bucketing at a few microseconds per molecule, without parsing.
_SMILES_ATOM = re.compile(r"\[[^\]]*\]|Br|Cl|[BCNOPSFI*]|[bcnops]")


def estimated_atoms(item) -> int:
    """Atoms written in a SMILES (or in a `{"smiles": ...}` input); 0 for anything else, which `preprocess` rejects
    with an error naming the item."""
    smiles = item.get("smiles") if isinstance(item, dict) else item
    return len(_SMILES_ATOM.findall(smiles)) if isinstance(smiles, str) else 0


def size_sorted_order(sizes: Sequence[int], batch_size: int, window_batches: int = BUCKET_WINDOW_BATCHES) -> list[int]:
    """Input positions in bucketed order: within each window of `batch_size * window_batches` consecutive inputs,
    largest first (stable), so each batch of `batch_size` holds molecules of similar size."""
    window = batch_size * window_batches
    return [index for start in range(0, len(sizes), window)
            for index in sorted(range(start, min(start + window, len(sizes))), key=lambda i: -sizes[i])]


def _in_input_order(results: Iterable, order: list[int], window: int) -> Iterator:
    """Results computed in `order` (`size_sorted_order`) -> the same results in input order, a window at a time."""
    results = iter(results)
    for start in range(0, len(order), window):
        positions = order[start:start + window]
        buffer = [None] * len(positions)
        for position in positions:
            buffer[position - start] = next(results)
        yield from buffer


def collate_items(processor, items: list[dict]) -> dict[str, torch.Tensor]:
    """Checked items (`featurize_item`) -> one model batch: their molecules featurized together and collated and, for
    captioning, the prompts left-padded. Runs in the DataLoader's workers when `num_workers > 0`."""
    batch = collate_graphs(processor.feature_extractor.featurize([item["smiles"] for item in items],
                                                                 indices=[item["index"] for item in items]))
    if "prompt" in items[0]:
        batch.update(processor.pad([item["prompt"] for item in items], padding_side="left"))
    return batch


def _featurize_numbered(featurize_item, processor, numbered: tuple[int, object], **params) -> dict:
    """What a DataLoader worker runs for one `(index, item)`: module-level, with the processor as its only state."""
    index, item = numbered
    return featurize_item(processor, item, index=index, **params)


class _NumberedInputs(Dataset):
    """A sized input seen as `(index, item)` pairs, so `preprocess` knows each item's position in the user's input;
    `order` (positions of the input) reads it in another order, e.g. bucketed by size."""

    def __init__(self, inputs: Sized, order: Sequence[int] | None = None):
        self.inputs = inputs
        self.order = order

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, position: int) -> tuple[int, object]:
        index = position if self.order is None else self.order[position]
        return index, self.inputs[index]


class _MolecularPipeline(Pipeline):
    """Shared plumbing: SMILES -> graphs (preprocess) -> one collated batch per forward."""

    _load_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False

    def __init__(self, *args, bucket_by_size: bool | None = None, **kwargs):
        self._bucket_by_size = self._check_bucket_by_size(bucket_by_size)
        self._bucket_now = bucket_by_size
        super().__init__(*args, **kwargs)
        # `Pipeline.__init__` copies `processor.tokenizer` here; HSA-Net's is a `NoTextTokenizer` (a note for Trainer),
        # not a tokenizer to save or pad with.
        self.tokenizer = None

    def save_pretrained(self, save_directory, **kwargs):
        """`Pipeline.save_pretrained` (the model, the pipeline's code, `custom_pipelines` naming this task only:
        `keep_only_its_task`), plus the `HSANetProcessor` with its tokenizer when it has one:
        `Pipeline.save_pretrained` saves only the feature extractor, which `AutoProcessor` cannot load as a
        processor."""
        super().save_pretrained(save_directory, **kwargs)
        keep_only_its_task(self, save_directory)
        self.processor.save_pretrained(save_directory, **kwargs)

    @staticmethod
    def _check_bucket_by_size(value):
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"bucket_by_size must be True, False or None (on for a list with batch_size > 1), got "
                             f"{value!r}")
        return value

    def __call__(self, inputs, bucket_by_size: bool | None = None, **kwargs):
        """`bucket_by_size`: sort molecules by size into batches (see the module docstring); the default, None, is
        the pipeline's setting, or else on for a list (tuple, column) with `batch_size > 1`. Results are in input
        order either way."""
        self._bucket_now = self._check_bucket_by_size(bucket_by_size)
        if self._bucket_now is None:
            self._bucket_now = self._bucket_by_size
        # transformers' Pipeline reads only a list, a generator or a torch Dataset as several inputs; anything else
        # would be one input. A tuple or a `datasets` column becomes a list, an iterator (iter(), map()) a generator.
        if not isinstance(inputs, (str, dict, list, Dataset, GeneratorType)) and isinstance(inputs, Iterable):
            inputs = list(inputs) if isinstance(inputs, Sized) else (item for item in inputs)
        if isinstance(inputs, list) and len(inputs) == 0:
            raise ValueError("expected at least one SMILES string, got an empty list")
        return super().__call__(inputs, **kwargs)

    @staticmethod
    def featurize_item(processor, smiles: str, index: int = 0) -> dict:
        """One input -> its SMILES and `index`, its position in the user's input (named in errors; `collate_items`
        featurizes the batch). A static method of the processor alone, so DataLoader workers run it without the
        model."""
        if not isinstance(smiles, str):
            raise TypeError(f"SMILES #{index} is a {type(smiles).__name__} ({smiles!r}); expected a SMILES string")
        return {"smiles": smiles, "index": index}

    def preprocess(self, item, index: int = 0, **preprocess_params) -> dict:
        return self.featurize_item(self.processor, item, index=index, **preprocess_params)

    def run_single(self, inputs, preprocess_params, forward_params, postprocess_params):
        model_inputs = collate_items(self.processor, [self.preprocess(inputs, **preprocess_params)])
        return self.postprocess(self.forward(model_inputs, **forward_params), **postprocess_params)

    @staticmethod
    def _model_inputs(model_inputs: dict) -> dict[str, torch.Tensor]:
        """The graph tensors of a collated batch (already on the device: `Pipeline.forward` moves them)."""
        return {key: model_inputs[key] for key in GRAPH_KEYS}

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        # As transformers' `Pipeline.get_iterator`: a sized input is indexed, anything else (a generator) is streamed.
        # Workers get module-level functions of the processor (`_featurize_numbered`, `collate_items`), not the model.
        process = partial(_featurize_numbered, type(self).featurize_item, self.processor)
        order = None
        if isinstance(inputs, Sized):
            bucket = self._bucket_now if self._bucket_now is not None else isinstance(inputs, list)
            if bucket and batch_size > 1:
                order = size_sorted_order([estimated_atoms(item) for item in inputs], batch_size)
            dataset = PipelineDataset(_NumberedInputs(inputs, order), process, preprocess_params)
        else:
            if num_workers > 1:
                logger.warning("an iterable input is read by one DataLoader worker (several would each read all of "
                               f"it); setting num_workers=1 instead of {num_workers}")
                num_workers = 1
            dataset = PipelineIterator(enumerate(inputs), process, preprocess_params)
        dataloader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size,
                                collate_fn=partial(collate_items, self.processor))
        model_iterator = PipelineIterator(dataloader, self.forward, forward_params, loader_batch_size=batch_size)
        results = PipelineIterator(model_iterator, self.postprocess, postprocess_params)
        return results if order is None else _in_input_order(results, order, batch_size * BUCKET_WINDOW_BATCHES)


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

    @staticmethod
    def featurize_item(processor, item, index: int = 0, instruction: str | None = None) -> dict:
        """One input (a SMILES or `{"smiles", "instruction"}`) -> its SMILES, index and prompt tokens."""
        if isinstance(item, dict):
            if "smiles" not in item:
                raise KeyError(f"input #{index} has no 'smiles' key (keys: {sorted(item)})")
            smiles, instruction = item["smiles"], item.get("instruction", instruction)
        else:
            smiles = item
        if not isinstance(smiles, str):
            raise TypeError(f"SMILES #{index} is a {type(smiles).__name__} ({smiles!r}); expected a SMILES string")
        tokens, _ = processor.prompt_token_ids(smiles, instruction or processor.default_instruction, index=index)
        return {"smiles": smiles, "index": index, "prompt": tokens}

    def _forward(self, model_inputs: dict, generate_kwargs: dict | None = None) -> dict:
        inputs = self._model_inputs(model_inputs)
        inputs.update(input_ids=model_inputs["input_ids"], attention_mask=model_inputs["attention_mask"])
        generated = self.model.generate(**inputs, **(generate_kwargs or {}))
        return {"generated_ids": generated[:, inputs["input_ids"].shape[1]:]}

    def postprocess(self, model_outputs: dict) -> dict:
        ids = model_outputs["generated_ids"][0]
        return {"generated_text": self.processor.decode(ids, skip_special_tokens=True).strip()}


__all__ = ["MolecularPropertyPredictionPipeline", "MolecularFeatureExtractionPipeline", "MoleculeCaptioningPipeline"]
