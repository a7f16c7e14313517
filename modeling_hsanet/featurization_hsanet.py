"""SMILES -> molecular graph arrays with RDKit (no torch.nn here).

A molecule becomes a `MolecularGraph` of NumPy arrays:

- OGB-compatible atom (9) and bond (3) features, so encoders pretrained on OGB-style inputs can be reused;
- what the structure-aware Graph-Mamba projector needs: a canonical, structure-aware atom order (BRICS fragment,
  then heavy-atom degree, ties broken by RDKit's canonical rank) and the graph distance between neighbours in
  that order;
- functional-group counts (RDKit's 85 `fr_*` descriptors) for the motif branch.

Cost (measured in `benchmarks/bench_featurization.py`). Memory grows about linearly with the atoms; time does not
yet: RDKit's canonical ranking (`Chem.CanonicalRankAtoms`) refines about once per bond of graph diameter, and on a
20,000-atom chain it is most of the ~15 s. On drug-sized molecules most of the time goes to RDKit's substructure
searches (the 85 `fr_*` patterns and the 16 BRICS environments) and to reading atoms and bonds one call at a time;
table a of the benchmark compares the whole featurizer with PyG's `from_smiles`.
The limits `DEFAULT_MAX_ATOMS` and `DEFAULT_MAX_SMILES_LENGTH` (settings of `HSANetFeatureExtractor`) are checked
before any of that work, so a huge input fails in milliseconds with an error that names the setting to raise. Nothing
here writes SMILES (RDKit's SMILES writer recurses once per atom along a chain and overflowed the C stack at 20,001
atoms) and nothing builds an n x n matrix.

Feature schemes are looked up by name in `FEATURE_SCHEMES`: `"ogb"` (9 atom / 3 bond features, MoleculeSTM's GIN) and
`"pretrain_gnns"` (the 2+2 scheme of Hu et al.: atom type and chirality, bond type and direction; pretrain-gnns and
MolCA's GIN).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import BRICS, Descriptors, Fragments
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
# Up to this many atoms (drug-like molecules), consecutive distances come from a breadth-first search on a dense
# adjacency matrix (`_small_graph_distances`), which has no sparse-matrix set-up cost.
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


def _range_index(values: np.ndarray, vocabulary: tuple) -> np.ndarray:
    """Vectorised `_vocabulary_index` for a vocabulary of consecutive integers followed by `misc`."""
    low, high = vocabulary[0], vocabulary[-2]
    return np.where((values >= low) & (values <= high), values - low, len(vocabulary) - 1)


_OGB_CHIRALITY_INDEX = _enum_index_table(Chem.ChiralType, OGB_ATOM_VOCABULARIES[1])
_OGB_HYBRIDIZATION_INDEX = _enum_index_table(Chem.HybridizationType, OGB_ATOM_VOCABULARIES[6])
_OGB_BOND_TYPE_INDEX = _enum_index_table(Chem.BondType, OGB_BOND_VOCABULARIES[0])
_OGB_BOND_STEREO_INDEX = _enum_index_table(Chem.BondStereo, OGB_BOND_VOCABULARIES[1])


def ogb_atom_features(mol: Chem.Mol) -> np.ndarray:
    """OGB atom features. Returns `(num_atoms, 9)` int64.

    Chirality is OGB's tag restated for neighbours in ascending atom index (`canonical_chiral_tag`): on a molecule
    from `parse_smiles` it does not depend on how the SMILES was written. RDKit's values are read atom by atom as
    integers, then mapped to vocabulary indices column by column (`OGB_ATOM_VOCABULARIES`).
    """
    atoms = [mol.GetAtomWithIdx(i) for i in range(mol.GetNumAtoms())]  # faster than iterating `mol.GetAtoms()`
    raw = np.array(
        [
            (
                atom.GetAtomicNum(),
                atom.GetChiralTag(),
                atom.GetTotalDegree(),  # hydrogens included, as OGB
                atom.GetFormalCharge(),
                atom.GetTotalNumHs(),
                atom.GetNumRadicalElectrons(),
                atom.GetHybridization(),
                atom.GetIsAromatic(),
                atom.IsInRing(),
            )
            for atom in atoms
        ],
        dtype=np.int64,
    ).reshape(-1, len(OGB_ATOM_VOCABULARIES))
    tetrahedral = np.flatnonzero((raw[:, 1] == int(_CW)) | (raw[:, 1] == int(_CCW)))
    raw[tetrahedral, 1] = [int(canonical_chiral_tag(atoms[i])) for i in tetrahedral]
    vocabularies = OGB_ATOM_VOCABULARIES
    return np.stack(
        [
            _range_index(raw[:, 0], vocabularies[0]),  # atomic number
            _OGB_CHIRALITY_INDEX[raw[:, 1]],
            *(_range_index(raw[:, column], vocabularies[column]) for column in range(2, 6)),
            _OGB_HYBRIDIZATION_INDEX[raw[:, 6]],
            raw[:, 7],  # aromatic: (False, True)
            raw[:, 8],  # in ring: (False, True)
        ],
        axis=1,
    )


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


def bond_atom_pairs(bonds: Sequence[Chem.Bond]) -> np.ndarray:
    """`(begin, end)` atom indices of each bond. Returns `(num_bonds, 2)` int64."""
    return np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in bonds], dtype=np.int64).reshape(-1, 2)


def ogb_bond_features(mol: Chem.Mol) -> np.ndarray:
    """OGB bond features, one row per RDKit bond (bond-index order). Returns `(num_bonds, 3)` int64."""
    raw = np.array(
        [(bond.GetBondType(), bond.GetStereo(), bond.GetIsConjugated()) for bond in molecule_bonds(mol)],
        dtype=np.int64,
    ).reshape(-1, len(OGB_BOND_VOCABULARIES))
    # conjugated: (False, True)
    return np.stack([_OGB_BOND_TYPE_INDEX[raw[:, 0]], _OGB_BOND_STEREO_INDEX[raw[:, 1]], raw[:, 2]], axis=1)


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
    atomic_numbers, chirality = PRETRAIN_GNNS_ATOM_VOCABULARIES
    rows = [(_index_or(atomic_numbers, atom.GetAtomicNum(), PRETRAIN_GNNS_MASK_ATOM_TYPE),
             _index_or(chirality, str(canonical_chiral_tag(atom)), 0))
            for atom in mol.GetAtoms()]  # RDKit exposes atoms one at a time
    return np.array(rows, dtype=np.int64).reshape(-1, len(PRETRAIN_GNNS_ATOM_VOCABULARIES))


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
    """

    name: str
    atom_features: Callable[[Chem.Mol], np.ndarray]
    bond_features: Callable[[Chem.Mol], np.ndarray]
    atom_vocabulary_sizes: tuple[int, ...]
    bond_vocabulary_sizes: tuple[int, ...]
    self_loop_bond_features: tuple[int, ...] | None = None


