"""Train SweetTokenizer with its recipe (`SweetTokenizerTrainer`) on one process or many.

    python examples/train_sweet_tokenizer.py --output_dir runs/sweet --max_steps 300 --per_device_train_batch_size 16
    torchrun --nproc_per_node 2 examples/train_sweet_tokenizer.py --output_dir runs/sweet --max_steps 300 \
        --per_device_train_batch_size 8 --discriminator_start_step 150 --ema_decay 0.999
    accelerate launch --num_processes 2 --cpu examples/train_sweet_tokenizer.py --output_dir runs/sweet ...
    python examples/train_sweet_tokenizer.py ... --resume_from_checkpoint last

Every `SweetTokenizerTrainingArguments` flag works (Trainer's and the recipe's: `--discriminator_start_step`,
`--ema_decay`, `--perceptual_loss_weight`, ...). `--curriculum` is `demo` (run_sweet_demo.py's stages, as fractions of
`--max_steps`), `paper` (`DEFAULT_CURRICULUM`), `none`, or a JSON list of stages. Without CUDA it trains on the CPU
(gloo under `torchrun` / `accelerate launch`, NCCL on GPUs). Each rank reads its own share of every global batch of
images and clips; DDP averages the tokenizer's gradients and `SweetTokenizerTrainer` averages the discriminator's
and LeCam's statistics over the ranks, so every rank keeps the same discriminator; only rank 0 writes checkpoints
(the discriminator and EMA state go into `sweet_recipe_state.pt` beside them).

Data: run_sweet_demo.py's (scikit-learn digits, scikit-image photograph crops, moving-digit clips, 32x32, 17 frames);
`--tiny`: a tiny tokenizer (16x16, 5 frames, 64-word codebooks) on `--max_train_samples` digits and clips (tests).
Besides the checkpoints, the output folder gets `log_history.json` (the loss curve; rank 0) and `rank_<r>.json`
(the rows each rank read, a checksum of its discriminator).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

import torch
from transformers import HfArgumentParser

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distributed_utils import RecordingDataset, resolve_checkpoint, write_rank_report  # noqa: E402

from modeling_sweet import (  # noqa: E402
    SweetCurriculumCollator,
    SweetTokenizerConfig,
    SweetTokenizerModel,
    SweetTokenizerTrainer,
    SweetTokenizerTrainingArguments,
)
from modeling_sweet.codebook_sweet import default_language_model_path  # noqa: E402
from modeling_sweet.data_sweet import load_digit_images, moving_digit_clips  # noqa: E402
from modeling_sweet.training_sweet import DEFAULT_CURRICULUM, NO_CURRICULUM  # noqa: E402

# Tiny tokenizer for tests (tests/model_testers.py's SWEET_TINY).
TINY_CONFIG = dict(image_size=16, patch_size=4, num_frames=5, temporal_patch_size=4, hidden_size=32,
                   num_attention_heads=2, intermediate_size=64, num_encoder_layers=2, num_query_layers=1,
                   num_temporal_layers=1, num_decoder_layers=2, num_spatial_queries=4, num_temporal_queries=8,
                   codebook_dim=16)
TINY_WORDS = 64  # words per codebook


@dataclass
class ScriptArguments:
    tiny: bool = field(default=False, metadata={"help": "tiny tokenizer and data (tests)"})
    curriculum_stages: str = field(default="demo", metadata={
        "help": "demo (run_sweet_demo.py's stages scaled to max_steps), paper, none, or a JSON list of stages"})
    max_train_samples: int | None = field(default=None, metadata={"help": "--tiny: digits and clips, half each"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "--tiny: held-out digits and clips"})


def tiny_rows(count: int, size: int, frames: int, seed: int, digits: slice) -> list[dict]:
    """`count` rows, alternately a digit image and a moving-digit clip, pixels x - 0.5."""
    images = load_digit_images(size)[0][digits][: (count + 1) // 2] - 0.5
    clips = moving_digit_clips(count // 2, num_frames=frames, size=size, seed=seed, digits=digits) - 0.5
    rows = []
    for index in range(count):
        rows.append({"pixel_values": images[index // 2] if index % 2 == 0 else clips[index // 2]})
    return rows


def demo_rows(seed: int) -> tuple[list[dict], list[dict]]:
    from run_sweet_demo import load_data

    data = load_data(400, 480, 32, seed)
    train = [*data["train digits"], *data["train photo crops"], *data["train clips"]]
    test = [*data["test digits"], *data["test clips"]]
    return [{"pixel_values": x} for x in train], [{"pixel_values": x} for x in test]


def curriculum(stages: str, max_steps: int) -> list[dict]:
    if stages == "demo":
        from run_sweet_demo import CURRICULUM

        stages = {}  # by start step: a budget too short for a stage leaves the later stage that starts there
        for name, fraction, quantize, temporal, media in CURRICULUM:
            start = round(fraction * max_steps)
            stages[start] = dict(name=name, start_step=start, quantize=quantize, train_temporal=temporal, media=media)
        return list(stages.values())
    if stages in ("paper", "none"):
        return DEFAULT_CURRICULUM if stages == "paper" else NO_CURRICULUM
    return json.loads(stages)


def discriminator_checksum(trainer: SweetTokenizerTrainer) -> list[float] | None:
    """Per-parameter sums of the discriminator (float64): equal on every rank when the ranks agree."""
    if trainer.discriminator is None:
        return None
    return [float(p.detach().double().sum()) for p in trainer.discriminator.parameters()]


def main() -> None:
    parser = HfArgumentParser((ScriptArguments, SweetTokenizerTrainingArguments))
    # images and clips are not text columns; without CUDA train on the CPU (gloo under torchrun)
    parser.set_defaults(remove_unused_columns=False, use_cpu=not torch.cuda.is_available(), report_to="none")
    script, training = parser.parse_args_into_dataclasses()
    training.resume_from_checkpoint = resolve_checkpoint(training.resume_from_checkpoint, training.output_dir)
    training.curriculum = curriculum(script.curriculum_stages, training.max_steps)

    if script.tiny:
        config = SweetTokenizerConfig(**TINY_CONFIG)
        train = tiny_rows(script.max_train_samples or 64, config.image_size, config.num_frames, training.seed,
                          slice(None, -200))
        evaluation = tiny_rows(script.max_eval_samples or 0, config.image_size, config.num_frames,
                               training.seed + 1, slice(-200, None))
    else:
        from run_sweet_demo import SWEET_CONFIG

        config = SweetTokenizerConfig(**SWEET_CONFIG)
        train, evaluation = demo_rows(training.seed)
        train, evaluation = train[: script.max_train_samples], evaluation[: script.max_eval_samples]
    torch.manual_seed(training.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = SweetTokenizerModel.from_language_model(config, default_language_model_path(),
                                                    max_words=TINY_WORDS if script.tiny else None)

    train, evaluation = RecordingDataset(train), RecordingDataset(evaluation)
    trainer = SweetTokenizerTrainer(model=model, args=training, train_dataset=train,
                                    eval_dataset=evaluation if len(evaluation) else None,
                                    data_collator=SweetCurriculumCollator(config.num_frames))
    trainer.train(resume_from_checkpoint=training.resume_from_checkpoint)
    metrics = trainer.evaluate() if len(evaluation) else {}
    trainer.save_model()  # rank 0 writes (Trainer checks should_save)
    write_rank_report(trainer, training.output_dir, final_eval=metrics,
                      discriminator_checksum=discriminator_checksum(trainer),
                      curriculum_history=trainer.curriculum_history)
    if trainer.is_world_process_zero():
        print(f"final evaluation: {metrics}; curriculum: {trainer.curriculum_history}")


if __name__ == "__main__":
    main()
