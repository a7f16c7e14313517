"""What a video-tokenizer paper reports about reconstructions: PSNR, SSIM, LPIPS, FID and FVD (rFVD / rFID).

Metrics are part of the recipe, not of the tokenizer: nothing here is imported by the model or saved with it.

Pixels: clips `(batch, channels, frames, height, width)` or images `(batch, channels, height, width)`, floats in
[0, 1] (`to_unit_pixels` turns SweetTokenizer's `x - 0.5` back into [0, 1]). Grayscale is repeated to RGB for the
backbones.

- **PSNR** (dB, peak 1): per frame, averaged over the frames of a clip, then over clips.
- **SSIM**: scikit-image's `structural_similarity` per frame with the settings of Wang et al. (2004) (Gaussian
  window, sigma 1.5, population covariances, K1 0.01, K2 0.03, data range 1), averaged like PSNR. scikit-image is
  imported when SSIM is computed (`pip install scikit-image`).
- **Frechet distance** (FID, FVD): `||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))` over the mean and the
  covariance (`numpy.cov`, N - 1) of backbone features, `scipy.linalg.sqrtm`, real part kept (as StyleGAN-V and
  LARP do).
- **FVD**: I3D (Kinetics-400) features of whole clips; the standard backbone is StyleGAN-V's TorchScript
  `i3d_torchscript.pt`, called as LARP calls it (pixels mapped to [-1, 1], `resize=True`, `rescale=False`,
  `return_features=True`). The UCF-101 protocol of OmniTokenizer / SweetTokenizer reads 17 frames at 256x256.
- **FID**: features of every frame from the FID Inception (TF Inception-v3 of 2015-12-05) as the TorchScript
  `inception-2015-12-05.pt` of StyleGAN2-ADA (uint8 pixels, `return_features=True`, 2048-d).
- **LPIPS**: StyleGAN2-ADA's TorchScript `vgg16.pt` (LPIPS with VGG16 and its learned linear weights; called with
  pixels in [0, 255], `resize_images=False, return_lpips=True`; the distance is the squared difference of the
  returned features, summed), per frame, averaged like PSNR.

Backbone weights never ship with this package and nothing is downloaded: `load_i3d`, `load_inception` and
`load_lpips` load a file from a local path and raise `FileNotFoundError` naming the file expected and where to get it.
Any callable with the same calling convention can be given instead (the tests use small random TorchScript
stand-ins); `I3DFeatures`, `InceptionFeatures` and `LPIPSDistance` adapt them to pixels in [0, 1].
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import linalg
from torch import nn

# Pixels are checked against [0, 1] with this slack (float rounding of a decoder's clamp).
PIXEL_TOLERANCE = 1e-4
MIN_MSE = 1e-10  # PSNR of a perfect reconstruction: 100 dB instead of inf


@dataclass(frozen=True)
class BackboneFile:
    """A backbone's weights file: what it is for, its usual name and where to get it."""

    metric: str
    file_name: str
    description: str
    url: str
    option: str


I3D_FILE = BackboneFile(
    "FVD", "i3d_torchscript.pt", "I3D trained on Kinetics-400 as TorchScript (StyleGAN-V, LARP)",
    "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt", "--i3d")
