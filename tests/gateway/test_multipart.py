"""The streaming multipart parser, fed in every chunk size: parts come out whole wherever bytes split."""

from __future__ import annotations

from email.message import Message

import pytest

from services.gateway.multipart import MultipartError, MultipartParser, boundary_of
from tests.gateway.test_upload import AWKWARD, BOUNDARY, multipart


def parse(body: bytes, chunk: int) -> list[tuple[str | None, bytes]]:
    parts: list[tuple[str | None, bytearray]] = []

    def on_part(headers: Message) -> object:
        parts.append((headers.get_filename(), bytearray()))
        return parts[-1][1].extend

    parser = MultipartParser(BOUNDARY.encode(), on_part, lambda: None)  # type: ignore[arg-type]
    for start in range(0, len(body), chunk):
        parser.feed(body[start : start + chunk])
    parser.close()
    return [(name, bytes(data)) for name, data in parts]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 17, 64, 4096, 1 << 20])
def test_parts_survive_any_chunking(chunk: int) -> None:
    body = b"preamble\r\n" + multipart(("a.bin", AWKWARD[:300]), ("b.txt", b""), ("c", b"\r\n--"))
    assert parse(body, chunk) == [("a.bin", AWKWARD[:300]), ("b.txt", b""), ("c", b"\r\n--")]


def test_a_body_cut_short_is_an_error() -> None:
    body = multipart(("a.bin", b"abc"))
    with pytest.raises(MultipartError, match="ended before"):
        parse(body[:-10], 7)


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        (f"multipart/form-data; boundary={BOUNDARY}", BOUNDARY.encode()),
        ('multipart/form-data; boundary="quoted=ok"', b"quoted=ok"),
        ("Multipart/Form-Data; charset=utf-8; boundary=x", b"x"),
    ],
)
def test_boundaries(content_type: str, boundary: bytes) -> None:
    assert boundary_of(content_type) == boundary
