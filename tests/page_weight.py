"""What a page load costs on the wire, from Chromium's own network events (DevTools protocol):
requests that left the browser and their transferred bytes (headers and compressed bodies).
Cache hits are not on the wire and are counted apart. Used by the browser tests and scripts/bench."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Page


@dataclass
class Load:
    wire: dict[str, int] = field(default_factory=dict)  # request id → bytes, for requests sent
    urls: dict[str, str] = field(default_factory=dict)
    cached: int = 0  # answered from the browser's cache, not sent

    @property
    def requests(self) -> int:
        return len(self.wire)

    @property
    def bytes(self) -> int:
        return sum(self.wire.values())

    def sent_urls(self) -> list[str]:
        return sorted(self.urls[r] for r in self.wire)


def measure(page: Page, load: Callable[[], Any], settled: Callable[[], bool], timeout: float = 30) -> Load:
    """Run `load` (a goto or reload) and count its traffic until `settled()` and the network is idle."""
    from tests.helpers import wait_until

    result = Load()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
    from_cache: set[str] = set()

    def sent(event: dict[str, Any]) -> None:
        result.urls[event["requestId"]] = event["request"]["url"]
        result.wire.setdefault(event["requestId"], 0)

    def answered(event: dict[str, Any]) -> None:
        response = event["response"]
        if response.get("fromDiskCache") or response.get("fromPrefetchCache"):
            from_cache.add(event["requestId"])

    def finished(event: dict[str, Any]) -> None:
        if event["requestId"] in result.wire:
            result.wire[event["requestId"]] = int(event["encodedDataLength"])

    cdp.on("Network.requestWillBeSent", sent)
    cdp.on("Network.requestServedFromCache", lambda e: from_cache.add(e["requestId"]))
    cdp.on("Network.responseReceived", answered)
    cdp.on("Network.loadingFinished", finished)
    load()
    wait_until(settled, timeout=timeout, what="page ready")
    page.wait_for_load_state("networkidle")
    for request_id in from_cache:
        if result.wire.pop(request_id, None) is not None:
            result.cached += 1
    cdp.detach()
    return result
