"""Inference benchmark of SweetTokenizer (`make bench`, or `.venv/bin/python benchmarks/bench_sweet.py`).

Prints two markdown tables per device (the CPU, then the GPU when `torch.cuda.is_available()`):

1. Tokenize (pixels -> ids) and detokenize (ids -> pixels) throughput of the demo's CPU-sized SweetTokenizer
   (`SWEET_CONFIG` of examples/run_sweet_demo.py, random codebooks) on batches of 32 images and 4 clips, side by side
   with the alternative a user would otherwise pick: the demo's diffusers `VQModel` (`VQ_CONFIG`, 4x the tokens;
   clips go frame by frame), as throughput ratios.
2. Size of the paper's default config (`SweetTokenizerConfig()`: 256x256, 17 frames, width 512): parameters and
   seconds to encode and decode one image and one clip.
3. Locality (`--locality` runs this section alone): encode and decode seconds of one 17x256x256 clip at the paper's
   default config, the first version (joint attention over all 5,120 positions, global temporal queries, linear
   pixel head) side by side with the authors' locality (`LOCALITY_OPTIONS`: frame-group + window attention,
   per-location temporal queries and decoder layers, convolutional pixel decoder), and the locality with the linear
   head, so that the pixel decoder's share shows; ratios vs the first version.

Inputs are random pixels in [-0.5, 0.5) (the cost does not depend on the content). Every number is the median of
several repeats after a warm-up, under `torch.inference_mode()` with `model.eval()`; GPU timings synchronize.
Options: `--quick` (fewer repeats, for a smoke run), `--threads N` (torch intra-op threads), `--locality` (section 3
only).
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time
from collections.abc import Callable

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.join(REPO_ROOT, "examples"))

import diffusers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from bench_hsanet import (  # noqa: E402
    Timing,
    benchmark_parser,
    cpu_model,
    markdown_table,
    measure,
    ms,
    parse_benchmark_args,
)
from diffusers import VQModel  # noqa: E402
from run_sweet_demo import SWEET_CONFIG, VQ_CONFIG  # noqa: E402

from modeling_sweet import SweetTokenizerConfig, SweetTokenizerModel  # noqa: E402

IMAGE_BATCH, CLIP_BATCH = 32, 4
# One default-config clip takes 20-30 s (encode + decode) on the 2-core reference CPU: there its decoder gets no
# warm-up run, and on any device its repeats stop once they have used this many seconds (at least one run each).
CLIP_BUDGET_S = 60.0
# The authors' locality (modeling_sweet/layers_sweet.py), as config options; the defaults are the first version.
LOCALITY_OPTIONS = dict(encoder_attention="frame_group", encoder_window_size=8, spatial_query_context="matching",
                        temporal_queries="per_location", decoder_attention="frame_group", pixel_decoder="conv")
LOCALITY_VARIANTS = {
    "first version (defaults)": {},
    "locality, linear pixel head": {**LOCALITY_OPTIONS, "pixel_decoder": "linear"},
    "locality + conv pixel decoder": LOCALITY_OPTIONS,
}


# ---------------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------------
def synchronized(fn: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """`fn`, then wait for the GPU's queued work, so that a timing covers it (each run starts and ends synchronized).
    Returns what `fn` returns."""
    if device.type != "cuda":
        return fn
    return lambda: (fn(), torch.cuda.synchronize(device))[0]


def random_pixels(*shape: int, device: torch.device) -> torch.Tensor:
    """Pixel values as the models take them (x - 0.5), seeded."""
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(*shape, generator=generator) - 0.5).to(device)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def rate(items: int, timing: Timing) -> str:
    """Items per second of a median time."""
    value = items / timing.median
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def device_name(device: torch.device) -> str:
    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f"cpu ({cpu_model()})"


# ---------------------------------------------------------------------------------------------------------------------
# Tokenizers: pixels -> ids, ids -> pixels
# ---------------------------------------------------------------------------------------------------------------------
def as_frames(pixels: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) unchanged; clips (N, C, T, H, W) -> their frames (N * T, C, H, W), clip by clip."""
    if pixels.dim() == 4:
        return pixels
    return pixels.transpose(1, 2).flatten(0, 1)


