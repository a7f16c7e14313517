import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, pipeline
from transformers.models.auto.video_processing_auto import AutoVideoProcessor

from modeling_sweet import SweetImageProcessor, SweetVideoProcessor
from modeling_sweet.data_sweet import load_sample_photographs, moving_digit_clips
from modeling_sweet.pipeline_sweet import VIDEO_BACKENDS, read_video_frames
from modeling_sweet.video_processing_sweet import sample_frame_indices


@pytest.fixture
def saved(tmp_path, word_model):
    word_model.eval().save_pretrained(tmp_path)
    SweetImageProcessor(size={"height": 16, "width": 16}).save_pretrained(tmp_path)
    SweetVideoProcessor(size={"height": 16, "width": 16}, num_frames=5).save_pretrained(tmp_path)
    return word_model, str(tmp_path)


def photographs(count=3):
    pictures = load_sample_photographs(48)[:count]
    return [Image.fromarray((p.transpose(1, 2, 0) * 255).astype(np.uint8)) for p in pictures]


def test_auto_processors_resolve(saved):
    _, path = saved
    assert isinstance(AutoImageProcessor.from_pretrained(path), SweetImageProcessor)
    assert isinstance(AutoVideoProcessor.from_pretrained(path), SweetVideoProcessor)


def test_image_tokenization_pipeline(saved):
    model, path = saved
    tokenizer = pipeline("image-tokenization", model=path)
    images = photographs()
    results = tokenizer(images, batch_size=2, return_reconstruction=True)
    assert len(results) == 3
    pixel_values = SweetImageProcessor(size={"height": 16, "width": 16})(images)["pixel_values"]
    with torch.no_grad():
        expected = model.encode(pixel_values).spatial_ids
    assert [r["spatial_ids"] for r in results] == expected.tolist()
    assert results[1]["spatial_words"] == model.ids_to_words(expected[1], "spatial")
    assert isinstance(results[0]["reconstruction"], Image.Image) and results[0]["reconstruction"].size == (16, 16)
    assert "temporal_ids" not in results[0]
    single = tokenizer(images[2])
    assert single["spatial_ids"] == results[2]["spatial_ids"] and "reconstruction" not in single


def test_video_tokenization_pipeline(saved):
    model, path = saved
    tokenizer = pipeline("video-tokenization", model=path)
    clips = [(clip.transpose(1, 2, 3, 0) * 255).astype(np.uint8) for clip in moving_digit_clips(3, 9, 16, seed=1)]
    results = tokenizer(clips, batch_size=2, return_reconstruction=True)
    assert len(results) == 3 and len(results[0]["temporal_ids"]) == model.config.num_temporal_queries
    assert len(results[0]["temporal_words"]) == model.config.num_temporal_queries
    assert len(results[0]["reconstruction"]) == model.config.num_frames
    with pytest.raises(ValueError, match="video #0 has 3 frames but 5 frames are required"):
        tokenizer(clips[0][:3])


def test_pipelines_reject_empty_input(saved):
    _, path = saved
    with pytest.raises(ValueError, match="empty list"):
        pipeline("image-tokenization", model=path)([])


def digit_clips(count=3, seed=1, frames=9):
    """(frames, H, W, C) uint8 clips of 9 frames (the processor keeps 5, uniformly)."""
    clips = moving_digit_clips(count, frames, 16, seed=seed)
    return [(clip.transpose(1, 2, 3, 0) * 255).astype(np.uint8) for clip in clips]


def test_a_generator_streams_results_in_order(saved):
    _, path = saved
    tokenizer = pipeline("image-tokenization", model=path)
    images = photographs(4)
    expected = tokenizer(images)
    consumed = []

    def generate():
        for index, image in enumerate(images):
            consumed.append(index)
            yield image

    results = tokenizer(generate(), batch_size=1)
    assert not isinstance(results, list)
    first = next(results)
    assert len(consumed) < len(images)  # lazy: not read to the end before the first result
    assert [first, *results] == expected
    assert list(tokenizer(iter(images), batch_size=3)) == expected  # any iterator, batched


