import json
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rdkit import Chem, RDConfig, rdBase
from rdkit.Chem import BRICS, Descriptors
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from modeling_hsanet import HSANetFeatureExtractor, featurization_hsanet
from modeling_hsanet.featurization_hsanet import (
    DEFAULT_MAX_ATOMS,
    DENSE_DISTANCE_MAX_ATOMS,
    FEATURE_SCHEMES,
    FUNCTIONAL_GROUP_NAMES,
    consecutive_distances,
    mol_to_graph,
    parse_smiles,
    smiles_batch_to_graphs,
    smiles_to_graph,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def in_structure_order(graph, values):
    return values[np.argsort(graph.structure_rank)]


def test_ogb_atom_and_bond_features_match_ogb_indices():
    graph = smiles_to_graph("CCO")
    # carbon: atomic number 6 -> 5, unspecified chirality, total degree 4 (hydrogens count, as OGB's
    # GetTotalDegree), charge 0 -> 5, 3 H, no radical, SP3 -> 2
    assert graph.atom_features[0].tolist() == [5, 0, 4, 5, 3, 0, 2, 0, 0]
    # atoms are numbered by canonical rank: CH3, OH, CH2
    assert graph.atom_features[:, 0].tolist() == [5, 7, 5]  # carbon, oxygen, carbon
    assert graph.atom_features[:, 2].tolist() == [4, 2, 4]  # CH3, OH, CH2
    benzene = smiles_to_graph("c1ccccc1")
    assert benzene.bond_features.shape == (12, 3)
    assert (benzene.bond_features == [3, 0, 1]).all()  # aromatic, no stereo, conjugated
    assert benzene.atom_features[:, 7].all() and benzene.atom_features[:, 8].all()  # aromatic, in ring
    sizes = FEATURE_SCHEMES["ogb"].atom_vocabulary_sizes
    assert sizes == (119, 5, 12, 12, 10, 6, 6, 2, 2)


# Neither file below writes stereochemistry, so a few known molecules with stereocentres and E/Z double bonds join
# them: L-alanine, (S)-ibuprofen, D-glucose, cholesterol, penicillin G, sertraline, fumaric acid, (Z)-2-butene,
# tamoxifen, retinol.
STEREO_MOLECULES = [
    "C[C@@H](C(=O)O)N", "C[C@@H](C1=CC=C(C=C1)CC(C)C)C(=O)O", "C([C@@H]1[C@H]([C@@H]([C@H](C(O1)O)O)O)O)O",
    "C[C@H](CCCC(C)C)[C@H]1CC[C@@H]2[C@@]1(CC[C@H]3[C@H]2CC=C4[C@@]3(CC[C@@H](C4)O)C)C",
    "CC1([C@@H](N2[C@H](S1)[C@@H](C2=O)NC(=O)CC3=CC=CC=C3)C(=O)O)C",
    "CN[C@H]1CC[C@H](C2=CC=CC=C21)C3=CC(=C(C=C3)Cl)Cl",
    "OC(=O)/C=C/C(=O)O", "C/C=C\\C", "CC/C(=C(\\C1=CC=CC=C1)/C2=CC=C(C=C2)OCCN(C)C)/C3=CC=CC=C3",
    "CC1=C(C(CCC1)(C)C)/C=C/C(=C/C=C/C(=C/CO)/C)/C",
]


def reference_molecules(cmet_smiles) -> list[str]:
    """Real molecules in canonical form: c-Met ligands (drug-like), the first NCI compounds (charges, salts, metals,
    unusual valences; the few RDKit cannot parse are skipped) and `STEREO_MOLECULES`."""
    with open(os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")) as handle:
        nci = [line.split()[0] for line in handle if line.strip()][:400]
    canonical = []
    with rdBase.BlockLogs():
        for smiles in cmet_smiles[:300] + nci + STEREO_MOLECULES:
            mol = Chem.MolFromSmiles(smiles)
            if mol is not None:
                canonical.append(Chem.MolToSmiles(mol))
    return canonical


def edges_with_features(edge_index: np.ndarray, bond_features: np.ndarray) -> list[tuple[int, ...]]:
    """Edges as sorted `(source, target, *bond features)` rows: the order in which edges are listed is free."""
    return sorted(map(tuple, np.concatenate([edge_index.T, bond_features], axis=1).tolist()))


CHIRAL_TAGS = ("CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW")
CHIRALITY_COLUMN = 1


def features_in_our_numbering(mol, node_feat, edge_index, our_index):
    """Another featurizer's OGB rows for `mol`, restated in our numbering: atom `our_index[i]` is `mol`'s atom `i`.

    Rows and edges are moved to our atom numbers. OGB's chirality tag (CW/CCW) is relative to the order of the atom's
    bonds in `mol`, ours to its neighbours in ascending atom number: where the permutation between the two orders is
    odd, the same configuration has the other tag. Nothing is dropped or loosened; the tags are compared exactly.
    """
    vocabulary = FEATURE_SCHEMES["ogb"]
    assert vocabulary.atom_vocabulary_sizes[CHIRALITY_COLUMN] == 5
    rows = np.array(node_feat, dtype=np.int64).copy()
    for atom in mol.GetAtoms():
        if str(atom.GetChiralTag()) in CHIRAL_TAGS:
            neighbours = [our_index[n.GetIdx()] for n in atom.GetNeighbors()]
            inversions = sum(a > b for i, a in enumerate(neighbours) for b in neighbours[i + 1:])
            if inversions % 2:
                rows[atom.GetIdx(), CHIRALITY_COLUMN] = 3 - rows[atom.GetIdx(), CHIRALITY_COLUMN]  # CW 1 <-> CCW 2
    moved = np.empty_like(rows)
    moved[our_index] = rows
    return moved, our_index[np.asarray(edge_index, dtype=np.int64)]


def our_numbering(mol) -> np.ndarray:
    """`our_index[i]`: the number our featurizer gives `mol`'s atom `i` (its canonical rank, by construction)."""
    return np.array(Chem.CanonicalRankAtoms(mol, breakTies=True), dtype=np.int64)


def test_ogb_scheme_matches_the_ogb_package(ogb_utils, cmet_smiles):
    # Both featurizers read the same SMILES; ours numbers atoms by canonical rank, OGB in SMILES order, so OGB's rows
    # are compared through the explicit atom mapping (and its chirality restated for it). Integers: exact equality.
    smiles2graph = ogb_utils.smiles2graph
    molecules = reference_molecules(cmet_smiles)
    assert len(molecules) > 650
    seen_atom_values, seen_bond_values = [set() for _ in range(9)], [set() for _ in range(3)]
    restated_chirality = 0
    for index, smiles in enumerate(molecules):
        graph, reference = smiles_to_graph(smiles), smiles2graph(smiles)
        assert graph.num_atoms == reference["num_nodes"], f"molecule #{index} {smiles}: number of atoms"
        mol = Chem.MolFromSmiles(smiles)
        node_feat, edge_index = features_in_our_numbering(mol, reference["node_feat"], reference["edge_index"],
                                                          our_numbering(mol))
        restated_chirality += int((node_feat[:, 1] != reference["node_feat"][our_numbering(mol).argsort(), 1]).sum())
        np.testing.assert_array_equal(graph.atom_features, node_feat, err_msg=f"molecule #{index} {smiles}: atoms")
        assert edges_with_features(graph.edge_index, graph.bond_features) == edges_with_features(
            edge_index, reference["edge_feat"]), f"molecule #{index} {smiles}: edges and bond features"
        for column, values in enumerate(graph.atom_features.T):
            seen_atom_values[column].update(values.tolist())
        for column, values in enumerate(graph.bond_features.T):
            seen_bond_values[column].update(values.tolist())
    # the molecules exercise the rules beyond the defaults: chirality CW and CCW, several charges, 0-3 hydrogens,
    # SP to SP3 hybridization and the "misc" entry, single to aromatic bonds, Z and E double bonds
    assert {1, 2} <= seen_atom_values[1] and len(seen_atom_values[3]) >= 3 and {0, 1, 2, 3} <= seen_atom_values[4]
    assert {0, 1, 2, 5} <= seen_atom_values[6]
    assert seen_bond_values[0] == {0, 1, 2, 3} and {1, 2} <= seen_bond_values[1]
    assert restated_chirality > 0  # the restatement was exercised, not vacuous


def test_edges_are_stored_in_both_directions():
    graph = smiles_to_graph("CC(=O)N")
    edges = set(map(tuple, graph.edge_index.T.tolist()))
    assert len(edges) == 6 and all((j, i) in edges for i, j in edges)


@pytest.mark.parametrize("smiles", ["CC(=O)Nc1ccc(O)cc1", "O=S(=O)(Nc1cccs1)c2ccc(Oc3ccccc3c4ccccc4)c(c2)C#N",
                                    "C[C@H](N)C(=O)O.[Na+].[Cl-]"])
def test_structure_order_does_not_depend_on_how_the_smiles_is_written(smiles):
    reference = smiles_to_graph(smiles)
    mol = Chem.MolFromSmiles(smiles)
    for seed in range(5):
        graph = smiles_to_graph(Chem.MolToSmiles(mol, doRandom=True))
        for field in ("atom_features", "fragment_ids", "distance_to_previous", "distance_to_next"):
            np.testing.assert_array_equal(in_structure_order(graph, getattr(graph, field)),
                                          in_structure_order(reference, getattr(reference, field)))
        np.testing.assert_array_equal(graph.motif_counts, reference.motif_counts)


def test_ring_count_patterns_are_counted_in_canonical_order():
    # In a bridged bicycle RDKit's smallest set of rings depends on the atom numbering, and so do SMARTS ring counts
    # such as fr_bicyclic's `[R2][R2]`: they are exact only on the molecule renumbered to canonical order (an atom
    # order of the input's writing gave 1 here, not 2), so the featurizer searches that molecule.
    written = "CC1(C)[CH]2CC=C(CCO)[CH]1C2"  # as in RDKit's NCI set
    canonical = Chem.MolToSmiles(Chem.MolFromSmiles(written))
    column = FUNCTIONAL_GROUP_NAMES.index("fr_bicyclic")
    assert smiles_to_graph(written).motif_counts[column] == smiles_to_graph(canonical).motif_counts[column] == 2


def test_structure_order_groups_fragments_and_sorts_by_degree():
    graph = smiles_to_graph("CC(=O)Nc1ccc(O)cc1")  # paracetamol: BRICS cuts the amide
    ordered_fragments = in_structure_order(graph, graph.fragment_ids)
    assert (np.diff(ordered_fragments) >= 0).all() and ordered_fragments.max() >= 1
    degrees = np.bincount(graph.edge_index[0], minlength=graph.num_atoms)
    for fragment in np.unique(graph.fragment_ids):
        in_fragment = in_structure_order(graph, degrees)[ordered_fragments == fragment]
        assert (np.diff(in_fragment) >= 0).all()


def test_consecutive_distances_are_shortest_paths():
    smiles = "CC(=O)Nc1ccc(O)cc1"
    graph = smiles_to_graph(smiles, max_distance=4)
    distances = Chem.GetDistanceMatrix(parse_smiles(smiles))  # the featurizer's (canonical) atom numbering
    order = np.argsort(graph.structure_rank)
    expected = np.minimum(distances[order[:-1], order[1:]], 4)
    np.testing.assert_array_equal(graph.distance_to_previous[order[1:]], expected)
    np.testing.assert_array_equal(graph.distance_to_next[order[:-1]], expected)
    assert graph.distance_to_previous[order[0]] == 0 and graph.distance_to_next[order[-1]] == 0


@pytest.mark.parametrize(
    "smiles, num_atoms",
    [("C", 1), ("[Na+].[Cl-]", 2), ("[NH4+]", 1), ("[13CH4]", 1), ("[2H]C([2H])([2H])Cl", 5),
     ("F/C=C/F", 4), ("C[C@@H](O)[C@H](N)C", 6), ("c1ccc2[nH]ccc2c1", 9), ("[O-][n+]1ccccc1", 7)],
)
def test_special_molecules_featurize(smiles, num_atoms):
    graph = smiles_to_graph(smiles)
    assert graph.num_atoms == num_atoms
    assert graph.atom_features.shape == (num_atoms, 9)
    assert sorted(graph.structure_rank.tolist()) == list(range(num_atoms))
    assert graph.motif_counts.shape == (len(FUNCTIONAL_GROUP_NAMES),)


def test_disconnected_fragments_get_the_maximum_distance():
    graph = smiles_to_graph("[Na+].[Cl-]", max_distance=8)
    assert sorted(graph.distance_to_previous.tolist()) == [0, 8]
    assert len(set(graph.fragment_ids.tolist())) == 2


def test_large_molecule():
    graph = smiles_to_graph("c1ccccc1CC" * 70)  # 560 heavy atoms
    assert graph.num_atoms == 560
    assert sorted(graph.structure_rank.tolist()) == list(range(560))
    assert graph.edge_index.shape[1] == 2 * (70 * 9 - 1)  # ring (6) + 3 chain bonds per unit


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (None, TypeError, "expected a SMILES string or a list"),
        ([], ValueError, "empty list"),
        (["CCO", None], ValueError, "SMILES #1 is None"),
        (["CCO", "CC", 42], TypeError, "SMILES #2 is a int"),
        (["CCO", ""], ValueError, "SMILES #1 is an empty string"),
        (["CCO", "C1CC"], ValueError, "SMILES #1 'C1CC' could not be parsed by RDKit"),
        (["c1cccc1"], ValueError, "SMILES #0 'c1cccc1' could not be parsed"),
    ],
)
def test_bad_inputs_name_the_item(bad, error, message):
    with pytest.raises(error, match=message):
        smiles_batch_to_graphs(bad)


