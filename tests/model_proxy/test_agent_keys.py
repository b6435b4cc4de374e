"""Shift+Enter in each real agent CLI, offline against the fake models: the bytes the page sends for it
(web/js/agentkeys.js NEWLINE_IN_PROMPT, ESC CR) must insert a newline in the prompt, not submit it.

Each agent runs in a tmux pane with the app's tmux.conf, and keys go in through a `tmux attach`
client on a PTY, as the gateway's do: tmux parses them exactly as it parses the browser's.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.config import Settings
from services.gateway import protocol
from services.gateway.__main__ import build_policy
from services.shell_env import shell_environment, shell_path
from services.tmux import TmuxSessions
from services.tmuxd.__main__ import render_config
from tests.conftest import TOKEN, Stack, serve_gateway
from tests.helpers import TermClient, start_tmuxd, wait_until
from tests.model_proxy import test_agents_offline
from tests.model_proxy.test_agents_offline import Installed

pytestmark = pytest.mark.slow
installed = test_agents_offline.installed  # the same module-scoped install of the four agents

SHIFT_ENTER = b"\x1b\r"  # web/js/agentkeys.js NEWLINE_IN_PROMPT
FIRST, SECOND = "first line of the prompt", "second line of the prompt"
# Start-up questions an agent may ask in a fresh home, and the key that accepts the default.
DIALOGS = [
    (re.compile(r"trust (the files in )?this folder|Do you trust|Allow Codex to work", re.I), b"\r"),
    (re.compile(r"Press Enter to continue|press enter to continue", re.I), b"\r"),
]
PROMPT_READY = {
    "claude": re.compile(r"\? for shortcuts"),
    "gemini": re.compile(r"Type your message", re.I),
    "opencode": re.compile(r"ctrl\+p|tab agents|ask anything", re.I),
    "codex": re.compile(r"context left|Ask Codex", re.I),
}


@dataclass
class Pane:
    """An agent in a tmux session, and an attached client whose keyboard is `type`."""

    tmux: list[str]
    session: str
    master: int
    client: subprocess.Popen[bytes]
    output: bytearray = field(default_factory=bytearray)
    answered: list[str] = field(default_factory=list)  # the start-up questions accepted

    def screen(self) -> str:
        result = subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", f"={self.session}:"],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, check: Callable[[str], object], what: str, timeout: float = 60) -> None:
        def seen() -> object:
            screen = self.screen()
            for pattern, key in DIALOGS:
                if found := pattern.search(screen):
                    self.answered.append(found.group(0))
                    self.type(key)
                    return False
            return check(screen)

        try:
            wait_until(seen, timeout=timeout, interval=0.3, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- screen ---\n{self.screen()}") from None


def leftovers(root: Path) -> list[int]:
    """Processes started from the install (their command line names it), other than this one."""
    marker = str(root).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def kill_leftovers(root: Path) -> None:
    """Agents outlive their tmux server (Codex's app-server daemon, Gemini's relaunched node)."""
    for pid in leftovers(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not leftovers(root), timeout=10, what="the agents' processes gone")


@contextlib.contextmanager
def agent_in_tmux(installed: Installed, agent: str, as_in_the_app: bool = False) -> Iterator[Pane]:
    """as_in_the_app: the environment the app's shells get (services/shell_env.py), not the bare one."""
    env = installed.agent_env()
    env.pop("TERM", None)  # the pane gets tmux's own TERM, as in the app
    settings = Settings.from_env(installed.env)
    if as_in_the_app:
        env = shell_environment(settings, env)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    socket = settings.state_dir / f"keys-{agent}.sock"
    tmux = ["tmux", "-S", str(socket)]
    conf = render_config(settings)
    projects = installed.home / "projects"
    projects.mkdir(exist_ok=True)
    subprocess.run(
        [
            *tmux,
            "-f",
            str(conf),
            "new-session",
            "-d",
            "-s",
            agent,
            "-x",
            "120",
            "-y",
            "40",
            "-c",
            str(projects),
            agent,
        ],
        env=env,
        check=True,
    )
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    client = subprocess.Popen(
        [*tmux, "attach", "-t", f"={agent}"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color"},  # what the gateway's attach clients say they are
        start_new_session=True,
    )
    os.close(slave)
    pane = Pane(tmux, agent, master, client)

    def drain() -> None:  # the client blocks if nobody reads what it draws
        with contextlib.suppress(OSError):
            while chunk := os.read(master, 65536):
                pane.output += chunk

    threading.Thread(target=drain, daemon=True).start()
    try:
        yield pane
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)
        client.wait(timeout=10)
        os.close(master)
        kill_leftovers(installed.root)


