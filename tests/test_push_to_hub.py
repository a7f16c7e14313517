"""`push_to_hub` of the models and processors, and `conversion/export_hub_folder.py --push`, checked at the HTTP
boundary: huggingface_hub's real client talks to an in-memory Hub (an `httpx` mock transport installed with
`huggingface_hub.set_client_factory`) that answers repo creation, file lookups, preupload and commit, and keeps the
committed files. The tests read the uploaded files back: the file list, the README's front matter (license,
pipeline_tag, library_name, eval results from the demos' result files) and the card's ```python blocks, executed
against the pushed files saved in a local folder (the repo id replaced by the folder's path).
"""

from __future__ import annotations

import base64
import json
import re
import sys

import httpx2
import huggingface_hub
import pytest
import torch
from huggingface_hub import ModelCard
from huggingface_hub.utils import _http

from conversion.export_hub_folder import ExportError, export_hub_folder, main
from model_cards import CARD_MARKER
from modeling_hsanet import (
    HSANetConfig,
    HSANetForConditionalGeneration,
    HSANetForMolecularPropertyPrediction,
    HSANetProcessor,
)
from modeling_sweet import SweetImageProcessor, SweetTokenizerConfig, SweetTokenizerModel, SweetVideoProcessor
from tests.model_testers import (
    HSANET_TINY,
    SWEET_TINY,
    HSANetForConditionalGenerationTester,
    minilm_path,
    tiny_text_processor,
)
from tests.test_conversion import SMALL, moleculestm_state_dict

ENDPOINT = "https://huggingface.co"
# In the format examples/run_demo.py writes (tests/test_model_cards.py checks that its header is still the demo's).
PROPERTY_RESULTS = """c-Met pIC50, scaffold split test set (103 molecules), {date}, x86_64 CPU, 2 threads, seed 0

| model | test RMSE | test R² | train time (s) |
|---|---|---|---|
| Morgan FP (r=2, 2048 bits) + random forest (500 trees) | {forest_rmse} | 0.503 | 6 |
| HSA-Net (adaptive HAP + SAF) | {rmse} | {r2} | 134 |
"""


class FakeHub:
    """An in-memory Hub for huggingface_hub's HTTP client: `repos[repo_id][path] = bytes` after each commit."""

    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: list[tuple[str, str, list[str]]] = []  # (repo, message, paths)
        self.requests: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        self.requests.append(f"{request.method} {path}")
        if request.method == "POST" and path == "/api/repos/create":
            body = json.loads(request.content)
            repo_id = f"{body.get('organization') or 'user'}/{body['name']}"
            self.repos.setdefault(repo_id, {})
            return httpx2.Response(200, json={"url": f"{ENDPOINT}/{repo_id}", "name": repo_id})
        if request.method == "POST" and path == "/api/validate-yaml":
            return httpx2.Response(200, json={})
        match = re.fullmatch(r"/api/models/([^/]+/[^/]+)/preupload/([^/]+)", path)
        if match:
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        match = re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/([^/]+)", path)
        if match:
            lines = [json.loads(line) for line in request.content.decode().splitlines() if line.strip()]
            message = next(line["value"]["summary"] for line in lines if line["key"] == "header")
            files = [line["value"] for line in lines if line["key"] == "file"]
            repo = self.repos.setdefault(match.group(1), {})
            for file in files:
                repo[file["path"]] = base64.b64decode(file["content"])
            self.commits.append((match.group(1), message, sorted(file["path"] for file in files)))
            return httpx2.Response(200, json={"commitUrl": f"{ENDPOINT}/{match.group(1)}/commit/{'1' * 40}",
                                              "commitOid": "1" * 40, "pullRequestUrl": None})
        match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if match:
            content = self.repos.get(match.group(1), {}).get(match.group(3))
            if content is None:
                return httpx2.Response(404, headers={"X-Error-Code": "EntryNotFound",
                                                     "X-Error-Message": "Entry not found"})
            headers = {"ETag": f'"{hash(content) & 0xFFFFFFFF:08x}"', "X-Repo-Commit": "1" * 40,
                       "Content-Length": str(len(content))}
            return httpx2.Response(200, headers=headers, content=b"" if request.method == "HEAD" else content)
        return httpx2.Response(500, json={"error": f"FakeHub does not answer {request.method} {path}"})

    def card(self, repo_id: str) -> ModelCard:
        return ModelCard(self.repos[repo_id]["README.md"].decode())

    def save_repo(self, repo_id: str, folder) -> None:
        for path, content in self.repos[repo_id].items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content)


@pytest.fixture
def hub(monkeypatch, tmp_path):
    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token_for_the_mock_transport")
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    yield fake
    huggingface_hub.set_client_factory(_http.default_client_factory)


def python_blocks(card: ModelCard) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card.content, flags=re.DOTALL)


