"""Hostile settings fail fast, before anything is allocated, with a `ValueError` / `TypeError` naming the field.

Configs (`HSANetConfig`, `SweetTokenizerConfig`) and processor configs (`HSANetFeatureExtractor`, `HSANetProcessor`,
`SweetImageProcessor`, `SweetVideoProcessor`): upper bounds where a value sizes memory (the `UPPER_BOUNDS` of each
configuration module, `MAX_NUM_LABELS`, the processors' `MAX_*`), null and wrong-typed fields, and the same files
loaded through the Auto classes. Each case must fail within a second: a bound checked after the allocation it guards
would take minutes or exhaust memory (`num_labels=10**12` hung `from_pretrained`; `size` 10**6 x 10**6 grew to 7.7 GB).
"""

from __future__ import annotations

import inspect
import json
import time

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoImageProcessor

from modeling_hsanet import HSANetConfig, HSANetProcessor
from modeling_hsanet import configuration_hsanet as hsanet_configuration
from modeling_hsanet.processing_hsanet import FEATURE_EXTRACTOR_UPPER_BOUNDS, HSANetFeatureExtractor
from modeling_sweet import SweetImageProcessor, SweetTokenizerConfig, SweetVideoProcessor, image_processing_sweet
from modeling_sweet import configuration_sweet as sweet_configuration
from tests.model_testers import HSANET_TINY, SWEET_TINY, tiny_text_processor

FAST_S = 1.0  # every hostile case fails within this (they take milliseconds; the margin is for a loaded machine)
CONFIGS = {
    "hsanet": (HSANetConfig, HSANET_TINY, hsanet_configuration),
    "sweet": (SweetTokenizerConfig, SWEET_TINY, sweet_configuration),
}


class _NotAValue:
    """A value of no type any field accepts."""

    def __repr__(self) -> str:
        return "<not a value>"


def raises_fast(call, error=(ValueError, TypeError), names: tuple[str, ...] = ()) -> str:
    """Run `call`, which must raise `error` within FAST_S with a message holding every string of `names`."""
    start = time.perf_counter()
    with pytest.raises(error) as info:
        call()
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert elapsed < FAST_S, f"took {elapsed:.2f} s to fail: {message}"
    for name in names:
        assert name in message, f"{name!r} not in the error: {message}"
    return message


def own_fields(config_class) -> list[str]:
    """The config's own `__init__` arguments (transformers' base fields are transformers' business)."""
    return [name for name in inspect.signature(config_class.__init__).parameters if name not in ("self", "kwargs")]


def write_json(path, data: dict) -> None:
    path.write_text(json.dumps(data))


# -- configs ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CONFIGS)
def test_every_field_null_fails_naming_a_field(kind, tmp_path):
    config_class, tiny, _ = CONFIGS[kind]
    saved = config_class(**tiny).to_dict()
    nulls = {key: None for key in saved if key not in ("model_type", "auto_map")}
    fields = [key for key in nulls if key not in ("transformers_version",)]

    message = raises_fast(lambda: config_class(**nulls), ValueError)
    assert any(f"`{field}`" in message for field in fields), message
    # the same through config.json and the Auto class (`auto_map` left out: null, transformers' AutoConfig itself
    # fails on it before any config class is chosen)
    write_json(tmp_path / "config.json", {**nulls, "model_type": config_class.model_type})
    message = raises_fast(lambda: AutoConfig.from_pretrained(tmp_path), ValueError)
    assert any(f"`{field}`" in message for field in fields), message


@pytest.mark.parametrize("kind", CONFIGS)
def test_each_own_field_null_or_wrong_type_is_named(kind):
    config_class, tiny, _ = CONFIGS[kind]
    checked = 0
    for field in own_fields(config_class):
        raises_fast(lambda: config_class(**{**tiny, field: _NotAValue()}), names=(field,))
        checked += 1
    assert checked >= 20
    # a null field is either its default or an error naming it
    for field in own_fields(config_class):
        try:
            config = config_class(**{**tiny, field: None})
        except (ValueError, TypeError) as error:
            assert field in str(error), f"{field}: {error}"
        else:
            assert config.to_dict() is not None


