import numpy as np
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from modeling_hsanet import HSANetForMolecularPropertyPrediction
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


def test_scaffold_split_keeps_scaffolds_apart(cmet):
    from modeling_hsanet.data_hsanet import murcko_scaffold

    smiles = [m.smiles for m in cmet]
    train, valid, test = scaffold_split(smiles, seed=0)
    assert sorted(train + valid + test) == list(range(len(smiles)))
    assert abs(len(train) - 0.8 * len(smiles)) < 0.05 * len(smiles)
    scaffolds = [{murcko_scaffold(smiles[i]) for i in part} for part in (train, valid, test)]
    assert not (scaffolds[0] & scaffolds[1]) and not (scaffolds[0] & scaffolds[2]) and not (scaffolds[1] & scaffolds[2])
    assert scaffold_split(smiles, seed=0) == (train, valid, test)
