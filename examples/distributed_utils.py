"""What the two distributed training examples share (`train_property_prediction.py`, `train_sweet_tokenizer.py`).

- `synchronize_batch_norm(model)`: BatchNorm layers that normalise with the statistics of the *global* batch under
  `torch.distributed` (any backend: gloo on CPU, NCCL on GPUs). `torch.nn.SyncBatchNorm` does this on GPUs only (it
  raises for CPU tensors); without it each rank normalises with the statistics of its own share of the batch.
- `RecordingDataset`: a dataset that remembers which rows each rank fetched, so a run can show that the ranks split
  the data.
- `write_rank_report`: one JSON per rank with those rows and whether the rank writes checkpoints; rank 0 also writes
  the log history (the loss curve).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _DifferentiableAllReduce(torch.autograd.Function):
    """Sum over ranks; the gradient of every rank's input is the sum of the output gradients of all ranks."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        grad_output = grad_output.clone()
        dist.all_reduce(grad_output)
        return grad_output


class DistributedBatchNorm1d(nn.BatchNorm1d):
    """`nn.BatchNorm1d` whose training-mode statistics (and running statistics) are those of the global batch: per
    channel sum, sum of squares and count are summed over ranks (one all-reduce, differentiable). Ranks may hold
    different numbers of rows (graph batches do: atoms per rank differ). Eval mode and single-process runs are plain
    BatchNorm. Same parameters and buffers as `nn.BatchNorm1d`, so checkpoints are unchanged.

    `input`: (rows, channels)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or world_size() == 1:
            return super().forward(input)
        values = input.float()  # statistics in float32, also under bf16 / fp16 autocast
        rows = torch.tensor([values.shape[0]], dtype=values.dtype, device=values.device)
        stats = _DifferentiableAllReduce.apply(torch.cat([values.sum(0), (values * values).sum(0), rows]))
        count = stats[-1]
        mean = stats[: self.num_features] / count
        variance = (stats[self.num_features : -1] / count - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = variance * count / (count - 1).clamp_min(1)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), momentum)
        output = (values - mean) * torch.rsqrt(variance + self.eps)
        output = output * self.weight + self.bias if self.affine else output
        return output.to(input.dtype)


def resolve_checkpoint(value: str | None, output_dir: str) -> str | None:
    """`--resume_from_checkpoint`: a path, or "last" for the newest `checkpoint-*` folder of `output_dir`."""
    if value != "last":
        return value
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
    if last is None:
        raise FileNotFoundError(f"--resume_from_checkpoint last: no checkpoint-* folder in {output_dir!r}")
    return last


def synchronize_batch_norm(model: nn.Module) -> int:
    """Make every `nn.BatchNorm1d` of `model` a `DistributedBatchNorm1d` in place (weights and buffers kept).
    Returns how many layers were converted."""
    converted = 0
    for module in model.modules():
        if type(module) is nn.BatchNorm1d:
            module.__class__ = DistributedBatchNorm1d
            converted += 1
    return converted


class RecordingDataset(torch.utils.data.Dataset):
    """A map-style dataset over `rows` that remembers which indices this process fetched, in order."""

    def __init__(self, rows: Sequence[dict]):
        self.rows = rows
        self.fetched: list[int] = []

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        self.fetched.append(int(index))
        return self.rows[index]


def write_rank_report(trainer, output_dir: str, **extra) -> None:
    """`rank_<r>.json` per rank (whether it saves checkpoints, the training and evaluation rows it fetched when the
    datasets are `RecordingDataset`s, `extra`); rank 0 also writes `log_history.json` (Trainer's log history: the loss
    curve and the evaluations)."""
    rank = trainer.args.process_index
    datasets = {"train_rows": trainer.train_dataset, "eval_rows": trainer.eval_dataset}
    report = {"rank": rank, "world_size": trainer.args.world_size, "should_save": trainer.args.should_save,
              **{name: data.fetched for name, data in datasets.items() if isinstance(data, RecordingDataset)}, **extra}
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, f"rank_{rank}.json"), "w") as handle:
        json.dump(report, handle)
    if trainer.is_world_process_zero():
        with open(os.path.join(output_dir, "log_history.json"), "w") as handle:
            json.dump(trainer.state.log_history, handle, indent=1)