@pytest.mark.parametrize("kind", CONFIGS)
def test_num_labels_beyond_the_bound_fails_fast(kind, tmp_path):
    config_class, tiny, module = CONFIGS[kind]
    bound = module.MAX_NUM_LABELS
    raises_fast(lambda: config_class(**tiny, num_labels=10**12), ValueError, ("num_labels", f"{bound:,}"))
    raises_fast(lambda: config_class(**tiny, num_labels=-1), ValueError, ("num_labels",))
    raises_fast(lambda: config_class(**tiny, num_labels="12"), ValueError, ("num_labels",))
    raises_fast(lambda: config_class(**tiny, id2label={i: str(i) for i in range(bound + 1)}), ValueError,
                ("id2label", f"{bound:,}"))
    assert config_class(**tiny, num_labels=3).num_labels == 3  # an ordinary head is untouched
    assert config_class(**tiny, num_labels=bound).num_labels == bound

    config_class(**tiny).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    write_json(tmp_path / "config.json", {**saved, "num_labels": 10**12})
    raises_fast(lambda: AutoConfig.from_pretrained(tmp_path), ValueError, ("num_labels",))
    write_json(tmp_path / "config.json", saved)
    raises_fast(lambda: AutoConfig.from_pretrained(tmp_path, num_labels=10**12), ValueError, ("num_labels",))


@pytest.mark.parametrize("kind", CONFIGS)
def test_every_upper_bound_is_checked_and_named(kind, tmp_path):
    config_class, tiny, module = CONFIGS[kind]
    assert module.UPPER_BOUNDS, "no bounds"
    for field, bound in module.UPPER_BOUNDS.items():
        raises_fast(lambda: config_class(**{**tiny, field: bound + 1}), ValueError, (f"`{field}`", f"{bound:,}"))
        raises_fast(lambda: config_class(**{**tiny, field: 10**15}), ValueError, (f"`{field}`",))
    # through config.json: the first bounded field, far beyond its bound
    field = next(iter(module.UPPER_BOUNDS))
    config_class(**tiny).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    write_json(tmp_path / "config.json", {**saved, field: 10**12})
    raises_fast(lambda: AutoConfig.from_pretrained(tmp_path), ValueError, (f"`{field}`",))


def test_realistic_large_configs_are_within_the_bounds():
    """The bounds are generous: published sizes build (configs only; nothing is allocated)."""
    HSANetConfig()  # the paper's HSA-Net
    HSANetConfig(hidden_size=4096, num_gnn_layers=64, num_attention_heads=32, fusion_intermediate_size=16384,
                 num_fusion_experts=64, num_query_tokens=32, num_labels=21_841,
                 text_config={"model_type": "llama", "vocab_size": 256_000, "hidden_size": 8192,
                              "intermediate_size": 28_672, "num_hidden_layers": 80, "num_attention_heads": 64,
                              "max_position_embeddings": 131_072})
    SweetTokenizerConfig()  # the authors' tokenizer
    SweetTokenizerConfig(image_size=1024, patch_size=16, num_frames=129, temporal_patch_size=4, hidden_size=1024,
                         num_attention_heads=16, num_temporal_queries=4096, spatial_codebook_size=262_144)


def test_derived_sizes_are_bounded():
    tokens = hsanet_configuration.MAX_NUM_GRAPH_TOKENS
    raises_fast(lambda: HSANetConfig(**{**HSANET_TINY, "num_gnn_layers": 1000, "num_query_tokens": 1000}),
                ValueError, ("num_graph_tokens", f"{tokens:,}"))
    positions = sweet_configuration.MAX_POSITIONS
    raises_fast(lambda: SweetTokenizerConfig(**{**SWEET_TINY, "image_size": 8192, "patch_size": 2}), ValueError,
                ("positions", f"{positions:,}"))


def test_hsanet_text_config_is_checked_before_it_is_built():
    tiny = HSANET_TINY
    raises_fast(lambda: HSANetConfig(**tiny, text_config={"model_type": "llama", "num_labels": 10**12}), ValueError,
                ("text_config", "num_labels"))
    raises_fast(lambda: HSANetConfig(**tiny, text_config={"model_type": "no-such-model"}), ValueError,
                ("text_config.model_type", "no-such-model"))
    raises_fast(lambda: HSANetConfig(**tiny, text_config={"model_type": None}), ValueError, ("text_config",))
    raises_fast(lambda: HSANetConfig(**tiny, text_config={"model_type": "llama", "hidden_size": None}), ValueError,
                ("text_config", "hidden_size"))
    bound = hsanet_configuration.TEXT_CONFIG_UPPER_BOUNDS["vocab_size"]
    raises_fast(lambda: HSANetConfig(**tiny, text_config={"model_type": "llama", "vocab_size": 10**10}), ValueError,
                ("text_config.vocab_size", f"{bound:,}"))
    raises_fast(lambda: HSANetConfig(**tiny, text_config="llama"), ValueError, ("text_config",))


