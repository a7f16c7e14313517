"""Checks the model cards that `model_cards.render_model_card` renders from the templates in model_cards/: metadata
that huggingface_hub reads, the sections, the citations, the ```python blocks (they compile; every pipeline task and
Auto class they use is registered by this repository) and the evaluation read from the demos' result files.

The blocks are compiled here; tests/test_push_to_hub.py runs them against pushed tiny models.
"""

import ast
import importlib
import pathlib
import re

import pytest
import torch
from huggingface_hub import ModelCard
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.auto.feature_extraction_auto import FEATURE_EXTRACTOR_MAPPING
from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING
from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
from transformers.models.auto.video_processing_auto import VIDEO_PROCESSOR_MAPPING
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils.import_utils import DummyObject

import model_cards
import modeling_hsanet
import modeling_sweet
from model_cards import ModelCardError, read_result_file, render_model_card
from tests.model_testers import HSANET_TINY, SWEET_TINY, HSANetForConditionalGenerationTester, tiny_text_processor

ROOT = pathlib.Path(__file__).resolve().parents[1]
CARDS_DIR = ROOT / "model_cards"
PYPROJECT_LICENSE = re.search(r'^license\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
REPO_ID = "some-user/some-model"

# pipeline_tag must be a Hub task (huggingface.js packages/tasks/src/pipelines.ts); this repository's own pipeline
# tasks are not Hub tasks, so they go in `tags`. One entry per kind of pushed object (model_cards.VARIANTS).
CARDS = {
    "property": dict(
        pipeline_tag="graph-ml",
        tags={"hsanet", "molecular-property-prediction", "molecular-feature-extraction"},
        tasks={"molecular-property-prediction", "molecular-feature-extraction"},
        package="modeling_hsanet",
        config_class=modeling_hsanet.HSANetConfig,
        arxiv="2508.08334",
    ),
    "encoder": dict(
        pipeline_tag="graph-ml",
        tags={"hsanet", "molecular-feature-extraction"},
        tasks={"molecular-feature-extraction"},
        package="modeling_hsanet",
        config_class=modeling_hsanet.HSANetConfig,
        arxiv="2508.08334",
    ),
    "captioning": dict(
        pipeline_tag="text-generation",
        tags={"hsanet", "molecule-captioning"},
        tasks={"molecule-captioning"},
        package="modeling_hsanet",
        config_class=modeling_hsanet.HSANetConfig,
        arxiv="2508.08334",
    ),
    "tokenizer": dict(
        pipeline_tag=None,  # no Hub task fits a visual tokenizer
        tags={"sweet-tokenizer", "image-tokenization", "video-tokenization"},
        tasks={"image-tokenization", "video-tokenization"},
        package="modeling_sweet",
        config_class=modeling_sweet.SweetTokenizerConfig,
        arxiv="2412.10443",
    ),
}
SECTIONS = ("Model description", "Intended uses & limitations", "How to use", "Training data and procedure",
            "Evaluation", "Citation")
# Mappings that say which configs an Auto class knows (model Auto classes carry their own `_model_mapping`).
AUTO_MAPPINGS = {
    "AutoProcessor": PROCESSOR_MAPPING,
    "AutoFeatureExtractor": FEATURE_EXTRACTOR_MAPPING,
    "AutoImageProcessor": IMAGE_PROCESSOR_MAPPING,
    "AutoVideoProcessor": VIDEO_PROCESSOR_MAPPING,
}


@pytest.fixture(scope="module")
def pushed_objects():
    """One tiny object per card variant, as `push_to_hub` sees them."""
    torch.manual_seed(0)
    captioning = modeling_hsanet.HSANetForConditionalGeneration(HSANetForConditionalGenerationTester().get_config())
    return {
        "property": modeling_hsanet.HSANetForMolecularPropertyPrediction(modeling_hsanet.HSANetConfig(**HSANET_TINY)),
        "encoder": modeling_hsanet.HSANetModel(modeling_hsanet.HSANetConfig(**HSANET_TINY)),
        "captioning": captioning,
        "tokenizer": modeling_sweet.SweetTokenizerModel(modeling_sweet.SweetTokenizerConfig(**SWEET_TINY)),
    }


@pytest.fixture(scope="module")
def cards(pushed_objects):
    """The rendered cards, without result files, as the Hub stores them (text) and reads them back."""
    return {name: ModelCard(str(render_model_card(obj, REPO_ID, results=False)))
            for name, obj in pushed_objects.items()}


def _python_blocks(card: ModelCard) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card.content, flags=re.DOTALL)


