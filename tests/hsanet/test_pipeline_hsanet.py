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


def test_multi_label_model_trained_on_floats_is_served_with_sigmoid_probabilities(tmp_path, tiny_config, processor):
    # The model decides the problem type from its first labels (float targets, 2 labels: multi-label BCE) and writes
    # it to its config; the pipeline serves the saved model by that config, not by a second rule of its own.
    model = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=2))
    assert model.config.problem_type is None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = processor(SMILES[:4], labels=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    model.train()
    model(**batch).loss.backward()
    optimizer.step()
    assert model.config.problem_type == "multi_label_classification"
    model.eval().save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)

    predictor = pipeline("molecular-property-prediction", model=str(tmp_path))
    results = predictor(SMILES[:3], batch_size=2)
    assert all(isinstance(result, list) and len(result) == 2 for result in results)
    assert [r["label"] for r in results[0]] == ["LABEL_0", "LABEL_1"]
    with torch.no_grad():
        expected = model(**processor(SMILES[:3])).logits.sigmoid()
    scores = torch.tensor([[r["score"] for r in result] for result in results])
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=1e-5)


def test_pipelines_stream_a_generator(saved, processor):
    _, path = saved(num_labels=1)
    predictor = pipeline("molecular-property-prediction", model=path)
    expected = predictor(SMILES, batch_size=3)
    consumed = []

    def smiles_stream():
        for smiles in SMILES:
            consumed.append(smiles)
            yield smiles

    stream = predictor(smiles_stream(), batch_size=3)
    assert not isinstance(stream, list)
    first = next(iter(stream))
    assert len(consumed) < len(SMILES)  # results come while the input is still being read
    rest = list(stream)
    assert len(rest) == len(SMILES) - 1
    scores = torch.tensor([result["score"] for result in [first, *rest]])
    torch.testing.assert_close(scores, torch.tensor([result["score"] for result in expected]), atol=1e-5, rtol=1e-5)

    extractor = pipeline("molecular-feature-extraction", model=path)
    features = list(extractor((s for s in SMILES), batch_size=4, return_tensors=True))
    reference = extractor(SMILES, batch_size=4, return_tensors=True)
    torch.testing.assert_close(torch.stack([f["embedding"] for f in features]),
                               torch.stack([f["embedding"] for f in reference]), atol=1e-5, rtol=1e-5)


def test_pipeline_reads_a_tuple_as_a_batch(saved):
    _, path = saved(num_labels=1)
    predictor = pipeline("molecular-property-prediction", model=path)
    assert len(predictor(tuple(SMILES[:3]), batch_size=2)) == 3


def test_pipelines_take_any_iterable_of_smiles(saved):
    from datasets import Dataset as HFDataset

    _, path = saved(num_labels=1)
    predictor = pipeline("molecular-property-prediction", model=path)
    expected = [result["score"] for result in predictor(SMILES, batch_size=2)]
    column = HFDataset.from_dict({"smiles": SMILES})["smiles"]  # a datasets Column, not a list
    for inputs in (column, tuple(SMILES), iter(SMILES), map(str.strip, SMILES)):
        results = list(predictor(inputs, batch_size=2))
        assert len(results) == len(SMILES), type(inputs).__name__
        torch.testing.assert_close(torch.tensor([r["score"] for r in results]), torch.tensor(expected),
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 2, 4])
@pytest.mark.parametrize("as_generator", [False, True])
def test_pipeline_error_names_the_item_of_the_users_input(saved, batch_size, as_generator):
    _, path = saved(num_labels=1)
    predictor = pipeline("molecular-property-prediction", model=path)

    def run(smiles):
        return list(predictor((s for s in smiles) if as_generator else smiles, batch_size=batch_size))

    with pytest.raises(ValueError, match=r"SMILES #2 'C1CC' could not be parsed by RDKit"):
        run(["CCO", "c1ccccc1O", "C1CC", "CCN", "C"])
    with pytest.raises(TypeError, match=r"SMILES #3 is a NoneType \(None\); expected a SMILES string"):
        run(["CCO", "c1ccccc1O", "CCN", None])


def test_pipeline_save_pretrained_round_trip(saved, tmp_path):
    _, path = saved(num_labels=1)
    predictor = pipeline("molecular-property-prediction", model=path)
    predictor.save_pretrained(tmp_path / "pipeline")  # the processor's stand-in tokenizer is not saved as a tokenizer
    again = pipeline("molecular-property-prediction", model=str(tmp_path / "pipeline"), trust_remote_code=True)
    assert again.tokenizer is None and again.processor.feature_extractor.max_scan_distance == 8
    assert again(SMILES[0])["score"] == pytest.approx(predictor(SMILES[0])["score"], abs=1e-5)
