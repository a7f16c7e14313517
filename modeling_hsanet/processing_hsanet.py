"""HSA-Net processing: a feature extractor (SMILES -> batched graph tensors) and the processor that wraps it.

The batch is a flat dict of tensors (what `Trainer`, accelerate and pipelines handle best):

    atom_features (num_atoms_total, 9) · edge_index (2, num_edges_total) · bond_features (num_edges_total, 3)
    num_atoms (batch,) · structure_rank / distance_to_previous / distance_to_next (num_atoms_total,)
    motif_counts (batch, 85) · labels (batch,) or (batch, num_labels) when given
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch, Data
from transformers import BatchFeature, FeatureExtractionMixin, ProcessorMixin

from .featurization_hsanet import (
    DEFAULT_MAX_ATOMS,
    DEFAULT_MAX_SMILES_LENGTH,
    FEATURE_SCHEMES,
    MolecularGraph,
    smiles_batch_to_graphs,
    smiles_to_graph,
)

GRAPH_KEYS = ("atom_features", "edge_index", "bond_features", "num_atoms", "structure_rank",
              "distance_to_previous", "distance_to_next", "motif_counts")


def collate_graphs(graphs: Sequence[MolecularGraph]) -> dict[str, torch.Tensor]:
    """Stack molecules into one flat batch; torch_geometric offsets `edge_index` per molecule."""
    batch = Batch.from_data_list([
        Data(
            x=torch.from_numpy(g.atom_features),
            edge_index=torch.from_numpy(g.edge_index),
            edge_attr=torch.from_numpy(g.bond_features),
            structure_rank=torch.from_numpy(g.structure_rank),
            distance_to_previous=torch.from_numpy(g.distance_to_previous),
            distance_to_next=torch.from_numpy(g.distance_to_next),
            motif_counts=torch.from_numpy(g.motif_counts).unsqueeze(0),
            num_nodes=g.num_atoms,
        )
        for g in graphs
    ])
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
        if feature_scheme not in FEATURE_SCHEMES:
            raise ValueError(f"feature_scheme must be one of {sorted(FEATURE_SCHEMES)}, got {feature_scheme!r}")
        for name, value in (("max_scan_distance", max_scan_distance), ("max_atoms", max_atoms),
                            ("max_smiles_length", max_smiles_length)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        super().__init__(**kwargs)
        self.feature_scheme = feature_scheme
        self.max_scan_distance = max_scan_distance
        self.max_atoms = max_atoms
        self.max_smiles_length = max_smiles_length

    @property
    def _limits(self) -> dict[str, int]:
        return {"max_atoms": self.max_atoms, "max_smiles_length": self.max_smiles_length}

    def featurize(self, smiles: str | Sequence[str]) -> list[MolecularGraph]:
        """One SMILES or a list -> one graph per molecule; errors name the item by its position in `smiles`."""
        return smiles_batch_to_graphs(smiles, self.feature_scheme, self.max_scan_distance, **self._limits)

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


class NoTextTokenizer:
    """What `HSANetProcessor.tokenizer` returns: HSA-Net's processor has no text tokenizer, hence no BOS/EOS/PAD ids.

    `Trainer` reads `processing_class.tokenizer.{bos,eos,pad}_token_id` from every `ProcessorMixin` to align the model
    config with the tokenizer (`transformers.trainer_utils.align_special_tokens`); `None` ids tell it that there is
    nothing to align, so the config is left as it is. The molecular pipelines drop it again (`pipeline_hsanet`).
    """

    bos_token_id = None
    eos_token_id = None
    pad_token_id = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class HSANetProcessor(ProcessorMixin):
    r"""
    HSA-Net processor: wraps `HSANetFeatureExtractor` (molecules; there is no text tokenizer, see `NoTextTokenizer`).

    `processor(smiles, labels=None)` returns the model's inputs; `processor.collate(rows)` is a data collator for
    `Trainer` over rows like `{"smiles": ..., "labels": ...}` (e.g. a `datasets.Dataset`). Pass it to `Trainer` as
    `processing_class=processor, data_collator=processor.collate`: `Trainer.save_model` then saves it beside the model.
    """

    def __init__(self, feature_extractor: HSANetFeatureExtractor | None = None, **kwargs):
        super().__init__(feature_extractor or HSANetFeatureExtractor(), **kwargs)

    def __call__(self, smiles: str | Sequence[str], labels=None, **kwargs) -> BatchFeature:
        return self.feature_extractor(smiles, labels=labels, **kwargs)

    def collate(self, rows: Sequence[dict], smiles_key: str = "smiles", label_key: str = "labels") -> BatchFeature:
        """Data collator: rows with a SMILES column and an optional label column -> a batch."""
        if len(rows) == 0:
            raise ValueError("cannot collate an empty list of rows")
        missing = [i for i, row in enumerate(rows) if smiles_key not in row]
        if missing:
            raise KeyError(f"row #{missing[0]} has no {smiles_key!r} column (columns: {sorted(rows[missing[0]])})")
        labels = [row[label_key] for row in rows] if label_key in rows[0] else None
        return self(smiles=[row[smiles_key] for row in rows], labels=labels)

    @property
    def model_input_names(self) -> list[str]:
        return list(GRAPH_KEYS)

    @property
    def tokenizer(self) -> NoTextTokenizer:
        """No text tokenizer (molecules are graphs): `Trainer` finds no special tokens to align (`NoTextTokenizer`)."""
        return NoTextTokenizer()


__all__ = ["HSANetFeatureExtractor", "HSANetProcessor", "NoTextTokenizer", "collate_graphs"]
