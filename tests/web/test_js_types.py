"""The page's JS is type-checked by tsc (web/jsconfig.json, run by scripts/test). These tests keep the
checked-in declaration of /js/protocol.js equal to what the gateway renders, and prove that tsc
really sees the protocol's and xterm.js's types through the config's path mappings (a mapping that
resolved to nothing would make every import `any` and let any mistake through).

Rewrite web/types/protocol.d.ts after changing protocol.py: `.venv/bin/python -m tests.web.test_js_types`
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from services.gateway import protocol

WEB = Path(__file__).resolve().parents[2] / "web"
DECLARATION = WEB / "types" / "protocol.d.ts"
RENDERED = re.compile(r"export const PROTOCOL = Object\.freeze\((\{.*\})\);\s*\Z", re.DOTALL)


def protocol_declaration() -> str:
    """The TypeScript declaration of the module protocol_js() renders, with each value as a literal type."""
    match = RENDERED.search(protocol.protocol_js())
    assert match, "protocol_js() no longer renders `export const PROTOCOL = Object.freeze({...});`"
    constants: dict[str, object] = json.loads(match.group(1))
    fields = "".join(f"  readonly {name}: {json.dumps(value)};\n" for name, value in constants.items())
    return (
        "// The types of /js/protocol.js, which services/gateway/protocol.py renders at runtime.\n"
        "// Generated: .venv/bin/python -m tests.web.test_js_types (tests/web/test_js_types.py checks it).\n"
        f"export declare const PROTOCOL: {{\n{fields}}};\n"
    )


def test_protocol_declaration_matches_the_rendered_module() -> None:
    assert DECLARATION.read_text(encoding="utf-8") == protocol_declaration(), (
        "web/types/protocol.d.ts is out of date: run .venv/bin/python -m tests.web.test_js_types"
    )


def tsc(config: Path) -> subprocess.CompletedProcess[str]:
    binary = WEB / "node_modules" / ".bin" / "tsc"
    if not binary.exists():
        pytest.fail("web/node_modules has no tsc: run `npm ci` in web/ (scripts/test does)")
    return subprocess.run(
        [str(binary), "-p", str(config), "--noEmit", "--pretty", "false"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_tsc_sees_protocol_and_xterm_types(tmp_path: Path) -> None:
    """A module with one mistake per mapped import: tsc must name each (not 'cannot find module')."""
    probe = tmp_path / "probe.js"
    probe.write_text(
        "// @ts-check\n"
        'import { PROTOCOL } from "/js/protocol.js";\n'
        'import { FitAddon } from "/static/node_modules/@xterm/addon-fit/lib/addon-fit.mjs";\n'
        '/** @param {import("/static/node_modules/@xterm/xterm/lib/xterm.mjs").Terminal} term */\n'
        "export function probe(term) {\n"
        "  term.writeLine(PROTOCOL.NO_SUCH_MESSAGE);\n"
        "  new FitAddon().fitToNothing();\n"
        "}\n",
        encoding="utf-8",
    )
    config = tmp_path / "jsconfig.json"
    # Paths in the extended config stay relative to web/, so the probe resolves as the page's modules do.
    extended = {
        "extends": str(WEB / "jsconfig.json"),
        "include": [str(probe), str(WEB / "types" / "**" / "*.d.ts")],
    }
    config.write_text(json.dumps(extended), encoding="utf-8")
    result = tsc(config)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "TS2307" not in output, output  # an import that did not resolve
    for name in ("writeLine", "NO_SUCH_MESSAGE", "fitToNothing"):
        assert f"'{name}' does not exist" in output, output


if __name__ == "__main__":
    DECLARATION.write_text(protocol_declaration(), encoding="utf-8")
    print(f"wrote {DECLARATION}")
