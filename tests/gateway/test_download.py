"""`download FILE` typed in a real tmux shell (and a degraded one), the gateway's `download` message,
and `GET /api/downloads/{token}` on the real gateway."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from services.download import DOWNLOAD_TTL_SECONDS, records_dir
from services.gateway import protocol
from services.tmuxd.__main__ import write_download_command
from tests.conftest import Gateway, Stack
from tests.helpers import TermClient, async_wait_until

OSC = re.compile(rb"\x1b\]7733;download=([A-Za-z0-9_-]+);([^\x07\x1b]*)\x07")


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def records(stack: Stack) -> list[str]:
    folder = records_dir(stack.state_dir)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def announced(client: TermClient) -> list[tuple[str, str]]:
    return [(m["token"], m["name"]) for m in client.messages if m.get("type") == protocol.DOWNLOAD]


async def offered(gateway: Gateway, command: str, count: int = 1) -> tuple[TermClient, list[tuple[str, str]]]:
    """Type `command` in the main session; the (token, name) pairs the page is told."""
    client = await TermClient.connect(gateway.url, "main", gateway.token)
    await client.wait_ready()
    await client.type(command + "; echo DONE-$?\r")
    await client.read_until(lambda c: len(announced(c)) >= count and "DONE-" in c.text)
    # In tmux the gateway tells the page; nothing rides on the terminal's output.
    assert not OSC.search(bytes(client.output))
    return client, announced(client)


async def test_download_offers_the_file_once(gateway: Gateway, stack: Stack) -> None:
    data = os.urandom(300_000)
    write(stack.home / "report v2.bin", data)
    client, [(token, name)] = await offered(gateway, "download ~/'report v2.bin'")
    assert name == "report v2.bin"
    await client.wait_text("DONE-0")
    assert "report v2.bin (293.0 KiB) sent to the browser" in client.text
    client.close()
    response = await gateway.fetch(f"/api/downloads/{token}")
    assert response.code == 200
    assert response.body == data
    assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''report%20v2.bin"
    again = await gateway.fetch(f"/api/downloads/{token}")
    assert again.code == 404 and "used already" in json.loads(again.body)["error"]
    assert records(stack) == []


async def test_several_files_each_get_a_token(gateway: Gateway, stack: Stack) -> None:
    write(stack.home / "a.txt", b"A")
    write(stack.home / "b.txt", b"B")
    client, found = await offered(gateway, "download ~/a.txt ~/b.txt", count=2)
    client.close()
    bodies = [(await gateway.fetch(f"/api/downloads/{token}")).body for token, _ in found]
    assert bodies == [b"A", b"B"]


async def test_what_cannot_be_offered_is_refused_in_the_shell(gateway: Gateway, stack: Stack) -> None:
    (stack.home / "folder").mkdir()
    others = "/etc/passwd"  # root's: not the test user's, unless the tests run as root
    if os.getuid() == 0:
        others = str(write(stack.home / "nobodys.txt", b"n"))
        os.chown(others, 65534, 65534)
    client = await TermClient.connect(gateway.url, "main", gateway.token)
    await client.wait_ready()
    await client.type(f"download ~/missing ~/folder {others}; echo DONE-$?\r")
    await client.wait_text("DONE-1")
    text = client.text
    assert "missing: No such file or directory" in text
    assert "folder: not a regular file" in text
    assert f"{others}: not your file" in text
    assert not OSC.search(bytes(client.output)) and not announced(client)
    assert records(stack) == []
    client.close()


async def test_a_token_without_a_record_downloads_nothing(gateway: Gateway) -> None:
    # What a hostile file printed to the terminal could forge: an OSC with a made-up token.
    response = await gateway.fetch("/api/downloads/" + "A" * 32)
    assert response.code == 404
    assert (await gateway.fetch("/api/downloads/..%2F..%2Fetc%2Fpasswd")).code == 404


async def test_the_link_needs_the_session_and_is_kept_for_the_page(gateway: Gateway, stack: Stack) -> None:
    write(stack.home / "s.txt", b"secret")
    client, [(token, _)] = await offered(gateway, "download ~/s.txt")
    client.close()
    assert (await gateway.fetch(f"/api/downloads/{token}", auth=False)).code == 401
    assert (await gateway.fetch(f"/api/downloads/{token}")).body == b"secret"


async def test_a_replaced_or_expired_file_is_refused(gateway: Gateway, stack: Stack) -> None:
    target = write(stack.home / "x.txt", b"original")
    client, [(swapped, _)] = await offered(gateway, "download ~/x.txt")
    client.close()
    target.unlink()
    target.symlink_to("/etc/passwd")  # swapped for a link to a file the user did not offer
    response = await gateway.fetch(f"/api/downloads/{swapped}")
    assert response.code in (404, 409)
    assert b"root:" not in response.body

    write(stack.home / "y.txt", b"late")
    client, [(late, _)] = await offered(gateway, "download ~/y.txt")
    client.close()
    record = records_dir(stack.state_dir) / f"{late}.json"
    content = json.loads(record.read_text())
    content["created"] -= DOWNLOAD_TTL_SECONDS + 1
    record.write_text(json.dumps(content))
    assert (await gateway.fetch(f"/api/downloads/{late}")).code == 404


async def test_only_the_tab_typed_into_is_told(gateway: Gateway, stack: Stack) -> None:
    # Two pages on the session: the one the command was typed in downloads; the other is not
    # told (it would only fetch a spent link and show an error).
    write(stack.home / "one.txt", b"1")
    watching = await TermClient.connect(gateway.url, "main", gateway.token)
    await watching.wait_ready()
    client, [(token, name)] = await offered(gateway, "download ~/one.txt")
    await watching.wait_text("DONE-0")  # the same screen: it saw the command run
    assert name == "one.txt" and announced(watching) == []
    assert (await gateway.fetch(f"/api/downloads/{token}")).body == b"1"
    watching.close()
    client.close()


async def test_an_offer_waits_for_a_page_to_open_on_its_session(gateway: Gateway, stack: Stack) -> None:
    # `download` from `tmux attach` (no page open): the next page on that session is told.
    write(stack.home / "later.txt", b"later")
    gateway.ctx.sessions.run("send-keys", "-t", "=main:", "download ~/later.txt", "Enter")
    await async_wait_until(lambda: records(stack), timeout=10, what="the record")
    client = await TermClient.connect(gateway.url, "main", gateway.token)
    await client.read_until(lambda c: bool(announced(c)))
    [(token, name)] = announced(client)
    assert name == "later.txt"
    assert (await gateway.fetch(f"/api/downloads/{token}")).body == b"later"
    client.close()


async def test_a_renamed_session_still_gets_its_offer(gateway: Gateway, stack: Stack) -> None:
    write(stack.home / "r.txt", b"r")
    renamed = await gateway.fetch("/api/sessions/main", "PATCH", body=json.dumps({"name": "work"}))
    assert renamed.code == 200
    client, [(token, _)] = await offered_in(gateway, "work", "download ~/r.txt")
    assert (await gateway.fetch(f"/api/downloads/{token}")).body == b"r"
    client.close()


async def offered_in(
    gateway: Gateway, session: str, command: str
) -> tuple[TermClient, list[tuple[str, str]]]:
    client = await TermClient.connect(gateway.url, session, gateway.token)
    await client.wait_ready()
    await client.type(command + "; echo DONE-$?\r")
    await client.read_until(lambda c: bool(announced(c)) and "DONE-" in c.text)
    return client, announced(client)


async def test_without_tmux_the_command_tells_the_page_itself(
    degraded_gateway: Gateway, stack: Stack
) -> None:
    # No tmux, no passthrough to lose it: the OSC goes straight through the gateway's own PTY.
    write_download_command(stack.settings)
    write(stack.home / "d.txt", b"degraded")
    client = await TermClient.connect(degraded_gateway.url, "main", degraded_gateway.token)
    await client.wait_ready()
    await client.type("download ~/d.txt; echo DONE-$?\r")
    await client.read_until(lambda c: bool(OSC.search(bytes(c.output))) and "DONE-0" in c.text)
    [(token, name)] = [(t.decode(), n.decode()) for t, n in OSC.findall(bytes(client.output))]
    assert name == "d.txt" and announced(client) == []
    assert (await degraded_gateway.fetch(f"/api/downloads/{token}")).body == b"degraded"
    client.close()
