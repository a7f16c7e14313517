"""Fuzz tests (hypothesis, derandomised, a bounded number of examples): every input either works or raises the
package's documented error, a `ValueError` / `TypeError` whose message names the item, never another exception, a
hang or a crash.

- HSA-Net: random strings, random characters of the SMILES alphabet, random non-strings, random valid SMILES (RDKit's
  c-Met ligands written with `Chem.MolToSmiles(doRandom=True)`) through the feature extractor, the processor (with and
  without a tokenizer) and the two molecular pipelines; a randomised SMILES gives the canonical SMILES' graph and
  embedding.
- SweetTokenizer: random shapes, dtypes, values and layouts (NumPy, torch, PIL) through the image and video processors
  and the `image-tokenization` / `video-tokenization` pipelines; what works has the documented shape and range.
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rdkit import Chem, rdBase
from transformers import pipeline

from modeling_hsanet import HSANetConfig, HSANetForMolecularPropertyPrediction, HSANetProcessor
from modeling_hsanet.data_hsanet import load_cmet_ligands
from modeling_sweet import SweetImageProcessor, SweetTokenizerConfig, SweetTokenizerModel, SweetVideoProcessor
from tests.model_testers import HSANET_TINY, SWEET_TINY, tiny_text_processor


def fuzz(max_examples: int):
    """Hypothesis settings of every test here: derandomised (the same examples on every run), `max_examples` of
    them, no deadline (a loaded machine is slow, not wrong), no example database."""
    return settings(derandomize=True, max_examples=max_examples, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])

SMILES_ALPHABET = "CNOSPFIBrclnosp[]()=#@+-\\/%0123456789.*:$Hh "
SIZE = 8  # the Sweet processors' output side in these tests


def documented(call, *names: str):
    """`call()`'s result, or None when it raised the package's documented error: a `ValueError` / `TypeError` with a
    message holding one of `names` (the item it is about). Anything else propagates and fails the test."""
    try:
        result = call()
    except (ValueError, TypeError) as error:
        message = str(error)
        assert message.strip(), f"{type(error).__name__} without a message"
        assert not names or any(name in message for name in names), f"the error names no item: {message}"
        event(f"documented {type(error).__name__}")  # `pytest --hypothesis-show-statistics` shows the mix
        return None
    event("works")
    return result


# -- HSA-Net --------------------------------------------------------------------------------------------------------

CMET = [ligand.smiles for ligand in load_cmet_ligands()]


@st.composite
def mutated_smiles(draw) -> str:
    """A c-Met ligand's SMILES with one character deleted, inserted or replaced (often still valid, often not)."""
    smiles = draw(st.sampled_from(CMET))
    position = draw(st.integers(0, len(smiles) - 1))
    character = draw(st.sampled_from(SMILES_ALPHABET))
    edit = draw(st.sampled_from(["delete", "insert", "replace"]))
    tail = smiles[position + 1:] if edit != "insert" else smiles[position:]
    return smiles[:position] + ("" if edit == "delete" else character) + tail


any_text = st.one_of(st.text(max_size=40), st.text(alphabet=SMILES_ALPHABET, max_size=40), mutated_smiles())
not_a_string = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=8), st.lists(st.integers(),
                                                                                                 max_size=2))


@st.composite
def random_valid_smiles(draw) -> tuple[str, str]:
    """(canonical SMILES of a c-Met ligand, the same molecule in a random atom order) - RDKit's random writer, seeded
    from the example so that a failure replays."""
    smiles = CMET[draw(st.integers(0, len(CMET) - 1))]
    rdBase.SeedRandomNumberGenerator(draw(st.integers(0, 2**31 - 1)))
    return smiles, Chem.MolToSmiles(Chem.MolFromSmiles(smiles), doRandom=True)