def test_unknown_feature_scheme():
    with pytest.raises(ValueError, match="feature_scheme"):
        smiles_to_graph("CCO", feature_scheme="nope")


ALANINE_BONDS = [[0, 0], [0, 0], [1, 0], [0, 0], [0, 0]]  # C=O double, the others single


@pytest.mark.parametrize(
    "smiles, atoms, bonds",
    [
        # Hu et al.'s indices: atom type = atomic number - 1, chirality unspecified/CW/CCW = 0/1/2; bond type
        # single/double/triple/aromatic = 0/1/2/3, direction none/up-right/down-right = 0/1/2. Atoms in canonical
        # order, bonds by (lower, higher) atom index.
        ("CC#N", [[5, 0], [6, 0], [5, 0]], [[0, 0], [2, 0]]),  # C, N, C; C-C single, C#N triple
        ("c1ccoc1", [[5, 0]] * 4 + [[7, 0]], [[3, 0]] * 5),
        # alanine: C, N, O, O, C, then the stereocentre (CCW = 2 for L, CW = 1 for D); C=O double
        ("C[C@H](N)C(=O)O", [[5, 0], [6, 0], [7, 0], [7, 0], [5, 0], [5, 2]], ALANINE_BONDS),
        ("C[C@@H](N)C(=O)O", [[5, 0], [6, 0], [7, 0], [7, 0], [5, 0], [5, 1]], ALANINE_BONDS),
        ("F/C=C/F", [[8, 0], [8, 0], [5, 0], [5, 0]], [[0, 1], [0, 1], [1, 0]]),
        ("F/C=C\\F", [[8, 0], [8, 0], [5, 0], [5, 0]], [[0, 1], [0, 2], [1, 0]]),
        # where the original raises: a dummy atom -> the mask row 119, a dative bond -> the mask bond type 5
        ("*C", [[119, 0], [5, 0]], [[0, 0]]),
        ("[Cu]<-N", [[6, 0], [28, 0]], [[5, 0]]),
    ],
)
def test_pretrain_gnns_scheme_uses_hu_et_al_indices(smiles, atoms, bonds):
    scheme = FEATURE_SCHEMES["pretrain_gnns"]
    assert (scheme.atom_vocabulary_sizes, scheme.bond_vocabulary_sizes) == ((120, 3), (6, 3))
    assert scheme.self_loop_bond_features == (4, 0)  # pretrain-gnns' self-loop bond type
    graph = smiles_to_graph(smiles, feature_scheme="pretrain_gnns")
    assert graph.atom_features.tolist() == atoms
    num_bonds = len(bonds)
    assert graph.bond_features.tolist() == bonds + bonds  # both directions of every bond
    np.testing.assert_array_equal(graph.edge_index[:, :num_bonds], graph.edge_index[::-1, num_bonds:])
    # everything but the features is the same graph as with the OGB scheme
    ogb = smiles_to_graph(smiles)
    for field in ("edge_index", "structure_rank", "distance_to_previous", "distance_to_next", "motif_counts"):
        np.testing.assert_array_equal(getattr(graph, field), getattr(ogb, field))


