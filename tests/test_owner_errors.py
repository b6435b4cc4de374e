"""Owner lookup failures name their real cause, each against a real server on 127.0.0.1.

databricks-sdk reports all of these as "Timed out after ..."; services.workspace_errors digs out the
cause, and the gateway's resolver puts it on the platform log once per reason.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from services import databricks, platform_log
from services.config import Settings
from services.databricks import WorkspaceUnavailable
from services.gateway.owner import OwnerResolver
from tests.conftest import OWNER_EMAIL, OWNER_TOKEN
from tests.fake_workspace import FakeWorkspace
from tests.helpers import async_wait_until


def lookup(tmp_path: Path, host: str) -> str:
    """The message a failed lookup gives (the test fails if it succeeds)."""
    env = {"HOME": str(tmp_path), "DATABRICKS_HOST": host, "DATABRICKS_TOKEN": OWNER_TOKEN}
    with pytest.raises(WorkspaceUnavailable) as failure:
        databricks.lookup_owner(Settings.from_env(env), timeout=1)
    return str(failure.value)


def hostport(url: str) -> str:
    return url.removeprefix("http://")


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that completes the TCP handshake (the kernel's backlog) and then never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


@pytest.fixture
def self_signed_https(tmp_path: Path) -> Iterator[int]:
    """An HTTPS server whose certificate no CA signed (as behind a TLS-inspecting proxy)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True)

    class Quiet(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    class TlsServer(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the client aborting the handshake is the point of this server

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = TlsServer(("127.0.0.1", 0), Quiet)
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join()


def test_plain_http_host_without_scheme_is_a_tls_failure_with_the_fix(
    tmp_path: Path, workspace: FakeWorkspace
) -> None:
    # DATABRICKS_HOST without a scheme becomes https://, and this workspace speaks plain HTTP.
    where = hostport(workspace.url)
    message = lookup(tmp_path, where)
    assert message == (
        f"TLS handshake with https://{where} failed (wrong version number): "
        f"is it plain HTTP? set DATABRICKS_HOST=http://{where}"
    )


def test_untrusted_certificate_names_the_ca_bundle_variables(tmp_path: Path, self_signed_https: int) -> None:
    message = lookup(tmp_path, f"https://127.0.0.1:{self_signed_https}")
    assert message.startswith(f"TLS certificate of https://127.0.0.1:{self_signed_https} not trusted (")
    assert "self-signed certificate" in message
    assert "REQUESTS_CA_BUNDLE" in message and "SSL_CERT_FILE" in message


def test_closed_port_is_connection_refused(tmp_path: Path, closed_port: int) -> None:
    message = lookup(tmp_path, f"http://127.0.0.1:{closed_port}")
    assert message == (
        f"connection to 127.0.0.1:{closed_port} refused (nothing listens there): "
        "check DATABRICKS_HOST and its port"
    )


def test_unresolvable_name_is_a_dns_failure(tmp_path: Path) -> None:
    message = lookup(tmp_path, "no-such-host.invalid")
    assert message.startswith("cannot resolve no-such-host.invalid (name not found")
    assert message.endswith("check DATABRICKS_HOST")


def test_server_that_never_answers_is_a_timeout(tmp_path: Path, silent_port: int) -> None:
    message = lookup(tmp_path, f"http://127.0.0.1:{silent_port}")
    assert message == f"http://127.0.0.1:{silent_port} did not answer within 1 s (timed out)"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            "unauthorized",
            r"refused DATABRICKS_TOKEN \(401 Invalid access token\): the token is invalid or expired",
        ),
        ("forbidden", r"answered 403 \(This API is disabled for the user\): .*CODING_AGENTS_OWNER"),
    ],
    ids=["401", "403"],
)
def test_refused_token_says_why(tmp_path: Path, workspace: FakeWorkspace, mode: str, expected: str) -> None:
    workspace.mode = mode
    message = lookup(tmp_path, workspace.url)
    assert message.startswith(workspace.url), message
    assert re.search(expected, message), message


async def test_failure_is_announced_once_per_reason_then_resolved(
    tmp_path: Path,
    workspace: FakeWorkspace,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(platform_log, "_last", {})  # forget lines other tests announced
    where = hostport(workspace.url)
    env = {"HOME": str(tmp_path), "DATABRICKS_HOST": where, "DATABRICKS_TOKEN": OWNER_TOKEN}
    settings = [Settings.from_env(env)]
    resolver = OwnerResolver(
        lambda: databricks.lookup_owner(settings[0], timeout=1), first_retry=0.05, max_retry=30
    )
    task = asyncio.create_task(resolver.run())
    try:
        await async_wait_until(lambda: resolver.status.attempts >= 2, timeout=60, what="two failed lookups")
        announced = [line for line in capsys.readouterr().err.splitlines() if "owner lookup" in line]
        assert announced == [
            f"[coding-agents] owner lookup failed: TLS handshake with https://{where} failed (wrong version "
            f"number): is it plain HTTP? set DATABRICKS_HOST=http://{where}; retrying every 30 s at most"
        ]
        settings[0] = Settings.from_env({**env, "DATABRICKS_HOST": workspace.url})  # the operator's fix
        resolver.retry_now()
        owner = await asyncio.wait_for(task, 30)
    finally:
        task.cancel()
    assert owner.email == OWNER_EMAIL
    announced = [line for line in capsys.readouterr().err.splitlines() if "owner lookup" in line]
    assert announced == [f"[coding-agents] owner lookup succeeded: the app's owner is {OWNER_EMAIL}"]
