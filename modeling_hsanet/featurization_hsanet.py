"""SMILES -> molecular graph arrays with RDKit (no torch.nn here).

A molecule becomes a `MolecularGraph` of NumPy arrays:

- OGB-compatible atom (9) and bond (3) features, so encoders pretrained on OGB-style inputs can be reused;
- what the structure-aware Graph-Mamba projector needs: a canonical, structure-aware atom order (BRICS fragment,
  then heavy-atom degree, ties broken by RDKit's canonical rank) and the graph distance between neighbours in
  that order;
- functional-group counts (RDKit's 85 `fr_*` descriptors) for the motif branch.

Cost (measured in `benchmarks/bench_featurization.py`). Memory grows about linearly with the atoms; time does not
yet: RDKit's canonical ranking (`Chem.CanonicalRankAtoms`) refines about once per bond of graph diameter, and on a
20,000-atom chain it is most of the ~15 s. On drug-sized molecules the time goes to RDKit: parsing, ranking, reading
atoms and bonds, and the substructure searches (the 85 `fr_*` patterns and the 16 BRICS environments). RDKit is asked
once per molecule for its per-atom and per-bond values (`atom_table`, `bond_table`; chirality, charge and radicals,
which most atoms lack, only for the atoms one RDKit query lists), and `_SubstructureScreen` skips the searches those
tables prove to find nothing (most of them: a pattern needs atoms and bonds the molecule lacks), so every count stays
exact; the BRICS fragments are the connected components of the kept bonds (hooking and pointer jumping in NumPy). A
batch of molecules is featurized together (`mols_to_graphs`): their atoms and bonds are stacked, so every step but
RDKit's own calls is a few NumPy operations per batch instead of per molecule, and Python's cyclic garbage collector is
paused meanwhile (`collector_paused`). The molecule is renumbered to canonical order before any search: RDKit's ring
set (hence SMARTS ring counts such as `R2`) can depend on the atom numbering. Table a of the benchmark compares the
whole featurizer with PyG's `from_smiles`.
The limits `DEFAULT_MAX_ATOMS` and `DEFAULT_MAX_SMILES_LENGTH` (settings of `HSANetFeatureExtractor`) are checked
before any of that work, so a huge input fails in milliseconds with an error that names the setting to raise. Nothing
here writes SMILES (RDKit's SMILES writer recurses once per atom along a chain and overflowed the C stack at 20,001
atoms) and nothing builds an n x n matrix.

Feature schemes are looked up by name in `FEATURE_SCHEMES`: `"ogb"` (9 atom / 3 bond features, MoleculeSTM's GIN) and
`"pretrain_gnns"` (the 2+2 scheme of Hu et al.: atom type and chirality, bond type and direction; pretrain-gnns and
MolCA's GIN).
"""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import BRICS, Descriptors, Fragments, rdqueries
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

MISC = "misc"

# Limits checked before RDKit does any expensive work (see `HSANetFeatureExtractor`). 20,000 atoms holds every
# drug-like molecule, peptide and the 10k-atom polymers of the scaling benchmark (time and memory at the limit:
# benchmarks/bench_featurization.py).
# SMILES need 1-6 characters per atom ("C", "[C@@H]") plus bonds, branches and ring digits: 10 per atom is generous.
DEFAULT_MAX_ATOMS = 20_000
DEFAULT_MAX_SMILES_LENGTH = 200_000
# RDKit's `GetSubstructMatches` stops at 1,000 matches by default (BRICS and the `fr_*` counts use that default), so a
# 10k-atom polymer's counts saturated at 1,000; this is "all of them" (RDKit's argument is an unsigned 32-bit int).
_ALL_MATCHES = 2**31 - 1
# Up to this many atoms, consecutive distances come from one Dijkstra call (a (n - 1, n) float64 matrix: 8 MB at most),
# which is faster than the sparse search's fixed cost on drug-sized molecules; above it, the bounded search.
DENSE_DISTANCE_MAX_ATOMS = 1024
# Up to this many atoms (drug-like molecules), consecutive distances come from a breadth-first search on dense
# adjacency matrices, `_DISTANCE_GROUP` molecules at a time (`_small_graph_distances`): no sparse-matrix set-up cost.
MATRIX_DISTANCE_MAX_ATOMS = 64
# Up to this many bonds, reading bonds by index is faster than `molecule_bonds`' atom-by-atom gathering.
_BOND_LIST_MAX_BONDS = 1024

