"""Model choice in the setup panel and the workspace sync indicator in the top bar, in Chromium.

The app runs the real way (scripts/run, supervisord) with the setup runner off; the tests play the
setup runner and the sync program by writing their status files, the contracts with the gateway.
Model choices need a workspace: that test runs in Databricks Apps mode against the fake workspace,
the browser sending the headers the Apps proxy would add.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from services import state
from services.setup.status import SetupState, SetupStatus, StepState, StepStatus, status_path, write_status
from tests.browser import test_browser
from tests.browser.test_browser import indicator
from tests.conftest import OWNER_EMAIL, Stack, apps_env
from tests.e2e.conftest import RunningApp, start_app, stop_app
from tests.fake_workspace import FakeWorkspace
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
browser = test_browser.browser  # the same Chromium fixture

ANTHROPIC = ["databricks-claude-haiku-4-5", "databricks-claude-opus-4-6", "databricks-claude-sonnet-4-6"]
GEMINI = ["databricks-gemini-2-5-flash"]  # not the Gemini CLI's default (databricks-gemini-3-1-pro)
CLAUDE_DEFAULT = "databricks-claude-opus-4-6"
GEMINI_DEFAULT = "databricks-gemini-3-1-pro"
COMMIT_A = "0123456789abcdef0123456789abcdef01234567"
COMMIT_B = "fedcba9876543210fedcba9876543210fedcba98"

SELECTS_JS = """() => Object.fromEntries(
  [...document.querySelectorAll('#setup-panel select.model-select')].map((s) => [s.dataset.agent, {
    value: s.value, disabled: s.disabled, label: s.getAttribute('aria-label'),
    options: [...s.options].map(
      (o) => ({value: o.value, text: o.textContent, unlisted: 'unlisted' in o.dataset})),
  }]))"""
REPOS_JS = """() => Object.fromEntries(
  [...document.querySelectorAll('#sync-popover .sync-repo')].map((li) => {
    const text = (name) => { const n = li.querySelector(name); return n.hidden ? '' : n.textContent; };
    return [li.dataset.repo, {state: li.dataset.state, badge: text('.sync-repo-badge'),
      meta: text('.sync-repo-meta'), error: text('.sync-repo-error'), skipped: text('.sync-repo-skipped')}];
  }))"""

# Plays the browser hiding or showing the tab: document.visibilityState and its event.
VISIBILITY_JS = """(state) => {
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => state});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def chat(name: str) -> dict[str, Any]:
    return {"name": name, "task": "llm/v1/chat", "state": {"ready": "READY"}}


@pytest.fixture
def local_app(stack: Stack) -> Iterator[RunningApp]:
    """Local mode: no DATABRICKS_HOST/TOKEN, so no workspace. The setup runner is off (stack env)."""
    running = start_app(stack)
    yield running
    stop_app(running)


@pytest.fixture
def apps_app(stack: Stack, workspace: FakeWorkspace) -> Iterator[RunningApp]:
    """Databricks Apps mode against the fake workspace, which lists chat endpoints of each family."""
    workspace.endpoints = [
        *(chat(name) for name in ANTHROPIC),
        *(chat(name) for name in GEMINI),
        chat("databricks-gpt-5-3-codex"),
        {"name": "databricks-bge-large-en", "task": "llm/v1/embeddings", "state": {"ready": "READY"}},
    ]
    stack.env = apps_env(stack, workspace)
    running = start_app(stack)
    yield running
    stop_app(running)


def owner_headers(app: RunningApp) -> dict[str, str]:
    # The Apps proxy's headers; Chromium's Origin (http://127.0.0.1:PORT) must match X-Forwarded-Host.
    return {"X-Forwarded-Email": OWNER_EMAIL, "X-Forwarded-Host": f"127.0.0.1:{app.stack.port}"}


