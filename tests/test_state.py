from __future__ import annotations

import json
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from services.state import atomic_write_json, read_json, secret_file


def test_secret_is_created_once_with_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "token"
    first = secret_file(path)
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_file(path) == first


def test_concurrent_first_starts_agree(tmp_path: Path) -> None:
    path = tmp_path / "token"
    with ThreadPoolExecutor(8) as pool:
        values = set(pool.map(lambda _: secret_file(path), range(32)))
    assert len(values) == 1
    assert not [p for p in tmp_path.iterdir() if p.name != "token"]


def test_atomic_json_replaces_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2, "b": [1, 2]})
    assert read_json(path) == {"a": 2, "b": [1, 2]}
    assert json.loads(path.read_text())["a"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
