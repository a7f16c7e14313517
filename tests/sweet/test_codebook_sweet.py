"""Language codebook: the curated vocabulary (class-disjoint, frequent, long enough, lemmas) of a real vocabulary
(MiniLM) and a tiny local BPE model."""

import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

from modeling_sweet.codebook_sweet import (
    FUNCTION_WORDS,
    SPATIAL_WORD_CLASSES,
    TEMPORAL_WORD_CLASSES,
    LanguageCodebook,
    build_cooccurrence_graph,
    build_language_codebook,
    default_language_model_path,
    factor_indices,
    language_model_name,
    primary_word_class,
    read_captions,
    select_words,
    whole_words,
    zipf_frequency,
)

MINILM_VOCAB_SIZE, MINILM_DIM = 30522, 384


@pytest.fixture(scope="module")
def minilm():
    return default_language_model_path()


@pytest.fixture(scope="module")
def spatial(minilm):
    return build_language_codebook(minilm, SPATIAL_WORD_CLASSES)


@pytest.fixture(scope="module")
def temporal(minilm):
    return build_language_codebook(minilm, TEMPORAL_WORD_CLASSES)


def test_spatial_codebook_is_nouns_and_adjectives(spatial):
    assert {"dog", "red", "car", "tree", "fog", "junction", "swan"} <= set(spatial.words)
    assert "quickly" not in spatial.words and "walk" not in spatial.words
    assert all(primary_word_class(word) in ("NOUN", "ADJ") for word in spatial.words)
    assert 5_000 < len(spatial) < MINILM_VOCAB_SIZE and spatial.word_classes == ("NOUN", "ADJ")


def test_temporal_codebook_is_verbs_and_adverbs(temporal):
    assert {"run", "quickly", "jump", "slowly", "walk", "across"} <= set(temporal.words)
    assert not {"red", "fog", "junction", "swans"} & set(temporal.words)  # nouns the first version had here
    assert all(primary_word_class(word) in ("VERB", "ADV") for word in temporal.words)
    assert 1_000 < len(temporal)


def test_the_codebooks_are_class_disjoint(spatial, temporal):
    assert not set(spatial.words) & set(temporal.words)
    # without `class_disjoint` a word of both classes sits in both (the first version's vocabulary)
    words = ["walk", "fog", "light", "red", "quickly"]
    both = [select_words(words, classes, class_disjoint=False)[0]
            for classes in (SPATIAL_WORD_CLASSES, TEMPORAL_WORD_CLASSES)]
    assert both == [["walk", "fog", "light", "red"], ["walk", "fog", "light", "quickly"]]
    disjoint = [select_words(words, classes)[0] for classes in (SPATIAL_WORD_CLASSES, TEMPORAL_WORD_CLASSES)]
    assert disjoint == [["fog", "light", "red"], ["walk", "quickly"]]


@pytest.mark.parametrize("word, word_class", [
    ("fog", "NOUN"), ("junction", "NOUN"), ("dog", "NOUN"), ("water", "NOUN"), ("red", "ADJ"), ("fast", "ADJ"),
    ("walk", "VERB"), ("run", "VERB"), ("look", "VERB"), ("worked", "VERB"), ("saw", "VERB"), ("quickly", "ADV"),
    ("across", "ADV"), ("up", "ADV"), ("away", "ADV"), ("hard", "ADJ"), ("light", "NOUN"), ("zzzq", None),
])
def test_primary_word_class(word, word_class):
    assert primary_word_class(word) == word_class


def test_filters_length_frequency_and_lemmas():
    words = ["ph", "rs", "ye", "ax", "axe", "dog", "worked", "processed", "processing", "swans", "work", "process",
             "swan", "ocelot"]
    kept, dropped = select_words(words, SPATIAL_WORD_CLASSES + TEMPORAL_WORD_CLASSES)
    assert kept == ["axe", "dog", "work", "process", "swan"]
    assert zipf_frequency("ocelot") < 3.0 < zipf_frequency("dog")
    assert dropped == {"shorter than 3 letters": 4, "an inflection, not a lemma": 4, "rarer than Zipf 3": 1}
    # each filter can be switched off
    assert select_words(["ph", "ye"], SPATIAL_WORD_CLASSES, min_word_length=2)[0] == ["ph", "ye"]
    assert select_words(["ocelot"], SPATIAL_WORD_CLASSES, min_zipf_frequency=0)[0] == ["ocelot"]
    assert select_words(["swans", "worked"], ["NOUN", "VERB"], lemmas_only=False)[0] == ["swans", "worked"]


