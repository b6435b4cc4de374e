"""Model metadata for Codex CLI: without it, every session on a Databricks model starts with
"Model metadata for `databricks-…` not found. Defaulting to fallback metadata; this can degrade
performance and cause issues."

Codex looks a model's metadata (context window, reasoning levels, tools, base instructions) up by
its slug in a catalog: the one built into the binary, or the file named by `model_catalog_json`,
which replaces it. The file here holds one entry per Databricks model: a copy of the installed
binary's own entry for a GPT-5 model (`codex debug models --bundled`), so the instructions and tool
settings are the ones this Codex version was built with, under the Databricks name and limits.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services import state

# The bundled entry copied for Databricks' GPT models: the GPT-5 generation the serving endpoints
# offer (databricks-gpt-5-*), as named in Codex 0.171.0's own catalog. A Codex without it falls
# back to its first API model, and the step's log says which.
TEMPLATE_SLUG = "gpt-5.5"
CATALOG_NAME = "databricks-models.json"
DUMP_TIMEOUT = 20.0


def covers(model: str) -> bool:
    """Only GPT models get a copy of a GPT entry: its tools (a freeform apply_patch) and
    instructions are OpenAI's; another family keeps Codex's own fallback."""
    return "gpt" in model


class CatalogUnavailable(Exception):
    """The installed Codex could not give its bundled catalog; the message says why."""


def bundled_catalog(codex: Path, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """The model catalog built into the installed binary."""
    try:
        result = subprocess.run(
            [str(codex), "debug", "models", "--bundled"],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=DUMP_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CatalogUnavailable(f"cannot run {codex} debug models: {exc}") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise CatalogUnavailable(f"{codex} debug models exited {result.returncode}: {last[:200]}")
    try:
        models = json.loads(result.stdout)["models"]
    except (ValueError, KeyError, TypeError):
        raise CatalogUnavailable(f"{codex} debug models printed no model catalog") from None
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise CatalogUnavailable(f"{codex} debug models printed no model list")
    return models


def template(models: list[dict[str, Any]]) -> dict[str, Any]:
    chosen = next((m for m in models if m.get("slug") == TEMPLATE_SLUG), None)
    chosen = chosen or next((m for m in models if m.get("supported_in_api")), None)
    if chosen is None:
        raise CatalogUnavailable("the bundled catalog holds no API model to copy")
    return chosen


def databricks_entry(base: dict[str, Any], model: str, context_window: int) -> dict[str, Any]:
    entry = copy.deepcopy(base)
    entry.update(
        slug=model,
        display_name=model,
        description=f"Databricks serving endpoint {model}",
        context_window=context_window,
        max_context_window=context_window,
        visibility="list",
        supported_in_api=True,
        # OpenAI's own offers, which a serving endpoint has no use for.
        upgrade=None,
        availability_nux=None,
        additional_speed_tiers=[],
        service_tiers=[],
    )
    return entry


def write_catalog(
    codex: Path, env: Mapping[str, str], folder: Path, models: dict[str, int]
) -> tuple[Path, str]:
    """Write the catalog for `models` (name → context window); returns its path and the slug copied."""
    base = template(bundled_catalog(codex, env))
    catalog = {"models": [databricks_entry(base, name, window) for name, window in models.items()]}
    path = folder / CATALOG_NAME
    state.atomic_write_bytes(path, (json.dumps(catalog, indent=1) + "\n").encode(), mode=0o644)
    return path, str(base.get("slug"))
