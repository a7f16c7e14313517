"""Conversion scripts: original checkpoints -> Hugging Face folders, and trained folders -> Hub-ready folders.

`convert_molecule_gin_to_hsanet` maps a MoleculeSTM GIN state dict onto `HSANetModel`; `export_hub_folder` writes a
folder ready for the Hub (safetensors weights, code, processors, the card of `model_cards`) from a trained model folder
or such a checkpoint, and pushes it with `--push REPO_ID`. They import the model packages, never the reverse.
"""
