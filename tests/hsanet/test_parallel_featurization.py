"""Feeding the model: featurization in worker processes (pipelines' `num_workers`, `featurize_dataset(num_proc=)`),
graphs cached by `datasets`, pre-featurized rows in `Trainer`, and batches bucketed by molecule size (pipelines,
`Trainer`'s `group_by_length`), each checked against the plain path: same results, in order, less padding."""

from __future__ import annotations

import pickle
import random
from functools import partial

import pytest
import torch
from datasets import Dataset, load_from_disk
from transformers import Trainer, TrainingArguments, pipeline
from transformers.trainer_pt_utils import LengthGroupedSampler

from modeling_hsanet import HSANetConfig, HSANetFeatureExtractor, HSANetForMolecularPropertyPrediction
from modeling_hsanet.pipeline_hsanet import (
    _featurize_numbered,
    _in_input_order,
    collate_items,
    estimated_atoms,
    size_sorted_order,
)
from tests.model_testers import HSANET_TINY

# Small and large molecules interleaved, so that batches in input order mix sizes.
SMALL = ["CCO", "C", "[Na+].[Cl-]", "CCN", "O", "CC(C)O"]


@pytest.fixture(scope="module")
def mixed_smiles(cmet_smiles):
    large = sorted(cmet_smiles[:40], key=len)[-6:]
    return [molecule for pair in zip(SMALL, large) for molecule in pair]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, processor):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("property")
    HSANetForMolecularPropertyPrediction(HSANetConfig(**HSANET_TINY, num_labels=1)).eval().save_pretrained(path)
    processor.save_pretrained(path)
    return str(path)


def padded_positions(batches: list[torch.Tensor]) -> int:
    """Padding the model adds to batches of these `num_atoms`: every molecule is padded to the batch's largest."""
    return sum(int(num_atoms.max() * len(num_atoms) - num_atoms.sum()) for num_atoms in batches)


def record_batches(pipe) -> list[torch.Tensor]:
    """Wrap the pipeline's `_forward` to record each batch's `num_atoms`."""
    seen, forward = [], pipe._forward

    def recording(model_inputs, **kwargs):
        seen.append(model_inputs["num_atoms"].cpu())
        return forward(model_inputs, **kwargs)

    pipe._forward = recording
    return seen


def test_estimated_atoms_is_the_featurizers_atom_count(processor, cmet_smiles):
    smiles = cmet_smiles[:50] + ["[Na+].[Cl-]", "ClCCBr", "c1ccsc1", "[13CH4]", "C=O"]
    counts = [graph.num_atoms for graph in processor.feature_extractor.featurize(smiles)]
    assert [estimated_atoms(s) for s in smiles] == counts
    assert estimated_atoms({"smiles": "CCO"}) == 3 and estimated_atoms(None) == 0


@pytest.mark.parametrize("batch_size,window_batches", [(3, 2), (4, 64), (1, 1)])
def test_size_sorted_order_and_its_inverse(batch_size, window_batches):
    rng = random.Random(batch_size)
    sizes = [rng.randrange(1, 60) for _ in range(29)]
    order = size_sorted_order(sizes, batch_size, window_batches)
    assert sorted(order) == list(range(len(sizes)))
    window = batch_size * window_batches
    for start in range(0, len(sizes), window):  # each window is a permutation of itself, largest first
        chunk = order[start:start + window]
        assert sorted(chunk) == list(range(start, min(start + window, len(sizes))))
        assert [sizes[i] for i in chunk] == sorted((sizes[i] for i in chunk), reverse=True)
    results = [f"result of {index}" for index in order]  # what the model returns, in bucketed order
    assert list(_in_input_order(results, order, window)) == [f"result of {i}" for i in range(len(sizes))]


def test_pipeline_buckets_by_size_in_input_order_with_less_padding(saved_model, processor, mixed_smiles):
    predictor = pipeline("molecular-property-prediction", model=saved_model)
    plain_batches = record_batches(predictor)
    plain = predictor(mixed_smiles, batch_size=4, bucket_by_size=False)
    plain_padding = padded_positions(plain_batches)
    bucketed_batches = record_batches(predictor)
    bucketed = predictor(mixed_smiles, batch_size=4)  # on by default for a list
    assert [int(n.sum()) for n in bucketed_batches] != [int(n.sum()) for n in plain_batches]
    assert padded_positions(bucketed_batches) < plain_padding / 2
    model = HSANetForMolecularPropertyPrediction.from_pretrained(saved_model).eval()
    with torch.no_grad():
        expected = model(**processor(mixed_smiles)).logits[:, 0]
    for results in (plain, bucketed):
        torch.testing.assert_close(torch.tensor([r["score"] for r in results]), expected, atol=1e-5, rtol=1e-5)

    never = pipeline("molecular-property-prediction", model=saved_model, bucket_by_size=False)
    never_batches = record_batches(never)
    never(mixed_smiles, batch_size=4)
    assert padded_positions(never_batches) == plain_padding
    with pytest.raises(ValueError, match="bucket_by_size must be True, False or None"):
        predictor(mixed_smiles, bucket_by_size="yes")


