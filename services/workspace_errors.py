"""Why a workspace call failed, in one line with the fix.

databricks-sdk wraps the last error of its retry loop in TimeoutError("Timed out after 0:00:04"),
whatever it was: a TLS handshake with a plain-HTTP host, a name that does not resolve and a refused
connection all read "Timed out". The real cause is further down the exception chain.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

# How far down __cause__/__context__/args to look; the SDK's chains are about five deep.
MAX_CHAIN = 20


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it was raised from or wraps, outermost first, each once."""
    seen: set[int] = set()
    pending = [exc]
    while pending and len(seen) < MAX_CHAIN:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        # urllib3 keeps the underlying error as an argument (MaxRetryError.reason, SSLError(err)).
        pending += [
            a for a in (*current.args, getattr(current, "reason", None)) if isinstance(a, BaseException)
        ]


def _http_status(exc: BaseException) -> int | None:
    from databricks.sdk.errors.platform import PermissionDenied, Unauthenticated

    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, PermissionDenied):
        return 403
    return None


def _is_timeout(exc: BaseException) -> bool:
    import requests
    import urllib3.exceptions

    return isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError | socket.timeout)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def explain(exc: BaseException, host: str, timeout: float) -> str | None:
    """What went wrong talking to `host` (a URL) and how to fix it; None if the cause is none of
    TLS, DNS, refused connection, timeout, 401 or 403 (the caller then shows the error itself)."""
    parts = urlsplit(host)
    netloc, hostname = parts.netloc or host, parts.hostname or host
    chain = list(causes(exc))
    for cause in chain:
        status = _http_status(cause)
        message = _first_line(cause).split(". Config:", 1)[0]  # the SDK appends its whole config
        if status == 401:
            return (
                f"{host} refused DATABRICKS_TOKEN (401 {message}): the token is invalid or expired; "
                "create a new personal access token and update the app's secret"
            )
        if status == 403:
            return (
                f"{host} answered 403 ({message}): the token's user may not read its own identity "
                "(SCIM Me); use a token of a workspace user with access, or set CODING_AGENTS_OWNER"
            )
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or _first_line(cause)
            return (
                f"TLS certificate of {host} not trusted ({reason}): if a proxy or private CA signs it, "
                "point REQUESTS_CA_BUNDLE (or SSL_CERT_FILE) at a bundle holding that CA"
            )
        if isinstance(cause, ssl.SSLError):
            reason = (cause.reason or _first_line(cause)).replace("_", " ").lower()
            fix = ""
            if reason == "wrong version number":
                fix = f": is it plain HTTP? set DATABRICKS_HOST=http://{netloc}"
            return f"TLS handshake with {host} failed ({reason}){fix}"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve {hostname} (name not found: {cause.strerror}): check DATABRICKS_HOST"
        if isinstance(cause, ConnectionRefusedError):
            return (
                f"connection to {netloc} refused (nothing listens there): check DATABRICKS_HOST and its port"
            )
    if any(_is_timeout(cause) for cause in chain) or (isinstance(exc, TimeoutError) and len(chain) == 1):
        return f"{host} did not answer within {timeout:g} s (timed out)"
    return None
