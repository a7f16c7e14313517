"""Model cards for the Hub, rendered from the Jinja templates of this folder with `huggingface_hub.ModelCard`.

`render_model_card(obj, repo_id)` builds the card of a model or processor of this repository: the metadata
(`library_name`, `pipeline_tag`, license, tags, metrics, datasets and `eval_results` when a result file is found) and
the body of `hsanet.md` / `sweet_tokenizer.md`, with the part that depends on the class (how to use it, what it was
trained on, limitations) and the evaluation read from the result files that the demos write. Without a result file
the card has no `eval_results` and its evaluation section gives no number.

`card_for_push(obj, repo_id, existing)` decides which card a `push_to_hub` uploads (the models' and processors'
`push_to_hub` call it when this package is importable): a card already in the repository that this module did not
write is kept; a card that it wrote (the marker line) or transformers' generic card is replaced by a fresh rendering,
except by a processor, which keeps the card that a model push wrote.

This package sits on top of the model packages: it reads objects' class names and configs and imports neither model
package, so the models can import it lazily without a cycle.
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATES_DIR = Path(__file__).resolve().parent
LICENSE = "apache-2.0"  # the package's license (pyproject.toml "Apache-2.0"; tests/test_model_cards.py checks)
LIBRARY_NAME = "transformers"
# First line of every rendered card's body: how a later push recognises a card it may replace.
CARD_MARKER = ("<!-- Rendered by model_cards.render_model_card (hsanet-sweet). Delete this line to keep your own "
               "edits: a later push_to_hub then leaves the card as it is. -->")
# transformers' generic card (`create_and_tag_model_card`): replaced, it says nothing about the model.
TRANSFORMERS_DEFAULT_CARD_TEXT = "This model card has been automatically generated."

HSANET_TAGS = ("hsanet", "chemistry", "molecules", "smiles", "graph-neural-network", "gin", "mamba",
               "mixture-of-experts")
SWEET_TAGS = ("sweet-tokenizer", "image-tokenization", "video-tokenization", "visual-tokenizer", "vq-vae",
              "vector-quantization", "language-codebook", "video")

CITATIONS = {
    "hsanet": """@misc{shao2025hsanet,
  title         = {{HSA-Net}: Hierarchical and Structure-Aware Framework for Efficient and Scalable Molecular
                   Language Modeling},
  author        = {Shao and Lei and Wang and Ye and Liu},
  year          = {2025},
  eprint        = {2508.08334},
  archivePrefix = {arXiv},
  note          = {AAAI-26}
}""",
    "sweet": """@misc{tan2024sweettokenizer,
  title         = {{SweetTokenizer}: Semantic-Aware Spatial-Temporal Tokenizer for Compact Visual Discretization},
  author        = {Tan and Xue and Jia and Wang and Ye and Shi and Sun and Wu and Chen and Jiang},
  year          = {2024},
  eprint        = {2412.10443},
  archivePrefix = {arXiv}
}""",
    "moleculestm": """@misc{liu2022moleculestm,
  title         = {Multi-modal Molecule Structure-text Model for Text-based Retrieval and Editing},
  author        = {Liu and Nie and Wang and Lu and Qiao and Liu and Tang and Xiao and Anandkumar},
  year          = {2022},
  eprint        = {2212.10789},
  archivePrefix = {arXiv}
}""",
    "pretrain-gnns": """@inproceedings{hu2020pretraining,
  title         = {Strategies for Pre-training Graph Neural Networks},
  author        = {Hu and Liu and Gomes and Zitnik and Liang and Pande and Leskovec},
  booktitle     = {International Conference on Learning Representations},
  year          = {2020},
  eprint        = {1905.12265},
  archivePrefix = {arXiv}
}""",
}
# Original GIN layouts that conversion/convert_molecule_gin_to_hsanet.py converts (its `source_format`) -> name.
CONVERTED_FROM = {"moleculestm": "MoleculeSTM", "pretrain-gnns": "pretrain-gnns"}


class ModelCardError(ValueError):
    """A model card cannot be rendered: an unknown class, or a result file that cannot be read."""


@dataclass(frozen=True)
class CardVariant:
    """What a card says about one kind of object: which template, Hub task, tags, usage block and result file."""

    family: str  # "hsanet" | "sweet"
    template: str  # file of this folder
    usage: str  # the template's "How to use" block: "property" | "encoder" | "captioning" | "tokenizer"
    pipeline_tag: str | None  # a Hub task (huggingface.js pipelines.ts); None where none fits
    tags: tuple[str, ...]  # this repository's pipeline tasks go here: they are not Hub tasks
    metrics: tuple[str, ...]  # the metrics this kind of checkpoint is evaluated with
    results_file: str | None = None  # the result file the demos write for this kind of checkpoint, if any
    written_by: str | None = None  # the command that writes it


PROPERTY = CardVariant("hsanet", "hsanet.md", "property", "graph-ml",
                       HSANET_TAGS + ("molecular-property-prediction", "molecular-feature-extraction"),
                       ("rmse", "r_squared"), "results.md", "`make demo-property` (`examples/run_demo.py`)")
ENCODER = CardVariant("hsanet", "hsanet.md", "encoder", "graph-ml",
                      HSANET_TAGS + ("molecular-feature-extraction",), ())
CAPTIONING = CardVariant("hsanet", "hsanet.md", "captioning", "text-generation",
                         HSANET_TAGS + ("molecule-captioning", "molecule-to-text"),
                         ("bleu", "rouge", "meteor"))  # `make demo` prints its captioning table but writes no file
TOKENIZER = CardVariant("sweet", "sweet_tokenizer.md", "tokenizer", None, SWEET_TAGS, ("psnr", "ssim"),
                        "sweet_results.md", "`make demo` (`examples/run_sweet_demo.py`)")
# Class name -> variant; a subclass finds its nearest known base class. Processors carry no result file.
VARIANTS = {
    "HSANetForMolecularPropertyPrediction": PROPERTY,
    "HSANetModel": ENCODER,
    "HSANetForConditionalGeneration": CAPTIONING,
    "HSANetFeatureExtractor": ENCODER,
    "SweetTokenizerModel": TOKENIZER,
}
PROCESSOR_VARIANTS = {"HSANetProcessor", "HSANetFeatureExtractor", "SweetImageProcessor", "SweetVideoProcessor"}
# Rows of the property demo's table per (projector_mode, fusion) of the checkpoint's config.
PROPERTY_ROWS = {
    ("adaptive", "moe"): "HSA-Net (adaptive HAP + SAF)",
    ("cross_attention", "moe"): "ablation: cross-attention only",
    ("graph_mamba", "moe"): "ablation: Graph-Mamba only",
}


def card_variant(obj: Any) -> CardVariant:
    """The card variant of a model or processor instance of this repository (by class name, so that copies loaded
    with `trust_remote_code` are recognised too)."""
    for cls in type(obj).__mro__:
        name = cls.__name__
        if name == "HSANetProcessor":
            return CAPTIONING if getattr(obj, "has_text", False) else PROPERTY
        if name in ("SweetImageProcessor", "SweetVideoProcessor"):
            return TOKENIZER
        if name in VARIANTS:
            return VARIANTS[name]
    raise ModelCardError(f"no model card for {type(obj).__name__}: model_cards renders cards for "
                         f"{', '.join(sorted({*VARIANTS, *PROCESSOR_VARIANTS}))}")


def is_processor(obj: Any) -> bool:
    return any(cls.__name__ in PROCESSOR_VARIANTS for cls in type(obj).__mro__)


# ---------------------------------------------------------------------------------------------------------------------
# Result files
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class ResultTable:
    """One markdown table of a result file: `header` cells and `rows` (header cell -> cell text)."""

    header: list[str]
    rows: list[dict[str, str]]


@dataclass
class ResultFile:
    path: Path
    description: str  # the file's first line (data, date, machine, budget)
    tables: list[ResultTable] = field(default_factory=list)

    def table_with(self, *columns: str) -> ResultTable | None:
        return next((table for table in self.tables if set(columns) <= set(table.header)), None)


def _cells(line: str) -> list[str]:
    return [cell.strip().strip("*").strip() for cell in line.strip().strip("|").split("|")]


def read_result_file(path: str | os.PathLike) -> ResultFile:
    """Parse a result file of the demos (`demo_outputs/results.md`, `demo_outputs/sweet_results.md`): a description
    line, then markdown tables."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ModelCardError(f"result file {path} cannot be read: {error}") from error
    result = ResultFile(path, next((line.strip() for line in lines if line.strip()), ""))
    index = 0
    while index < len(lines):
        separator = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if lines[index].strip().startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", separator):
            header, rows = _cells(lines[index]), []
            index += 2
            while index < len(lines) and lines[index].strip().startswith("|"):
                cells = _cells(lines[index])
                if len(cells) != len(header):
                    raise ModelCardError(f"result file {path}, line {index + 1}: {len(cells)} cells, but its table's "
                                         f"header has {len(header)} ({' | '.join(header)})")
                rows.append(dict(zip(header, cells)))
                index += 1
            result.tables.append(ResultTable(header, rows))
        else:
            index += 1
    return result


