"""The demo's VQModel baseline at SweetTokenizer's token count: a 4x4 latent grid, 16 tokens per image and 17 x 16 =
272 per clip, the same as SweetTokenizer's 16 and 16 + 256 (issue 11: "ahead of it at equal tokens").

Same data, rows, steps, batch, schedule, curriculum media and seed as `examples/run_sweet_demo.py` (whose functions it
uses); diffusers' `VQModel` with one more down/up block than the demo's 8x8 baseline. Not part of `make demo` (about 3
more minutes on 2 CPU cores):

    .venv/bin/python examples/sweet_equal_tokens_baseline.py [--steps 160] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from diffusers import VQModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_sweet_demo as demo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=demo.STEPS)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = demo.load_data(400, 480, 32, args.seed)  # the demo's defaults
    rows, curriculum = demo.training_rows(data), demo.curriculum_for(args.steps)
    config = dict(demo.VQ_CONFIG)  # one more block: 32x32 -> a 4x4 grid of codes
    config["down_block_types"] = ("DownEncoderBlock2D",) * 4
    config["up_block_types"] = ("UpDecoderBlock2D",) * 4
    config["block_out_channels"] = (*config["block_out_channels"], config["block_out_channels"][-1])
    torch.manual_seed(args.seed)
    vq = VQModel(**config)
    collator = demo.FrameCollator(media=curriculum[0]["media"])
    _, seconds = demo.train("VQModel, 16 tokens per frame", demo.VQModelForTraining(vq), rows, collator, args.steps,
                            args.batch_size, args.seed, callbacks=[demo.MediaScheduleCallback(curriculum, collator)])
    vq.eval()
    print(f"\nVQModel with a 4x4 grid: {demo.count_parameters(vq):,} trainable parameters, {seconds:.0f} s of "
          f"training\n\n| test data | tokens / item | PSNR (dB) | SSIM | codebook usage |\n|---|---|---|---|---|")
    for part in ("test digits", "test photographs", "test clips"):
        reconstruction, ids = demo.vq_reconstruct(vq, data[part])
        result = demo.quality(data[part], reconstruction)
        print(f"| {part} | {ids.shape[1]:,} | {result['psnr']:.2f} | {result['ssim']:.3f} | "
              f"{demo.usage(ids, config['num_vq_embeddings'])} |")


if __name__ == "__main__":
    main()
