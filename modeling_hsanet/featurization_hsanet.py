"""SMILES -> molecular graph arrays with RDKit (no torch.nn here).

A molecule becomes a `MolecularGraph` of NumPy arrays:

- OGB-compatible atom (9) and bond (3) features, so encoders pretrained on OGB-style inputs can be reused;
- what the structure-aware Graph-Mamba projector needs: a canonical, structure-aware atom order (BRICS fragment,
  then heavy-atom degree, ties broken by RDKit's canonical rank) and the graph distance between neighbours in
  that order;
- functional-group counts (RDKit's 85 `fr_*` descriptors) for the motif branch.

Feature schemes are looked up by name in `FEATURE_SCHEMES`, so the 2+2 scheme of Hu et al. ("pretrain-gnns") can be
added beside `"ogb"` without touching the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import BRICS, Descriptors
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

MISC = "misc"

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
_FUNCTIONAL_GROUP_COUNTERS: tuple[Callable, ...] = tuple(
    fn for name, fn in Descriptors.descList if name.startswith("fr_")
)


def _vocabulary_index(vocabulary: tuple, value) -> int:
    """Index of `value` in `vocabulary`, or of its last entry (`misc`) when absent (OGB's `safe_index`)."""
    try:
        return vocabulary.index(value)
    except ValueError:
        return len(vocabulary) - 1


def ogb_atom_features(mol: Chem.Mol) -> np.ndarray:
    """OGB atom features. Returns `(num_atoms, 9)` int64."""
    raw = [
        (
            atom.GetAtomicNum(),
            str(atom.GetChiralTag()),
            atom.GetTotalDegree(),  # hydrogens included, as OGB
            atom.GetFormalCharge(),
            atom.GetTotalNumHs(),
            atom.GetNumRadicalElectrons(),
            str(atom.GetHybridization()),
            atom.GetIsAromatic(),
            atom.IsInRing(),
        )
        for atom in mol.GetAtoms()  # RDKit exposes atoms one at a time
    ]
    return np.array(
        [[_vocabulary_index(vocab, value) for vocab, value in zip(OGB_ATOM_VOCABULARIES, row)] for row in raw],
        dtype=np.int64,
    ).reshape(-1, len(OGB_ATOM_VOCABULARIES))


def ogb_bond_features(mol: Chem.Mol) -> np.ndarray:
    """OGB bond features, one row per RDKit bond. Returns `(num_bonds, 3)` int64."""
    raw = [(str(bond.GetBondType()), str(bond.GetStereo()), bond.GetIsConjugated()) for bond in mol.GetBonds()]
    return np.array(
        [[_vocabulary_index(vocab, value) for vocab, value in zip(OGB_BOND_VOCABULARIES, row)] for row in raw],
        dtype=np.int64,
    ).reshape(-1, len(OGB_BOND_VOCABULARIES))


@dataclass(frozen=True)
class FeatureScheme:
    """How atoms and bonds become integer features; `*_vocabulary_sizes` size the model's embedding tables."""

    name: str
    atom_features: Callable[[Chem.Mol], np.ndarray]
    bond_features: Callable[[Chem.Mol], np.ndarray]
    atom_vocabulary_sizes: tuple[int, ...]
    bond_vocabulary_sizes: tuple[int, ...]


FEATURE_SCHEMES: dict[str, FeatureScheme] = {
    "ogb": FeatureScheme(
        name="ogb",
        atom_features=ogb_atom_features,
        bond_features=ogb_bond_features,
        atom_vocabulary_sizes=tuple(len(v) for v in OGB_ATOM_VOCABULARIES),
        bond_vocabulary_sizes=tuple(len(v) for v in OGB_BOND_VOCABULARIES),
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


def parse_smiles(smiles, index: int = 0) -> Chem.Mol:
    """Parse one SMILES into a molecule in canonical atom order, naming the batch item when it is not valid.

    Re-parsing RDKit's canonical SMILES makes every feature, including OGB's chirality tag (CW/CCW is relative to
    the neighbour order, so it changes with how the SMILES was written), independent of the input writing.
    """
    if smiles is None:
        raise ValueError(f"SMILES #{index} is None; expected a SMILES string")
    if not isinstance(smiles, str):
        raise TypeError(f"SMILES #{index} is a {type(smiles).__name__} ({smiles!r}); expected a SMILES string")
    if not smiles.strip():
        raise ValueError(f"SMILES #{index} is an empty string; expected a SMILES string")
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"SMILES #{index} {smiles!r} could not be parsed by RDKit")
    if mol.GetNumAtoms() == 0:
        raise ValueError(f"SMILES #{index} {smiles!r} has no atoms")
    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(Chem.MolToSmiles(mol))


def brics_fragment_ids(mol: Chem.Mol, canonical_rank: np.ndarray) -> np.ndarray:
    """Fragment of each atom after cutting BRICS bonds (disconnected parts such as salts are fragments too).

    Fragments are numbered by the lowest canonical rank among their atoms, so the numbering does not depend on how
    the SMILES was written. Returns `(num_atoms,)` int64.
    """
    brics_bonds = [mol.GetBondBetweenAtoms(i, j).GetIdx() for (i, j), _ in BRICS.FindBRICSBonds(mol)]
    cut = Chem.FragmentOnBonds(mol, brics_bonds, addDummies=False) if brics_bonds else mol
    fragments = Chem.GetMolFrags(cut, sanitizeFrags=False)
    fragment_of_atom = np.empty(mol.GetNumAtoms(), dtype=np.int64)
    for fragment_index, atoms in enumerate(fragments):
        fragment_of_atom[list(atoms)] = fragment_index
    lowest_rank = np.full(len(fragments), np.iinfo(np.int64).max)
    np.minimum.at(lowest_rank, fragment_of_atom, canonical_rank)
    canonical_fragment = np.empty(len(fragments), dtype=np.int64)
    canonical_fragment[np.argsort(lowest_rank)] = np.arange(len(fragments))
    return canonical_fragment[fragment_of_atom]


def structure_aware_order(fragment_ids: np.ndarray, degrees: np.ndarray, canonical_rank: np.ndarray) -> np.ndarray:
    """Atom indices sorted by fragment, then degree (ascending, as Graph-Mamba), then canonical rank."""
    return np.lexsort((canonical_rank, degrees, fragment_ids))


def consecutive_distances(bonds: np.ndarray, num_atoms: int, order: np.ndarray, max_distance: int) -> np.ndarray:
    """Graph distance between consecutive atoms of `order`, clipped to `max_distance` (also for disconnected pairs).

    A breadth-first search limited to `max_distance` hops from each atom, so the cost stays linear in the number of
    atoms for a fixed limit. `bonds`: (m, 2). Returns `(len(order) - 1,)` int64.
    """
    if num_atoms < 2:
        return np.zeros(0, dtype=np.int64)
    adjacency = csr_matrix((np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(num_atoms, num_atoms))
    sources, targets = order[:-1], order[1:]
    distances = dijkstra(adjacency, directed=False, unweighted=True, indices=sources, limit=max_distance)
    pair_distance = distances[np.arange(len(sources)), targets]
    return np.minimum(np.nan_to_num(pair_distance, posinf=max_distance), max_distance).astype(np.int64)


def functional_group_counts(mol: Chem.Mol) -> np.ndarray:
    """RDKit `fr_*` functional-group counts. Returns `(85,)` float32."""
    return np.array([count(mol) for count in _FUNCTIONAL_GROUP_COUNTERS], dtype=np.float32)


def mol_to_graph(mol: Chem.Mol, scheme: FeatureScheme, max_distance: int) -> MolecularGraph:
    """Featurize a parsed molecule (see `MolecularGraph`)."""
    num_atoms = mol.GetNumAtoms()
    bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()], dtype=np.int64).reshape(-1, 2)
    bond_features = scheme.bond_features(mol)
    canonical_rank = np.array(Chem.CanonicalRankAtoms(mol, breakTies=True), dtype=np.int64)
    degrees = np.bincount(bonds.reshape(-1), minlength=num_atoms)
    fragment_ids = brics_fragment_ids(mol, canonical_rank)
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


def smiles_to_graph(smiles: str, feature_scheme: str = "ogb", max_distance: int = 8, index: int = 0) -> MolecularGraph:
    """Parse and featurize one SMILES; `index` is the position reported in error messages."""
    if feature_scheme not in FEATURE_SCHEMES:
        raise ValueError(f"feature_scheme must be one of {sorted(FEATURE_SCHEMES)}, got {feature_scheme!r}")
    return mol_to_graph(parse_smiles(smiles, index), FEATURE_SCHEMES[feature_scheme], max_distance)


def smiles_batch_to_graphs(
    smiles: str | Sequence[str], feature_scheme: str = "ogb", max_distance: int = 8
) -> list[MolecularGraph]:
    """Featurize one SMILES or a non-empty sequence of them, naming the first bad item in the error."""
    if isinstance(smiles, str):
        smiles = [smiles]
    if smiles is None or not isinstance(smiles, Sequence):
        raise TypeError(f"expected a SMILES string or a list of SMILES strings, got {type(smiles).__name__}")
    if len(smiles) == 0:
        raise ValueError("expected at least one SMILES string, got an empty list")
    return [smiles_to_graph(s, feature_scheme, max_distance, index=i) for i, s in enumerate(smiles)]