def find_result_file(obj: Any, variant: CardVariant | None = None) -> Path | None:
    """The result file of the checkpoint `obj` was loaded from: `variant.results_file` in that folder or beside it
    (the demos save a checkpoint to `demo_outputs/<name>` and its results to `demo_outputs/`). An object that was not
    loaded from a folder (`name_or_path` empty) has none: the demo's numbers are not a new model's."""
    variant = variant or card_variant(obj)
    source = getattr(obj, "name_or_path", "") or getattr(getattr(obj, "config", None), "_name_or_path", "")
    if variant.results_file is None or not source or not os.path.isdir(source):
        return None
    folder = Path(source).resolve()
    return next((path for path in (folder / variant.results_file, folder.parent / variant.results_file)
                 if path.is_file()), None)


def _number(text: str, path: Path, column: str) -> float:
    try:
        return float(text.replace(",", ""))
    except ValueError as error:
        raise ModelCardError(f"result file {path}: column {column!r} holds {text!r}, not a number") from error


def _property_results(obj: Any, result: ResultFile) -> tuple[list[EvalResult], set[str]]:
    table = result.table_with("model", "test RMSE", "test R²")
    config = getattr(obj, "config", None)
    row_name = PROPERTY_ROWS.get((getattr(config, "projector_mode", None), getattr(config, "fusion", None)))
    row = next((row for row in (table.rows if table else []) if row["model"] == row_name), None)
    if row is None:
        return [], set()
    common = dict(task_type="graph-ml", task_name="Molecular property prediction (pIC50 regression)",
                  dataset_type="rdkit-freewilson-cmet-pic50", dataset_split="test",
                  dataset_name="c-Met ligands with pIC50 (RDKit FreeWilson data, ChEMBL), balanced scaffold split")
    return [EvalResult(**common, metric_type="rmse", metric_name="test RMSE",
                       metric_value=_number(row["test RMSE"], result.path, "test RMSE")),
            EvalResult(**common, metric_type="r_squared", metric_name="test R²",
                       metric_value=_number(row["test R²"], result.path, "test R²"))], {row_name}


