"""Evaluate a SweetTokenizer's reconstructions on a folder of videos (e.g. UCF-101): rFVD, PSNR, SSIM, LPIPS, rFID.

    python examples/evaluate_sweet_tokenizer.py --model PATH --videos UCF-101/ \\
        --split-list ucfTrainTestlist/testlist01.txt --i3d i3d_torchscript.pt --lpips vgg16.pt \\
        [--inception inception-2015-12-05.pt] [--num-frames 17 --resolution 256] [--output results.json]

Each clip goes through the tokenizer (`encode` -> ids -> `decode`) and is compared with its input. The protocol
follows OmniTokenizer / SweetTokenizer on UCF-101: 17 consecutive frames from the start of each video
(`--frame-sampling first`), the centre square of each frame (`--crop center`), resized to 256x256 (bicubic, by
`SweetVideoProcessor`); `--num-frames` / `--resolution` default to the model's `num_frames` / `image_size`. Metrics
and backbones: `modeling_sweet/evaluation_sweet.py` (rFVD needs `--i3d`, LPIPS `--lpips`, rFID `--inception`: local
TorchScript files, never downloaded; a missing file stops the run before any clip is read, naming the file and where
to get it). Note that a Frechet distance over few clips is strongly biased upwards: compare rFVDs over the same
number of clips (UCF-101's protocol uses the whole split).

Clips (`--videos DIR`, searched recursively, in sorted order; or the entries of `--split-list`):
- video files (.avi, .mp4, .mkv, .mov, .webm, ...): decoded by `transformers.video_utils.load_video` with the first
  installed backend of PyAV, decord, OpenCV, torchcodec (`pip install av` for UCF-101's .avi). Without one, video
  files are skipped and the reason says so;
- multi-frame .gif and .tif / .tiff files (Pillow);
- .npy arrays (frames, height, width[, channels]) or (frames, channels, height, width): uint8 0-255 or floats 0-1;
- a folder of frame images (.png, .jpg, .jpeg, .bmp, .webp), frames in natural name order.
A split list (UCF-101's `trainlist0N.txt` / `testlist0N.txt`) holds one path per line relative to `--videos`, with an
optional label after a space; an entry `Class/v_x.avi` that is absent but has a frame folder `Class/v_x` reads it.

The run prints and writes (`--output`, JSON) the metrics, how many clips were read and which were skipped and why (too
few frames, unreadable or corrupt file, no decoder, missing from the folder), and per-clip PSNR / SSIM / LPIPS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

import numpy as np
import PIL.Image
import torch
from transformers import AutoModel

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import modeling_sweet  # noqa: E402, F401  (registers SweetTokenizer with AutoModel)
from modeling_sweet import SweetVideoProcessor  # noqa: E402
from modeling_sweet.evaluation_sweet import (  # noqa: E402
    ReconstructionMetrics,
    load_i3d,
    load_inception,
    load_lpips,
    to_unit_pixels,
)
from modeling_sweet.image_processing_sweet import image_to_array  # noqa: E402
from modeling_sweet.pipeline_sweet import read_video_frames  # noqa: E402
from modeling_sweet.video_processing_sweet import FRAME_SAMPLINGS, sample_frame_indices  # noqa: E402

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
MULTI_FRAME_SUFFIXES = (".gif", ".tif", ".tiff")
ARRAY_SUFFIXES = (".npy",)
CLIP_SUFFIXES = VIDEO_SUFFIXES + MULTI_FRAME_SUFFIXES + ARRAY_SUFFIXES
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
CROPS = ("center", "none")
# What reading or preprocessing one clip may raise: the clip is skipped with the message; anything else is a bug.
READ_ERRORS = (OSError, ValueError, TypeError, EOFError, RuntimeError)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="saved SweetTokenizer folder (save_pretrained) or Hub id")
    parser.add_argument("--videos", required=True, help="folder of videos, .npy clips or frame folders")
    parser.add_argument("--split-list", help="file of clip paths relative to --videos (UCF-101 train/test lists)")
    parser.add_argument("--num-frames", type=int, help="frames per clip (default: the model's num_frames, 17)")
    parser.add_argument("--resolution", type=int, help="frame size (default: the model's image_size, 256)")
    parser.add_argument("--frame-sampling", choices=FRAME_SAMPLINGS, default="first",
                        help="'first': the first frames (the UCF-101 protocol); 'uniform': spread over the clip")
    parser.add_argument("--crop", choices=CROPS, default="center",
                        help="'center': the centre square of each frame before resizing; 'none': resize as is")
    parser.add_argument("--i3d", help="i3d_torchscript.pt (StyleGAN-V) for rFVD")
    parser.add_argument("--lpips", help="vgg16.pt (StyleGAN2-ADA's LPIPS VGG16) for LPIPS")
    parser.add_argument("--inception", help="inception-2015-12-05.pt (StyleGAN2-ADA) for rFID over frames")
    parser.add_argument("--no-ssim", action="store_true", help="skip SSIM (it needs scikit-image)")
    parser.add_argument("--max-clips", type=int, help="read at most this many clips (in sorted / list order)")
    parser.add_argument("--batch-size", type=int, default=4, help="clips per tokenizer call")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--output", default="sweet_evaluation.json", help="where to write the results (JSON)")
    args = parser.parse_args(argv)
    for name in ("num_frames", "resolution", "max_clips", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    return args


# ---------------------------------------------------------------------------------------------------------------------
# Finding and reading clips
# ---------------------------------------------------------------------------------------------------------------------
def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _frame_files(folder: str) -> list[str]:
    names = [name for name in os.listdir(folder) if name.lower().endswith(FRAME_SUFFIXES)
             and os.path.isfile(os.path.join(folder, name))]
    return [os.path.join(folder, name) for name in sorted(names, key=_natural_key)]


def find_clips(videos: str, split_list: str | None = None) -> tuple[list[str], list[dict], int]:
    """Clip paths under `videos` (files or frame folders), the entries skipped already (listed but missing) and the
    number of files that are no clip (ignored)."""
    if not os.path.isdir(videos):
        raise FileNotFoundError(f"--videos: no folder at {videos!r}")
    clips, skipped, ignored = [], [], 0
    if split_list is not None:
        if not os.path.isfile(split_list):
            raise FileNotFoundError(f"--split-list: no file at {split_list!r}")
        with open(split_list, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                entry = line.split()[0]
                path = os.path.join(videos, entry)
                frames_folder = os.path.splitext(path)[0]
                if os.path.exists(path):
                    clips.append(path)
                elif os.path.isdir(frames_folder):
                    clips.append(frames_folder)
                else:
                    skipped.append({"clip": entry, "reason": f"listed in {os.path.basename(split_list)} (line "
                                                             f"{number}) but not found under --videos"})
        return clips, skipped, ignored
    for folder, subfolders, files in os.walk(videos):
        subfolders.sort(key=_natural_key)
        if any(name.lower().endswith(FRAME_SUFFIXES) for name in files):
            clips.append(folder)
        for name in sorted(files, key=_natural_key):
            if name.lower().endswith(CLIP_SUFFIXES):
                clips.append(os.path.join(folder, name))
            elif not name.lower().endswith(FRAME_SUFFIXES):
                ignored += 1
    return clips, skipped, ignored


def read_clip(path: str, num_frames: int, frame_sampling: str, name: str) -> list:
    """The `num_frames` frames of one clip that the protocol keeps (only those are decoded where possible)."""
    if os.path.isdir(path):
        files = _frame_files(path)
        indices = sample_frame_indices(len(files), num_frames, frame_sampling, name)
        frames = []
        for index in indices:
            with PIL.Image.open(files[index]) as image:
                frames.append(image.copy())
        return frames
    if path.lower().endswith(ARRAY_SUFFIXES):
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        if array.ndim not in (3, 4):
            raise ValueError(f"{name}: a .npy clip must be (frames, height, width[, channels]) or (frames, channels, "
                             f"height, width), got shape {array.shape}")
        indices = sample_frame_indices(array.shape[0], num_frames, frame_sampling, name)
        return [np.asarray(array[index]) for index in indices]
    return read_video_frames(path, name, num_frames=num_frames, frame_sampling=frame_sampling)


def center_square(frame: np.ndarray) -> np.ndarray:
    """(C, H, W) -> its centre (C, S, S), S = min(H, W)."""
    height, width = frame.shape[1:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return frame[:, top:top + side, left:left + side]


def preprocess_clip(frames: list, processor: SweetVideoProcessor, crop: str, name: str) -> torch.Tensor:
    """Frames -> pixel_values (1, C, T, H, W) in SweetTokenizer's x - 0.5."""
    arrays = [image_to_array(frame, f"{name} frame #{index}", processor.num_channels)
              for index, frame in enumerate(frames)]
    if crop == "center":
        arrays = [center_square(array) for array in arrays]
    return processor(arrays, input_data_format="channels_first", return_tensors="pt")["pixel_values"]


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------------------------------
def _check_protocol(args: argparse.Namespace, config) -> tuple[int, int]:
    num_frames = args.num_frames or config.num_frames
    resolution = args.resolution or config.image_size
    if num_frames != config.num_frames:
        raise ValueError(f"--num-frames {num_frames}: the tokenizer reads clips of num_frames={config.num_frames}")
    if resolution != config.image_size:
        raise ValueError(f"--resolution {resolution}: the tokenizer reads {config.image_size}x{config.image_size} "
                         "frames (image_size)")
    return num_frames, resolution