@pytest.mark.parametrize("agent", ["claude", "gemini", "opencode", "codex"])
def test_shift_enter_inserts_a_newline(installed: Installed, agent: str) -> None:
    with agent_in_tmux(installed, agent) as pane:
        pane.wait(lambda s: PROMPT_READY[agent].search(s), f"{agent}'s prompt", timeout=90)
        # Setup trusted the projects folder: the agent starts at its prompt, with no question.
        assert not [q for q in pane.answered if "trust" in q.lower() or "Allow" in q], pane.answered
        calls_before = len(installed.fake.model_calls())
        pane.type(FIRST.encode())
        pane.wait(lambda s: FIRST in s, "the first line typed")
        pane.type(SHIFT_ENTER)
        pane.type(SECOND.encode())
        pane.wait(lambda s: SECOND in s, "the second line typed")
        # Nothing was submitted by Shift+Enter: no model call carries the first line alone.
        for call in installed.fake.model_calls()[calls_before:]:
            assert FIRST.encode() not in call.body, call.body[:2000]
        pane.type(b"\r")
        wanted = f"{FIRST}\\n{SECOND}".encode()  # both lines, one newline apart, in one JSON string

        def asked() -> bool:
            return any(wanted in call.body for call in installed.fake.model_calls()[calls_before:])

        pane.wait(lambda _s: asked(), "the two-line prompt to reach the model", timeout=90)


# What each agent showed at start when it looked broken (issue 16, item 7): a server it could not
# reach, in its own words, and Codex's missing model metadata.
NOISE = re.compile(r"mcp|deepwiki|\bexa\b|Model metadata|fallback metadata|failed to start", re.I)
SKILL = "---\nname: {name}\ndescription: A skill installed for every agent.\n---\nSay hello.\n"


def install_a_skill_everywhere(home: Path) -> None:
    """As setup's skills step does: the same skill in Claude Code's folder and in the shared one."""
    for folder in (".claude/skills", ".agents/skills"):
        skill = home / folder / "say-hello"
        skill.mkdir(parents=True, exist_ok=True)
        (skill / "SKILL.md").write_text(SKILL.format(name="say-hello"))


def opencode_warnings(home: Path) -> list[str]:
    logs = (home / ".local" / "share" / "opencode" / "log").glob("*.log")
    return [line for log in logs for line in log.read_text(errors="replace").splitlines() if "WARN" in line]


@pytest.mark.parametrize("agent", ["claude", "gemini", "opencode", "codex"])
def test_each_agent_starts_clean_and_quiet(installed: Installed, agent: str) -> None:
    """Issue 16, item 7: in the app's environment, with the MCP servers unreachable (setup switched
    them off) and skills installed for every agent, each agent reaches its prompt without a question
    and answers a prompt without a warning: no MCP errors, no fallback model metadata, no
    duplicate skills, and Codex copies nothing into ~/.codex/packages."""
    install_a_skill_everywhere(installed.home)
    with agent_in_tmux(installed, agent, as_in_the_app=True) as pane:
        pane.wait(lambda s: PROMPT_READY[agent].search(s), f"{agent}'s prompt", timeout=90)
        assert pane.answered == [], pane.answered
        calls_before = len(installed.fake.model_calls())
        pane.type(b"say pong")
        pane.wait(lambda s: "say pong" in s, "the prompt typed")
        pane.type(b"\r")

        def answered() -> bool:
            asked = any(b"say pong" in call.body for call in installed.fake.model_calls()[calls_before:])
            return asked and "PONG-FROM-FAKE-WORKSPACE" in pane.screen()

        pane.wait(lambda _s: answered(), "the answer on screen", timeout=90)
        screen = pane.screen()
        assert not NOISE.search(screen), screen
    if agent == "codex":
        assert not (installed.home / ".codex" / "packages").exists()
    if agent == "opencode":
        assert not [w for w in opencode_warnings(installed.home) if "duplicate skill" in w]