SWEET_DATASETS = {  # "test data" cell prefix -> (dataset_type, task_type)
    "digits": ("sklearn-digits", "image-to-image"),
    "photographs": ("skimage-sample-images", "image-to-image"),
    "moving digits": ("moving-digits", "video-to-video"),
}


def _sweet_results(obj: Any, result: ResultFile) -> tuple[list[EvalResult], set[str]]:
    table = result.table_with("test data", "tokenizer", "PSNR (dB)", "SSIM")
    evals = []
    for row in (table.rows if table else []):
        if row["tokenizer"] != "SweetTokenizer":
            continue
        data = row["test data"]
        dataset_type, task_type = next((value for key, value in SWEET_DATASETS.items()
                                        if data.split(" (")[0] == key), ("other", "image-to-image"))
        common = dict(task_type=task_type, task_name="Reconstruction through the tokens (encode, then decode)",
                      dataset_type=dataset_type, dataset_name=data, dataset_split="test")
        evals += [EvalResult(**common, metric_type="psnr", metric_name="PSNR (dB)",
                             metric_value=_number(row["PSNR (dB)"], result.path, "PSNR (dB)")),
                  EvalResult(**common, metric_type="ssim", metric_name="SSIM",
                             metric_value=_number(row["SSIM"], result.path, "SSIM"))]
    return evals, {"SweetTokenizer"} if evals else set()