@pytest.fixture(scope="module")
def hsanet_path(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("hsanet")
    HSANetForMolecularPropertyPrediction(HSANetConfig(**HSANET_TINY, num_labels=1)).eval().save_pretrained(path)
    HSANetProcessor().save_pretrained(path)
    return str(path)


def check_graph_batch(batch, count: int) -> None:
    """A graph batch of `count` molecules is consistent: atoms add up, edges point at existing atoms."""
    num_atoms = batch["num_atoms"]
    assert num_atoms.shape == (count,) and (num_atoms >= 1).all()
    assert batch["atom_features"].shape[0] == int(num_atoms.sum())
    edges = batch["edge_index"]
    assert edges.shape[0] == 2 and edges.shape[1] == batch["bond_features"].shape[0]
    assert edges.numel() == 0 or (0 <= int(edges.min()) and int(edges.max()) < int(num_atoms.sum()))


@fuzz(max_examples=120)
@given(smiles=any_text)
def test_random_strings_through_the_processor(smiles):
    processor = HSANetProcessor()
    batch = documented(lambda: processor(smiles), "SMILES #0")
    if batch is not None:
        check_graph_batch(batch, 1)


@fuzz(max_examples=40)
@given(items=st.lists(st.one_of(any_text, not_a_string, st.sampled_from(CMET)), min_size=1, max_size=5))
def test_random_lists_through_the_processor_name_the_bad_item(items):
    processor = HSANetProcessor()
    batch = documented(lambda: processor(items), *(f"SMILES #{index}" for index in range(len(items))))
    if batch is not None:
        check_graph_batch(batch, len(items))


@fuzz(max_examples=30)
@given(smiles=st.one_of(any_text, st.sampled_from(CMET)), instruction=st.one_of(any_text, st.just("<graph>"),
                                                                                not_a_string))
def test_random_prompts_through_the_processor_with_a_tokenizer(text_processor, smiles, instruction):
    batch = documented(lambda: text_processor([smiles], text=[instruction]), "SMILES #0", "prompt #0", "text #0")
    if batch is not None:
        check_graph_batch(batch, 1)
        graph_token_id = text_processor.graph_token_id
        assert int((batch["input_ids"] == graph_token_id).sum()) == text_processor.num_graph_tokens


@pytest.fixture(scope="module")
def text_processor():
    return tiny_text_processor(num_graph_tokens=6)


@fuzz(max_examples=25)
@given(pair=random_valid_smiles())
def test_random_valid_smiles_give_the_canonical_graph(pair):
    canonical, randomised = pair
    processor = HSANetProcessor()
    expected, actual = processor(canonical), processor(randomised)
    assert int(actual["num_atoms"][0]) == int(expected["num_atoms"][0])
    torch.testing.assert_close(actual["motif_counts"], expected["motif_counts"])
    # the same atoms (as a multiset of feature rows) and the same number of bonds
    rows = [sorted(map(tuple, batch["atom_features"].tolist())) for batch in (actual, expected)]
    assert rows[0] == rows[1]
    assert actual["edge_index"].shape == expected["edge_index"].shape


@fuzz(max_examples=15)
@given(pair=random_valid_smiles())
def test_random_valid_smiles_through_the_pipelines(hsanet_path, pair):
    canonical, randomised = pair
    predictor = _pipeline("molecular-property-prediction", hsanet_path)
    extractor = _pipeline("molecular-feature-extraction", hsanet_path)
    scores = predictor([canonical, randomised], batch_size=2)
    assert scores[0]["score"] == pytest.approx(scores[1]["score"], abs=1e-4)
    embeddings = extractor([canonical, randomised], return_tensors=True)
    torch.testing.assert_close(embeddings[1]["embedding"], embeddings[0]["embedding"], atol=1e-4, rtol=1e-4)


@fuzz(max_examples=40)
@given(items=st.lists(st.one_of(st.sampled_from(CMET), st.sampled_from(CMET), mutated_smiles(), any_text,
                                not_a_string), min_size=1, max_size=4),
       batch_size=st.integers(1, 3))
def test_random_inputs_through_the_molecular_pipelines(hsanet_path, items, batch_size):
    predictor = _pipeline("molecular-property-prediction", hsanet_path)
    names = [f"SMILES #{index}" for index in range(len(items))]
    results = documented(lambda: predictor(items, batch_size=batch_size), *names)
    if results is not None:
        assert len(results) == len(items) and all(np.isfinite(result["score"]) for result in results)


_PIPELINES: dict = {}


def _pipeline(task: str, path: str):
    """One pipeline per task and model for the whole module (hypothesis calls a test many times)."""
    if (task, path) not in _PIPELINES:
        _PIPELINES[task, path] = pipeline(task, model=path)
    return _PIPELINES[task, path]


# -- SweetTokenizer -------------------------------------------------------------------------------------------------

DTYPES = ["uint8", "int8", "int16", "int32", "int64", "uint16", "float16", "float32", "float64", "bool", "complex64"]
TORCH_DTYPES = [torch.uint8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16, torch.float32,
                torch.float64, torch.bool]
PIL_MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LA", "I", "F", "I;16"]


@st.composite
def random_array(draw, min_dims: int = 0, max_dims: int = 4, max_side: int = 12) -> np.ndarray:
    """An array of a random shape (sides 0-`max_side`, 1-4 at channel-like positions), dtype and values (finite or
    not, in range or not)."""
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=min_dims, max_size=max_dims)))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 255.0, 1e6]))
    values = rng.standard_normal(shape) * scale + draw(st.sampled_from([0.0, 0.5, 128.0]))
    if dtype.kind == "f" and values.size and draw(st.booleans()):
        values.flat[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = np.clip(values, info.min, info.max)
    with np.errstate(invalid="ignore", over="ignore"):
        return values.astype(dtype)


@st.composite
def valid_image(draw):
    """An image the processors take: uint8 (H, W, 3), float (3, H, W) in [0, 1], (H, W) grayscale or a PIL image."""
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["uint8", "float", "gray", "pil", "tensor"]))
    if kind == "float":
        return rng.random((3, height, width), dtype=np.float32)
    if kind == "gray":
        return rng.integers(0, 256, (height, width)).astype(np.int64)
    if kind == "tensor":
        return torch.from_numpy(rng.random((height, width, 3))).to(torch.bfloat16)
    array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return PIL.Image.fromarray(array) if kind == "pil" else array