def test_pipeline_error_names_the_users_item_when_bucketed(saved_model, mixed_smiles):
    predictor = pipeline("molecular-property-prediction", model=saved_model)
    smiles = list(mixed_smiles)
    smiles[7] = "C1CC"
    with pytest.raises(ValueError, match=r"SMILES #7 'C1CC' could not be parsed by RDKit"):
        predictor(smiles, batch_size=4)


def test_pipeline_workers_give_the_same_results_in_order(saved_model, mixed_smiles):
    predictor = pipeline("molecular-property-prediction", model=saved_model)
    reference = predictor(mixed_smiles, batch_size=4, num_workers=0, bucket_by_size=False)
    for bucket in (False, True):
        results = predictor(mixed_smiles, batch_size=4, num_workers=2, bucket_by_size=bucket)
        torch.testing.assert_close(torch.tensor([r["score"] for r in results]),
                                   torch.tensor([r["score"] for r in reference]), atol=1e-5, rtol=1e-5)
    extractor = pipeline("molecular-feature-extraction", model=saved_model, num_workers=2)
    features = extractor(mixed_smiles, batch_size=5, return_tensors=True)
    alone = [extractor(smiles, return_tensors=True) for smiles in mixed_smiles]
    torch.testing.assert_close(torch.stack([f["embedding"] for f in features]),
                               torch.stack([f["embedding"] for f in alone]), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"SMILES #3 'C1CC' could not be parsed by RDKit"):
        predictor(["CCO", "CCN", "C", "C1CC"], batch_size=2, num_workers=2)


def test_what_workers_run_pickles_without_the_model(saved_model, mixed_smiles):
    # Under the `spawn` start method (macOS, Windows) the DataLoader pickles the dataset and the collate function.
    predictor = pipeline("molecular-property-prediction", model=saved_model)
    process = partial(_featurize_numbered, type(predictor).featurize_item, predictor.processor)
    collate = partial(collate_items, predictor.processor)
    payload = pickle.dumps((process, collate))
    assert len(payload) < len(pickle.dumps(predictor.model.state_dict())) / 2
    process_again, collate_again = pickle.loads(payload)
    batch = collate_again([process_again((i, s)) for i, s in enumerate(mixed_smiles)])
    expected = predictor.processor(mixed_smiles)
    for key, value in expected.items():
        torch.testing.assert_close(batch[key], value)


def test_captioning_pipeline_with_workers_and_buckets_matches_one_by_one(tmp_path):
    from transformers import LlamaConfig

    from modeling_hsanet import HSANetForConditionalGeneration
    from tests.model_testers import TINY_LLAMA, tiny_text_processor

    processor = tiny_text_processor(HSANetConfig(**HSANET_TINY).num_graph_tokens)
    config = HSANetConfig(**HSANET_TINY, text_config=LlamaConfig(**TINY_LLAMA, vocab_size=len(processor.tokenizer)),
                          graph_token_id=processor.graph_token_id)
    HSANetForConditionalGeneration(config).eval().save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    captioner = pipeline("molecule-captioning", model=str(tmp_path))
    inputs = ["CCO", "CC(=O)Nc1ccc(O)cc1", {"smiles": "C", "instruction": "Name it."}, "O=C(O)c1ccccc1", "CCN"]
    one_by_one = [captioner(item, max_new_tokens=4) for item in inputs]
    assert captioner(inputs, batch_size=2, num_workers=2, max_new_tokens=4) == one_by_one


def test_featurize_dataset_matches_featurizing_on_the_fly_in_order(processor, cmet):
    molecules = cmet[:24]
    dataset = Dataset.from_dict({"smiles": [m.smiles for m in molecules], "labels": [m.label for m in molecules]})
    featurized = processor.featurize_dataset(dataset, num_proc=2, batch_size=5)
    assert featurized["smiles"] == dataset["smiles"] and featurized["labels"] == dataset["labels"]
    assert featurized["num_atoms"] == [g.num_atoms for g in processor.feature_extractor.featurize(dataset["smiles"])]
    for rows in ([featurized[i] for i in range(len(featurized))],
                 [featurized.with_format("numpy")[i] for i in range(len(featurized))]):
        batch = processor.collate(rows)
        expected = processor.collate([dataset[i] for i in range(len(dataset))])
        assert batch.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(batch[key], value)
    # a molecule without bonds stores empty lists; its batch has the same shapes
    single = processor.featurize_dataset(Dataset.from_dict({"smiles": ["C", "[Na+].[Cl-]"]}))
    assert processor.collate([single[0], single[1]])["bond_features"].shape == (0, 3)


