"""HSA-Net processing: a feature extractor (SMILES -> batched graph tensors) and the processor that wraps it.

The batch is a flat dict of tensors (what `Trainer`, accelerate and pipelines handle best):

    atom_features (num_atoms_total, 9) · edge_index (2, num_edges_total) · bond_features (num_edges_total, 3)
    num_atoms (batch,) · structure_rank / distance_to_previous / distance_to_next (num_atoms_total,)
    motif_counts (batch, 85) · labels (batch,) or (batch, num_labels) when given
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch, Data
from transformers import BatchFeature, FeatureExtractionMixin, ProcessorMixin

from .configuration_hsanet import MAX_NUM_GRAPH_TOKENS, UPPER_BOUNDS
from .featurization_hsanet import (
    DEFAULT_MAX_ATOMS,
    DEFAULT_MAX_SMILES_LENGTH,
    FEATURE_SCHEMES,
    MolecularGraph,
    smiles_batch_to_graphs,
    smiles_to_graph,
)
from .hub_hsanet import push_to_hub_with_model_card

GRAPH_KEYS = ("atom_features", "edge_index", "bond_features", "num_atoms", "structure_rank",
              "distance_to_previous", "distance_to_next", "motif_counts")
# Upper bounds of HSANetFeatureExtractor's settings, so that a hostile `preprocessor_config.json` cannot switch the
# input limits off: 50x the default max_atoms (featurizing a 20,000-atom chain already takes ~15 s), 10 characters
# per atom, and the model's own bound on max_scan_distance (configuration_hsanet.UPPER_BOUNDS).
FEATURE_EXTRACTOR_UPPER_BOUNDS = {
    "max_atoms": 1_000_000,
    "max_smiles_length": 10_000_000,
    "max_scan_distance": UPPER_BOUNDS["max_scan_distance"],
}
# The per-molecule arrays `featurize_dataset` writes as dataset columns (beside `num_atoms`, the atom count) and
# `collate_graphs` reads; `MolecularGraph.fragment_ids` is not a model input and is not stored.
GRAPH_COLUMNS = ("atom_features", "edge_index", "bond_features", "structure_rank", "distance_to_previous",
                 "distance_to_next", "motif_counts")


def _graph_array(value, dtype) -> np.ndarray:
    """A graph column's value (NumPy array, nested list as `datasets` returns it, or tensor) -> an array of `dtype`."""
    if isinstance(value, torch.Tensor):
        value = value.numpy()
    if isinstance(value, np.ndarray) and value.dtype == object:  # `datasets`' NumPy format for ragged rows
        value = [np.asarray(row) for row in value]
    return np.asarray(value, dtype=dtype)


def collate_graphs(graphs: Sequence[MolecularGraph | dict], feature_scheme: str = "ogb") -> dict[str, torch.Tensor]:
    """Stack molecules into one flat batch, each molecule's `edge_index` offset by the atoms before it: the tensors of
    torch_geometric's `Batch.from_data_list` (`collate_graphs_with_pyg`), concatenated with NumPy.

    A molecule is a `MolecularGraph` or a row with the `GRAPH_COLUMNS` (what `HSANetProcessor.featurize_dataset`
    writes), so pre-featurized rows batch exactly like graphs featurized on the fly; `feature_scheme` gives a row's
    bond feature width (a molecule without bonds stores an empty list)."""
    molecules = [_graph_arrays(g, feature_scheme) for g in graphs]
    if not molecules:
        raise ValueError("cannot collate an empty list of graphs")
    num_atoms = np.array([arrays["atom_features"].shape[0] for arrays in molecules], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(num_atoms)[:-1]])
    batch = {name: torch.from_numpy(np.concatenate([arrays[name] for arrays in molecules]))
             for name in ("atom_features", "bond_features", "structure_rank", "distance_to_previous",
                          "distance_to_next")}
    return {
        "atom_features": batch["atom_features"],
        "edge_index": torch.from_numpy(np.concatenate(
            [arrays["edge_index"] + offset for arrays, offset in zip(molecules, offsets.tolist())], axis=1)),
        "bond_features": batch["bond_features"],
        "num_atoms": torch.from_numpy(num_atoms),
        "structure_rank": batch["structure_rank"],
        "distance_to_previous": batch["distance_to_previous"],
        "distance_to_next": batch["distance_to_next"],
        "motif_counts": torch.from_numpy(np.stack([arrays["motif_counts"] for arrays in molecules])),
    }


