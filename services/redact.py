"""Keep secrets out of log lines: every value this process knows to be secret, and the values of
query parameters that carry credentials (`?token=`, Gemini-style `?key=`), become `[redacted]`.

Secrets are registered where they are read (services.config, services.state), so a program's logs
mask them without each log call having to remember.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qsl, urlsplit

MASK = "[redacted]"
# Shorter values would mask ordinary words; every secret the app handles is far longer.
MIN_SECRET_LENGTH = 8
SECRET_PARAMS = re.compile(
    r"(?i)([?&;](?:token|key|api_key|apikey|access_token|client_secret|secret|password|code)=)[^&\s\"'#]+"
)
# `https://user:password@host/…` (a git remote with a token in it).
URL_CREDENTIALS = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")
# Query parameters whose values are worth seeing in an access log; every other value is masked.
PLAIN_PARAMS = frozenset({"cols", "rows", "transport"})

_values: set[str] = set()
_lock = threading.Lock()


def hide(*values: str) -> None:
    """Mask these values wherever they appear in this process's log lines from now on."""
    with _lock:
        _values.update(v for v in values if len(v) >= MIN_SECRET_LENGTH)


def redact(text: str) -> str:
    text = SECRET_PARAMS.sub(lambda m: m.group(1) + MASK, text)
    text = URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + "@", text)
    with _lock:
        values = sorted(_values, key=len, reverse=True)  # a secret containing another masks whole
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def uri(raw: str) -> str:
    """A request URI for a log line: the path, and the query with every value masked but PLAIN_PARAMS."""
    parts = urlsplit(raw)
    if not parts.query:
        return redact(raw)
    query = "&".join(
        f"{name}={value if name in PLAIN_PARAMS else MASK}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return redact(f"{parts.path}?{query}")
