"""SweetTokenizer's training recipe: everything that trains the tokenizer and is not the tokenizer.

`SweetTokenizerModel` is the tokenizer (encode, decode, reconstruction + VQ loss, `quantize=`), as diffusers'
`VQModel`. What only training needs lives here, behind a `transformers.Trainer` subclass, and is never saved with the
tokenizer (no weights in `model.safetensors`, no fields in `config.json`):

- `SweetTokenizerTrainingArguments`: `TrainingArguments` plus the recipe's settings;
- `SweetTokenizerTrainer`: the curriculum, a perceptual loss from a local vision backbone, a 3D PatchGAN discriminator
  (hinge loss, LeCam regularisation, its own optimiser, switched on from a step) and an EMA of the weights;
- `SweetCurriculumCollator`: stacks images and clips as the current curriculum stage asks.

The curriculum (the paper stresses that it is critical for stable discrete training) is a list of stages:

    {"name": str, "start_step": int, "quantize": bool, "train_temporal": bool, "media": "images" | "videos" | "both"}

`quantize` is passed to the model's forward (`False`: a continuous warm-up); `train_temporal=False` freezes the
temporal branch (`model.temporal_parameters()`); `media` steers `SweetCurriculumCollator`: "images" feeds the first
frame of every item (an image is a one-frame clip), "videos" feeds clips (a still image becomes a static clip), "both"
feeds the images of a batch as images (`pixel_values`) and its clips as clips (`pixel_values_videos`).
`DEFAULT_CURRICULUM` is the paper's order (continuous warm-up on images, quantised spatial training on images, then
everything on clips) at the step counts of a long run; with no curriculum every step trains everything, quantised.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

logger = logging.get_logger(__name__)

MEDIA = ("images", "videos", "both")
# The discriminator, its optimiser, LeCam and EMA state, in Trainer checkpoints (never in a saved tokenizer).
RECIPE_STATE_NAME = "sweet_recipe_state.pt"


# ---------------------------------------------------------------------------------------------------------------------
# Curriculum
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CurriculumStage:
    """One stage of the training curriculum, from `start_step` on."""

    name: str
    start_step: int
    quantize: bool = True
    train_temporal: bool = True
    media: str = "both"


DEFAULT_CURRICULUM = [
    asdict(CurriculumStage("continuous warm-up", 0, quantize=False, train_temporal=False, media="images")),
    asdict(CurriculumStage("spatial", 2_000, quantize=True, train_temporal=False, media="images")),
    asdict(CurriculumStage("spatial-temporal", 10_000, quantize=True, train_temporal=True, media="both")),
]
NO_CURRICULUM = [asdict(CurriculumStage("quantised", 0))]
# What the second stage trains (the authors': encoder and quantisers frozen, the decoder trained on their tokens).
DECODER_STAGES = ("decoder", "pixel_decoder")


def freeze_for_decoder_stage(model: nn.Module, trainable: str = "decoder") -> list[str]:
    """The authors' second training stage: freeze the encoder and both quantisers (their codes stay as the first
    stage left them) and train the decoder on their tokens. `trainable`: `"decoder"`, everything after the quantisers
    (`model.decoder_parameters()`: unpooling, mask token, decoder transformer, pixel decoder); `"pixel_decoder"`, the
    pixel decoder (`config.pixel_decoder`: the linear head or the convolutional decoder) only.

    Sets `requires_grad` in place (call it before the optimiser is built; `SweetTokenizerTrainer` does with
    `SweetTokenizerTrainingArguments.decoder_stage`) and returns the names of the parameters left trainable. The
    frozen part runs without autograd bookkeeping (no parameter and no input of it needs a gradient)."""
    if trainable not in DECODER_STAGES:
        raise ValueError(f"trainable must be one of {DECODER_STAGES}, got {trainable!r}")
    model.requires_grad_(False)
    keep = {id(parameter) for parameter in model.decoder_parameters(pixel_decoder_only=trainable == "pixel_decoder")}
    names = []
    for name, parameter in model.named_parameters():
        if id(parameter) in keep:
            parameter.requires_grad_(True)
            names.append(name)
    return names


def parse_curriculum(stages: Sequence[dict]) -> list[CurriculumStage]:
    """Validate a curriculum: known keys, first stage at step 0, strictly increasing starts, known media."""
    if not stages:
        raise ValueError("a curriculum needs at least one stage")
    parsed = []
    for index, stage in enumerate(stages):
        unknown = set(stage) - set(CurriculumStage.__dataclass_fields__)
        if unknown:
            raise ValueError(f"curriculum stage #{index} has unknown keys {sorted(unknown)}")
        try:
            parsed.append(CurriculumStage(**stage))
        except TypeError as error:
            raise ValueError(f"curriculum stage #{index}: {error}") from None
        if parsed[-1].media not in MEDIA:
            raise ValueError(f"curriculum stage #{index} has media {parsed[-1].media!r}; expected one of {MEDIA}")
    starts = [stage.start_step for stage in parsed]
    if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
        raise ValueError(f"curriculum start_step values must begin at 0 and increase strictly, got {starts}")
    return parsed


def stage_at(stages: list[CurriculumStage], step: int) -> CurriculumStage:
    """The stage that applies at optimiser step `step`."""
    return [stage for stage in stages if stage.start_step <= step][-1]


class SweetCurriculumCollator:
    """Stacks rows with a `pixel_values` entry, (C, H, W) images or (C, T, H, W) clips, as the current stage asks:
    `{"pixel_values": (batch, C, H, W)}` for "images", `{"pixel_values": (batch, C, T, H, W)}` for "videos", and for
    "both" `pixel_values` (the images) and / or `pixel_values_videos` (the clips), whichever the batch holds.
    `SweetTokenizerTrainer` sets `media` from its curriculum."""

    def __init__(self, num_frames: int, media: str = "both"):
        self.num_frames = num_frames
        self.media = media

    def _as_clip(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.unsqueeze(1).expand(-1, self.num_frames, -1, -1) if pixels.dim() == 3 else pixels

    def __call__(self, rows: Sequence[dict]) -> dict[str, torch.Tensor]:
        if len(rows) == 0:
            raise ValueError("cannot collate an empty list of rows")
        pixels = [torch.as_tensor(row["pixel_values"], dtype=torch.float32) for row in rows]
        bad = [i for i, p in enumerate(pixels) if p.dim() not in (3, 4)]
        if bad:
            raise ValueError(f"row #{bad[0]} pixel_values has shape {tuple(pixels[bad[0]].shape)}; expected "
                             "(channels, height, width) or (channels, frames, height, width)")
        if self.media == "images":
            return {"pixel_values": torch.stack([p if p.dim() == 3 else p[:, 0] for p in pixels])}
        if self.media == "videos":
            return {"pixel_values": torch.stack([self._as_clip(p) for p in pixels])}
        images, clips = [p for p in pixels if p.dim() == 3], [p for p in pixels if p.dim() == 4]
        batch = {"pixel_values": torch.stack(images)} if images else {}
        return {**batch, "pixel_values_videos": torch.stack(clips)} if clips else batch


# ---------------------------------------------------------------------------------------------------------------------
# Perceptual loss
# ---------------------------------------------------------------------------------------------------------------------
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class PerceptualLoss(nn.Module):
    """Distance between channel-normalised features of a frozen transformers vision backbone (LPIPS-like, unweighted),
    averaged over its hidden states. Frames of clips are compared as images. Pixels are x - 0.5, as the tokenizer's."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_local_backbone(cls, path: str) -> PerceptualLoss:
        """Load the backbone from files on this machine; a clear error when they are absent."""
        from transformers import AutoModel

        try:
            return cls(AutoModel.from_pretrained(path, local_files_only=True))
        except (OSError, ValueError) as error:
            raise OSError(
                f"perceptual_loss_weight > 0 asks for a perceptual loss, but no backbone could be loaded from "
                f"{path!r} on this machine ({error.__class__.__name__}: {error}). Put a transformers vision model "
                f"there (perceptual_model_name_or_path) or set perceptual_loss_weight=0."
            ) from None

    def _features(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        images = pixel_values.transpose(1, 2).flatten(0, 1) if pixel_values.dim() == 5 else pixel_values
        images = ((images + 0.5) - self.mean) / self.std  # model convention x - 0.5 -> ImageNet normalisation
        return self.backbone(pixel_values=images, output_hidden_states=True).hidden_states

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """`reconstruction`, `target`: (batch, C, H, W) or (batch, C, frames, H, W). Returns a scalar."""
        losses = [
            F.mse_loss(F.normalize(r, dim=1 if r.dim() == 4 else -1), F.normalize(t, dim=1 if t.dim() == 4 else -1))
            for r, t in zip(self._features(reconstruction), self._features(target))
        ]
        return torch.stack(losses).mean()


# ---------------------------------------------------------------------------------------------------------------------
# Discriminator
# ---------------------------------------------------------------------------------------------------------------------
class PatchDiscriminator3D(nn.Module):
    """3D PatchGAN (the video discriminator of OmniTokenizer / MAGVIT, small): strided `Conv3d` layers with
    GroupNorm and LeakyReLU. Kernels are 3 frames x 4 x 4; the first layer keeps the frames, the others halve them
    (with padding, so one frame stays one frame: an image is a one-frame clip).

    `pixel_values`: clips (batch, C, frames, H, W) or images (batch, C, H, W) -> logits
    (batch, 1, frames', H / 2**num_layers, W / 2**num_layers), one per space-time patch."""

    def __init__(self, num_channels: int = 3, channels: int = 64, num_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv3d(num_channels, channels, (3, 4, 4), stride=(1, 2, 2), padding=1),
                                   nn.LeakyReLU(0.2)]
        width = channels
        for index in range(1, num_layers):
            out = channels * 2 ** min(index, 3)
            layers += [nn.Conv3d(width, out, (3, 4, 4), stride=2, padding=1), nn.GroupNorm(1, out), nn.LeakyReLU(0.2)]
            width = out
        layers.append(nn.Conv3d(width, 1, 3, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.layers(pixel_values.unsqueeze(2) if pixel_values.dim() == 4 else pixel_values)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """`mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))`."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


class LeCamRegularizer(nn.Module):
    """LeCam regularisation of a discriminator (Tseng et al., 2021, as in MAGVIT):
    `mean(relu(D(real) - ema_fake)^2) + mean(relu(ema_real - D(fake))^2)`, with exponential moving averages of the
    mean real and fake logits (updated by each call in training mode)."""

    def __init__(self, decay: float = 0.999):
        super().__init__()
        self.decay = decay
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                decay = self.decay if self.steps > 0 else 0.0  # the first call starts the averages
                self.ema_real.mul_(decay).add_((1 - decay) * real_logits.mean())
                self.ema_fake.mul_(decay).add_((1 - decay) * fake_logits.mean())
                self.steps += 1
        return (F.relu(real_logits - self.ema_fake).pow(2).mean()
                + F.relu(self.ema_real - fake_logits).pow(2).mean())


# ---------------------------------------------------------------------------------------------------------------------
# EMA
# ---------------------------------------------------------------------------------------------------------------------
class ExponentialMovingAverage:
    """Exponential moving average of a model's floating-point parameters, with diffusers' `EMAModel` warm-up: the
    decay at update n is `min(decay, (1 + n) / (10 + n))`. The averages live here, not in the model."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.num_updates = 0
        self.shadow = {name: parameter.detach().clone() for name, parameter in model.named_parameters()
                       if parameter.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for name, parameter in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].lerp_(parameter.detach(), 1 - decay)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        for name, parameter in model.named_parameters():
            if name in self.shadow:
                parameter.copy_(self.shadow[name])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.num_updates = state["decay"], state["num_updates"]
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)


# ---------------------------------------------------------------------------------------------------------------------
# Arguments and Trainer
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class SweetTokenizerTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus SweetTokenizer's training recipe. Trainer saves them with its checkpoints
    (`training_args.bin`), never with the tokenizer."""

    curriculum: list[dict] | None = field(default=None, metadata={
        "help": "stages {name, start_step, quantize, train_temporal, media} (see the module docstring); "
                "None: every step trains everything, quantised. DEFAULT_CURRICULUM is the paper's order."})
    perceptual_loss_weight: float = field(default=0.0, metadata={
        "help": "weight of a perceptual loss (> 0 needs perceptual_model_name_or_path)"})
    perceptual_model_name_or_path: str | None = field(default=None, metadata={
        "help": "a transformers vision backbone (ResNet, ConvNeXt, ViT...) whose weights are on this machine"})
    discriminator_start_step: int | None = field(default=None, metadata={
        "help": "build a 3D PatchGAN discriminator and add its adversarial loss from this step on; None: no GAN"})
    discriminator_weight: float = field(default=0.01, metadata={
        "help": "weight of the generator's hinge loss (0.01, as the authors)"})
    discriminator_channels: int = field(default=64, metadata={"help": "width of the discriminator's first layer"})
    discriminator_learning_rate: float | None = field(default=None, metadata={
        "help": "learning rate of the discriminator's AdamW (betas 0.5, 0.9); None: learning_rate"})
    lecam_weight: float = field(default=0.001, metadata={
        "help": "weight of the LeCam regularisation of the discriminator (0.001, as the authors)"})
    lecam_decay: float = field(default=0.999, metadata={"help": "decay of LeCam's moving averages of the logits"})
    decoder_stage: str | None = field(default=None, metadata={
        "help": "the authors' second stage: freeze the encoder and quantisers and train 'decoder' (everything after "
                "the quantisers) or 'pixel_decoder' (the pixel decoder only), see freeze_for_decoder_stage; None: "
                "train everything (the first stage)"})
    video_loss_weight: float = field(default=1.0, metadata={
        "help": "weight of a clip's reconstruction loss against an image's (the model's loss is a per-item mean); the "
                "number of frames weighs every frame of a clip as one image, as a per-frame tokenizer's loss does"})
    ema_decay: float | None = field(default=None, metadata={
        "help": "keep an exponential moving average of the weights with this decay and put it into the model at the "
                "end of training; None: no EMA"})

    def __post_init__(self):
        super().__post_init__()

        def require(condition: bool, argument: str, expected: str) -> None:
            if not condition:
                raise ValueError(f"SweetTokenizerTrainingArguments: `{argument}` must be {expected}, got "
                                 f"{getattr(self, argument)!r}")

        if self.curriculum is not None:
            try:
                parse_curriculum(self.curriculum)
            except ValueError as error:
                raise ValueError(f"SweetTokenizerTrainingArguments: `curriculum` is invalid: {error}") from None
        require(self.perceptual_loss_weight >= 0, "perceptual_loss_weight", ">= 0")
        require(self.perceptual_loss_weight == 0 or self.perceptual_model_name_or_path is not None,
                "perceptual_model_name_or_path", "set (a local vision backbone) when perceptual_loss_weight > 0")
        start = self.discriminator_start_step
        require(start is None or (isinstance(start, int) and start >= 0), "discriminator_start_step",
                "None or an integer >= 0")
        require(self.discriminator_weight >= 0, "discriminator_weight", ">= 0")
        require(isinstance(self.discriminator_channels, int) and self.discriminator_channels >= 1,
                "discriminator_channels", "an integer >= 1")
        require(self.discriminator_learning_rate is None or self.discriminator_learning_rate > 0,
                "discriminator_learning_rate", "None or > 0")
        require(self.lecam_weight >= 0, "lecam_weight", ">= 0")
        require(self.video_loss_weight > 0, "video_loss_weight", "> 0")
        require(0 <= self.lecam_decay < 1, "lecam_decay", "in [0, 1)")
        require(self.ema_decay is None or 0 < self.ema_decay < 1, "ema_decay", "None or in (0, 1)")
        require(self.decoder_stage is None or self.decoder_stage in DECODER_STAGES, "decoder_stage",
                f"None or one of {DECODER_STAGES}")
        require(self.decoder_stage is None or self.curriculum is None
                or all(stage.get("quantize", True) for stage in self.curriculum), "decoder_stage",
                "None with a curriculum that has continuous (quantize=False) stages: the decoder stage trains on the "
                "frozen quantisers' codes")


_RECIPE_DEFAULTS = {name: spec.default for name, spec in SweetTokenizerTrainingArguments.__dataclass_fields__.items()
                    if name not in TrainingArguments.__dataclass_fields__}


class _SweetRecipeCallback(TrainerCallback):
    """The Trainer events the recipe needs: a stage change at a step's beginning, the EMA after the optimiser step,
    the EMA's weights at the end."""

    def __init__(self, trainer: SweetTokenizerTrainer):
        self.trainer = trainer

    def on_step_begin(self, args, state, control, **kwargs):
        self.trainer._apply_stage(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.trainer.ema is not None:
            self.trainer.ema.update(self.trainer.model)

    def on_train_end(self, args, state, control, **kwargs):
        if self.trainer.ema is not None:
            self.trainer.ema.copy_to(self.trainer.model)


def _average_over_ranks(tensors: list[torch.Tensor]) -> None:
    """Under `torch.distributed` with several ranks, replace each tensor by its mean over the ranks (integer tensors:
    the maximum), in place, in one all-reduce per kind. The discriminator lives outside the DDP-wrapped model: without
    this each rank would step it on its own share of the batch and the ranks' discriminators would drift apart."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world_size = torch.distributed.get_world_size()
    if world_size == 1:
        return
    for floating in (True, False):
        group = [tensor for tensor in tensors if tensor.is_floating_point() == floating]
        if not group:
            continue
        flat = torch.cat([tensor.reshape(-1) for tensor in group])
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM if floating
                                     else torch.distributed.ReduceOp.MAX)
        if floating:
            flat /= world_size
        for tensor, value in zip(group, flat.split([tensor.numel() for tensor in group])):
            tensor.copy_(value.view_as(tensor))


class SweetTokenizerTrainer(Trainer):
    """`Trainer` with SweetTokenizer's recipe (`SweetTokenizerTrainingArguments`; a plain `TrainingArguments` gets the
    recipe's defaults: no curriculum, no perceptual loss, no GAN, no EMA).

    - **Curriculum**: at each step's beginning the stage of `args.curriculum` is applied: the temporal branch is
      frozen or not, a `SweetCurriculumCollator` passed as `data_collator` gets the stage's media, and the model's
      forward gets `quantize=stage.quantize`. Stage switches are in `self.curriculum_history` and the log history.
    - **Loss**: the model's reconstruction + VQ loss, plus `perceptual_loss_weight` x the perceptual loss, plus
      `discriminator_weight` x the generator's hinge loss `-mean(D(reconstruction))` from `discriminator_start_step`
      on (the discriminator's weights get no gradient from it). Image and clip parts weigh per item, as the model's,
      except that a clip's reconstruction loss counts `video_loss_weight` times (1 by default).
    - **Discriminator**: a `PatchDiscriminator3D` with its own AdamW, stepped after each training step (each
      micro-batch, with gradient accumulation) on the hinge loss plus `lecam_weight` x LeCam, from the reconstructions
      of that step (detached). Under `torch.distributed` its gradients and LeCam's averages are averaged over the
      ranks at each step, so every rank keeps the same discriminator.
    - **EMA** (`ema_decay`): averages the weights after every optimiser step and puts them into the model at the end.
    - **Decoder stage** (`decoder_stage`): the authors' second stage, `freeze_for_decoder_stage` at construction (and
      kept by every curriculum stage): only the decoder (or only the pixel decoder) trains.

    The discriminator, its optimiser, LeCam's and the EMA's state are saved in Trainer checkpoints
    (`sweet_recipe_state.pt`) and restored on `resume_from_checkpoint`; never by `save_pretrained`. Logs gain
    `perceptual_loss`, `generator_loss` and `discriminator_loss` (means since the last log) when they are computed.
    """

    def __init__(self, model=None, args: TrainingArguments | None = None, **kwargs):
        super().__init__(model=model, args=args, **kwargs)
        recipe = {name: getattr(self.args, name, default) for name, default in _RECIPE_DEFAULTS.items()}
        self.recipe = recipe
        self.stages = parse_curriculum(recipe["curriculum"] if recipe["curriculum"] is not None else NO_CURRICULUM)
        self.current_stage: CurriculumStage | None = None
        self.curriculum_history: list[tuple[int, str]] = []
        if isinstance(self.data_collator, SweetCurriculumCollator):
            self.data_collator.media = self.stages[0].media  # the DataLoader collates before the first step begins
        self.perceptual_loss = None
        if recipe["perceptual_loss_weight"] > 0:
            self.perceptual_loss = PerceptualLoss.from_local_backbone(recipe["perceptual_model_name_or_path"])
            self.perceptual_loss.to(self.args.device)
        self.discriminator = self.discriminator_optimizer = self.lecam = None
        if recipe["discriminator_start_step"] is not None:
            self.discriminator = PatchDiscriminator3D(self.model.config.num_channels,
                                                      recipe["discriminator_channels"]).to(self.args.device)
            learning_rate = recipe["discriminator_learning_rate"] or self.args.learning_rate
            self.discriminator_optimizer = torch.optim.AdamW(self.discriminator.parameters(), lr=learning_rate,
                                                             betas=(0.5, 0.9), weight_decay=self.args.weight_decay)
            self.lecam = LeCamRegularizer(recipe["lecam_decay"]).to(self.args.device)
        self.decoder_stage_parameters = None
        if recipe["decoder_stage"] is not None:
            self.decoder_stage_parameters = freeze_for_decoder_stage(self.model, recipe["decoder_stage"])
        self.ema = ExponentialMovingAverage(self.model, recipe["ema_decay"]) if recipe["ema_decay"] else None
        self._fakes: list[tuple[torch.Tensor, torch.Tensor]] = []  # (reconstruction, target) for the D step
        self._recipe_logs: dict[str, list[float]] = {}
        self.add_callback(_SweetRecipeCallback(self))

    # -- curriculum ---------------------------------------------------------------------------------------------------
    def adversarial(self, step: int | None = None) -> bool:
        """Whether the GAN terms are on at `step` (default: the current step)."""
        start = self.recipe["discriminator_start_step"]
        step = self.state.global_step if step is None else step
        return self.discriminator is not None and step >= start

    def _apply_stage(self, step: int) -> None:
        if self.adversarial(step) and not any(name == "discriminator on" for _, name in self.curriculum_history):
            self.curriculum_history.append((step, "discriminator on"))
        stage = stage_at(self.stages, step)
        if stage == self.current_stage:
            return
        self.current_stage = stage
        self.curriculum_history.append((step, stage.name))
        for parameter in self.accelerator.unwrap_model(self.model).temporal_parameters():
            parameter.requires_grad_(stage.train_temporal)
        if self.recipe["decoder_stage"] is not None:  # the decoder stage keeps the encoder and quantisers frozen
            freeze_for_decoder_stage(self.accelerator.unwrap_model(self.model), self.recipe["decoder_stage"])
        if isinstance(self.data_collator, SweetCurriculumCollator):
            self.data_collator.media = stage.media
        self.state.log_history.append({"step": step, "curriculum_stage": stage.name})

    # -- losses -------------------------------------------------------------------------------------------------------
    @staticmethod
    def _parts(inputs: dict, outputs) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(reconstruction, target) of the images and / or clips of a batch."""
        pairs = [(outputs.reconstruction, inputs.get("pixel_values")),
                 (outputs.reconstruction_videos, inputs.get("pixel_values_videos"))]
        return [(reconstruction, target.to(reconstruction.dtype)) for reconstruction, target in pairs
                if target is not None]

    @staticmethod
    def _per_item_mean(losses: list[torch.Tensor], parts: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        sizes = [len(target) for _, target in parts]
        return sum(loss * size for loss, size in zip(losses, sizes)) / sum(sizes)

    def _record(self, name: str, value: torch.Tensor) -> None:
        self._recipe_logs.setdefault(name, []).append(float(value.detach()))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        stage = stage_at(self.stages, self.state.global_step)
        outputs = model(**inputs, quantize=stage.quantize)
        loss = outputs.loss
        parts = self._parts(inputs, outputs)
        weight = self.recipe["video_loss_weight"]
        if weight != 1:  # the model's per-item mean, a clip's reconstruction counting `weight` times
            items = sum(len(target) for _, target in parts)
            for reconstruction, target in parts:
                if target.dim() == 5:  # the clips ("both" or "videos" media)
                    clip_loss = self.accelerator.unwrap_model(model)._reconstruction_loss(reconstruction, target)
                    loss = loss + (weight - 1) * clip_loss * len(target) / items
        if self.perceptual_loss is not None:
            perceptual = self._per_item_mean([self.perceptual_loss(r, t) for r, t in parts], parts)
            loss = loss + self.recipe["perceptual_loss_weight"] * perceptual
            self._record("perceptual_loss", perceptual)
        if model.training and self.adversarial():
            self.discriminator.requires_grad_(False)  # the generator's loss trains the tokenizer only
            generator = self._per_item_mean([-self.discriminator(r).mean() for r, _ in parts], parts)
            self.discriminator.requires_grad_(True)
            loss = loss + self.recipe["discriminator_weight"] * generator
            self._record("generator_loss", generator)
            self._fakes = [(r.detach(), t) for r, t in parts]
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self._fakes:
            self._discriminator_step(self._fakes)
            self._fakes = []
        return loss

    def _discriminator_step(self, parts: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """One AdamW step of the discriminator on the hinge loss + LeCam, real = targets, fake = reconstructions."""
        self.discriminator.train()
        self.lecam.train()
        losses = []
        for fake, real in parts:
            real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)
            losses.append(hinge_discriminator_loss(real_logits, fake_logits)
                          + self.recipe["lecam_weight"] * self.lecam(real_logits, fake_logits))
        loss = self._per_item_mean(losses, parts)
        loss.backward()
        _average_over_ranks([parameter.grad for parameter in self.discriminator.parameters()])
        self.discriminator_optimizer.step()
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        _average_over_ranks(list(self.lecam.buffers()))
        self._record("discriminator_loss", loss)
        return loss.detach()

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:  # training logs: add the recipe's terms, averaged since the last log
            logs.update({name: sum(values) / len(values) for name, values in self._recipe_logs.items() if values})
            self._recipe_logs = {}
        super().log(logs, *args, **kwargs)

    # -- checkpoints --------------------------------------------------------------------------------------------------
    def recipe_state_dict(self) -> dict:
        """The recipe's training state (for checkpoints): discriminator, its optimiser, LeCam, EMA."""
        state = {}
        if self.discriminator is not None:
            state.update(discriminator=self.discriminator.state_dict(),
                         discriminator_optimizer=self.discriminator_optimizer.state_dict(),
                         lecam=self.lecam.state_dict())
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def load_recipe_state_dict(self, state: dict) -> None:
        if self.discriminator is not None and "discriminator" in state:
            self.discriminator.load_state_dict(state["discriminator"])
            self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
            self.lecam.load_state_dict(state["lecam"])
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        state = self.recipe_state_dict()
        if state and self.args.should_save:
            folder = os.path.join(self._get_output_dir(trial=trial),
                                  f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            torch.save(state, os.path.join(folder, RECIPE_STATE_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = os.path.join(resume_from_checkpoint, RECIPE_STATE_NAME)
        if os.path.isfile(path):
            self.load_recipe_state_dict(torch.load(path, map_location=self.args.device, weights_only=True))
        elif self.recipe_state_dict():
            logger.warning(f"{resume_from_checkpoint} has no {RECIPE_STATE_NAME}: the discriminator and EMA start "
                           "afresh")


__all__ = [
    "DEFAULT_CURRICULUM",
    "DECODER_STAGES",
    "CurriculumStage",
    "ExponentialMovingAverage",
    "LeCamRegularizer",
    "PatchDiscriminator3D",
    "PerceptualLoss",
    "SweetCurriculumCollator",
    "SweetTokenizerTrainer",
    "SweetTokenizerTrainingArguments",
    "freeze_for_decoder_stage",
    "hinge_discriminator_loss",
    "parse_curriculum",
    "stage_at",
]
