"""Reconstruction metrics (modeling_sweet/evaluation_sweet.py) against direct computations, and the evaluation script
(examples/evaluate_sweet_tokenizer.py) end to end on a saved tiny tokenizer with random TorchScript backbones."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from torch import nn

from modeling_sweet import SweetTokenizerConfig, SweetTokenizerModel, SweetVideoProcessor
from modeling_sweet.evaluation_sweet import (
    I3D_FILE,
    INCEPTION_FILE,
    LPIPS_FILE,
    MIN_MSE,
    I3DFeatures,
    ReconstructionMetrics,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_statistics,
    load_i3d,
    load_inception,
    load_lpips,
    psnr,
    ssim,
    to_unit_pixels,
)
from tests.model_testers import SWEET_TINY

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "examples" / "evaluate_sweet_tokenizer.py"


# -- random stand-ins with the calling conventions of the published TorchScript backbones -----------------------------
class TinyI3D(nn.Module):
    """i3d_torchscript.pt's call: (B, 3, T, H, W) in [-1, 1] -> (B, dim)."""

    def __init__(self, dim: int = 3):
        super().__init__()
        self.conv = nn.Conv3d(3, dim, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        if rescale or not resize or not return_features:
            raise RuntimeError("called with other arguments than the FVD protocol's")
        return torch.tanh(self.conv(x)).mean(dim=(2, 3, 4))


class TinyInception(nn.Module):
    """inception-2015-12-05.pt's call: uint8 (N, 3, H, W) -> (N, dim)."""

    def __init__(self, dim: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(3, dim, kernel_size=3, stride=2)

    def forward(self, img: torch.Tensor, return_features: bool = False):
        if img.dtype != torch.uint8 or not return_features:
            raise RuntimeError("FID's Inception takes uint8 pixels and return_features=True")
        return torch.tanh(self.conv(img.float() / 127.5 - 1.0)).mean(dim=(2, 3))


class TinyVGG(nn.Module):
    """vgg16.pt's LPIPS call: float (N, 3, H, W) in [0, 255] -> (N, features)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3, stride=2)

    def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False):
        if resize_images or not return_lpips:
            raise RuntimeError("LPIPS is resize_images=False, return_lpips=True")
        features = torch.tanh(self.conv(img / 255.0))
        return (features / features.square().sum(dim=1, keepdim=True).sqrt().clamp_min(1e-6)).flatten(1) / 8


@pytest.fixture(scope="module")
def backbone_files(tmp_path_factory):
    """The three stand-ins, seeded, scripted and saved as TorchScript files."""
    folder = tmp_path_factory.mktemp("backbones")
    torch.manual_seed(0)
    paths = {}
    for name, module in (("i3d", TinyI3D()), ("inception", TinyInception()), ("lpips", TinyVGG())):
        paths[name] = str(folder / f"{name}.pt")
        torch.jit.script(module.eval()).save(paths[name])
    return paths


def clips(seed: int, count: int = 4, frames: int = 3, size: int = 16, noise: float = 0.1):
    """Originals and noisy reconstructions (count, 3, frames, size, size) in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    originals = torch.rand(count, 3, frames, size, size, generator=generator)
    noisy = originals + noise * torch.randn(originals.shape, generator=generator)
    return originals, noisy.clamp(0, 1)


# -- Frechet distance -------------------------------------------------------------------------------------------------
def test_frechet_distance_matches_direct_scipy_computation():
    rng = np.random.default_rng(0)
    features_a = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    features_b = rng.normal(loc=0.7, size=(250, 6)) @ rng.normal(size=(6, 6))
    mu_a, mu_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    root_a = scipy.linalg.sqrtm(cov_a).real  # the symmetric form tr((A^1/2 B A^1/2)^1/2) = tr((A B)^1/2)
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b) - 2 * np.trace(
        scipy.linalg.sqrtm(root_a @ cov_b @ root_a).real)
    assert expected > 1.0
    assert frechet_distance(features_a, features_b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(torch.from_numpy(features_b).float(), features_a) == pytest.approx(expected, rel=1e-5)
    assert abs(frechet_distance(features_a, features_a.copy())) < 1e-8


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(1)
    mean_a, mean_b = rng.normal(size=5), rng.normal(size=5)
    variances_a, variances_b = rng.uniform(0.1, 2.0, size=5), rng.uniform(0.1, 2.0, size=5)
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(variances_a) - np.sqrt(variances_b)) ** 2)
    actual = frechet_distance_from_statistics(mean_a, np.diag(variances_a), mean_b, np.diag(variances_b))
    assert actual == pytest.approx(expected, rel=1e-10)
    mean, cov = feature_statistics(rng.normal(size=(40, 5)))
    assert mean.shape == (5,) and cov.shape == (5, 5)