def _graph_arrays(g: MolecularGraph | dict, feature_scheme: str) -> dict[str, np.ndarray]:
    """One molecule's `GRAPH_COLUMNS` as arrays of the batch's dtypes and shapes."""
    if not isinstance(g, Mapping):  # a `MolecularGraph` (of this module or of a remote-code copy of it)
        return {name: getattr(g, name) for name in GRAPH_COLUMNS}
    arrays = {name: _graph_array(g[name], np.float32 if name == "motif_counts" else np.int64)
              for name in GRAPH_COLUMNS}
    arrays["atom_features"] = arrays["atom_features"].reshape(arrays["structure_rank"].shape[0], -1)
    arrays["edge_index"] = arrays["edge_index"].reshape(2, -1)
    arrays["bond_features"] = arrays["bond_features"].reshape(
        -1, len(FEATURE_SCHEMES[feature_scheme].bond_vocabulary_sizes))
    return arrays


def collate_graphs_with_pyg(graphs: Sequence[MolecularGraph | dict],
                            feature_scheme: str = "ogb") -> dict[str, torch.Tensor]:
    """`collate_graphs` through torch_geometric's `Batch.from_data_list` (the reference it is tested against)."""
    data = []
    for g in graphs:
        arrays = _graph_arrays(g, feature_scheme)
        data.append(Data(
            x=torch.from_numpy(arrays["atom_features"]),
            edge_index=torch.from_numpy(arrays["edge_index"]),
            edge_attr=torch.from_numpy(arrays["bond_features"]),
            structure_rank=torch.from_numpy(arrays["structure_rank"]),
            distance_to_previous=torch.from_numpy(arrays["distance_to_previous"]),
            distance_to_next=torch.from_numpy(arrays["distance_to_next"]),
            motif_counts=torch.from_numpy(arrays["motif_counts"]).unsqueeze(0),
            num_nodes=arrays["atom_features"].shape[0],
        ))
    batch = Batch.from_data_list(data)
    return {
        "atom_features": batch.x,
        "edge_index": batch.edge_index,
        "bond_features": batch.edge_attr,
        "num_atoms": batch.ptr.diff(),
        "structure_rank": batch.structure_rank,
        "distance_to_previous": batch.distance_to_previous,
        "distance_to_next": batch.distance_to_next,
        "motif_counts": batch.motif_counts,
    }


def labels_to_tensor(labels: Sequence[Any]) -> torch.Tensor:
    """Labels of a batch -> tensor: all ints -> long (class ids); otherwise float32, `None` read as NaN (missing).

    Each label is a number or a list of numbers (multi-task). Returns (batch,) or (batch, num_labels).
    """
    if all(isinstance(label, (int, np.integer)) and not isinstance(label, bool) for label in labels):
        return torch.tensor(labels, dtype=torch.long)
    try:
        rows = [[np.nan if v is None else v for v in np.atleast_1d(np.asarray(label, dtype=object))]
                for label in labels]
        values = np.array(rows, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"labels must be numbers, or lists of numbers of equal length: {error}") from None
    return torch.from_numpy(values[:, 0] if values.shape[1] == 1 else values)


