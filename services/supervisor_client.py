"""Ask this app's supervisord to do things, over its XML-RPC unix socket (ARCHITECTURE.md: processes
talk through files in the state dir and through supervisord, never through each other's memory; its
"supervisord calls" table lists every caller)."""

from __future__ import annotations

import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport


class SupervisorUnavailable(Exception):
    """supervisord did not answer or refused; the message says why."""


class AlreadyRunning(Exception):
    """The program is already running."""


def _proxy(socket_path: Path) -> xmlrpc.client.ServerProxy:
    # The URL's host is ignored: SupervisorTransport connects to the unix socket.
    transport = SupervisorTransport(None, None, f"unix://{socket_path}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def start_program(socket_path: Path, name: str) -> None:
    if not socket_path.exists():
        raise SupervisorUnavailable(f"supervisord is not running (no {socket_path.name} in the state dir)")
    try:
        with _proxy(socket_path) as proxy:  # closes its socket
            proxy.supervisor.startProcess(name, False)
    except xmlrpc.client.Fault as fault:
        if "ALREADY_STARTED" in fault.faultString:
            raise AlreadyRunning(name) from None
        raise SupervisorUnavailable(f"supervisord refused to start {name}: {fault.faultString}") from None
    except OSError as exc:
        raise SupervisorUnavailable(f"supervisord is not reachable: {exc.strerror or exc}") from None


def _ask(socket_path: Path, method: str, *args: object) -> object:
    """One XML-RPC call to supervisord; every failure becomes SupervisorUnavailable with the reason."""
    try:
        with _proxy(socket_path) as proxy:  # closes its socket
            return getattr(proxy.supervisor, method)(*args)
    except xmlrpc.client.Fault as fault:
        raise SupervisorUnavailable(fault.faultString) from None
    except OSError as exc:
        raise SupervisorUnavailable(f"supervisord is not reachable: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class ProgramInfo:
    pid: int  # 0 when not running
    state: str  # RUNNING, STARTING, EXITED, BACKOFF, STOPPED, FATAL, ...


def programs(socket_path: Path) -> dict[str, ProgramInfo]:
    """Every program supervisord runs, by name."""
    infos = _ask(socket_path, "getAllProcessInfo")
    if not isinstance(infos, list):
        raise SupervisorUnavailable(f"unexpected answer from supervisord: {infos!r}")
    return {str(i["name"]): ProgramInfo(int(i["pid"]), str(i["statename"])) for i in infos}
