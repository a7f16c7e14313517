"""`push_to_hub` with this repository's model card, for the models and processors of `modeling_sweet`.

A copy of `modeling_hsanet/hub_hsanet.py` (each model folder is self-contained; `utils/check_copies.py` keeps the
copies equal).

transformers' `push_to_hub` uploads its generic card ("# Model Card for Model ID", no license, no pipeline tag).
Here the card comes from the package's `model_cards` renderer (metadata, usage, limitations, evaluation from the demos'
result files), imported lazily by its absolute name: this folder stays self-contained, and a copy loaded with
`trust_remote_code` where `model_cards` is not installed falls back to transformers' card. A card passed as
`model_card=`, or one a person wrote that is already in the repository, wins.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from typing import Any

from huggingface_hub import ModelCard
from huggingface_hub.errors import EntryNotFoundError
from transformers.utils.hub import create_and_tag_model_card, hf_api


# Copied from modeling_hsanet.hub_hsanet.push_to_hub_with_model_card
def push_to_hub_with_model_card(
    obj: Any,
    repo_id: str,
    *,
    model_card: ModelCard | str | os.PathLike | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str | None = "50GB",
    tags: list[str] | None = None,
):
    """`PushToHubMixin.push_to_hub` (same arguments, same upload), with the rendered model card as `README.md`.

    `model_card`: a `huggingface_hub.ModelCard`, the path of a card file, or a card's text; uploaded as it is (plus
    `tags`). Without it: a card already in the repository stays unless the renderer wrote it (a model push renders it
    again, with the current results) or it is transformers' generic card; otherwise the card is rendered.
    """
    repo_id = hf_api().create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
    card = _card_to_push(obj, repo_id, model_card, token)
    if tags:
        card.data.tags = list(card.data.tags or []) + [tag for tag in tags if tag not in (card.data.tags or [])]
    with tempfile.TemporaryDirectory() as tmp_dir:
        obj.save_pretrained(tmp_dir, max_shard_size=max_shard_size)
        card.save(os.path.join(tmp_dir, "README.md"))
        return obj._upload_modified_files(
            tmp_dir, repo_id, files_timestamps={}, commit_message=commit_message, token=token, create_pr=create_pr,
            revision=revision, commit_description=commit_description,
        )


# Copied from modeling_hsanet.hub_hsanet._card_to_push
def _card_to_push(obj: Any, repo_id: str, model_card, token) -> ModelCard:
    if model_card is not None:
        if isinstance(model_card, ModelCard):
            return model_card
        if os.path.isfile(model_card):
            return ModelCard.load(model_card)
        return ModelCard(str(model_card))
    renderer = _card_renderer()
    if renderer is None:  # a remote-code copy without the package: transformers' behaviour
        return create_and_tag_model_card(repo_id, token=token)
    try:
        existing = ModelCard.load(repo_id, token=token)
    except EntryNotFoundError:
        existing = None
    return renderer.card_for_push(obj, repo_id, existing)


# Copied from modeling_hsanet.hub_hsanet._card_renderer
def _card_renderer():
    """The package's `model_cards` module, or None where it is not installed (or another module has its name)."""
    try:
        module = importlib.import_module("model_cards")
    except ImportError:
        return None
    return module if hasattr(module, "card_for_push") else None
