"""Metrics for molecule-to-text generation, shipped as local `evaluate` modules (the Hub copies need a network).

`molecule_text_metrics.py` reproduces the MolT5 / MolCA protocol (BLEU-2/4, ROUGE-1/2/L, METEOR); load it with
`evaluate.load(molecule_text_metrics_path())` or `load_molecule_text_metrics()`.
"""

from __future__ import annotations

import os

__all__ = ["load_molecule_text_metrics", "molecule_text_metrics_path"]


def molecule_text_metrics_path() -> str:
    """Path of the `evaluate` module file `molecule_text_metrics.py`."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "molecule_text_metrics.py")


def load_molecule_text_metrics(**kwargs):
    """`evaluate.load(molecule_text_metrics_path(), **kwargs)`; needs `evaluate` (extras `test` and `demo`)."""
    import evaluate

    return evaluate.load(molecule_text_metrics_path(), **kwargs)
