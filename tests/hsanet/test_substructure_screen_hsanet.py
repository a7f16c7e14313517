"""The featurizer's shortcuts give what the plain RDKit calls give: the substructure screen (it only skips searches
that find nothing), the per-atom / per-bond tables read in bulk, the BRICS fragments (against RDKit's own pieces), the
stacked batch (against one molecule at a time) and the NumPy collation."""

import os

import numpy as np
import pytest
import torch
from rdkit import Chem, RDConfig, rdBase

from modeling_hsanet import featurization_hsanet
from modeling_hsanet.featurization_hsanet import (
    FUNCTIONAL_GROUP_NAMES,
    atom_table,
    bond_table,
    brics_cut_bonds,
    brics_fragment_ids,
    functional_group_counts,
    parse_smiles,
    screen_substructures,
    smiles_batch_to_graphs,
)
from modeling_hsanet.processing_hsanet import GRAPH_COLUMNS, collate_graphs, collate_graphs_with_pyg

# What drug-like sets rarely hold: charges, radicals, explicit and isotopic hydrogens, chirality, metals and salts,
# dummy atoms, hypervalent atoms, nitro / azide / phosphate / sulfonyl groups, fused and bridged rings, E/Z bonds.
SPECIAL_SMILES = [
    "[2H]C([2H])O", "[H][H]", "[H]C([H])([H])C(=O)O", "C[N+](C)(C)C", "[O-][N+](=O)c1ccc(C)cc1", "OP(=O)(O)OCC",
    "N=[N+]=[N-]CC", "C1CC2CCC1C2", "[Na+].[Cl-]", "C", "[*]CC", "F/C=C/F", "C[C@H](N)O", "C[C@@H](N)O",
    "c1ccccc1-c1ccccc1", "CC(=O)NC1=CC=CC=C1O", "[NH4+]", "C#CC", "CCCCCCCCCC", "[U]", "[CH3]", "[CH2]C", "[Fe+2]",
    "F[S](F)(F)(F)(F)F", "CS(=O)(=O)N1CCN(CC1)c1ccncc1", "O=C1NC(=O)C(=O)N1", "C1=CC=C2C(=C1)C=CC=C2",
    "N#C[S-]", "CC(C)(C)OC(=O)N[C@@H](Cc1c[nH]c2ccccc12)C(=O)O", "c1ccc2[nH]ccc2c1", "Oc1ccccc1C(=O)O",
    "O=C(O)C1=CC=CC=C1[N+]([O-])=O", "C=CC(=O)OCC1CO1", "CN=C=S", "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O",
    "C1CC[Si](CC1)(C)C", "B(O)(O)c1ccccc1", "[Se]1C=CC=C1", "C(=O)([O-])[O-].[Ca+2]",
]


@pytest.fixture(scope="module")
def molecules(cmet):
    """Special cases, 150 c-Met ligands and 300 molecules of RDKit's NCI set, parsed as the featurizer parses them."""
    path = os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")
    with open(path) as handle:
        nci = [line.split()[0] for line in handle][:300]
    parsed = []
    with rdBase.BlockLogs():
        for smiles in SPECIAL_SMILES + [m.smiles for m in cmet[:150]] + nci:
            try:
                parsed.append(parse_smiles(smiles))
            except ValueError:  # a few NCI entries do not sanitize
                pass
    assert len(parsed) > 450
    return parsed


def test_screened_counts_and_cuts_equal_the_unscreened_ones(molecules):
    searched = []
    for mol in molecules:
        possible, starts = screen_substructures(mol)
        searched.append(possible.sum())
        counts = functional_group_counts(mol, possible)
        np.testing.assert_array_equal(counts, functional_group_counts(mol, screen=False))
        np.testing.assert_array_equal(brics_cut_bonds(mol, candidates=starts), brics_cut_bonds(mol, screen=False))
    # the screen does skip searches (most patterns are absent from most molecules)
    assert np.mean(searched) < len(FUNCTIONAL_GROUP_NAMES) / 2


def test_screen_keeps_every_pattern_and_environment_start_that_matches(molecules):
    environments = featurization_hsanet._BRICS_ENVIRONMENTS
    patterns = featurization_hsanet._FUNCTIONAL_GROUP_PATTERNS
    for mol in molecules:
        possible, starts = screen_substructures(mol)
        matching = np.array([mol.HasSubstructMatch(pattern) for pattern in patterns])
        assert not (matching & ~possible).any(), Chem.MolToSmiles(mol)
        for column, environment in enumerate(environments):
            first_atoms = {match[0] for match in mol.GetSubstructMatches(environment, uniquify=False)}
            assert starts[sorted(first_atoms), column].all(), (Chem.MolToSmiles(mol), column)


