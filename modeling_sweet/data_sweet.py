"""Real images and clips that install offline: scikit-learn's handwritten digits, moving-digit clips built from them
(the Moving MNIST protocol: digits bounce inside a canvas), and scikit-image's sample photographs.

Everything is returned as float32 arrays in [0, 1], channels first: images (N, 3, size, size), clips
(N, 3, frames, size, size).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

SKIMAGE_SAMPLES = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page", "text", "horse")


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """(N, C, H, W) float -> (N, C, size, size), antialiased bilinear."""
    tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    return F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False).numpy()


def load_digit_images(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8x8 digits as RGB images (white on black) and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    gray = (digits.images / 16.0).astype(np.float32)[:, None]
    return np.repeat(_resize(gray, size).clip(0, 1), 3, axis=1), digits.target


def load_sample_photographs(size: int = 32) -> np.ndarray:
    """scikit-image's sample photographs, centre-cropped square, RGB. Returns (N, 3, size, size)."""
    from skimage import data

    photographs = []
    for name in SKIMAGE_SAMPLES:
        image = np.asarray(getattr(data, name)(), dtype=np.float32)
        image = image / 255.0 if image.max() > 1.0 else image
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        image = image[..., :3]
        side = min(image.shape[:2])
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        photographs.append(image[top : top + side, left : left + side].transpose(2, 0, 1))
    return np.concatenate([_resize(p[None], size) for p in photographs]).clip(0, 1)


def moving_digit_clips(num_clips: int, num_frames: int = 17, size: int = 32, digits_per_clip: int = 2,
                       seed: int = 0, digits: slice | Sequence[int] = slice(None)) -> np.ndarray:
    """Moving-digit clips: each digit (half the canvas wide) starts at a random place with a random velocity and
    bounces off the borders; overlapping digits combine by maximum. `digits` picks the scikit-learn digits the
    sprites are drawn from (e.g. `slice(None, -200)` for training, `slice(-200, None)` for test, so no test digit is
    seen in training). Returns (num_clips, 3, num_frames, size, size)."""
    rng = np.random.default_rng(seed)
    digit_size = size // 2
    sprites = load_digit_images(digit_size)[0][digits, 0]
    if len(sprites) == 0:
        raise ValueError(f"digits={digits!r} selects none of the {len(load_digit_images(digit_size)[0])} digits")
    clips = np.zeros((num_clips, num_frames, size, size), dtype=np.float32)
    limit = size - digit_size
    for clip in range(num_clips):
        for sprite in sprites[rng.integers(0, len(sprites), digits_per_clip)]:
            position = rng.uniform(0, limit, 2)
            velocity = rng.uniform(-1, 1, 2)
            velocity *= rng.uniform(1.0, 2.5) / (np.linalg.norm(velocity) + 1e-8)
            for frame in range(num_frames):
                top, left = np.round(position).astype(int)
                window = clips[clip, frame, top : top + digit_size, left : left + digit_size]
                np.maximum(window, sprite, out=window)
                position += velocity
                for axis in range(2):  # bounce
                    if not 0 <= position[axis] <= limit:
                        velocity[axis] = -velocity[axis]
                        position[axis] = np.clip(position[axis], 0, limit)
    return np.repeat(clips[:, None], 3, axis=1)