# OGB `ogb.utils.features.allowable_features`, same order, so indices match OGB's smiles2graph.
OGB_ATOM_VOCABULARIES: tuple[tuple, ...] = (
    tuple(range(1, 119)) + (MISC,),  # atomic number
    ("CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER", MISC),  # chirality
    tuple(range(11)) + (MISC,),  # total degree (hydrogens included)
    tuple(range(-5, 6)) + (MISC,),  # formal charge
    tuple(range(9)) + (MISC,),  # total number of hydrogens
    tuple(range(5)) + (MISC,),  # radical electrons
    ("SP", "SP2", "SP3", "SP3D", "SP3D2", MISC),  # hybridization
    (False, True),  # aromatic
    (False, True),  # in ring
)
OGB_BOND_VOCABULARIES: tuple[tuple, ...] = (
    ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC", MISC),
    ("STEREONONE", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS", "STEREOANY"),
    (False, True),
)

FUNCTIONAL_GROUP_NAMES: tuple[str, ...] = tuple(name for name, _ in Descriptors.descList if name.startswith("fr_"))
# The SMARTS pattern behind each `fr_*` function (RDKit's `Fragments` binds it as the `pattern` default argument).
_FUNCTIONAL_GROUP_PATTERNS: tuple[Chem.Mol, ...] = tuple(
    inspect.signature(getattr(Fragments, name)).parameters["pattern"].default for name in FUNCTIONAL_GROUP_NAMES
)


def _vocabulary_index(vocabulary: tuple, value) -> int:
    """Index of `value` in `vocabulary`, or of its last entry (`misc`) when absent (OGB's `safe_index`)."""
    try:
        return vocabulary.index(value)
    except ValueError:
        return len(vocabulary) - 1


_CW, _CCW = Chem.ChiralType.CHI_TETRAHEDRAL_CW, Chem.ChiralType.CHI_TETRAHEDRAL_CCW


def canonical_chiral_tag(atom: Chem.Atom) -> Chem.ChiralType:
    """The atom's tetrahedral tag (CW/CCW) restated for its neighbours listed in ascending atom index.

    RDKit's tag is relative to the order of the atom's bonds, which follows how the SMILES was written. After
    `canonical_atom_order` the atom index is the canonical rank, so this tag no longer depends on the writing. An odd
    permutation from the bond order to the ascending order flips CW and CCW; other tags are returned unchanged.
    """
    tag = atom.GetChiralTag()
    if tag != _CW and tag != _CCW:
        return tag
    neighbours = [bond.GetOtherAtomIdx(atom.GetIdx()) for bond in atom.GetBonds()]
    inversions = sum(a > b for i, a in enumerate(neighbours) for b in neighbours[i + 1:])
    return tag if inversions % 2 == 0 else (_CCW if tag == _CW else _CW)


def _enum_index_table(enum_type, vocabulary: tuple) -> np.ndarray:
    """`_vocabulary_index` of every member of an RDKit enum (by name), looked up by the member's integer value."""
    table = np.full(max(enum_type.values) + 1, len(vocabulary) - 1, dtype=np.int64)
    for number, member in enum_type.values.items():
        table[number] = _vocabulary_index(vocabulary, str(member))
    return table


_OGB_CHIRALITY_INDEX = _enum_index_table(Chem.ChiralType, OGB_ATOM_VOCABULARIES[1])
_OGB_HYBRIDIZATION_INDEX = _enum_index_table(Chem.HybridizationType, OGB_ATOM_VOCABULARIES[6])
_OGB_BOND_TYPE_INDEX = _enum_index_table(Chem.BondType, OGB_BOND_VOCABULARIES[0])
_OGB_BOND_STEREO_INDEX = _enum_index_table(Chem.BondStereo, OGB_BOND_VOCABULARIES[1])


# The per-atom values RDKit is asked for once per molecule (`atom_table`); OGB's atom features and the substructure
# screen are read from them.
_ATOM_TABLE_COLUMNS = ("atomic_number", "chiral_tag", "total_degree", "formal_charge", "total_hs", "radical_electrons",
                       "hybridization", "aromatic", "in_ring")


def _one_atom_query(query_atom: Chem.QueryAtom) -> Chem.Mol:
    """A query molecule of one `rdqueries` atom: `GetSubstructMatches` with it lists the matching atoms' indices."""
    molecule = Chem.RWMol()
    molecule.AddAtom(query_atom)
    return molecule.GetMol()


def _any_atom_query(*queries: Chem.QueryAtom) -> Chem.Mol:
    """`_one_atom_query` of the OR of `queries` (an atom matches when it matches any of them)."""
    combined = queries[0]
    for query in queries[1:]:
        combined.ExpandQuery(query, Chem.CompositeQueryType.COMPOSITE_OR)
    return _one_atom_query(combined)


# Values most atoms share (no chiral tag, no charge, no radical electrons), found for all atoms by one RDKit query
# instead of one call per atom and value: only the atoms it lists are asked for theirs.
_UNUSUAL_ATOMS = _any_atom_query(rdqueries.HasChiralTagQueryAtom(),
                                 rdqueries.FormalChargeEqualsQueryAtom(0, negate=True),
                                 rdqueries.NumRadicalElectronsEqualsQueryAtom(0, negate=True))


def _matching_atoms(mol: Chem.Mol, query: Chem.Mol) -> list[int]:
    return [match[0] for match in mol.GetSubstructMatches(query, uniquify=False, maxMatches=_ALL_MATCHES)]


def atom_table(mol: Chem.Mol, bonds: np.ndarray | None = None) -> np.ndarray:
    """RDKit's per-atom values (`_ATOM_TABLE_COLUMNS`, enums as their integer values). The chiral tag is
    `canonical_chiral_tag`'s. Atomic number, hydrogens, hybridization and aromaticity are read atom by atom; the total
    degree is the number of bonds plus the hydrogens (RDKit's `GetTotalDegree`); an atom is in a ring when one of its
    bonds is (RDKit records a ring's atoms and bonds together); chirality, charge and radicals are read only for the
    atoms one RDKit query lists (those with any of them). `bonds`: the molecule's `bond_table`, read when not given.
    Returns `(num_atoms, 9)` int64."""
    return _read_atoms([mol], bond_table(mol) if bonds is None else bonds)


def _read_atoms(mols: Sequence[Chem.Mol], bonds: np.ndarray) -> np.ndarray:
    """`atom_table` of several molecules, stacked in their order; `bonds`: their stacked `bond_table`, with atom
    indices into the stack. One RDKit call per atom and value for the whole batch. Returns `(total atoms, 9)` int64."""
    atoms = [mol.GetAtomWithIdx(i) for mol in mols for i in range(mol.GetNumAtoms())]  # faster than `GetAtoms()`
    num_atoms = len(atoms)
    raw = np.zeros((num_atoms, len(_ATOM_TABLE_COLUMNS)), dtype=np.int64)
    raw[:, 0] = np.fromiter(map(Chem.Atom.GetAtomicNum, atoms), dtype=np.int64, count=num_atoms)
    raw[:, 4] = np.fromiter(map(Chem.Atom.GetTotalNumHs, atoms), dtype=np.int64, count=num_atoms)
    raw[:, 2] = np.bincount(bonds[:, :2].reshape(-1), minlength=num_atoms) + raw[:, 4]
    start = 0
    for mol in mols:
        for index in _matching_atoms(mol, _UNUSUAL_ATOMS):
            atom = atoms[start + index]
            raw[start + index, 1] = int(canonical_chiral_tag(atom))
            raw[start + index, 3] = atom.GetFormalCharge()
            raw[start + index, 5] = atom.GetNumRadicalElectrons()
        start += mol.GetNumAtoms()
    raw[:, 6] = np.fromiter(map(Chem.Atom.GetHybridization, atoms), dtype=np.int64, count=num_atoms)
    raw[:, 7] = np.fromiter(map(Chem.Atom.GetIsAromatic, atoms), dtype=np.int64, count=num_atoms)
    raw[bonds[bonds[:, 5] != 0, :2].reshape(-1), 8] = 1
    return raw


def ogb_atom_features(mol: Chem.Mol) -> np.ndarray:
    """OGB atom features. Returns `(num_atoms, 9)` int64.

    Chirality is OGB's tag restated for neighbours in ascending atom index (`canonical_chiral_tag`): on a molecule
    from `parse_smiles` it does not depend on how the SMILES was written. RDKit's values are read atom by atom as
    integers (`atom_table`), then mapped to vocabulary indices column by column (`OGB_ATOM_VOCABULARIES`).
    """
    return ogb_atom_features_from_table(atom_table(mol))


def ogb_atom_features_from_table(raw: np.ndarray) -> np.ndarray:
    """`ogb_atom_features` from the molecule's `atom_table`: the integer-range columns (atomic number, degree, charge,
    hydrogens, radicals: consecutive integers then `misc`) mapped together, the enum columns through their tables,
    aromatic and in-ring as they are (`(False, True)`). Returns `(num_atoms, 9)` int64."""
    features = np.empty_like(raw)
    values = raw[:, _OGB_RANGE_COLUMNS] - _OGB_RANGE_LOW
    features[:, _OGB_RANGE_COLUMNS] = np.where((values >= 0) & (values <= _OGB_RANGE_SPAN), values, _OGB_RANGE_MISC)
    features[:, 1] = _OGB_CHIRALITY_INDEX[raw[:, 1]]
    features[:, 6] = _OGB_HYBRIDIZATION_INDEX[raw[:, 6]]
    features[:, 7:] = raw[:, 7:]
    return features


# The columns of `OGB_ATOM_VOCABULARIES` that are consecutive integers followed by `misc`: their first value, their
# span (last value - first) and the index of `misc`.
_OGB_RANGE_COLUMNS = [0, 2, 3, 4, 5]
_OGB_RANGE_LOW = np.array([OGB_ATOM_VOCABULARIES[c][0] for c in _OGB_RANGE_COLUMNS])
_OGB_RANGE_SPAN = np.array([OGB_ATOM_VOCABULARIES[c][-2] - OGB_ATOM_VOCABULARIES[c][0] for c in _OGB_RANGE_COLUMNS])
_OGB_RANGE_MISC = np.array([len(OGB_ATOM_VOCABULARIES[c]) - 1 for c in _OGB_RANGE_COLUMNS])


def molecule_bonds(mol: Chem.Mol) -> list[Chem.Bond]:
    """Every bond once, in RDKit's bond-index order, gathered atom by atom.

    `mol.GetBonds()` and `mol.GetBondWithIdx(i)` walk RDKit's edge list from its start for every bond, which is
    quadratic (0.9 s for 20,000 bonds, 2.6 s for 40,000); an atom's own bonds are at hand. Up to
    `_BOND_LIST_MAX_BONDS` bonds that walk costs less than the gathering, and bonds are read by index.
    """
    if mol.GetNumBonds() <= _BOND_LIST_MAX_BONDS:
        return [mol.GetBondWithIdx(i) for i in range(mol.GetNumBonds())]
    bonds = [bond for atom in mol.GetAtoms() for bond in atom.GetBonds() if bond.GetBeginAtomIdx() == atom.GetIdx()]
    bonds.sort(key=Chem.Bond.GetIdx)
    return bonds


# The per-bond values RDKit is asked for once per molecule (`bond_table`), in RDKit's bond-index order.
_BOND_TABLE_COLUMNS = ("begin_atom", "end_atom", "bond_type", "stereo", "conjugated", "in_ring")


def bond_table(mol: Chem.Mol) -> np.ndarray:
    """RDKit's per-bond values (`_BOND_TABLE_COLUMNS`, enums as their integer values), one row per bond of
    `molecule_bonds`, read column by column. Returns `(num_bonds, 6)` int64."""
    return _read_bonds([mol])


def _read_bonds(mols: Sequence[Chem.Mol]) -> np.ndarray:
    """`bond_table` of several molecules, stacked in their order (atom indices within each molecule): one RDKit call
    per bond and value for the whole batch. Returns `(total bonds, 6)` int64."""
    bonds = [bond for mol in mols for bond in molecule_bonds(mol)]
    raw = np.empty((len(bonds), len(_BOND_TABLE_COLUMNS)), dtype=np.int64)
    for column, read in enumerate((Chem.Bond.GetBeginAtomIdx, Chem.Bond.GetEndAtomIdx, Chem.Bond.GetBondType,
                                   Chem.Bond.GetStereo, Chem.Bond.GetIsConjugated, Chem.Bond.IsInRing)):
        raw[:, column] = np.fromiter(map(read, bonds), dtype=np.int64, count=len(bonds))
    return raw


def ogb_bond_features(mol: Chem.Mol) -> np.ndarray:
    """OGB bond features, one row per RDKit bond (bond-index order). Returns `(num_bonds, 3)` int64."""
    return ogb_bond_features_from_table(bond_table(mol))


def ogb_bond_features_from_table(raw: np.ndarray) -> np.ndarray:
    """`ogb_bond_features` from the molecule's `bond_table`. Returns `(num_bonds, 3)` int64."""
    # conjugated: (False, True)
    return np.stack([_OGB_BOND_TYPE_INDEX[raw[:, 2]], _OGB_BOND_STEREO_INDEX[raw[:, 3]], raw[:, 4]], axis=1)


# The 2+2 scheme of Hu et al., "Strategies for Pre-training Graph Neural Networks" (snap-stanford/pretrain-gnns,
# chem/loader.py `allowable_features` and chem/model.py table sizes), used by its checkpoints, GraphCL's and MolCA's
# `graphcl_80.pth`. Atom type: atomic number 1..118 at rows 0..117, row 119 the mask token of attribute masking (row
# 118 is never used); chirality: 3 tags. Bond type: 4 types, row 4 the self-loop edge, row 5 the mask token; bond
# direction: 3 values.
PRETRAIN_GNNS_ATOM_VOCABULARIES: tuple[tuple, ...] = (
    tuple(range(1, 119)),  # atomic number
    ("CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW"),  # chirality
)
PRETRAIN_GNNS_BOND_VOCABULARIES: tuple[tuple, ...] = (
    ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC"),  # bond type
    ("NONE", "ENDUPRIGHT", "ENDDOWNRIGHT"),  # bond direction (the `/` and `\` of double-bond stereo)
)
PRETRAIN_GNNS_ATOM_VOCABULARY_SIZES = (120, 3)
PRETRAIN_GNNS_BOND_VOCABULARY_SIZES = (6, 3)
PRETRAIN_GNNS_MASK_ATOM_TYPE = 119
PRETRAIN_GNNS_SELF_LOOP_BOND_TYPE = 4
PRETRAIN_GNNS_MASK_BOND_TYPE = 5


def _index_or(vocabulary: tuple, value, default: int) -> int:
    return vocabulary.index(value) if value in vocabulary else default


def pretrain_gnns_atom_features(mol: Chem.Mol) -> np.ndarray:
    """pretrain-gnns atom features (atom type, chirality). Returns `(num_atoms, 2)` int64.

    Where the original raises (`list.index`) or indexes past its table, this maps: an atomic number outside 1..118
    (a dummy atom `*`) to the mask row 119, a chirality tag other than unspecified / CW / CCW to unspecified (0).
    Chirality is restated for neighbours in ascending atom index (`canonical_chiral_tag`), as in the `"ogb"` scheme.
    """
    return pretrain_gnns_atom_features_from_table(atom_table(mol))


def pretrain_gnns_atom_features_from_table(raw: np.ndarray) -> np.ndarray:
    """`pretrain_gnns_atom_features` from the molecule's `atom_table`. Returns `(num_atoms, 2)` int64."""
    atomic_number, chiral_tag = raw[:, 0], raw[:, 1]
    atom_type = np.where((atomic_number >= 1) & (atomic_number <= 118), atomic_number - 1,
                         PRETRAIN_GNNS_MASK_ATOM_TYPE)
    return np.stack([atom_type, _PRETRAIN_GNNS_CHIRALITY_INDEX[chiral_tag]], axis=1)


_PRETRAIN_GNNS_CHIRALITY_INDEX = _enum_index_table(Chem.ChiralType, PRETRAIN_GNNS_ATOM_VOCABULARIES[1] + (MISC,))
_PRETRAIN_GNNS_CHIRALITY_INDEX[_PRETRAIN_GNNS_CHIRALITY_INDEX == len(PRETRAIN_GNNS_ATOM_VOCABULARIES[1])] = 0


def pretrain_gnns_bond_features(mol: Chem.Mol) -> np.ndarray:
    r"""pretrain-gnns bond features (bond type, bond direction), one row per RDKit bond (bond-index order). Returns
    `(num_bonds, 2)` int64.

    A bond type outside single / double / triple / aromatic (dative, ...) maps to the mask row 5, where the original
    raises; a direction other than none / up-right / down-right to none (0). The direction is RDKit's `GetBondDir()`,
    as in the original: it follows how the SMILES writes `/` and `\` (`F/C=C/F` and `F\C=C\F`, the same molecule, get
    opposite directions), so unlike the other features it depends on the writing.
    """
    bond_types, directions = PRETRAIN_GNNS_BOND_VOCABULARIES
    rows = [(_index_or(bond_types, str(bond.GetBondType()), PRETRAIN_GNNS_MASK_BOND_TYPE),
             _index_or(directions, str(bond.GetBondDir()), 0))
            for bond in molecule_bonds(mol)]
    return np.array(rows, dtype=np.int64).reshape(-1, len(PRETRAIN_GNNS_BOND_VOCABULARIES))


@dataclass(frozen=True)
class FeatureScheme:
    """How atoms and bonds become integer features; `*_vocabulary_sizes` size the model's embedding tables.

    `self_loop_bond_features`: the bond feature row of the self-loop edges a GIN with `gin_variant="pretrain_gnns"`
    adds to every atom (a reserved row of the scheme's bond vocabularies), or `None` when the scheme has none.
    `atom_features_from_table` / `bond_features_from_table`: the same features from the molecule's `atom_table` /
    `bond_table` (which `mol_to_graph` reads once for all its steps), or `None` to call `atom_features(mol)` /
    `bond_features(mol)`.
    """

    name: str
    atom_features: Callable[[Chem.Mol], np.ndarray]
    bond_features: Callable[[Chem.Mol], np.ndarray]
    atom_vocabulary_sizes: tuple[int, ...]
    bond_vocabulary_sizes: tuple[int, ...]
    self_loop_bond_features: tuple[int, ...] | None = None
    atom_features_from_table: Callable[[np.ndarray], np.ndarray] | None = None
    bond_features_from_table: Callable[[np.ndarray], np.ndarray] | None = None


FEATURE_SCHEMES: dict[str, FeatureScheme] = {
    "ogb": FeatureScheme(
        name="ogb",
        atom_features=ogb_atom_features,
        bond_features=ogb_bond_features,
        atom_vocabulary_sizes=tuple(len(v) for v in OGB_ATOM_VOCABULARIES),
        bond_vocabulary_sizes=tuple(len(v) for v in OGB_BOND_VOCABULARIES),
        atom_features_from_table=ogb_atom_features_from_table,
        bond_features_from_table=ogb_bond_features_from_table,
    ),
    "pretrain_gnns": FeatureScheme(
        name="pretrain_gnns",
        atom_features=pretrain_gnns_atom_features,
        bond_features=pretrain_gnns_bond_features,
        atom_vocabulary_sizes=PRETRAIN_GNNS_ATOM_VOCABULARY_SIZES,
        bond_vocabulary_sizes=PRETRAIN_GNNS_BOND_VOCABULARY_SIZES,
        self_loop_bond_features=(PRETRAIN_GNNS_SELF_LOOP_BOND_TYPE, 0),
        atom_features_from_table=pretrain_gnns_atom_features_from_table,
    ),
}


@dataclass
class MolecularGraph:
    """One molecule as arrays. `n` atoms, `m` bonds (each stored in both directions, so `2m` edges).

    atom_features: (n, num_atom_features) int64
    edge_index: (2, 2m) int64, both directions of every bond
    bond_features: (2m, num_bond_features) int64, aligned with `edge_index`
    fragment_ids: (n,) int64, canonical BRICS fragment of each atom (fragments numbered by their lowest canonical rank)
    structure_rank: (n,) int64, position of each atom in the structure-aware order
    distance_to_previous / distance_to_next: (n,) int64, graph distance to the atom before / after in that order,
        clipped to `max_distance`; 0 marks the start / end of the sequence, `max_distance` also means "not connected"
    motif_counts: (num_functional_groups,) float32, RDKit `fr_*` counts
    """

    atom_features: np.ndarray
    edge_index: np.ndarray
    bond_features: np.ndarray
    fragment_ids: np.ndarray
    structure_rank: np.ndarray
    distance_to_previous: np.ndarray
    distance_to_next: np.ndarray
    motif_counts: np.ndarray

    @property
    def num_atoms(self) -> int:
        return self.atom_features.shape[0]


def _preview(smiles: str, width: int = 40) -> str:
    """The SMILES as quoted in an error message: in full when short, else its first `width` characters."""
    return repr(smiles) if len(smiles) <= width else f"{smiles[:width]!r}..."


def check_smiles(smiles, index: int = 0, max_smiles_length: int = DEFAULT_MAX_SMILES_LENGTH) -> str:
    """Check what costs nothing to check (type, emptiness, length) before any RDKit work; errors name the item."""
    if smiles is None:
        raise ValueError(f"SMILES #{index} is None; expected a SMILES string")
    if not isinstance(smiles, str):
        raise TypeError(f"SMILES #{index} is a {type(smiles).__name__} ({smiles!r}); expected a SMILES string")
    if not smiles.strip():
        raise ValueError(f"SMILES #{index} is an empty string; expected a SMILES string")
    if len(smiles) > max_smiles_length:
        raise ValueError(
            f"SMILES #{index} {_preview(smiles)} has {len(smiles):,} characters, more than max_smiles_length="
            f"{max_smiles_length:,}; raise HSANetFeatureExtractor(max_smiles_length=...) to featurize it"
        )
    return smiles


def canonical_atom_order(mol: Chem.Mol) -> Chem.Mol:
    """The molecule renumbered so that atom `i` has RDKit canonical rank `i` (`CanonicalRankAtoms` with ties broken,
    then `RenumberAtoms`): the numbering, hence every feature, no longer depends on how the SMILES was written."""
    rank = np.fromiter(Chem.CanonicalRankAtoms(mol, breakTies=True), dtype=np.int64, count=mol.GetNumAtoms())
    return Chem.RenumberAtoms(mol, np.argsort(rank).tolist())


def parse_smiles(
    smiles,
    index: int = 0,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    max_smiles_length: int = DEFAULT_MAX_SMILES_LENGTH,
) -> Chem.Mol:
    """Parse one SMILES into a molecule in canonical atom order (`canonical_atom_order`), naming the batch item when
    it is not valid or exceeds a limit.

    The limits are checked before the expensive work: the length first, then the number of atoms written in the
    SMILES (explicit hydrogens included), read by RDKit's parser without sanitization
    (a fast pass, before any sanitization or ranking). Every atom takes at least one character, so that pass is
    skipped when the SMILES has no more characters than `max_atoms` (a drug-like molecule against the default).
    """
    check_smiles(smiles, index, max_smiles_length)
    if len(smiles) > max_atoms:
        with rdBase.BlockLogs():
            unsanitized = Chem.MolFromSmiles(smiles, sanitize=False)
        if unsanitized is None:
            raise ValueError(f"SMILES #{index} {_preview(smiles)} could not be parsed by RDKit")
        if unsanitized.GetNumAtoms() > max_atoms:
            raise ValueError(
                f"SMILES #{index} {_preview(smiles)} has {unsanitized.GetNumAtoms():,} atoms, more than max_atoms="
                f"{max_atoms:,}; raise HSANetFeatureExtractor(max_atoms=...) to featurize it"
            )
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"SMILES #{index} {_preview(smiles)} could not be parsed by RDKit")
    if mol.GetNumAtoms() == 0:
        raise ValueError(f"SMILES #{index} {_preview(smiles)} has no atoms")
    return canonical_atom_order(mol)


