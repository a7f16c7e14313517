"""A saved folder carries its code: it loads with `trust_remote_code=True` in a fresh `python -I` interpreter, run from
another directory, where this package cannot be imported (as from a Hub repo made by `push_to_hub`): the Auto classes,
every pipeline from the model's folder and from a saved pipeline, with the same outputs as in the package.

Each test starts one such interpreter (several seconds each), so each groups all the checks of one model."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TINY
from transformers import AutoConfig, pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from modeling_hsanet import (
    HSANetConfig,
    HSANetForMolecularPropertyPrediction,
    HSANetProcessor,
    MolecularPropertyPredictionPipeline,
    MoleculeCaptioningPipeline,
)
from modeling_sweet import (
    ImageTokenizationPipeline,
    SweetImageProcessor,
    SweetTokenizerConfig,
    SweetTokenizerModel,
    SweetVideoProcessor,
    VideoTokenizationPipeline,
)
from tests.model_testers import HSANetForConditionalGenerationTester, tiny_text_processor

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]
TINY_SWEET = dict(image_size=16, patch_size=4, num_frames=5, temporal_patch_size=4, hidden_size=32,
                  num_attention_heads=2, intermediate_size=64, num_encoder_layers=1, num_query_layers=1,
                  num_temporal_layers=1, num_decoder_layers=2, num_spatial_queries=4, num_temporal_queries=8,
                  codebook_dim=16)
SWEET_SIZE = {"height": 16, "width": 16}
# the same pictures in both interpreters: two (16, 16, 3) images and one clip of 5 such frames, uint8
MAKE_PICTURES = """
import numpy as np
ramp = np.linspace(0, 255, 16 * 16 * 3).reshape(16, 16, 3)
images = [ramp.astype(np.uint8), (255 - ramp).astype(np.uint8)]
clip = [np.roll(ramp, 3 * t, axis=1).astype(np.uint8) for t in range(5)]
"""
# Run first in the isolated interpreter: this package (and the repository's other top-level packages) cannot be
# imported there, as where it is not installed; an editable install would otherwise make it importable. Nor can numba,
# an optional extra: the copied code runs without it (the pure-PyTorch scan, against the in-package numba kernel).
UNIMPORTABLE = """
import sys
for name in ("modeling_hsanet", "modeling_sweet", "conversion", "model_cards", "tests", "numba"):
    sys.modules[name] = None  # `import name` raises ModuleNotFoundError
"""


def run_isolated(code: str, folder) -> dict:
    """Run `code` with `python -I` (no PYTHONPATH, no script directory, no user site) in `folder`, with this package
    unimportable; `code` prints one JSON line, returned as a dict."""
    env = {**os.environ, "HF_MODULES_CACHE": str(folder / "modules"), "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-I", "-c", UNIMPORTABLE + code], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def registered_entries(*tasks: str) -> dict:
    """`custom_pipelines` entries as `Pipeline.save_pretrained` writes them, from the package's registrations."""
    entries = {}
    for task in tasks:
        info = PIPELINE_REGISTRY.supported_tasks[task]
        entries[task] = {"impl": f"{info['impl'].__module__.rpartition('.')[2]}.{info['impl'].__name__}",
                         "pt": [auto_class.__name__ for auto_class in info["pt"]], "type": info["type"]}
    return entries


def assert_remote(classes: dict) -> None:
    """Every class the isolated interpreter used came from the folder's code (`transformers_modules`)."""
    local = {name: module for name, module in classes.items() if not module.startswith("transformers_modules.")}
    assert not local, f"not loaded from the folder's code: {local}"