def eval_results_for(obj: Any, result: ResultFile, variant: CardVariant | None = None) -> list[EvalResult]:
    """The `EvalResult`s of `obj` in a result file (its own row only: baselines and ablations stay in the body)."""
    variant = variant or card_variant(obj)
    if variant is PROPERTY:
        return _property_results(obj, result)[0]
    if variant is TOKENIZER:
        return _sweet_results(obj, result)[0]
    return []


def _markdown_table(table: ResultTable, bold_rows: set[str]) -> str:
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    for row in table.rows:
        cells = [row[column] for column in table.header]
        if cells[0] in bold_rows or (len(cells) > 1 and cells[1] in bold_rows):
            cells = [f"**{cell}**" if cell not in ("", "-") else cell for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fill(text: str) -> str:
    return textwrap.fill(text, width=119)


def _evaluation_section(obj: Any, variant: CardVariant, result: ResultFile | None) -> str:
    if variant.results_file is None:
        if variant is CAPTIONING:
            return _fill("No result file was found for this checkpoint, so this card reports no numbers. The "
                         "captioning demo of `make demo` (`examples/run_captioning_demo.py`) prints its table (BLEU, "
                         "ROUGE, METEOR, MolT5 protocol) but writes no result file and saves no checkpoint; evaluate "
                         "with `modeling_hsanet.metrics.load_molecule_text_metrics()` on your test split.")
        return _fill("This kind of checkpoint has no evaluation of its own in this repository, so this card reports "
                     "no numbers.")
    if result is None:
        note = (" The SweetTokenizer demo does not save its tokenizer: pass its result file (`results=`, "
                "`--results`) only with the weights it evaluated." if variant is TOKENIZER else "")
        return _fill(f"No result file was found beside this checkpoint's folder (`{variant.results_file}`, as "
                     f"{variant.written_by} writes it), so this card reports no numbers and no `eval_results`. The "
                     f"README's results tables describe the demo models, not this checkpoint.{note}")
    evals, rows = (_property_results if variant is PROPERTY else _sweet_results)(obj, result)
    parts = [f"From `{result.path.name}`, written by {variant.written_by}: {result.description}."]
    if evals:
        parts.append(f"The rows in bold ({', '.join(sorted(rows))}) are this checkpoint's: they are the card's "
                     "`eval_results` (`model-index`). The other rows are the baselines and ablations of the same run.")
    else:
        parts.append("The file has no row for this checkpoint's configuration, so the card has no `eval_results`.")
    parts = [_fill(part) for part in parts]
    parts += [_markdown_table(table, rows) for table in result.tables[:1]]
    return "\n\n".join(parts)


# ---------------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------------
def _base_model(obj: Any) -> str | None:
    """The language model's Hub id for a captioning checkpoint built from one (not a local path)."""
    text_config = getattr(getattr(obj, "config", None), "text_config", None)
    name = getattr(text_config, "_name_or_path", "") or ""
    return name if re.fullmatch(r"[\w.-]+/[\w.-]+", name) and not os.path.exists(name) else None


def _summary(obj: Any, variant: CardVariant, converted_from: str | None) -> str:
    """The first paragraph about this repository: what it holds."""
    name = type(obj).__name__
    use = {
        "property": "predicts molecular properties from SMILES (regression, single- or multi-label classification)",
        "encoder": "turns a molecule into fused tokens and a pooled embedding",
        "captioning": "describes, names or answers questions about a molecule: HSA-Net's tokens are projected into a "
                      "causal language model at `<graph>` placeholders of the prompt (LLaVA's design)",
        "tokenizer": "encodes images and clips into word ids and decodes them back to pixels",
    }[variant.usage]
    if is_processor(obj):
        holds = {"hsanet": "SMILES -> graph tensors (RDKit)", "sweet": "pixels -> the model's input tensors"}
        tokenizer = ", with the language model's tokenizer and prompt settings" if variant is CAPTIONING else ""
        return _fill(f"This repository holds the processor (`{name}`: {holds[variant.family]}{tokenizer}) of a model "
                     f"that {use}.")
    text = f"This repository holds the weights of `{name}`, which {use}."
    if converted_from:
        text += (f" Its GIN weights were converted from a {CONVERTED_FROM[converted_from]} checkpoint "
                 "(`conversion/convert_molecule_gin_to_hsanet.py`): the GIN is pretrained; the projectors, the motif "
                 "branch and the fusion are **freshly initialised** and must be trained before use.")
    return _fill(text)


def render_model_card(obj: Any, repo_id: str | None = None, *, results: str | os.PathLike | bool | None = None,
                      converted_from: str | None = None) -> ModelCard:
    """Render the model card of `obj` (a model or processor of this repository) for the Hub repository `repo_id`.

    Args:
        obj: the model or processor that is pushed.
        repo_id: the repository the card's code loads from (default: a placeholder the user replaces).
        results: a result file of the demos; `None` (default) looks for the one of the checkpoint `obj` was loaded
            from (`find_result_file`), `False` uses none (pass it when the weights changed after loading, e.g.
            `model.push_to_hub(repo_id, model_card=render_model_card(model, repo_id, results=False))`).
        converted_from: the `source_format` of `convert_molecule_gin_to_hsanet` (`"moleculestm"`, ...) when the
            GIN weights were converted from an original checkpoint; the card says so and cites its paper.
    """
    variant = card_variant(obj)
    if results is None:
        results = find_result_file(obj, variant)
    result = read_result_file(results) if results else None
    evals = eval_results_for(obj, result, variant) if result is not None else []
    if converted_from is not None and converted_from not in CONVERTED_FROM:
        raise ModelCardError(f"converted_from must be None or one of {sorted(CONVERTED_FROM)}, got {converted_from!r}")
    datasets = sorted({evaluation.dataset_name for evaluation in evals}) or None
    model_name = (repo_id or "").split("/")[-1] or type(obj).__name__
    card_data = ModelCardData(
        license=LICENSE, library_name=LIBRARY_NAME, pipeline_tag=variant.pipeline_tag, tags=list(variant.tags),
        metrics=list(variant.metrics) or None, datasets=datasets, base_model=_base_model(obj),
        model_name=model_name if evals else None, eval_results=evals or None,
    )
    citations = [CITATIONS[variant.family]] + ([CITATIONS[converted_from]] if converted_from else [])
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATES_DIR / variant.template),
        marker=CARD_MARKER,
        repo_id=repo_id or "<your-namespace>/<your-model>",
        usage=variant.usage,
        class_name=type(obj).__name__,
        summary=_summary(obj, variant, converted_from),
        evaluation=_evaluation_section(obj, variant, result),
        citations="\n\n".join(f"```bibtex\n{citation}\n```" for citation in citations),
    )


def is_replaceable_card(card: ModelCard | str) -> bool:
    """Whether a card in a repository may be replaced by a new rendering: one this module wrote (its marker line is
    still there) or transformers' generic one. A card a person wrote is kept."""
    text = card.content if isinstance(card, ModelCard) else str(card)
    return CARD_MARKER in text or TRANSFORMERS_DEFAULT_CARD_TEXT in text


def card_for_push(obj: Any, repo_id: str, existing: ModelCard | None = None) -> ModelCard:
    """The card `push_to_hub` uploads for `obj`, given the card already in the repository (`None`: none)."""
    if existing is not None and not is_replaceable_card(existing):
        return existing  # a person's card
    if existing is not None and is_processor(obj) and CARD_MARKER in existing.content:
        return existing  # the card a model push rendered (with its evaluation) stays
    return render_model_card(obj, repo_id)
