"""A saved folder carries its code: it loads with `trust_remote_code=True` in a fresh interpreter that never imports
this package (as from a Hub repo made by `push_to_hub`), and gives the same outputs."""

import json
import os
import subprocess
import sys

import torch
from conftest import TINY

from modeling_hsanet import HSANetConfig, HSANetForMolecularPropertyPrediction, HSANetProcessor
from modeling_sweet import SweetImageProcessor, SweetTokenizerConfig, SweetTokenizerModel

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]
TINY_SWEET = dict(image_size=16, patch_size=4, num_frames=5, temporal_patch_size=4, hidden_size=32,
                  num_attention_heads=2, intermediate_size=64, num_encoder_layers=1, num_query_layers=1,
                  num_temporal_layers=1, num_decoder_layers=2, num_spatial_queries=4, num_temporal_queries=8,
                  codebook_dim=16)


def run_isolated(code: str, folder) -> dict:
    """Run `code` with `python -I` (no PYTHONPATH, no script directory) in `folder`; it prints one JSON line."""
    env = {**os.environ, "HF_MODULES_CACHE": str(folder / "modules"), "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-I", "-c", code], cwd=folder, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_hsanet_folder_loads_as_remote_code(tmp_path):
    model = HSANetForMolecularPropertyPrediction(HSANetConfig(**TINY, num_labels=1)).eval()
    model.save_pretrained(tmp_path / "hsanet")
    processor = HSANetProcessor()
    processor.save_pretrained(tmp_path / "hsanet")
    assert {"modeling_hsanet.py", "configuration_hsanet.py", "featurization_hsanet.py"} <= set(
        os.listdir(tmp_path / "hsanet"))
    with torch.no_grad():
        expected = model(**processor(SMILES, return_tensors="pt")).logits.reshape(-1).tolist()
    loaded = run_isolated(f"""
import json, sys, torch
from transformers import AutoFeatureExtractor, AutoModelForSequenceClassification
model = AutoModelForSequenceClassification.from_pretrained("hsanet", trust_remote_code=True).eval()
features = AutoFeatureExtractor.from_pretrained("hsanet", trust_remote_code=True)
with torch.no_grad():
    logits = model(**features({SMILES!r}, return_tensors="pt")).logits.reshape(-1).tolist()
print(json.dumps(dict(module=type(model).__module__, package_imported="modeling_hsanet" in sys.modules,
                      logits=logits)))
""", tmp_path)
    assert loaded["module"].startswith("transformers_modules.") and not loaded["package_imported"]
    torch.testing.assert_close(torch.tensor(loaded["logits"]), torch.tensor(expected))


def test_sweet_folder_loads_as_remote_code(tmp_path):
    model = SweetTokenizerModel(SweetTokenizerConfig(**TINY_SWEET)).eval()
    model.save_pretrained(tmp_path / "sweet")
    SweetImageProcessor(size={"height": 16, "width": 16}).save_pretrained(tmp_path / "sweet")
    config = json.loads((tmp_path / "sweet" / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_sweet.SweetTokenizerConfig",
                                  "AutoModel": "modeling_sweet.SweetTokenizerModel"}
    image = torch.linspace(-0.5, 0.5, 3 * 16 * 16).view(1, 3, 16, 16)
    expected = model.encode(image).spatial_ids.tolist()
    loaded = run_isolated("""
import json, sys, torch
from transformers import AutoImageProcessor, AutoModel
model = AutoModel.from_pretrained("sweet", trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained("sweet", trust_remote_code=True)
image = torch.linspace(-0.5, 0.5, 3 * 16 * 16).view(1, 3, 16, 16)
print(json.dumps(dict(module=type(model).__module__, processor=type(processor).__name__,
                      package_imported="modeling_sweet" in sys.modules, ids=model.encode(image).spatial_ids.tolist())))
""", tmp_path)
    assert loaded["module"].startswith("transformers_modules.") and not loaded["package_imported"]
    assert loaded["processor"] == "SweetImageProcessor" and loaded["ids"] == expected
