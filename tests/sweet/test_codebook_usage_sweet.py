"""A vocabulary sized to the data (`vocabulary_max_words_per_class`: each word class's most frequent words), the demo's
fix for low codebook usage, and that configs saved before the field load with every word."""

import json

import pytest
import torch
from transformers import AutoModel

from modeling_sweet import SweetTokenizerConfig, SweetTokenizerModel
from modeling_sweet.codebook_sweet import (
    build_cooccurrence_graph,
    most_frequent_per_class,
    primary_word_class,
    word_frequency,
    words_in_captions,
)


def test_most_frequent_per_class_keeps_the_most_frequent_words_of_each_class_in_order():
    words = ["aardvark", "red", "dog", "crimson", "cat", "tiny", "minuscule", "ocelot", "small"]
    kept = most_frequent_per_class(words, ["NOUN", "ADJ"], 2)
    assert [words[index] for index in kept] == ["red", "dog", "cat", "small"]
    kept_words = [words[index] for index in kept]
    assert kept == sorted(kept)  # the words' order
    for word_class in ("NOUN", "ADJ"):
        of_class = [word for word in words if primary_word_class(word) == word_class]
        chosen = [word for word in kept_words if word in of_class]
        assert len(chosen) == 2
        dropped = set(of_class) - set(chosen)
        assert min(map(word_frequency, chosen)) >= max(map(word_frequency, dropped))


def test_caption_words_come_first_then_the_most_frequent():
    words = ["aardvark", "red", "dog", "crimson", "cat", "tiny", "minuscule", "ocelot", "small"]
    first = words_in_captions(["Two ocelots, minuscule and crimson."], words)  # "ocelots" counts as its lemma
    assert {words[index] for index in first} == {"ocelot", "minuscule", "crimson"}
    kept = [words[index] for index in most_frequent_per_class(words, ["NOUN", "ADJ"], 2, first=first)]
    # the caption's noun, then the most frequent other noun; both caption adjectives (the limit is 2)
    assert kept == ["dog", "crimson", "minuscule", "ocelot"]
    assert [words[index] for index in most_frequent_per_class(words, ["NOUN", "ADJ"], 1, first=first)] == [
        "crimson" if word_frequency("crimson") >= word_frequency("minuscule") else "minuscule", "ocelot"]


def test_a_sized_vocabulary_keeps_the_caption_words_so_the_graph_has_edges(tiny_sweet_config, minilm_path):
    captions = ["a quiet old lighthouse on a rocky island", "the lighthouse stands on the rocky island"]
    config = tiny_sweet_config(vocabulary_max_words_per_class=5)
    model = SweetTokenizerModel.from_language_model(config, minilm_path, captions=iter(captions))
    words = model.config.spatial_words
    assert {"lighthouse", "island", "rocky"} <= set(words)  # rare words, far below the 5 most frequent nouns
    edges, _ = build_cooccurrence_graph(captions, words)
    assert model.config.spatial_graph_num_edges == edges.shape[1] > 0
    without = SweetTokenizerModel.from_language_model(config, minilm_path)
    assert "lighthouse" not in without.config.spatial_words


def test_most_frequent_per_class_rejects_a_bad_limit():
    with pytest.raises(ValueError, match="limit must be an integer >= 1"):
        most_frequent_per_class(["dog"], ["NOUN"], 0)


@pytest.mark.parametrize("value", [1, 2.5, True, "8"])
def test_vocabulary_max_words_per_class_is_validated(tiny_sweet_config, value):
    with pytest.raises(ValueError, match="`vocabulary_max_words_per_class`"):
        tiny_sweet_config(vocabulary_max_words_per_class=value)


def test_a_vocabulary_sized_to_the_data_keeps_each_classes_most_frequent_words(tiny_sweet_config, minilm_path):
    full = SweetTokenizerModel.from_language_model(tiny_sweet_config(), minilm_path, max_words=64)
    small = SweetTokenizerModel.from_language_model(tiny_sweet_config(vocabulary_max_words_per_class=5), minilm_path,
                                                    max_words=64)
    for branch in ("spatial", "temporal"):
        assert small.config.codebook_factor_sizes(branch) == [5, 5]
        full_words, small_words = getattr(full.config, f"{branch}_words"), getattr(small.config, f"{branch}_words")
        full_sizes = full.config.codebook_factor_sizes(branch)
        for factor, (full_block, small_block) in enumerate(zip(
                (full_words[:full_sizes[0]], full_words[full_sizes[0]:]), (small_words[:5], small_words[5:]))):
            assert set(small_block) <= set(full_block)
            assert small_block == [word for word in full_block if word in small_block]  # token id order kept
            dropped = set(full_block) - set(small_block)
            assert min(map(word_frequency, small_block)) >= max(map(word_frequency, dropped)), (branch, factor)
        # the embeddings are the rows of the kept words
        full_quantizer, small_quantizer = full.get_submodule(f"{branch}_quantizer"), \
            small.get_submodule(f"{branch}_quantizer")
        rows = [full_words.index(word) for word in small_words]
        torch.testing.assert_close(small_quantizer.language_embeddings, full_quantizer.language_embeddings[rows])


def test_the_vocabulary_limit_is_saved_and_a_config_without_it_keeps_every_word(tiny_sweet_config, minilm_path,
                                                                                 tmp_path):
    torch.manual_seed(0)
    model = SweetTokenizerModel.from_language_model(tiny_sweet_config(vocabulary_max_words_per_class=5), minilm_path,
                                                    max_words=64).eval()
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.vocabulary_max_words_per_class == 5
    assert reloaded.config.spatial_words == model.config.spatial_words
    video = torch.rand(2, 3, 5, 16, 16) - 0.5
    with torch.no_grad():
        torch.testing.assert_close(reloaded(video).reconstruction, model(video).reconstruction, rtol=1e-5, atol=1e-6)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["vocabulary_max_words_per_class"]
    assert SweetTokenizerConfig(**config).vocabulary_max_words_per_class is None
    assert SweetTokenizerConfig().vocabulary_max_words_per_class is None
