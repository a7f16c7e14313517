"""SweetTokenizer training curriculum: a `TrainerCallback` driven by `config.curriculum`, and the collator it steers.

The paper stresses that a curriculum is critical for stable discrete training. The default follows it: a continuous
warm-up on images (no quantisation), then quantised spatial training on images (temporal branch frozen), then
everything on clips. Each stage is a dict in `config.curriculum`:

    {"name": str, "start_step": int, "quantize": bool, "train_temporal": bool, "media": "images" | "videos" | "both"}

`media` steers `SweetCurriculumCollator`: "images" feeds the first frame of every item (an image is a one-frame clip),
"videos" feeds clips (a still image becomes a static clip), "both" feeds the images of a batch as images
(`pixel_values`) and its clips as clips (`pixel_values_videos`), so each is trained as what it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import TrainerCallback

from .configuration_sweet import CurriculumStage, parse_curriculum, stage_at


class SweetCurriculumCollator:
    """Stacks rows with a `pixel_values` entry, (C, H, W) images or (C, T, H, W) clips, as the current stage asks:
    `{"pixel_values": (batch, C, H, W)}` for "images", `{"pixel_values": (batch, C, T, H, W)}` for "videos", and for
    "both" `pixel_values` (the images) and / or `pixel_values_videos` (the clips), whichever the batch holds."""

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


class SweetCurriculumCallback(TrainerCallback):
    """Applies the stage of `config.curriculum` for the current step: quantisation on/off, temporal branch
    trainable or frozen, and the collator's media; switches the discriminator on at
    `config.discriminator_start_step`. Switches are recorded in `self.history`; stages are also logged."""

    def __init__(self, curriculum: Sequence[dict], collator: SweetCurriculumCollator | None = None):
        self.stages = parse_curriculum(curriculum)
        self.collator = collator
        if collator is not None:  # the DataLoader collates a batch or two before the first on_step_begin
            collator.media = self.stages[0].media
        self.current: CurriculumStage | None = None
        self.history: list[tuple[int, str]] = []

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        start = model.config.discriminator_start_step
        if start is not None and not model.adversarial and state.global_step >= start:
            model.adversarial = True
            self.history.append((state.global_step, "discriminator on"))
        stage = stage_at(self.stages, state.global_step)
        if stage == self.current:
            return
        self.current = stage
        self.history.append((state.global_step, stage.name))
        model.quantize = stage.quantize
        for parameter in model.temporal_parameters():
            parameter.requires_grad_(stage.train_temporal)
        if self.collator is not None:
            self.collator.media = stage.media
        state.log_history.append({"step": state.global_step, "curriculum_stage": stage.name})


__all__ = ["SweetCurriculumCallback", "SweetCurriculumCollator"]
