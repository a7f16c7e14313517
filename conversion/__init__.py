"""Conversion scripts: original checkpoints -> Hugging Face folders.

They import the model packages, never the reverse.
"""