def save_property_checkpoint(tmp_path) -> dict:
    """A property-prediction folder (model + processor) and a saved `molecular-property-prediction` pipeline; checks
    what was written and returns the in-package outputs."""
    model = HSANetForMolecularPropertyPrediction(HSANetConfig(**TINY, num_labels=1)).eval()
    processor = HSANetProcessor()
    model.save_pretrained(tmp_path / "property")
    processor.save_pretrained(tmp_path / "property")
    assert {"modeling_hsanet.py", "configuration_hsanet.py", "featurization_hsanet.py", "processing_hsanet.py",
            "pipeline_hsanet.py"} <= set(os.listdir(tmp_path / "property"))
    config = json.loads((tmp_path / "property" / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_hsanet.HSANetConfig",
                                  "AutoModel": "modeling_hsanet.HSANetModel",
                                  "AutoModelForSequenceClassification":
                                      "modeling_hsanet.HSANetForMolecularPropertyPrediction"}
    assert config["custom_pipelines"] == registered_entries("molecular-property-prediction",
                                                            "molecular-feature-extraction")
    # In the package the registered pipeline serves the task, without trust_remote_code.
    predictor = pipeline("molecular-property-prediction", model=str(tmp_path / "property"))
    assert type(predictor) is MolecularPropertyPredictionPipeline
    predictor.save_pretrained(tmp_path / "property_pipeline")
    saved_config = json.loads((tmp_path / "property_pipeline" / "config.json").read_text())
    assert saved_config["custom_pipelines"] == registered_entries("molecular-property-prediction")
    assert "processor_config.json" in os.listdir(tmp_path / "property_pipeline")
    predictor.model.save_pretrained(tmp_path / "again")  # the model alone still lists every task it serves
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["custom_pipelines"] == config["custom_pipelines"]
    with torch.no_grad():
        inputs = processor(SMILES, return_tensors="pt")
        return {"logits": model(**inputs).logits.reshape(-1).tolist(),
                "embeddings": model.hsanet(**inputs).pooler_output.tolist()}


def save_captioning_checkpoint(tmp_path) -> dict:
    """A molecule-to-text folder (model + processor with its tokenizer) and a saved `molecule-captioning` pipeline;
    checks what was written and returns the in-package outputs."""
    model = HSANetForConditionalGenerationTester().make_model()
    processor = tiny_text_processor(model.config.num_graph_tokens)
    model.save_pretrained(tmp_path / "captioner")
    processor.save_pretrained(tmp_path / "captioner")
    config = json.loads((tmp_path / "captioner" / "config.json").read_text())
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_text_hsanet.HSANetForConditionalGeneration"
    assert config["custom_pipelines"] == registered_entries("molecular-feature-extraction", "molecule-captioning")
    captioner = pipeline("molecule-captioning", model=str(tmp_path / "captioner"))
    assert type(captioner) is MoleculeCaptioningPipeline
    texts = [result["generated_text"] for result in captioner(SMILES, max_new_tokens=6, batch_size=2)]
    assert any(texts), "the tiny model generates nothing: comparing texts would test nothing"
    captioner.save_pretrained(tmp_path / "captioner_pipeline")
    assert {"tokenizer_config.json", "processor_config.json"} <= set(os.listdir(tmp_path / "captioner_pipeline"))
    with torch.no_grad():  # left-padded prompts: the last position of every row is a real token
        return {"texts": texts, "logits": model(**processor(SMILES)).logits[:, -1].tolist()}


LOAD_PROPERTY = """
model = AutoModelForSequenceClassification.from_pretrained("property", trust_remote_code=True).eval()
base = AutoModel.from_pretrained("property", trust_remote_code=True).eval()
features = AutoFeatureExtractor.from_pretrained("property", trust_remote_code=True)
processor = AutoProcessor.from_pretrained("property", trust_remote_code=True)
predictor = pipeline("molecular-property-prediction", model="property", trust_remote_code=True)
extractor = pipeline("molecular-feature-extraction", model="property", trust_remote_code=True)
saved = pipeline(model="property_pipeline", trust_remote_code=True)  # the task is read from the saved config
with torch.no_grad():
    logits = model(**features(smiles, return_tensors="pt")).logits.reshape(-1).tolist()
    embeddings = base(**processor(smiles)).pooler_output.tolist()
saved.save_pretrained("resaved")  # saved again where only the folder's code is loaded
property_objects = dict(model=model, base=base, features=features, processor=processor, predictor=predictor,
                        extractor=extractor, saved=saved, saved_processor=saved.processor)
property_outputs = dict(
    classes={name: type(obj).__module__ for name, obj in property_objects.items()},
    names={name: type(obj).__name__ for name, obj in property_objects.items()}, saved_task=saved.task,
    logits=logits, embeddings=embeddings, scores=[result["score"] for result in predictor(smiles, batch_size=2)],
    pipeline_embeddings=[result["embedding"] for result in extractor(smiles)],
    saved_scores=[result["score"] for result in saved(smiles)], resaved_files=sorted(os.listdir("resaved")),
    resaved_pipelines=json.load(open("resaved/config.json"))["custom_pipelines"])
"""
LOAD_CAPTIONER = """
model = AutoModelForCausalLM.from_pretrained("captioner", trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained("captioner", trust_remote_code=True)
captioner = pipeline("molecule-captioning", model="captioner", trust_remote_code=True)
saved = pipeline(model="captioner_pipeline", trust_remote_code=True)
with torch.no_grad():
    logits = model(**processor(smiles)).logits[:, -1].tolist()
captioner_objects = dict(model=model, processor=processor, captioner=captioner, saved=saved,
                         saved_processor=saved.processor)
captioner_outputs = dict(
    classes={name: type(obj).__module__ for name, obj in captioner_objects.items()}, saved_task=saved.task,
    logits=logits, texts=[result["generated_text"] for result in captioner(smiles, max_new_tokens=6, batch_size=2)],
    saved_texts=[result["generated_text"] for result in saved(smiles, max_new_tokens=6)])
"""


def test_hsanet_folders_and_their_pipelines_load_as_remote_code(tmp_path):
    expected_property = save_property_checkpoint(tmp_path)
    expected_captioner = save_captioning_checkpoint(tmp_path)
    loaded = run_isolated(f"""
import json, os, torch
from transformers import (AutoFeatureExtractor, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification,
                          AutoProcessor, pipeline)
smiles = {SMILES!r}
""" + LOAD_PROPERTY + LOAD_CAPTIONER + """
print(json.dumps(dict(property=property_outputs, captioner=captioner_outputs)))
""", tmp_path)
    found, captioned = loaded["property"], loaded["captioner"]
    assert_remote(found["classes"])
    assert_remote(captioned["classes"])
    assert found["names"] == {"model": "HSANetForMolecularPropertyPrediction", "base": "HSANetModel",
                              "features": "HSANetFeatureExtractor", "processor": "HSANetProcessor",
                              "predictor": "MolecularPropertyPredictionPipeline",
                              "extractor": "MolecularFeatureExtractionPipeline",
                              "saved": "MolecularPropertyPredictionPipeline", "saved_processor": "HSANetProcessor"}
    assert found["saved_task"] == "molecular-property-prediction"
    assert found["resaved_pipelines"] == registered_entries("molecular-property-prediction")
    assert {"pipeline_hsanet.py", "processing_hsanet.py", "processor_config.json"} <= set(found["resaved_files"])
    for name, reference in (("logits", "logits"), ("scores", "logits"), ("saved_scores", "logits"),
                            ("embeddings", "embeddings"), ("pipeline_embeddings", "embeddings")):
        torch.testing.assert_close(torch.tensor(found[name]), torch.tensor(expected_property[reference]), atol=1e-5,
                                   rtol=1e-5, msg=lambda message, name=name: f"{name}: {message}")
    assert captioned["saved_task"] == "molecule-captioning"
    torch.testing.assert_close(torch.tensor(captioned["logits"]), torch.tensor(expected_captioner["logits"]),
                               atol=1e-4, rtol=1e-4)
    assert captioned["texts"] == expected_captioner["texts"] == captioned["saved_texts"]


def test_custom_pipelines_of_the_wrong_shape_raise_naming_the_field(tmp_path):
    HSANetConfig(**TINY).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "custom_pipelines": ["molecule-captioning"]}))
    with pytest.raises(ValueError, match="HSANetConfig: `custom_pipelines` must map each task"):
        AutoConfig.from_pretrained(tmp_path)