FEATURE_SCHEMES: dict[str, FeatureScheme] = {
    "ogb": FeatureScheme(
        name="ogb",
        atom_features=ogb_atom_features,
        bond_features=ogb_bond_features,
        atom_vocabulary_sizes=tuple(len(v) for v in OGB_ATOM_VOCABULARIES),
        bond_vocabulary_sizes=tuple(len(v) for v in OGB_BOND_VOCABULARIES),
    ),
    "pretrain_gnns": FeatureScheme(
        name="pretrain_gnns",
        atom_features=pretrain_gnns_atom_features,
        bond_features=pretrain_gnns_bond_features,
        atom_vocabulary_sizes=PRETRAIN_GNNS_ATOM_VOCABULARY_SIZES,
        bond_vocabulary_sizes=PRETRAIN_GNNS_BOND_VOCABULARY_SIZES,
        self_loop_bond_features=(PRETRAIN_GNNS_SELF_LOOP_BOND_TYPE, 0),
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
    """`BRICS.bondMatchers` restated per atom: one one-atom query `[$(E)]` per distinct environment SMARTS E, and per
    bond type of the rules (`-` single, `=` double) a symmetric (environments, environments) 0/1 matrix of the
    environment pairs a rule joins."""
    smarts = sorted({BRICS.environs[name] for name in BRICS.environMatchers})
    column = {name: smarts.index(BRICS.environs[name]) for name in BRICS.environMatchers}
    bond_types = {"-": int(Chem.BondType.SINGLE), "=": int(Chem.BondType.DOUBLE)}
    rules: dict[int, np.ndarray] = {}
    for group in BRICS.bondMatchers:
        for left, right, bond_type, _ in group:
            matrix = rules.setdefault(bond_types[bond_type], np.zeros((len(smarts),) * 2, dtype=np.float32))
            matrix[column["L" + left], column["L" + right]] = matrix[column["L" + right], column["L" + left]] = 1.0
    return tuple(Chem.MolFromSmarts(f"[$({e})]") for e in smarts), tuple(rules.items())


_BRICS_ATOM_QUERIES, _BRICS_RULES = _brics_environment_rules()


def brics_cut_bonds(mol: Chem.Mol) -> np.ndarray:
    """RDKit indices of the bonds BRICS cuts, each once: the bonds of `brics_bonds`, found with one search per
    environment instead of one per rule. Returns `(num_cut_bonds,)` int64, ascending.

    A rule `[$(E1)]-;!@[$(E2)]` of `BRICS.bondMatchers` matches an acyclic single bond (`=` rules: double) whose atoms
    match the one-atom queries `[$(E1)]` and `[$(E2)]`, in either direction; an atom matches `[$(E)]` when it starts a
    match of E, which is how RDKit evaluates both ends of the rule. So each of the 16 distinct environments is searched
    once, every atom gets a 0/1 row of the environments it matches, and a bond is cut when (begin row) x (rule matrix
    of its bond type) x (end row) is not zero.
    """
    table = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx(), b.GetBondType(), b.IsInRing())
                      for b in molecule_bonds(mol)], dtype=np.int64).reshape(-1, 4)
    acyclic = table[:, 3] == 0
    if not acyclic.any():
        return np.zeros(0, dtype=np.int64)
    environment = np.zeros((mol.GetNumAtoms(), len(_BRICS_ATOM_QUERIES)), dtype=np.float32)
    for column, query in enumerate(_BRICS_ATOM_QUERIES):
        environment[[match[0] for match in mol.GetSubstructMatches(query, maxMatches=_ALL_MATCHES)], column] = 1.0
    cut = np.zeros(len(table), dtype=bool)
    for bond_type, rules in _BRICS_RULES:
        which = np.flatnonzero(acyclic & (table[:, 2] == bond_type))
        cut[which] = ((environment[table[which, 0]] @ rules) * environment[table[which, 1]]).sum(axis=1) > 0
    return np.flatnonzero(cut)