def test_screen_rules_out_what_cannot_match():
    mol = parse_smiles("CCCC")  # no heteroatom, no ring, no multiple bond
    possible, starts = screen_substructures(mol)
    kept = {name for name, ok in zip(FUNCTIONAL_GROUP_NAMES, possible) if ok}
    assert kept <= {"fr_unbrch_alkane", "fr_allylic_oxid", "fr_aryl_methyl"}, kept
    assert "fr_unbrch_alkane" in kept
    assert not possible[FUNCTIONAL_GROUP_NAMES.index("fr_benzene")]
    assert functional_group_counts(mol)[FUNCTIONAL_GROUP_NAMES.index("fr_unbrch_alkane")] == 1


def test_atom_and_bond_tables_equal_rdkit_read_one_atom_at_a_time(molecules):
    for mol in molecules:
        expected = np.array(
            [(a.GetAtomicNum(), int(featurization_hsanet.canonical_chiral_tag(a)), a.GetTotalDegree(),
              a.GetFormalCharge(), a.GetTotalNumHs(), a.GetNumRadicalElectrons(), int(a.GetHybridization()),
              a.GetIsAromatic(), a.IsInRing()) for a in mol.GetAtoms()], dtype=np.int64).reshape(-1, 9)
        np.testing.assert_array_equal(atom_table(mol), expected)
        expected = np.array(
            [(b.GetBeginAtomIdx(), b.GetEndAtomIdx(), int(b.GetBondType()), int(b.GetStereo()), b.GetIsConjugated(),
              b.IsInRing()) for b in mol.GetBonds()], dtype=np.int64).reshape(-1, 6)
        np.testing.assert_array_equal(bond_table(mol), expected)


def rdkit_fragment_ids(mol, rank):
    """The reference: RDKit cuts the BRICS bonds (`FragmentOnBonds`) and lists the pieces (`GetMolFrags`); pieces are
    numbered by their lowest rank."""
    cut = brics_cut_bonds(mol).tolist()
    pieces = Chem.FragmentOnBonds(mol, cut, addDummies=False) if cut else mol
    atoms_of_piece = sorted(Chem.GetMolFrags(pieces, asMols=False, sanitizeFrags=False),
                            key=lambda atoms: min(rank[atom] for atom in atoms))
    fragments = np.empty(mol.GetNumAtoms(), dtype=np.int64)
    for number, atoms in enumerate(atoms_of_piece):
        fragments[list(atoms)] = number
    return fragments


def test_fragments_equal_rdkit_fragments(molecules):
    # any ranking, not only the atom order: the pointer-jumping components and their numbering against RDKit's pieces
    rng = np.random.default_rng(0)
    several = 0
    for mol in molecules:
        rank = rng.permutation(mol.GetNumAtoms())
        fragments = brics_fragment_ids(mol, rank)
        assert fragments.dtype == np.int64
        np.testing.assert_array_equal(fragments, rdkit_fragment_ids(mol, rank))
        several += fragments.max() > 0
    assert several > 100


def test_stacked_featurization_equals_one_molecule_at_a_time(molecules):
    # `mols_to_graphs` stacks a batch; a molecule's graph must not depend on its neighbours in the batch
    scheme = featurization_hsanet.FEATURE_SCHEMES["ogb"]
    chosen = molecules[::3]
    together = featurization_hsanet.mols_to_graphs(chosen, scheme, 6)
    reversed_batch = featurization_hsanet.mols_to_graphs(chosen[::-1], scheme, 6)[::-1]
    for mol, graph, other in zip(chosen, together, reversed_batch):
        alone = featurization_hsanet.mol_to_graph(mol, scheme, 6)
        for name in GRAPH_COLUMNS + ("fragment_ids",):
            np.testing.assert_array_equal(getattr(graph, name), getattr(alone, name), err_msg=name)
            np.testing.assert_array_equal(getattr(other, name), getattr(alone, name), err_msg=name)


def test_numpy_collation_equals_torch_geometric_batching(cmet_smiles):
    graphs = smiles_batch_to_graphs(cmet_smiles[:20] + ["[Na+].[Cl-]", "C", "CCO"])
    rows = [{name: getattr(graph, name).tolist() for name in GRAPH_COLUMNS} for graph in graphs]  # dataset rows
    for batch in (graphs, rows, graphs[-2:-1]):
        ours, reference = collate_graphs(batch), collate_graphs_with_pyg(batch)
        assert ours.keys() == reference.keys()
        for name, tensor in reference.items():
            assert ours[name].dtype == tensor.dtype and ours[name].shape == tensor.shape, name
            if tensor.dtype.is_floating_point:
                torch.testing.assert_close(ours[name], tensor, rtol=0, atol=1e-6)
            else:
                assert torch.equal(ours[name], tensor), name
    with pytest.raises(ValueError, match="empty list of graphs"):
        collate_graphs([])
