"""services.redact and the log format every program uses: secrets never reach a log line."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from services import redact
from services.platform_log import setup_logging


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        ("/?token=abc123secret", "/?token=[redacted]"),
        ("/api/sessions/main/ws?cols=80&rows=24", "/api/sessions/main/ws?cols=80&rows=24"),
        ("/a/gemini/gemini/v1beta/models/m:generate?key=AIzaSECRET&alt=sse", None),
        ("/static/app.js", "/static/app.js"),
    ],
)
def test_request_uris_keep_the_path_and_mask_query_values(raw: str, logged: str | None) -> None:
    out = redact.uri(raw)
    if logged is not None:
        assert out == logged
    assert "secret" not in out.lower() and "AIza" not in out


def test_every_log_line_masks_known_secrets_query_credentials_and_tracebacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    setup_logging("test")
    redact.hide("dapi-very-secret-pat-0123")
    log = logging.getLogger("test")
    log.info("fetching %s", "https://host/x?key=gem-key-999&alt=sse")
    log.warning("token is dapi-very-secret-pat-0123 here")
    try:
        raise ValueError("dapi-very-secret-pat-0123")
    except ValueError:
        log.exception("failed")
    logging.getLogger().handlers.clear()
    text = stream.getvalue()
    assert "gem-key-999" not in text and "dapi-very-secret-pat-0123" not in text, text
    assert "key=[redacted]&alt=sse" in text and "ValueError: [redacted]" in text


def test_credentials_in_a_url_are_masked() -> None:
    line = "pushing to https://alice:ghp_abcdef123456@github.com/alice/app.git and ssh://git@host/x"
    assert redact.redact(line) == (
        "pushing to https://[redacted]@github.com/alice/app.git and ssh://git@host/x"
    )
