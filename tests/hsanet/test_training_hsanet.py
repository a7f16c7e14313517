import numpy as np
import torch
from datasets import Dataset
from transformers import AutoProcessor, Trainer, TrainingArguments

from modeling_hsanet import HSANetFeatureExtractor, HSANetForMolecularPropertyPrediction, HSANetProcessor
from modeling_hsanet.data_hsanet import scaffold_split


def test_trainer_lowers_the_loss_on_cmet(tmp_path, tiny_config, processor, cmet):
    molecules = cmet[:240]
    train_index, valid_index, _ = scaffold_split([m.smiles for m in molecules], seed=0)
    rows = {"smiles": [m.smiles for m in molecules], "labels": [m.label for m in molecules]}
    dataset = Dataset.from_dict(rows)
    train, valid = dataset.select(train_index), dataset.select(valid_index)
    model = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=1))
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=16, per_device_eval_batch_size=32, max_steps=36,
        learning_rate=3e-3, logging_steps=6, report_to=[], remove_unused_columns=False, save_strategy="no",
        use_cpu=True, seed=0, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=valid, data_collator=processor.collate)
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0] / 4
    assert after < before / 4


def test_trainer_takes_the_processor_as_processing_class_and_saves_it(tmp_path, tiny_config, cmet):
    # Trainer aligns the model config with `processing_class.tokenizer`'s special tokens for every ProcessorMixin
    # (`align_special_tokens`); HSA-Net's processor has none, and the config must come through unchanged.
    processor = HSANetProcessor(HSANetFeatureExtractor(max_scan_distance=6))
    dataset = Dataset.from_dict({"smiles": [m.smiles for m in cmet[:8]], "labels": [m.label for m in cmet[:8]]})
    model = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=1))
    config_before = model.config.to_dict()
    start = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"), per_device_train_batch_size=4, max_steps=2, learning_rate=1e-3,
        report_to=[], remove_unused_columns=False, save_strategy="no", use_cpu=True, seed=0, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, processing_class=processor,
                      data_collator=processor.collate)
    trainer.train()
    assert trainer.state.global_step == 2
    assert np.isfinite([entry["train_loss"] for entry in trainer.state.log_history if "train_loss" in entry]).all()
    assert any(not torch.equal(parameter, start[name]) for name, parameter in model.named_parameters())
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        assert model.config.to_dict().get(key) == config_before.get(key)

    trainer.save_model(tmp_path / "saved")
    assert (tmp_path / "saved" / "processor_config.json").exists()
    reloaded = AutoProcessor.from_pretrained(tmp_path / "saved")
    assert type(reloaded) is HSANetProcessor and reloaded.feature_extractor.max_scan_distance == 6
    reloaded_model = HSANetForMolecularPropertyPrediction.from_pretrained(tmp_path / "saved").eval()
    model.eval()
    with torch.no_grad():
        batch = reloaded(["CCO", "c1ccccc1O"])
        torch.testing.assert_close(reloaded_model(**batch).logits, model(**batch).logits, atol=1e-5, rtol=1e-5)


def test_scaffold_split_keeps_scaffolds_apart(cmet):
    from modeling_hsanet.data_hsanet import murcko_scaffold

    smiles = [m.smiles for m in cmet]
    train, valid, test = scaffold_split(smiles, seed=0)
    assert sorted(train + valid + test) == list(range(len(smiles)))
    assert abs(len(train) - 0.8 * len(smiles)) < 0.05 * len(smiles)
    scaffolds = [{murcko_scaffold(smiles[i]) for i in part} for part in (train, valid, test)]
    assert not (scaffolds[0] & scaffolds[1] or scaffolds[0] & scaffolds[2] or scaffolds[1] & scaffolds[2])
    assert scaffold_split(smiles, seed=0) == (train, valid, test)
