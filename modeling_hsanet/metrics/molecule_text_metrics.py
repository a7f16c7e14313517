"""Molecule-to-text metrics of MolT5 / MolCA as a local `evaluate` module: BLEU-2/4, ROUGE-1/2/L, METEOR.

Load it offline with `evaluate.load(<path to this file>)` (the Hub copy of `evaluate`'s metrics cannot be reached
offline); `modeling_hsanet.metrics.load_molecule_text_metrics()` does that for you. The file is self-contained:
`evaluate` copies it into its module cache, so it imports only installed libraries.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import datasets
import evaluate
import nltk.data
import numpy as np
from nltk.translate.bleu_score import corpus_bleu
from nltk.translate.meteor_score import meteor_score
from rouge_score import rouge_scorer

_CITATION = """\
@inproceedings{edwards2022translation,
  title={Translation between Molecules and Natural Language},
  author={Edwards, Carl and Lai, Tuan and Ros, Kevin and Honke, Garrett and Cho, Kyunghyun and Ji, Heng},
  booktitle={EMNLP},
  year={2022}
}
@inproceedings{liu2023molca,
  title={MolCA: Molecular Graph-Language Modeling with Cross-Modal Projector and Uni-Modal Adapter},
  author={Liu, Zhiyuan and Li, Sihang and Luo, Yanchen and Fei, Hao and Cao, Yixin and Kawaguchi, Kenji and
          Wang, Xiang and Chua, Tat-Seng},
  booktitle={EMNLP},
  year={2023}
}
"""

_DESCRIPTION = """\
The molecule-captioning metrics of MolT5 (`evaluation/text_translation_metrics.py`), reused by MolCA and HSA-Net:
- each text is tokenized by the chosen tokenizer (truncated to `max_length` tokens; [PAD]/[CLS]/[SEP] and the
  tokenizer's pad/cls/sep/bos/eos tokens removed);
- BLEU-2 (weights .5, .5) and BLEU-4 (.25 x 4): nltk `corpus_bleu` over all pairs, references as [[ref_tokens]],
  no smoothing;
- METEOR: nltk `meteor_score([ref_tokens], pred_tokens)` per pair, averaged (needs WordNet);
- ROUGE-1/2/L: `rouge_score` (no stemming) on the raw strings, as MolT5 and MolCA pass them (`scorer.score(out, gt)`),
  so ROUGE uses rouge_score's own tokenization (lowercased alphanumeric words), not the chosen tokenizer;
  mean F-measure over pairs.
Values are fractions in [0, 1], as nltk and rouge_score return them; papers (MolCA, HSA-Net) print them x 100.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): generated texts.
    references (`list[str]`): one reference text per prediction.
    tokenizer (`str` or a Hugging Face tokenizer, default `"words"`): tokenizes the texts for BLEU and METEOR.
        - a tokenizer object with a `tokenize` method (e.g. `AutoTokenizer.from_pretrained(...)`);
        - a local folder or Hub id that `AutoTokenizer.from_pretrained` can load; the protocol of the papers is
          `"allenai/scibert_scivocab_uncased"` (MolT5, MolCA), LLaMo uses the Llama-2 tokenizer;
        - `"words"`: built in, lowercased words and single punctuation marks (`\\w+|[^\\w\\s]`), close to what an
          uncased BERT tokenizer does before it splits words into word pieces; the default, because it needs no
          download and gives the same tokens everywhere;
        - `"whitespace"`: built in, `str.split()` (punctuation stays attached to words).
    max_length (`int`, default 512): keep at most this many tokens per text (MolT5's `text_trunc_length`).
    meteor (`bool`, default True): compute METEOR; it needs nltk's WordNet and raises a `LookupError` saying how to
        install it when WordNet is missing. `meteor=False` skips it explicitly (the key is then absent).
Returns:
    `bleu2`, `bleu4`, `rouge1`, `rouge2`, `rougeL`, `meteor` (fractions in [0, 1]), `tokenizer` (the name of the
    tokenizer used for BLEU and METEOR), `num_samples`.
Examples:
    >>> metric = evaluate.load("modeling_hsanet/metrics/molecule_text_metrics.py")
    >>> results = metric.compute(predictions=["The molecule is an alcohol."], references=["It is an alcohol."])
    >>> results["tokenizer"], round(results["bleu2"], 3), round(results["rougeL"], 3), round(results["meteor"], 3)
    ('words', 0.632, 0.667, 0.778)
"""

BUILTIN_TOKENIZERS = {
    "words": lambda text: re.findall(r"\w+|[^\w\s]", text.lower()),
    "whitespace": str.split,
}
# MolT5 filters these three literally; the tokenizer's own pad/cls/sep/bos/eos tokens are removed as well.
STRIPPED_TOKENS = ("[PAD]", "[CLS]", "[SEP]")
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

WORDNET_MISSING_MESSAGE = (
    "METEOR needs WordNet, which nltk cannot find (it searched: {paths}). Install it offline from Debian's "
    "wordnet-base and wordnet-sense-index packages with `python utils/install_wordnet.py` in a checkout of this "
    'repository (`make install` runs it), or with network access run `python -c "import nltk; '
    "nltk.download('wordnet')\"`. To report the other metrics without METEOR, pass meteor=False."
)

_loaded_tokenizers: dict[str, object] = {}


def resolve_tokenizer(tokenizer) -> tuple[Callable[[str], list[str]], set[str], str]:
    """(tokenize function, tokens to strip, name) for a builtin name, a path / Hub id, or a tokenizer object."""
    if isinstance(tokenizer, str) and tokenizer in BUILTIN_TOKENIZERS:
        return BUILTIN_TOKENIZERS[tokenizer], set(), tokenizer
    if isinstance(tokenizer, str):
        if tokenizer not in _loaded_tokenizers:
            from transformers import AutoTokenizer

            try:
                _loaded_tokenizers[tokenizer] = AutoTokenizer.from_pretrained(tokenizer)
            except Exception as error:
                raise ValueError(
                    f"tokenizer={tokenizer!r} is neither a built-in tokenizer ({', '.join(BUILTIN_TOKENIZERS)}) nor "
                    f"a tokenizer that AutoTokenizer.from_pretrained can load ({type(error).__name__}: {error})"
                ) from error
        name, tokenizer = tokenizer, _loaded_tokenizers[tokenizer]
    elif hasattr(tokenizer, "tokenize"):
        name = getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__
    else:
        raise TypeError(
            f"tokenizer must be a built-in name ({', '.join(BUILTIN_TOKENIZERS)}), a path or Hub id for "
            f"AutoTokenizer, or an object with a `tokenize` method; got {type(tokenizer).__name__}"
        )
    special = {getattr(tokenizer, f"{kind}_token", None) for kind in ("pad", "cls", "sep", "bos", "eos")}
    stripped = set(STRIPPED_TOKENS) | {token for token in special if isinstance(token, str)}
    return tokenizer.tokenize, stripped, name


def require_wordnet() -> None:
    """Raise a `LookupError` that says how to install WordNet when nltk cannot load it."""
    try:
        nltk.data.find("corpora/wordnet")
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
    except (LookupError, OSError) as error:
        raise LookupError(WORDNET_MISSING_MESSAGE.format(paths=", ".join(nltk.data.path))) from error


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MoleculeTextMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            codebase_urls=[
                "https://github.com/blender-nlp/MolT5/blob/main/evaluation/text_translation_metrics.py",
                "https://github.com/acharkq/MolCA/blob/main/model/help_funcs.py",
            ],
        )

    def _compute(self, predictions, references, tokenizer="words", max_length=512, meteor=True):
        if len(predictions) != len(references):
            raise ValueError(f"got {len(predictions)} predictions but {len(references)} references; one each")
        if len(predictions) == 0:
            raise ValueError("no predictions and references were given; the metrics need at least one pair")
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
        if meteor:
            require_wordnet()  # before any work, so a missing WordNet fails fast
        tokenize, stripped, name = resolve_tokenizer(tokenizer)

        def tokens(text: str) -> list[str]:
            return [token for token in tokenize(text)[:max_length] if token not in stripped]

        reference_tokens = [tokens(text) for text in references]
        prediction_tokens = [tokens(text) for text in predictions]
        nested_references = [[reference] for reference in reference_tokens]
        with warnings.catch_warnings():  # nltk warns when a corpus has no matching n-grams; BLEU is then 0
            warnings.filterwarnings("ignore", message=r"\s*The hypothesis contains 0 counts", category=UserWarning)
            bleu2 = corpus_bleu(nested_references, prediction_tokens, weights=(0.5, 0.5))
            bleu4 = corpus_bleu(nested_references, prediction_tokens, weights=(0.25, 0.25, 0.25, 0.25))

        scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)
        # MolT5 calls scorer.score(out, gt) on the raw strings; the F-measure is symmetric in the two
        rouge = [scorer.score(prediction, reference) for prediction, reference in zip(predictions, references)]
        results = {"bleu2": float(bleu2), "bleu4": float(bleu4)}
        for rouge_type in ROUGE_TYPES:
            results[rouge_type] = float(np.mean([scores[rouge_type].fmeasure for scores in rouge]))
        if meteor:
            results["meteor"] = float(
                np.mean([meteor_score([ref], pred) for ref, pred in zip(reference_tokens, prediction_tokens)])
            )
        results["tokenizer"] = name
        results["num_samples"] = len(predictions)
        return results