def test_featurize_dataset_is_served_from_the_cache(processor, tmp_path, monkeypatch):
    Dataset.from_dict({"smiles": ["CCO", "c1ccccc1O", "CCN"]}).save_to_disk(tmp_path / "raw")
    dataset = load_from_disk(tmp_path / "raw")  # backed by files: datasets caches what map computes beside them
    first = processor.featurize_dataset(dataset)
    assert first.cache_files and first.cache_files != dataset.cache_files

    def featurize_again(*args, **kwargs):
        raise AssertionError("featurized again instead of reading the cache")

    monkeypatch.setattr(HSANetFeatureExtractor, "featurize", featurize_again)
    second = processor.featurize_dataset(load_from_disk(tmp_path / "raw"))
    assert second.cache_files == first.cache_files
    assert second["atom_features"] == first["atom_features"]
    other = HSANetFeatureExtractor(max_scan_distance=5)  # other settings: another fingerprint, so computed anew
    with pytest.raises(AssertionError, match="featurized again"):
        type(processor)(other).featurize_dataset(load_from_disk(tmp_path / "raw"))


def test_featurize_dataset_errors(processor):
    dataset = Dataset.from_dict({"SMILES": ["CCO", "CC", "C1CC"]})
    with pytest.raises(KeyError, match="no 'smiles' column"):
        processor.featurize_dataset(dataset)
    with pytest.raises(ValueError, match=r"SMILES #2 'C1CC' could not be parsed by RDKit"):
        processor.featurize_dataset(dataset, smiles_column="SMILES", batch_size=2)
    featurized = processor.featurize_dataset(dataset.select([0, 1]), smiles_column="SMILES")
    with pytest.raises(ValueError, match="already has the graph column"):
        processor.featurize_dataset(featurized, smiles_column="SMILES")
    with pytest.raises(ValueError, match="num_proc must be an integer >= 1"):
        processor.featurize_dataset(dataset, smiles_column="SMILES", num_proc=0)
    with pytest.raises(TypeError, match="expects a datasets.Dataset"):
        processor.featurize_dataset({"smiles": ["CCO"]})
    with pytest.raises(KeyError, match="row #1 has no 'edge_index' column"):
        row = featurized[0]
        processor.collate([row, {k: v for k, v in featurized[1].items() if k != "edge_index"}])


def test_trainer_groups_prefeaturized_molecules_by_length(tmp_path, tiny_config, processor, cmet, monkeypatch):
    smiles = [m.smiles for m in cmet[:36]] + SMALL * 2  # drug-sized and small molecules, so sizes vary
    dataset = Dataset.from_dict({"smiles": smiles, "labels": [float(i % 5) for i in range(len(smiles))]})
    featurized = processor.featurize_dataset(dataset)
    monkeypatch.setattr(HSANetFeatureExtractor, "featurize", lambda *a, **k: pytest.fail("featurized again"))

    def padding_of(strategy: str) -> tuple[int, Trainer]:
        args = TrainingArguments(
            output_dir=str(tmp_path / strategy), per_device_train_batch_size=6, max_steps=2, learning_rate=1e-3,
            report_to=[], save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True,
            train_sampling_strategy=strategy, length_column_name="num_atoms",  # remove_unused_columns keeps it
        )
        model = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=1))
        trainer = Trainer(model=model, args=args, train_dataset=featurized, processing_class=processor,
                          data_collator=processor.collate)
        return padded_positions([batch["num_atoms"] for batch in trainer.get_train_dataloader()]), trainer

    random_padding, _ = padding_of("random")
    grouped_padding, trainer = padding_of("group_by_length")
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler) and list(sampler.lengths) == featurized["num_atoms"]
    # LengthGroupedSampler sorts "megabatches" of len(dataset) / 4 molecules here (50 batches on large sets), so
    # padding drops, but less than a full sort would give
    assert grouped_padding < 0.9 * random_padding
    trainer.train()
    assert trainer.state.global_step == 2
    losses = [entry["train_loss"] for entry in trainer.state.log_history if "train_loss" in entry]
    assert losses and all(torch.isfinite(torch.tensor(losses)))


def test_text_collator_reads_prefeaturized_rows(processor):
    from tests.model_testers import tiny_text_processor

    text_processor = tiny_text_processor(HSANetConfig(**HSANET_TINY).num_graph_tokens)
    dataset = Dataset.from_dict({"smiles": ["CCO", "c1ccccc1O", "C"], "instruction": ["Name it.", "Describe it.", "?"],
                                 "text": ["ethanol.", "phenol, an aromatic alcohol.", "methane."]})
    featurized = processor.featurize_dataset(dataset)  # the graphs do not depend on the text side
    batch = text_processor.collate([featurized[i] for i in range(3)], trim_logits=True)
    expected = text_processor.collate([dataset[i] for i in range(3)], trim_logits=True)
    assert batch.keys() == expected.keys() and batch["logits_to_keep"] == expected["logits_to_keep"]
    for key in ("atom_features", "edge_index", "num_atoms", "motif_counts", "input_ids", "attention_mask", "labels"):
        torch.testing.assert_close(batch[key], expected[key])
    without_smiles = [{k: v for k, v in featurized[i].items() if k != "smiles"} for i in range(3)]
    with pytest.raises(KeyError, match="row #0 has no 'smiles' column"):  # the prompts need the SMILES
        text_processor.collate(without_smiles)
