import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rdkit import Chem, RDConfig, rdBase

from modeling_hsanet.featurization_hsanet import (
    FEATURE_SCHEMES,
    FUNCTIONAL_GROUP_NAMES,
    smiles_batch_to_graphs,
    smiles_to_graph,
)


def in_structure_order(graph, values):
    return values[np.argsort(graph.structure_rank)]


def test_ogb_atom_and_bond_features_match_ogb_indices():
    graph = smiles_to_graph("CCO")
    # carbon: atomic number 6 -> 5, unspecified chirality, total degree 4 (hydrogens count, as OGB's
    # GetTotalDegree), charge 0 -> 5, 3 H, no radical, SP3 -> 2
    assert graph.atom_features[0].tolist() == [5, 0, 4, 5, 3, 0, 2, 0, 0]
    assert graph.atom_features[:, 2].tolist() == [4, 4, 2]  # CH3, CH2, OH
    assert graph.atom_features[2, 0] == 7  # oxygen
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


def test_ogb_scheme_matches_the_ogb_package(ogb_utils, cmet_smiles):
    # The featurizer re-parses RDKit's canonical SMILES, so OGB is given the canonical SMILES: both then number the
    # atoms the same way. Features are integers: exact equality.
    smiles2graph = ogb_utils.smiles2graph
    molecules = reference_molecules(cmet_smiles)
    assert len(molecules) > 650
    seen_atom_values, seen_bond_values = [set() for _ in range(9)], [set() for _ in range(3)]
    for index, smiles in enumerate(molecules):
        graph, reference = smiles_to_graph(smiles), smiles2graph(smiles)
        assert graph.num_atoms == reference["num_nodes"], f"molecule #{index} {smiles}: number of atoms"
        np.testing.assert_array_equal(graph.atom_features, reference["node_feat"],
                                      err_msg=f"molecule #{index} {smiles}: atom features")
        assert edges_with_features(graph.edge_index, graph.bond_features) == edges_with_features(
            reference["edge_index"], reference["edge_feat"]), f"molecule #{index} {smiles}: edges and bond features"
        for column, values in enumerate(graph.atom_features.T):
            seen_atom_values[column].update(values.tolist())
        for column, values in enumerate(graph.bond_features.T):
            seen_bond_values[column].update(values.tolist())
    # the molecules exercise the rules beyond the defaults: chirality CW and CCW, several charges, 0-3 hydrogens,
    # SP to SP3 hybridization and the "misc" entry, single to aromatic bonds, Z and E double bonds
    assert {1, 2} <= seen_atom_values[1] and len(seen_atom_values[3]) >= 3 and {0, 1, 2, 3} <= seen_atom_values[4]
    assert {0, 1, 2, 5} <= seen_atom_values[6]
    assert seen_bond_values[0] == {0, 1, 2, 3} and {1, 2} <= seen_bond_values[1]


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
    distances = Chem.GetDistanceMatrix(Chem.MolFromSmiles(smiles))
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
