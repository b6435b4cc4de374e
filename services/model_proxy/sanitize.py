"""Request fixes for known agent bugs, applied before a request goes upstream.

OpenCode sometimes sends empty text content blocks (opencode #5028); Databricks answers "text content
blocks must be non-empty" and the conversation stays broken from then on. Dropping the empty blocks
is lossless: they carry nothing.
"""

from __future__ import annotations

import json
from typing import Any


def _is_empty_text(part: Any) -> bool:
    return (
        isinstance(part, dict)
        and part.get("type") in ("text", "input_text", "output_text")
        and not str(part.get("text", "")).strip()
    )


def _clean_messages(messages: list[Any]) -> bool:
    changed = False
    kept = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            parts = [p for p in content if not _is_empty_text(p)]
            if len(parts) != len(content):
                changed = True
                if not parts and not message.get("tool_calls"):
                    continue  # nothing left to say: drop the message rather than send an empty one
                message["content"] = parts
        kept.append(message)
    if len(kept) != len(messages):
        messages[:] = kept
    return changed


def sanitize(body: bytes, content_type: str) -> bytes:
    """The body with empty text blocks removed; the very same bytes when there was nothing to fix."""
    if "json" not in content_type or not body:
        return body
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body  # not ours to judge: upstream will answer it
    if not isinstance(data, dict):
        return body
    changed = False
    for key in ("messages", "input"):  # Anthropic/OpenAI chat use messages; Responses uses input
        value = data.get(key)
        if isinstance(value, list):
            changed |= _clean_messages(value)
    if isinstance(data.get("system"), list):
        system = [p for p in data["system"] if not _is_empty_text(p)]
        if len(system) != len(data["system"]):
            data["system"], changed = system, True
    return json.dumps(data).encode() if changed else body
