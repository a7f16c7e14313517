"""Real data that installs with RDKit, and the Bemis-Murcko scaffold split.

`load_cmet_ligands()` reads the 1,017 c-Met ligands of ChEMBL document CHEMBL2321810 with measured pIC50 that ship in
RDKit's `Contrib/FreeWilson/data`.
"""

from __future__ import annotations

import csv
import os
import random
from collections import defaultdict
from dataclasses import dataclass

from rdkit import Chem, RDConfig, rdBase
from rdkit.Chem.Scaffolds import MurckoScaffold


@dataclass(frozen=True)
class LabelledMolecule:
    identifier: str
    smiles: str
    label: float


def cmet_data_dir() -> str:
    return os.path.join(RDConfig.RDContribDir, "FreeWilson", "data")


def load_cmet_ligands() -> list[LabelledMolecule]:
    """The c-Met ligands with their pIC50, in file order."""
    data_dir = cmet_data_dir()
    smiles_path = os.path.join(data_dir, "CHEMBL2321810.smi")
    activity_path = os.path.join(data_dir, "CHEMBL2321810_act.csv")
    if not (os.path.exists(smiles_path) and os.path.exists(activity_path)):
        raise FileNotFoundError(
            f"RDKit's c-Met data set is not in {data_dir}; is RDKit installed with its Contrib folder?"
        )
    with open(activity_path, newline="") as handle:
        activity = {row["Name"]: float(row["Act"]) for row in csv.DictReader(handle)}
    molecules = []
    with open(smiles_path) as handle:
        for line in handle:
            if line.strip():
                smiles, identifier = line.split()[:2]
                molecules.append(LabelledMolecule(f"CHEMBL{identifier}", smiles, activity[identifier]))
    return molecules


def murcko_scaffold(smiles: str) -> str:
    with rdBase.BlockLogs():
        return MurckoScaffold.MurckoScaffoldSmiles(mol=Chem.MolFromSmiles(smiles), includeChirality=False)


def scaffold_split(
    smiles: list[str], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[list[int], list[int], list[int]]:
    """Balanced Bemis-Murcko scaffold split (chemprop's `scaffold_balanced`): molecules sharing a scaffold land in
    the same part; scaffold sets too big for validation/test go to training first, the rest in seeded random order.

    Returns train, validation and test indices.
    """
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fractions}")
    groups: dict[str, list[int]] = defaultdict(list)
    for index, s in enumerate(smiles):
        groups[murcko_scaffold(s)].append(index)
    train_size, valid_size = int(fractions[0] * len(smiles)), int(fractions[1] * len(smiles))
    test_size = len(smiles) - train_size - valid_size
    big = [g for g in groups.values() if len(g) > valid_size / 2 or len(g) > test_size / 2]
    small = [g for g in groups.values() if not (len(g) > valid_size / 2 or len(g) > test_size / 2)]
    rng = random.Random(seed)
    rng.shuffle(big)
    rng.shuffle(small)
    train, valid, test = [], [], []
    for group in big + small:
        if len(train) + len(group) <= train_size:
            train += group
        elif len(valid) + len(group) <= valid_size:
            valid += group
        else:
            test += group
    return train, valid, test
