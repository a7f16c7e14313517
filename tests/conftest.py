"""Shared fixtures: tiny seeded HSA-Net configs and real molecules (RDKit's c-Met ligands)."""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch

import modeling_hsanet  # noqa: F401  (registers the Auto classes and pipelines)
from modeling_hsanet import HSANetConfig, HSANetProcessor
from modeling_hsanet.data_hsanet import load_cmet_ligands
from tests.model_testers import HSANET_TINY

TINY = HSANET_TINY


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def tiny_config():
    def make(**overrides):
        return HSANetConfig(**{**TINY, **overrides})

    return make


@pytest.fixture(scope="session")
def processor():
    return HSANetProcessor()


@pytest.fixture(scope="session")
def cmet():
    return load_cmet_ligands()


@pytest.fixture(scope="session")
def cmet_smiles(cmet):
    return [m.smiles for m in cmet]


@pytest.fixture
def ogb_utils(monkeypatch):
    """The real `ogb.utils` (the independent reference for OGB features), imported without OGB's version check.

    Importing `ogb` starts a (non-daemon) thread that asks PyPI for the latest version through `outdated`, with no
    timeout: offline it can keep the interpreter from exiting. OGB skips the check when `outdated` cannot be imported.
    """
    monkeypatch.setitem(sys.modules, "outdated", None)  # `import outdated` raises ImportError while importing ogb
    import ogb.utils
    from ogb.version import check_outdated

    assert check_outdated is None, "ogb was imported before with its PyPI version check on"
    return ogb.utils