def answers(app: RunningApp, path: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(app.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def open_page(
    browser: Browser, app: RunningApp, headers: dict[str, str], query: str = ""
) -> tuple[Page, list[str]]:
    """The page, connected, and the JS errors it raises from the first script on."""
    page = browser.new_context(extra_http_headers=headers).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{app.url}/{query}")
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=20, what="terminal connected")
    return page, errors


def agents_installed(app: RunningApp) -> None:
    """Setup done, Claude Code and Gemini CLI installed: the panel shows their launchers."""
    steps = [
        StepStatus("claude", "Claude Code", "npm", StepState.OK, agent=True, version="2.1.197"),
        StepStatus("gemini", "Gemini CLI", "npm", StepState.OK, agent=True, version="0.61.0"),
    ]
    now = time.time()
    write_status(status_path(app.stack.settings), SetupStatus(SetupState.DONE, now - 5, now, steps=steps))


def open_setup_panel(page: Page) -> None:
    wait_until(
        lambda: page.evaluate("document.getElementById('setup-badge').dataset.state") == "done",
        timeout=10,
        what="setup badge",
    )
    page.locator("#setup-badge").click()
    assert page.locator("#setup-panel").is_visible()


def selects(page: Page) -> dict[str, dict[str, Any]]:
    return dict(page.evaluate(SELECTS_JS))


def toast_text(page: Page) -> str:
    toast = page.locator("#toast")
    return toast.inner_text() if toast.is_visible() else ""


def claude_model(stack: Stack) -> str | None:
    try:
        settings = json.loads((stack.home / ".claude" / "settings.json").read_text())
    except (OSError, ValueError):
        return None
    model = settings.get("env", {}).get("ANTHROPIC_MODEL")
    return model if isinstance(model, str) else None


def test_choose_a_model_per_agent(browser: Browser, apps_app: RunningApp) -> None:
    headers = owner_headers(apps_app)
    wait_until(lambda: answers(apps_app, "/api/sessions", headers) == 200, timeout=30, what="owner known")
    agents_installed(apps_app)
    page, errors = open_page(browser, apps_app, headers)
    open_setup_panel(page)

    # One select per launcher: the family's endpoints, the current model chosen.
    wait_until(lambda: selects(page).keys() == {"claude", "gemini"}, timeout=15, what="selects")
    shown = selects(page)
    claude = shown["claude"]
    assert [o["value"] for o in claude["options"]] == ANTHROPIC
    assert claude["value"] == CLAUDE_DEFAULT and not any(o["unlisted"] for o in claude["options"])
    assert claude["label"] == "Model for Claude Code" and not claude["disabled"]
    # The Gemini CLI's model is not among the workspace's endpoints: still there, marked as such.
    gemini = shown["gemini"]
    assert gemini["value"] == GEMINI_DEFAULT
    assert gemini["options"][0] == {
        "value": GEMINI_DEFAULT,
        "text": f"{GEMINI_DEFAULT} (not listed)",
        "unlisted": True,
    }
    assert [o["value"] for o in gemini["options"][1:]] == GEMINI
    assert page.locator("#setup-panel .launcher[data-agent=claude]").is_visible()  # the launcher stays
    assert not page.locator("#setup-panel .models-note").is_visible()

    # A choice rewrites Claude Code's config and says so.
    page.get_by_label("Model for Claude Code").select_option("databricks-claude-sonnet-4-6")
    expected = "Claude Code will use databricks-claude-sonnet-4-6 in new windows"
    wait_until(lambda: toast_text(page) == expected, timeout=15, what="confirmation toast")
    wait_until(
        lambda: claude_model(apps_app.stack) == "databricks-claude-sonnet-4-6",
        timeout=10,
        what="ANTHROPIC_MODEL in ~/.claude/settings.json",
    )

    # Refused: the error is shown and the select goes back to the model in force.
    def refuse(route: Any) -> None:
        route.fulfill(status=400, json={"error": "refused by the test"})

    page.route("**/api/agents/claude/model", refuse)
    page.get_by_label("Model for Claude Code").select_option("databricks-claude-haiku-4-5")
    wait_until(lambda: "refused by the test" in toast_text(page), timeout=10, what="error toast")
    assert toast_text(page) == "Could not change Claude Code's model: refused by the test"
    wait_until(
        lambda: selects(page)["claude"]["value"] == "databricks-claude-sonnet-4-6", timeout=5, what="reverted"
    )
    page.unroute("**/api/agents/claude/model")
    assert claude_model(apps_app.stack) == "databricks-claude-sonnet-4-6"

    # The choice is the server's: a new page shows it, and the panel fits a 360 px phone.
    page.set_viewport_size({"width": 360, "height": 640})
    page.reload()
    wait_until(lambda: indicator(page)["state"] == "connected", timeout=20, what="reconnected")
    open_setup_panel(page)
    wait_until(
        lambda: selects(page).get("claude", {}).get("value") == "databricks-claude-sonnet-4-6",
        timeout=15,
        what="choice kept",
    )
    for agent in ("claude", "gemini"):
        box = page.locator(f"#setup-panel select[data-agent={agent}]").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
    assert not errors, errors


def claude_settings(stack: Stack) -> dict[str, Any]:
    try:
        data = json.loads((stack.home / ".claude" / "settings.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def test_switch_mlflow_tracing_per_agent(
    browser: Browser, apps_app: RunningApp, workspace: FakeWorkspace
) -> None:
    headers = owner_headers(apps_app)
    wait_until(lambda: answers(apps_app, "/api/sessions", headers) == 200, timeout=30, what="owner known")
    agents_installed(apps_app)
    page, errors = open_page(browser, apps_app, headers)
    open_setup_panel(page)
    trace = page.get_by_label("Trace Claude Code to MLflow")
    wait_until(trace.is_visible, timeout=15, what="Claude Code's trace switch")
    # Only agents the mlflow package can trace get a switch.
    assert page.locator("#setup-panel .trace-switch input").count() == 1
    assert not trace.is_checked()

    trace.check()
    experiment = f"/Users/{OWNER_EMAIL}/coding-agents"
    expected = f"Claude Code: new windows trace to {experiment}"
    wait_until(lambda: toast_text(page) == expected, timeout=30, what="tracing-on toast")
    assert workspace.mlflow.by_name(experiment) is not None
    assert claude_settings(apps_app.stack)["env"]["MLFLOW_TRACKING_URI"] == "databricks"
    label = page.locator("#setup-panel .trace-switch")
    assert experiment in (label.get_attribute("title") or "")

    trace.uncheck()
    wait_until(lambda: toast_text(page) == "Claude Code: MLflow tracing off", timeout=30, what="off toast")
    assert "hooks" not in claude_settings(apps_app.stack)

    # Wanted but impossible: the switch stays on, marked, and says why.
    workspace.refusals.append(
        ("GET", "/mlflow/experiments/get-by-name", 403, "PERMISSION_DENIED", "MLflow is off")
    )
    trace.check()
    wait_until(lambda: "tracing could not start" in toast_text(page), timeout=30, what="failure toast")
    assert "MLflow is off" in toast_text(page)
    wait_until(lambda: "trace-failed" in (label.get_attribute("class") or ""), timeout=5, what="marked")
    assert trace.is_checked() and "MLflow is off" in (label.get_attribute("title") or "")
    assert not errors, errors


def test_models_without_a_workspace(browser: Browser, local_app: RunningApp) -> None:
    agents_installed(local_app)
    assert answers(local_app, "/api/models", {"Authorization": f"Bearer {local_app.stack.token}"}) == 503
    page, errors = open_page(browser, local_app, {}, f"?token={local_app.stack.token}")
    open_setup_panel(page)
    note = page.locator("#setup-panel .models-note")
    wait_until(note.is_visible, timeout=15, what="models note")
    assert note.inner_text() == "models: no workspace configured"
    assert page.locator("#setup-panel select").count() == 0
    assert page.locator("#setup-panel .launcher").count() == 2  # launchers are unaffected
    assert not errors, errors


def repo(name: str, state: str, **fields: Any) -> dict[str, Any]:
    """One repository as the sync program reports it (contract of GET /api/sync)."""
    defaults = {"last_synced_commit": None, "last_synced_at": None, "pending": 0, "last_error": ""}
    return {"name": name, "state": state, **defaults, "skipped_large": [], **fields}


def write_sync(app: RunningApp, status: dict[str, Any]) -> None:
    state.atomic_write_json(app.stack.state_dir / "sync" / "status.json", status, mode=0o644)


def sync_badge(page: Page) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => { const b = document.getElementById('sync-badge');
                       return {state: b.dataset.state ?? null, hidden: b.hidden, title: b.title}; }"""
        )
    )


def stop_sync_program(app: RunningApp) -> None:
    """This test plays the sync program; a real one under supervisord would overwrite its file."""
    if "no such process" in app.ctl("status", "sync").lower():
        return
    app.ctl("stop", "sync")
    wait_until(
        lambda: (
            not any(s in app.ctl("status", "sync") for s in ("RUNNING", "STARTING", "STOPPING", "BACKOFF"))
        ),
        timeout=15,
        what="sync program stopped",
    )


def test_sync_indicator_follows_the_status_file(browser: Browser, local_app: RunningApp) -> None:
    stop_sync_program(local_app)
    page, errors = open_page(browser, local_app, {}, f"?token={local_app.stack.token}")
    route = page.evaluate("async () => (await fetch('/api/sync')).status")
    if route == 404:
        pytest.skip("GET /api/sync is not served yet (services/gateway): the sync indicator stays hidden")
    assert route == 200
    initial = page.evaluate("async () => (await fetch('/api/sync')).json()")
    if not initial["repos"]:  # no file yet: {"state": "idle", "repos": []}, nothing to show
        assert sync_badge(page)["hidden"]

    now = time.time()
    failing = repo(
        "beta",
        "error",
        pending=3,
        last_error="workspace import failed: 403 PERMISSION_DENIED",
        skipped_large=["data/big.bin"],
        attempts=2,  # keys the page does not know are ignored
    )
    alpha = repo("alpha", "synced", last_synced_commit=COMMIT_A, last_synced_at=now - 150)
    write_sync(local_app, {"state": "error", "repos": [alpha, failing], "remote_root": "/Workspace/x"})
    wait_until(lambda: sync_badge(page)["state"] == "error", timeout=15, what="red sync badge")
    assert not sync_badge(page)["hidden"]
    page.locator("#sync-badge").click()
    popover = page.locator("#sync-popover")
    assert popover.is_visible()
    assert page.locator("#sync-badge").get_attribute("aria-expanded") == "true"
    repos = page.evaluate(REPOS_JS)
    assert list(repos) == ["alpha", "beta"]
    assert repos["alpha"] == {
        "state": "synced",
        "badge": "synced",
        "meta": f"{COMMIT_A[:7]} · synced 2 min ago",
        "error": "",
        "skipped": "",
    }
    beta = repos["beta"]
    assert beta["state"] == "error" and beta["badge"] == "error"
    assert beta["meta"] == "never synced · 3 pending"
    assert beta["error"] == "workspace import failed: 403 PERMISSION_DENIED"
    assert "data/big.bin" in beta["skipped"]
    assert page.locator("#sync-popover .sync-summary").inner_text() == "1 of 2 repositories failed"

    # Fixed: every repository synced, the badge turns green while the popover stays open.
    beta = repo("beta", "synced", last_synced_commit=COMMIT_B, last_synced_at=time.time())
    write_sync(local_app, {"state": "idle", "repos": [alpha, beta]})
    wait_until(lambda: sync_badge(page)["state"] == "synced", timeout=15, what="green sync badge")
    beta = page.evaluate(REPOS_JS)["beta"]
    assert beta["meta"] == f"{COMMIT_B[:7]} · synced just now" and beta["error"] == "", beta

    # Compact: on a 360 px phone the badge stays in the bar and the popover on the screen.
    page.set_viewport_size({"width": 360, "height": 640})
    badge_box = page.locator("#sync-badge").bounding_box()
    box = popover.bounding_box()
    assert badge_box is not None and badge_box["x"] + badge_box["width"] <= 360, badge_box
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
    page.locator("#sync-popover .panel-close").click()
    wait_until(lambda: not popover.is_visible(), timeout=5, what="popover closed")
    assert page.evaluate("document.activeElement?.classList.contains('xterm-helper-textarea')")

    # Nothing mirrored without a workspace: the badge goes away. Seen at once when the page comes back
    # into view (a hidden page does not poll; a visible one looks again straight away).
    page.evaluate(VISIBILITY_JS, "hidden")
    write_sync(local_app, {"state": "no workspace", "reason": "DATABRICKS_HOST is not set", "repos": []})
    page.evaluate(VISIBILITY_JS, "visible")
    wait_until(lambda: sync_badge(page)["hidden"], timeout=3, what="sync badge hidden")
    assert not errors, errors


RESTORE_JS = """() => { const n = document.getElementById('restore-notice');
  return {hidden: n.hidden, text: n.querySelector('.restore-text').textContent,
          items: [...n.querySelectorAll('.restore-items li')].map((li) => li.textContent),
          above: n.getBoundingClientRect().bottom
                 <= document.getElementById('terminal').getBoundingClientRect().top};
}"""


def test_restore_notice_above_the_terminal(browser: Browser, local_app: RunningApp) -> None:
    stop_sync_program(local_app)
    root = "/Users/x@example.com/projects"
    started = time.time()
    items = [{"name": n, "outcome": "waiting", "path": "", "message": ""} for n in ("app", "lib", "web")]
    restore = {"phase": "restoring", "remote_root": root, "total": 3, "done": 0, "started_at": started}
    write_sync(local_app, {"state": "idle", "repos": [], "restore": {**restore, "items": items}})
    page, errors = open_page(browser, local_app, {}, f"?token={local_app.stack.token}")
    notice = wait_until(lambda: (r := page.evaluate(RESTORE_JS)) and not r["hidden"] and r, what="the notice")
    assert notice["text"] == f"Restoring 3 projects from /Workspace{root}… ~/projects fills in a moment"
    assert notice["above"] and notice["items"] == []

    # Done: the plain restores need no word; one beside a folder of the user's does, until dismissed.
    beside = "~/projects/web is in use: left as it is, restored beside it as ~/projects/web.restored"
    items = [
        {
            "name": "app",
            "outcome": "restored",
            "path": "projects/app",
            "message": "restored as ~/projects/app",
        },
        {"name": "lib", "outcome": "into empty folder", "path": "projects/lib", "message": "..."},
        {"name": "web", "outcome": "beside", "path": "projects/web.restored", "message": beside},
    ]
    restore.update(phase="done", done=3, finished_at=time.time())
    write_sync(local_app, {"state": "idle", "repos": [], "restore": {**restore, "items": items}})
    wait_until(lambda: page.evaluate(RESTORE_JS)["items"] == [beside], timeout=5, what="the outcome")
    assert page.evaluate(RESTORE_JS)["text"] == f"Restored 3 projects from /Workspace{root}:"
    page.locator("#restore-notice .restore-dismiss").click()
    assert page.evaluate(RESTORE_JS)["hidden"]
    page.reload()  # dismissed for this restore, for the tab's life
    # The notice is updated right after the badge, in the same poll: once the badge has a title, it was.
    page.wait_for_function("() => document.getElementById('sync-badge').title !== ''")
    assert page.evaluate(RESTORE_JS)["hidden"]
    assert not errors, errors