def _section(card: ModelCard, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", card.content, flags=re.M | re.DOTALL)
    assert match, f"no '## {title}' section"
    return match.group(1)


def _imports(tree: ast.AST) -> dict[str, str]:
    """Name bound by `from module import name` -> module."""
    return {alias.asname or alias.name: node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            for alias in node.names}


def _imported_modules(tree: ast.AST) -> set[str]:
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return {module.split(".")[0] for module in modules if module}


def _pipeline_tasks(tree: ast.AST) -> set[str]:
    tasks = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "pipeline":
            task = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "task"), None)
            assert isinstance(task, ast.Constant), f"pipeline() without a literal task: {ast.unparse(node)}"
            tasks.add(task.value)
    return tasks


def _auto_class_knows(auto_name: str, auto_class, config_class) -> bool:
    if auto_name == "AutoConfig":
        return CONFIG_MAPPING[config_class.model_type] is config_class
    mapping = getattr(auto_class, "_model_mapping", None) or AUTO_MAPPINGS[auto_name]
    return config_class in mapping


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_metadata(name, cards):
    expected = CARDS[name]
    card = cards[name]
    data = card.data
    assert data.license == PYPROJECT_LICENSE.lower()  # the package's license (SPDX "Apache-2.0" -> Hub "apache-2.0")
    assert data.library_name == "transformers"
    assert data.pipeline_tag == expected["pipeline_tag"]
    assert data.pipeline_tag not in expected["tasks"]
    assert expected["tags"] <= set(data.tags or ())
    assert data.eval_results is None and data.datasets is None  # no result file: no numbers, no data named
    assert card.content.split("---\n", 2)[2].startswith(model_cards.CARD_MARKER)  # front matter, then the marker
    assert ModelCard(str(card)).data.to_dict() == data.to_dict()  # round-trips
    body = re.sub(r"```bibtex\n.*?```", "", card.content, flags=re.DOTALL)  # BibTeX braces are not template fields
    assert not re.search(r"\{\{|\{%|<your-namespace>", body)  # every template field was filled


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_sections(name, cards):
    for title in SECTIONS:
        assert _section(cards[name], title).strip(), f"{name}: section '{title}' is empty"
    citation = _section(cards[name], "Citation")
    assert "```bibtex" in citation and CARDS[name]["arxiv"] in citation
    evaluation = _section(cards[name], "Evaluation")
    assert "no numbers" in evaluation and "|" not in evaluation and not re.search(r"\d+\.\d+", evaluation)


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_python_blocks_compile_and_use_registered_names(name, cards):
    expected = CARDS[name]
    blocks = _python_blocks(cards[name])
    assert blocks, f"{name} has no ```python block"
    assert f'checkpoint = "{REPO_ID}"' in blocks[0]
    tasks = set()
    for index, code in enumerate(blocks):
        tree = compile(code, f"{name} block {index}", "exec", flags=ast.PyCF_ONLY_AST)
        compile(tree, f"{name} block {index}", "exec")
        assert expected["package"] in _imported_modules(tree), f"{name} block {index} does not import the package"
        imports = _imports(tree)
        for auto_name in sorted(set(re.findall(r"\bAuto[A-Za-z]+\b", code))):
            module = imports.get(auto_name)
            assert module and module.startswith("transformers"), f"{auto_name} is not imported from transformers"
            auto_class = getattr(importlib.import_module(module), auto_name)
            # a placeholder for a missing backend (e.g. `from transformers import AutoVideoProcessor` without
            # torchvision) imports fine but fails when called
            assert not isinstance(auto_class, DummyObject), f"{module}.{auto_name} is a placeholder here"
            assert _auto_class_knows(auto_name, auto_class, expected["config_class"]), (
                f"{auto_name} has no {expected['config_class'].__name__} registered")
        tasks |= _pipeline_tasks(tree)
    assert tasks == expected["tasks"]
    assert tasks <= set(PIPELINE_REGISTRY.get_supported_tasks())


# The columns the renderer reads, in the headers the demos write (the result files are the demos' output).
RESULT_HEADERS = {
    "examples/run_demo.py": "| model | test RMSE | test R² | train time (s) |",
    "examples/run_sweet_demo.py": "| test data | tokenizer | tokens / item | PSNR (dB) | SSIM |",
}


@pytest.mark.parametrize("script", sorted(RESULT_HEADERS))
def test_the_demos_still_write_the_columns_the_renderer_reads(script):
    assert RESULT_HEADERS[script] in (ROOT / script).read_text()