@st.composite
def wild_image(draw):
    """One image-like input: a NumPy array, a torch tensor or a PIL image of a random mode."""
    kind = draw(st.sampled_from(["numpy", "numpy", "torch", "pil"]))
    if kind == "pil":
        mode = draw(st.sampled_from(PIL_MODES))
        width, height = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        image = PIL.Image.new(mode, (width, height))
        if mode in ("L", "P", "1"):
            image.putdata(rng.integers(0, 255, width * height).tolist())
        return image
    array = draw(random_array(min_dims=1, max_dims=4))
    if kind == "torch":
        dtype = draw(st.sampled_from(TORCH_DTYPES))
        real = array.real if np.iscomplexobj(array) else array
        return torch.from_numpy(np.nan_to_num(real.astype(np.float64), posinf=1e9, neginf=-1e9)).to(dtype)
    return array


random_image = st.one_of(valid_image(), wild_image())


def check_pixel_values(pixel_values: torch.Tensor, shape: tuple) -> None:
    assert tuple(pixel_values.shape) == shape and pixel_values.dtype == torch.float32
    assert torch.isfinite(pixel_values).all()


@fuzz(max_examples=150)
@given(image=random_image, num_channels=st.sampled_from([1, 3]), channels_first=st.sampled_from([None, True, False]))
def test_random_images_through_the_image_processor(image, num_channels, channels_first):
    processor = SweetImageProcessor(size={"height": SIZE, "width": SIZE}, num_channels=num_channels)
    layout = {} if channels_first is None else {
        "input_data_format": "channels_first" if channels_first else "channels_last"}
    output = documented(lambda: processor(image, **layout), "image #", "images")
    if output is not None:
        batch = output["pixel_values"].shape[0]
        check_pixel_values(output["pixel_values"], (batch, num_channels, SIZE, SIZE))