def run_card_blocks(card: ModelCard, repo_id: str, folder, monkeypatch) -> int:
    """Execute the card's ```python blocks with `repo_id` replaced by the local `folder`; returns how many ran."""
    blocks = python_blocks(card)
    assert blocks and all(f'"{repo_id}"' in block for block in blocks[:1])
    monkeypatch.chdir(folder.parent)
    for index, block in enumerate(blocks):
        code = block.replace(f'"{repo_id}"', repr(str(folder)))
        exec(compile(code, f"card block {index}", "exec"), {"__name__": f"card_block_{index}"})
    return len(blocks)


def save_property_demo(run, rmse=0.612, r2=0.583):
    """A folder laid out as `make demo-property` leaves it: demo_outputs/hsanet-cmet + demo_outputs/results.md."""
    tiny_property_model().save_pretrained(run / "hsanet-cmet")
    HSANetProcessor().save_pretrained(run / "hsanet-cmet")
    (run / "results.md").write_text(PROPERTY_RESULTS.format(date="2026-11-25", forest_rmse=0.687, rmse=rmse, r2=r2))
    return run / "hsanet-cmet"


def tiny_property_model(**overrides) -> HSANetForMolecularPropertyPrediction:
    torch.manual_seed(0)
    return HSANetForMolecularPropertyPrediction(HSANetConfig(**HSANET_TINY, num_labels=1, **overrides)).eval()


def eval_metrics(card: ModelCard) -> dict[str, float]:
    return {result.metric_type: result.metric_value for result in card.data.eval_results or []}


def test_model_push_uploads_the_rendered_card_with_results_from_the_result_file(hub, tmp_path):
    folder = save_property_demo(tmp_path / "demo_outputs")
    model = HSANetForMolecularPropertyPrediction.from_pretrained(folder)
    model.push_to_hub("user/tiny-hsanet")
    HSANetProcessor.from_pretrained(folder).push_to_hub("user/tiny-hsanet")

    files = hub.repos["user/tiny-hsanet"]
    assert {"config.json", "model.safetensors", "processor_config.json", "README.md"} <= set(files)
    assert any(name.endswith(".py") for name in files), "the code (auto_map) is uploaded with the model"
    assert [repo for repo, _, _ in hub.commits] == ["user/tiny-hsanet"] * 2  # the model, then the processor
    # the processor push keeps the card of the model push (with its evaluation)
    card = hub.card("user/tiny-hsanet")
    assert CARD_MARKER in card.content
    data = card.data
    assert (data.license, data.library_name, data.pipeline_tag) == ("apache-2.0", "transformers", "graph-ml")
    assert {"hsanet", "molecular-property-prediction"} <= set(data.tags)
    # the checkpoint's own row, read from the file (not the forest's, not the README's)
    assert eval_metrics(card) == pytest.approx({"rmse": 0.612, "r_squared": 0.583})
    assert "2026-11-25" in card.content and "| **0.612** |" in card.content
    assert "Model Card for Model ID" not in card.content
    # this card's code runs in test_export_hub_folder_cli_writes_and_pushes_a_ready_folder (same card, pushed)


def test_a_new_model_gets_no_eval_results_and_a_users_card_wins(hub, tmp_path):
    tiny_property_model().push_to_hub("user/fresh")  # not loaded from a demo folder: no result file applies
    card = hub.card("user/fresh")
    assert card.data.eval_results is None and "model-index" not in hub.repos["user/fresh"]["README.md"].decode()
    evaluation = card.content.split("## Evaluation", 1)[1].split("## Citation")[0]
    assert "no numbers" in evaluation and not re.search(r"\d\.\d", evaluation)

    own = "---\nlicense: mit\n---\n# My molecule model\n"
    tiny_property_model().push_to_hub("user/own", model_card=own)
    assert hub.card("user/own").data.license == "mit"
    # a card a person wrote in the repository stays on the next push; the rendered one is replaced
    tiny_property_model().push_to_hub("user/own")
    assert hub.repos["user/own"]["README.md"].decode().startswith(own.rstrip("\n"))
    tiny_property_model(projector_mode="cross_attention").push_to_hub("user/fresh", tags=["my-tag"])
    assert CARD_MARKER in hub.card("user/fresh").content and "my-tag" in hub.card("user/fresh").data.tags


def test_without_the_card_renderer_push_falls_back_to_transformers_card(hub, monkeypatch):
    """A remote-code copy of a model folder runs where `model_cards` is not installed: its push still works."""
    monkeypatch.setitem(sys.modules, "model_cards", None)  # `import model_cards` raises ImportError
    tiny_property_model().push_to_hub("user/remote-copy")
    assert {"config.json", "model.safetensors", "README.md"} <= set(hub.repos["user/remote-copy"])
    assert CARD_MARKER not in hub.card("user/remote-copy").content


