"""`scripts/bench page`: what loading the page costs on the wire, cold and on a warm reload, in
Chromium (Playwright; DevTools network events count requests and transferred bytes).

Baseline, measured in the same run against the same gateway: /static/index.html, which is the page
served the old way (unversioned URLs, revalidated on every load, not compressed).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench import TOKEN, healthy, launch, private_stack, row, shut_down  # noqa: E402
from playwright.sync_api import Browser, Page, StorageState, sync_playwright  # noqa: E402

from tests.browser.conftest import ARGS, CHROMIUM  # noqa: E402
from tests.page_weight import Load, measure  # noqa: E402

COLD_GOAL_KIB = 300
WARM_GOAL_REQUESTS = 5


def connected(page: Page) -> bool:
    state = page.evaluate("() => document.getElementById('connection').dataset.state")
    return bool(state == "connected")


def describe(load: Load) -> str:
    static = sum(1 for u in load.sent_urls() if "/static/" in u)
    return f"{load.requests} req ({static} static), {load.bytes / 1024:.0f} KiB"


def main() -> None:
    root, env, url = private_stack()
    env["CODING_AGENTS_SETUP"] = "off"  # the page, not an agent install, is measured
    print(f"# scripts/bench page — {time.strftime('%Y-%m-%d %H:%M')}")
    proc = launch(env)
    try:
        deadline = time.monotonic() + 60
        while not healthy(url):
            if time.monotonic() > deadline:
                sys.exit("the app did not answer /health within 60 s")
            time.sleep(0.05)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            # Signed in once (the token becomes a cookie), then every load is a plain one.
            login = browser.new_context()
            login.new_page().goto(f"{url}/?token={TOKEN}")
            state = login.storage_state()
            login.close()
            old_cold, old_warm = cold_and_warm_with(browser, state, f"{url}/static/index.html")
            new_cold, new_warm = cold_and_warm_with(browser, state, f"{url}/")
            browser.close()
        row(
            "page, cold load",
            describe(new_cold),
            f"unversioned {describe(old_cold)}",
            f"≤ {COLD_GOAL_KIB} KiB",
        )
        row(
            "page, warm reload",
            describe(new_warm),
            f"unversioned {describe(old_warm)}",
            f"≤ {WARM_GOAL_REQUESTS} req",
        )
        print(f"warm reload sends: {', '.join(u.removeprefix(url) for u in new_warm.sent_urls())}")
        if new_cold.bytes > COLD_GOAL_KIB * 1024 or new_warm.requests > WARM_GOAL_REQUESTS:
            sys.exit("page weight over its goal")
    finally:
        shut_down(proc, root)


def cold_and_warm_with(browser: Browser, state: StorageState, url: str) -> tuple[Load, Load]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, storage_state=state)
    page = context.new_page()
    cold = measure(page, lambda: page.goto(url), lambda: connected(page))
    warm = measure(page, page.reload, lambda: connected(page))
    context.close()
    return cold, warm


if __name__ == "__main__":
    main()
