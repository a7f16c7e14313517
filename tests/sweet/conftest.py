"""Tiny SweetTokenizer configs and a small real language codebook (MiniLM words)."""

import pytest

from modeling_sweet import SweetTokenizerConfig, SweetTokenizerModel

TINY = dict(image_size=16, patch_size=4, num_frames=5, temporal_patch_size=4, hidden_size=32, num_attention_heads=2,
            intermediate_size=64, num_encoder_layers=2, num_query_layers=1, num_temporal_layers=1,
            num_decoder_layers=2, num_spatial_queries=4, num_temporal_queries=8, codebook_dim=16)


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
