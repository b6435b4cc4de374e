from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.gateway import protocol
from services.gateway.protocol import Ack, Input, Ping, ProtocolError, Resize, parse_client_message


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('{"type":"input","data":"ls\\r"}', Input(b"ls\r")),
        ('{"type":"input","data":"€"}', Input("€".encode())),
        ('{"type":"resize","cols":80,"rows":24}', Resize(80, 24)),
        ('{"type":"resize","cols":80.0,"rows":24}', Resize(80, 24)),
        ('{"type":"ack","bytes":65536}', Ack(65536)),
        ('{"type":"ping"}', Ping()),
    ],
)
def test_valid_messages(frame: str, expected: object) -> None:
    assert parse_client_message(frame) == expected


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "[]",
        "null",
        '{"type":1}',
        '{"type":"resize","cols":80.5,"rows":24}',
        '{"type":"resize","cols":1e400,"rows":24}',
        '{"type":"resize","cols":1001,"rows":24}',
        '{"type":"resize","cols":80,"rows":501}',
        '{"type":"ack","bytes":"1"}',
        '{"type":"ack","bytes":true}',
        '{"type":"input"}',
    ],
)
def test_invalid_messages(frame: str) -> None:
    with pytest.raises(ProtocolError):
        parse_client_message(frame)


def test_protocol_js_exports_every_name_used_by_the_client() -> None:
    rendered = protocol.protocol_js()
    exported = json.loads(rendered[rendered.index("{") : rendered.rindex("}") + 1])
    assert exported["HELLO"] == protocol.HELLO and exported["ACK_EVERY"] == protocol.ACK_EVERY
    web = Path(__file__).resolve().parents[2] / "web" / "js"
    used = set()
    for script in web.glob("*.js"):
        used |= set(re.findall(r"PROTOCOL\.([A-Z_]+)", script.read_text()))
    assert used, "the web client should take its message names from PROTOCOL"
    assert used <= set(exported), (
        f"names the client uses but the server does not define: {used - set(exported)}"
    )