def brics_fragment_ids(mol: Chem.Mol, canonical_rank: np.ndarray, bonds: np.ndarray | None = None) -> np.ndarray:
    """Fragment of each atom after cutting BRICS bonds (disconnected parts such as salts are fragments too).

    Fragments are the connected components of the bond graph without the BRICS bonds, numbered by the lowest
    canonical rank among their atoms, so the numbering does not depend on how the SMILES was written. Up to
    `DENSE_DISTANCE_MAX_ATOMS` atoms the bonds come from `brics_cut_bonds` and RDKit finds the components
    (`FragmentOnBonds`, then `GetMolFrags`: no sparse matrix to build). Above, where one search per environment
    returns thousands of atoms while most rules' environments are absent, from `brics_bonds`, and the components from
    `scipy.sparse.csgraph` on `bonds`: (num_bonds, 2) atom pairs, read from `mol` when not given.
    Returns `(num_atoms,)` int64.
    """
    num_atoms = mol.GetNumAtoms()
    if num_atoms <= DENSE_DISTANCE_MAX_ATOMS:
        cut = brics_cut_bonds(mol)
        pieces = Chem.FragmentOnBonds(mol, cut.tolist(), addDummies=False) if len(cut) else mol
        atoms_of_fragment = Chem.GetMolFrags(pieces, asMols=False, sanitizeFrags=False)
        num_fragments = len(atoms_of_fragment)
        fragment_of_atom = np.empty(num_atoms, dtype=np.int64)
        fragment_of_atom[np.concatenate(atoms_of_fragment)] = np.repeat(
            np.arange(num_fragments), [len(atoms) for atoms in atoms_of_fragment])
    else:
        bonds = bond_atom_pairs(molecule_bonds(mol)) if bonds is None else bonds
        kept = bonds[~np.isin(_pair_keys(bonds, num_atoms), _pair_keys(brics_bonds(mol), num_atoms))]
        adjacency = csr_matrix((np.ones(len(kept), dtype=np.int8), (kept[:, 0], kept[:, 1])), shape=(num_atoms,) * 2)
        num_fragments, fragment_of_atom = connected_components(adjacency, directed=False)
    lowest_rank = np.full(num_fragments, np.iinfo(np.int64).max)
    np.minimum.at(lowest_rank, fragment_of_atom, canonical_rank)
    canonical_fragment = np.empty(num_fragments, dtype=np.int64)
    canonical_fragment[np.argsort(lowest_rank)] = np.arange(num_fragments)
    return canonical_fragment[fragment_of_atom]


def _pair_keys(pairs: np.ndarray, num_atoms: int) -> np.ndarray:
    """One integer per unordered atom pair. `pairs`: (k, 2). Returns `(k,)` int64."""
    return pairs.min(axis=1) * num_atoms + pairs.max(axis=1)


def structure_aware_order(fragment_ids: np.ndarray, degrees: np.ndarray, canonical_rank: np.ndarray) -> np.ndarray:
    """Atom indices sorted by fragment, then degree (ascending, as Graph-Mamba), then canonical rank."""
    return np.lexsort((canonical_rank, degrees, fragment_ids))


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
        return _small_graph_distances(bonds, num_atoms, sources, targets, max_distance)
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