def brics_bonds(mol: Chem.Mol) -> np.ndarray:
    """Atom pairs of the bonds BRICS cuts: `BRICS.FindBRICSBonds`'s rules, without RDKit's default cap of 1,000
    matches per rule. Returns `(num_cut_bonds, 2)` int64 (a bond may be listed more than once)."""
    environments = {name: mol.HasSubstructMatch(pattern) for name, pattern in BRICS.environMatchers.items()}
    pairs = [
        match[:2]
        for rules in BRICS.bondMatchers
        for left, right, _, pattern in rules
        if environments["L" + left] and environments["L" + right]
        for match in mol.GetSubstructMatches(pattern, maxMatches=_ALL_MATCHES)
    ]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _brics_environment_rules() -> tuple[tuple[Chem.Mol, ...], tuple[tuple[int, np.ndarray], ...]]:
    """`BRICS.bondMatchers` restated per atom: the query of each distinct environment SMARTS E (an atom matches the
    one-atom query `[$(E)]` of a rule when it is the first atom of a match of E), and per bond type of the rules (`-`
    single, `=` double) a symmetric (environments, environments) 0/1 matrix of the environment pairs a rule joins."""
    smarts = sorted({BRICS.environs[name] for name in BRICS.environMatchers})
    column = {name: smarts.index(BRICS.environs[name]) for name in BRICS.environMatchers}
    bond_types = {"-": int(Chem.BondType.SINGLE), "=": int(Chem.BondType.DOUBLE)}
    rules: dict[int, np.ndarray] = {}
    for group in BRICS.bondMatchers:
        for left, right, bond_type, _ in group:
            matrix = rules.setdefault(bond_types[bond_type], np.zeros((len(smarts),) * 2, dtype=np.float32))
            matrix[column["L" + left], column["L" + right]] = matrix[column["L" + right], column["L" + left]] = 1.0
    return tuple(Chem.MolFromSmarts(e) for e in smarts), tuple(rules.items())