def evaluate(args: argparse.Namespace) -> dict:
    """Run the evaluation described by `args` (see `parse_args`); returns the results that `main` writes."""
    start = time.perf_counter()
    # backbones first: a missing weights file stops the run before any clip is read
    backbones = {"i3d": load_i3d(args.i3d) if args.i3d else None,
                 "lpips": load_lpips(args.lpips) if args.lpips else None,
                 "inception": load_inception(args.inception) if args.inception else None}
    model = AutoModel.from_pretrained(args.model).to(args.device).eval()
    num_frames, resolution = _check_protocol(args, model.config)
    processor = SweetVideoProcessor(size={"height": resolution, "width": resolution}, num_frames=num_frames,
                                    frame_sampling=args.frame_sampling, num_channels=model.config.num_channels)
    metrics = ReconstructionMetrics(**backbones, compute_ssim=not args.no_ssim, device=args.device)
    clips, skipped, ignored = find_clips(args.videos, args.split_list)
    found = len(clips) + len(skipped)
    if args.max_clips is not None:
        clips = clips[:args.max_clips]

    read, batch, tokens = [], [], None

    def run(batch: list[torch.Tensor]) -> None:
        nonlocal tokens
        pixel_values = torch.cat(batch).to(args.device)
        with torch.no_grad():
            encoded = model.encode(pixel_values)
            reconstructions = model.decode(encoded.spatial_ids, encoded.temporal_ids)
        tokens = {"spatial": encoded.spatial_ids.shape[1], "temporal": encoded.temporal_ids.shape[1]}
        metrics.update(to_unit_pixels(pixel_values).cpu(), to_unit_pixels(reconstructions).cpu())

    for path in clips:
        label = os.path.relpath(path, args.videos)
        try:
            frames = read_clip(path, num_frames, args.frame_sampling, label)
            batch.append(preprocess_clip(frames, processor, args.crop, label))
        except READ_ERRORS as error:
            skipped.append({"clip": label, "reason": f"{type(error).__name__}: {error}"})
            continue
        read.append(label)
        if len(batch) == args.batch_size:
            run(batch)
            batch = []
    if batch:
        run(batch)

    results = {
        "model": args.model, "videos": args.videos, "split_list": args.split_list,
        "protocol": {"num_frames": num_frames, "resolution": resolution, "frame_sampling": args.frame_sampling,
                     "crop": args.crop},
        "backbones": {"i3d": args.i3d, "lpips": args.lpips, "inception": args.inception},
        "clips_found": found, "clips_read": len(read), "clips_skipped": len(skipped),
        "clips_not_evaluated": found - len(read) - len(skipped),  # beyond --max-clips
        "files_ignored": ignored, "skipped": skipped, "tokens_per_clip": tokens,
    }
    if read:
        computed = metrics.compute()
        results["metrics"] = {"rfvd": computed["fvd"], "psnr": computed["psnr"], "ssim": computed["ssim"],
                              "lpips": computed["lpips"], "rfid": computed["fid"]}
        results["not_computed"] = {{"fvd": "rfvd", "fid": "rfid"}.get(key, key): reason
                                   for key, reason in computed["not_computed"].items()}
        per_item = metrics.per_item()
        results["per_clip"] = [{"clip": label, **{name: values[index] for name, values in per_item.items()}}
                               for index, label in enumerate(read)]
    else:
        results["metrics"] = None
        results["not_computed"] = {"all": "no clip could be read"}
        results["per_clip"] = []
    results["seconds"] = round(time.perf_counter() - start, 2)
    return results


def _format(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def main(argv=None) -> int:
    args = parse_args(argv)
    results = evaluate(args)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    print(f"clips: {results['clips_found']} found, {results['clips_read']} read, {results['clips_skipped']} skipped"
          + (f", {results['clips_not_evaluated']} beyond --max-clips" if results["clips_not_evaluated"] else ""))
    for item in results["skipped"]:
        print(f"  skipped {item['clip']}: {item['reason']}")
    if results["metrics"] is not None:
        print("| rFVD | PSNR (dB) | SSIM | LPIPS | rFID |\n|---|---|---|---|---|")
        metric = results["metrics"]
        print("| " + " | ".join(_format(metric[name]) for name in ("rfvd", "psnr", "ssim", "lpips", "rfid")) + " |")
        for name, reason in results["not_computed"].items():
            print(f"  {name} not computed: {reason}")
    print(f"results written to {args.output}")
    return 0 if results["clips_read"] else 1


if __name__ == "__main__":
    sys.exit(main())
