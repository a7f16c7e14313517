import math

import pytest
import torch
from datasets import Dataset
from transformers import AutoFeatureExtractor, AutoProcessor

from modeling_hsanet import HSANetFeatureExtractor, HSANetModel, HSANetProcessor


def test_processor_round_trip_through_auto_classes(tmp_path, tiny_config):
    processor = HSANetProcessor(HSANetFeatureExtractor(max_scan_distance=5))
    tiny_config().save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(reloaded) is HSANetProcessor
    assert reloaded.feature_extractor.max_scan_distance == 5
    batch, again = processor(["CCO", "c1ccccc1"]), reloaded(["CCO", "c1ccccc1"])
    assert all(torch.equal(batch[key], again[key]) for key in batch)
    assert isinstance(AutoFeatureExtractor.from_pretrained(tmp_path), HSANetFeatureExtractor)


def test_batch_layout(processor):
    batch = processor(["CCO", "c1ccccc1", "[Na+].[Cl-]"], labels=[1.0, None, 3])
    assert batch["num_atoms"].tolist() == [3, 6, 2]
    assert batch["atom_features"].shape == (11, 9) and batch["motif_counts"].shape == (3, 85)
    assert batch["edge_index"].shape == (2, 2 * (2 + 6))
    assert batch["edge_index"][:, 4:].min() >= 3  # benzene's bonds are offset past ethanol's atoms
    assert batch["labels"].dtype == torch.float32 and math.isnan(batch["labels"][1])


def test_label_kinds(processor):
    assert processor(["CCO", "CC"], labels=[1, 0])["labels"].dtype == torch.long
    assert processor(["CCO", "CC"], labels=[[1.0, None], [0.0, 1.0]])["labels"].shape == (2, 2)
    with pytest.raises(ValueError, match="got 2 SMILES but 1 labels"):
        processor(["CCO", "CC"], labels=[1.0])
    with pytest.raises(ValueError, match="lists of numbers of equal length"):
        processor(["CCO", "CC"], labels=[[1.0, 2.0], [1.0]])


def test_collator_reads_a_datasets_dataset(processor, tiny_config):
    dataset = Dataset.from_dict({"smiles": ["CCO", "c1ccccc1O", "CCN"], "labels": [0.5, 1.5, 2.5], "id": [1, 2, 3]})
    batch = processor.collate([dataset[i] for i in range(len(dataset))])
    assert batch["labels"].tolist() == [0.5, 1.5, 2.5]
    HSANetModel(tiny_config()).eval()(**{k: v for k, v in batch.items() if k != "labels"})


def test_collator_errors(processor):
    with pytest.raises(ValueError, match="empty list of rows"):
        processor.collate([])
    with pytest.raises(KeyError, match="row #1 has no 'smiles' column"):
        processor.collate([{"smiles": "CCO"}, {"SMILES": "CC"}])
    with pytest.raises(ValueError, match="SMILES #1 'C1CC' could not be parsed"):
        processor.collate([{"smiles": "CCO"}, {"smiles": "C1CC"}])


def test_feature_extractor_validates_settings():
    with pytest.raises(ValueError, match="feature_scheme"):
        HSANetFeatureExtractor(feature_scheme="nope")
    with pytest.raises(ValueError, match="max_scan_distance"):
        HSANetFeatureExtractor(max_scan_distance=0)


def test_processor_has_no_special_tokens_for_trainer_to_align(processor, tiny_config):
    from transformers.trainer_utils import align_special_tokens

    from modeling_hsanet import HSANetForMolecularPropertyPrediction

    tokenizer = processor.tokenizer
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (None, None, None)
    model = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=1, pad_token_id=0))
    align_special_tokens(model, processor)  # what Trainer.train() calls for a ProcessorMixin
    assert model.config.pad_token_id == 0 and getattr(model.config, "eos_token_id", None) is None
