"""Export a trained model folder, or an original GIN checkpoint, to a Hub-ready folder, and optionally push it.

    python -m conversion.export_hub_folder --model demo_outputs/hsanet-cmet --output hub/hsanet-cmet \\
        --push your-name/hsanet-cmet
    python -m conversion.export_hub_folder --gin-checkpoint molecule_model.pth --output hub/hsanet-moleculestm

The folder holds what `from_pretrained`, `pipeline` and `trust_remote_code` need: `config.json` (with `auto_map`), the
weights as `model.safetensors`, the model code, the processors (HSA-Net: `processor_config.json`, and the tokenizer of
a captioning model; SweetTokenizer: the image and video processor configs) and `README.md`, the model card rendered
by `model_cards` (metadata, usage, limitations; `eval_results` from the demos' result file beside the source folder,
or `--results`). A `README.md` in the source folder, or `--card`, is used instead of the rendered card.

`--gin-checkpoint` first converts an original GIN state dict (MoleculeSTM; the layouts that
`conversion/convert_molecule_gin_to_hsanet.py` converts): the projectors, motif branch and fusion are freshly
initialised, and the card says so and cites the checkpoint's paper. `--push REPO_ID` uploads the folder with
huggingface_hub's `HfApi.upload_folder` (token from `hf auth login` or `HF_TOKEN`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi, ModelCard
from transformers import AutoConfig

import modeling_hsanet
import modeling_sweet
from model_cards import render_model_card
from modeling_hsanet import HSANetFeatureExtractor, HSANetProcessor
from modeling_sweet import SweetImageProcessor, SweetVideoProcessor

from .convert_molecule_gin_to_hsanet import convert, parse_config_overrides

WEIGHTS_NAME = "model.safetensors"


class ExportError(ValueError):
    """The source folder cannot be exported (named: which folder, which file, what to do)."""


@dataclass
class ExportSummary:
    source: str
    output: str
    model_class: str
    card: str  # "rendered", "rendered with eval_results from <file>", "from <path>"
    processors: list[str] = field(default_factory=list)
    created_processors: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    conversion: str | None = None
    commit_url: str | None = None

    def __str__(self) -> str:
        lines = []
        if self.conversion:
            lines += [self.conversion, ""]
        lines += [f"Exported {self.model_class} from {self.source}", f"  to {self.output}",
                  f"  processors: {', '.join(self.processors)}"]
        if self.created_processors:
            lines.append(f"  created with default settings (the source folder had none): "
                         f"{', '.join(self.created_processors)}")
        lines += [f"  model card: {self.card}", f"  files: {', '.join(self.files)}"]
        if self.commit_url:
            lines.append(f"  pushed: {self.commit_url}")
        return "\n".join(lines)


def _model_class(source: Path, config):
    architectures = getattr(config, "architectures", None) or []
    for name in architectures:
        for package in (modeling_hsanet, modeling_sweet):
            if hasattr(package, name):
                return getattr(package, name)
    raise ExportError(f"{source}/config.json names architectures {architectures}: none is a class of modeling_hsanet "
                      "or modeling_sweet (save the model with save_pretrained)")


def _processors(source: Path, model) -> tuple[list, list[str]]:
    """The processors saved in `source`, or default ones where the model needs them and none was saved."""
    config, created = model.config, []
    if config.model_type == "hsanet":
        if (source / "processor_config.json").is_file() or (source / "preprocessor_config.json").is_file():
            return [HSANetProcessor.from_pretrained(source)], created
        if getattr(config, "text_config", None) is not None:
            raise ExportError(f"{source} holds a captioning model but no processor: its tokenizer is needed; save it "
                              "with `processor.save_pretrained(folder)` (HSANetProcessor(tokenizer=..., "
                              "num_graph_tokens=...))")
        processor = HSANetProcessor(HSANetFeatureExtractor(feature_scheme=config.feature_scheme,
                                                           max_scan_distance=config.max_scan_distance))
        return [processor], ["HSANetProcessor"]
    size = {"height": config.image_size, "width": config.image_size}
    processors = []
    if (source / "preprocessor_config.json").is_file():
        processors.append(SweetImageProcessor.from_pretrained(source))
    else:
        processors.append(SweetImageProcessor(size=size))
        created.append("SweetImageProcessor")
    if (source / "video_preprocessor_config.json").is_file():
        processors.append(SweetVideoProcessor.from_pretrained(source))
    else:
        processors.append(SweetVideoProcessor(size=size, num_frames=config.num_frames))
        created.append("SweetVideoProcessor")
    return processors, created


def export_hub_folder(source: str | Path, output: str | Path, *, repo_id: str | None = None,
                      results: str | Path | bool | None = None, card: str | Path | None = None,
                      converted_from: str | None = None, overwrite: bool = False) -> ExportSummary:
    """Write the Hub-ready folder `output` for the model saved in `source` (see the module docstring).

    `results`: a result file for the card's evaluation; `None` finds the one beside `source`, `False` uses none.
    `card`: a card file used as it is. `repo_id` goes into the card's code.
    """
    source, output = Path(source), Path(output)
    if not (source / "config.json").is_file():
        raise ExportError(f"{source} has no config.json: pass a folder written by save_pretrained")
    if source.resolve() == output.resolve():
        raise ExportError(f"the output folder must differ from the source folder ({source})")
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise ExportError(f"{output} exists and is not empty: pass overwrite=True (--overwrite) or another folder")
        shutil.rmtree(output)
    config = AutoConfig.from_pretrained(source)
    model = _model_class(source, config).from_pretrained(source)
    processors, created = _processors(source, model)

    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    for processor in processors:
        processor.save_pretrained(output)
    if (output / "pytorch_model.bin").exists() or not (output / WEIGHTS_NAME).is_file():
        raise ExportError(f"{output}: the weights were not written as {WEIGHTS_NAME}")

    if card is not None:
        model_card, card_source = ModelCard.load(card), f"from {card}"
    elif (source / "README.md").is_file():
        model_card, card_source = ModelCard.load(source / "README.md"), f"from {source / 'README.md'} (kept as it is)"
    else:
        model_card = render_model_card(model, repo_id, results=results, converted_from=converted_from)
        evaluated = model_card.data.eval_results
        card_source = "rendered by model_cards" + (" with eval_results from the result file" if evaluated else
                                                   " (no result file: no eval_results)")
    model_card.save(output / "README.md")
    return ExportSummary(
        source=str(source), output=str(output), model_class=type(model).__name__, card=card_source,
        processors=[type(processor).__name__ for processor in processors], created_processors=created,
        files=sorted(str(path.relative_to(output)) for path in output.rglob("*") if path.is_file()),
    )


def export_gin_checkpoint(checkpoint: str | Path, output: str | Path, *, config_overrides: dict | None = None,
                          seed: int = 0, **kwargs) -> ExportSummary:
    """Convert an original GIN checkpoint (`convert_molecule_gin_to_hsanet.convert`) and export the result."""
    with tempfile.TemporaryDirectory() as folder:
        conversion = convert(checkpoint, Path(folder) / "converted", config_overrides, seed=seed)
        summary = export_hub_folder(Path(folder) / "converted", output, converted_from=conversion.source_format,
                                    results=False, **kwargs)
    summary.source, summary.conversion = str(checkpoint), str(conversion)
    return summary


def push_folder(folder: str | Path, repo_id: str, *, private: bool | None = None, token: str | None = None,
                commit_message: str = "Upload model exported by conversion/export_hub_folder.py"):
    """Create `repo_id` (if needed) and upload `folder` with huggingface_hub's client; returns the commit info."""
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    return api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a folder written by save_pretrained (model, and processors if saved)")
    source.add_argument("--gin-checkpoint", help="an original GIN state dict (.pth, MoleculeSTM), converted first")
    parser.add_argument("--output", required=True, help="the Hub-ready folder to write")
    parser.add_argument("--push", metavar="REPO_ID", default=None, help="upload the folder to this Hub repository")
    parser.add_argument("--repo-id", default=None, help="repository named in the card's code (default: --push)")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    results = parser.add_mutually_exclusive_group()
    results.add_argument("--results", default=None, help="result file for the card's evaluation (default: the one "
                                                         "the demo wrote beside --model, if any)")
    results.add_argument("--no-results", action="store_true", help="no evaluation results in the card")
    parser.add_argument("--card", default=None, help="a model card file to use instead of the rendered one")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output folder")
    parser.add_argument("--config-overrides", default=None, help="with --gin-checkpoint: HSANetConfig arguments, "
                                                                 "JSON or key=value,key=value")
    parser.add_argument("--seed", type=int, default=0, help="with --gin-checkpoint: seed of the fresh modules")
    args = parser.parse_args(argv)
    if args.gin_checkpoint and args.results:
        parser.error("--results applies to --model: a converted checkpoint has no evaluation")
    options = dict(repo_id=args.repo_id or args.push, card=args.card, overwrite=args.overwrite,
                   results=False if args.no_results else args.results)
    try:
        if args.model:
            summary = export_hub_folder(args.model, args.output, **options)
        else:
            options.pop("results")
            summary = export_gin_checkpoint(args.gin_checkpoint, args.output, seed=args.seed,
                                            config_overrides=parse_config_overrides(args.config_overrides), **options)
    except ValueError as error:  # ExportError, ConversionError, ModelCardError, a config rejecting an argument
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.push:
        summary.commit_url = push_folder(args.output, args.push, private=args.private or None).commit_url
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