def test_function_words_are_left_out_unless_asked_for(minilm, spatial, temporal):
    # lemminflect alone tags "he" / "this" as nouns and "can" / "would" as verbs.
    assert not (FUNCTION_WORDS & set(spatial.words)) and not (FUNCTION_WORDS & set(temporal.words))
    assert {"down", "across", "along", "around"} <= set(temporal.words)  # direction words: motion ("up" is short)
    everything = build_language_codebook(minilm, TEMPORAL_WORD_CLASSES, exclude_words=(), class_disjoint=False,
                                         lemmas_only=False, min_word_length=2)
    assert {"can", "would", "is"} <= set(everything.words)


def test_words_are_whole_lowercase_unique_and_in_vocabulary_order(spatial, temporal):
    for codebook in (spatial, temporal):
        assert len(set(codebook.words)) == len(codebook.words)
        assert all(w.isascii() and w.isalpha() and w.islower() and len(w) >= 3 for w in codebook.words)
        assert not any(w.startswith("##") for w in codebook.words)
        assert codebook.token_ids == sorted(codebook.token_ids)


def test_embeddings_are_the_minilm_input_embedding_rows(minilm, spatial):
    weights = load_file(f"{minilm}/model.safetensors")
    table = next(v for k, v in weights.items() if k.endswith("word_embeddings.weight"))
    assert table.shape == (MINILM_VOCAB_SIZE, MINILM_DIM)
    assert spatial.embeddings.shape == (len(spatial), MINILM_DIM) and spatial.embeddings.dtype == torch.float32
    assert torch.equal(spatial.embeddings, table[spatial.token_ids].float())
    assert not spatial.embeddings.requires_grad


def test_token_ids_are_the_words_tokens(minilm, spatial):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm)
    assert tokenizer.convert_ids_to_tokens(spatial.token_ids[:50]) == spatial.words[:50]


def test_max_words_truncates_in_order(minilm, spatial):
    small = build_language_codebook(minilm, SPATIAL_WORD_CLASSES, max_words=7)
    assert small.words == spatial.words[:7] and small.embeddings.shape == (7, MINILM_DIM)


def test_min_word_length(minilm):
    codebook = build_language_codebook(minilm, ["ADJ"], max_words=200, min_word_length=5)
    assert min(len(w) for w in codebook.words) >= 5


def test_bad_arguments_raise(minilm):
    with pytest.raises(ValueError, match=r"unknown word class 'VERBS'; valid word classes are \['NOUN'"):
        build_language_codebook(minilm, ["NOUN", "VERBS"])
    with pytest.raises(ValueError, match="word_classes is empty"):
        build_language_codebook(minilm, [])
    with pytest.raises(ValueError, match="max_words must be a positive integer"):
        build_language_codebook(minilm, ["NOUN"], max_words=0)
    with pytest.raises(ValueError, match="no word of the classes"):
        build_language_codebook(minilm, ["AUX"], min_word_length=20)


def test_a_vocabulary_too_small_for_max_words_names_the_numbers(minilm, temporal):
    size = len(temporal)
    message = (rf"max_words=20000 asks for more words than the \['VERB', 'ADV'\] vocabulary of .*: {size:,} of its "
               r"[\d,]+ whole words pass the filters \(vocabulary_min_word_length=3, vocabulary_min_zipf_frequency=3, "
               r"vocabulary_lemmas_only=True, vocabulary_class_disjoint=True; dropped: [\d,]+ another word class")
    with pytest.raises(ValueError, match=message):
        build_language_codebook(minilm, TEMPORAL_WORD_CLASSES, max_words=20_000)


