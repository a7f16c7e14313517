import pytest
import torch
from transformers import pipeline

from modeling_hsanet import HSANetForMolecularPropertyPrediction, HSANetModel

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "[Na+].[Cl-]", "C", "O=C(O)c1ccccc1", "CCN(CC)CC"]


@pytest.fixture
def saved(tmp_path, tiny_config, processor):
    def make(**overrides):
        model = HSANetForMolecularPropertyPrediction(tiny_config(**overrides)).eval()
        model.save_pretrained(tmp_path)
        processor.save_pretrained(tmp_path)
        return model, str(tmp_path)

    return make


def test_property_pipeline_returns_one_result_per_input_in_order(saved, processor):
    model, path = saved(num_labels=1)
    predictor = pipeline("molecular-property-prediction", model=path)
    batched = predictor(SMILES, batch_size=3)
    assert len(batched) == len(SMILES)
    with torch.no_grad():
        expected = model(**processor(SMILES)).logits[:, 0]
    scores = torch.tensor([result["score"] for result in batched])
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=1e-5)
    single = predictor(SMILES[2])
    assert single["score"] == pytest.approx(batched[2]["score"], abs=1e-5)


def test_property_pipeline_classification_top_k(saved):
    _, path = saved(num_labels=3, id2label={0: "inactive", 1: "weak", 2: "active"})
    predictor = pipeline("molecular-property-prediction", model=path)
    results = predictor(SMILES[:2], top_k=3, batch_size=2)
    assert [len(r) for r in results] == [3, 3]
    assert {r["label"] for r in results[0]} == {"inactive", "weak", "active"}
    assert sum(r["score"] for r in results[0]) == pytest.approx(1.0, abs=1e-5)


def test_feature_extraction_pipeline_matches_the_model(saved, processor):
    _, path = saved(num_labels=1)
    extractor = pipeline("molecular-feature-extraction", model=path)
    features = extractor(SMILES, batch_size=4, return_tensors=True)
    base = HSANetModel.from_pretrained(path).eval()
    with torch.no_grad():
        expected = base(**processor(SMILES)).pooler_output
    torch.testing.assert_close(torch.stack([f["embedding"] for f in features]), expected, atol=1e-5, rtol=1e-5)


def test_pipeline_bad_inputs(saved):
    _, path = saved(num_labels=1)
    predictor = pipeline("molecular-property-prediction", model=path)
    with pytest.raises(ValueError, match="'C1CC' could not be parsed"):
        predictor(["CCO", "C1CC"], batch_size=2)
    with pytest.raises(ValueError, match="empty list"):
        predictor([], batch_size=2)
    with pytest.raises(TypeError, match="expected a SMILES string"):
        predictor([None], batch_size=2)
