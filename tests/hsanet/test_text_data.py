"""Loaders for ChEBI-20, Mol-Instructions and MolCA's IUPAC pairs (tiny files in exactly their formats), and the
RDKit-derived descriptions used by the demo (checked against RDKit directly)."""

import json

import pytest
import selfies
from rdkit import Chem
from rdkit.Chem import Descriptors, rdMolDescriptors

from modeling_hsanet.text_data_hsanet import (
    CAPTION_INSTRUCTION,
    DESCRIPTION_TASKS,
    FUNCTIONAL_GROUPS,
    IUPAC_INSTRUCTION,
    describe_molecule,
    load_chebi20,
    load_mol_instructions,
    load_pubchem_iupac,
    load_rdkit_description_dataset,
    molecule_facts,
    molecule_input_to_smiles,
    rdkit_molecules,
    simple_iupac_name,
)

# ChEBI-20 as MolT5 ships it: header, tab-separated, unquoted (descriptions may contain quote characters).
CHEBI_ROWS = [
    ("702", "CCO", 'The molecule is a primary alcohol that is ethane in which one hydrogen is replaced by "OH".'),
    ("2244", "CC(=O)OC1=CC=CC=C1C(=O)O", "The molecule is a member of the class of benzoic acids."),
    ("5793", "C([C@@H]1[C@H]([C@@H]([C@H](C(O1)O)O)O)O)O", "The molecule is a D-glucopyranose."),
]


def canonical(smiles):
    return Chem.MolToSmiles(Chem.MolFromSmiles(smiles))