INCEPTION_FILE = BackboneFile(
    "FID", "inception-2015-12-05.pt", "the FID Inception-v3 as TorchScript (StyleGAN2-ADA)",
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt", "--inception")
LPIPS_FILE = BackboneFile(
    "LPIPS", "vgg16.pt", "LPIPS VGG16 with its linear weights as TorchScript (StyleGAN2-ADA)",
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt", "--lpips")


# ---------------------------------------------------------------------------------------------------------------------
# Pixels
# ---------------------------------------------------------------------------------------------------------------------
def to_unit_pixels(pixel_values: torch.Tensor) -> torch.Tensor:
    """SweetTokenizer pixels (`x - 0.5`, any shape) -> [0, 1], clipped (a decoder may overshoot)."""
    return (pixel_values.detach().float() + 0.5).clamp(0.0, 1.0)


def check_pixels(pixels: torch.Tensor, name: str = "pixels") -> torch.Tensor:
    """Validate a batch of images (B, C, H, W) or clips (B, C, T, H, W) in [0, 1]; returns it as float32."""
    if not isinstance(pixels, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(pixels).__name__}")
    if pixels.dim() not in (4, 5):
        raise ValueError(f"{name} must be (batch, channels, height, width) or (batch, channels, frames, height, "
                         f"width), got shape {tuple(pixels.shape)}")
    if pixels.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    if pixels.shape[1] not in (1, 3):
        raise ValueError(f"{name} has {pixels.shape[1]} channels (dim 1); expected 1 or 3")
    pixels = pixels.detach().float()
    flat = pixels.flatten(1)
    bad = ~((flat.amin(dim=1) >= -PIXEL_TOLERANCE) & (flat.amax(dim=1) <= 1 + PIXEL_TOLERANCE))
    if bad.any():
        item = int(bad.nonzero()[0])
        low, high = flat[item].min().item(), flat[item].max().item()
        raise ValueError(f"{name} item #{item} has values in [{low:.4g}, {high:.4g}]; the metrics take pixels in "
                         "[0, 1] (SweetTokenizer's x - 0.5 pixels: use to_unit_pixels)")
    return pixels.clamp(0.0, 1.0)


def _check_pair(originals: torch.Tensor, reconstructions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    originals = check_pixels(originals, "originals")
    reconstructions = check_pixels(reconstructions, "reconstructions")
    if originals.shape != reconstructions.shape:
        raise ValueError(f"originals {tuple(originals.shape)} and reconstructions {tuple(reconstructions.shape)} "
                         "must have the same shape")
    return originals, reconstructions


def _frames(pixels: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B * T, C, H, W), clip by clip; images pass through."""
    if pixels.dim() == 4:
        return pixels
    batch, channels, frames, height, width = pixels.shape
    return pixels.transpose(1, 2).reshape(batch * frames, channels, height, width)


def _rgb(pixels: torch.Tensor) -> torch.Tensor:
    return pixels.expand(-1, 3, *pixels.shape[2:]) if pixels.shape[1] == 1 else pixels


def _per_item(values: torch.Tensor, batch: int) -> torch.Tensor:
    """Per-frame values (B * T,) -> per-item means (B,)."""
    return values.view(batch, -1).mean(dim=1)


# ---------------------------------------------------------------------------------------------------------------------
# PSNR, SSIM
# ---------------------------------------------------------------------------------------------------------------------
def psnr(originals: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """PSNR in dB (peak 1) per item `(batch,)`: per frame, then the mean over a clip's frames.

    `originals`, `reconstructions`: (B, C, H, W) or (B, C, T, H, W) in [0, 1]."""
    originals, reconstructions = _check_pair(originals, reconstructions)
    per_frame_dims = (1, 3, 4) if originals.dim() == 5 else (1, 2, 3)
    mse = (originals - reconstructions).double().square().mean(dim=per_frame_dims).clamp_min(MIN_MSE)
    return (-10.0 * torch.log10(mse)).view(originals.shape[0], -1).mean(dim=1).float()


def ssim(originals: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """SSIM per item `(batch,)` (scikit-image, Wang et al.'s settings, see the module docstring): per frame, then the
    mean over a clip's frames. Frames need at least 11 pixels a side (the Gaussian window)."""
    try:
        from skimage.metrics import structural_similarity
    except ImportError as error:
        raise ImportError("SSIM uses scikit-image, which is not installed: pip install scikit-image") from error
    originals, reconstructions = _check_pair(originals, reconstructions)
    truth, guess = _frames(originals).double().numpy(), _frames(reconstructions).double().numpy()
    if min(truth.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs frames of at least 11x11 pixels (its Gaussian window), got "
                         f"{truth.shape[-2]}x{truth.shape[-1]}")
    values = [structural_similarity(t, g, channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False) for t, g in zip(truth, guess)]
    return _per_item(torch.tensor(values, dtype=torch.float64), originals.shape[0]).float()


# ---------------------------------------------------------------------------------------------------------------------
# Frechet distance
# ---------------------------------------------------------------------------------------------------------------------
def feature_statistics(features, name: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Mean `(dim,)` and covariance `(dim, dim)` (N - 1 normalisation) of `features` `(num_items, dim)`, float64."""
    features = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features,
                          dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"{name} must be (num_items, dim), got shape {features.shape}")
    if features.shape[0] < 2:
        raise ValueError(f"{name}: a covariance needs at least 2 items, got {features.shape[0]}")
    if not np.isfinite(features).all():
        raise ValueError(f"{name} contains NaN or inf")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


def frechet_distance_from_statistics(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray,
                                     cov_b: np.ndarray) -> float:
    """Frechet distance between the Gaussians N(mean_a, cov_a) and N(mean_b, cov_b)."""
    mean_a, mean_b = np.atleast_1d(np.asarray(mean_a, np.float64)), np.atleast_1d(np.asarray(mean_b, np.float64))
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    dim = mean_a.shape[0]
    if mean_b.shape != (dim,) or cov_a.shape != (dim, dim) or cov_b.shape != (dim, dim):
        raise ValueError(f"statistics of different sizes: mean_a {mean_a.shape}, cov_a {cov_a.shape}, "
                         f"mean_b {mean_b.shape}, cov_b {cov_b.shape}")
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():  # a singular product: offset the diagonals, as pytorch-fid does
        offset = np.eye(dim) * 1e-6
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    difference = mean_a - mean_b
    distance = difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(np.real(covmean))
    return float(distance)


def frechet_distance(features_a, features_b) -> float:
    """Frechet distance between two sets of features `(num_items_a, dim)` and `(num_items_b, dim)` (arrays or
    tensors): FID on Inception features, FVD on I3D features."""
    mean_a, cov_a = feature_statistics(features_a, "features_a")
    mean_b, cov_b = feature_statistics(features_b, "features_b")
    if mean_a.shape != mean_b.shape:
        raise ValueError(f"features_a has {mean_a.shape[0]} dimensions, features_b {mean_b.shape[0]}")
    return frechet_distance_from_statistics(mean_a, cov_a, mean_b, cov_b)


# ---------------------------------------------------------------------------------------------------------------------
# Backbones
# ---------------------------------------------------------------------------------------------------------------------
def load_torchscript(path: str | os.PathLike | None, backbone: BackboneFile, map_location="cpu") -> torch.nn.Module:
    """`torch.jit.load` a backbone from a local file; `FileNotFoundError` naming the file expected and its source."""
    if path is None or not os.path.isfile(os.fspath(path)):
        where = "no path was given" if path is None else f"there is no file at {os.fspath(path)!r}"
        raise FileNotFoundError(
            f"{backbone.metric} needs {backbone.file_name} ({backbone.description}) at a local path, but {where}. "
            f"Nothing is downloaded: get it from {backbone.url} and pass its path ({backbone.option})")
    try:
        with warnings.catch_warnings():  # the published backbone files exist only as TorchScript
            warnings.filterwarnings("ignore", message="`torch.jit.load` is deprecated", category=DeprecationWarning)
            return torch.jit.load(os.fspath(path), map_location=map_location).eval()
    except Exception as error:  # a truncated file, a pickle instead of TorchScript, ...
        raise ValueError(f"{backbone.metric}: {os.fspath(path)!r} could not be loaded as TorchScript "
                         f"({backbone.file_name} expected, from {backbone.url}): {error}") from error


class I3DFeatures(nn.Module):
    """Clips (B, C, T, H, W) in [0, 1] -> I3D features (B, dim) for FVD.

    `detector` is called as `detector(x, rescale=False, resize=True, return_features=True)` with x in [-1, 1] (LARP's
    call of StyleGAN-V's `i3d_torchscript.pt`, which resizes to 224x224 itself)."""

    detector_kwargs = {"rescale": False, "resize": True, "return_features": True}

    def __init__(self, detector: Callable):
        super().__init__()
        self.detector = detector

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        if videos.dim() != 5:
            raise ValueError(f"FVD needs clips (batch, channels, frames, height, width), got shape "
                             f"{tuple(videos.shape)}")
        return self.detector(_rgb(videos) * 2.0 - 1.0, **self.detector_kwargs)


class InceptionFeatures(nn.Module):
    """Images (N, C, H, W) in [0, 1] -> FID Inception features (N, 2048): `detector(uint8 pixels,
    return_features=True)` (StyleGAN2-ADA's `inception-2015-12-05.pt` resizes to 299x299 itself)."""

    detector_kwargs = {"return_features": True}

    def __init__(self, detector: Callable):
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.detector((_rgb(images) * 255).round().to(torch.uint8), **self.detector_kwargs)


class LPIPSDistance(nn.Module):
    """LPIPS between images (N, C, H, W) in [0, 1] -> (N,): the squared difference of `detector(x * 255,
    resize_images=False, return_lpips=True)` features, summed (StyleGAN2-ADA's `vgg16.pt` returns the LPIPS
    features already normalised and weighted)."""

    detector_kwargs = {"resize_images": False, "return_lpips": True}

    def __init__(self, detector: Callable):
        super().__init__()
        self.detector = detector

    def forward(self, images_a: torch.Tensor, images_b: torch.Tensor) -> torch.Tensor:
        features = self.detector(torch.cat([_rgb(images_a), _rgb(images_b)]) * 255.0, **self.detector_kwargs)
        features_a, features_b = features.flatten(1).chunk(2)
        return (features_a - features_b).square().sum(dim=1)


def load_i3d(path: str | os.PathLike | None, map_location="cpu") -> I3DFeatures:
    """`I3DFeatures` from StyleGAN-V's `i3d_torchscript.pt` at a local path."""
    return I3DFeatures(load_torchscript(path, I3D_FILE, map_location))


def load_inception(path: str | os.PathLike | None, map_location="cpu") -> InceptionFeatures:
    """`InceptionFeatures` from StyleGAN2-ADA's `inception-2015-12-05.pt` at a local path."""
    return InceptionFeatures(load_torchscript(path, INCEPTION_FILE, map_location))


def load_lpips(path: str | os.PathLike | None, map_location="cpu") -> LPIPSDistance:
    """`LPIPSDistance` from StyleGAN2-ADA's `vgg16.pt` at a local path."""
    return LPIPSDistance(load_torchscript(path, LPIPS_FILE, map_location))


# ---------------------------------------------------------------------------------------------------------------------
# Accumulator
# ---------------------------------------------------------------------------------------------------------------------
class ReconstructionMetrics:
    """Accumulates PSNR, SSIM and, with their backbones, LPIPS, FVD and FID over batches of originals and their
    reconstructions (pixels in [0, 1]); `compute()` gives the means over items and the Frechet distances.

    Args:
        i3d: an `I3DFeatures` (or any callable clips (B, C, T, H, W) in [0, 1] -> (B, dim)) for FVD.
        inception: an `InceptionFeatures` (or any callable images in [0, 1] -> (N, dim)) for FID over frames.
        lpips: an `LPIPSDistance` (or any callable (images_a, images_b) -> (N,)) for LPIPS over frames.
        compute_ssim: set False to skip SSIM (scikit-image).
        device: where the backbones run (they are moved there); default: CPU.
        batch_size: frames per backbone call for the frame metrics (memory).
    """

    def __init__(self, i3d: Callable | None = None, inception: Callable | None = None, lpips: Callable | None = None,
                 compute_ssim: bool = True, device: str | torch.device | None = None, batch_size: int = 64):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.device = torch.device(device or "cpu")
        self.i3d, self.inception, self.lpips = (
            backbone.to(self.device).eval() if isinstance(backbone, nn.Module) else backbone
            for backbone in (i3d, inception, lpips))
        self.compute_ssim = compute_ssim
        self.batch_size = batch_size
        self.reset()

    def reset(self) -> None:
        self.num_items = 0
        self._values: dict[str, list[torch.Tensor]] = {"psnr": [], "ssim": [], "lpips": []}
        self._features: dict[str, list[torch.Tensor]] = {
            "i3d_original": [], "i3d_reconstruction": [], "inception_original": [], "inception_reconstruction": []}

    def _in_chunks(self, function: Callable, *tensors: torch.Tensor) -> torch.Tensor:
        chunks = zip(*(tensor.split(self.batch_size) for tensor in tensors))
        return torch.cat([function(*(chunk.to(self.device) for chunk in chunk_tuple)).detach().float().cpu()
                          for chunk_tuple in chunks])

    @torch.no_grad()
    def update(self, originals: torch.Tensor, reconstructions: torch.Tensor) -> None:
        """Add a batch: `originals`, `reconstructions` (B, C, T, H, W) clips or (B, C, H, W) images in [0, 1]."""
        originals, reconstructions = _check_pair(originals, reconstructions)
        if self.num_items and originals.shape[1:] != self._shape:
            raise ValueError(f"this batch has items of shape {tuple(originals.shape[1:])}, earlier batches "
                             f"{tuple(self._shape)}")
        self._shape = originals.shape[1:]
        batch = originals.shape[0]
        self._values["psnr"].append(psnr(originals, reconstructions))
        if self.compute_ssim:
            self._values["ssim"].append(ssim(originals, reconstructions))
        frames_a, frames_b = _frames(originals), _frames(reconstructions)
        if self.lpips is not None:
            self._values["lpips"].append(_per_item(self._in_chunks(self.lpips, frames_a, frames_b).flatten(), batch))
        if self.i3d is not None:
            if originals.dim() != 5:
                raise ValueError("FVD needs clips (batch, channels, frames, height, width); got images "
                                 f"{tuple(originals.shape)}")
            for key, clips in (("i3d_original", originals), ("i3d_reconstruction", reconstructions)):
                self._features[key].append(self._in_chunks(self.i3d, clips).flatten(1))
        if self.inception is not None:
            for key, frames in (("inception_original", frames_a), ("inception_reconstruction", frames_b)):
                self._features[key].append(self._in_chunks(self.inception, frames).flatten(1))
        self.num_items += batch

    def per_item(self) -> dict[str, list[float]]:
        """Per-item PSNR, SSIM and LPIPS in the order of `update` calls (metrics not computed are left out)."""
        return {name: torch.cat(values).tolist() for name, values in self._values.items() if values}

    def _distance(self, backbone: str, unit: str) -> tuple[float | None, str | None]:
        originals = self._features[f"{backbone}_original"]
        if not originals:
            return None, f"no {backbone} backbone"
        originals, reconstructions = torch.cat(originals), torch.cat(self._features[f"{backbone}_reconstruction"])
        if len(originals) < 2:
            return None, f"a Frechet distance needs at least 2 {unit}, got {len(originals)}"
        return frechet_distance(originals, reconstructions), None

    def compute(self) -> dict:
        """{"num_items", "psnr", "ssim", "lpips", "fvd", "fid", "not_computed"}: means over items (None when not
        computed), the Frechet distances between the features of originals and reconstructions (FVD over clips,
        FID over frames), and why a metric is None."""
        if self.num_items == 0:
            raise ValueError("no items: call update() with at least one batch before compute()")
        results: dict = {"num_items": self.num_items}
        not_computed = {}
        for name, values in self._values.items():
            results[name] = float(torch.cat(values).double().mean()) if values else None
        if not self.compute_ssim:
            not_computed["ssim"] = "compute_ssim=False"
        if self.lpips is None:
            not_computed["lpips"] = "no lpips backbone"
        results["fvd"], reason = self._distance("i3d", "clips")
        if reason:
            not_computed["fvd"] = reason
        results["fid"], reason = self._distance("inception", "frames")
        if reason:
            not_computed["fid"] = reason
        results["not_computed"] = not_computed
        return results


__all__ = [
    "BackboneFile",
    "I3D_FILE",
    "INCEPTION_FILE",
    "LPIPS_FILE",
    "I3DFeatures",
    "InceptionFeatures",
    "LPIPSDistance",
    "ReconstructionMetrics",
    "check_pixels",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "load_i3d",
    "load_inception",
    "load_lpips",
    "load_torchscript",
    "psnr",
    "ssim",
    "to_unit_pixels",
]