def _write_results(path, header: str, rows: list[list], description="demo run, 2026-11-25, x86_64 CPU") -> None:
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    lines = [description, "", header + (" codebook usage |" if "SSIM" in header else ""),
             "|" + "---|" * (len(columns) + ("SSIM" in header))]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    path.write_text("\n".join(lines) + "\n")


def test_property_card_takes_its_own_row_from_the_result_file(pushed_objects, tmp_path):
    results = tmp_path / "results.md"
    _write_results(results, RESULT_HEADERS["examples/run_demo.py"], [
        ["Morgan FP (r=2, 2048 bits) + random forest (500 trees)", 0.687, 0.503, 6],
        ["HSA-Net (adaptive HAP + SAF)", 0.593, 0.641, 120],
        ["ablation: cross-attention only", 0.571, 0.667, 45],
    ])
    model = pushed_objects["property"]
    card = ModelCard(str(render_model_card(model, REPO_ID, results=results)))
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == pytest.approx(
        {"rmse": 0.593, "r_squared": 0.641})
    assert {r.dataset_split for r in card.data.eval_results} == {"test"} and card.data.datasets
    evaluation = _section(card, "Evaluation")
    assert "demo run, 2026-11-25" in evaluation and "| **0.593** | **0.641** |" in evaluation
    assert "| 0.687 | 0.503 |" in evaluation  # the baselines stay in the body, not in eval_results

    ablation = modeling_hsanet.HSANetForMolecularPropertyPrediction(
        modeling_hsanet.HSANetConfig(**HSANET_TINY, projector_mode="cross_attention"))
    assert {r.metric_type: r.metric_value for r in render_model_card(ablation, REPO_ID, results=results)
            .data.eval_results} == pytest.approx({"rmse": 0.571, "r_squared": 0.667})
    mlp = modeling_hsanet.HSANetForMolecularPropertyPrediction(
        modeling_hsanet.HSANetConfig(**HSANET_TINY, fusion="mlp"))  # no row of the file is this configuration
    assert render_model_card(mlp, REPO_ID, results=results).data.eval_results is None


def test_sweet_card_takes_the_sweettokenizer_rows(pushed_objects, tmp_path):
    results = tmp_path / "sweet_results.md"
    _write_results(results, RESULT_HEADERS["examples/run_sweet_demo.py"], [
        ["digits (200 images)", "SweetTokenizer", 16, 18.31, 0.671, "17 / 7,476"],
        ["digits (200 images)", "VQModel", 64, 20.72, 0.842, "57 / 8,192"],
        ["moving digits (32 clips)", "SweetTokenizer", "272 (16 + 256)", 15.02, 0.298, "13 spatial"],
    ])
    card = ModelCard(str(render_model_card(pushed_objects["tokenizer"], REPO_ID, results=results)))
    found = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert found == pytest.approx({("digits (200 images)", "psnr"): 18.31, ("digits (200 images)", "ssim"): 0.671,
                                   ("moving digits (32 clips)", "psnr"): 15.02,
                                   ("moving digits (32 clips)", "ssim"): 0.298})
    assert "| 20.72 |" in _section(card, "Evaluation")  # VQModel: a baseline row of the body


def test_result_file_errors_name_the_file_and_line(pushed_objects, tmp_path):
    results, table = tmp_path / "results.md", "run\n\n| model | test RMSE | test R² |\n|---|---|---|\n"
    results.write_text(table + "| HSA-Net (adaptive HAP + SAF) | 0.6 |\n")
    with pytest.raises(ModelCardError, match=r"results.md, line 5: 2 cells"):
        read_result_file(results)
    results.write_text(table + "| HSA-Net (adaptive HAP + SAF) | n/a | 1 |\n")
    with pytest.raises(ModelCardError, match=r"column 'test RMSE' holds 'n/a'"):
        render_model_card(pushed_objects["property"], REPO_ID, results=results)
    with pytest.raises(ModelCardError, match="no model card for Linear"):
        render_model_card(torch.nn.Linear(1, 1), REPO_ID)


def test_processor_cards(pushed_objects):
    captioning = render_model_card(tiny_text_processor(4), REPO_ID)
    assert captioning.data.pipeline_tag == "text-generation" and "processor" in captioning.content
    assert render_model_card(modeling_hsanet.HSANetProcessor(), REPO_ID).data.pipeline_tag == "graph-ml"
    assert "sweet-tokenizer" in render_model_card(modeling_sweet.SweetVideoProcessor(), REPO_ID).data.tags