def vq_tokenize(vq: VQModel, pixels: torch.Tensor) -> torch.Tensor:
    """Images or clips (frame by frame) -> code ids (N, tokens per item)."""
    latents = vq.encode(as_frames(pixels)).latents
    return vq.quantize(latents)[2][2].view(len(pixels), -1)


def vq_detokenize(vq: VQModel, ids: torch.Tensor, frames: int) -> torch.Tensor:
    """Code ids (N, tokens per item) -> images (N, C, H, W), or clips (N, C, frames, H, W) when `frames` > 1."""
    grid = VQ_CONFIG["sample_size"] // 2 ** (len(VQ_CONFIG["block_out_channels"]) - 1)
    shape = (ids.numel() // grid**2, grid, grid, VQ_CONFIG["vq_embed_dim"])
    decoded = vq.decode(vq.quantize.get_codebook_entry(ids.reshape(-1), shape), force_not_quantize=True).sample
    if frames == 1:
        return decoded
    return decoded.view(len(ids), frames, *decoded.shape[1:]).transpose(1, 2)


def sweet_tokenize(sweet: SweetTokenizerModel, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images or clips -> (spatial ids, temporal ids or None)."""
    encoded = sweet.encode(pixels)
    return encoded.spatial_ids, encoded.temporal_ids


def sweet_tokens(ids: tuple[torch.Tensor, torch.Tensor | None]) -> str:
    """Tokens per item, as `spatial + temporal` for clips."""
    spatial, temporal = ids
    if temporal is None:
        return f"{spatial.shape[1]:,}"
    return f"{spatial.shape[1] + temporal.shape[1]:,} ({spatial.shape[1]} + {temporal.shape[1]})"


# ---------------------------------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------------------------------
def section_throughput(args, device: torch.device, number: int) -> None:
    """Tokenize / detokenize throughput of the demo-config SweetTokenizer vs the demo's VQModel."""
    torch.manual_seed(0)
    sweet = SweetTokenizerModel(SweetTokenizerConfig(**SWEET_CONFIG)).eval().to(device)
    vq = VQModel(**VQ_CONFIG).eval().to(device)
    size, frames = SWEET_CONFIG["image_size"], SWEET_CONFIG["num_frames"]
    media = {"images": random_pixels(IMAGE_BATCH, 3, size, size, device=device),
             "clips": random_pixels(CLIP_BATCH, 3, frames, size, size, device=device)}

    rows = []
    for name, pixels in media.items():
        count, item_frames = len(pixels), 1 if pixels.dim() == 4 else frames
        sweet_ids, vq_ids = sweet_tokenize(sweet, pixels), vq_tokenize(vq, pixels)
        stages = {  # measured right away, so the lambdas see this iteration's tensors
            f"tokenize {name} (encode -> ids)": (lambda: sweet_tokenize(sweet, pixels),
                                                 lambda: vq_tokenize(vq, pixels)),
            f"detokenize {name} (ids -> pixels)": (lambda: sweet.decode(*sweet_ids),
                                                   lambda: vq_detokenize(vq, vq_ids, item_frames)),
        }
        for stage, (sweet_fn, vq_fn) in stages.items():
            t_sweet = measure(synchronized(sweet_fn, device), args.repeats, warmup=args.warmup)
            t_vq = measure(synchronized(vq_fn, device), args.repeats, warmup=args.warmup)
            rows.append([stage, f"{count}", sweet_tokens(sweet_ids), ms(t_sweet.median), rate(count, t_sweet),
                         f"{vq_ids.shape[1]:,}", ms(t_vq.median), rate(count, t_vq),
                         f"{t_vq.median / t_sweet.median:.2f}x", f"{max(t_sweet.spread, t_vq.spread):.0f}%"])

    print(f"## {number}. Tokenize / detokenize throughput, demo config, {device_name(device)}\n")
    print(f"SweetTokenizer: `SWEET_CONFIG` of examples/run_sweet_demo.py ({size}x{size}, {frames}-frame clips, width "
          f"{SWEET_CONFIG['hidden_size']}, random codebooks), {count_parameters(sweet):,} parameters. VQModel: "
          f"`VQ_CONFIG` ({VQ_CONFIG['num_vq_embeddings']:,} codes), {count_parameters(vq):,} parameters. "
          f"Batches of {IMAGE_BATCH} images / {CLIP_BATCH} clips; median of {args.repeats} repeats after "
          f"{args.warmup} warm-up.\n")
    print(markdown_table(
        ["stage", "batch", "SweetTokenizer tokens/item", "SweetTokenizer ms/batch", "SweetTokenizer items/s",
         "VQModel tokens/item", "VQModel ms/batch", "VQModel items/s", "SweetTokenizer / VQModel items/s", "spread"],
        rows))
    print("\nitems/s = images/s or clips/s. Ratio > 1: SweetTokenizer is faster. VQModel encodes the frames of all "
          f"{CLIP_BATCH} clips as one batch of {CLIP_BATCH * frames} images (`vq.encode` -> `vq.quantize` ids) and "
          "decodes from the ids alone (`vq.quantize.get_codebook_entry` + `vq.decode(..., force_not_quantize=True)`), "
          "as `vq_reconstruct` in run_sweet_demo.py; SweetTokenizer uses `encode` -> ids and `decode(ids)`. "
          "spread = the larger (max - min) / median of the two.\n")


def section_default_size(args, device: torch.device, number: int) -> None:
    """Parameters and seconds per item of the paper's default config, one image and one clip."""
    torch.manual_seed(0)
    config = SweetTokenizerConfig()
    sweet = SweetTokenizerModel(config).eval().to(device)
    size, frames = config.image_size, config.num_frames
    clip_warmup = 0 if device.type == "cpu" else args.warmup
    media = {"1 image": (random_pixels(1, 3, size, size, device=device), args.warmup, args.size_repeats,
                         float("inf")),
             f"1 clip ({frames} frames)": (random_pixels(1, 3, frames, size, size, device=device), clip_warmup,
                                           args.clip_repeats, CLIP_BUDGET_S)}

    rows, notes = [], []
    for name, (pixels, decode_warmup, repeats, budget) in media.items():
        ids = synchronized(lambda: sweet_tokenize(sweet, pixels), device)()  # also the encode's warm-up run
        t_encode = measure(synchronized(lambda: sweet_tokenize(sweet, pixels), device), repeats, warmup=0,
                           budget_s=budget / 2, min_repeats=1)
        t_decode = measure(synchronized(lambda: sweet.decode(*ids), device), repeats, warmup=decode_warmup,
                           budget_s=budget / 2, min_repeats=1)
        runs = min(len(t_encode.samples), len(t_decode.samples))
        if runs < repeats:
            notes.append(f"{name}: {runs} run(s) instead of {repeats}, the time budget of {budget:.0f} s was spent")
        rows.append([name, sweet_tokens(ids), f"{t_encode.median:.3f}", f"{t_decode.median:.3f}",
                     f"{(t_encode + t_decode).median:.3f}", f"{runs}"])

    print(f"## {number}. Paper default config (`SweetTokenizerConfig()`), {device_name(device)}\n")
    print(f"{size}x{size}, {frames}-frame clips, patch {config.patch_size}, width {config.hidden_size}, "
          f"{config.num_encoder_layers} encoder / {config.num_decoder_layers} decoder layers, random codebooks: "
          f"**{count_parameters(sweet):,} parameters** ({count_parameters(sweet) * 4 / 2**20:,.0f} MiB float32). "
          f"Medians; the untimed encode that gives the ids warms the encoder up, the decoder gets {args.warmup} "
          f"warm-up run ({clip_warmup} for the clip).\n")
    print(markdown_table(["item", "tokens/item", "encode s/item", "decode s/item", "encode + decode s/item",
                          "repeats"], rows))
    print("\n" + ("; ".join(notes) + "." if notes else f"Every row ran all its repeats (clip budget "
                                                       f"{CLIP_BUDGET_S:.0f} s).") + "\n")


def section_locality(args, device: torch.device, number: int) -> None:
    """Encode / decode seconds of one default-config clip: the first version vs the authors' locality options."""
    config = SweetTokenizerConfig()
    size, frames = config.image_size, config.num_frames
    pixels = random_pixels(1, 3, frames, size, size, device=device)
    warmup = 0 if device.type == "cpu" else args.warmup
    rows, baseline = [], None
    for name, options in LOCALITY_VARIANTS.items():
        torch.manual_seed(0)
        sweet = SweetTokenizerModel(SweetTokenizerConfig(**options)).eval().to(device)
        ids = synchronized(lambda: sweet_tokenize(sweet, pixels), device)()  # the encode's warm-up run
        t_encode = measure(synchronized(lambda: sweet_tokenize(sweet, pixels), device), args.clip_repeats, warmup=0,
                           budget_s=CLIP_BUDGET_S / 2, min_repeats=1)
        t_decode = measure(synchronized(lambda: sweet.decode(*ids), device), args.clip_repeats, warmup=warmup,
                           budget_s=CLIP_BUDGET_S / 2, min_repeats=1)
        baseline = baseline or (t_encode.median, t_decode.median)
        rows.append([name, f"{count_parameters(sweet):,}", sweet_tokens(ids), f"{t_encode.median:.3f}",
                     f"{baseline[0] / t_encode.median:.2f}x", f"{t_decode.median:.3f}",
                     f"{baseline[1] / t_decode.median:.2f}x", f"{min(len(t_encode.samples), len(t_decode.samples))}"])
    print(f"## {number}. Locality: encode / decode of one {frames}x{size}x{size} clip, paper default config, "
          f"{device_name(device)}\n")
    print(f"`SweetTokenizerConfig(**options)`, width {config.hidden_size}, {config.num_encoder_layers} encoder / "
          f"{config.num_decoder_layers} decoder layers, random codebooks; locality options: `{LOCALITY_OPTIONS}`. "
          f"Medians of up to {args.clip_repeats} runs ({CLIP_BUDGET_S / 2:.0f} s budget per stage); the untimed "
          f"encode that gives the ids warms the encoder up, the decoder gets {warmup} warm-up run.\n")
    print(markdown_table(["variant", "parameters", "tokens/clip", "encode s", "encode speed-up", "decode s",
                          "decode speed-up", "repeats"], rows))
    print("\nspeed-up = the first version's seconds / this row's (> 1: faster than the first version).\n")


# ---------------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = benchmark_parser(__doc__.splitlines()[0], "fewer repeats (smoke run)")
    parser.add_argument("--locality", action="store_true", help="run the locality section (3) alone")
    args = parse_benchmark_args(parser)
    args.repeats = 3 if args.quick else 7
    args.size_repeats = 2 if args.quick else 3
    args.clip_repeats = 1 if args.quick else 2
    args.warmup = 1

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    started = time.perf_counter()
    print("# SweetTokenizer inference benchmark\n")
    print(f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"- cpu: {cpu_model()} ({os.cpu_count()} logical cores visible)")
    print("- gpu: " + (", ".join(device_name(d) for d in devices[1:]) or
                        "none (torch.cuda.is_available() is False): the GPU rows were not run"))
    print(f"- torch {torch.__version__} ({torch.get_num_threads()} intra-op threads), "
          f"transformers {transformers.__version__}, diffusers {diffusers.__version__}, "
          f"python {platform.python_version()}")
    print(f"- mode: {'quick' if args.quick else 'full'}; every number is a median after {args.warmup} warm-up run "
          "(unless a row says otherwise), torch.inference_mode(), model.eval(), float32\n")

    with torch.inference_mode():
        for index, device in enumerate(devices):
            if not args.locality:
                section_throughput(args, device, 3 * index + 1)
                section_default_size(args, device, 3 * index + 2)
            section_locality(args, device, 3 * index + 3)
    print(f"_total benchmark time: {time.perf_counter() - started:.0f} s_")


if __name__ == "__main__":
    main()
