"""services/statefiles.py: the state dir's paths, and the files outside Python that name them too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services import state
from services.config import PROJECT_ROOT
from services.statefiles import (
    ModelProxyStatus,
    StateFiles,
    read_model_choices,
    read_model_proxy_status,
    save_model_choice,
    write_model_proxy_status,
)

FILES = StateFiles(Path("/STATE"))


def relative(path: Path) -> str:
    return str(path.relative_to(FILES.root))


@pytest.mark.parametrize(
    ("source", "prefix", "paths"),
    [
        (
            "supervisord.conf",
            "%(ENV_CODING_AGENTS_STATE_DIR)s/",
            [FILES.supervisor_socket, FILES.supervisord_pid, FILES.logs / "gateway.log"],
        ),
        ("services/tmuxd/tmux.conf", "$CODING_AGENTS_STATE_DIR/", [FILES.sync_notice]),
        ("scripts/run", "$CODING_AGENTS_STATE_DIR/", [FILES.supervisor_socket]),
        ("scripts/run", "$state/", [FILES.secrets, FILES.platform_fifo, FILES.logs]),
        ("scripts/attach", "$CODING_AGENTS_STATE_DIR/", [FILES.tmux_socket]),
    ],
)
def test_files_outside_python_name_the_same_paths(source: str, prefix: str, paths: list[Path]) -> None:
    text = (PROJECT_ROOT / source).read_text()
    for path in paths:
        assert prefix + relative(path) in text, f"{source} does not name {relative(path)}"


def test_model_choices_round_trip_and_a_broken_file_means_none(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    assert read_model_choices(path) == {}
    save_model_choice(path, "claude", "databricks-claude-sonnet-4-6")
    save_model_choice(path, "codex", "databricks-gpt-5-3-codex")
    assert read_model_choices(path) == {
        "claude": "databricks-claude-sonnet-4-6",
        "codex": "databricks-gpt-5-3-codex",
    }
    assert path.stat().st_mode & 0o777 == 0o644
    path.write_text("[1, 2")
    assert read_model_choices(path) == {}
    state.atomic_write_json(path, {"claude": 7, "gemini": "databricks-gemini-3-1-pro"})
    assert read_model_choices(path) == {"gemini": "databricks-gemini-3-1-pro"}


def test_model_proxy_status_round_trip_and_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "model-proxy" / "status.json"
    with pytest.raises(FileNotFoundError):
        read_model_proxy_status(path)
    status = ModelProxyStatus({"serving": "https://x"}, "pat", {"claude": {"requests": 2}}, 12.5)
    write_model_proxy_status(path, status)
    assert read_model_proxy_status(path) == status
    assert json.loads(path.read_text())["agents"] == {"claude": {"requests": 2}}
    path.write_text("[]")
    with pytest.raises(ValueError, match="not a JSON object"):
        read_model_proxy_status(path)
    path.write_text('{"agents": []}')
    with pytest.raises(ValueError, match="'agents'"):
        read_model_proxy_status(path)
