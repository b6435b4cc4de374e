"""What the page's tab marks read from the session list: bells rung and the last output's time."""

from __future__ import annotations

import json

from tests.conftest import Gateway
from tests.helpers import async_wait_until


async def session(gw: Gateway, name: str) -> dict[str, int]:
    sessions = json.loads((await gw.fetch("/api/sessions")).body)["sessions"]
    found: dict[str, int] = next(s for s in sessions if s["name"] == name)
    return found


async def test_bells_are_counted_per_session_and_output_time_moves(gateway: Gateway) -> None:
    assert (await gateway.fetch("/api/sessions", "POST", body=json.dumps({"name": "quiet"}))).code == 201
    main = await session(gateway, "main")
    assert main["bells"] == 0 and main["output_at"] > 0
    gateway.ctx.sessions._run(
        "send-keys", "-t", "=main:", "sleep 1.2; printf 'x\\a'; sleep 0.3; printf '\\a'", "Enter"
    )

    sessions = gateway.ctx.sessions
    await async_wait_until(
        lambda: [s.bells for s in sessions.list_sessions() if s.name == "main"] == [2],
        timeout=15,
        what="two bells counted",
    )
    after = await session(gateway, "main")
    assert after["bells"] == 2
    assert after["output_at"] > main["output_at"]
    assert (await session(gateway, "quiet"))["bells"] == 0
