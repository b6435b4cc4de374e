"""`download FILE` typed in a real tmux shell, and `GET /api/downloads/{token}` on the real gateway."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from services.download import DOWNLOAD_TTL_SECONDS, records_dir
from tests.conftest import Gateway, Stack
from tests.helpers import TermClient

OSC = re.compile(rb"\x1b\]7733;download=([A-Za-z0-9_-]+);([^\x07\x1b]*)\x07")


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def records(stack: Stack) -> list[str]:
    folder = records_dir(stack.state_dir)
    return sorted(os.listdir(folder)) if folder.exists() else []


async def offered(gateway: Gateway, command: str, count: int = 1) -> tuple[TermClient, list[tuple[str, str]]]:
    """Type `command` in the main session; the (token, name) pairs the page would be told."""
    client = await TermClient.connect(gateway.url, "main", gateway.token)
    await client.wait_ready()
    await client.type(command + "; echo DONE-$?\r")
    await client.read_until(lambda c: len(OSC.findall(bytes(c.output))) >= count and "DONE-" in c.text)
    found = [(t.decode(), n.decode()) for t, n in OSC.findall(bytes(client.output))]
    return client, found


async def test_download_offers_the_file_once(gateway: Gateway, stack: Stack) -> None:
    data = os.urandom(300_000)
    write(stack.home / "report v2.bin", data)
    client, [(token, name)] = await offered(gateway, "download ~/'report v2.bin'")
    assert name == "report%20v2.bin"
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
    assert not OSC.search(bytes(client.output))
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