_BRICS_ENVIRONMENTS, _BRICS_RULES = _brics_environment_rules()


# Substructure screening. Most of the 85 `fr_*` patterns and of the 16 BRICS environments do not occur in a given
# molecule, and RDKit's search costs about as much when it finds nothing. `_SubstructureScreen` proves most of those
# absences from a per-atom table instead (a necessary condition, so only a search that would find nothing is skipped
# and every count stays exact): a query atom can only match an atom whose element, aromaticity, charge, hydrogens,
# degrees and ring membership pass the atom's SMARTS primitives, and a query bond only a bond of an allowed type
# between such atoms. The columns of that table, as (name, offset, size): value v sits in slot v - offset when that is
# in 0..size-2, else in the last slot, "other".
_SCREEN_COLUMNS = (("atomic_number", 0, 120), ("aromatic", 0, 3), ("formal_charge", -4, 10), ("total_hs", 0, 10),
                   ("total_degree", 0, 12), ("degree", 0, 12), ("in_ring", 0, 3))
_SCREEN_COLUMN = {name: column for column, (name, _, _) in enumerate(_SCREEN_COLUMNS)}
# Columns looked up together in one table (their slots combined): (atomic number, aromatic), (charge, hydrogens, ring),
# (total degree, degree).
_SCREEN_GROUPS = ((0, 1), (2, 3, 6), (4, 5))
# RDKit query primitives (`DescribeQuery` names) that compare one column with a value. The rest (valence, ring size,
# ...) are not screened: they allow every atom. SMARTS `H` counts hydrogen neighbours too (`GetTotalNumHs(True)`),
# `X` is `GetTotalDegree`, `D` is `GetDegree`.
_SCREEN_PRIMITIVES = {"AtomAtomicNum": "atomic_number", "AtomFormalCharge": "formal_charge", "AtomHCount": "total_hs",
                      "AtomTotalDegree": "total_degree", "AtomExplicitDegree": "degree"}
_SCREEN_BOND_TYPES = 32  # slots for RDKit's `Chem.BondType` values (all below 31) and "other"


class _UnscreenableQuery(Exception):
    """A query atom whose description the screen does not follow: it then allows every atom."""


def _describe_tree(description: str) -> tuple[str, list[str], list]:
    """RDKit's `DescribeQuery()` text (one node per line, children indented by two spaces) -> (name, tokens,
    children)."""
    lines = [line for line in description.splitlines() if line.strip()]
    position = 0

    def node(depth: int) -> tuple[str, list[str], list]:
        nonlocal position
        name, *tokens = lines[position].split()
        position += 1
        children = []
        while position < len(lines) and (len(lines[position]) - len(lines[position].lstrip(" "))) // 2 > depth:
            children.append(node(depth + 1))
        return name, tokens, children

    tree = node(0)
    if position != len(lines):
        raise _UnscreenableQuery(description)
    return tree


def _recursive_smarts(smarts: str) -> list[tuple[str, bool]]:
    """The outermost `$(...)` groups of an atom's SMARTS, in order, with whether each is negated (`!$(...)`)."""
    groups, start = [], smarts.find("$(")
    while start >= 0:
        depth, end = 0, start + 1
        while True:
            depth += {"(": 1, ")": -1}.get(smarts[end], 0)
            if depth == 0:
                break
            end += 1
        groups.append((smarts[start + 2:end], smarts[start - 1:start] == "!"))
        start = smarts.find("$(", end + 1)
    return groups


def _slot_mask(column: int, values: Sequence[int]) -> np.ndarray:
    _, offset, size = _SCREEN_COLUMNS[column]
    allowed = np.zeros(size, dtype=bool)
    for value in values:
        allowed[value - offset if 0 <= value - offset < size - 1 else size - 1] = True
    return allowed