@pytest.mark.parametrize("smiles", ["C[C@@H](N)C(=O)O", "CC(=O)Nc1ccc(O)cc1", "O=C(O)[C@@H]1CCCN1C(=O)[C@H](C)CS"])
def test_pretrain_gnns_features_do_not_depend_on_how_the_smiles_is_written(smiles):
    mol = Chem.MolFromSmiles(smiles)
    reference = smiles_to_graph(smiles, feature_scheme="pretrain_gnns")
    for seed in range(3):
        permutation = np.random.default_rng(seed).permutation(mol.GetNumAtoms()).tolist()
        written = Chem.MolToSmiles(Chem.RenumberAtoms(mol, permutation), canonical=False)
        graph = smiles_to_graph(written, feature_scheme="pretrain_gnns")
        np.testing.assert_array_equal(graph.atom_features, reference.atom_features)
        np.testing.assert_array_equal(graph.bond_features, reference.bond_features)


def test_pretrain_gnns_bond_direction_follows_the_writing_as_in_the_original():
    """Documented limit: the direction column is RDKit's GetBondDir() (the SMILES' `/` and `\\`), as pretrain-gnns
    has it, so two writings of the same E alkene differ there, and only there."""
    up, down = (smiles_to_graph(s, feature_scheme="pretrain_gnns") for s in ("F/C=C/F", "F\\C=C\\F"))
    np.testing.assert_array_equal(up.atom_features, down.atom_features)
    np.testing.assert_array_equal(up.bond_features[:, 0], down.bond_features[:, 0])
    assert sorted(up.bond_features[:, 1].tolist()) == [0, 0, 1, 1, 1, 1]
    assert sorted(down.bond_features[:, 1].tolist()) == [0, 0, 2, 2, 2, 2]


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, 1016), permutation_seed=st.integers(0, 2**32 - 1))
def test_renumbering_atoms_never_changes_the_graph(cmet_smiles, index, permutation_seed):
    mol = Chem.MolFromSmiles(cmet_smiles[index])
    permutation = np.random.default_rng(permutation_seed).permutation(mol.GetNumAtoms()).tolist()
    renumbered = Chem.MolToSmiles(Chem.RenumberAtoms(mol, permutation), canonical=False)
    reference, graph = smiles_to_graph(cmet_smiles[index]), smiles_to_graph(renumbered)
    for field in ("atom_features", "structure_rank", "distance_to_previous", "distance_to_next", "edge_index",
                  "bond_features", "motif_counts"):
        np.testing.assert_array_equal(getattr(graph, field), getattr(reference, field))


