"""Tiny SweetTokenizer configs and a small real language codebook (MiniLM words)."""

import pytest

from modeling_sweet import SweetTokenizerConfig, SweetTokenizerModel
from tests.model_testers import SWEET_TINY

TINY = SWEET_TINY


@pytest.fixture
def tiny_sweet_config():
    def make(**overrides):
        return SweetTokenizerConfig(**{**TINY, **overrides})

    return make


@pytest.fixture(scope="session")
def minilm_path():
    from modeling_sweet.codebook_sweet import default_language_model_path

    return default_language_model_path()


@pytest.fixture
def word_model(tiny_sweet_config, minilm_path):
    """A tiny tokenizer whose codebooks are the first 64 MiniLM nouns/adjectives and verbs/adverbs."""
    return SweetTokenizerModel.from_language_model(tiny_sweet_config(), minilm_path, max_words=64)