def test_language_model_names_are_never_local_paths(minilm, tmp_path):
    assert language_model_name(minilm) == "sentence-transformers/all-MiniLM-L6-v2"
    assert language_model_name("org/some-model") == "org/some-model"
    (tmp_path / "my-lm").mkdir()
    assert language_model_name(tmp_path / "my-lm") == "my-lm"


def test_ids_to_words_round_trip(spatial):
    words = [["dog", "red", "tree"], ["car", "dog", "house"]]
    ids = spatial.words_to_ids(words)
    assert ids.shape == (2, 3) and ids.dtype == torch.long
    assert spatial.ids_to_words(ids) == words
    assert spatial.ids_to_words(ids[0, 1]) == "red"
    assert spatial.ids_to_words(ids.numpy().tolist()) == words
    size = len(spatial)
    with pytest.raises(ValueError, match=rf"code index {size} is out of range for a codebook of {size} words"):
        spatial.ids_to_words(torch.tensor([[0, size]]))
    with pytest.raises(ValueError, match="code index -1 is out of range"):
        spatial.ids_to_words([3, -1])
    with pytest.raises(ValueError, match="must be integers"):
        spatial.ids_to_words(torch.tensor([0.0]))
    with pytest.raises(KeyError, match="'zzzq' is not in this codebook"):
        spatial.words_to_ids(["dog", "zzzq"])


def test_codebook_checks_its_parts():
    with pytest.raises(ValueError, match="2 words, 1 token ids and 2 embedding rows"):
        LanguageCodebook(["a", "b"], [0], torch.zeros(2, 4), ("NOUN",), "x")
    assert "2 words x 4 dims" in repr(LanguageCodebook(["a", "b"], [0, 1], torch.zeros(2, 4), ("NOUN",), "x"))


def test_whole_words_wordpiece_and_word_start_markers():
    wordpiece = {"[CLS]": 0, "dog": 1, "##ing": 2, "Red": 3, "red": 4, "a": 5, "dog2": 6, "[unused]": 7, "run": 8}
    assert whole_words(wordpiece, ["[CLS]"]) == [("dog", 1), ("red", 4), ("run", 8)]
    bpe = {"<|endoftext|>": 0, "dog": 1, "Ġdog": 2, "ing": 3, "Ġred": 4, "Ġdog ": 5, "Ġrun": 6, "Ġrunning": 7,
           "##x": 8}
    assert whole_words(bpe, ["<|endoftext|>"]) == [("dog", 2), ("red", 4), ("run", 6), ("running", 7)]
    sentencepiece = {"<s>": 0, "▁dog": 1, "dog": 2, "▁▁": 3, "▁red": 4, "s": 5}
    assert whole_words(sentencepiece, ["<s>"]) == [("dog", 1), ("red", 4)]
    assert whole_words({"Ġdog": 3, "Ġdogs": 1}, ()) == [("dogs", 1), ("dog", 3)]  # token id order