def _primitive_bound(name: str, tokens: list[str]) -> dict[int, np.ndarray]:
    """Slots a query primitive allows, per column ({} allows every atom). A negated primitive excludes its value
    unless that value shares the "other" slot."""
    if len(tokens) != 3 or tokens[1] not in ("=", "!=") or tokens[2] != "val" or not tokens[0].lstrip("-").isdigit():
        return {}
    value, negated = int(tokens[0]), tokens[1] == "!="
    if name == "AtomType":  # atomic number + 1000 when aromatic
        if negated or value < 0:
            return {}
        return {_SCREEN_COLUMN["atomic_number"]: _slot_mask(_SCREEN_COLUMN["atomic_number"], [value % 1000]),
                _SCREEN_COLUMN["aromatic"]: _slot_mask(_SCREEN_COLUMN["aromatic"], [value // 1000])}
    if name == "AtomInNRings":  # R0 (not in a ring), Rn (in n rings)
        ring = _SCREEN_COLUMN["in_ring"]
        if value == 0:
            return {ring: _slot_mask(ring, [int(negated)])}
        return {ring: _slot_mask(ring, [1])} if value > 0 and not negated else {}
    if name not in _SCREEN_PRIMITIVES:
        return {}
    column = _SCREEN_COLUMN[_SCREEN_PRIMITIVES[name]]
    allowed = _slot_mask(column, [value])
    if not negated:
        return {column: allowed}
    return {} if allowed[-1] else {column: ~allowed}


def _and_bounds(bounds: Sequence[dict]) -> dict[int, np.ndarray]:
    result: dict[int, np.ndarray] = {}
    for bound in bounds:
        for column, allowed in bound.items():
            result[column] = result[column] & allowed if column in result else allowed
    return result


def _or_bounds(bounds: Sequence[dict]) -> dict[int, np.ndarray]:
    columns = set(bounds[0]).intersection(*bounds[1:])
    return {column: np.logical_or.reduce([bound[column] for bound in bounds]) for column in columns}


def _and_formulas(formulas: Sequence) -> object:
    kept = tuple(formula for formula in formulas if formula is not True)
    return True if not kept else kept[0] if len(kept) == 1 else ("and", kept)


def _or_formulas(formulas: Sequence) -> object:
    return True if any(formula is True for formula in formulas) else ("or", tuple(formulas))


def _bond_bound(tree: tuple[str, list[str], list]) -> np.ndarray | None:
    """Bond types a query bond allows (bool over `_SCREEN_BOND_TYPES` slots), or None for any."""
    name, tokens, children = tree
    if name in ("BondAnd", "BondOr") and not tokens and children:
        parts = [_bond_bound(child) for child in children]
        if name == "BondAnd":
            known = [part for part in parts if part is not None]
            return np.logical_and.reduce(known) if known else None
        return None if any(part is None for part in parts) else np.logical_or.reduce(parts)
    if children or len(tokens) != 3 or tokens[1:] != ["=", "val"] or not tokens[0].isdigit():
        return None
    if name == "SingleOrAromaticBond":
        types = (int(Chem.BondType.SINGLE), int(Chem.BondType.AROMATIC))
    elif name == "BondOrder" and int(tokens[0]) < _SCREEN_BOND_TYPES - 1:
        types = (int(tokens[0]),)
    else:
        return None
    allowed = np.zeros(_SCREEN_BOND_TYPES, dtype=bool)
    allowed[list(types)] = True
    return allowed


def _pack_bits(rows: np.ndarray) -> np.ndarray:
    """(k, r) bool -> (k, ceil(r / 64)) uint64, bit j of row i at word j // 64, bit j % 64."""
    padded = np.zeros((rows.shape[0], -(-rows.shape[1] // 64) * 64), dtype=bool)
    padded[:, :rows.shape[1]] = rows
    return np.packbits(padded, axis=1, bitorder="little").view(np.uint64)


class _SubstructureScreen:
    """Which of `patterns` (SMARTS query molecules) can match a molecule, decided from per-atom and per-bond tables
    (a necessary condition: a pattern it rules out has no match; one it keeps may have none).

    Every query atom gets the slots it allows per column of `_SCREEN_COLUMNS` (from its `DescribeQuery` tree: AND
    intersects, OR unites, unknown or negated compound parts allow everything), every query bond the bond types it
    allows. A pattern passes when each of its query atoms allows some atom of the molecule and each of its query bonds
    allows some bond whose two atoms its two query atoms allow. A recursive primitive `$(E)` allows what E's first atom
    allows and requires E to pass too (a negated one, `!$(E)`, allows everything). The allowed-sets of all query atoms
    and bonds are bit-packed, so a molecule costs a few NumPy operations on (atoms, words) arrays. `starts_of`: the
    patterns (indices) for which `screen` also says which atoms may start a match.
    """

    def __init__(self, patterns: Sequence[Chem.Mol], starts_of: Sequence[int] = ()):
        self._atom_bounds: list[dict] = []  # per query atom, over all patterns and their recursive parts
        self._bonds: list[tuple[int, int, np.ndarray | None]] = []  # per query bond: its atoms' rows, its types
        self._graphs: list[tuple[list[int], list[int]]] = []  # per query graph: its atom rows and bond rows
        self._formulas: list = []  # per query graph: the recursive parts it requires (True: none)
        self._by_smarts: dict[str, int] = {}
        self.patterns = [self._add_graph(pattern) for pattern in patterns]
        num_atoms, num_bonds = len(self._atom_bounds), len(self._bonds)
        begin = np.array([atom for atom, _, _ in self._bonds], dtype=np.int64)
        end = np.array([atom for _, atom, _ in self._bonds], dtype=np.int64)
        # Per group of columns (`_SCREEN_GROUPS`), (combined slots, words): the bits of the query atoms, of the bonds'
        # first atoms and of their second atoms that allow those slots.
        self._tables = []
        for group in _SCREEN_GROUPS:
            allowed = np.ones((1, num_atoms), dtype=bool)
            for column in group:
                every_slot = np.ones(_SCREEN_COLUMNS[column][2], dtype=bool)
                by_slot = np.stack([bound.get(column, every_slot) for bound in self._atom_bounds], axis=1)
                allowed = (allowed[:, None, :] & by_slot[None, :, :]).reshape(-1, num_atoms)
            self._tables.append(np.concatenate([_pack_bits(allowed), _pack_bits(allowed[:, begin]),
                                                _pack_bits(allowed[:, end])], axis=1))
        self._atom_words = -(-num_atoms // 64)
        self._bond_words = -(-num_bonds // 64)
        any_type = np.ones(_SCREEN_BOND_TYPES, dtype=bool)
        self._bond_types = _pack_bits(np.stack([any_type if types is None else types for _, _, types in self._bonds],
                                               axis=1))
        requirements = np.zeros((len(self._graphs), num_atoms + num_bonds), dtype=bool)
        for graph, (atoms, bonds) in enumerate(self._graphs):
            requirements[graph, atoms] = True
            requirements[graph, [num_atoms + bond for bond in bonds]] = True
        self._requirements = np.concatenate([_pack_bits(requirements[:, :num_atoms]),
                                             _pack_bits(requirements[:, num_atoms:])], axis=1)
        self._pattern_graphs = np.array(self.patterns, dtype=np.int64)
        self._starts_of = np.array(starts_of, dtype=np.int64)
        roots = np.array([self._graphs[self.patterns[pattern]][0][0] for pattern in starts_of], dtype=np.int64)
        self._root_words, self._root_shifts = roots // 64, (roots % 64).astype(np.uint64)
        # The recursive requirements as straight-line code on bitsets (bit k: molecule k); a graph's parts are numbered
        # before it.
        lines = [f"    ok[{graph}] = ok[{graph}] & {self._code(formula)}"
                 for graph, formula in enumerate(self._formulas) if formula is not True]
        namespace: dict = {}
        exec("def resolve(ok):\n" + "\n".join(lines + ["    return ok"]), namespace)
        self._resolve = namespace["resolve"]

    def _code(self, formula) -> str:
        kind, parts = formula
        if kind == "graph":
            return f"ok[{parts}]"
        return "(" + f" {_BITSET_OPERATORS[kind]} ".join(self._code(part) for part in parts) + ")"

    def _add_graph(self, query: Chem.Mol) -> int:
        bounds, formulas = zip(*(self._atom(atom) for atom in query.GetAtoms()))
        first = len(self._atom_bounds)
        self._atom_bounds.extend(bounds)
        bond_rows = []
        for bond in query.GetBonds():
            try:
                types = _bond_bound(_describe_tree(bond.DescribeQuery()))
            except (_UnscreenableQuery, IndexError):
                types = None
            bond_rows.append(len(self._bonds))
            self._bonds.append((first + bond.GetBeginAtomIdx(), first + bond.GetEndAtomIdx(), types))
        self._graphs.append((list(range(first, first + len(bounds))), bond_rows))
        self._formulas.append(_and_formulas(formulas))
        return len(self._graphs) - 1

    def _atom(self, atom: Chem.Atom) -> tuple[dict, object]:
        """(allowed slots per column, required recursive parts) of one query atom."""
        try:
            groups = iter(_recursive_smarts(atom.GetSmarts()))
            bound = self._node(_describe_tree(atom.DescribeQuery()), groups)
            if next(groups, None) is not None:
                raise _UnscreenableQuery(atom.GetSmarts())
            return bound
        except (_UnscreenableQuery, IndexError):
            return {}, True

    def _node(self, tree, groups) -> tuple[dict, object]:
        name, tokens, children = tree
        if name in ("AtomAnd", "AtomOr") and not tokens and children:
            bounds, formulas = zip(*(self._node(child, groups) for child in children))
            if name == "AtomAnd":
                return _and_bounds(bounds), _and_formulas(formulas)
            return _or_bounds(bounds), _or_formulas(formulas)
        if children:
            raise _UnscreenableQuery(name)
        if name != "RecursiveStructure":
            return _primitive_bound(name, tokens), True
        smarts, negated = next(groups, (None, None))  # the groups come in the order the description lists them
        if smarts is None or negated != ("not" in tokens):
            raise _UnscreenableQuery(name)
        if negated:
            return {}, True
        if smarts not in self._by_smarts:
            query = Chem.MolFromSmarts(smarts)
            if query is None or query.GetNumAtoms() == 0:
                raise _UnscreenableQuery(smarts)
            self._by_smarts[smarts] = self._add_graph(query)
        graph = self._by_smarts[smarts]
        return self._atom_bounds[self._graphs[graph][0][0]], ("graph", graph)

    def screen(self, slots: np.ndarray, bonds: np.ndarray, bond_types: np.ndarray,
               atom_starts: np.ndarray | None = None,
               bond_starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Screen several molecules at once, stacked: `slots`: (atoms, 3) combined slots (`screen_slots`); `bonds`:
        (bonds, 2) atom indices into the stack; `bond_types`: (bonds,) RDKit bond type values; `atom_starts` /
        `bond_starts`: (molecules + 1,) where each molecule's atoms / bonds start in the stack, and the totals (one
        molecule when not given). Returns `(molecules, len(patterns))` bool, whether each pattern can match each
        molecule, and (atoms, len(starts_of)) bool, whether each atom can start a match (be the first atom) of each of
        those patterns."""
        atom_starts = np.array([0, len(slots)]) if atom_starts is None else atom_starts
        bond_starts = np.array([0, len(bonds)]) if bond_starts is None else bond_starts
        num_molecules = len(atom_starts) - 1
        words = self._tables[0][slots[:, 0]]
        for group in range(1, len(self._tables)):
            words &= self._tables[group][slots[:, group]]
        atoms, begin = self._atom_words, self._atom_words + self._bond_words
        have = np.zeros((num_molecules, begin), dtype=np.uint64)
        have[:, :atoms] = np.bitwise_or.reduceat(words[:, :atoms], atom_starts[:-1], axis=0)
        if len(bonds):
            first, second = words[bonds[:, 0]], words[bonds[:, 1]]
            types = self._bond_types[np.minimum(bond_types, _SCREEN_BOND_TYPES - 1)]
            rows = ((first[:, atoms:begin] & second[:, begin:]) | (second[:, atoms:begin] & first[:, begin:])) & types
            bonded = np.diff(bond_starts) > 0  # `reduceat` would give a molecule without bonds its next bond's row
            have[bonded, atoms:] = np.bitwise_or.reduceat(rows, bond_starts[:-1][bonded], axis=0)
        graph_ok = self._resolve_molecules(~(self._requirements[None] & ~have[:, None]).any(axis=2))
        possible = graph_ok[:, self._pattern_graphs]
        starts = ((words[:, self._root_words] >> self._root_shifts) & np.uint64(1)).astype(bool)
        return possible, starts & np.repeat(possible[:, self._starts_of], np.diff(atom_starts), axis=0)

    def _resolve_molecules(self, ok: np.ndarray) -> np.ndarray:
        """(molecules, graphs) bool -> the same with every graph's recursive requirements applied: 64 molecules at a
        time as one Python integer per graph, so the straight-line code runs once per 64 molecules."""
        resolved = np.empty_like(ok)
        shifts = np.arange(64, dtype=np.uint64)[:, None]
        for start in range(0, len(ok), 64):
            block = np.zeros((ok.shape[1], 64), dtype=bool)
            block[:, :min(64, len(ok) - start)] = ok[start:start + 64].T
            bits = self._resolve(np.packbits(block, axis=1, bitorder="little").view(np.uint64)[:, 0].tolist())
            unpacked = (np.array(bits, dtype=np.uint64)[None, :] >> shifts) & np.uint64(1)
            resolved[start:start + 64] = unpacked[:min(64, len(ok) - start)].astype(bool)
        return resolved


_BITSET_OPERATORS = {"and": "&", "or": "|"}


def screen_slots(atom_table: np.ndarray, bond_table: np.ndarray, degrees: np.ndarray | None = None) -> np.ndarray:
    """The per-atom slots `_SubstructureScreen.screen` reads, from `atom_table` ((atoms, 9): `_ATOM_TABLE_COLUMNS`),
    `bond_table` ((bonds, 6): `_BOND_TABLE_COLUMNS`) and the atoms' `degrees` (bonds per atom, counted when not given):
    the values of `_SCREEN_COLUMNS`, as slots, combined per group of `_SCREEN_GROUPS`. Returns `(atoms, 3)` int64."""
    num_atoms = len(atom_table)
    values = atom_table[:, _SCREEN_SOURCE_COLUMNS]
    values[:, _SCREEN_COLUMN["degree"]] = (np.bincount(bond_table[:, :2].reshape(-1), minlength=num_atoms)
                                           if degrees is None else degrees)
    hydrogen = atom_table[:, 0] == 1
    if hydrogen.any():  # SMARTS `H` also counts explicit hydrogen neighbours
        begin, end = bond_table[:, 0], bond_table[:, 1]
        values[:, _SCREEN_COLUMN["total_hs"]] += (np.bincount(begin[hydrogen[end]], minlength=num_atoms)
                                                  + np.bincount(end[hydrogen[begin]], minlength=num_atoms))
    values -= _SCREEN_OFFSETS
    slots = np.where((values >= 0) & (values < _SCREEN_SIZES - 1), values, _SCREEN_SIZES - 1)
    return slots @ _SCREEN_RADIX


_SCREEN_OFFSETS = np.array([offset for _, offset, _ in _SCREEN_COLUMNS])
_SCREEN_SIZES = np.array([size for _, _, size in _SCREEN_COLUMNS])
# `atom_table` column of each screen column (degree: replaced by the bond count).
_SCREEN_SOURCE_COLUMNS = [_ATOM_TABLE_COLUMNS.index(name) for name in
                          ("atomic_number", "aromatic", "formal_charge", "total_hs", "total_degree", "total_degree",
                           "in_ring")]
# (7, 3): slot of each column -> combined slot of its group (the group's first column is the most significant digit).
_SCREEN_RADIX = np.zeros((len(_SCREEN_COLUMNS), len(_SCREEN_GROUPS)), dtype=np.int64)
for _group, _columns in enumerate(_SCREEN_GROUPS):
    _SCREEN_RADIX[list(_columns), _group] = np.cumprod([1] + [_SCREEN_SIZES[c] for c in _columns[:0:-1]])[::-1]
# One screen for the `fr_*` patterns and the BRICS environments (the first `len(_FUNCTIONAL_GROUP_PATTERNS)` results),
# with the atoms that may start each environment.
_SCREEN = _SubstructureScreen(
    _FUNCTIONAL_GROUP_PATTERNS + _BRICS_ENVIRONMENTS,
    starts_of=range(len(_FUNCTIONAL_GROUP_PATTERNS), len(_FUNCTIONAL_GROUP_PATTERNS) + len(_BRICS_ENVIRONMENTS)))


def screen_substructures(mol: Chem.Mol, atoms: np.ndarray | None = None,
                         bonds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What `_SubstructureScreen` leaves to search in `mol`: `(85,)` bool, whether each `fr_*` pattern may match, and
    `(num_atoms, 16)` bool, whether each atom may start a match of each BRICS environment (`_BRICS_ENVIRONMENTS`).
    `atoms` / `bonds`: the molecule's `atom_table` / `bond_table`, read from `mol` when not given."""
    atoms = atom_table(mol) if atoms is None else atoms
    bonds = bond_table(mol) if bonds is None else bonds
    possible, starts = _SCREEN.screen(screen_slots(atoms, bonds), bonds[:, :2], bonds[:, 2])
    return possible[0, :len(_FUNCTIONAL_GROUP_PATTERNS)], starts


def brics_cut_bonds(mol: Chem.Mol, bonds: np.ndarray | None = None, candidates: np.ndarray | None = None,
                    screen: bool = True) -> np.ndarray:
    """RDKit indices of the bonds BRICS cuts, each once: the bonds of `brics_bonds`, found with one search per
    environment instead of one per rule. Returns `(num_cut_bonds,)` int64, ascending.

    A rule `[$(E1)]-;!@[$(E2)]` of `BRICS.bondMatchers` matches an acyclic single bond (`=` rules: double) whose atoms
    match the one-atom queries `[$(E1)]` and `[$(E2)]`, in either direction; an atom matches `[$(E)]` when it starts a
    match of E, which is how RDKit evaluates both ends of the rule. So each of the 16 distinct environments E is
    searched once (all its matches, not made unique, so that every first atom is found), every atom gets a 0/1 row of
    the environments it starts, and a bond is cut when (begin row) x (rule matrix of its bond type) x (end row) is not
    zero. With `screen` only the environments that can take part in a cut are
    searched: those of a rule whose two environments the screen allows at the two ends of some acyclic bond of the
    rule's type (`candidates`, `(num_atoms, 16)` bool, from `screen_substructures` when not given); the other
    environments add nothing to any bond. `bonds`: the molecule's `bond_table`, read when not given.
    """
    table = bond_table(mol) if bonds is None else bonds
    if not screen:
        candidates = np.ones((mol.GetNumAtoms(), len(_BRICS_ENVIRONMENTS)), dtype=bool)
    elif candidates is None:
        candidates = screen_substructures(mol, bonds=table)[1]
    return _brics_cuts([mol], table, candidates, np.array([0, mol.GetNumAtoms()]), np.array([0, len(table)]))


def _brics_cuts(mols: Sequence[Chem.Mol], table: np.ndarray, candidates: np.ndarray, atom_starts: np.ndarray,
                bond_starts: np.ndarray) -> np.ndarray:
    """`brics_cut_bonds` of several molecules at once: `table`, their stacked `bond_table` (atom indices into the
    stack); `candidates`, (stacked atoms, 16) bool; `atom_starts` / `bond_starts`, (molecules + 1,) where each
    molecule's atoms / bonds start. Each molecule is searched for the environments its own bonds may need. Returns the
    cut bonds' rows of `table`, `(num_cut_bonds,)` int64, ascending."""
    acyclic = table[:, 5] == 0
    if not acyclic.any():
        return np.zeros(0, dtype=np.int64)
    possible = candidates.astype(np.float32)
    molecule_of_bond = np.repeat(np.arange(len(mols)), np.diff(bond_starts))
    searched = np.zeros((len(mols), len(_BRICS_ENVIRONMENTS)), dtype=np.int64)  # > 0: search the environment
    kinds = []  # (bonds, their begin atoms, their end atoms, rules) per bond type where a rule may cut
    for bond_type, rules in _BRICS_RULES:
        which = np.flatnonzero(acyclic & (table[:, 2] == bond_type))
        if len(which) == 0:
            continue
        begin, end = table[which, 0], table[which, 1]
        pairs = possible[begin][:, :, None] * possible[end][:, None, :] * rules > 0  # (bond, begin env, end env)
        if pairs.any():
            np.add.at(searched, molecule_of_bond[which], pairs.any(axis=1) | pairs.any(axis=2))
            kinds.append((which, begin, end, rules))
    if not kinds:
        return np.zeros(0, dtype=np.int64)
    environment = np.zeros((len(candidates), len(_BRICS_ENVIRONMENTS)), dtype=np.float32)
    for molecule, column in zip(*np.nonzero(searched)):
        matches = mols[molecule].GetSubstructMatches(_BRICS_ENVIRONMENTS[column], uniquify=False,
                                                     maxMatches=_ALL_MATCHES)
        environment[[atom_starts[molecule] + match[0] for match in matches], column] = 1.0
    cut = [which[((environment[begin] @ rules) * environment[end]).sum(axis=1) > 0]
           for which, begin, end, rules in kinds]
    return np.sort(np.concatenate(cut)) if len(cut) > 1 else cut[0]


def brics_fragment_ids(mol: Chem.Mol, canonical_rank: np.ndarray, bonds: np.ndarray | None = None,
                       cut_bonds: np.ndarray | None = None) -> np.ndarray:
    """Fragment of each atom after cutting BRICS bonds (disconnected parts such as salts are fragments too).

    Fragments are the connected components of the bond graph without the BRICS bonds, numbered by the lowest
    canonical rank among their atoms, so the numbering does not depend on how the SMILES was written
    (`_fragment_ids`). Up to `DENSE_DISTANCE_MAX_ATOMS` atoms the cut bonds come from `brics_cut_bonds`
    (`cut_bonds`: its result, computed when not given); above, where one search per environment returns thousands of
    atoms while most rules' environments are absent, from `brics_bonds`. `bonds`: (num_bonds, 2) atom pairs in RDKit's
    bond order, read from `mol` when not given. Returns `(num_atoms,)` int64.
    """
    num_atoms = mol.GetNumAtoms()
    bonds = bond_table(mol)[:, :2] if bonds is None else bonds
    return _fragment_ids(bonds[~_brics_cut_mask(mol, bonds, cut_bonds)], np.asarray(canonical_rank),
                         np.array([0, num_atoms]))


def _brics_cut_mask(mol: Chem.Mol, bonds: np.ndarray, cut_bonds: np.ndarray | None = None) -> np.ndarray:
    """Whether BRICS cuts each bond of `bonds` ((num_bonds, 2) atom pairs, RDKit's bond order): `cut_bonds` (what
    `brics_cut_bonds` returns, computed when not given) up to `DENSE_DISTANCE_MAX_ATOMS` atoms, `brics_bonds` above.
    Returns `(num_bonds,)` bool."""
    num_atoms = mol.GetNumAtoms()
    if num_atoms > DENSE_DISTANCE_MAX_ATOMS:
        return np.isin(_pair_keys(bonds, num_atoms), _pair_keys(brics_bonds(mol), num_atoms))
    cut = np.zeros(len(bonds), dtype=bool)
    cut[brics_cut_bonds(mol) if cut_bonds is None else cut_bonds] = True
    return cut


def _fragment_ids(kept: np.ndarray, rank: np.ndarray, atom_starts: np.ndarray) -> np.ndarray:
    """Fragments of stacked molecules: the connected components of the bonds `kept` ((k, 2) atom indices into the
    stack, within molecules), numbered from 0 in each molecule (`atom_starts`: (molecules + 1,) where each molecule's
    atoms start, and the total) in the order of the lowest `rank` among their atoms. `rank`: (stacked atoms,) int64, a
    permutation that keeps each molecule's atoms within its own positions (the stack index itself for molecules in
    canonical atom order).

    The components come from hooking and pointer jumping on the ranks (each root points to the lowest-ranked root it
    is bonded to, then every atom to its root's root until all point at roots), a few NumPy operations per round for
    all molecules at once and few rounds (about the log of the longest path); the root of a component is then its
    lowest-ranked atom. Returns `(stacked atoms,)` int64."""
    num_atoms = int(atom_starts[-1])
    parent = np.arange(num_atoms)  # by rank: parent[r] <= r, a root points to itself
    first, second = rank[kept[:, 0]], rank[kept[:, 1]]
    while True:
        low, high = np.minimum(parent[first], parent[second]), np.maximum(parent[first], parent[second])
        joined = low != high
        if not joined.any():
            break
        np.minimum.at(parent, high[joined], low[joined])
        while True:
            grandparent = parent[parent]
            if np.array_equal(grandparent, parent):
                break
            parent = grandparent
    roots = np.cumsum(parent == np.arange(num_atoms))  # roots up to each rank
    before = np.concatenate([[0], roots])[atom_starts[:-1]]  # roots ranked below each molecule's first position
    molecule_of_atom = np.repeat(np.arange(len(atom_starts) - 1), np.diff(atom_starts))
    return roots[parent[rank]] - 1 - before[molecule_of_atom]


def _pair_keys(pairs: np.ndarray, num_atoms: int) -> np.ndarray:
    """One integer per unordered atom pair. `pairs`: (k, 2). Returns `(k,)` int64."""
    return pairs.min(axis=1) * num_atoms + pairs.max(axis=1)


def structure_aware_order(fragment_ids: np.ndarray, degrees: np.ndarray, canonical_rank: np.ndarray,
                          molecule: np.ndarray | None = None) -> np.ndarray:
    """Atom indices sorted by fragment, then degree (ascending, as Graph-Mamba), then canonical rank; for stacked
    molecules (`molecule`: each atom's molecule), molecule by molecule."""
    keys = (canonical_rank, degrees, fragment_ids)
    return np.lexsort(keys if molecule is None else keys + (molecule,))


def consecutive_distances(
    bonds: np.ndarray,
    num_atoms: int,
    order: np.ndarray,
    max_distance: int,
    chunk_size: int = 8192,
    dense_max_atoms: int | None = None,
) -> np.ndarray:
    """Graph distance between consecutive atoms of `order`, clipped to `max_distance` (also for disconnected pairs).

    Up to `MATRIX_DISTANCE_MAX_ATOMS` atoms (drug-like molecules), a breadth-first search on a dense adjacency matrix
    (`_small_graph_distances`); up to `dense_max_atoms` atoms (default `DENSE_DISTANCE_MAX_ATOMS`), one Dijkstra call
    from the pairs' first atoms (bounded size). Above, a breadth-first search from every pair's first atom at once, as
    sparse (pairs, atoms) frontier matrices times the adjacency matrix, bounded at `max_distance - 1` hops (a pair not
    met by then is at `max_distance` or more); a pair leaves the search when it is met. Pairs in different connected
    components are not searched. Each pair's search visits at most the atoms within `max_distance - 1` hops of it (no
    n x n matrix); pairs go `chunk_size` at a time so memory stays bounded.
    `bonds`: (m, 2). Returns `(len(order) - 1,)` int64.
    """
    if num_atoms < 2:
        return np.zeros(0, dtype=np.int64)
    sources, targets = order[:-1], order[1:]
    gaps = np.full(len(sources), max_distance, dtype=np.int64)
    if len(bonds) == 0 or max_distance <= 1:
        return gaps  # distinct atoms are at least 1 apart, which the clip already reads as `max_distance`
    dense_max_atoms = DENSE_DISTANCE_MAX_ATOMS if dense_max_atoms is None else dense_max_atoms
    if num_atoms <= min(MATRIX_DISTANCE_MAX_ATOMS, dense_max_atoms):
        return _small_graph_distances(bonds, np.zeros(len(bonds), dtype=np.int64), sources, targets,
                                      np.zeros(len(sources), dtype=np.int64), num_atoms, max_distance)
    if num_atoms <= dense_max_atoms:
        adjacency = csr_matrix((np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(num_atoms, num_atoms))
        distances = dijkstra(adjacency, directed=False, unweighted=True, indices=sources, limit=max_distance)
        pair_distance = distances[np.arange(len(sources)), targets]
        return np.minimum(np.nan_to_num(pair_distance, posinf=max_distance), max_distance).astype(np.int64)
    both = np.concatenate([bonds, bonds[:, ::-1]])
    adjacency = csr_matrix((np.ones(len(both), dtype=np.float32), (both[:, 0], both[:, 1])), shape=(num_atoms,) * 2)
    adjacency.sum_duplicates()
    adjacency.data[:] = 1.0
    _, component = connected_components(adjacency, directed=False)
    connected = np.flatnonzero(component[sources] == component[targets])
    for start in range(0, len(connected), chunk_size):
        pairs = connected[start:start + chunk_size]
        gaps[pairs] = _bounded_pair_distances(adjacency, sources[pairs], targets[pairs], max_distance)
    return gaps


def _small_graph_distances(bonds: np.ndarray, bond_molecule: np.ndarray, sources: np.ndarray, targets: np.ndarray,
                           pair_molecule: np.ndarray, width: int, limit: int) -> np.ndarray:
    """Hops from `sources[k]` to `targets[k]` in molecule `pair_molecule[k]` (`limit` when more than `limit - 1`; the
    pairs are distinct atoms), for several small molecules at once (atom indices within each molecule, below `width`;
    `bonds[j]` is a bond of molecule `bond_molecule[j]`; molecules numbered from 0). A breadth-first search on dense
    (molecules, width, width) adjacency matrices with self-loops, one batched matrix product per hop: after h - 1
    products, row s of a molecule's `reached` is nonzero exactly at the atoms within h hops of s (entries clipped to 1
    after each product), and a pair's distance is 1 plus the number of hops h < `limit` that have not reached its
    target. For molecules of at most `MATRIX_DISTANCE_MAX_ATOMS` atoms. Returns `(len(sources),)` int64."""
    num_molecules = int(max(pair_molecule.max(initial=-1), bond_molecule.max(initial=-1))) + 1
    closed = np.zeros((num_molecules, width, width), dtype=np.float32)
    closed[:, np.arange(width), np.arange(width)] = 1.0
    closed[bond_molecule, bonds[:, 0], bonds[:, 1]] = closed[bond_molecule, bonds[:, 1], bonds[:, 0]] = 1.0
    target_cells = (pair_molecule * width + sources) * width + targets  # flat positions in (molecules, width, width)
    reached = closed  # within 1 hop
    unmet = reached.take(target_cells) == 0
    distances = 1 + unmet.astype(np.int64)
    for _ in range(2, limit):
        if not unmet.any():
            break
        reached = np.minimum(reached @ closed, 1.0)
        unmet &= reached.take(target_cells) == 0
        distances += unmet
    return distances


def _bounded_pair_distances(adjacency: csr_matrix, sources: np.ndarray, targets: np.ndarray, limit: int) -> np.ndarray:
    """Hops from `sources[k]` to `targets[k]` for each pair k (`limit` when more than `limit - 1`). Shape `(k,)`."""
    num_pairs, num_atoms = len(sources), adjacency.shape[0]
    distances = np.full(num_pairs, limit, dtype=np.int64)
    searching = np.arange(num_pairs)  # pairs still searched; row r of the matrices below is pair `searching[r]`
    frontier = csr_matrix((np.ones(num_pairs, dtype=np.float32), (searching, sources)), shape=(num_pairs, num_atoms))
    reached = frontier
    for hop in range(1, limit):
        step = frontier @ adjacency
        step.data[:] = 1.0
        frontier = (step > reached).astype(np.float32)  # atoms first reached at this hop
        rows, columns = frontier.nonzero()
        met = np.zeros(len(searching), dtype=bool)
        met[rows[columns == targets[searching[rows]]]] = True
        distances[searching[met]] = hop
        keep = ~met & (frontier.getnnz(axis=1) > 0)  # a pair whose frontier is empty cannot be met any more
        if not keep.any():
            break
        searching, frontier, reached = searching[keep], frontier[keep], (reached + frontier)[keep]
    return distances


def functional_group_counts(mol: Chem.Mol, possible: np.ndarray | None = None, screen: bool = True) -> np.ndarray:
    """RDKit `fr_*` functional-group counts (their SMARTS, unique matches, without RDKit's cap of 1,000 matches).
    With `screen`, a pattern that `screen_substructures` rules out counts 0 without a search (`possible`: its `(85,)`
    bool result, computed when not given); the counts are the same. Returns `(85,)` float32."""
    if not screen:
        possible = np.ones(len(_FUNCTIONAL_GROUP_PATTERNS), dtype=bool)
    elif possible is None:
        possible = screen_substructures(mol)[0]
    return _functional_group_counts([mol], possible[None])[0]


def _functional_group_counts(mols: Sequence[Chem.Mol], possible: np.ndarray) -> np.ndarray:
    """`functional_group_counts` of several molecules; `possible`: (molecules, 85) bool, the patterns to search in
    each. Returns `(molecules, 85)` float32."""
    counts = np.zeros((len(mols), len(_FUNCTIONAL_GROUP_PATTERNS)), dtype=np.float32)
    for molecule, index in zip(*np.nonzero(possible)):
        counts[molecule, index] = len(mols[molecule].GetSubstructMatches(_FUNCTIONAL_GROUP_PATTERNS[index],
                                                                         maxMatches=_ALL_MATCHES))
    return counts


def mol_to_graph(mol: Chem.Mol, scheme: FeatureScheme, max_distance: int) -> MolecularGraph:
    """Featurize a parsed molecule (see `MolecularGraph`); `mol` is in canonical atom order (`parse_smiles`). The
    batch of one of `mols_to_graphs`."""
    return mols_to_graphs([mol], scheme, max_distance)[0]


# Molecules `smiles_batch_to_graphs` stacks in one `mols_to_graphs` call: enough to spread the per-call NumPy work,
# few enough that their RDKit molecules stay in the CPU cache between its passes (benchmark table a: batches of 256
# were 0.85x of batches of 32 when stacked whole).
STACK_SIZE = 32
# Molecules per dense distance search in `mols_to_graphs`, taken in order of size (at most 32 x 64 x 64 float32 =
# 512 kB per matrix: they stay in cache).
_DISTANCE_GROUP = 32


def mols_to_graphs(mols: Sequence[Chem.Mol], scheme: FeatureScheme, max_distance: int) -> list[MolecularGraph]:
    """Featurize parsed molecules (see `MolecularGraph`), each in canonical atom order (`parse_smiles`), so an atom's
    index is its canonical rank. Bonds are listed by their (lower, higher) atom index.

    The molecules are stacked (atoms and bonds one after the other, atom indices offset), so each step is a few NumPy
    operations for the whole batch rather than per molecule: RDKit's per-atom and per-bond values are read once
    (`_read_atoms`, `_read_bonds`) for the features, the substructure screen and BRICS; one screen, one BRICS pass,
    one pointer-jumping pass for the fragments, one sort for the structure-aware order and one dense
    breadth-first search per `_DISTANCE_GROUP` small molecules. What stays per molecule is RDKit's: the substructure
    searches the screen leaves, and the distances of molecules above `MATRIX_DISTANCE_MAX_ATOMS` atoms
    (`consecutive_distances`). A molecule's graph does not depend on the others in the batch.
    """
    num_molecules = len(mols)
    molecules = np.arange(num_molecules)
    atom_counts = np.fromiter((mol.GetNumAtoms() for mol in mols), dtype=np.int64, count=num_molecules)
    bond_counts = np.fromiter((mol.GetNumBonds() for mol in mols), dtype=np.int64, count=num_molecules)
    atom_starts = np.concatenate([[0], np.cumsum(atom_counts)])
    bond_starts = np.concatenate([[0], np.cumsum(bond_counts)])
    num_atoms, num_bonds = int(atom_starts[-1]), int(bond_starts[-1])
    molecule_of_atom = np.repeat(molecules, atom_counts)
    molecule_of_bond = np.repeat(molecules, bond_counts)
    local_index = np.arange(num_atoms) - atom_starts[molecule_of_atom]  # = canonical rank

    raw_bonds = _read_bonds(mols)  # RDKit's bond order per molecule; atom indices into the stack from here on
    raw_bonds[:, :2] += atom_starts[molecule_of_bond, None]
    atoms = _read_atoms(mols, raw_bonds)
    bonds = np.sort(raw_bonds[:, :2], axis=1)
    bond_order = np.lexsort((bonds[:, 1], bonds[:, 0]))  # molecule by molecule: the stack keeps them apart
    bond_features = (np.concatenate([scheme.bond_features(mol) for mol in mols])
                     if scheme.bond_features_from_table is None else scheme.bond_features_from_table(raw_bonds))
    bonds, bond_features = bonds[bond_order], bond_features[bond_order]
    atom_features = (np.concatenate([scheme.atom_features(mol) for mol in mols])
                     if scheme.atom_features_from_table is None else scheme.atom_features_from_table(atoms))

    possible, environment_candidates = _SCREEN.screen(screen_slots(atoms, raw_bonds), raw_bonds[:, :2],
                                                      raw_bonds[:, 2], atom_starts, bond_starts)
    motif_counts = _functional_group_counts(mols, possible[:, :len(_FUNCTIONAL_GROUP_PATTERNS)])
    # BRICS: one pass for the molecules up to DENSE_DISTANCE_MAX_ATOMS atoms (no candidates: nothing searched for the
    # others), `brics_bonds` for each larger one.
    large = atom_counts > DENSE_DISTANCE_MAX_ATOMS
    cut = np.zeros(num_bonds, dtype=bool)
    cut[_brics_cuts(mols, raw_bonds, environment_candidates & ~large[molecule_of_atom, None], atom_starts,
                    bond_starts)] = True
    for molecule in np.flatnonzero(large):
        rows = slice(bond_starts[molecule], bond_starts[molecule + 1])
        cut[rows] = _brics_cut_mask(mols[molecule], raw_bonds[rows, :2] - atom_starts[molecule])
    fragment_ids = _fragment_ids(raw_bonds[~cut, :2], np.arange(num_atoms), atom_starts)

    degrees = np.bincount(bonds.reshape(-1), minlength=num_atoms)
    order = structure_aware_order(fragment_ids, degrees, local_index, molecule_of_atom)
    structure_rank = np.empty(num_atoms, dtype=np.int64)
    structure_rank[order] = local_index  # positions within each molecule (`order` keeps the molecules in turn)
    within = molecule_of_atom[order[:-1]] == molecule_of_atom[order[1:]]
    sources, targets = order[:-1][within], order[1:][within]
    gaps = _stacked_consecutive_distances(bonds, sources, targets, order, atom_counts, atom_starts,
                                          molecule_of_atom, max_distance)
    distance_to_previous = np.zeros(num_atoms, dtype=np.int64)
    distance_to_next = np.zeros(num_atoms, dtype=np.int64)
    distance_to_previous[targets] = gaps
    distance_to_next[sources] = gaps

    # Each molecule's edges: its bonds in both directions, all (lower, higher) first, then all (higher, lower).
    forward = bond_starts[molecule_of_bond] + np.arange(num_bonds)  # the sorted bonds stay molecule by molecule
    backward = forward + bond_counts[molecule_of_bond]
    local_bonds = bonds - atom_starts[molecule_of_bond, None]
    edge_index = np.empty((2, 2 * num_bonds), dtype=np.int64)
    edge_index[:, forward], edge_index[:, backward] = local_bonds.T, local_bonds[:, ::-1].T
    edge_features = np.empty((2 * num_bonds, bond_features.shape[1]), dtype=bond_features.dtype)
    edge_features[forward], edge_features[backward] = bond_features, bond_features
    graphs = []
    for molecule in range(num_molecules):
        atom_rows = slice(atom_starts[molecule], atom_starts[molecule + 1])
        edge_rows = slice(2 * bond_starts[molecule], 2 * bond_starts[molecule + 1])
        graphs.append(MolecularGraph(
            atom_features=atom_features[atom_rows],
            edge_index=edge_index[:, edge_rows],
            bond_features=edge_features[edge_rows],
            fragment_ids=fragment_ids[atom_rows],
            structure_rank=structure_rank[atom_rows],
            distance_to_previous=distance_to_previous[atom_rows],
            distance_to_next=distance_to_next[atom_rows],
            motif_counts=motif_counts[molecule],
        ))
    return graphs


def _stacked_consecutive_distances(bonds: np.ndarray, sources: np.ndarray, targets: np.ndarray, order: np.ndarray,
                                   atom_counts: np.ndarray, atom_starts: np.ndarray, molecule_of_atom: np.ndarray,
                                   max_distance: int) -> np.ndarray:
    """`consecutive_distances` of stacked molecules: the pairs (`sources[k]`, `targets[k]`), consecutive atoms of
    `order` within a molecule (atom indices into the stack; `bonds`, (bonds, 2), too). Molecules of at most
    `MATRIX_DISTANCE_MAX_ATOMS` atoms go `_DISTANCE_GROUP` at a time, in order of size, through
    `_small_graph_distances`, larger ones one by one through `consecutive_distances`. Returns `(len(sources),)`
    int64."""
    gaps = np.full(len(sources), max_distance, dtype=np.int64)
    if len(bonds) == 0 or max_distance <= 1 or len(sources) == 0:
        return gaps  # distinct atoms are at least 1 apart, which the clip already reads as `max_distance`
    pair_molecule = molecule_of_atom[sources]
    bond_molecule = molecule_of_atom[bonds[:, 0]]
    small = atom_counts <= MATRIX_DISTANCE_MAX_ATOMS
    # The small molecules in order of size, `_DISTANCE_GROUP` at a time, so that a group's matrices are as wide as its
    # largest molecule; `place`: each small molecule's position in that order (-1: not small).
    by_size = np.flatnonzero(small)[np.argsort(atom_counts[small], kind="stable")]
    place = np.full(len(atom_counts), -1, dtype=np.int64)
    place[by_size] = np.arange(len(by_size))
    pairs_by_place = np.argsort(place[pair_molecule], kind="stable")
    rows_by_place = np.argsort(place[bond_molecule], kind="stable")
    pair_places, row_places = place[pair_molecule][pairs_by_place], place[bond_molecule][rows_by_place]
    for first in range(0, len(by_size), _DISTANCE_GROUP):
        last = first + _DISTANCE_GROUP
        pairs = pairs_by_place[np.searchsorted(pair_places, first):np.searchsorted(pair_places, last)]
        rows = rows_by_place[np.searchsorted(row_places, first):np.searchsorted(row_places, last)]
        if len(pairs) == 0:
            continue
        gaps[pairs] = _small_graph_distances(
            bonds[rows] - atom_starts[bond_molecule[rows], None], place[bond_molecule[rows]] - first,
            sources[pairs] - atom_starts[pair_molecule[pairs]], targets[pairs] - atom_starts[pair_molecule[pairs]],
            place[pair_molecule[pairs]] - first, int(atom_counts[by_size[first:last]].max()), max_distance)
    for molecule in np.flatnonzero(~small):
        start, stop = atom_starts[molecule], atom_starts[molecule + 1]
        pairs = np.arange(*np.searchsorted(pair_molecule, [molecule, molecule + 1]))  # both molecule by molecule
        rows = np.arange(*np.searchsorted(bond_molecule, [molecule, molecule + 1]))
        gaps[pairs] = consecutive_distances(bonds[rows] - start, stop - start, order[start:stop] - start,
                                            max_distance)
    return gaps


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while featurizing (restored after, also on an error; left alone when
    the caller paused it). RDKit hands out every atom, bond, enum value and match as a new collector-tracked object
    (a few hundred per molecule), which triggers collections; in a process that imported torch (about 460,000 tracked
    objects) a full one takes about 0.3 s. Featurizing creates no reference cycles: every object it makes is freed by
    reference counting, so the pause leaves nothing behind (`benchmarks/bench_featurization.py` table a measures the
    featurizer with and without it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def smiles_to_graph(
    smiles: str,
    feature_scheme: str = "ogb",
    max_distance: int = 8,
    index: int = 0,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    max_smiles_length: int = DEFAULT_MAX_SMILES_LENGTH,
) -> MolecularGraph:
    """Parse and featurize one SMILES; `index` is the position reported in error messages."""
    if feature_scheme not in FEATURE_SCHEMES:
        raise ValueError(f"feature_scheme must be one of {sorted(FEATURE_SCHEMES)}, got {feature_scheme!r}")
    with collector_paused():
        mol = parse_smiles(smiles, index, max_atoms=max_atoms, max_smiles_length=max_smiles_length)
        return mol_to_graph(mol, FEATURE_SCHEMES[feature_scheme], max_distance)


def smiles_batch_to_graphs(
    smiles: str | Sequence[str],
    feature_scheme: str = "ogb",
    max_distance: int = 8,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    max_smiles_length: int = DEFAULT_MAX_SMILES_LENGTH,
    indices: Sequence[int] | None = None,
) -> list[MolecularGraph]:
    """Featurize one SMILES or a non-empty sequence of them, `STACK_SIZE` at a time together (`mols_to_graphs`: a
    molecule's graph does not depend on the others). Every item's type and length are checked before any is parsed,
    so a bad item fails the batch at once; errors name the item by its position, or by `indices[position]` (its
    position in the caller's input) when given."""
    if isinstance(smiles, str):
        smiles = [smiles]
    if smiles is None or not isinstance(smiles, Sequence):
        raise TypeError(f"expected a SMILES string or a list of SMILES strings, got {type(smiles).__name__}")
    if len(smiles) == 0:
        raise ValueError("expected at least one SMILES string, got an empty list")
    indices = range(len(smiles)) if indices is None else indices
    if len(indices) != len(smiles):
        raise ValueError(f"got {len(smiles)} SMILES but {len(indices)} indices")
    for i, s in zip(indices, smiles):
        check_smiles(s, i, max_smiles_length)
    if feature_scheme not in FEATURE_SCHEMES:
        raise ValueError(f"feature_scheme must be one of {sorted(FEATURE_SCHEMES)}, got {feature_scheme!r}")
    graphs = []
    with collector_paused():
        for start in range(0, len(smiles), STACK_SIZE):
            mols = [parse_smiles(s, i, max_atoms=max_atoms, max_smiles_length=max_smiles_length)
                    for i, s in zip(indices[start:start + STACK_SIZE], smiles[start:start + STACK_SIZE])]
            graphs.extend(mols_to_graphs(mols, FEATURE_SCHEMES[feature_scheme], max_distance))
    return graphs