def test_captioning_model_card(hub, tmp_path, monkeypatch):
    tester = HSANetForConditionalGenerationTester()
    torch.manual_seed(0)
    model = HSANetForConditionalGeneration(tester.get_config()).eval()
    model.push_to_hub("user/tiny-captioner")
    tiny_text_processor(model.config.num_graph_tokens).push_to_hub("user/tiny-captioner")
    files = hub.repos["user/tiny-captioner"]
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer_config.json"} <= set(files)
    card = hub.card("user/tiny-captioner")
    assert (card.data.pipeline_tag, card.data.license) == ("text-generation", "apache-2.0")
    assert "molecule-captioning" in card.data.tags and card.data.eval_results is None
    hub.save_repo("user/tiny-captioner", tmp_path / "pushed")
    assert run_card_blocks(card, "user/tiny-captioner", tmp_path / "pushed", monkeypatch) == 1


def test_sweet_model_and_processors_push(hub, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = SweetTokenizerModel.from_language_model(SweetTokenizerConfig(**SWEET_TINY), minilm_path(), max_words=64)
    model.eval().push_to_hub("user/tiny-sweet")
    size = {"height": SWEET_TINY["image_size"], "width": SWEET_TINY["image_size"]}
    SweetImageProcessor(size=size).push_to_hub("user/tiny-sweet")
    SweetVideoProcessor(size=size, num_frames=SWEET_TINY["num_frames"]).push_to_hub("user/tiny-sweet")
    files = hub.repos["user/tiny-sweet"]
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= set(files)
    card = hub.card("user/tiny-sweet")
    assert (card.data.license, card.data.library_name) == ("apache-2.0", "transformers")
    assert {"image-tokenization", "video-tokenization"} <= set(card.data.tags)
    assert "2412.10443" in card.content
    hub.save_repo("user/tiny-sweet", tmp_path / "pushed")
    assert run_card_blocks(card, "user/tiny-sweet", tmp_path / "pushed", monkeypatch) == 1


def test_export_hub_folder_cli_writes_and_pushes_a_ready_folder(hub, tmp_path, monkeypatch, capsys):
    folder = save_property_demo(tmp_path / "demo_outputs", rmse=0.655, r2=0.547)
    output = tmp_path / "hub-folder"
    assert main(["--model", str(folder), "--output", str(output), "--push", "org/exported"]) == 0
    assert "with eval_results" in capsys.readouterr().out

    local = {str(path.relative_to(output)) for path in output.rglob("*") if path.is_file()}
    assert {"config.json", "model.safetensors", "processor_config.json", "README.md"} <= local
    assert not any(name.endswith((".bin", ".pt")) for name in local)
    assert set(hub.repos["org/exported"]) == local  # one commit with the whole folder, through upload_folder
    card = hub.card("org/exported")
    assert (card.data.license, card.data.library_name, card.data.pipeline_tag) == ("apache-2.0", "transformers",
                                                                                    "graph-ml")
    assert eval_metrics(card) == pytest.approx({"rmse": 0.655, "r_squared": 0.547})
    assert run_card_blocks(card, "org/exported", output, monkeypatch) == 2

    # a second export into the same folder needs --overwrite; a card in the source folder is kept
    assert main(["--model", str(folder), "--output", str(output)]) == 1
    assert "not empty" in capsys.readouterr().err
    (folder / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# Our c-Met model\n")
    summary = export_hub_folder(folder, output, overwrite=True)
    assert "kept as it is" in summary.card and ModelCard.load(output / "README.md").data.license == "cc-by-4.0"


def test_export_from_a_moleculestm_checkpoint(tmp_path, monkeypatch, capsys):
    checkpoint = tmp_path / "molecule_model.pth"
    torch.save(moleculestm_state_dict(), checkpoint)
    overrides = ",".join(f"{key}={value}" for key, value in SMALL.items())
    output = tmp_path / "hsanet-moleculestm"
    assert main(["--gin-checkpoint", str(checkpoint), "--output", str(output), "--repo-id", "org/gin",
                 "--config-overrides", overrides]) == 0
    printed = capsys.readouterr().out
    assert "Converted" in printed and "Exported HSANetModel" in printed
    card = ModelCard.load(output / "README.md")
    assert card.data.pipeline_tag == "graph-ml" and card.data.eval_results is None
    assert "freshly initialised" in card.content and "2212.10789" in card.content  # MoleculeSTM cited
    assert run_card_blocks(card, "org/gin", output, monkeypatch) == 1


def test_export_errors_name_the_folder(tmp_path):
    with pytest.raises(ExportError, match="has no config.json"):
        export_hub_folder(tmp_path, tmp_path / "out")
    tester = HSANetForConditionalGenerationTester()
    HSANetForConditionalGeneration(tester.get_config()).save_pretrained(tmp_path / "captioner")
    with pytest.raises(ExportError, match="captioner holds a captioning model but no processor"):
        export_hub_folder(tmp_path / "captioner", tmp_path / "out")
    SweetTokenizerModel(SweetTokenizerConfig(**SWEET_TINY)).save_pretrained(tmp_path / "sweet")
    summary = export_hub_folder(tmp_path / "sweet", tmp_path / "sweet-hub", results=False)
    assert summary.created_processors == ["SweetImageProcessor", "SweetVideoProcessor"]
    assert {"preprocessor_config.json", "video_preprocessor_config.json", "README.md"} <= set(summary.files)
