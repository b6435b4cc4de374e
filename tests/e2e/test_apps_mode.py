"""Apps mode under a real supervisord: owner-only access, workspace identity in the shells."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPResponse

from tests.conftest import OWNER_EMAIL, Stack, apps_env
from tests.e2e.conftest import RunningApp, start_app, stop_app
from tests.fake_workspace import FakeWorkspace
from tests.helpers import TermClient, strip_ansi, wait_until

pytestmark = pytest.mark.slow

PROXY_HOST = "coding-agents-test-1234.aws.databricksapps.com"
IDENTITY_ONLY = """
tools:
  git-identity:
    title: Workspace identity
    kind: builtin
    run: workspace_identity
"""


def as_user(email: str | None, **extra: str) -> dict[str, str]:
    headers = {"X-Forwarded-Host": PROXY_HOST, "Origin": f"https://{PROXY_HOST}", **extra}
    if email is not None:
        headers["X-Forwarded-Email"] = email
    return headers


async def fetch(app: RunningApp, path: str, method: str = "GET", **kwargs: object) -> HTTPResponse:
    if method == "POST":
        kwargs.setdefault("body", b"")
    http = AsyncHTTPClient()
    return await http.fetch(
        app.url + path, method=method, raise_error=False, follow_redirects=False, **kwargs
    )


@pytest.fixture
def apps_app(stack: Stack, workspace: FakeWorkspace) -> Iterator[RunningApp]:
    # What the owner already had: an alias and a second CLI profile must survive.
    (stack.home / ".gitconfig").write_text("[alias]\n\tst = status\n")
    (stack.home / ".databrickscfg").write_text(
        "[staging]\nhost = https://staging.example.com\ntoken = keep\n"
    )
    # Setup runs under supervisord as in production, with only the identity step of agents.yaml.
    registry = stack.root / "identity-only.yaml"
    registry.write_text(IDENTITY_ONLY)
    stack.env = apps_env(stack, workspace, CODING_AGENTS_SETUP="on", CODING_AGENTS_REGISTRY=str(registry))
    app = start_app(stack)
    # /health answers at once; the owner is known a moment later (503 until then, by design).
    wait_until(lambda: owner_known(app), timeout=30, what="the owner looked up")
    yield app
    stop_app(app)


def owner_known(app: RunningApp) -> bool:
    request = urllib.request.Request(app.url + "/api/sessions", headers=as_user(OWNER_EMAIL))
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return False


async def poll_session(app: RunningApp, headers: dict[str, str], command: str, needle: str) -> None:
    """The long-poll fallback end to end: open, wait for ready, type, read the answer."""
    opened = await fetch(app, "/api/sessions/main/poll?cols=100&rows=30", "POST", headers=headers)
    assert opened.code == 201, opened.body
    base = f"/api/sessions/main/poll/{json.loads(opened.body)['conn']}"
    output = bytearray()
    sent = False
    deadline = time.monotonic() + 20
    while needle not in strip_ansi(bytes(output)):
        assert time.monotonic() < deadline, strip_ansi(bytes(output))[-300:]
        polled = await fetch(app, base, headers=headers, request_timeout=40)
        assert polled.code == 200, polled.body
        for message in json.loads(polled.body)["messages"]:
            if message["type"] == "output":
                output += base64.b64decode(message["data"])
            if message["type"] == "ready" and not sent:
                body = json.dumps([{"type": "input", "data": command + "\r"}])
                as_json = {**headers, "Content-Type": "application/json"}  # as the page sends it
                assert (await fetch(app, base, "POST", headers=as_json, body=body)).code == 204
                sent = True
    await fetch(app, base, "DELETE", headers=headers)


async def test_owner_in_over_both_transports_everyone_else_out(apps_app: RunningApp) -> None:
    # The owner, whatever the case of the proxy's header, on plain HTTP, WebSocket and long-poll.
    page = await fetch(apps_app, "/", headers=as_user(OWNER_EMAIL.upper()))
    assert page.code == 200 and b"<html" in page.body.lower()
    cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    client = await TermClient.connect(apps_app.url, "main", None, headers=as_user(OWNER_EMAIL.lower()))
    await client.wait_ready()
    await client.type("echo $((6*7))ws\r")
    await client.wait_text("42ws")
    client.close()
    await poll_session(apps_app, as_user(OWNER_EMAIL), "echo $((6*8))poll", "48poll")

    # A WebSocket upgrade that lost its identity headers gets in with the owner's cookie ...
    by_cookie = await TermClient.connect(apps_app.url, "main", None, headers=as_user(None, Cookie=cookie))
    await by_cookie.wait_ready()
    by_cookie.close()
    # ... but the cookie never outweighs a header naming someone else, and a forged one is nothing.
    forged = cookie.split("=", 1)[0] + "=" + base64.b64encode(b"owner:alice@example.com").decode()
    refused = [
        (as_user("mallory@example.com"), 403),
        (as_user("mallory@example.com", Cookie=cookie), 403),
        (as_user(None), 401),
        (as_user(None, Cookie=forged), 401),
    ]
    for headers, status in refused:
        for path in ("/", "/static/style.css", "/api/sessions", "/js/protocol.js"):
            assert (await fetch(apps_app, path, headers=headers)).code == status, (path, headers)
        opened = await fetch(apps_app, "/api/sessions/main/poll", "POST", headers=headers)
        assert opened.code == status
        with pytest.raises(HTTPClientError) as err:
            await TermClient.connect(apps_app.url, "main", None, headers=headers)
        assert err.value.code == status
    other = await fetch(apps_app, "/", headers=as_user("mallory@example.com"))
    assert f"this app belongs to {OWNER_EMAIL}, you are mallory@example.com" in other.body.decode()
    assert (await fetch(apps_app, "/health")).code == 200


async def test_shells_act_as_the_owner_never_as_the_app(apps_app: RunningApp, stack: Stack) -> None:
    client = await TermClient.connect(apps_app.url, "main", None, cols=200, headers=as_user(OWNER_EMAIL))
    await client.wait_ready()
    sdk_me = (
        f"{sys.executable} -c 'from databricks.sdk import WorkspaceClient as W; "
        'print("ME=" + W().current_user.me().user_name)\''
    )
    commands = [
        'echo "SECRETS=$(env | grep -c -e CLIENT_ID -e CLIENT_SECRET -e DATABRICKS_TOKEN)"',
        'echo "EMAIL=$(git config user.email) NAME=$(git config user.name) ALIAS=$(git config alias.st)"',
        'echo "MODE=$(stat -c %a ~/.databrickscfg) HOST=$DATABRICKS_HOST"',
        sdk_me,
    ]
    # The identity is written once the owner is known, which may be just after the gateway starts.
    wait_until(lambda: (stack.home / ".databrickscfg").read_text().startswith("[DEFAULT]"), what="profile")
    for command in commands:
        await client.type(command + "\r")
    await client.read_until(lambda c: re.search(r"\nME=[^\"\s]+", c.text) is not None, timeout=30)
    text = client.text
    assert "SECRETS=0" in text
    assert f"EMAIL={OWNER_EMAIL} NAME=Alice Example ALIAS=status" in text
    assert f"MODE=600 HOST={stack.env['DATABRICKS_HOST']}" in text
    # The real SDK in the terminal, with no token in its environment, acts as the owner.
    assert f"ME={OWNER_EMAIL}" in text
    assert "[staging]" in (stack.home / ".databrickscfg").read_text()
    client.close()


async def test_workspace_down_at_start_is_503_until_it_answers(
    stack: Stack, workspace: FakeWorkspace
) -> None:
    workspace.stop()
    stack.env = apps_env(stack, workspace)
    app = start_app(stack)
    try:
        gateway_pid = app.program_pid("gateway")
        page = await fetch(app, "/", headers=as_user(OWNER_EMAIL))
        assert page.code == 503 and "retrying" in page.body.decode()
        with pytest.raises(HTTPClientError) as err:
            await TermClient.connect(app.url, "main", None, headers=as_user(OWNER_EMAIL))
        assert err.value.code == 503
        workspace.start()
        deadline = time.monotonic() + 30
        while (await fetch(app, "/api/sessions", headers=as_user(OWNER_EMAIL))).code != 200:
            assert time.monotonic() < deadline, app.log()
            await asyncio.sleep(0.1)
        assert app.program_pid("gateway") == gateway_pid  # no restart needed
    finally:
        stop_app(app)
