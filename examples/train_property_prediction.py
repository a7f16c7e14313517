"""Train HSA-Net for molecular property prediction (c-Met pIC50) with `Trainer`, on one process or many.

    python examples/train_property_prediction.py --output_dir runs/cmet --max_steps 500
    torchrun --nproc_per_node 2 examples/train_property_prediction.py --output_dir runs/cmet --max_steps 500 \
        --per_device_train_batch_size 16            # the same global batch of 32 on 2 ranks
    accelerate launch --num_processes 2 --cpu examples/train_property_prediction.py --output_dir runs/cmet ...
    python examples/train_property_prediction.py --output_dir runs/cmet --max_steps 1000 \
        --resume_from_checkpoint runs/cmet/checkpoint-500   # or `--resume_from_checkpoint last`

Every `TrainingArguments` flag works (`--save_steps`, `--eval_strategy steps`, `--bf16`, ...). On a machine without
CUDA the script trains on the CPU (`use_cpu`); under `torchrun` / `accelerate launch` Trainer then uses gloo (NCCL on
GPUs). Each rank reads its own share of every global batch (accelerate shards the batches of one seeded shuffle), the
model is wrapped in DDP, evaluation is sharded and gathered once (`gather_for_metrics` drops the rows that pad the
last batch), and only rank 0 writes checkpoints. The GIN's BatchNorm layers use the statistics of the global batch
(`distributed_utils.synchronize_batch_norm`; `--no_sync_batch_norm` keeps per-rank statistics).

Data: the c-Met ligands that ship with RDKit, Bemis-Murcko scaffold split (`modeling_hsanet.data_hsanet`, as
`run_demo.py`). `--tiny` trains a tiny model on `--max_train_samples` / `--max_eval_samples` molecules (tests).
Besides Trainer's checkpoints, the output folder gets `log_history.json` (the loss curve; rank 0) and
`rank_<r>.json` (the rows each rank read, whether it saved).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from transformers import HfArgumentParser, Trainer, TrainingArguments

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distributed_utils import (  # noqa: E402
    RecordingDataset,
    resolve_checkpoint,
    synchronize_batch_norm,
    write_rank_report,
)

from modeling_hsanet import HSANetConfig, HSANetForMolecularPropertyPrediction, HSANetProcessor  # noqa: E402
from modeling_hsanet.data_hsanet import load_cmet_ligands, scaffold_split  # noqa: E402

# Tiny model for tests. Random draws and batch-level terms are off so that a run on N ranks computes what one
# process computes on the same global batch: no dropout, the deterministic cross-attention projector (the adaptive
# gate draws Gumbel noise per molecule, and each rank draws its own), no SAF load-balancing term (it multiplies two
# means over the batch, so the mean of per-rank terms is not the term of the global batch).
TINY_CONFIG = dict(hidden_size=16, num_gnn_layers=2, num_attention_heads=2, num_query_tokens=2, mamba_d_state=2,
                   fusion_intermediate_size=32, num_motif_tokens=2, projector_mode="cross_attention", gnn_dropout=0.0,
                   classifier_dropout=0.0, router_aux_loss_coef=0.0, num_labels=1)


@dataclass
class ScriptArguments:
    tiny: bool = field(default=False, metadata={"help": "tiny model (tests); default: run_demo.py's DEMO_CONFIG"})
    max_train_samples: int | None = field(default=None, metadata={"help": "first N molecules of the training part"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "first N molecules of the validation part"})
    sync_batch_norm: bool = field(default=True, metadata={
        "help": "BatchNorm statistics of the global batch under torch.distributed (False: per rank)"})


def load_split(max_train: int | None, max_eval: int | None, seed: int):
    """Training and validation rows `{"smiles", "labels"}` of the scaffold split, as `RecordingDataset`s."""
    molecules = load_cmet_ligands()
    train_index, valid_index, _ = scaffold_split([m.smiles for m in molecules], (0.8, 0.1, 0.1), seed=seed)
    rows = [{"smiles": m.smiles, "labels": m.label} for m in molecules]
    return (RecordingDataset([rows[i] for i in train_index[:max_train]]),
            RecordingDataset([rows[i] for i in valid_index[:max_eval]]))


def compute_metrics(prediction) -> dict[str, float]:
    predictions = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    predicted, truth = np.asarray(predictions).reshape(-1), np.asarray(prediction.label_ids).reshape(-1)
    return {"rmse": float(np.sqrt(np.mean((predicted - truth) ** 2))), "num_samples": len(truth)}


def main() -> None:
    parser = HfArgumentParser((ScriptArguments, TrainingArguments))
    # graph fields are not text columns; without CUDA train on the CPU (gloo under torchrun)
    parser.set_defaults(remove_unused_columns=False, use_cpu=not torch.cuda.is_available(), report_to="none")
    script, training = parser.parse_args_into_dataclasses()
    training.resume_from_checkpoint = resolve_checkpoint(training.resume_from_checkpoint, training.output_dir)

    train, evaluation = load_split(script.max_train_samples, script.max_eval_samples, training.seed)
    torch.manual_seed(training.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    if script.tiny:
        config = HSANetConfig(**TINY_CONFIG)
    else:
        from run_demo import DEMO_CONFIG

        config = HSANetConfig(**DEMO_CONFIG)
    model = HSANetForMolecularPropertyPrediction(config)
    label_mean = float(np.mean([row["labels"] for row in train.rows]))
    nn.init.constant_(model.classifier.bias, label_mean)  # start at the training mean (as run_demo.py)
    if script.sync_batch_norm:
        synchronize_batch_norm(model)

    processor = HSANetProcessor()
    trainer = Trainer(model=model, args=training, train_dataset=train, eval_dataset=evaluation,
                      data_collator=processor.collate, processing_class=processor, compute_metrics=compute_metrics)
    trainer.train(resume_from_checkpoint=training.resume_from_checkpoint)
    metrics = trainer.evaluate() if len(evaluation) else {}
    trainer.save_model()  # rank 0 writes (Trainer checks should_save)
    write_rank_report(trainer, training.output_dir, final_eval=metrics)
    if trainer.is_world_process_zero():
        print(f"final evaluation: {metrics}")


if __name__ == "__main__":
    main()