def _small_graph_distances(bonds: np.ndarray, num_atoms: int, sources: np.ndarray, targets: np.ndarray,
                           limit: int) -> np.ndarray:
    """Hops from `sources[k]` to `targets[k]` (`limit` when more than `limit - 1`), by a breadth-first search from all
    sources at once on a dense (num_atoms, num_atoms) adjacency matrix: one small matrix product per hop, for
    molecules of at most `MATRIX_DISTANCE_MAX_ATOMS` atoms. Returns `(len(sources),)` int64."""
    adjacency = np.zeros((num_atoms, num_atoms), dtype=np.float32)
    adjacency[bonds[:, 0], bonds[:, 1]] = adjacency[bonds[:, 1], bonds[:, 0]] = 1.0
    pairs = np.arange(len(sources))
    reached = np.zeros((len(sources), num_atoms), dtype=bool)
    reached[pairs, sources] = True
    frontier = reached
    distances = np.full(len(sources), limit, dtype=np.int64)
    for hop in range(1, limit):
        frontier = ((frontier.astype(np.float32) @ adjacency) > 0) & ~reached  # atoms first reached at this hop
        reached |= frontier
        distances[frontier[pairs, targets]] = hop
        if reached[pairs, targets].all() or not frontier.any():
            break
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


def functional_group_counts(mol: Chem.Mol) -> np.ndarray:
    """RDKit `fr_*` functional-group counts (their SMARTS, unique matches, without RDKit's cap of 1,000 matches).
    Returns `(85,)` float32."""
    return np.array(
        [len(mol.GetSubstructMatches(pattern, maxMatches=_ALL_MATCHES)) for pattern in _FUNCTIONAL_GROUP_PATTERNS],
        dtype=np.float32,
    )


def mol_to_graph(mol: Chem.Mol, scheme: FeatureScheme, max_distance: int) -> MolecularGraph:
    """Featurize a parsed molecule (see `MolecularGraph`); `mol` is in canonical atom order (`parse_smiles`), so the
    atom index is the canonical rank. Bonds are listed by their (lower, higher) atom index."""
    num_atoms = mol.GetNumAtoms()
    bonds = bond_atom_pairs(molecule_bonds(mol))
    bonds = np.sort(bonds, axis=1)
    bond_order = np.lexsort((bonds[:, 1], bonds[:, 0]))
    bonds, bond_features = bonds[bond_order], scheme.bond_features(mol)[bond_order]
    canonical_rank = np.arange(num_atoms, dtype=np.int64)
    degrees = np.bincount(bonds.reshape(-1), minlength=num_atoms)
    fragment_ids = brics_fragment_ids(mol, canonical_rank, bonds)
    order = structure_aware_order(fragment_ids, degrees, canonical_rank)
    structure_rank = np.empty(num_atoms, dtype=np.int64)
    structure_rank[order] = np.arange(num_atoms)
    gaps = consecutive_distances(bonds, num_atoms, order, max_distance)
    distance_to_previous = np.zeros(num_atoms, dtype=np.int64)
    distance_to_next = np.zeros(num_atoms, dtype=np.int64)
    distance_to_previous[order[1:]] = gaps
    distance_to_next[order[:-1]] = gaps
    return MolecularGraph(
        atom_features=scheme.atom_features(mol),
        edge_index=np.concatenate([bonds, bonds[:, ::-1]]).T.copy(),
        bond_features=np.concatenate([bond_features, bond_features]),
        fragment_ids=fragment_ids,
        structure_rank=structure_rank,
        distance_to_previous=distance_to_previous,
        distance_to_next=distance_to_next,
        motif_counts=functional_group_counts(mol),
    )


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
    mol = parse_smiles(smiles, index, max_atoms=max_atoms, max_smiles_length=max_smiles_length)
    return mol_to_graph(mol, FEATURE_SCHEMES[feature_scheme], max_distance)


def smiles_batch_to_graphs(
    smiles: str | Sequence[str],
    feature_scheme: str = "ogb",
    max_distance: int = 8,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    max_smiles_length: int = DEFAULT_MAX_SMILES_LENGTH,
) -> list[MolecularGraph]:
    """Featurize one SMILES or a non-empty sequence of them. Every item's type and length are checked before any is
    parsed, so a bad item fails the batch at once; errors name the item by its position."""
    if isinstance(smiles, str):
        smiles = [smiles]
    if smiles is None or not isinstance(smiles, Sequence):
        raise TypeError(f"expected a SMILES string or a list of SMILES strings, got {type(smiles).__name__}")
    if len(smiles) == 0:
        raise ValueError("expected at least one SMILES string, got an empty list")
    for i, s in enumerate(smiles):
        check_smiles(s, i, max_smiles_length)
    return [
        smiles_to_graph(s, feature_scheme, max_distance, index=i, max_atoms=max_atoms,
                        max_smiles_length=max_smiles_length)
        for i, s in enumerate(smiles)
    ]
