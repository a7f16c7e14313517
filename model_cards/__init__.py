"""Model card templates (`hsanet.md`, `sweet_tokenizer.md`) and their renderer.

The models' and processors' `push_to_hub` import this package when it is installed and upload the card it renders;
`conversion/export_hub_folder.py` writes it into a Hub-ready folder. It imports neither model package.
"""

from .rendering import (
    CARD_MARKER,
    CardVariant,
    ModelCardError,
    ResultFile,
    card_for_push,
    card_variant,
    eval_results_for,
    find_result_file,
    is_replaceable_card,
    read_result_file,
    render_model_card,
)

__all__ = [
    "CARD_MARKER",
    "CardVariant",
    "ModelCardError",
    "ResultFile",
    "card_for_push",
    "card_variant",
    "eval_results_for",
    "find_result_file",
    "is_replaceable_card",
    "read_result_file",
    "render_model_card",
]