@pytest.fixture(scope="module")
def tiny_bpe_model(tmp_path_factory):
    """A GPT-2-style folder: word-level tokenizer over a byte-level-BPE-like vocabulary and a 2-layer GPT-2."""
    folder = tmp_path_factory.mktemp("tiny_bpe")
    vocab = {"<|endoftext|>": 0, "dog": 1, "Ġdog": 2, "ing": 3, "Ġred": 4, "Ġquickly": 5, "Ġrun": 6, "Ġthe": 7,
             "ĠParis": 8, "Ġcar": 9}
    backend = Tokenizer(WordLevel(vocab, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>").save_pretrained(folder)
    model = GPT2Model(GPT2Config(vocab_size=len(vocab), n_embd=8, n_layer=1, n_head=2, n_positions=16,
                                bos_token_id=0, eos_token_id=0))
    model.save_pretrained(folder)
    return folder, model.get_input_embeddings().weight.detach()


def test_bpe_vocabulary_codebook(tiny_bpe_model):
    folder, table = tiny_bpe_model
    spatial = build_language_codebook(folder, SPATIAL_WORD_CLASSES)
    assert spatial.words == ["dog", "red", "car"] and spatial.token_ids == [2, 4, 9]
    assert torch.equal(spatial.embeddings, table[[2, 4, 9]])
    temporal = build_language_codebook(str(folder), TEMPORAL_WORD_CLASSES)
    assert temporal.words == ["quickly", "run"] and temporal.language_model == str(folder)
    # the first version's vocabulary: any class of a word counts ("a run" is a noun, "to dog someone" a verb)
    first = dict(class_disjoint=False, lemmas_only=False, min_zipf_frequency=0, min_word_length=2)
    assert build_language_codebook(folder, SPATIAL_WORD_CLASSES, **first).words == ["dog", "red", "run", "car"]
    assert build_language_codebook(folder, TEMPORAL_WORD_CLASSES, **first).words == ["dog", "quickly", "run"]


# -- factorised codebooks and co-occurrence graphs --------------------------------------------------------------------
def test_factor_indices_split_words_by_their_primary_class():
    words = ["red", "dog", "fast", "tree", "light"]
    assert factor_indices(words, [["ADJ"], ["NOUN"]]) == [[0, 2], [1, 3, 4]]
    assert factor_indices(["walk", "quickly", "run"], [["VERB"], ["ADV"]]) == [[0, 2], [1]]
    # a word whose primary class is in no factor goes to the first factor of one of its other classes
    assert primary_word_class("walk") == "VERB" and factor_indices(["walk"], [["ADJ"], ["NOUN"]]) == [[], [0]]
    with pytest.raises(ValueError, match=r"word #1 'quickly' \(ADV\) belongs to none of the factors"):
        factor_indices(["dog", "quickly"], [["ADJ"], ["NOUN"]])


def test_read_captions_from_a_file_a_list_a_generator_and_a_datasets_column(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_text("A red dog.\nTwo cars, quickly!\n", encoding="utf-8")
    expected = [["a", "red", "dog"], ["two", "cars", "quickly"]]
    assert read_captions(path) == expected and read_captions(str(path)) == expected
    assert read_captions(["A red dog.", "Two cars, quickly!"]) == expected
    assert read_captions(line for line in ["A red dog.", "Two cars, quickly!"]) == expected
    datasets = pytest.importorskip("datasets")
    column = datasets.Dataset.from_dict({"caption": ["A red dog.", "Two cars, quickly!"]})["caption"]
    assert read_captions(column) == expected
    with pytest.raises(FileNotFoundError, match="is not a file"):
        read_captions(tmp_path / "missing.txt")
    with pytest.raises(TypeError, match="caption #1 is a int, not a string"):
        read_captions(["a dog", 3])


def test_cooccurrence_graph_counts_pairs_within_the_window():
    words = ["red", "dog", "car", "tree"]
    captions = ["a red dog", "red dogs and a red car", "tree"]
    # caption 2 (after lemmas: red dog and a red car): red-dog, dog-car (4 apart), red-car (positions 4, 5); the first
    # red and car are 5 apart, outside a window of 5 words. Counts: red-dog 2, dog-car 1, red-car 1.
    edge_index, edge_weight = build_cooccurrence_graph(captions, words, window=5)
    edges = {(int(s), int(t)): float(w) for (s, t), w in zip(edge_index.T, edge_weight)}
    assert edges == {(0, 1): 1.0, (1, 0): 1.0, (1, 2): 0.5, (2, 1): 0.5, (0, 2): 0.5, (2, 0): 0.5}
    assert edge_index.dtype == torch.long and edge_weight.dtype == torch.float32
    adjacent = build_cooccurrence_graph(captions, words, window=2)
    assert {(int(s), int(t)) for s, t in adjacent[0].T} == {(0, 1), (1, 0), (0, 2), (2, 0)}
    whole = build_cooccurrence_graph(captions, words, window=None)
    assert torch.equal(whole[0], edge_index) and torch.allclose(whole[1], edge_weight)  # a pair counts once a caption
    empty = build_cooccurrence_graph(["tree", "nothing here"], words)
    assert empty[0].shape == (2, 0) and empty[1].shape == (0,)
    with pytest.raises(ValueError, match="window must be an integer >= 2"):
        build_cooccurrence_graph(captions, words, window=1)