# ---------------------------------------------------------------------------------------------------------------------
# The linear featurizer against the previous one (a canonical-SMILES round trip, all-pairs Dijkstra, RDKit's own
# FragmentOnBonds and fr_* functions), kept here as the reference on small molecules.
# ---------------------------------------------------------------------------------------------------------------------


def previous_featurization(smiles: str, max_distance: int) -> dict[str, np.ndarray]:
    """The featurizer as it was before canonical ranking replaced the SMILES round trip (small molecules only)."""
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(Chem.MolToSmiles(Chem.MolFromSmiles(smiles)))
    num_atoms = mol.GetNumAtoms()
    bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()], dtype=np.int64).reshape(-1, 2)
    rank = np.array(Chem.CanonicalRankAtoms(mol, breakTies=True), dtype=np.int64)
    degrees = np.bincount(bonds.reshape(-1), minlength=num_atoms)
    cut_bonds = [mol.GetBondBetweenAtoms(i, j).GetIdx() for (i, j), _ in BRICS.FindBRICSBonds(mol)]
    cut = Chem.FragmentOnBonds(mol, cut_bonds, addDummies=False) if cut_bonds else mol
    fragment = np.empty(num_atoms, dtype=np.int64)
    for number, atoms in enumerate(Chem.GetMolFrags(cut, sanitizeFrags=False)):
        fragment[list(atoms)] = number
    lowest = np.array([rank[fragment == f].min() for f in range(fragment.max() + 1)])
    fragment = np.argsort(np.argsort(lowest))[fragment]
    order = np.lexsort((rank, degrees, fragment))
    adjacency = csr_matrix((np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(num_atoms, num_atoms))
    distances = dijkstra(adjacency, directed=False, unweighted=True)
    gaps = np.minimum(np.nan_to_num(distances[order[:-1], order[1:]], posinf=max_distance), max_distance)
    return {
        "mol": mol,
        "order": order,
        "atom_features": _raw_ogb_rows(mol),
        "fragment_ids": fragment[order],
        "degrees": degrees[order],
        "gaps": gaps.astype(np.int64),
        "motif_counts": np.array([fn(mol) for name, fn in Descriptors.descList if name.startswith("fr_")]),
    }


def _raw_ogb_rows(mol) -> np.ndarray:
    """OGB's rows with RDKit's own chirality tag (relative to the bond order), as the previous featurizer had them."""
    from conversion.convert_molecule_gin_to_hsanet import ogb_reference_atom_row

    return np.array([ogb_reference_atom_row(atom) for atom in mol.GetAtoms()], dtype=np.int64).reshape(-1, 9)


@pytest.mark.parametrize("max_distance, dense_max_atoms", [(8, DENSE_DISTANCE_MAX_ATOMS), (8, 0), (3, 0)])
def test_same_values_as_the_previous_featurizer(cmet_smiles, max_distance, dense_max_atoms, monkeypatch):
    # dense_max_atoms=0: the bounded sparse search that molecules above DENSE_DISTANCE_MAX_ATOMS atoms take
    monkeypatch.setattr(featurization_hsanet, "DENSE_DISTANCE_MAX_ATOMS", dense_max_atoms)
    molecules = reference_molecules(cmet_smiles)
    for index, smiles in enumerate(molecules if dense_max_atoms else molecules[::2]):
        graph = smiles_to_graph(smiles, max_distance=max_distance)
        previous = previous_featurization(smiles, max_distance)
        order = np.argsort(graph.structure_rank)
        message = f"molecule #{index} {smiles}"
        degrees = np.bincount(graph.edge_index[0], minlength=graph.num_atoms)
        np.testing.assert_array_equal(degrees[order], previous["degrees"], err_msg=message)
        np.testing.assert_array_equal(graph.fragment_ids[order], previous["fragment_ids"], err_msg=message)
        np.testing.assert_array_equal(graph.distance_to_next[order[:-1]], previous["gaps"], err_msg=message)
        np.testing.assert_array_equal(graph.distance_to_previous[order[1:]], previous["gaps"], err_msg=message)
        np.testing.assert_array_equal(graph.motif_counts, previous["motif_counts"], err_msg=message)
        # the previous numbering -> ours: the atom at each position of the structure-aware order
        our_index = np.empty(graph.num_atoms, dtype=np.int64)
        our_index[previous["order"]] = order
        atoms, _ = features_in_our_numbering(previous["mol"], previous["atom_features"], np.zeros((2, 0)), our_index)
        np.testing.assert_array_equal(graph.atom_features, atoms, err_msg=message)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), max_distance=st.integers(1, 10))