@pytest.mark.parametrize("kind", CONFIGS)
def test_transformers_fields_with_bad_values_are_named(kind):
    config_class, tiny, _ = CONFIGS[kind]
    raises_fast(lambda: config_class(**tiny, dtype="float-ish"), ValueError, ("dtype",))
    raises_fast(lambda: config_class(**tiny, problem_type="clustering"), ValueError, ("problem_type",))


# -- processors -----------------------------------------------------------------------------------------------------

HUGE_SIZE = {"height": 10**6, "width": 10**6}


@pytest.mark.parametrize("processor_class", [SweetImageProcessor, SweetVideoProcessor])
def test_sweet_processor_size_is_bounded_at_construction_per_call_and_on_load(processor_class, tmp_path):
    bound = sweet_configuration.MAX_IMAGE_SIZE
    raises_fast(lambda: processor_class(size=HUGE_SIZE), ValueError, ("size", f"{bound:,}"))
    raises_fast(lambda: processor_class(size=10**6), ValueError, ("size",))
    raises_fast(lambda: processor_class(size=[8, 10**6]), ValueError, ("size",))
    raises_fast(lambda: processor_class(size={"height": 8.5, "width": 8}), TypeError, ("size",))
    raises_fast(lambda: processor_class(size="big"), TypeError, ("size",))

    processor = processor_class(size={"height": 8, "width": 8})
    inputs = np.zeros((5, 6, 6, 3), np.uint8) if processor_class is SweetVideoProcessor else np.zeros((6, 6, 3))
    call = {"num_frames": 5} if processor_class is SweetVideoProcessor else {}
    assert processor(inputs, **call)["pixel_values"].shape[-2:] == (8, 8)
    raises_fast(lambda: processor(inputs, size=HUGE_SIZE, **call), ValueError, ("size",))
    raises_fast(lambda: processor(inputs, size={"height": bound + 1, "width": 8}, **call), ValueError, ("size",))

    processor.save_pretrained(tmp_path)
    name = "video_preprocessor_config.json" if processor_class is SweetVideoProcessor else "preprocessor_config.json"
    saved = json.loads((tmp_path / name).read_text())
    write_json(tmp_path / name, {**saved, "size": HUGE_SIZE})
    # AutoVideoProcessor needs torchvision here; AutoImageProcessor resolves the registered class
    loader = processor_class if processor_class is SweetVideoProcessor else AutoImageProcessor
    raises_fast(lambda: loader.from_pretrained(tmp_path), ValueError, ("size",))


@pytest.mark.parametrize("processor_class", [SweetImageProcessor, SweetVideoProcessor])
def test_sweet_processor_settings_of_wrong_types_are_named(processor_class):
    processor = processor_class(size={"height": 8, "width": 8})
    inputs = np.zeros((5, 6, 6, 3), np.uint8) if processor_class is SweetVideoProcessor else np.zeros((6, 6, 3))
    call = {"num_frames": 5} if processor_class is SweetVideoProcessor else {}
    cases = {"num_channels": 10**6, "resample": 99, "rescale_factor": float("nan"), "image_mean": float("inf"),
             "image_std": "wide", "do_resize": "yes", "do_normalize": 2}
    for field, value in cases.items():
        raises_fast(lambda: processor_class(**{field: value}), names=(field,))
        raises_fast(lambda: processor(inputs, **{**call, field: value}), names=(field,))
    bound = sweet_configuration.UPPER_BOUNDS["num_channels"]
    raises_fast(lambda: processor_class(num_channels=bound + 1), ValueError, ("num_channels", str(bound)))


def test_sweet_processor_config_with_every_field_null_fails_naming_a_field(tmp_path):
    """`auto_map` and the processor type stay: null, transformers' Auto classes fail on them before any processor
    class is chosen."""
    for processor_class, loader, name in (
        (SweetImageProcessor, AutoImageProcessor, "preprocessor_config.json"),
        (SweetVideoProcessor, SweetVideoProcessor, "video_preprocessor_config.json"),  # Auto: needs torchvision
    ):
        processor_class().save_pretrained(tmp_path)
        saved = json.loads((tmp_path / name).read_text())
        kept = {key: saved[key] for key in saved if key.endswith("processor_type") or key == "auto_map"}
        fields = [key for key in saved if key not in kept]
        write_json(tmp_path / name, {**{key: None for key in saved}, **kept})
        message = raises_fast(lambda: loader.from_pretrained(tmp_path), ValueError)
        assert any(field in message for field in fields), message


