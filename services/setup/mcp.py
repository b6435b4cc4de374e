"""The MCP servers every agent gets, and whether they answer.

Which servers: DeepWiki and Exa by default; agents.yaml's `mcp_servers:` and then
CODING_AGENTS_MCP_SERVERS add, override or switch off servers (later wins). Before a configurer
writes them, each is probed once per process with a short deadline: one that does not answer is
left out of every agent's config, with a note in the step's log and the platform log, and comes
back on the next setup that reaches it. An agent given an unreachable server showed a blank
screen (OpenCode) or its own error (Gemini CLI: "MCP issues detected") at every start; with the
probe none of them has to.
The page's model picker reuses setup's last verdict ($STATE/setup/mcp-check.json).

A server is removed from an agent's file only if we wrote it there (the record in
$STATE/setup/mcp-written.json, or a default's URL); a server of the user's own is never touched.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from services import state
from services.config import Settings
from services.platform_log import announce

MCP_SERVERS = {
    "deepwiki": "https://mcp.deepwiki.com/mcp",
    "exa": "https://mcp.exa.ai/mcp",
}
MCP_ENV = "CODING_AGENTS_MCP_SERVERS"
CHECK_ENV = "CODING_AGENTS_MCP_CHECK"  # `off`: write the servers without probing them
MCP_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
PROBE_TIMEOUT = 3.0  # seconds; the agents themselves wait 5-30 s before giving up on a server
PROBE_TTL = 300.0  # a process that configures again later (the gateway's model picker) probes again
OFF_WORDS = ("off", "none", "false")


class McpConfigError(ValueError):
    """A bad CODING_AGENTS_MCP_SERVERS or mcp_servers entry; the message names it and the fix."""


def valid_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def parse_env(raw: str) -> list[tuple[str, str | None]]:
    """CODING_AGENTS_MCP_SERVERS, left to right: `name=https://url` adds or overrides a server,
    `name=off` switches one off, `off` alone switches off every server named before it."""
    changes: list[tuple[str, str | None]] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        if item.lower() in OFF_WORDS:
            changes.append(("*", None))
            continue
        name, _, value = item.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not MCP_NAME.fullmatch(name):
            raise McpConfigError(
                f"{MCP_ENV}: {item!r} is not name=https://url or name=off "
                "(names: lower-case letters, digits, '-', '_'; or set it to off)"
            )
        if value.lower() in OFF_WORDS:
            changes.append((name, None))
        elif valid_url(value):
            changes.append((name, value))
        else:
            raise McpConfigError(f"{MCP_ENV}: {item!r} is not name=https://url or name=off")
    return changes


def wanted_servers(registry_servers: Mapping[str, str | None], env: Mapping[str, str]) -> dict[str, str]:
    """The servers to configure, name → URL: the defaults, then agents.yaml, then the environment."""
    servers = dict(MCP_SERVERS)
    changes = list(registry_servers.items()) + parse_env(env.get(MCP_ENV, ""))
    for name, url in changes:
        if name == "*":
            servers.clear()
        elif url is None:
            servers.pop(name, None)
        else:
            servers[name] = url
    return servers


# --- reachability --------------------------------------------------------------------------------


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """None when the server answers HTTP at all (any status: a 405 or 401 still means it is up);
    otherwise why not, in a few words."""
    request = urllib.request.Request(
        url,
        headers={"User-Agent": "coding-agents-setup", "Accept": "application/json, text/event-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return f"no answer in {timeout:g} s"
        return str(getattr(reason, "strerror", None) or reason)
    except TimeoutError:
        return f"no answer in {timeout:g} s"
    except OSError as exc:
        return str(exc.strerror or exc)


@dataclass(frozen=True)
class Check:
    """The servers that did not answer, name → why; the others are on."""

    unreachable: Mapping[str, str]
    checked_at: float


_lock = threading.Lock()
_checks: dict[tuple[tuple[str, str], ...], Check] = {}
# Set while the page's model picker rewrites a config: the gateway takes setup's last verdict
# rather than probing servers on the internet from a request.
reuse_last_check: ContextVar[bool] = ContextVar("reuse_last_check", default=False)


def check_file(settings: Settings) -> Path:
    return settings.files.mcp_check


def check(
    settings: Settings, servers: Mapping[str, str], env: Mapping[str, str], timeout: float = PROBE_TIMEOUT
) -> Check:
    """Probe every server at once, once per process (the four configure steps share one probe)."""
    if env.get(CHECK_ENV, "").strip().lower() in OFF_WORDS or not servers:
        return Check({}, time.time())
    if reuse_last_check.get():
        return last_check(settings, servers)
    key = tuple(sorted(servers.items()))
    with _lock:  # the configure steps run in parallel: the first probes, the others wait for it
        cached = _checks.get(key)
        if cached is not None and time.time() - cached.checked_at < PROBE_TTL:
            return cached
        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            reasons = pool.map(lambda url: probe(url, timeout), servers.values())
            verdicts = dict(zip(servers, reasons, strict=True))
        result = Check({name: why for name, why in verdicts.items() if why is not None}, time.time())
        _checks[key] = result
        for name, why in sorted(result.unreachable.items()):
            announce(
                f"MCP server {name} ({servers[name]}) did not answer ({why}): switched off for every agent",
                f"the next setup that reaches it switches it on; or set {name}=off in {MCP_ENV}",
                key=f"mcp-{name}",
            )
        saved = {name: {"url": url, "unreachable": verdicts[name]} for name, url in servers.items()}
        state.atomic_write_json(check_file(settings), {"checked_at": result.checked_at, "servers": saved})
        return result


def last_check(settings: Settings, servers: Mapping[str, str]) -> Check:
    """Setup's last verdict on these servers; a server it did not check counts as reachable."""
    try:
        saved = state.read_json(check_file(settings))
        entries = saved["servers"]
        checked_at = float(saved["checked_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return Check({}, 0.0)
    unreachable = {}
    for name, url in servers.items():
        entry = entries.get(name) if isinstance(entries, dict) else None
        if isinstance(entry, dict) and entry.get("url") == url and isinstance(entry.get("unreachable"), str):
            unreachable[name] = entry["unreachable"]
    return Check(unreachable, checked_at)


def forget_checks() -> None:
    """Tests: the next check probes again."""
    with _lock:
        _checks.clear()


# --- writing into an agent's config --------------------------------------------------------------


def written_file(settings: Settings) -> Path:
    return settings.files.mcp_written


def _read_written(settings: Settings) -> dict[str, dict[str, str]]:
    try:
        data = state.read_json(written_file(settings))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        agent: {n: u for n, u in servers.items() if isinstance(n, str) and isinstance(u, str)}
        for agent, servers in data.items()
        if isinstance(agent, str) and isinstance(servers, dict)
    }


_written_lock = threading.Lock()


def merge(
    section: dict[str, Any],
    agent_id: str,
    settings: Settings,
    servers: Mapping[str, str],
    verdict: Check,
    entry: Callable[[str], Any],
) -> str:
    """Write the reachable servers into an agent's MCP section; remove the ones we wrote before
    that are now off or unreachable. Returns the summary for the step's log."""
    on = {name: url for name, url in servers.items() if name not in verdict.unreachable}
    with _written_lock:
        written = _read_written(settings)
        ours = dict(MCP_SERVERS) | written.get(agent_id, {})
        for name, url in ours.items():
            current = section.get(name)
            # The user's own server under this name (another URL) stays.
            if name not in on and isinstance(current, dict) and url in current.values():
                del section[name]
        for name, url in on.items():
            section[name] = entry(url)
        written[agent_id] = on
        written_file(settings).parent.mkdir(parents=True, exist_ok=True)
        state.atomic_write_json(written_file(settings), written, mode=0o600)
    parts = [", ".join(sorted(on)) or "none"]
    off = sorted(verdict.unreachable.items())
    parts += [f"{name} switched off, unreachable ({why})" for name, why in off]
    return "; ".join(parts)