def test_bounded_search_equals_dijkstra_on_random_graphs(seed, max_distance):
    # dense_max_atoms=0 forces the sparse bounded search that large molecules take
    rng = np.random.default_rng(seed)
    num_atoms = int(rng.integers(2, 60))
    bonds = rng.integers(0, num_atoms, size=(int(rng.integers(0, 2 * num_atoms)), 2))
    bonds = bonds[bonds[:, 0] != bonds[:, 1]]
    order = rng.permutation(num_atoms)
    got = consecutive_distances(bonds, num_atoms, order, max_distance, chunk_size=7, dense_max_atoms=0)
    adjacency = csr_matrix((np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(num_atoms, num_atoms))
    distances = dijkstra(adjacency, directed=False, unweighted=True)[order[:-1], order[1:]]
    np.testing.assert_array_equal(got, np.minimum(np.nan_to_num(distances, posinf=max_distance), max_distance))


# ---------------------------------------------------------------------------------------------------------------------
# Limits, large molecules and scaling
# ---------------------------------------------------------------------------------------------------------------------


def test_too_many_atoms_is_refused_naming_the_item_the_value_and_the_setting():
    with pytest.raises(ValueError, match=r"SMILES #2 'CCCCCCCCCCC' has 11 atoms, more than max_atoms=10; "
                                         r"raise HSANetFeatureExtractor\(max_atoms=\.\.\.\)"):
        smiles_batch_to_graphs(["C", "CC", "C" * 11], max_atoms=10)
    assert smiles_to_graph("C" * 10, max_atoms=10).num_atoms == 10  # the limit itself is allowed
    with pytest.raises(ValueError, match=r"SMILES #1 .* has 4 atoms, more than max_atoms=3"):
        smiles_batch_to_graphs(["C", "[H]C([H])C"], max_atoms=3)  # atoms as written: explicit hydrogens count


def test_too_long_smiles_is_refused_before_any_item_is_parsed():
    huge = "C" * 1_000_001
    with pytest.raises(ValueError, match=r"SMILES #1 'CCCC.*'\.\.\. has 1,000,001 characters, more than "
                                         r"max_smiles_length=200,000; raise HSANetFeatureExtractor\(max_smiles_"):
        smiles_batch_to_graphs(["C1CC", huge])  # the length of #1 is checked before #0 is parsed
    with pytest.raises(ValueError, match="SMILES #0 'CCO' has 3 characters, more than max_smiles_length=2"):
        smiles_to_graph("CCO", max_smiles_length=2)


def test_feature_extractor_limits_are_validated_saved_and_used(tmp_path):
    for name in ("max_atoms", "max_smiles_length", "max_scan_distance"):
        for bad in (0, -1, 1.5, "10", True, None):
            with pytest.raises(ValueError, match=f"{name} must be an integer >= 1"):
                HSANetFeatureExtractor(**{name: bad})
    assert HSANetFeatureExtractor().max_atoms == DEFAULT_MAX_ATOMS == 20_000
    extractor = HSANetFeatureExtractor(max_atoms=12, max_smiles_length=40)
    extractor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["max_atoms"] == 12 and saved["max_smiles_length"] == 40
    loaded = HSANetFeatureExtractor.from_pretrained(tmp_path)
    assert (loaded.max_atoms, loaded.max_smiles_length) == (12, 40)
    with pytest.raises(ValueError, match=r"SMILES #1 .* has 13 atoms, more than max_atoms=12"):
        loaded(["CCO", "C" * 13])
    with pytest.raises(ValueError, match=r"SMILES #0 .* more than max_smiles_length=40"):
        loaded.featurize_one("C" * 41)
    with pytest.raises(ValueError, match=r"SMILES #3 .* more than max_atoms=12"):
        loaded.featurize_one("C" * 13, index=3)


def test_20k_atom_chain_is_refused_and_10k_atom_chain_featurized_without_a_crash():
    # A subprocess, so that a crash (the SMILES writer used to overflow the C stack at 20,001 atoms) fails this test
    # instead of killing pytest.
    script = textwrap.dedent("""
        from modeling_hsanet import HSANetProcessor
        processor = HSANetProcessor()
        for smiles in ("CCO" * 6667, "C" * 1_000_000):
            try:
                processor(["CCO", smiles])
            except ValueError as error:
                print("refused:", error)
        batch = processor(["CCO" * 3333])
        n = int(batch["num_atoms"][0])
        assert n == 9999 and batch["edge_index"].shape == (2, 2 * 9998), batch["edge_index"].shape
        assert sorted(batch["structure_rank"].tolist()) == list(range(n))
        assert 0 < int(batch["distance_to_next"].max()) <= 8
        print("featurized", n)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    lines = result.stdout.splitlines()
    assert lines[0].startswith("refused: SMILES #1 'CCOCCO")
    assert "has 20,001 atoms, more than max_atoms=20,000" in lines[0]
    assert "has 1,000,000 characters, more than max_smiles_length=200,000" in lines[1]
    assert lines[2] == "featurized 9999"


def test_graph_memory_grows_linearly_with_the_atoms():
    # Not timed: the peak of what NumPy/SciPy allocate while featurizing a chain 4x longer must grow about 4x (an n x n
    # distance matrix, as the previous featurizer built, would grow 16x).
    peaks = []
    for units in (300, 1200):
        mol = parse_smiles("CCO" * units)
        tracemalloc.start()
        mol_to_graph(mol, FEATURE_SCHEMES["ogb"], 8)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 6 * peaks[0], peaks


# ---------------------------------------------------------------------------------------------------------------------
# Fast paths against their references: BRICS cut bonds found per environment instead of per rule, and consecutive
# distances of drug-sized molecules from a dense breadth-first search
# ---------------------------------------------------------------------------------------------------------------------

# Salts, charges, aromatic heterocycles, molecules without bonds, and the one BRICS rule on a double bond (7a-7b,
# stilbene's C=C).
BRICS_EDGE_CASES = [
    "[Na+].[Cl-]", "C", "[Cu+2].[O-]S(=O)(=O)[O-]", "CC(=O)[O-].[NH4+]", "C[N+](C)(C)CCOC(=O)C", "c1ccncc1",
    "c1cc[nH]c1", "Cn1ccnc1CC(=O)NC", "c1ccc(cc1)/C=C/c1ccccc1", "CC(C)=C(C)C", "CS(=O)(=O)N1CCN(CC1)C(=O)c1ccsc1",
    "O=C(NCc1ccco1)C1CC1", "CC(C)(C)OC(=O)N[C@@H](Cc1ccccc1)C(=O)O", "[O-][N+](=O)c1ccc(OCC2CCCO2)cc1",
    "c1ccc2c(c1)[nH]c1ccccc12", "C1CC2CCCCC2C1", "CCOC(=O)C=CC(=O)OCC.Cl",
]


def _cut_pairs(mol, bond_indices) -> set[tuple[int, int]]:
    return {tuple(sorted((mol.GetBondWithIdx(int(i)).GetBeginAtomIdx(), mol.GetBondWithIdx(int(i)).GetEndAtomIdx())))
            for i in bond_indices}


def test_brics_cut_bonds_are_the_bonds_of_the_brics_rules(cmet_smiles):
    total_cut, double_bonds_cut = 0, 0
    for smiles in cmet_smiles[::8] + BRICS_EDGE_CASES:
        mol = parse_smiles(smiles)
        got = _cut_pairs(mol, featurization_hsanet.brics_cut_bonds(mol))
        per_rule = {tuple(sorted(pair)) for pair in featurization_hsanet.brics_bonds(mol).tolist()}
        rdkit_own = {tuple(sorted(pair)) for pair, _ in BRICS.FindBRICSBonds(mol)}
        assert got == per_rule == rdkit_own, smiles
        total_cut += len(got)
        double_bonds_cut += sum(mol.GetBondBetweenAtoms(*pair).GetBondType() == Chem.BondType.DOUBLE for pair in got)
    assert total_cut > 500 and double_bonds_cut >= 1  # the check compared real cuts, the 7a-7b rule among them


@pytest.mark.parametrize("path", ["dense matrix", "dijkstra"])
def test_small_molecule_distances_equal_dijkstra_on_random_graphs(path, monkeypatch):
    # molecules of at most MATRIX_DISTANCE_MAX_ATOMS atoms take the dense breadth-first search; 0 forces Dijkstra
    max_atoms = featurization_hsanet.MATRIX_DISTANCE_MAX_ATOMS
    if path == "dijkstra":
        monkeypatch.setattr(featurization_hsanet, "MATRIX_DISTANCE_MAX_ATOMS", 0)
    rng = np.random.default_rng(10)
    for _ in range(60):
        num_atoms = int(rng.integers(2, max_atoms + 1))
        max_distance = int(rng.integers(1, 11))
        bonds = rng.integers(0, num_atoms, size=(int(rng.integers(0, 2 * num_atoms)), 2))
        bonds = bonds[bonds[:, 0] != bonds[:, 1]]
        order = rng.permutation(num_atoms)
        got = consecutive_distances(bonds, num_atoms, order, max_distance)
        adjacency = csr_matrix((np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(num_atoms, num_atoms))
        distances = dijkstra(adjacency, directed=False, unweighted=True)[order[:-1], order[1:]]
        np.testing.assert_array_equal(got, np.minimum(np.nan_to_num(distances, posinf=max_distance), max_distance))
