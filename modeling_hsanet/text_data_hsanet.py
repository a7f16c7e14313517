"""Molecule-text data for HSA-Net's molecule-to-text tasks, as `datasets.Dataset` objects.

Every loader returns the columns `smiles`, `instruction` and `text` (the target), plus `id` where the format has
one, and raises errors that name the file and the line or record at fault.

- `load_chebi20(path)`: ChEBI-20 as MolT5 ships it (`ChEBI-20_data/{train,validation,test}.txt`): tab-separated,
  header `CID\\tSMILES\\tdescription`, no quoting.
- `load_mol_instructions(path)`: Mol-Instructions JSON (a list of records `instruction`, `input`, `output`,
  `metadata`); molecule inputs are SELFIES and are converted to SMILES with the `selfies` package.
- `load_pubchem_iupac(path)`: MolCA's IUPAC-naming files (`PubChemDataset_v4/{train,valid,test}/iupac.txt`, read by
  MolCA's `data_provider/molecule_iupac_dataset.py`): one line per molecule, `SMILES\\t[Compound(CID)]\\tIUPAC name`,
  no header.
- `describe_molecule(smiles)` and `load_rdkit_description_dataset()`: short, deterministic texts derived with RDKit
  (formula, weight, rings, functional groups, charge, stereocentres, a name for small unbranched alkanes and
  alkanols) for molecules that install with RDKit. They are a functional stand-in for training on CPU, not ChEBI-20.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from rdkit import Chem, RDConfig, rdBase
from rdkit.Chem import Descriptors, rdMolDescriptors

from .data_hsanet import load_cmet_ligands

CAPTION_INSTRUCTION = "Describe this molecule."
IUPAC_INSTRUCTION = "What is the IUPAC name of this molecule?"
CHEBI20_COLUMNS = ("CID", "SMILES", "description")
MOL_INSTRUCTIONS_KEYS = ("instruction", "input", "output")
_SELFIES_PATTERN = re.compile(r"(?:\[[^\[\]]+\]|\.)+")
_COMPOUND_ID = re.compile(r"\[Compound\((\d+)\)\]|(\d+)")


# ----------------------------------------------------------------------------------------------------------------
# Shared checks
# ----------------------------------------------------------------------------------------------------------------
def _existing_file(path: str | os.PathLike, what: str) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    return path


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be None or a positive integer, got {limit!r}")


def _parse_smiles(smiles: str) -> Chem.Mol | None:
    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(smiles) if smiles else None


def _require_smiles(smiles: str, where: str) -> str:
    if _parse_smiles(smiles) is None:
        raise ValueError(f"{where}: SMILES {smiles!r} could not be parsed by RDKit")
    return smiles


def _to_dataset(rows: list[dict], columns: tuple[str, ...]):
    from datasets import Dataset, Features, Value

    features = Features({column: Value("string") for column in columns})
    return Dataset.from_dict({column: [row[column] for row in rows] for column in columns}, features=features)


# ----------------------------------------------------------------------------------------------------------------
# ChEBI-20
# ----------------------------------------------------------------------------------------------------------------
def load_chebi20(path: str | os.PathLike, *, instruction: str = CAPTION_INSTRUCTION, limit: int | None = None):
    """ChEBI-20 (`CID\\tSMILES\\tdescription`, MolT5's `ChEBI-20_data/*.txt`) -> Dataset with columns
    `id` (the PubChem CID), `smiles`, `instruction` (the same for every row), `text` (the description).

    Descriptions contain quotes, so the file is read without quoting, as MolT5 reads it. `limit` keeps the first rows.
    """
    _check_limit(limit)
    path = _existing_file(path, "ChEBI-20")
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path} is empty; a ChEBI-20 file starts with the header 'CID\\tSMILES\\tdescription'")
        header = [name.strip() for name in header]
        missing = [name for name in CHEBI20_COLUMNS if name not in header]
        if missing:
            raise ValueError(
                f"{path}: the header lacks the column(s) {missing} (found {header}); a ChEBI-20 file starts with "
                "'CID\\tSMILES\\tdescription'"
            )
        cid, smiles, description = (header.index(name) for name in CHEBI20_COLUMNS)
        for row in reader:
            line = reader.line_num
            if not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                raise ValueError(f"{path} line {line}: expected {len(header)} tab-separated fields, found {len(row)}")
            where = f"{path} line {line} (CID {row[cid]})"
            text = row[description].strip()
            if not text:
                raise ValueError(f"{where}: the description is empty")
            rows.append(
                {
                    "id": row[cid].strip(),
                    "smiles": _require_smiles(row[smiles].strip(), where),
                    "instruction": instruction,
                    "text": text,
                }
            )
            if limit is not None and len(rows) == limit:
                break
    return _to_dataset(rows, ("id", "smiles", "instruction", "text"))


# ----------------------------------------------------------------------------------------------------------------
# Mol-Instructions
# ----------------------------------------------------------------------------------------------------------------
def molecule_input_to_smiles(text: str) -> str | None:
    """SMILES for a SELFIES string (converted with `selfies`) or a SMILES string (kept as it is); None when it is
    neither. A string made only of bracketed symbols is read as SELFIES first (`[Na+].[Cl-]` reads the same in both).
    """
    text = text.strip()
    if not text:
        return None
    if _SELFIES_PATTERN.fullmatch(text):
        import selfies

        try:
            smiles = selfies.decoder(text)
        except selfies.DecoderError:
            smiles = None
        if smiles and _parse_smiles(smiles) is not None:
            return smiles
    return text if _parse_smiles(text) is not None else None


def _read_json_records(path: str) -> list:
    with open(path, encoding="utf-8") as handle:
        content = handle.read()
    if content.lstrip().startswith("["):
        try:
            records = json.loads(content)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
        return records
    records = []  # JSON Lines: one record per line
    for line_number, line in enumerate(content.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path} line {line_number}: not valid JSON ({error}); Mol-Instructions files hold a JSON list of "
                    "records (or JSON Lines, one record per line)"
                ) from error
    return records


def _metadata(record: dict, where: str) -> dict:
    metadata = record.get("metadata") or {}
    if isinstance(metadata, str):  # the Hub's parquet copy stores it as a JSON string
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: metadata {metadata!r} is neither an object nor a JSON string") from error
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: metadata must be an object, got {type(metadata).__name__}")
    return metadata


def load_mol_instructions(
    path: str | os.PathLike,
    *,
    tasks: Iterable[str] | None = None,
    split: str | None = None,
    limit: int | None = None,
):
    """Mol-Instructions (molecule-oriented) JSON -> Dataset with columns `smiles`, `instruction`, `text` (the record's
    `output`) and `task` (`metadata["task"]`, "" when absent).

    The records' `input` is the molecule: SELFIES (as Mol-Instructions ships it) is converted to SMILES with the
    `selfies` package, a plain SMILES passes through; anything else (e.g. the text input of description-guided
    molecule design) raises an error naming the record. `tasks` / `split` keep only the records whose
    `metadata["task"]` / `metadata["split"]` match, before any conversion. `limit` keeps the first matching records.
    """
    _check_limit(limit)
    path = _existing_file(path, "Mol-Instructions")
    records = _read_json_records(path)
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of records, got a JSON {type(records).__name__}")
    wanted_tasks = None if tasks is None else {tasks} if isinstance(tasks, str) else set(tasks)
    rows = []
    for index, record in enumerate(records):
        where = f"{path} record #{index}"
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected an object with keys {list(MOL_INSTRUCTIONS_KEYS)}")
        missing = [key for key in MOL_INSTRUCTIONS_KEYS if key not in record]
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing}; found {sorted(record)}")
        metadata = _metadata(record, where)
        task = str(metadata.get("task", ""))
        if wanted_tasks is not None and task not in wanted_tasks:
            continue
        if split is not None and metadata.get("split") != split:
            continue
        molecule = str(record["input"])
        smiles = molecule_input_to_smiles(molecule)
        if smiles is None:
            raise ValueError(
                f"{where}: input {molecule[:120]!r} is neither a SELFIES string nor a SMILES that RDKit can parse"
            )
        rows.append(
            {"smiles": smiles, "instruction": str(record["instruction"]), "text": str(record["output"]), "task": task}
        )
        if limit is not None and len(rows) == limit:
            break
    return _to_dataset(rows, ("smiles", "instruction", "text", "task"))


# ----------------------------------------------------------------------------------------------------------------
# PubChem324k IUPAC names (MolCA)
# ----------------------------------------------------------------------------------------------------------------
def load_pubchem_iupac(path: str | os.PathLike, *, instruction: str = IUPAC_INSTRUCTION, limit: int | None = None):
    """MolCA's IUPAC-naming pairs -> Dataset with columns `id` (the PubChem CID), `smiles`, `instruction`, `text`
    (the IUPAC name).

    `path` is an `iupac.txt` file or a split folder holding one (MolCA: `data/PubChemDataset_v4/<split>/iupac.txt`).
    Each line is `SMILES\\t[Compound(CID)]\\tIUPAC name`, no header; a bare CID is accepted too. MolCA pairs these
    names with per-molecule `smiles/` and `graph/*.pt` files; the SMILES column of `iupac.txt` holds the same
    molecule, so no torch file is read here (HSA-Net featurizes the SMILES itself).
    """
    _check_limit(limit)
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "iupac.txt")
    path = _existing_file(path, "PubChem IUPAC (MolCA iupac.txt)")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 3:
                raise ValueError(
                    f"{path} line {line_number}: expected 3 tab-separated fields 'SMILES\\t[Compound(CID)]\\tIUPAC "
                    f"name', found {len(fields)}"
                )
            smiles, compound, name = (field.strip() for field in fields)
            match = _COMPOUND_ID.fullmatch(compound)
            if match is None:
                raise ValueError(
                    f"{path} line {line_number}: {compound!r} is not a compound id like '[Compound(702)]'"
                )
            where = f"{path} line {line_number} (CID {match.group(1) or match.group(2)})"
            if not name:
                raise ValueError(f"{where}: the IUPAC name is empty")
            rows.append(
                {
                    "id": match.group(1) or match.group(2),
                    "smiles": _require_smiles(smiles, where),
                    "instruction": instruction,
                    "text": name,
                }
            )
            if limit is not None and len(rows) == limit:
                break
    return _to_dataset(rows, ("id", "smiles", "instruction", "text"))


# ----------------------------------------------------------------------------------------------------------------
# Texts derived with RDKit
# ----------------------------------------------------------------------------------------------------------------
# (singular, plural, SMARTS), in the order the texts list them. Amines exclude N bound to a heteroatom or to a
# C=O/C=S/C=N carbon (amides, ureas, amidines); amides exclude ureas and carbamates; ethers exclude ester oxygens.
FUNCTIONAL_GROUPS = (
    ("carboxylic acid", "carboxylic acids", "[CX3](=O)[OX2H1,OX1-]"),
    ("ester", "esters", "[#6][CX3](=O)[OX2H0][#6]"),
    ("amide", "amides", "[#6][CX3](=O)[NX3]"),
    ("urea", "ureas", "[NX3][CX3](=O)[NX3]"),
    ("carbamate", "carbamates", "[NX3][CX3](=O)[OX2][#6]"),
    ("ketone", "ketones", "[#6][CX3](=O)[#6]"),
    ("aldehyde", "aldehydes", "[CX3H1](=O)[#6]"),
    ("hydroxyl group", "hydroxyl groups", "[CX4][OX2H]"),
    ("phenol", "phenols", "c[OX2H]"),
    ("ether", "ethers", "[OD2;!$(O[#6]=[O,S,N])]([#6])[#6]"),
    ("primary amine", "primary amines", "[NX3;H2;!$(N[!#6]);!$(N[#6]=[O,S,N])]"),
    ("secondary amine", "secondary amines", "[NX3;H1;!$(N[!#6]);!$(N[#6]=[O,S,N])]"),
    ("tertiary amine", "tertiary amines", "[NX3;H0;+0;!$(N[!#6]);!$(N[#6]=[O,S,N])]"),
    ("nitrile", "nitriles", "[NX1]#[CX2]"),
    ("nitro group", "nitro groups", "[$([NX3](=O)=O),$([NX3+](=O)[O-])][!#8]"),
    ("sulfonamide", "sulfonamides", "[SX4](=[OX1])(=[OX1])[NX3]"),
    ("sulfone", "sulfones", "[#6][SX4](=[OX1])(=[OX1])[#6]"),
    ("thiol", "thiols", "[SX2H]"),
    ("thioether", "thioethers", "[#6][SX2][#6]"),
    ("alkene", "alkenes", "[CX3]=[CX3]"),
    ("alkyne", "alkynes", "[CX2]#[CX2]"),
    ("fluorine atom", "fluorine atoms", "[F]"),
    ("chlorine atom", "chlorine atoms", "[Cl]"),
    ("bromine atom", "bromine atoms", "[Br]"),
    ("iodine atom", "iodine atoms", "[I]"),
)
_GROUP_PATTERNS = tuple(
    (singular, plural, Chem.MolFromSmarts(smarts)) for singular, plural, smarts in FUNCTIONAL_GROUPS
)

DESCRIPTION_TASKS = {
    "describe": CAPTION_INSTRUCTION,
    "formula": "What is the molecular formula of this molecule?",
    "functional_groups": "Which functional groups does this molecule contain?",
    "rings": "Describe the rings of this molecule.",
    "name": IUPAC_INSTRUCTION,
}
MAX_GROUPS_IN_DESCRIPTION = 3
_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_ALKANE_STEMS = ("meth", "eth", "prop", "but", "pent", "hex", "hept", "oct", "non", "dec")


@dataclass(frozen=True)
class MoleculeFacts:
    """What `describe_molecule` says about a molecule, computed with RDKit."""

    smiles: str  # RDKit canonical SMILES
    formula: str  # rdMolDescriptors.CalcMolFormula (Hill order, charge appended)
    molecular_weight: float  # Descriptors.MolWt, rounded to 0.1
    num_rings: int  # SSSR size
    num_aromatic_rings: int
    num_heteroaromatic_rings: int
    num_aliphatic_rings: int
    ring_sizes: tuple[int, ...]  # ascending
    num_ring_systems: int  # rings sharing an atom belong to one system (fused, bridged or spiro)
    functional_groups: tuple[tuple[str, str, int], ...]  # (singular, plural, count), in FUNCTIONAL_GROUPS order
    formal_charge: int
    stereocentres: tuple[str, ...]  # CIP label per stereocentre: "R", "S" or "?" (unspecified)
    name: str | None  # simple_iupac_name, where derivable


def _count(number: int) -> str:
    return _NUMBER_WORDS[number] if number < len(_NUMBER_WORDS) else str(number)


def _enumerate(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ring_systems(ring_atoms: tuple[tuple[int, ...], ...]) -> int:
    systems: list[set[int]] = []
    for ring in ring_atoms:
        merged = set(ring)
        for system in [system for system in systems if system & merged]:
            merged |= system
            systems.remove(system)
        systems.append(merged)
    return len(systems)


def simple_iupac_name(smiles: str) -> str | None:
    """IUPAC name of an unbranched acyclic alkane (C1-C10) or alkanol with one OH (`propan-2-ol`), else None.

    Only these are named: anything else would need a full nomenclature engine. A stereocentre with a CIP label is
    named with it (`(2R)-butan-2-ol`).
    """
    mol = _parse_smiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0 or mol.GetRingInfo().NumRings():
        return None
    atoms = list(mol.GetAtoms())
    if any(
        a.GetSymbol() not in ("C", "O") or a.GetFormalCharge() or a.GetNumRadicalElectrons() or a.GetIsotope()
        for a in atoms
    ):
        return None
    if any(bond.GetBondType() != Chem.BondType.SINGLE for bond in mol.GetBonds()):
        return None
    carbons = [a for a in atoms if a.GetSymbol() == "C"]
    oxygens = [a for a in atoms if a.GetSymbol() == "O"]
    if not 1 <= len(carbons) <= len(_ALKANE_STEMS) or len(oxygens) > 1:
        return None
    if oxygens and (oxygens[0].GetDegree() != 1 or oxygens[0].GetTotalNumHs() != 1):
        return None
    carbon_neighbours = {a.GetIdx(): [n.GetIdx() for n in a.GetNeighbors() if n.GetSymbol() == "C"] for a in carbons}
    if any(len(neighbours) > 2 for neighbours in carbon_neighbours.values()):
        return None  # branched
    chain = [next(index for index, neighbours in carbon_neighbours.items() if len(neighbours) <= 1)]
    while len(chain) < len(carbons):
        following = [index for index in carbon_neighbours[chain[-1]] if index not in chain]
        if not following:
            return None  # several fragments
        chain.append(following[0])
    if len(Chem.GetMolFrags(mol)) != 1:
        return None
    stem = _ALKANE_STEMS[len(carbons) - 1]
    if not oxygens:
        return f"{stem}ane"
    if len(carbons) <= 2:
        return f"{stem}anol"
    carbinol = oxygens[0].GetNeighbors()[0]
    position = chain.index(carbinol.GetIdx()) + 1
    locant = min(position, len(carbons) + 1 - position)
    name = f"{stem}an-{locant}-ol"
    label = dict(Chem.FindMolChiralCenters(mol, useLegacyImplementation=False)).get(carbinol.GetIdx())
    return f"({locant}{label})-{name}" if label in ("R", "S") else name


def molecule_facts(smiles: str) -> MoleculeFacts:
    """The facts behind `describe_molecule`; raises ValueError for a SMILES RDKit cannot parse."""
    mol = _parse_smiles(smiles)
    if mol is None:
        raise ValueError(f"SMILES {smiles!r} could not be parsed by RDKit")
    ring_atoms = mol.GetRingInfo().AtomRings()
    groups = tuple(
        (singular, plural, len(mol.GetSubstructMatches(pattern)))
        for singular, plural, pattern in _GROUP_PATTERNS
        if mol.HasSubstructMatch(pattern)
    )
    centres = Chem.FindMolChiralCenters(mol, includeUnassigned=True, useLegacyImplementation=False)
    return MoleculeFacts(
        smiles=Chem.MolToSmiles(mol),
        formula=rdMolDescriptors.CalcMolFormula(mol),
        molecular_weight=round(Descriptors.MolWt(mol), 1),
        num_rings=len(ring_atoms),
        num_aromatic_rings=rdMolDescriptors.CalcNumAromaticRings(mol),
        num_heteroaromatic_rings=rdMolDescriptors.CalcNumAromaticHeterocycles(mol),
        num_aliphatic_rings=rdMolDescriptors.CalcNumAliphaticRings(mol),
        ring_sizes=tuple(sorted(len(ring) for ring in ring_atoms)),
        num_ring_systems=_ring_systems(ring_atoms),
        functional_groups=groups,
        formal_charge=Chem.GetFormalCharge(mol),
        stereocentres=tuple(label for _, label in centres),
        name=simple_iupac_name(smiles),
    )


def _formula_sentence(facts: MoleculeFacts) -> str:
    return f"The molecular formula is {facts.formula} and the molecular weight is {facts.molecular_weight:.1f}."


def _ring_sentence(facts: MoleculeFacts) -> str:
    if facts.num_rings == 0:
        return "It is acyclic."
    kinds = []
    if facts.num_aromatic_rings:
        hetero = facts.num_heteroaromatic_rings
        hetero = f" ({_count(hetero)} heteroaromatic)" if hetero else ""
        rings = "ring" if facts.num_aromatic_rings == 1 else "rings"
        kinds.append(f"{_count(facts.num_aromatic_rings)} aromatic {rings}{hetero}")
    if facts.num_aliphatic_rings:
        rings = "ring" if facts.num_aliphatic_rings == 1 else "rings"
        kinds.append(f"{_count(facts.num_aliphatic_rings)} aliphatic {rings}")
    if facts.num_rings == 1:
        return f"It has {kinds[0]} of size {facts.ring_sizes[0]}."
    sizes = _enumerate([str(size) for size in facts.ring_sizes])
    systems = f"{_count(facts.num_ring_systems)} ring system{'s' if facts.num_ring_systems > 1 else ''}"
    return f"It has {_enumerate(kinds)} of sizes {sizes} in {systems}."


def _group_phrases(facts: MoleculeFacts) -> list[str]:
    return [
        f"{_count(count)} {singular if count == 1 else plural}" for singular, plural, count in facts.functional_groups
    ]


def _groups_sentence(facts: MoleculeFacts, limit: int | None = None) -> str:
    phrases = _group_phrases(facts)
    if not phrases:
        return "It has no common functional groups."
    if limit is not None and len(phrases) > limit:
        return f"Its functional groups include {_enumerate(phrases[:limit])}."
    return f"It contains {_enumerate(phrases)}."


def _charge_stereo_sentence(facts: MoleculeFacts) -> str:
    charge = "It is neutral" if facts.formal_charge == 0 else f"It has a net charge of {facts.formal_charge:+d}"
    count = len(facts.stereocentres)
    if count == 0:
        return f"{charge} and has no stereocentres."
    kinds = {"R": "R", "S": "S", "?": "unspecified"}
    counts = [(kinds[label], facts.stereocentres.count(label)) for label in kinds if label in facts.stereocentres]
    if count == 1:
        detail = f" ({counts[0][0]})"
    elif len(counts) == 1:
        detail = f", all {counts[0][0]}"
    else:
        detail = f" ({', '.join(f'{_count(number)} {label}' for label, number in counts)})"
    return f"{charge} and has {_count(count)} stereocentre{'s' if count > 1 else ''}{detail}."


def facts_text(facts: MoleculeFacts, task: str = "describe") -> str:
    """The text for one of `DESCRIPTION_TASKS`; the `name` task raises ValueError when no name is derivable."""
    if task == "describe":
        opening = f"The molecule is {facts.name}, with formula" if facts.name else "The molecule has formula"
        return " ".join(
            [
                f"{opening} {facts.formula} and molecular weight {facts.molecular_weight:.1f}.",
                _ring_sentence(facts),
                _groups_sentence(facts, MAX_GROUPS_IN_DESCRIPTION),
                _charge_stereo_sentence(facts),
            ]
        )
    if task == "formula":
        return _formula_sentence(facts)
    if task == "functional_groups":
        return _groups_sentence(facts)
    if task == "rings":
        return _ring_sentence(facts)
    if task == "name":
        if facts.name is None:
            raise ValueError(
                f"no IUPAC name is derivable for {facts.smiles!r}: only unbranched acyclic alkanes and alkanols "
                "are named"
            )
        return f"The IUPAC name is {facts.name}."
    raise ValueError(f"unknown task {task!r}; choose one of {list(DESCRIPTION_TASKS)}")


def describe_molecule(smiles: str, task: str = "describe") -> str:
    """A short deterministic text about a molecule, derived with RDKit (see `DESCRIPTION_TASKS` for `task`).

    >>> describe_molecule("CCO")  # doctest: +NORMALIZE_WHITESPACE
    'The molecule is ethanol, with formula C2H6O and molecular weight 46.1. It is acyclic.
     It contains one hydroxyl group. It is neutral and has no stereocentres.'
    >>> describe_molecule("CC(=O)Oc1ccccc1C(=O)O", task="functional_groups")
    'It contains one carboxylic acid and one ester.'
    """
    return facts_text(molecule_facts(smiles), task)


def _nci_molecules() -> Iterator[tuple[str, str]]:
    path = os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")
    if not os.path.exists(path):
        raise FileNotFoundError(f"RDKit's NCI sample {path} is missing; is RDKit installed with its Data folder?")
    with open(path) as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 2:
                yield f"NCI-{fields[1]}", fields[0]


def rdkit_molecules(source: str = "both") -> list[tuple[str, str]]:
    """(id, canonical SMILES) of the real molecules that install with RDKit: `"nci"` (`Data/NCI/first_5K.smi`),
    `"cmet"` (the c-Met ligands of `load_cmet_ligands`) or `"both"`, in file order, duplicates removed.

    Kept: molecules RDKit parses, in one fragment, with 3 to 50 heavy atoms (salts, metals-only entries and very
    large molecules make long texts a small decoder cannot learn in minutes).
    """
    if source not in ("nci", "cmet", "both"):
        raise ValueError(f"source must be 'nci', 'cmet' or 'both', got {source!r}")
    return list(_rdkit_molecules(source))


@functools.cache
def _rdkit_molecules(source: str) -> tuple[tuple[str, str], ...]:
    raw: list[tuple[str, str]] = []
    if source in ("nci", "both"):
        raw += list(_nci_molecules())
    if source in ("cmet", "both"):
        raw += [(molecule.identifier, molecule.smiles) for molecule in load_cmet_ligands()]
    seen, molecules = set(), []
    for identifier, smiles in raw:
        mol = _parse_smiles(smiles)
        if mol is None or len(Chem.GetMolFrags(mol)) != 1 or not 3 <= mol.GetNumHeavyAtoms() <= 50:
            continue
        canonical = Chem.MolToSmiles(mol)
        if canonical not in seen:
            seen.add(canonical)
            molecules.append((identifier, canonical))
    return tuple(molecules)


def load_rdkit_description_dataset(
    limit: int | None = None,
    seed: int = 0,
    *,
    source: str = "both",
    tasks: Iterable[str] = ("describe",),
):
    """Dataset of real molecules (see `rdkit_molecules`) with texts from `describe_molecule`: columns `id`, `smiles`,
    `task`, `instruction` (from `DESCRIPTION_TASKS`) and `text`.

    The molecules are shuffled with `random.Random(seed)`, `limit` of them are kept, and each gives one row per task
    in `tasks` (the `name` task only for molecules with a derivable name). Deterministic for a given seed.
    """
    _check_limit(limit)
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    unknown = [task for task in tasks if task not in DESCRIPTION_TASKS]
    if unknown or not tasks:
        raise ValueError(f"unknown or no task(s) {unknown}; choose from {list(DESCRIPTION_TASKS)}")
    molecules = rdkit_molecules(source)
    random.Random(seed).shuffle(molecules)
    rows = []
    for identifier, smiles in molecules[:limit]:
        facts = molecule_facts(smiles)
        for task in tasks:
            if task == "name" and facts.name is None:
                continue
            rows.append(
                {
                    "id": identifier,
                    "smiles": smiles,
                    "task": task,
                    "instruction": DESCRIPTION_TASKS[task],
                    "text": facts_text(facts, task),
                }
            )
    return _to_dataset(rows, ("id", "smiles", "task", "instruction", "text"))
