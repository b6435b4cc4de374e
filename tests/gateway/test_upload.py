"""`POST /api/sessions/{name}/upload` against the real gateway and tmux: sizes, names, auth, types."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from services.gateway.__main__ import build_policy
from services.gateway.upload_names import sanitize_filename
from services.tmux import TmuxSessions
from tests.conftest import Gateway, Stack, serve_gateway

BOUNDARY = "----testboundary7MA4YWxkTrZu0gW"
# Bytes that look like the start of a delimiter and line ends, to catch a parser that splits on them.
AWKWARD = b"\r\n--" + BOUNDARY[:10].encode() + b"\r\n\x00\xff" * 1000


def multipart(*files: tuple[str, bytes], fields: dict[str, str] | None = None) -> bytes:
    body = b""
    for name, value in (fields or {}).items():
        body += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for filename, data in files:
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        body += head.encode() + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


CONTENT_TYPE = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def upload(
    gateway: Gateway,
    body: bytes,
    session: str = "main",
    auth: bool = True,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    response = await gateway.fetch(
        f"/api/sessions/{session}/upload",
        "POST",
        auth=auth,
        body=body,
        headers={**CONTENT_TYPE, **(headers or {})},
    )
    return response.code, json.loads(response.body) if response.body else {}


def content(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def uploads(stack: Stack) -> list[str]:
    folder = stack.home / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def test_files_are_saved_in_uploads_and_their_paths_returned(gateway: Gateway, stack: Stack) -> None:
    code, body = await upload(gateway, multipart(("notes.txt", b"hello"), ("shot.png", AWKWARD)))
    assert code == 201, body
    folder = stack.home / "uploads"
    assert body == {"paths": [str(folder / "notes.txt"), str(folder / "shot.png")]}
    assert (folder / "notes.txt").read_bytes() == b"hello"
    assert (folder / "shot.png").read_bytes() == AWKWARD
    assert (folder / "shot.png").stat().st_mode & 0o077 == 0  # the user's files, nobody else's


async def test_the_page_can_ask_for_the_folder_and_limit(gateway: Gateway, stack: Stack) -> None:
    response = await gateway.fetch("/api/sessions/main/upload")
    assert response.code == 200
    assert json.loads(response.body) == {
        "folder": str(stack.home / "uploads"),
        "limit_bytes": 50 * 1024 * 1024,
    }
    assert (await gateway.fetch("/api/sessions/main/upload", auth=False)).code == 401


async def test_collisions_are_numbered_never_overwritten(gateway: Gateway, stack: Stack) -> None:
    code, body = await upload(gateway, multipart(("a.png", b"1"), ("a.png", b"2")))
    assert code == 201
    code, again = await upload(gateway, multipart(("a.png", b"3"), ("README", b"4"), ("README", b"5")))
    assert code == 201
    names = [Path(p).name for p in body["paths"] + again["paths"]]
    assert names == ["a.png", "a-1.png", "a-2.png", "README", "README-1"]
    assert (stack.home / "uploads" / "a-2.png").read_bytes() == b"3"


@pytest.mark.parametrize(
    ("raw", "saved"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        (".bashrc", "bashrc"),
        ("-rf", "rf"),
        ("--help.txt", "help.txt"),
        ("..", "upload"),
        ("", "upload"),
        ("a\nb\r.txt", "a"),  # a raw line break ends the header: whatever follows is not the name
        ("a\tb\x7f\x00.txt", "ab.txt"),
        ("\x1b[31mred\x1b[0m.txt", "31mred_0m.txt"),
        ("evil\u202egnp.exe", "evilgnp.exe"),  # a right-to-left override would disguise the suffix
        ("$(reboot); `id` 'q'.sh", "reboot_id_q_.sh"),
        ("Cafe\u0301 photo.jpg", "Café_photo.jpg"),  # decomposed é is composed (NFC)
        ("图片 1.png", "图片_1.png"),
        ("x" * 300 + ".png", "x" * 196 + ".png"),
        ("é" * 300, "é" * 100),
    ],
    ids=lambda v: repr(v[:20]),
)
async def test_hostile_names_are_made_safe(gateway: Gateway, stack: Stack, raw: str, saved: str) -> None:
    code, body = await upload(gateway, multipart((raw, b"data")))
    assert code == 201, body
    [path] = body["paths"]
    assert path == str(stack.home / "uploads" / saved)
    assert content(path) == b"data"
    assert uploads(stack) == [saved]
    assert not (stack.root / "etc").exists()


@pytest.mark.parametrize(
    ("raw", "saved"),
    [("a\nb\r.txt", "ab.txt"), ("\x1b]0;title\x07x.md", "0_titlex.md"), ("\u200b\u200f.png", "png")],
)
def test_names_lose_line_breaks_escapes_and_invisible_characters(raw: str, saved: str) -> None:
    # Browsers percent-encode line breaks in multipart names; RFC 5987 `filename*` can still carry them.
    assert sanitize_filename(raw) == saved


async def test_form_fields_are_ignored_but_an_upload_without_files_is_refused(
    gateway: Gateway, stack: Stack
) -> None:
    code, body = await upload(gateway, multipart(("f.txt", b"x"), fields={"note": "hi"}))
    assert code == 201 and len(body["paths"]) == 1
    code, body = await upload(gateway, multipart(fields={"note": "hi"}))
    assert code == 400 and "no files" in body["error"]


@pytest.mark.parametrize(
    ("content_type", "error"),
    [
        ("application/json", "multipart/form-data"),
        ("text/plain", "multipart/form-data"),
        ("multipart/form-data", "boundary"),
        ("multipart/form-data; boundary=", "boundary"),
        ("multipart/mixed; boundary=abc", "multipart/form-data"),
    ],
)
async def test_other_content_types_are_a_415(
    gateway: Gateway, stack: Stack, content_type: str, error: str
) -> None:
    code, body = await upload(gateway, b'{"a": 1}', headers={"Content-Type": content_type})
    assert code == 415 and error in body["error"]
    assert uploads(stack) == []


@pytest.mark.parametrize(
    "body",
    [
        multipart(("cut.txt", b"abc"))[:-30],  # interrupted: no closing boundary
        b"no boundary at all",
        f"--{BOUNDARY}\r\nContent-Disposition: form-data".encode(),  # headers never end
        f"--{BOUNDARY}XX".encode(),
    ],
    ids=["truncated", "no-boundary", "unterminated-headers", "bad-delimiter"],
)
async def test_malformed_bodies_are_a_400_and_leave_nothing(
    gateway: Gateway, stack: Stack, body: bytes
) -> None:
    code, answer = await upload(gateway, body)
    assert code == 400, answer
    assert answer["error"]
    assert uploads(stack) == []


async def test_unauthenticated_and_cross_site_uploads_are_refused(gateway: Gateway, stack: Stack) -> None:
    code, body = await upload(gateway, multipart(("a.txt", b"x")), auth=False)
    assert code == 401
    code, body = await upload(gateway, multipart(("a.txt", b"x")), headers={"Origin": "https://evil.example"})
    assert code == 403 and "cross-origin" in body["error"]
    assert uploads(stack) == []


async def test_bad_and_missing_sessions(gateway: Gateway, stack: Stack) -> None:
    code, body = await upload(gateway, multipart(("a.txt", b"x")), session="nope")
    assert code == 404
    code, body = await upload(gateway, multipart(("a.txt", b"x")), session="a%3Bb")
    assert code == 400 and "session name" in body["error"]
    assert uploads(stack) == []


async def test_the_size_limit_is_a_413_declared_or_streamed(stack: Stack, tmux: TmuxSessions) -> None:
    stack.env["CODING_AGENTS_UPLOAD_LIMIT_MB"] = "1"
    async with serve_gateway(stack, tmux, build_policy(stack.settings)) as gw:
        fits = multipart(("fits.bin", b"x" * 1_000_000))
        code, body = await upload(gw, fits)
        assert code == 201, body
        code, body = await upload(gw, multipart(("big.bin", b"x" * (1024 * 1024 + 1))))
        assert code == 413 and "1 MiB" in body["error"] and "CODING_AGENTS_UPLOAD_LIMIT_MB" in body["error"]

        # Chunked, so no Content-Length to refuse up front: the count while streaming must stop it.
        async def producer(write: Callable[[bytes], object]) -> None:
            big = multipart(("chunked.bin", b"y" * (3 * 1024 * 1024)))
            for start in range(0, len(big), 64 * 1024):
                await write(big[start : start + 64 * 1024])  # type: ignore[misc]

        try:
            response = await gw.http.fetch(
                gw.url + "/api/sessions/main/upload",
                method="POST",
                body_producer=producer,
                headers={**CONTENT_TYPE, "Authorization": f"Bearer {gw.token}"},
                raise_error=False,
            )
            status = response.code
        except (HTTPClientError, OSError):
            status = 413  # the gateway may close the connection while the client still sends
        assert status == 413
    assert uploads(stack) == ["fits.bin"]  # and no hidden partial files


@pytest.mark.parametrize("raw", ["1.0e9", "-5", "abc"])
async def test_a_nonsense_content_length_is_refused(gateway: Gateway, raw: str) -> None:
    # Tornado itself rejects these before the handler; either way nothing is stored.
    try:
        response = await gateway.fetch(
            "/api/sessions/main/upload",
            "POST",
            body=b"x",
            headers={**CONTENT_TYPE, "Content-Length": raw},
        )
        assert response.code in (400, 413)
    except (HTTPClientError, OSError, ValueError):
        pass