@fuzz(max_examples=40)
@given(images=st.lists(random_image, min_size=1, max_size=3), do_resize=st.booleans())
def test_random_image_lists_name_the_bad_image(images, do_resize):
    processor = SweetImageProcessor(size={"height": SIZE, "width": SIZE}, do_resize=do_resize)
    output = documented(lambda: processor(images), *(f"image #{index}" for index in range(len(images))))
    if output is not None:
        assert output["pixel_values"].shape[:2] == (len(images), 3)
        assert torch.isfinite(output["pixel_values"]).all()


@st.composite
def random_video(draw):
    """A video-like input: a 4-d / 5-d array or tensor, a list of random frames, or a list of such videos."""
    kind = draw(st.sampled_from(["valid", "array", "tensor", "frames", "videos"]))
    if kind == "valid":  # 5-9 frames of one size, uint8 (frames, H, W, 3) or float (frames, 3, H, W) in [0, 1]
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        frames, height, width = draw(st.integers(5, 9)), draw(st.integers(1, 10)), draw(st.integers(1, 10))
        if draw(st.booleans()):
            return rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
        return [torch.from_numpy(rng.random((3, height, width), dtype=np.float32)) for _ in range(frames)]
    if kind in ("array", "tensor"):
        frames = draw(st.integers(0, 9))
        side = draw(st.integers(1, 10))
        layout = draw(st.sampled_from([(frames, side, side, 3), (frames, 3, side, side), (frames, side, side),
                                       (2, frames, side, side, 3)]))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        dtype = draw(st.sampled_from(["uint8", "float32", "int64", "float64"]))
        array = (rng.random(layout) * draw(st.sampled_from([1.0, 255.0, 1e4]))).astype(dtype)
        return torch.from_numpy(array) if kind == "tensor" else array
    video = draw(st.lists(random_image, min_size=0, max_size=7))
    if kind == "frames":
        return video
    return [video, draw(st.lists(random_image, min_size=0, max_size=6))]


@fuzz(max_examples=80)
@given(video=random_video(), num_frames=st.integers(1, 5), frame_sampling=st.sampled_from(["uniform", "first"]))
def test_random_videos_through_the_video_processor(video, num_frames, frame_sampling):
    processor = SweetVideoProcessor(size={"height": SIZE, "width": SIZE}, num_frames=num_frames,
                                    frame_sampling=frame_sampling)
    output = documented(lambda: processor(video), "video #", "videos")
    if output is not None:
        batch = output["pixel_values"].shape[0]
        check_pixel_values(output["pixel_values"], (batch, 3, num_frames, SIZE, SIZE))


