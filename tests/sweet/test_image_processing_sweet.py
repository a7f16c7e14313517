"""SweetImageProcessor: layouts, resize, grayscale, value range, save / load, postprocess, and every error."""

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import AutoConfig, AutoImageProcessor, PreTrainedConfig

from modeling_sweet.image_processing_sweet import SweetImageProcessor


@pytest.fixture(scope="module")
def processor():
    return SweetImageProcessor()


def random_image(height=24, width=40, channels=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


def test_defaults_shape_and_range(processor):
    assert processor.size.height == processor.size.width == 256 and processor.num_channels == 3
    pixel_values = processor(PIL.Image.fromarray(random_image()))["pixel_values"]
    assert isinstance(pixel_values, torch.Tensor) and pixel_values.dtype == torch.float32
    assert pixel_values.shape == (1, 3, 256, 256)
    assert pixel_values.min() >= -0.5 and pixel_values.max() <= 0.5


def test_no_resize_values_are_x_over_255_minus_half(processor):
    image = random_image()
    pixel_values = processor(image, size={"height": 24, "width": 40})["pixel_values"][0]
    expected = torch.from_numpy(image).permute(2, 0, 1).float() / 255 - 0.5
    torch.testing.assert_close(pixel_values, expected)
    assert pixel_values.min() == pytest.approx(image.min() / 255 - 0.5)
    assert pixel_values.max() == pytest.approx(image.max() / 255 - 0.5)


def test_every_layout_and_type_gives_the_same_values(processor):
    image = random_image()
    inputs = [
        PIL.Image.fromarray(image),
        image,  # (H, W, C) uint8
        np.moveaxis(image, -1, 0),  # (C, H, W)
        torch.from_numpy(image).permute(2, 0, 1),  # torch (C, H, W)
        image.astype(np.float32) / 255,  # float in [0, 1]
        torch.from_numpy(image).to(torch.int64),  # integers 0-255
    ]
    batch = processor(inputs, size={"height": 24, "width": 40})["pixel_values"]
    assert batch.shape == (len(inputs), 3, 24, 40)
    for pixel_values in batch[1:]:
        torch.testing.assert_close(pixel_values, batch[0])
    stacked = processor(np.stack([image, image]), size={"height": 24, "width": 40})["pixel_values"]  # 4-d batch
    assert stacked.shape == (2, 3, 24, 40)


def test_resize_of_non_square_input_to_size(processor):
    image = np.zeros((40, 100, 3), dtype=np.uint8)
    image[:, 50:] = 255  # left half black, right half white
    square = processor(image)["pixel_values"]
    assert square.shape == (1, 3, 256, 256)
    assert torch.all(square[0, :, :, :100] == -0.5) and torch.all(square[0, :, :, -100:] == 0.5)
    wide = processor(image, size={"height": 32, "width": 64})["pixel_values"]
    assert wide.shape == (1, 3, 32, 64)


def test_uint8_resize_is_pillow_bicubic_and_float_resize_agrees(processor):
    image = random_image(48, 48)
    pillow = np.array(PIL.Image.fromarray(image).resize((64, 32), PIL.Image.Resampling.BICUBIC))
    pixel_values = processor(image, size={"height": 32, "width": 64})["pixel_values"][0]
    torch.testing.assert_close(pixel_values, torch.from_numpy(pillow).permute(2, 0, 1).float() / 255 - 0.5)
    smooth = np.linspace(0, 1, 48 * 48 * 3, dtype=np.float32).reshape(48, 48, 3)
    from_float = processor(smooth, size={"height": 32, "width": 64})["pixel_values"]
    from_uint8 = processor((smooth * 255).round().astype(np.uint8), size={"height": 32, "width": 64})["pixel_values"]
    assert (from_float - from_uint8).abs().max() < 2 / 255
    assert from_float.min() >= -0.5 and from_float.max() <= 0.5  # bicubic overshoot clipped to the input range


def test_grayscale_becomes_rgb(processor):
    gray = random_image(channels=1)[..., 0]
    for image in (gray, gray[..., None], gray[None], PIL.Image.fromarray(gray)):
        pixel_values = processor(image, size={"height": 24, "width": 40})["pixel_values"]
        assert pixel_values.shape == (1, 3, 24, 40)
        assert torch.equal(pixel_values[0, 0], pixel_values[0, 1])
        assert torch.equal(pixel_values[0, 0], pixel_values[0, 2])


def test_pil_modes_are_converted_and_num_channels_one(processor):
    rgba = PIL.Image.fromarray(random_image(channels=4), mode="RGBA")
    assert processor(rgba)["pixel_values"].shape == (1, 3, 256, 256)
    gray_processor = SweetImageProcessor(num_channels=1, size={"height": 16, "width": 16})
    assert gray_processor(PIL.Image.fromarray(random_image()))["pixel_values"].shape == (1, 1, 16, 16)
    assert gray_processor(random_image(channels=1))["pixel_values"].shape == (1, 1, 16, 16)


def test_input_data_format_settles_ambiguous_layouts(processor):
    image = random_image(3, 5, 3)  # (3, 5, 3): channels-last is the default reading
    assert processor(image, do_resize=False)["pixel_values"].shape == (1, 3, 3, 5)
    first = processor(image, do_resize=False, input_data_format="channels_first")["pixel_values"]
    assert first.shape == (1, 3, 5, 3)


def test_call_overrides_and_numpy_output(processor):
    out = processor(random_image(), size={"height": 8, "width": 8}, do_normalize=False, return_tensors="np")
    assert isinstance(out["pixel_values"], np.ndarray) and out["pixel_values"].shape == (1, 3, 8, 8)
    assert out["pixel_values"].min() >= 0.0
    assert processor.size.height == 256  # call-time settings do not stick


def test_postprocess_inverts_preprocess(processor):
    image = random_image(256, 256, seed=1)
    pixel_values = processor([image, PIL.Image.fromarray(image)])["pixel_values"]
    restored = processor.postprocess(pixel_values)
    assert len(restored) == 2 and all(isinstance(im, PIL.Image.Image) and im.mode == "RGB" for im in restored)
    for im in restored:
        assert np.abs(np.asarray(im).astype(int) - image).max() <= 1
    assert processor.postprocess(pixel_values[0])[0].size == (256, 256)  # (C, H, W) also accepted
    clipped = processor.postprocess(torch.full((1, 3, 2, 2), 3.0))[0]
    assert np.asarray(clipped).max() == 255


def test_save_and_load_round_trip(tmp_path):
    processor = SweetImageProcessor(size={"height": 32, "width": 48}, image_mean=[0.4, 0.5, 0.6], image_std=0.5)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").exists()
    reloaded = SweetImageProcessor.from_pretrained(tmp_path)
    assert reloaded.to_dict() == processor.to_dict()
    image = random_image()
    assert torch.equal(processor(image)["pixel_values"], reloaded(image)["pixel_values"])
    assert reloaded(image)["pixel_values"].shape == (1, 3, 32, 48)


class _SweetImageTestConfig(PreTrainedConfig):
    model_type = "sweet_image_processing_test"


def test_auto_image_processor_registration(tmp_path):
    AutoConfig.register(_SweetImageTestConfig.model_type, _SweetImageTestConfig, exist_ok=True)
    AutoImageProcessor.register(_SweetImageTestConfig, image_processor_classes={"pil": SweetImageProcessor},
                                exist_ok=True)
    _SweetImageTestConfig().save_pretrained(tmp_path)
    SweetImageProcessor(num_channels=1).save_pretrained(tmp_path)
    reloaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(reloaded) is SweetImageProcessor and reloaded.num_channels == 1


@pytest.mark.parametrize(
    "images, error, message",
    [
        ([], ValueError, "got an empty list of images"),
        ([random_image(), random_image(channels=2)], ValueError, "image #1 has 2 channels, expected 3"),
        ([random_image(channels=5)], ValueError, "image #0 has 5 channels, expected 3"),
        ([np.zeros((5, 24, 40), np.uint8)], ValueError, "image #0 has 5 channels, expected 3"),
        (random_image(channels=4), ValueError, r"image #0 has 4 channels, expected 3 \(drop the alpha channel"),
        ([random_image(), np.full((8, 8, 3), np.nan, np.float32)], ValueError, "image #1 has 192 NaN or infinite"),
        ([torch.tensor([[[0.5, float("inf")]]]).expand(3, 2, 2)], ValueError, "image #0 has 6 NaN or infinite"),
        ([np.full((8, 8, 3), 300, np.int64)], ValueError, r"image #0 has integer values in \[300, 300\]"),
        ([np.ones((8, 8, 3), bool)], ValueError, "image #0 has dtype bool"),
        ([np.zeros((2, 8, 8, 3), np.uint8)], ValueError, r"image #0 has shape \(2, 8, 8, 3\)"),
        ([np.zeros((0, 8, 3), np.uint8)], ValueError, "image #0 is empty"),
        (np.zeros((1, 2, 8, 8, 3), np.uint8), ValueError, "images array has shape"),
        (["cat.png"], TypeError, "image #0 is a str; expected a PIL image, a NumPy array or a torch tensor"),
        ([random_image(), [random_image()]], TypeError, "image #1 is a list"),
        ("cat.png", TypeError, "images is a str"),
        ({"pixel_values": 1}, TypeError, "images is a dict"),
    ],
)
def test_errors_name_the_image(processor, images, error, message):
    with pytest.raises(error, match=message):
        processor(images)


def test_setting_errors(processor):
    with pytest.raises(ValueError,
                       match="image #1 has size \\(8, 8\\) after processing but image #0 has \\(24, 40\\)"):
        processor([random_image(), random_image(8, 8)], do_resize=False)
    with pytest.raises(ValueError, match="num_channels must be a positive integer, got 0"):
        SweetImageProcessor(num_channels=0)
    with pytest.raises(ValueError, match="image_mean has 2 values but the images have 3 channels"):
        SweetImageProcessor(image_mean=[0.5, 0.5])
    with pytest.raises(ValueError, match="image_std must not be 0"):
        processor(random_image(), image_std=0.0)
    with pytest.raises(ValueError, match="does not center-crop or pad"):
        processor(random_image(), do_center_crop=True, crop_size={"height": 8, "width": 8})
    with pytest.raises(ValueError, match="size must be {'height': int, 'width': int}"):
        processor(random_image(), size={"shortest_edge": 8})
    with pytest.raises(ValueError, match="is a PIL image, which gives 1, 3 or 4 channels"):
        SweetImageProcessor(num_channels=2)(PIL.Image.fromarray(random_image()))
    with pytest.raises(ValueError, match=r"pixel_values has shape \(8, 8\)"):
        processor.postprocess(torch.zeros(8, 8))