class HSANetFeatureExtractor(FeatureExtractionMixin):
    r"""
    Turns SMILES into the flat graph batch `HSANetModel` reads. Settings are saved in `preprocessor_config.json`.

    Args:
        feature_scheme (`str`, *optional*, defaults to `"ogb"`): atom/bond feature scheme.
        max_scan_distance (`int`, *optional*, defaults to 8): clip of graph distances between consecutive atoms of
            the structure-aware order (match the model's `max_scan_distance`).
        max_atoms (`int`, *optional*, defaults to 20,000): most atoms a molecule may have, counted as written in the
            SMILES (explicit hydrogens included) before any expensive RDKit work; a larger one raises a `ValueError`
            naming the item. 20,000 holds every drug-like molecule and peptide and 10k-atom polymers. Memory grows
            about linearly with the atoms; time is dominated at that size by RDKit's canonical ranking, which grows
            with atoms x graph diameter: a 20,000-atom chain takes about 15 s (`benchmarks/bench_featurization.py`).
        max_smiles_length (`int`, *optional*, defaults to 200,000): most characters a SMILES may have (checked first,
            at no cost); 10 characters per atom of `max_atoms`.
    """

    model_input_names = list(GRAPH_KEYS)

    def __init__(
        self,
        feature_scheme: str = "ogb",
        max_scan_distance: int = 8,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        max_smiles_length: int = DEFAULT_MAX_SMILES_LENGTH,
        **kwargs,
    ):
        if not isinstance(feature_scheme, str) or feature_scheme not in FEATURE_SCHEMES:
            raise ValueError(f"feature_scheme must be one of {sorted(FEATURE_SCHEMES)}, got {feature_scheme!r}")
        for name, value in (("max_scan_distance", max_scan_distance), ("max_atoms", max_atoms),
                            ("max_smiles_length", max_smiles_length)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
            if value > FEATURE_EXTRACTOR_UPPER_BOUNDS[name]:
                raise ValueError(f"{name} must be at most {FEATURE_EXTRACTOR_UPPER_BOUNDS[name]:,} "
                                 f"(FEATURE_EXTRACTOR_UPPER_BOUNDS in processing_hsanet.py), got {value:,}")
        super().__init__(**kwargs)
        self.feature_scheme = feature_scheme
        self.max_scan_distance = max_scan_distance
        self.max_atoms = max_atoms
        self.max_smiles_length = max_smiles_length

    @property
    def _limits(self) -> dict[str, int]:
        return {"max_atoms": self.max_atoms, "max_smiles_length": self.max_smiles_length}

    def featurize(self, smiles: str | Sequence[str], indices: Sequence[int] | None = None) -> list[MolecularGraph]:
        """One SMILES or a list -> one graph per molecule, featurized together (`smiles_batch_to_graphs`); errors
        name the item by its position in `smiles`, or by `indices[position]` (its position in the caller's input)."""
        return smiles_batch_to_graphs(smiles, self.feature_scheme, self.max_scan_distance, indices=indices,
                                      **self._limits)

    def featurize_one(self, smiles: str, index: int = 0) -> MolecularGraph:
        """One SMILES -> its graph; `index` is the molecule's position in the caller's input, named in errors (a
        pipeline featurizes item by item)."""
        return smiles_to_graph(smiles, self.feature_scheme, self.max_scan_distance, index=index, **self._limits)

    def __call__(self, smiles: str | Sequence[str], labels=None, return_tensors: str = "pt", **kwargs) -> BatchFeature:
        """SMILES (one or a list) and optional labels -> `BatchFeature` of the tensors in the module docstring."""
        if return_tensors not in ("pt", None):
            raise ValueError(f"only return_tensors='pt' is supported, got {return_tensors!r}")
        data = collate_graphs(self.featurize(smiles))
        if labels is not None:
            labels = [labels] if isinstance(smiles, str) else list(labels)
            if len(labels) != data["num_atoms"].shape[0]:
                raise ValueError(f"got {data['num_atoms'].shape[0]} SMILES but {len(labels)} labels")
            data["labels"] = labels_to_tensor(labels)
        return BatchFeature(data)


def _featurize_rows(feature_extractor: HSANetFeatureExtractor, smiles_column: str, rows: dict,
                    indices: list[int]) -> dict[str, list]:
    """`datasets.map` function of `HSANetProcessor.featurize_dataset`: a batch of rows -> their graph columns.
    Module-level (with the feature extractor as its only state) so it pickles to `num_proc` workers and hashes to the
    same cache fingerprint in every session."""
    graphs = feature_extractor.featurize(rows[smiles_column], indices=indices)
    columns = {name: [getattr(graph, name) for graph in graphs] for name in GRAPH_COLUMNS}
    columns["num_atoms"] = [graph.num_atoms for graph in graphs]
    return columns


class NoTextTokenizer:
    """`HSANetProcessor.tokenizer` when the processor has no text side (property prediction, feature extraction):
    no BOS/EOS/PAD ids.

    `Trainer` reads `processing_class.tokenizer.{bos,eos,pad}_token_id` from every `ProcessorMixin` to align the model
    config with the tokenizer (`transformers.trainer_utils.align_special_tokens`); `None` ids tell it that there is
    nothing to align, so the config is left as it is. Nothing of it is saved. The molecular pipelines drop it again
    (`pipeline_hsanet`).
    """

    bos_token_id = None
    eos_token_id = None
    pad_token_id = None
    init_kwargs: dict = {}

    def _set_processor_class(self, processor_class: str) -> None:
        pass

    def save_pretrained(self, save_directory, **kwargs) -> tuple:
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def special_token_id(tokenizer, name: str) -> int | None:
    """A tokenizer's `bos_token_id` / `eos_token_id` / `pad_token_id`, with BERT's CLS / SEP standing in for BOS / EOS
    (a BERT warm-started as a decoder): the one rule for the prompts and the generation config."""
    token_id = getattr(tokenizer, name, None)
    fallback = {"bos_token_id": "cls_token_id", "eos_token_id": "sep_token_id"}.get(name)
    return token_id if token_id is not None or fallback is None else getattr(tokenizer, fallback, None)


DEFAULT_GRAPH_TOKEN = "<graph>"
DEFAULT_PROMPT_TEMPLATE = "SMILES: {smiles}. Graph: <graph>. {instruction}"
DEFAULT_INSTRUCTION = "Describe this molecule."


class HSANetProcessor(ProcessorMixin):
    r"""
    HSA-Net processor: `HSANetFeatureExtractor` (molecules) and, for molecule-to-text, the language model's tokenizer.

    **Without a tokenizer** (property prediction, feature extraction) `processor(smiles, labels=None)` returns the
    graph batch and `processor.tokenizer` is a `NoTextTokenizer`.

    **With a tokenizer** (`HSANetForConditionalGeneration`) `processor(smiles, text=instructions, targets=None)`
    also writes one prompt per molecule, `prompt_template` filled with the SMILES and the instruction (or, when the
    tokenizer has a chat template, that prompt as the user turn of `apply_chat_template(..., add_generation_prompt=
    True)`), in which the single `graph_token` is expanded to `num_graph_tokens` placeholders, the model's
    `config.num_graph_tokens`. The prompt starts with the tokenizer's BOS (BERT: CLS). With `targets` (training) each
    target follows its prompt, ended by EOS (BERT: SEP), and `labels` copy the target tokens with -100 on the prompt,
    the placeholders and the padding. Padding is on `padding_side` (default left, what batched generation needs;
    positions are counted over attended tokens, so training is unaffected). `graph_token` is added to the tokenizer
    when missing (resize the model's embeddings, or build it with
    `HSANetForConditionalGeneration.from_graph_text_pretrained`, which does).

    `processor.collate(rows)` is a data collator for `Trainer` over rows like `{"smiles", "labels"}` or, with a
    tokenizer, `{"smiles", "instruction", "text"}` (e.g. a `datasets.Dataset`). Pass it to `Trainer` as
    `processing_class=processor, data_collator=processor.collate`: `Trainer.save_model` then saves it beside the model.
    `processor.featurize_dataset(dataset, num_proc=N)` featurizes a dataset once, in N processes, for that collator.

    Args:
        feature_extractor (`HSANetFeatureExtractor`, *optional*): defaults to `HSANetFeatureExtractor()`.
        tokenizer (`PreTrainedTokenizerBase`, *optional*): the language model's tokenizer.
        num_graph_tokens (`int`, *optional*): placeholders per molecule; required with a tokenizer.
        graph_token (`str`, *optional*, defaults to `"<graph>"`): the placeholder token.
        prompt_template (`str`, *optional*): `graph_token` once, and the fields `{smiles}` and `{instruction}`
            (default `"SMILES: {smiles}. Graph: <graph>. {instruction}"`, the paper's SMILES + graph + instruction).
        default_instruction (`str`, *optional*, defaults to `"Describe this molecule."`): used when `text` is not
            given.
        padding_side (`str`, *optional*, defaults to `"left"`).
        use_chat_template (`bool`, *optional*): wrap prompts with the tokenizer's chat template; defaults to whether
            it has one.
    """

    def __init__(
        self,
        feature_extractor: HSANetFeatureExtractor | None = None,
        tokenizer=None,
        num_graph_tokens: int | None = None,
        graph_token: str = DEFAULT_GRAPH_TOKEN,
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        default_instruction: str = DEFAULT_INSTRUCTION,
        padding_side: str = "left",
        use_chat_template: bool | None = None,
        **kwargs,
    ):
        super().__init__(feature_extractor or HSANetFeatureExtractor(), tokenizer or NoTextTokenizer(), **kwargs)
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if prompt_template.count(graph_token) != 1:
            raise ValueError(f"prompt_template must hold the graph token {graph_token!r} once (and may hold "
                             f"{{smiles}} and {{instruction}}), got {prompt_template!r}")
        self.num_graph_tokens = num_graph_tokens
        self.graph_token = graph_token
        self.prompt_template = prompt_template
        self.default_instruction = default_instruction
        self.padding_side = padding_side
        self.use_chat_template = use_chat_template
        if self.has_text:
            if not isinstance(num_graph_tokens, int) or isinstance(num_graph_tokens, bool) or num_graph_tokens < 1:
                raise ValueError("a processor with a tokenizer needs num_graph_tokens, the model's "
                                 f"config.num_graph_tokens (an integer >= 1), got {num_graph_tokens!r}")
            if num_graph_tokens > MAX_NUM_GRAPH_TOKENS:
                raise ValueError(f"num_graph_tokens must be at most {MAX_NUM_GRAPH_TOKENS:,} (MAX_NUM_GRAPH_TOKENS in "
                                 f"configuration_hsanet.py), got {num_graph_tokens:,}")
            if graph_token not in self.tokenizer.get_vocab():
                self.tokenizer.add_special_tokens({"additional_special_tokens": [graph_token]})

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument_name == "tokenizer" and isinstance(argument, NoTextTokenizer):
            return NoTextTokenizer
        return super().check_argument_for_proper_class(argument_name, argument)

    def push_to_hub(self, repo_id: str, *, model_card=None, **kwargs):
        """`ProcessorMixin.push_to_hub` (same arguments) that uploads this repository's model card as `README.md`
        unless the repository has one from a model push or a person (`hub_hsanet.push_to_hub_with_model_card`)."""
        return push_to_hub_with_model_card(self, repo_id, model_card=model_card, **kwargs)

    @classmethod
    def _load_tokenizer_from_pretrained(cls, sub_processor_type, pretrained_model_name_or_path, subfolder="",
                                        **kwargs):
        """A folder without tokenizer files holds a processor without a text side."""
        from transformers.utils import cached_file

        found = cached_file(pretrained_model_name_or_path, "tokenizer_config.json", subfolder=subfolder,
                            _raise_exceptions_for_missing_entries=False,
                            **{k: v for k, v in kwargs.items() if k in ("cache_dir", "revision", "token",
                                                                         "local_files_only")})
        if found is None:
            return NoTextTokenizer()
        return super()._load_tokenizer_from_pretrained(sub_processor_type, pretrained_model_name_or_path,
                                                       subfolder=subfolder, **kwargs)

    @property
    def has_text(self) -> bool:
        """Whether the processor has a tokenizer (writes prompts for molecule-to-text)."""
        return not isinstance(self.tokenizer, NoTextTokenizer)

    @property
    def graph_token_id(self) -> int | None:
        return self.tokenizer.convert_tokens_to_ids(self.graph_token) if self.has_text else None

    def _special_id(self, name: str) -> int | None:
        return special_token_id(self.tokenizer, name)

    def __call__(
        self,
        smiles: str | Sequence[str],
        text: str | Sequence[str] | None = None,
        targets: str | Sequence[str] | None = None,
        labels=None,
        max_length: int | None = None,
        padding_side: str | None = None,
        return_tensors: str = "pt",
        **kwargs,
    ) -> BatchFeature:
        """SMILES (one or a list) -> graph batch; with a tokenizer also `input_ids`, `attention_mask` and, with
        `targets`, `labels` (see the class docstring). `text`: one instruction per molecule (or one for all).
        `max_length` truncates targets so that prompt + target fit (a prompt longer than it is an error)."""
        if not self.has_text:
            if text is not None or targets is not None:
                raise ValueError("this HSANetProcessor has no tokenizer, so it cannot write prompts: build it with "
                                 "HSANetProcessor(tokenizer=..., num_graph_tokens=...)")
            return self.feature_extractor(smiles, labels=labels, return_tensors=return_tensors, **kwargs)
        if labels is not None:
            raise ValueError("with a tokenizer the labels come from `targets` (texts); got property `labels` too")
        single = isinstance(smiles, str)
        smiles_list = [smiles] if single else list(smiles)
        instructions = self._per_item(text, len(smiles_list), "text", self.default_instruction)
        target_list = None if targets is None else self._per_item(targets, len(smiles_list), "targets", None)
        data = dict(self.feature_extractor(smiles_list, return_tensors=return_tensors))
        data.update(self.tokenize_prompts(smiles_list, instructions, target_list, max_length=max_length,
                                          padding_side=padding_side))
        return BatchFeature(data)

    @staticmethod
    def _per_item(values, count: int, name: str, default):
        if values is None:
            return [default] * count
        if isinstance(values, str):
            return [values] * count
        values = list(values)
        if len(values) != count:
            raise ValueError(f"got {count} SMILES but {len(values)} {name}")
        bad = [i for i, value in enumerate(values) if not isinstance(value, str)]
        if bad:
            raise TypeError(f"{name} #{bad[0]} is a {type(values[bad[0]]).__name__}; expected a string")
        return values

    def _uses_chat_template(self) -> bool:
        if self.use_chat_template is not None:
            return self.use_chat_template
        return getattr(self.tokenizer, "chat_template", None) is not None

    def render_prompt(self, smiles: str, instruction: str, index: int = 0) -> str:
        """The prompt text of one molecule, its graph token expanded to `num_graph_tokens` placeholders."""
        prompt = self.prompt_template.format(smiles=smiles, instruction=instruction)
        if prompt.count(self.graph_token) != 1:
            raise ValueError(f"prompt #{index} holds {prompt.count(self.graph_token)} {self.graph_token!r} markers "
                             f"(the instruction or SMILES must not contain it); expected 1")
        if self._uses_chat_template():
            prompt = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                        add_generation_prompt=True)
        return prompt.replace(self.graph_token, self.graph_token * self.num_graph_tokens)

    def prompt_token_ids(self, smiles: str, instruction: str, target: str | None = None, index: int = 0,
                         max_length: int | None = None) -> tuple[list[int], list[int]]:
        """One molecule's token ids (prompt, then the target and EOS when given) and its labels (-100 on the
        prompt). `index` is the item's position in the caller's input, named in errors."""
        tokenizer = self.tokenizer
        prompt_ids = tokenizer(self.render_prompt(smiles, instruction, index), add_special_tokens=False)["input_ids"]
        bos, eos = self._special_id("bos_token_id"), self._special_id("eos_token_id")
        if bos is not None and not self._uses_chat_template():  # a chat template writes its own
            prompt_ids = [bos] + prompt_ids
        found = prompt_ids.count(self.graph_token_id)
        if found != self.num_graph_tokens:
            raise ValueError(f"prompt #{index} tokenizes to {found} graph tokens; expected {self.num_graph_tokens} "
                             f"(does the tokenizer split {self.graph_token!r}?)")
        if max_length is not None and len(prompt_ids) > max_length:
            raise ValueError(f"prompt #{index} is {len(prompt_ids)} tokens long, above max_length={max_length}")
        target_ids = []
        if target is not None:
            target_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + ([eos] if eos is not None else [])
            if max_length is not None:
                target_ids = target_ids[: max_length - len(prompt_ids)]
        return prompt_ids + target_ids, [-100] * len(prompt_ids) + target_ids

    def pad(self, rows: Sequence[list[int]], label_rows: Sequence[list[int]] | None = None,
            padding_side: str | None = None) -> dict[str, torch.Tensor]:
        """Token rows -> `input_ids`, `attention_mask` (and `labels`, padded with -100), on `padding_side`."""
        side = padding_side or self.padding_side
        pad = self._special_id("pad_token_id")
        if pad is None:
            pad = self._special_id("eos_token_id") or 0
        length = max(len(row) for row in rows)

        def padded(row: list[int], value: int) -> list[int]:
            filler = [value] * (length - len(row))
            return filler + list(row) if side == "left" else list(row) + filler

        data = {
            "input_ids": torch.tensor([padded(row, pad) for row in rows], dtype=torch.long),
            "attention_mask": torch.tensor([padded([1] * len(row), 0) for row in rows], dtype=torch.long),
        }
        if label_rows is not None:
            data["labels"] = torch.tensor([padded(row, -100) for row in label_rows], dtype=torch.long)
        return data

    def tokenize_prompts(self, smiles: Sequence[str], instructions: Sequence[str], targets=None,
                         max_length: int | None = None, padding_side: str | None = None) -> dict[str, torch.Tensor]:
        """Prompts (and targets) -> padded `input_ids`, `attention_mask` (and `labels`)."""
        rows, label_rows = [], []
        for index, (molecule, instruction) in enumerate(zip(smiles, instructions)):
            target = None if targets is None else targets[index]
            row, label_row = self.prompt_token_ids(molecule, instruction, target, index=index, max_length=max_length)
            rows.append(row)
            label_rows.append(label_row)
        return self.pad(rows, label_rows if targets is not None else None, padding_side=padding_side)

    def featurize_dataset(self, dataset, smiles_column: str = "smiles", num_proc: int | None = None,
                          batch_size: int = 64, **map_kwargs):
        """A `datasets.Dataset` with a SMILES column -> the same rows, in order, plus the graph columns
        (`GRAPH_COLUMNS`, the arrays featurizing on the fly gives) and `num_atoms`, each molecule's atom count.
        The work is `Dataset.map` in `num_proc` worker processes, `batch_size` rows per call.

        `collate` batches these rows from the stored graphs, so `Trainer(data_collator=processor.collate)` trains on
        them without featurizing again. `num_atoms` is the column for length bucketing:
        `TrainingArguments(train_sampling_strategy="group_by_length", length_column_name="num_atoms")`; it is an
        argument of the model's `forward`, so `Trainer`'s `remove_unused_columns` keeps it for the sampler (a column
        named `length` would be dropped first).

        Caching is `datasets`': for a dataset backed by files (`load_dataset`, `load_from_disk`) the result is written
        beside them under a fingerprint of the dataset, this function and the feature extractor's settings, and a
        second call with the same ones reads it back instead of featurizing. An in-memory dataset is cached only with
        `cache_file_name=`. `map_kwargs` go to `Dataset.map` (`cache_file_name`, `load_from_cache_file`,
        `keep_in_memory`, `desc`, ...). An error names the row by its index: `SMILES #12 'C1CC' could not be parsed`.
        """
        import datasets

        if not isinstance(dataset, datasets.Dataset):
            raise TypeError(f"featurize_dataset expects a datasets.Dataset, got {type(dataset).__name__} (for a "
                            "DatasetDict, call it once per split)")
        if smiles_column not in dataset.column_names:
            raise KeyError(f"the dataset has no {smiles_column!r} column (columns: {dataset.column_names}); pass "
                           "smiles_column=...")
        taken = [name for name in (*GRAPH_COLUMNS, "num_atoms") if name in dataset.column_names]
        if taken:
            raise ValueError(f"the dataset already has the graph column(s) {taken}: is it featurized already?")
        for name, value in (("num_proc", num_proc), ("batch_size", batch_size)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        integers, matrix = datasets.Value("int64"), datasets.List(datasets.List(datasets.Value("int64")))
        features = dataset.features.copy()
        features.update({
            "atom_features": matrix, "edge_index": matrix, "bond_features": matrix,
            "structure_rank": datasets.List(integers), "distance_to_previous": datasets.List(integers),
            "distance_to_next": datasets.List(integers), "motif_counts": datasets.List(datasets.Value("float32")),
            "num_atoms": integers,
        })
        map_kwargs.setdefault("desc", "Featurizing SMILES")
        return dataset.map(partial(_featurize_rows, self.feature_extractor, smiles_column), batched=True,
                           batch_size=batch_size, with_indices=True, num_proc=num_proc, features=features,
                           **map_kwargs)

    def collate(self, rows: Sequence[dict], smiles_key: str = "smiles", label_key: str = "labels",
                text_key: str = "instruction", target_key: str = "text", trim_logits: bool = False) -> BatchFeature:
        """Data collator: rows with a SMILES column and an optional label column -> a batch; with a tokenizer, rows
        with SMILES, an optional instruction (`text_key`) and an optional target text (`target_key`).
        Rows of `featurize_dataset` (they hold the `GRAPH_COLUMNS`) are batched from their stored graphs, not
        featurized again; without a tokenizer they need no SMILES column then.
        `trim_logits=True` (left padding, targets given) adds `logits_to_keep`, the window that holds every target,
        so the model projects only those positions onto the vocabulary (the same loss; the other positions' logits
        are not computed)."""
        if len(rows) == 0:
            raise ValueError("cannot collate an empty list of rows")
        featurized = all(name in rows[0] for name in GRAPH_COLUMNS)
        needed = (list(GRAPH_COLUMNS) if featurized else []) + ([smiles_key] if self.has_text or not featurized
                                                                 else [])
        missing = [(i, key) for i, row in enumerate(rows) for key in needed if key not in row]
        if missing:
            i, key = missing[0]
            raise KeyError(f"row #{i} has no {key!r} column (columns: {sorted(rows[i])})")
        graphs = collate_graphs(rows, self.feature_extractor.feature_scheme) if featurized else None
        smiles = [row[smiles_key] for row in rows] if smiles_key in needed else None
        if self.has_text:
            text = [row[text_key] for row in rows] if text_key in rows[0] else None
            targets = [row[target_key] for row in rows] if target_key in rows[0] else None
            if featurized:
                instructions = self._per_item(text, len(rows), "text", self.default_instruction)
                targets = None if targets is None else self._per_item(targets, len(rows), "targets", None)
                batch = BatchFeature({**graphs, **self.tokenize_prompts(smiles, instructions, targets)})
            else:
                batch = self(smiles=smiles, text=text, targets=targets)
            if trim_logits and targets is not None:
                labelled = (batch["labels"] != -100).any(dim=0).nonzero()
                batch["logits_to_keep"] = int(batch["labels"].shape[1] - labelled[0]) + 1
            return batch
        labels = [row[label_key] for row in rows] if label_key in rows[0] else None
        if featurized:
            if labels is not None:
                graphs["labels"] = labels_to_tensor(labels)
            return BatchFeature(graphs)
        return self(smiles=smiles, labels=labels)

    def batch_decode(self, *args, **kwargs) -> list[str]:
        """The tokenizer's `batch_decode`."""
        if not self.has_text:
            raise ValueError("this HSANetProcessor has no tokenizer to decode with")
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs) -> str:
        """The tokenizer's `decode`."""
        if not self.has_text:
            raise ValueError("this HSANetProcessor has no tokenizer to decode with")
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self) -> list[str]:
        return list(GRAPH_KEYS) + (["input_ids", "attention_mask"] if self.has_text else [])


__all__ = ["HSANetFeatureExtractor", "HSANetProcessor", "NoTextTokenizer", "collate_graphs", "DEFAULT_GRAPH_TOKEN",
           "DEFAULT_PROMPT_TEMPLATE", "DEFAULT_INSTRUCTION"]