def write_chebi(path, rows, header="CID\tSMILES\tdescription"):
    path.write_text(header + "\n" + "".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------- ChEBI-20
def test_chebi20_reads_every_row_in_order(tmp_path):
    dataset = load_chebi20(write_chebi(tmp_path / "test.txt", CHEBI_ROWS))
    assert dataset.column_names == ["id", "smiles", "instruction", "text"]
    assert dataset["id"] == [cid for cid, _, _ in CHEBI_ROWS]
    assert dataset["smiles"] == [smiles for _, smiles, _ in CHEBI_ROWS]
    assert dataset["text"] == [text for _, _, text in CHEBI_ROWS]  # the quotes survive: read unquoted, as MolT5
    assert set(dataset["instruction"]) == {CAPTION_INSTRUCTION}


def test_chebi20_limit_and_instruction(tmp_path):
    dataset = load_chebi20(write_chebi(tmp_path / "t.txt", CHEBI_ROWS), instruction="Caption it.", limit=2)
    assert dataset["id"] == ["702", "2244"]
    assert dataset["instruction"] == ["Caption it."] * 2


def test_chebi20_errors_name_the_file_line_and_cid(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_chebi20(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['description'\]"):
        load_chebi20(write_chebi(tmp_path / "a.txt", CHEBI_ROWS, header="CID\tSMILES\ttext"))
    bad = [CHEBI_ROWS[0], ("999", "C1CC", "An unclosed ring."), CHEBI_ROWS[1]]
    with pytest.raises(ValueError, match=r"line 3 \(CID 999\): SMILES 'C1CC' could not be parsed"):
        load_chebi20(write_chebi(tmp_path / "b.txt", bad))
    with pytest.raises(ValueError, match="line 2: expected 3 tab-separated fields, found 2"):
        load_chebi20(write_chebi(tmp_path / "c.txt", [("702", "CCO")]))
    with pytest.raises(ValueError, match="limit"):
        load_chebi20(write_chebi(tmp_path / "d.txt", CHEBI_ROWS), limit=0)


# ---------------------------------------------------------------------------------------------- Mol-Instructions
MOL_INSTRUCTIONS = [
    {
        "instruction": "Please give me some details about this molecule:",
        "input": "[C][C][O]",
        "output": "The molecule is a primary alcohol.",
        "metadata": {"task": "molecular_description_generation", "split": "train"},
    },
    {
        "instruction": "Please provide the HOMO energy value for this molecule:",
        "input": "[C][C][O][C][C][Branch1][C][C][C][Branch1][C][C][C]",
        "output": "-0.2482",
        "metadata": {"task": "property_prediction", "split": "test"},
    },
    {  # a plain SMILES passes through
        "instruction": "Please give me some details about this molecule:",
        "input": "c1ccccc1O",
        "output": "The molecule is phenol.",
        "metadata": {"task": "molecular_description_generation", "split": "test"},
    },
]


def test_mol_instructions_converts_selfies_to_smiles(tmp_path):
    path = tmp_path / "molecule.json"
    path.write_text(json.dumps(MOL_INSTRUCTIONS, indent=4))
    dataset = load_mol_instructions(path)
    assert dataset.column_names == ["smiles", "instruction", "text", "task"]
    assert dataset["smiles"][0] == "CCO"
    assert dataset["smiles"][1] == selfies.decoder(MOL_INSTRUCTIONS[1]["input"])
    assert canonical(dataset["smiles"][1]) == canonical("CCOCC(C)C(C)C")  # read off the SELFIES by hand
    assert dataset["smiles"][2] == "c1ccccc1O"
    assert dataset["text"] == [record["output"] for record in MOL_INSTRUCTIONS]
    assert dataset["instruction"] == [record["instruction"] for record in MOL_INSTRUCTIONS]
    assert dataset["task"][1] == "property_prediction"


def test_mol_instructions_filters_and_jsonl(tmp_path):
    path = tmp_path / "molecule.json"
    path.write_text(json.dumps(MOL_INSTRUCTIONS))
    described = load_mol_instructions(path, tasks="molecular_description_generation")
    assert described["smiles"] == ["CCO", "c1ccccc1O"]
    assert load_mol_instructions(path, split="test")["text"] == ["-0.2482", "The molecule is phenol."]
    assert load_mol_instructions(path, limit=1)["smiles"] == ["CCO"]
    lines = tmp_path / "molecule.jsonl"  # JSON Lines, and metadata as a JSON string (the Hub's parquet copy)
    lines.write_text("\n".join(json.dumps({**r, "metadata": json.dumps(r["metadata"])}) for r in MOL_INSTRUCTIONS))
    assert load_mol_instructions(lines, split="test")["smiles"] == load_mol_instructions(path, split="test")["smiles"]


def test_mol_instructions_errors_name_the_record(tmp_path):
    text_input = {**MOL_INSTRUCTIONS[0], "input": "The molecule is a primary arylamine."}
    path = tmp_path / "design.json"
    path.write_text(json.dumps([MOL_INSTRUCTIONS[0], MOL_INSTRUCTIONS[1], text_input]))
    with pytest.raises(ValueError, match=r"record #2: input 'The molecule is a primary arylamine.' is neither"):
        load_mol_instructions(path)
    path.write_text(json.dumps([MOL_INSTRUCTIONS[0], {"instruction": "x", "output": "y"}]))
    with pytest.raises(ValueError, match=r"record #1: missing key\(s\) \['input'\]"):
        load_mol_instructions(path)
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        load_mol_instructions(tmp_path / "nothing.json")


def test_molecule_input_to_smiles():
    assert molecule_input_to_smiles("[C][=C][C][=C][C][=C][Ring1][=Branch1]") == "C1=CC=CC=C1"
    assert molecule_input_to_smiles("[Na+1].[Cl-1]") is not None  # SELFIES and SMILES agree on it
    assert molecule_input_to_smiles(" CCN ") == "CCN"
    assert molecule_input_to_smiles("[Xyz][C]") is None
    assert molecule_input_to_smiles("an amine") is None


# ----------------------------------------------------------------------------------------- MolCA IUPAC pairs
IUPAC_LINES = [
    ("CCO", "[Compound(702)]", "ethanol"),
    ("CC(=O)OC1=CC=CC=C1C(=O)O", "[Compound(2244)]", "2-acetyloxybenzoic acid"),
    ("CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "[Compound(2519)]", "1,3,7-trimethylpurine-2,6-dione"),
]


def write_iupac(folder, lines):
    folder.mkdir(exist_ok=True)
    (folder / "iupac.txt").write_text("".join("\t".join(line) + "\n" for line in lines), encoding="utf-8")
    return folder


def test_pubchem_iupac_reads_molca_iupac_txt(tmp_path):
    folder = write_iupac(tmp_path / "test", IUPAC_LINES)
    dataset = load_pubchem_iupac(folder)  # a split folder, as MolCA's PubChemDataset_v4/test/
    assert dataset.column_names == ["id", "smiles", "instruction", "text"]
    assert dataset["id"] == ["702", "2244", "2519"]
    assert dataset["smiles"] == [smiles for smiles, _, _ in IUPAC_LINES]
    assert dataset["text"] == [name for _, _, name in IUPAC_LINES]
    assert set(dataset["instruction"]) == {IUPAC_INSTRUCTION}
    assert load_pubchem_iupac(folder / "iupac.txt", limit=1)["text"] == ["ethanol"]


def test_pubchem_iupac_errors_name_the_line(tmp_path):
    with pytest.raises(ValueError, match=r"line 2 \(CID 5\): SMILES 'C\(C' could not be parsed"):
        load_pubchem_iupac(write_iupac(tmp_path / "a", [IUPAC_LINES[0], ("C(C", "[Compound(5)]", "x")]))
    with pytest.raises(ValueError, match="line 1: expected 3 tab-separated fields"):
        load_pubchem_iupac(write_iupac(tmp_path / "b", [("CCO", "ethanol")]))
    with pytest.raises(ValueError, match=r"line 1: 'CID702' is not a compound id"):
        load_pubchem_iupac(write_iupac(tmp_path / "c", [("CCO", "CID702", "ethanol")]))
    with pytest.raises(FileNotFoundError, match="iupac.txt"):
        load_pubchem_iupac(tmp_path)


# ---------------------------------------------------------------------------------------- RDKit descriptions
@pytest.mark.parametrize(
    "smiles",
    [
        "Cn1c(=O)c2c(ncn2C)n(C)c1=O",  # caffeine: two fused heteroaromatic rings
        "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
        "C1CCC2(CC1)CCNC2",  # a spiro amine: two aliphatic rings, one ring system
        "O=C(O)c1ccc2ccccc2c1",
        "CCO",
    ],
)
def test_describe_molecule_matches_rdkit(smiles):
    mol = Chem.MolFromSmiles(smiles)
    facts = molecule_facts(smiles)
    text = describe_molecule(smiles)
    assert facts.formula == rdMolDescriptors.CalcMolFormula(mol)
    assert f"formula {facts.formula} " in text
    assert f"molecular weight {Descriptors.MolWt(mol):.1f}." in text
    assert facts.num_rings == rdMolDescriptors.CalcNumRings(mol)
    assert facts.num_aromatic_rings == rdMolDescriptors.CalcNumAromaticRings(mol)
    assert facts.num_aliphatic_rings == rdMolDescriptors.CalcNumAliphaticRings(mol)
    assert facts.ring_sizes == tuple(sorted(len(ring) for ring in mol.GetRingInfo().AtomRings()))
    assert 15 <= len(text.split()) <= 60
    assert describe_molecule(smiles) == text  # deterministic


def test_describe_molecule_known_texts():
    assert describe_molecule("Cn1c(=O)c2c(ncn2C)n(C)c1=O", task="rings") == (
        "It has two aromatic rings (two heteroaromatic) of sizes 5 and 6 in one ring system."
    )
    assert describe_molecule("C1CCC2(CC1)CCNC2", task="rings") == (
        "It has two aliphatic rings of sizes 5 and 6 in one ring system."
    )
    assert describe_molecule("CC(=O)Oc1ccccc1C(=O)O", task="functional_groups") == (
        "It contains one carboxylic acid and one ester."
    )
    assert describe_molecule("N[C@@H](C)C(=O)N[C@H](C)C(=O)O").endswith(
        "It contains one carboxylic acid, one amide and one primary amine. "
        "It is neutral and has two stereocentres (one R, one S)."
    )
    assert describe_molecule("C[NH3+]").endswith("It has a net charge of +1 and has no stereocentres.")
    assert describe_molecule("CCO", task="formula") == (
        "The molecular formula is C2H6O and the molecular weight is 46.1."
    )
    assert describe_molecule("CCO", task="name") == "The IUPAC name is ethanol."
    with pytest.raises(ValueError, match="no IUPAC name is derivable"):
        describe_molecule("c1ccccc1", task="name")
    with pytest.raises(ValueError, match=r"SMILES 'C1CC' could not be parsed by RDKit"):
        describe_molecule("C1CC")


def test_simple_iupac_name_only_where_derivable():
    names = {
        "C": "methane",
        "CCCCCCCCCC": "decane",
        "CO": "methanol",
        "CCCO": "propan-1-ol",
        "CC(C)O": "propan-2-ol",
        "OCCCC": "butan-1-ol",
        "CCC(O)CC": "pentan-3-ol",
        "C[C@H](O)CC": "(2S)-butan-2-ol",
    }
    for smiles, name in names.items():
        assert simple_iupac_name(smiles) == name, smiles
    for smiles in ("CC(C)C", "C1CCCC1", "CC=C", "CCOC", "OCCO", "CCCCCCCCCCC", "CC[O-]", "C.C"):
        assert simple_iupac_name(smiles) is None, smiles


def test_functional_group_patterns_compile():
    assert all(Chem.MolFromSmarts(smarts) is not None for _, _, smarts in FUNCTIONAL_GROUPS)


def test_rdkit_description_dataset_is_real_deterministic_and_short():
    first = load_rdkit_description_dataset(limit=12, seed=0, tasks=("describe", "formula"))
    assert first.column_names == ["id", "smiles", "task", "instruction", "text"]
    assert len(first) == 24
    assert first.to_dict() == load_rdkit_description_dataset(limit=12, seed=0, tasks=("describe", "formula")).to_dict()
    other = load_rdkit_description_dataset(limit=12, seed=1)
    assert other["smiles"] != first["smiles"][::2]
    for row in first:
        assert row["instruction"] == DESCRIPTION_TASKS[row["task"]]
        assert row["text"] == describe_molecule(row["smiles"], task=row["task"])
        assert 8 <= len(row["text"].split()) <= 60
    known = dict(rdkit_molecules("both"))
    assert all(known[identifier] == smiles for identifier, smiles in zip(first["id"], first["smiles"]))
    cmet = load_rdkit_description_dataset(limit=3, source="cmet")
    assert all(identifier.startswith("CHEMBL") for identifier in cmet["id"])
    with pytest.raises(ValueError, match="unknown or no task"):
        load_rdkit_description_dataset(limit=2, tasks=("poem",))
