"""The "Connect your workspace" panel in Chromium (issue 15): the app runs the real way (scripts/run,
supervisord) as a PAT-less Databricks App against the fake workspace, the browser sending the
headers the Apps proxy would add."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browser import test_accessibility, test_browser
from tests.browser.test_accessibility import assert_no_blocking
from tests.browser.test_browser import indicator
from tests.browser.test_models_sync_ui import answers, owner_headers, toast_text
from tests.conftest import APP_CLIENT_ID, APP_CLIENT_SECRET, OWNER_EMAIL, OWNER_TOKEN, Stack
from tests.credentials.conftest import OTHER_EMAIL, OTHER_NAME, OTHER_TOKEN, add_app, pat_less_env
from tests.e2e.conftest import RunningApp, start_app, stop_app
from tests.fake_credentials import add_service_principal
from tests.fake_workspace import FakeWorkspace
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
browser = test_browser.browser  # the same Chromium fixture
axe_source = test_accessibility.axe_source
STATUS_JS = "() => document.querySelector('#credentials-panel .credentials-status').textContent"


@pytest.fixture
def pat_less_app(stack: Stack, workspace: FakeWorkspace) -> Iterator[RunningApp]:
    add_service_principal(workspace, APP_CLIENT_ID, APP_CLIENT_SECRET)
    add_app(workspace)
    workspace.add_user(OTHER_TOKEN, OTHER_EMAIL, OTHER_NAME)
    stack.env = pat_less_env(stack, workspace)
    running = start_app(stack)
    yield running
    stop_app(running)


def sync_state(app: RunningApp, headers: dict[str, str]) -> str:
    request = urllib.request.Request(app.url + "/api/sync", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(json.loads(response.read())["state"])


def test_connect_your_workspace_panel(
    browser: Browser, pat_less_app: RunningApp, workspace: FakeWorkspace, axe_source: str
) -> None:
    headers = owner_headers(pat_less_app)
    wait_until(lambda: answers(pat_less_app, "/api/sessions", headers) == 200, timeout=30, what="owner")
    # axe is injected (the page's CSP would refuse it; the page's own code is unaffected).
    context = browser.new_context(extra_http_headers=headers, bypass_csp=True)
    context.add_init_script(axe_source)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(pat_less_app.url + "/")
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=20, what="terminal connected")
    panel = page.locator("#credentials-panel")
    badge = page.locator("#credentials-badge")
    # No token yet: the panel opens by itself and says where the owner came from.
    wait_until(panel.is_visible, timeout=20, what="the panel opening by itself")
    assert badge.get_attribute("data-state") == "bad"
    assert f"Owner: {OWNER_EMAIL} (from the app's creator" in page.evaluate(STATUS_JS)

    # Someone else's token: refused, naming them, in red, the panel still open.
    page.get_by_label("Personal access token").fill(OTHER_TOKEN)
    page.get_by_role("button", name="Connect").click()
    error = page.locator("#credentials-panel .credentials-error")
    wait_until(error.is_visible, timeout=15, what="the refusal")
    assert f"{OTHER_NAME} ({OTHER_EMAIL})" in error.inner_text()
    assert panel.is_visible() and not (pat_less_app.stack.home / ".databrickscfg").exists()
    assert_no_blocking(page, "the credentials panel with a refusal", "#credentials-panel")

    # The owner's: connected, the panel closes, the badge turns green; the value is never shown.
    page.get_by_label("Personal access token").fill(OWNER_TOKEN)
    page.get_by_role("button", name="Connect").click()
    wait_until(lambda: not panel.is_visible(), timeout=20, what="the panel closing")
    assert badge.get_attribute("data-state") == "ok"
    assert toast_text(page).startswith("Workspace connected")
    minted = workspace.credentials.history[0].token
    badge.click()
    assert panel.is_visible()
    status = page.evaluate(STATUS_JS)
    assert re.search(r"Connected: a token minted from the token you pasted, expires in 2[34] h", status)
    assert "Kept across restarts" in status
    assert page.get_by_label("Personal access token").input_value() == ""
    assert OWNER_TOKEN not in page.content() and minted not in page.content()
    page.keyboard.press("Escape")
    assert not panel.is_visible()
    cfg = (pat_less_app.stack.home / ".databrickscfg").read_text()
    assert f"token = {minted}" in cfg
    # The sync program (started before the paste, never restarted) connects with it.
    wait_until(lambda: sync_state(pat_less_app, headers) != "no workspace", timeout=30, what="the sync")
    assert errors == []
    context.close()
    # No token in any log of the real app: the programs' logs and what the platform shows.
    stack = pat_less_app.stack
    logs = [*stack.state_dir.joinpath("logs").rglob("*.log"), stack.root / "run.out"]
    assert len(logs) > 3
    for path in logs:
        text = path.read_text(errors="replace")
        assert OWNER_TOKEN not in text and OTHER_TOKEN not in text and minted not in text, path