@pytest.fixture(scope="module")
def sweet_path(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sweet")
    config = SweetTokenizerConfig(**SWEET_TINY)
    SweetTokenizerModel(config).eval().save_pretrained(path)
    size = {"height": config.image_size, "width": config.image_size}
    SweetImageProcessor(size=size).save_pretrained(path)
    SweetVideoProcessor(size=size, num_frames=config.num_frames).save_pretrained(path)
    return str(path), config


@fuzz(max_examples=25)
@given(images=st.one_of(random_image, st.lists(random_image, min_size=1, max_size=3)))
def test_random_images_through_the_image_tokenization_pipeline(sweet_path, images):
    path, config = sweet_path
    tokenizer = _pipeline("image-tokenization", path)
    results = documented(lambda: tokenizer(images, batch_size=2), "image #", "image-tokenization:")
    if results is not None:
        results = results if isinstance(results, list) else [results]
        batch = isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4  # documented: one per image
        assert len(results) == (len(images) if isinstance(images, list) or batch else 1)
        for result in results:
            ids = torch.tensor(result["spatial_ids"])
            assert ids.shape[0] == config.num_spatial_queries
            assert ((0 <= ids) & (ids < config.spatial_codebook_size)).all()


@fuzz(max_examples=15)
@given(video=random_video())
def test_random_videos_through_the_video_tokenization_pipeline(sweet_path, video):
    path, config = sweet_path
    tokenizer = _pipeline("video-tokenization", path)
    results = documented(lambda: tokenizer(video), "video #", "videos", "video-tokenization:")
    if results is not None:
        for result in results if isinstance(results, list) else [results]:
            ids = torch.tensor(result["temporal_ids"])
            assert ids.shape[0] == config.num_temporal_queries
            assert ((0 <= ids) & (ids < config.temporal_codebook_size)).all()


def test_a_bad_image_in_a_batch_is_named_by_its_input_index(sweet_path):
    """Found by the fuzz tests: float pixels in 0-255 pass the processor (float images are read as 0-1) and were
    rejected by the model in `_forward`, as "pixel_values item #0", the item's position in its batch. The pipeline
    now runs the model's input checks per input, so the error names the input."""
    path, _ = sweet_path
    tokenizer = _pipeline("image-tokenization", path)
    good = np.full((8, 8, 3), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"^image #2: pixel_values item #0 has values in \[254.5, 254.5\]"):
        tokenizer([good, good, np.full((8, 8, 3), 255.0, np.float32)], batch_size=2)
    assert len(tokenizer([good, good, good], batch_size=2)) == 3


# -- hostile settings -----------------------------------------------------------------------------------------------

any_value = st.one_of(st.none(), st.booleans(), st.integers(-3, 64), st.integers(min_value=-(2**70), max_value=2**70),
                      st.floats(), st.text(max_size=8), st.lists(st.integers(0, 8), max_size=3),
                      st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@st.composite
def hostile_fields(draw, config_class, tiny: dict) -> dict:
    """The tiny config's fields, 1-4 of its own `__init__` arguments (or `num_labels`) replaced by random values."""
    import inspect

    names = [name for name in inspect.signature(config_class.__init__).parameters if name not in ("self", "kwargs")]
    replaced = draw(st.lists(st.sampled_from(names + ["num_labels"]), min_size=1, max_size=4, unique=True))
    return {**tiny, **{name: draw(any_value) for name in replaced}}, replaced


@fuzz(max_examples=60)
@given(data=st.data(), kind=st.sampled_from(["hsanet", "sweet"]))
def test_random_config_fields_work_or_name_a_field(data, kind):
    config_class, tiny = (HSANetConfig, HSANET_TINY) if kind == "hsanet" else (SweetTokenizerConfig, SWEET_TINY)
    fields, replaced = data.draw(hostile_fields(config_class, tiny))
    config = documented(lambda: config_class(**fields), *replaced)
    if config is not None:  # what is accepted saves and loads
        assert type(config).from_dict(config.to_dict()).to_dict() == config.to_dict()


@fuzz(max_examples=60)
@given(settings_=st.dictionaries(
    st.sampled_from(["size", "resample", "rescale_factor", "image_mean", "image_std", "do_resize", "do_rescale",
                     "do_normalize", "num_channels"]),
    st.one_of(any_value, st.fixed_dictionaries({"height": st.integers(-2, 2**40), "width": st.integers(-2, 40)})),
    min_size=1, max_size=3), per_call=st.booleans())
def test_random_image_processor_settings_work_or_name_the_setting(settings_, per_call):
    image = np.zeros((6, 6, 3), np.uint8)
    if per_call:
        processor = SweetImageProcessor(size={"height": SIZE, "width": SIZE})
        output = documented(lambda: processor(image, **settings_), *settings_, "image #0")
    else:
        output = documented(lambda: SweetImageProcessor(**settings_)(image), *settings_, "image #0")
    if output is not None:
        assert torch.isfinite(output["pixel_values"]).all()
        assert output["pixel_values"].numel() <= 3 * 8192 * 8192
