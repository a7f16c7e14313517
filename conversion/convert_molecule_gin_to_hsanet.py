"""Convert a pretrained molecule GIN checkpoint (a torch state dict `.pth`) into an `HSANetModel` folder.

HSA-Net has no official checkpoint; its GNN is the "GIN, 5 layers of width 300" of MoleculeSTM / MolCA. Two original
layouts of that GIN exist and this script knows the key map of both:

* **MoleculeSTM** (chao1224/MoleculeSTM, `MoleculeSTM/models/molecule_gnn_model.py`; `molecule_model.pth`, and the
  GraphMVP_G start point it loads): OGB `AtomEncoder` / `BondEncoder` (9 atom / 3 bond features, one table per
  column), layer = `MLP((1 + eps) * x_i + sum_j relu(x_j + e_ij))` with MLP = Linear-BatchNorm-ReLU-Linear and a
  trained `eps`, no self-loops, then BatchNorm and ReLU except after the last layer. That is HSA-Net's `GINEConv`
  encoder (`gin_variant="gine"`) on the `"ogb"` feature scheme term for term: **converted**, numerically
  equivalent for the same integer features (tested).
* **pretrain-gnns** (snap-stanford/pretrain-gnns `chem/model.py`; `supervised_contextpred.pth`, GraphCL's / MolCA's
  `graphcl_80.pth`): `x_embedding1/2` (atom type 120, chirality 3), per layer `edge_embedding1/2` (bond type 6,
  direction 3), layer = `MLP(sum_{j in N(i) + i} (x_j + e_ji))` with a self-loop edge per atom (bond type 4,
  direction 0), no ReLU on messages, MLP = Linear-ReLU-Linear, then BatchNorm and ReLU except after the last layer.
  That is HSA-Net's `gin_variant="pretrain_gnns"` GIN on the `"pretrain_gnns"` feature scheme: **converted**,
  numerically equivalent for the same integer features (tested). MolCA's own copy of the layer adds its self-loops
  with bond features (0, 0): `--config-overrides '{"gin_self_loop_bond_features": [0, 0]}'` for a GIN trained
  inside MolCA.

Everything of `HSANetModel` outside the GIN (projectors, motif branch, source embedding, fusion) is freshly
initialised (seeded) and the printed summary says so. The output folder holds `config.json`, `model.safetensors` and
the processor config (same feature scheme), so `AutoModel` / `AutoProcessor` / the pipelines load it.

Usage:
    python -m conversion.convert_molecule_gin_to_hsanet --checkpoint molecule_model.pth --output hsanet-moleculestm \
        [--config-overrides "num_query_tokens=8,fusion=moe"] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel

import modeling_hsanet  # noqa: F401  (registers HSA-Net with the Auto classes)
from modeling_hsanet import HSANetConfig, HSANetFeatureExtractor, HSANetModel, HSANetProcessor
from modeling_hsanet.featurization_hsanet import (
    FEATURE_SCHEMES,
    MISC,
    OGB_ATOM_VOCABULARIES,
    OGB_BOND_VOCABULARIES,
    FeatureScheme,
    parse_smiles,
)

MOLECULESTM, PRETRAIN_GNNS = "moleculestm", "pretrain-gnns"
SOURCE_FORMATS = (MOLECULESTM, PRETRAIN_GNNS)
SOURCE_DESCRIPTIONS = {
    MOLECULESTM: "MoleculeSTM GIN (OGB AtomEncoder/BondEncoder, 9 atom / 3 bond features)",
    PRETRAIN_GNNS: "pretrain-gnns GIN (x_embedding1/2, edge_embedding1/2: 2 atom / 2 bond features)",
}

# Wrappers around the GNN in the original code bases, stripped from the front of every key:
# DataParallel, MoleculeSTM's GNN_graphpred, MolCA's Blip2 module, pretrain-gnns' GNN_graphpred.
KNOWN_PREFIXES = ("module.", "molecule_node_model.", "graph_encoder.", "gnn.")
# Keys of those wrappers that are not part of the GNN: dropped, and listed in the summary.
IGNORED_KEYS = {
    "graph_pred_linear.weight": "graph-level head of GNN_graphpred (not part of the GIN)",
    "graph_pred_linear.bias": "graph-level head of GNN_graphpred (not part of the GIN)",
}
# BatchNorm step counters: absent from checkpoints saved by torch < 0.4.1, and only read when momentum is None.
OPTIONAL_SUFFIX = ".num_batches_tracked"

# What each layout fixes in the config (an override that differs is an error): the GIN layer math.
GIN_VARIANTS = {MOLECULESTM: "gine", PRETRAIN_GNNS: "pretrain_gnns"}
DEFAULT_FEATURE_SCHEMES = {MOLECULESTM: "ogb", PRETRAIN_GNNS: "pretrain_gnns"}

# OGB < 1.3.6 (MoleculeSTM pins ogb==1.2.0) had 4 chirality entries and no "misc" row.
CHIRALITY_COLUMN = 1
CHI_OTHER_ROW = OGB_ATOM_VOCABULARIES[CHIRALITY_COLUMN].index("CHI_OTHER")
CHIRALITY_MISC_ROW = OGB_ATOM_VOCABULARIES[CHIRALITY_COLUMN].index(MISC)

OGB_ATOM_COLUMNS = ("atomic number", "chirality", "degree", "formal charge", "number of hydrogens",
                    "radical electrons", "hybridization", "aromatic", "in ring")
OGB_BOND_COLUMNS = ("bond type", "stereo", "conjugated")
PRETRAIN_GNNS_ATOM_COLUMNS = ("atom type", "chirality")
PRETRAIN_GNNS_BOND_COLUMNS = ("bond type", "bond direction")
PROBE_SMILES = ("CCO", "c1ccccc1O", "C[C@H](N)C(=O)O", "C/C=C/C(=O)[O-].[Na+]", "[NH4+]", "ClC(Cl)(Cl)Br")


class ConversionError(ValueError):
    """The checkpoint or the arguments do not fit the conversion; the message names the offending keys."""


# ---------------------------------------------------------------------------------------------------------------------
# Key maps
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorRule:
    """`target` (an `HSANetModel` key) is the row-wise concatenation of `sources` (original keys), in order.

    `shapes` are the expected shapes of `sources`. A table of several categorical columns (OGB's one embedding per
    column) becomes HSA-Net's single table whose rows are offset per column, so the concatenation keeps every lookup.
    """

    target: str
    sources: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]


def _linear_rules(target: str, source: str, in_features: int, out_features: int) -> list[TensorRule]:
    return [TensorRule(f"{target}.weight", (f"{source}.weight",), ((out_features, in_features),)),
            TensorRule(f"{target}.bias", (f"{source}.bias",), ((out_features,),))]


def _batch_norm_rules(target: str, source: str, width: int) -> list[TensorRule]:
    rules = [TensorRule(f"{target}.{name}", (f"{source}.{name}",), ((width,),))
             for name in ("weight", "bias", "running_mean", "running_var")]
    return rules + [TensorRule(f"{target}.num_batches_tracked", (f"{source}.num_batches_tracked",), ((),))]


def _table_rule(target: str, source_pattern: str, sizes: tuple[int, ...], hidden: int) -> TensorRule:
    return TensorRule(target, tuple(source_pattern.format(k) for k in range(len(sizes))),
                      tuple((size, hidden) for size in sizes))


def moleculestm_rules(hidden: int, num_layers: int, atom_sizes: tuple[int, ...],
                      bond_sizes: tuple[int, ...]) -> list[TensorRule]:
    """Key map MoleculeSTM GIN -> `HSANetModel.encoder` (every GIN tensor of HSA-Net has exactly one rule)."""
    rules = [_table_rule("encoder.atom_embedding.embedding.weight", "atom_encoder.atom_embedding_list.{}.weight",
                         atom_sizes, hidden)]
    for i in range(num_layers):
        source, target = f"gnns.{i}", f"encoder.convolutions.{i}"
        rules.append(_table_rule(f"encoder.bond_embeddings.{i}.embedding.weight",
                                 f"{source}.bond_encoder.bond_embedding_list.{{}}.weight", bond_sizes, hidden))
        rules.append(TensorRule(f"{target}.eps", (f"{source}.eps",), ((1,),)))
        rules += _linear_rules(f"{target}.nn.0", f"{source}.mlp.0", hidden, 2 * hidden)
        rules += _batch_norm_rules(f"{target}.nn.1", f"{source}.mlp.1", 2 * hidden)
        rules += _linear_rules(f"{target}.nn.3", f"{source}.mlp.3", 2 * hidden, hidden)
        rules += _batch_norm_rules(f"encoder.norms.{i}", f"batch_norms.{i}", hidden)
    return rules


def pretrain_gnns_rules(hidden: int, num_layers: int, atom_sizes: tuple[int, ...],
                        bond_sizes: tuple[int, ...]) -> list[TensorRule]:
    """Key map pretrain-gnns GIN -> `HSANetModel.encoder` with `gin_variant="pretrain_gnns"` (every GIN tensor of
    HSA-Net has exactly one rule). The two atom tables and each layer's two bond tables are concatenated in column
    order; the MLP is Linear-ReLU-Linear in both (`mlp.0` / `mlp.2` -> `nn.0` / `nn.2`)."""
    rules = [TensorRule("encoder.atom_embedding.embedding.weight", ("x_embedding1.weight", "x_embedding2.weight"),
                        tuple((size, hidden) for size in atom_sizes))]
    for i in range(num_layers):
        source, target = f"gnns.{i}", f"encoder.convolutions.{i}"
        rules.append(TensorRule(f"encoder.bond_embeddings.{i}.embedding.weight",
                                (f"{source}.edge_embedding1.weight", f"{source}.edge_embedding2.weight"),
                                tuple((size, hidden) for size in bond_sizes)))
        rules += _linear_rules(f"{target}.nn.0", f"{source}.mlp.0", hidden, 2 * hidden)
        rules += _linear_rules(f"{target}.nn.2", f"{source}.mlp.2", 2 * hidden, hidden)
        rules += _batch_norm_rules(f"encoder.norms.{i}", f"batch_norms.{i}", hidden)
    return rules


def apply_rules(state_dict: dict[str, torch.Tensor], rules: list[TensorRule], layout: str) -> dict[str, torch.Tensor]:
    """Build the target tensors; one `ConversionError` lists every missing key, unexpected key and wrong shape."""
    missing, mismatched, used = [], [], set()
    converted = {}
    for rule in rules:
        parts = []
        for key, shape in zip(rule.sources, rule.shapes):
            if key not in state_dict:
                if not key.endswith(OPTIONAL_SUFFIX):
                    missing.append(key)
                continue
            used.add(key)
            got = tuple(state_dict[key].shape)
            if got != shape:
                mismatched.append(f"{key}: expected {shape}, got {got} (-> {rule.target})")
            parts.append(state_dict[key])
        if len(parts) == len(rule.sources) and all(tuple(p.shape) == s for p, s in zip(parts, rule.shapes)):
            converted[rule.target] = torch.cat(parts) if len(parts) > 1 else parts[0].clone()
    unexpected = sorted(set(state_dict) - used)
    if missing or unexpected or mismatched:
        lines = [f"the checkpoint does not match the {layout} layout:"]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("shape mismatches", mismatched)):
            if items:
                lines.append(f"  {title} ({len(items)}): " + ", ".join(items))
        raise ConversionError("\n".join(lines))
    return converted


# ---------------------------------------------------------------------------------------------------------------------
# Reading the checkpoint
# ---------------------------------------------------------------------------------------------------------------------
def load_original_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """`torch.load(weights_only=True)`; a `{"state_dict": ...}` / `{"model": ...}` wrapper is unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"checkpoint {str(path)!r} does not exist")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ConversionError(f"{str(path)!r} holds more than tensors, torch.load(weights_only=True) refused it "
                              f"({error}); re-save the model's state_dict() alone") from error
    except (RuntimeError, OSError, EOFError) as error:  # a cut-off or corrupted file: torch's zip reader fails
        raise ConversionError(f"{str(path)!r} ({path.stat().st_size:,} bytes) could not be read by torch.load "
                              f"({type(error).__name__}: {str(error).splitlines()[0][:200]}): the file is "
                              "truncated or not a torch checkpoint; download or copy it again") from error
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
            break
    if not isinstance(loaded, dict):
        raise ConversionError(f"{str(path)!r} holds a {type(loaded).__name__}, expected a state dict")
    not_tensors = [key for key, value in loaded.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ConversionError(f"{str(path)!r} is not a state dict: {not_tensors[:5]} are not tensors")
    return dict(loaded)


def strip_known_prefixes(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Remove `KNOWN_PREFIXES` from the front of every key (repeatedly). Returns the new dict and what was stripped."""
    stripped, result, origin = set(), {}, {}
    for key, value in state_dict.items():
        new_key = key
        while prefix := next((p for p in KNOWN_PREFIXES if new_key.startswith(p)), None):
            new_key = new_key[len(prefix):]
            stripped.add(prefix)
        if new_key in result:
            raise ConversionError(f"keys {origin[new_key]!r} and {key!r} both become {new_key!r} once the known "
                                  f"prefixes {KNOWN_PREFIXES} are stripped")
        result[new_key], origin[new_key] = value, key
    return result, sorted(stripped)


def detect_source_format(state_dict: dict[str, torch.Tensor]) -> str:
    moleculestm = any(key.startswith("atom_encoder.") for key in state_dict)
    pretrain_gnns = "x_embedding1.weight" in state_dict
    if moleculestm == pretrain_gnns:
        raise ConversionError(
            "cannot tell the checkpoint layout: expected `atom_encoder.atom_embedding_list.*` (MoleculeSTM) or "
            f"`x_embedding1.weight` (pretrain-gnns){' (found both)' if moleculestm else ''}; first keys: "
            f"{sorted(state_dict)[:8]}")
    return MOLECULESTM if moleculestm else PRETRAIN_GNNS


def infer_gnn_size(state_dict: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(hidden_size, num_gnn_layers) from `batch_norms.0.weight` and the highest `gnns.<i>.` index."""
    if "batch_norms.0.weight" not in state_dict:
        raise ConversionError("cannot infer the GIN width: the checkpoint has no `batch_norms.0.weight`")
    hidden = int(state_dict["batch_norms.0.weight"].shape[0])
    layers = {int(match.group(1)) for key in state_dict if (match := re.match(r"gnns\.(\d+)\.", key))}
    if not layers:
        raise ConversionError("cannot infer the number of GIN layers: the checkpoint has no `gnns.<i>.` keys")
    return hidden, max(layers) + 1


def parse_config_overrides(text: str | None) -> dict:
    """`'{"num_query_tokens": 8}'` (JSON) or `"num_query_tokens=8,fusion=mlp"` (values read as JSON, else strings)."""
    if text is None or not text.strip():
        return {}
    text = text.strip()
    if text.startswith("{"):
        try:
            overrides = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConversionError(f"--config-overrides is not valid JSON: {error}") from error
        return overrides
    overrides = {}
    for item in text.split(","):
        key, separator, raw = item.partition("=")
        if not separator or not key.strip():
            raise ConversionError(f"--config-overrides item {item!r} is not key=value")
        try:
            overrides[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key.strip()] = raw.strip()
    return overrides


def build_config(derived: dict, overrides: dict) -> HSANetConfig:
    """`HSANetConfig` from what the checkpoint fixes (`derived`) and the user's other choices (`overrides`)."""
    for key in ("hidden_size", "num_gnn_layers", "gin_variant"):
        if key in overrides and overrides[key] != derived[key]:
            raise ConversionError(f"--config-overrides sets {key}={overrides[key]!r} but the checkpoint has "
                                  f"{key}={derived[key]}")
    return HSANetConfig(**{**derived, **overrides})


# ---------------------------------------------------------------------------------------------------------------------
# Semantic checks
# ---------------------------------------------------------------------------------------------------------------------
def pad_legacy_chirality_table(state_dict: dict[str, torch.Tensor], chirality_size: int, notes: list[str]) -> None:
    """OGB < 1.3.6 has no "misc" chirality row (4 rows); HSA-Net's "ogb" scheme has 5. Old OGB sends every tag
    outside its list to CHI_OTHER, so the "misc" row is a copy of the CHI_OTHER row (in place)."""
    key = f"atom_encoder.atom_embedding_list.{CHIRALITY_COLUMN}.weight"
    table = state_dict.get(key)
    if table is not None and table.dim() == 2 and table.shape[0] == chirality_size - 1 == CHIRALITY_MISC_ROW:
        state_dict[key] = torch.cat([table, table[CHI_OTHER_ROW:CHI_OTHER_ROW + 1]])
        notes.append(f"{key} has {table.shape[0]} rows (OGB < 1.3.6, no 'misc' chirality): row {CHIRALITY_MISC_ROW} "
                     f"('misc') is a copy of row {CHI_OTHER_ROW} (CHI_OTHER), where old OGB put unlisted tags")


def _vocabulary_index(vocabulary: tuple, value) -> int:
    return vocabulary.index(value) if value in vocabulary else len(vocabulary) - 1


def ogb_reference_atom_row(atom) -> list[int]:
    """OGB's `atom_to_feature_vector` rules (ogb/utils/features.py), written out independently of the featurizer."""
    values = (atom.GetAtomicNum(), str(atom.GetChiralTag()), atom.GetTotalDegree(), atom.GetFormalCharge(),
              atom.GetTotalNumHs(), atom.GetNumRadicalElectrons(), str(atom.GetHybridization()),
              atom.GetIsAromatic(), atom.IsInRing())
    return [_vocabulary_index(vocabulary, value) for vocabulary, value in zip(OGB_ATOM_VOCABULARIES, values)]


def ogb_reference_bond_row(bond) -> list[int]:
    """OGB's `bond_to_feature_vector` rules."""
    values = (str(bond.GetBondType()), str(bond.GetStereo()), bond.GetIsConjugated())
    return [_vocabulary_index(vocabulary, value) for vocabulary, value in zip(OGB_BOND_VOCABULARIES, values)]


# pretrain-gnns `chem/loader.py` `allowable_features` (the lists `mol_to_graph_data_obj_simple` indexes), as written
# there: the chirality list has CHI_OTHER at index 3, one past the model's 3-row table.
_PRETRAIN_GNNS_ATOMIC_NUMBERS = list(range(1, 119))
_PRETRAIN_GNNS_CHIRALITY = ["CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER"]
_PRETRAIN_GNNS_BONDS = ["SINGLE", "DOUBLE", "TRIPLE", "AROMATIC"]
_PRETRAIN_GNNS_BOND_DIRS = ["NONE", "ENDUPRIGHT", "ENDDOWNRIGHT"]


def pretrain_gnns_reference_atom_row(atom) -> list[int]:
    """pretrain-gnns' atom rule (`mol_to_graph_data_obj_simple`), written out independently of the featurizer;
    raises `ValueError` where the original does (an atom type or tag outside its lists)."""
    return [_PRETRAIN_GNNS_ATOMIC_NUMBERS.index(atom.GetAtomicNum()),
            _PRETRAIN_GNNS_CHIRALITY.index(str(atom.GetChiralTag()))]


def pretrain_gnns_reference_bond_row(bond) -> list[int]:
    """pretrain-gnns' bond rule: bond type and `GetBondDir()`."""
    return [_PRETRAIN_GNNS_BONDS.index(str(bond.GetBondType())),
            _PRETRAIN_GNNS_BOND_DIRS.index(str(bond.GetBondDir()))]


# layout -> (name of the original featurizer, atom columns, bond columns, reference atom rule, reference bond rule)
REFERENCE_FEATURIZERS = {
    MOLECULESTM: ("OGB's", OGB_ATOM_COLUMNS, OGB_BOND_COLUMNS, ogb_reference_atom_row, ogb_reference_bond_row),
    PRETRAIN_GNNS: ("pretrain-gnns'", PRETRAIN_GNNS_ATOM_COLUMNS, PRETRAIN_GNNS_BOND_COLUMNS,
                    pretrain_gnns_reference_atom_row, pretrain_gnns_reference_bond_row),
}


def featurizer_differences_from_ogb(scheme: FeatureScheme, smiles: tuple[str, ...] = PROBE_SMILES) -> list[str]:
    """Columns where `scheme`'s featurizer disagrees with OGB's rules on a few probe molecules (empty: it agrees)."""
    return featurizer_differences(scheme, MOLECULESTM, smiles)


def featurizer_differences(scheme: FeatureScheme, layout: str, smiles: tuple[str, ...] = PROBE_SMILES) -> list[str]:
    """Columns where `scheme`'s featurizer disagrees with the rules of `layout`'s original featurizer on a few probe
    molecules (empty: it agrees).

    A converted GIN only reproduces the original model when its inputs are the original's features.
    """
    name, atom_columns, bond_columns, atom_reference, bond_reference = REFERENCE_FEATURIZERS[layout]
    differences = []
    for kind, columns, ours, reference, items in (
        ("atom", atom_columns, scheme.atom_features, atom_reference, lambda mol: mol.GetAtoms()),
        ("bond", bond_columns, scheme.bond_features, bond_reference, lambda mol: mol.GetBonds()),
    ):
        differing, total = np.zeros(len(columns), dtype=np.int64), 0
        for text in smiles:
            mol = parse_smiles(text)
            expected = np.array([reference(item) for item in items(mol)], dtype=np.int64).reshape(-1, len(columns))
            got = np.asarray(ours(mol))
            if got.shape != expected.shape:
                return [f"{kind} features have shape {got.shape} for {text!r}, {name} have {expected.shape}"]
            differing += (got != expected).sum(axis=0)
            total += len(expected)
        differences += [f"{kind} column {c} ({columns[c]}) differs from {name} on {int(differing[c])} of {total} "
                        f"probe {kind}s" for c in np.flatnonzero(differing)]
    return differences


# ---------------------------------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class ConversionSummary:
    checkpoint: str
    output: str
    source_format: str
    config: HSANetConfig
    seed: int
    stripped_prefixes: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    num_source_tensors: int = 0
    converted_keys: list[str] = field(default_factory=list)
    fresh_modules: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        config = self.config
        lines = [
            f"Converted {SOURCE_DESCRIPTIONS[self.source_format]}",
            f"  from {self.checkpoint}",
            f"  to   {self.output} (config.json, model.safetensors, processor_config.json)",
            f"  config: hidden_size={config.hidden_size}, num_gnn_layers={config.num_gnn_layers}, "
            f"feature_scheme={config.feature_scheme!r}, gin_variant={config.gin_variant!r}",
            f"  prefixes stripped: {', '.join(self.stripped_prefixes) or 'none'}",
        ]
        lines += [f"  ignored {key}: {why}" for key, why in self.ignored.items()]
        lines.append(f"  GIN: {self.num_source_tensors} checkpoint tensors -> {len(self.converted_keys)} tensors of "
                     "HSANetModel.encoder; reloaded with AutoModel.from_pretrained and compared: identical")
        lines += [f"  note: {note}" for note in self.notes]
        fresh = ", ".join(f"{name} ({count:,} parameters)" for name, count in self.fresh_modules.items())
        lines.append(f"  FRESHLY INITIALISED (seed {self.seed}), not from the checkpoint: {fresh}; "
                     "train them before use")
        lines += [f"  WARNING: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def convert(checkpoint: str | Path, output: str | Path, config_overrides: dict | None = None,
            source_format: str = "auto", seed: int = 0) -> ConversionSummary:
    """Convert `checkpoint` and save an `HSANetModel` (+ processor) to `output`. See the module docstring."""
    if source_format not in ("auto",) + SOURCE_FORMATS:
        raise ConversionError(f"source_format must be 'auto' or one of {SOURCE_FORMATS}, got {source_format!r}")
    original = load_original_state_dict(checkpoint)
    state_dict, stripped = strip_known_prefixes(original)
    ignored = {key: IGNORED_KEYS[key] for key in state_dict if key in IGNORED_KEYS}
    state_dict = {key: value for key, value in state_dict.items() if key not in ignored}
    detected = detect_source_format(state_dict)
    if source_format not in ("auto", detected):
        raise ConversionError(f"--source-format {source_format} was given but the keys are those of {detected}")
    hidden, num_layers = infer_gnn_size(state_dict)
    overrides = dict(config_overrides or {})

    derived = {"feature_scheme": DEFAULT_FEATURE_SCHEMES[detected], "gin_variant": GIN_VARIANTS[detected],
               "hidden_size": hidden, "num_gnn_layers": num_layers}
    config = build_config(derived, overrides)
    atom_sizes, bond_sizes = tuple(config.atom_vocabulary_sizes), tuple(config.bond_vocabulary_sizes)
    if detected == MOLECULESTM:
        atom_columns = sum(key.startswith("atom_encoder.atom_embedding_list.") for key in state_dict)
        bond_columns = sum(key.startswith("gnns.0.bond_encoder.bond_embedding_list.") for key in state_dict)
        expected_scheme = "an OGB 9+3 scheme such as 'ogb'"
    else:
        atom_columns = sum(re.fullmatch(r"x_embedding\d+\.weight", key) is not None for key in state_dict)
        bond_columns = sum(re.fullmatch(r"gnns\.0\.edge_embedding\d+\.weight", key) is not None for key in state_dict)
        expected_scheme = "the 2+2 scheme 'pretrain_gnns'"
    if (atom_columns, bond_columns) != (len(atom_sizes), len(bond_sizes)):
        raise ConversionError(
            f"the checkpoint embeds {atom_columns} atom / {bond_columns} bond feature columns, feature_scheme "
            f"{config.feature_scheme!r} has {len(atom_sizes)} / {len(bond_sizes)}; {SOURCE_DESCRIPTIONS[detected]} "
            f"needs {expected_scheme}")

    notes: list[str] = []
    layout = (f"{'MoleculeSTM' if detected == MOLECULESTM else 'pretrain-gnns'} GIN (hidden_size={hidden}, "
              f"{num_layers} layers, feature_scheme={config.feature_scheme!r})")
    if detected == MOLECULESTM:
        pad_legacy_chirality_table(state_dict, atom_sizes[CHIRALITY_COLUMN], notes)
        rules = moleculestm_rules(hidden, num_layers, atom_sizes, bond_sizes)
    else:
        rules = pretrain_gnns_rules(hidden, num_layers, atom_sizes, bond_sizes)
    converted = apply_rules(state_dict, rules, layout)
    absent_counters = [rule.target for rule in rules if rule.target not in converted]
    if absent_counters:
        notes.append(f"{len(absent_counters)} BatchNorm num_batches_tracked counters are absent: kept at 0 (they "
                     "only matter with momentum=None)")
    if detected == MOLECULESTM:
        notes.append("GINEConv keeps eps as a fixed buffer: the trained value is loaded, but it is not trained "
                     "further when fine-tuning (MoleculeSTM trains it)")
    else:
        notes += [
            f"self-loop edges get bond features {list(config.self_loop_bond_features)} (gin_self_loop_bond_features; "
            "pretrain-gnns and GraphCL trained with [4, 0]); MolCA's GIN code adds them as [0, 0]: pass "
            "--config-overrides '{\"gin_self_loop_bond_features\": [0, 0]}' for a GIN trained inside MolCA",
            "the featurizer sends what the original cannot featurize (it raises) to the mask rows: atom types outside "
            "1..118 to row 119, bond types other than single/double/triple/aromatic to row 5; bond direction is "
            "RDKit's GetBondDir(), as in the original, so it follows how the SMILES writes / and \\",
        ]

    torch.manual_seed(seed)
    model = HSANetModel(config).eval()
    result = model.load_state_dict(converted, strict=False)
    encoder_missing = [key for key in result.missing_keys
                       if key.startswith("encoder.") and key not in absent_counters]
    if result.unexpected_keys or encoder_missing:  # the key map and the model disagree: a bug here, not in the input
        raise ConversionError(f"key map out of date with HSANetModel: unexpected {result.unexpected_keys}, "
                              f"missing {encoder_missing}")
    output = Path(output)
    model.save_pretrained(output)
    feature_extractor = HSANetFeatureExtractor(feature_scheme=config.feature_scheme,
                                               max_scan_distance=config.max_scan_distance)
    HSANetProcessor(feature_extractor).save_pretrained(output)

    reloaded = AutoModel.from_pretrained(output).state_dict()
    differing = [key for key, tensor in converted.items() if not torch.equal(reloaded[key], tensor.to(reloaded[key]))]
    if differing:
        raise ConversionError(f"the saved model does not hold the converted tensors: {differing}")

    original_featurizer = REFERENCE_FEATURIZERS[detected][0]
    warnings = [f"the package's {config.feature_scheme!r} featurizer: {difference}; the converted GIN was trained "
                f"on {original_featurizer} features, so its outputs differ from the original on such inputs"
                for difference in featurizer_differences(FEATURE_SCHEMES[config.feature_scheme], detected)]
    fresh = {name: sum(p.numel() for p in module.parameters())
             for name, module in model.named_children() if name != "encoder"}
    return ConversionSummary(
        checkpoint=str(checkpoint), output=str(output), source_format=detected, config=config, seed=seed,
        stripped_prefixes=stripped, ignored=ignored, num_source_tensors=len(state_dict),
        converted_keys=sorted(converted), fresh_modules=fresh, notes=notes, warnings=warnings,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="original state dict (.pth), e.g. molecule_model.pth")
    parser.add_argument("--output", required=True, help="folder for the HSANetModel (created)")
    parser.add_argument("--config-overrides", default=None,
                        help='other HSANetConfig arguments: JSON \'{"num_query_tokens": 8}\' or "key=value,key=value"')
    parser.add_argument("--source-format", default="auto", choices=("auto",) + SOURCE_FORMATS,
                        help="checkpoint layout (default: detected from the keys)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the freshly initialised non-GIN modules")
    args = parser.parse_args(argv)
    try:
        summary = convert(args.checkpoint, args.output, parse_config_overrides(args.config_overrides),
                          source_format=args.source_format, seed=args.seed)
    except ValueError as error:  # ConversionError, or HSANetConfig rejecting an override
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