def test_video_frames_and_clip_size_are_bounded():
    bound = sweet_configuration.MAX_NUM_FRAMES
    raises_fast(lambda: SweetVideoProcessor(num_frames=10**9), ValueError, ("num_frames", f"{bound:,}"))
    raises_fast(lambda: SweetVideoProcessor(num_frames=bound + 1), ValueError, ("num_frames",))
    clip = image_processing_sweet.MAX_CLIP_PIXELS
    raises_fast(lambda: SweetVideoProcessor(num_frames=bound, size={"height": 4096, "width": 4096}), ValueError,
                ("MAX_CLIP_PIXELS", f"{clip:,}"))
    processor = SweetVideoProcessor(num_frames=3, size={"height": 8, "width": 8})
    raises_fast(lambda: processor(np.zeros((3, 6, 6, 3), np.uint8), num_frames=bound, size={"height": 4096,
                                                                                           "width": 4096}),
                ValueError, ("MAX_CLIP_PIXELS",))
    # without resizing a clip has its frames' size: 7 frames of 13,000 x 13,000 (a broadcast view, no memory)
    frames = np.broadcast_to(np.zeros((1, 1, 1, 3), np.uint8), (7, 13_000, 13_000, 3))
    raises_fast(lambda: processor(frames, num_frames=7, do_resize=False), ValueError, ("video #0", "MAX_CLIP_PIXELS"))


def test_input_images_beyond_the_pixel_bound_are_named_before_any_copy():
    bound = image_processing_sweet.MAX_INPUT_PIXELS
    side = int(bound**0.5) + 1
    image = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (side, side, 3))  # holds no memory until copied
    tensor = torch.zeros(1, 1, 1, dtype=torch.bfloat16).expand(3, side, side)  # bf16 would be converted
    processor = SweetImageProcessor(size={"height": 8, "width": 8})
    raises_fast(lambda: processor(image), ValueError, ("image #0", f"{bound:,}"))
    raises_fast(lambda: processor([np.zeros((4, 4, 3), np.uint8), tensor]), ValueError, ("image #1",))
    raises_fast(lambda: processor(np.broadcast_to(np.zeros((1, 1), np.float32), (1, side * side))), ValueError,
                ("image #0",))
    video = [np.zeros((6, 6, 3), np.uint8)] * 4 + [image]
    raises_fast(lambda: SweetVideoProcessor(num_frames=5, size={"height": 8, "width": 8})(video), ValueError,
                ("video #0 frame #4",))


def test_a_video_array_with_a_huge_frame_count_reads_only_the_sampled_frames():
    """A 4-d array is not split into one view per frame: 10**8 frames (a broadcast view) take no longer than 17."""
    frames = np.broadcast_to(np.arange(4, dtype=np.uint8).reshape(1, 2, 2, 1), (10**8, 2, 2, 3))
    start = time.perf_counter()
    pixel_values = SweetVideoProcessor(num_frames=5, size={"height": 2, "width": 2})(frames)["pixel_values"]
    assert time.perf_counter() - start < FAST_S
    expected = torch.tensor([[0, 1], [2, 3]], dtype=torch.float32) / 255 - 0.5
    torch.testing.assert_close(pixel_values[0, 0, 0], expected, atol=1e-6, rtol=0)
    assert pixel_values.shape == (1, 3, 5, 2, 2)


def test_feature_extractor_limits_are_bounded(tmp_path):
    for field, bound in FEATURE_EXTRACTOR_UPPER_BOUNDS.items():
        raises_fast(lambda: HSANetFeatureExtractor(**{field: bound + 1}), ValueError, (field, f"{bound:,}"))
        raises_fast(lambda: HSANetFeatureExtractor(**{field: None}), ValueError, (field,))
        raises_fast(lambda: HSANetFeatureExtractor(**{field: "8"}), ValueError, (field,))
    raises_fast(lambda: HSANetFeatureExtractor(feature_scheme=["ogb"]), ValueError, ("feature_scheme",))
    HSANetFeatureExtractor().save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    write_json(tmp_path / "preprocessor_config.json", {**saved, "max_atoms": 10**12})
    raises_fast(lambda: HSANetFeatureExtractor.from_pretrained(tmp_path), ValueError, ("max_atoms",))


def test_processor_num_graph_tokens_is_bounded():
    bound = hsanet_configuration.MAX_NUM_GRAPH_TOKENS
    processor = tiny_text_processor(num_graph_tokens=4)
    assert processor.num_graph_tokens == 4
    raises_fast(lambda: HSANetProcessor(tokenizer=processor.tokenizer, num_graph_tokens=10**9), ValueError,
                ("num_graph_tokens", f"{bound:,}"))