TYPED_AFTER_SCROLL = "say the word after scroll"


@dataclass
class PagePane(Pane):
    """The same screen checks, with keys typed as the page types them: through the gateway."""

    term: TermClient | None = None
    loop: asyncio.AbstractEventLoop | None = None

    def type(self, data: bytes) -> None:  # called from a worker thread (pane.wait answers dialogs)
        assert self.term is not None and self.loop is not None
        asyncio.run_coroutine_threadsafe(self.term.type(data.decode()), self.loop).result(10)


def stop_tmux(settings: Settings, tmuxd: subprocess.Popen[bytes], root: Path) -> None:
    subprocess.run(
        [settings.tmux_bin, "-S", str(settings.tmux_socket), "kill-server"], check=False, capture_output=True
    )
    tmuxd.wait(timeout=10)
    kill_leftovers(root)


@pytest.mark.parametrize("agent", ["claude", "gemini"])
async def test_typing_after_scrolling_back_reaches_the_agent_intact(installed: Installed, agent: str) -> None:
    """Issue 13: with an agent running, the wheel put tmux in copy mode and copy mode ate the first
    keys typed. Here the page's path end to end: the gateway's launcher starts the agent, the page's
    `scroll` message scrolls back, then typed text must reach the agent whole and go to the model."""
    env = {k: v for k, v in installed.env.items() if not k.startswith("DATABRICKS_")}
    env |= {"CODING_AGENTS_TOKEN": TOKEN, "SHELL": "/bin/bash", "LANG": "C.UTF-8"}
    env |= {"CODING_AGENTS_SETUP": "off", "NO_UPDATE_NOTIFIER": "1"}
    settings = Settings.from_env(env)
    stack = Stack(installed.root, installed.home, settings.state_dir, settings.port, TOKEN, env)
    tmuxd = start_tmuxd(env)
    sessions = TmuxSessions.for_socket(
        settings.tmux_socket, settings.tmux_bin, settings.projects_dir, shell_path(settings, env)
    )
    try:
        await asyncio.to_thread(wait_until, sessions.is_running, 10, 0.02, "tmux server")
        async with serve_gateway(stack, sessions, build_policy(settings)) as gateway:
            launched = await gateway.fetch(
                "/api/sessions/main/windows", "POST", body=json.dumps({"agent": agent}).encode()
            )
            assert launched.code == 201, launched.body
            client = await TermClient.connect(gateway.url, "main", TOKEN, cols=120, rows=40)
            await client.wait_ready()
            tmux = [settings.tmux_bin, "-S", str(settings.tmux_socket)]
            pane = PagePane(tmux, "main", -1, tmuxd, term=client, loop=asyncio.get_running_loop())
            ready = PROMPT_READY[agent]
            await asyncio.to_thread(pane.wait, lambda s: ready.search(s), f"{agent}'s prompt", 90)
            calls_before = len(installed.fake.model_calls())

            await client.send({"type": protocol.SCROLL, "lines": 3})
            await client.wait_message(protocol.HISTORY)
            await client.type(TYPED_AFTER_SCROLL)
            await asyncio.to_thread(pane.wait, lambda s: TYPED_AFTER_SCROLL in s, "the text in the prompt")
            await client.type("\r")

            def asked() -> bool:
                bodies = [call.body for call in installed.fake.model_calls()[calls_before:]]
                return any(TYPED_AFTER_SCROLL.encode() in body for body in bodies)

            await asyncio.to_thread(pane.wait, lambda _s: asked(), "the prompt to reach the model", 90)
            client.close()
    finally:
        await asyncio.to_thread(stop_tmux, settings, tmuxd, installed.root)
