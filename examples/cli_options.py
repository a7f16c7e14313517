"""Command-line helpers shared by the example scripts (imported from the scripts' own folder)."""

from __future__ import annotations

import json


def parse_config_options(options: list[str], flag: str) -> dict:
    """`FIELD=VALUE` strings of a repeatable option (`flag`, for the error message) -> config overrides, each VALUE
    read as JSON, else kept as a string: ["pixel_decoder=conv", "num_decoder_layers=2", "x=true"] ->
    {"pixel_decoder": "conv", "num_decoder_layers": 2, "x": True}. A string without "=" exits with a message."""
    fields = {}
    for option in options:
        field, separator, value = option.partition("=")
        if not separator or not field:
            raise SystemExit(f"{flag} takes FIELD=VALUE, got {option!r}")
        try:
            fields[field] = json.loads(value)
        except json.JSONDecodeError:
            fields[field] = value
    return fields