def test_sweet_folder_and_its_pipelines_load_as_remote_code(tmp_path):
    model = SweetTokenizerModel(SweetTokenizerConfig(**TINY_SWEET)).eval()
    model.save_pretrained(tmp_path / "sweet")
    SweetImageProcessor(size=SWEET_SIZE).save_pretrained(tmp_path / "sweet")
    SweetVideoProcessor(size=SWEET_SIZE, num_frames=5).save_pretrained(tmp_path / "sweet")
    config = json.loads((tmp_path / "sweet" / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_sweet.SweetTokenizerConfig",
                                  "AutoModel": "modeling_sweet.SweetTokenizerModel"}
    assert config["custom_pipelines"] == registered_entries("image-tokenization", "video-tokenization")
    video_config = json.loads((tmp_path / "sweet" / "video_preprocessor_config.json").read_text())
    assert video_config["auto_map"] == {"AutoVideoProcessor": "video_processing_sweet.SweetVideoProcessor"}
    assert {"video_processing_sweet.py", "image_processing_sweet.py", "pipeline_sweet.py"} <= set(
        os.listdir(tmp_path / "sweet"))
    pictures = {}
    exec(MAKE_PICTURES, pictures)
    image_tokenizer = pipeline("image-tokenization", model=str(tmp_path / "sweet"))
    video_tokenizer = pipeline("video-tokenization", model=str(tmp_path / "sweet"))
    assert type(image_tokenizer) is ImageTokenizationPipeline and type(video_tokenizer) is VideoTokenizationPipeline
    video_tokenizer.save_pretrained(tmp_path / "pipeline")
    assert "video_preprocessor_config.json" in os.listdir(tmp_path / "pipeline")
    expected = {"image_ids": [result["spatial_ids"] for result in image_tokenizer(pictures["images"])],
                "video": video_tokenizer(pictures["clip"])}
    pixel_values = SweetVideoProcessor(size=SWEET_SIZE, num_frames=5)(pictures["clip"])["pixel_values"]
    loaded = run_isolated(MAKE_PICTURES + """
import json, torch
from transformers import AutoImageProcessor, AutoModel, pipeline
from transformers.models.auto.video_processing_auto import AutoVideoProcessor
model = AutoModel.from_pretrained("sweet", trust_remote_code=True).eval()
image_processor = AutoImageProcessor.from_pretrained("sweet", trust_remote_code=True)
video_processor = AutoVideoProcessor.from_pretrained("sweet", trust_remote_code=True)
image_tokenizer = pipeline("image-tokenization", model="sweet", trust_remote_code=True)
video_tokenizer = pipeline("video-tokenization", model="sweet", trust_remote_code=True)
saved = pipeline(model="pipeline", trust_remote_code=True)
objects = dict(model=model, image_processor=image_processor, video_processor=video_processor,
               image_tokenizer=image_tokenizer, video_tokenizer=video_tokenizer, saved=saved,
               saved_video_processor=saved.video_processor)
video = video_tokenizer(clip)
print(json.dumps(dict(
    classes={name: type(obj).__module__ for name, obj in objects.items()},
    names={name: type(obj).__name__ for name, obj in objects.items()}, saved_task=saved.task,
    pixel_values=video_processor(clip)["pixel_values"].tolist(),
    image_ids=[result["spatial_ids"] for result in image_tokenizer(images)],
    video={key: video[key] for key in ("spatial_ids", "temporal_ids")}, saved_video=saved(clip)["temporal_ids"])))
""", tmp_path)
    assert_remote(loaded["classes"])
    assert loaded["names"]["video_processor"] == "SweetVideoProcessor"
    assert loaded["names"]["saved_video_processor"] == "SweetVideoProcessor"
    assert loaded["names"]["image_processor"] == "SweetImageProcessor"
    assert loaded["saved_task"] == "video-tokenization"
    torch.testing.assert_close(torch.tensor(loaded["pixel_values"]), pixel_values, atol=1e-6, rtol=1e-6)
    # token ids are discrete: the same code on the same pixels picks the same codebook entries
    assert loaded["image_ids"] == expected["image_ids"]
    assert loaded["video"]["spatial_ids"] == expected["video"]["spatial_ids"]
    assert loaded["video"]["temporal_ids"] == loaded["saved_video"] == expected["video"]["temporal_ids"]
    assert np.asarray(expected["image_ids"]).size > 0