def test_an_iterable_dataset_streams_as_transformers_pipelines_do(saved):
    _, path = saved
    images = photographs(3)

    class Photographs(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(images)

    tokenizer = pipeline("image-tokenization", model=path)
    expected = tokenizer(images)
    results = tokenizer(Photographs(), batch_size=2)
    assert not isinstance(results, list) and list(results) == expected
    clips = digit_clips(2)

    class Clips(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(clips)

    video_tokenizer = pipeline("video-tokenization", model=path)
    assert list(video_tokenizer(Clips())) == video_tokenizer(clips)
    with pytest.raises(TypeError, match=r"image #0 is a dict"):  # a mapping is one (bad) input, not a stream
        tokenizer({"pixels": 1})


def test_image_paths_are_read(saved, tmp_path):
    _, path = saved
    tokenizer = pipeline("image-tokenization", model=path)
    images = photographs(2)
    files = [tmp_path / f"photo{index}.png" for index in range(2)]
    for image, file in zip(images, files):
        image.save(file)
    expected = tokenizer(images)
    assert tokenizer([str(files[0]), files[1]], batch_size=2) == expected
    assert tokenizer(files[1]) == expected[1]
    with pytest.raises(ValueError, match=r"image #1: could not read an image from '.*missing\.png'"):
        tokenizer([files[0], str(tmp_path / "missing.png")])


def test_a_batch_array_of_images_gives_one_result_per_image(saved):
    _, path = saved
    tokenizer = pipeline("image-tokenization", model=path)
    images = photographs(3)
    stacked = np.stack([np.asarray(image) for image in images])
    assert tokenizer(stacked) == tokenizer(images)


def test_a_list_of_frames_is_one_clip_and_a_list_of_lists_a_batch(saved):
    _, path = saved
    tokenizer = pipeline("video-tokenization", model=path)
    clips = digit_clips(2)
    as_frames = [[Image.fromarray(frame) for frame in clip] for clip in clips]
    expected = tokenizer(clips)
    single = tokenizer(as_frames[0])
    assert isinstance(single, dict) and single == expected[0]
    assert tokenizer(list(clips[1])) == expected[1]  # a list of (H, W, C) arrays is a clip as well
    assert tokenizer(as_frames, batch_size=2) == expected
    assert list(tokenizer(iter(as_frames))) == expected


@pytest.mark.parametrize("suffix, options", [(".png", {}), (".tiff", {}), (".gif", {"duration": 40, "loop": 0})])
def test_video_files_are_read_frame_by_frame(saved, tmp_path, suffix, options):
    _, path = saved
    tokenizer = pipeline("video-tokenization", model=path)
    clips = digit_clips(2)
    files = []
    for index, clip in enumerate(clips):
        frames = [Image.fromarray(frame) for frame in clip]
        files.append(tmp_path / f"clip{index}{suffix}")
        frames[0].save(files[-1], save_all=True, append_images=frames[1:], **options)
    with Image.open(files[0]) as image:
        assert image.n_frames == 9
    results = tokenizer([str(files[0]), files[1]])
    assert len(results) == 2 and tokenizer(files[1]) == results[1]
    if suffix != ".gif":  # lossless formats give exactly the frames
        assert results == tokenizer(clips)
    else:
        assert len(results[0]["temporal_ids"]) == tokenizer.model.config.num_temporal_queries


def save_gif(file, clip):
    frames = [Image.fromarray(frame) for frame in clip]
    frames[0].save(file, save_all=True, append_images=frames[1:], duration=40, loop=0)


def test_only_the_frames_the_processor_keeps_are_decoded(saved, tmp_path, monkeypatch):
    _, path = saved
    tokenizer = pipeline("video-tokenization", model=path)
    file = tmp_path / "long.gif"
    save_gif(file, digit_clips(1, frames=40)[0])
    whole = read_video_frames(file)  # every frame, as before
    assert len(whole) == 40
    expected = tokenizer(whole)  # the processor keeps 5 of the 40
    sought, real_open = [], Image.open

    def open_recording(*args, **kwargs):
        image = real_open(*args, **kwargs)
        real_seek = image.seek
        image.seek = lambda index: sought.append(index) or real_seek(index)
        return image

    monkeypatch.setattr(Image, "open", open_recording)
    assert tokenizer(file) == expected
    # (Pillow's `n_frames` seeks back to the current frame, 0, once)
    assert sorted(set(sought)) == sample_frame_indices(40, 5).tolist() == [0, 10, 20, 29, 39]
    sought.clear()
    frames = read_video_frames(file, num_frames=5, frame_sampling="first")
    assert sorted(set(sought)) == [0, 1, 2, 3, 4] and [np.asarray(f).tolist() for f in frames] == [
        np.asarray(f).tolist() for f in whole[:5]]
    save_gif(tmp_path / "short.gif", digit_clips(1, frames=3)[0])
    with pytest.raises(ValueError, match="video #1 has 3 frames but 5 frames are required"):
        tokenizer([file, tmp_path / "short.gif"])


def test_other_video_files_are_sampled_by_the_backend(saved, tmp_path, monkeypatch):
    from transformers import video_utils
    from transformers.utils import import_utils

    _, path = saved
    video = digit_clips(1, frames=30)[0]
    calls = []

    def load_video(file, num_frames=None, backend="pyav", sample_indices_fn=None):
        calls.append((file, num_frames, backend))
        indices = sample_indices_fn(video_utils.VideoMetadata(total_num_frames=len(video), fps=25))
        return video[indices], None

    monkeypatch.setattr(import_utils, "is_av_available", lambda: True)
    monkeypatch.setattr(video_utils, "load_video", load_video)
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    tokenizer = pipeline("video-tokenization", model=path)
    assert tokenizer(tmp_path / "clip.mp4") == tokenizer(video)
    assert calls == [(str(tmp_path / "clip.mp4"), 5, "pyav")]


def test_a_file_pillow_cannot_read_needs_a_video_backend(saved, tmp_path, monkeypatch):
    from transformers.utils import import_utils

    backends = (import_utils.is_av_available, import_utils.is_decord_available, import_utils.is_cv2_available,
                import_utils.is_torchcodec_available)
    if any(available() for available in backends):
        pytest.skip("a video backend is installed")
    # torchvision's `read_video` is deprecated and gone from recent releases: it is not a backend
    assert "torchvision" not in VIDEO_BACKENDS
    monkeypatch.setattr(import_utils, "is_torchvision_available", lambda: True)
    _, path = saved
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    tokenizer = pipeline("video-tokenization", model=path)
    with pytest.raises(ValueError, match=r"video #1: '.*clip\.mp4' is not a multi-frame image .* no video decoder"):
        tokenizer([digit_clips(1)[0], tmp_path / "clip.mp4"])
    with pytest.raises(FileNotFoundError, match="video #0: no file at"):
        tokenizer(tmp_path / "nothing.gif")


def test_errors_name_the_bad_item(saved):
    _, path = saved
    video_tokenizer = pipeline("video-tokenization", model=path)
    clips = digit_clips(3)
    with pytest.raises(ValueError, match="video #2 has 3 frames but 5 frames are required"):
        video_tokenizer([clips[0], clips[1], clips[2][:3]], batch_size=2)
    with pytest.raises(TypeError, match=r"video #1 is a single frame \(Image\)"):
        video_tokenizer([clips[0], Image.fromarray(clips[1][0])])
    with pytest.raises(ValueError, match="video #1 frame #0 has 4 channels"):
        list(video_tokenizer(clip for clip in [clips[0], np.zeros((5, 16, 16, 4), np.uint8)]))  # raised as it streams
    image_tokenizer = pipeline("image-tokenization", model=path)
    images = photographs(3)
    with pytest.raises(ValueError, match="image #2 has 4 channels, expected 3"):
        image_tokenizer([images[0], np.asarray(images[1]), np.zeros((16, 16, 4), np.uint8)])
    with pytest.raises(TypeError, match=r"image #1 is a dict; expected"):
        image_tokenizer([images[0], {"pixels": 1}])
    assert len(image_tokenizer(tuple(images))) == 3