def test_frechet_distance_errors_name_the_problem():
    with pytest.raises(ValueError, match="features_a: a covariance needs at least 2 items, got 1"):
        frechet_distance(np.ones((1, 4)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="features_a has 4 dimensions, features_b 3"):
        frechet_distance(np.random.rand(5, 4), np.random.rand(5, 3))
    with pytest.raises(ValueError, match="features_b contains NaN or inf"):
        frechet_distance(np.random.rand(5, 2), np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="must be \\(num_items, dim\\)"):
        frechet_distance(np.random.rand(5), np.random.rand(5))


# -- PSNR, SSIM -------------------------------------------------------------------------------------------------------
def direct_ssim(truth: np.ndarray, guess: np.ndarray) -> float:
    """Wang et al.'s SSIM of (C, H, W) frames in [0, 1] written out: Gaussian window (sigma 1.5, truncated at 3.5
    sigma), population (co)variances, borders of half a window dropped, mean over channels."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2

    def smooth(values):
        return gaussian_filter(values, sigma=1.5, truncate=3.5, mode="reflect")

    maps = []
    for a, b in zip(truth, guess):
        mean_a, mean_b = smooth(a), smooth(b)
        var_a, var_b = smooth(a * a) - mean_a ** 2, smooth(b * b) - mean_b ** 2
        covariance = smooth(a * b) - mean_a * mean_b
        ssim_map = ((2 * mean_a * mean_b + c1) * (2 * covariance + c2)) / (
            (mean_a ** 2 + mean_b ** 2 + c1) * (var_a + var_b + c2))
        maps.append(ssim_map[5:-5, 5:-5].mean())
    return float(np.mean(maps))


def test_psnr_and_ssim_match_direct_computations():
    originals, reconstructions = clips(seed=2)
    truth, guess = originals.double().numpy(), reconstructions.double().numpy()
    mse = ((truth - guess) ** 2).mean(axis=(1, 3, 4))  # (clips, frames)
    expected_psnr = (10 * np.log10(1.0 / mse)).mean(axis=1)
    np.testing.assert_allclose(psnr(originals, reconstructions).numpy(), expected_psnr, rtol=1e-5)
    expected_ssim = [np.mean([direct_ssim(truth[i, :, t], guess[i, :, t]) for t in range(truth.shape[2])])
                     for i in range(len(truth))]
    np.testing.assert_allclose(ssim(originals, reconstructions).numpy(), expected_ssim, atol=1e-5)
    # images are one-frame items
    np.testing.assert_allclose(psnr(originals[:, :, 0], reconstructions[:, :, 0]).numpy(),
                               10 * np.log10(1.0 / mse[:, 0]), rtol=1e-5)
    perfect = psnr(originals, originals)
    assert torch.allclose(perfect, torch.full_like(perfect, -10 * np.log10(MIN_MSE)))
    assert torch.allclose(ssim(originals, originals), torch.ones(len(originals)), atol=1e-6)


def test_metric_inputs_are_checked():
    originals, reconstructions = clips(seed=3)
    with pytest.raises(ValueError, match="originals item #0 has values in .*to_unit_pixels"):
        psnr(originals - 0.5, reconstructions)
    with pytest.raises(ValueError, match="must have the same shape"):
        psnr(originals, reconstructions[:, :, :2])
    with pytest.raises(ValueError, match="SSIM needs frames of at least 11x11 pixels"):
        ssim(originals[..., :8, :8], reconstructions[..., :8, :8])
    assert torch.allclose(to_unit_pixels(originals - 0.5), originals)
    metrics = ReconstructionMetrics(i3d=I3DFeatures(TinyI3D()))
    with pytest.raises(ValueError, match="FVD needs clips"):
        metrics.update(originals[:, :, 0], reconstructions[:, :, 0])
    with pytest.raises(ValueError, match="no items"):
        ReconstructionMetrics().compute()


# -- backbones --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("load, backbone", [(load_i3d, I3D_FILE), (load_inception, INCEPTION_FILE),
                                            (load_lpips, LPIPS_FILE)])
def test_absent_or_invalid_backbone_weights_raise_a_clear_error(tmp_path, load, backbone):
    missing = tmp_path / "nowhere" / backbone.file_name
    for path in (None, missing):
        with pytest.raises(FileNotFoundError) as error:
            load(path)
        message = str(error.value)
        assert backbone.file_name in message and backbone.url in message and backbone.option in message
    assert str(missing) in message and "Nothing is downloaded" in message
    not_torchscript = tmp_path / backbone.file_name
    not_torchscript.write_bytes(b"not a TorchScript archive")
    with pytest.raises(ValueError, match=f"{backbone.metric}: .*could not be loaded as TorchScript"):
        load(not_torchscript)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_metrics_with_random_backbones_match_direct_computations(backbone_files):
    i3d, inception, lpips = (load_i3d(backbone_files["i3d"]), load_inception(backbone_files["inception"]),
                             load_lpips(backbone_files["lpips"]))
    originals, reconstructions = clips(seed=4, count=6)
    metrics = ReconstructionMetrics(i3d=i3d, inception=inception, lpips=lpips, batch_size=5)
    metrics.update(originals[:4], reconstructions[:4])
    metrics.update(originals[4:], reconstructions[4:])
    results = metrics.compute()
    assert results["num_items"] == 6 and results["not_computed"] == {}

    detector_i3d, detector_inception, detector_vgg = (torch.jit.load(backbone_files[name])
                                                      for name in ("i3d", "inception", "lpips"))
    with torch.no_grad():
        i3d_a = detector_i3d(originals * 2 - 1, rescale=False, resize=True, return_features=True)
        i3d_b = detector_i3d(reconstructions * 2 - 1, rescale=False, resize=True, return_features=True)
        frames_a = originals.transpose(1, 2).reshape(-1, 3, 16, 16)
        frames_b = reconstructions.transpose(1, 2).reshape(-1, 3, 16, 16)
        inception_a = detector_inception((frames_a * 255).round().to(torch.uint8), return_features=True)
        inception_b = detector_inception((frames_b * 255).round().to(torch.uint8), return_features=True)
        vgg_a = detector_vgg(frames_a * 255, resize_images=False, return_lpips=True)
        vgg_b = detector_vgg(frames_b * 255, resize_images=False, return_lpips=True)
    assert results["fvd"] == pytest.approx(frechet_distance(i3d_a, i3d_b), rel=1e-4, abs=1e-7)
    assert results["fid"] == pytest.approx(frechet_distance(inception_a, inception_b), rel=1e-4, abs=1e-7)
    expected_lpips = (vgg_a - vgg_b).square().sum(dim=1).view(6, 3).mean(dim=1)
    np.testing.assert_allclose(metrics.per_item()["lpips"], expected_lpips.numpy(), rtol=1e-4, atol=1e-7)
    assert results["lpips"] == pytest.approx(float(expected_lpips.mean()), rel=1e-4)
    assert results["fvd"] > 0 and results["lpips"] > 0
    assert results["psnr"] == pytest.approx(float(psnr(originals, reconstructions).mean()), rel=1e-6)

    # the same clips in one batch give the same numbers; identical reconstructions give zero distances
    whole = ReconstructionMetrics(i3d=i3d, inception=inception, lpips=lpips, compute_ssim=False)
    whole.update(originals, reconstructions)
    for name in ("fvd", "fid", "lpips", "psnr"):
        assert whole.compute()[name] == pytest.approx(results[name], rel=1e-4, abs=1e-7)
    assert whole.compute()["ssim"] is None and "ssim" in whole.compute()["not_computed"]
    same = ReconstructionMetrics(i3d=i3d, lpips=lpips, compute_ssim=False)
    same.update(originals, originals)
    assert abs(same.compute()["fvd"]) < 1e-5 and same.compute()["lpips"] == 0.0
    single = ReconstructionMetrics(i3d=i3d, compute_ssim=False)
    single.update(originals[:1], reconstructions[:1])
    assert single.compute()["fvd"] is None
    assert "at least 2 clips, got 1" in single.compute()["not_computed"]["fvd"]


# -- the evaluation script --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_tokenizer(tmp_path_factory, minilm_path):
    """A tiny tokenizer (clips of 5 frames, 16x16) saved once for the script tests: (model, folder)."""
    model = SweetTokenizerModel.from_language_model(SweetTokenizerConfig(**SWEET_TINY), minilm_path, max_words=64)
    folder = tmp_path_factory.mktemp("tokenizer")
    model.eval().save_pretrained(folder)
    return model, str(folder)


@pytest.fixture
def script():
    spec = importlib.util.spec_from_file_location("evaluate_sweet_tokenizer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def smooth_clip(seed: int, frames: int, height: int = 18, width: int = 24) -> np.ndarray:
    """A moving colour gradient (frames, height, width, 3) uint8."""
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    phases = rng.uniform(0, 2 * np.pi, size=3)
    clip = [np.stack([0.5 + 0.5 * np.sin(4 * rows + 3 * cols + phase + 0.4 * t) for phase in phases], axis=-1)
            for t in range(frames)]
    return (np.stack(clip) * 255).round().astype(np.uint8)


@pytest.fixture
def video_folder(tmp_path):
    videos = tmp_path / "videos"
    (videos / "ClassA" / "v_frames").mkdir(parents=True)
    (videos / "ClassB").mkdir()
    np.save(videos / "ClassA" / "v_array.npy", smooth_clip(0, 7))
    for index, frame in enumerate(smooth_clip(1, 6)):
        Image.fromarray(frame).save(videos / "ClassA" / "v_frames" / f"frame_{index + 1}.png")
    frames = [Image.fromarray(frame) for frame in smooth_clip(2, 6)]
    frames[0].save(videos / "ClassB" / "v_gif.gif", save_all=True, append_images=frames[1:], duration=40)
    (videos / "ClassB" / "v_corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(videos / "ClassB" / "v_short.npy", smooth_clip(3, 2))
    (videos / "ClassB" / "v_video.avi").write_bytes(b"RIFF not really a video")
    (videos / "notes.txt").write_text("not a clip")
    return videos


def test_evaluation_script_end_to_end(tmp_path, script, saved_tokenizer, video_folder, backbone_files):
    word_model, model_path = saved_tokenizer
    output = tmp_path / "results.json"
    code = script.main(["--model", model_path, "--videos", str(video_folder), "--i3d", backbone_files["i3d"],
                        "--lpips", backbone_files["lpips"], "--inception", backbone_files["inception"],
                        "--batch-size", "2", "--output", str(output), "--device", "cpu"])
    assert code == 0
    results = json.loads(output.read_text())
    assert results["clips_found"] == 6 and results["clips_read"] == 3 and results["clips_skipped"] == 3
    assert results["files_ignored"] == 1  # notes.txt
    assert [item["clip"] for item in results["per_clip"]] == ["ClassA/v_array.npy", "ClassA/v_frames",
                                                              "ClassB/v_gif.gif"]
    reasons = {item["clip"]: item["reason"] for item in results["skipped"]}
    assert set(reasons) == {"ClassB/v_corrupt.npy", "ClassB/v_short.npy", "ClassB/v_video.avi"}
    assert "v_short.npy has 2 frames but 5 frames are required" in reasons["ClassB/v_short.npy"]
    assert reasons["ClassB/v_corrupt.npy"].startswith("ValueError")
    assert results["protocol"] == {"num_frames": 5, "resolution": 16, "frame_sampling": "first", "crop": "center"}
    assert results["tokens_per_clip"] == {"spatial": 4, "temporal": 8}
    metric = results["metrics"]
    assert all(np.isfinite(metric[name]) for name in ("rfvd", "psnr", "ssim", "lpips", "rfid"))
    assert results["not_computed"] == {}

    # the .npy clip by hand: its first 5 frames, the centre 18x18 square, the processor, encode -> decode, PSNR
    array = np.load(video_folder / "ClassA" / "v_array.npy")[:5, :, 3:21]
    pixel_values = SweetVideoProcessor(size={"height": 16, "width": 16}, num_frames=5)(list(array))["pixel_values"]
    with torch.no_grad():
        encoded = word_model.encode(pixel_values)
        reconstruction = word_model.decode(encoded.spatial_ids, encoded.temporal_ids)
    truth, guess = to_unit_pixels(pixel_values).double().numpy(), to_unit_pixels(reconstruction).double().numpy()
    expected = np.mean(10 * np.log10(1.0 / ((truth - guess) ** 2).mean(axis=(1, 3, 4))))
    assert results["per_clip"][0]["psnr"] == pytest.approx(expected, rel=1e-4)
    assert np.mean([clip["psnr"] for clip in results["per_clip"]]) == pytest.approx(metric["psnr"], rel=1e-6)


def test_evaluation_script_split_list_and_missing_weights(tmp_path, script, saved_tokenizer, video_folder):
    model_path = saved_tokenizer[1]
    split = tmp_path / "testlist01.txt"
    # UCF-101 list lines, with and without a label; a frame folder stands in for its .avi; one entry is absent
    split.write_text("ClassA/v_frames.avi 1\nClassA/v_array.npy\n\nClassC/v_absent.avi 3\n")
    output = tmp_path / "split.json"
    assert script.main(["--model", model_path, "--videos", str(video_folder), "--split-list", str(split),
                        "--output", str(output), "--no-ssim"]) == 0
    results = json.loads(output.read_text())
    assert results["clips_found"] == 3 and results["clips_read"] == 2 and results["clips_skipped"] == 1
    assert "line 4" in results["skipped"][0]["reason"] and results["skipped"][0]["clip"] == "ClassC/v_absent.avi"
    assert results["metrics"]["rfvd"] is None and results["metrics"]["ssim"] is None
    assert set(results["not_computed"]) == {"rfvd", "rfid", "lpips", "ssim"}

    with pytest.raises(FileNotFoundError, match="i3d_torchscript.pt"):
        script.main(["--model", model_path, "--videos", str(video_folder), "--i3d", str(tmp_path / "no.pt"),
                     "--output", str(output)])
    with pytest.raises(ValueError, match="--num-frames 17: the tokenizer reads clips of num_frames=5"):
        script.main(["--model", model_path, "--videos", str(video_folder), "--num-frames", "17",
                     "--output", str(output)])
