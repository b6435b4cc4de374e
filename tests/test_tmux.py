from __future__ import annotations

import pytest

from services.tmux import (
    InvalidSessionName,
    PaneSnapshot,
    SessionExists,
    SessionNotFound,
    TmuxSessions,
    validate_session_name,
)
from tests.conftest import Stack
from tests.helpers import wait_until


@pytest.mark.parametrize("name", ["main", "a", "A-b_9", "x" * 32, "-t"])
def test_valid_names(name: str) -> None:
    assert validate_session_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 33, "a b", "a;b", "$(id)", "../x", "a:b", "a.b", "é", None, 5])
def test_invalid_names(name: object) -> None:
    with pytest.raises(InvalidSessionName, match="invalid session name"):
        validate_session_name(name)


def test_tmux_config_is_applied(tmux: TmuxSessions) -> None:
    tmux.ensure("main")

    def show(option: str) -> str:
        return tmux._run("show-options", "-gv", option)[0]

    assert int(show("history-limit")) >= 50000
    assert int(tmux._run("show-options", "-sv", "escape-time")[0]) <= 10
    assert show("status") == "off"
    assert show("mouse") == "on"
    assert "sync" in " ".join(tmux._run("show-options", "-sv", "terminal-features"))


def test_status_line_appears_only_with_several_windows(tmux: TmuxSessions) -> None:
    tmux.create("multi")

    def status() -> list[str]:
        return tmux._run("show-options", "-v", "-t", "=multi:", "status")

    tmux._run("new-window", "-d", "-t", "=multi:")
    wait_until(lambda: status() == ["on"], what="status on")
    tmux._run("kill-window", "-t", "=multi:1")
    wait_until(lambda: status() == ["off"], what="status off")


def test_shells_get_a_clean_environment(tmux: TmuxSessions) -> None:
    env = dict(line.split("=", 1) for line in tmux._run("show-environment", "-g") if "=" in line)
    assert "TMUX" not in env and "DATABRICKS_CLIENT_SECRET" not in env
    assert env["PATH"].split(":")[0].endswith("/bin")


def test_shell_path_has_the_agents_and_helpers(tmux: TmuxSessions, stack: Stack) -> None:
    tmux.create("paths")
    tmux._run("send-keys", "-t", "=paths:", 'echo "P=$PATH"', "Enter")
    line = wait_until(
        lambda: next(
            (ln for ln in tmux._run("capture-pane", "-p", "-J", "-t", "=paths:") if ln.startswith("P=")), None
        ),
        what="PATH printed",
    )
    path = line[2:].split(":")
    # Shell rc files may prepend their own folders; ours must still beat the system's.
    system = path.index("/usr/bin")
    assert path.index(str(stack.settings.state_bin)) < system
    assert path.index(str(stack.settings.local_bin)) < system
    assert (stack.settings.state_bin / "supervisorctl").exists()


def test_create_get_exists_kill(tmux: TmuxSessions) -> None:
    info = tmux.create("alpha", 90, 20)
    assert info.name == "alpha" and info.windows == 1
    assert tmux.exists("alpha") and not tmux.exists("alph")
    with pytest.raises(SessionExists):
        tmux.create("alpha")
    tmux.kill("alpha")
    assert not tmux.exists("alpha")
    with pytest.raises(SessionNotFound):
        tmux.kill("alpha")
    with pytest.raises(SessionNotFound):
        tmux.capture("alpha")


def test_capture_has_colours_and_cursor(tmux: TmuxSessions) -> None:
    tmux.create("paint", 80, 24)
    tmux._run("send-keys", "-t", "=paint:", "printf '\\033[31mRED\\033[0m%s\\n' $((2+2))", "Enter")

    def coloured() -> PaneSnapshot | None:
        snapshot = tmux.capture("paint")
        return snapshot if b"RED\x1b[39m4" in snapshot.content else None

    snapshot = wait_until(coloured, what="coloured capture")
    assert b"\x1b[31mRED" in snapshot.content
    assert snapshot.rows == 24 and snapshot.cursor_y > 0 and not snapshot.alternate_screen
