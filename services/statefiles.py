"""Every file in the state dir, named once: the contract between the processes (ARCHITECTURE.md).

The processes never share memory; they talk through these files and supervisord's socket, the way
the page and the gateway talk through services/gateway/protocol.py. A path is built here and
nowhere else, so a writer and its readers cannot drift apart. Shapes owned by one subsystem
(setup status: services/setup/status.py, sync status: services/sync/status.py) keep their types
there; the small ones with no other home are typed here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services import state


@dataclass(frozen=True)
class StateFiles:
    """The state dir's layout (CODING_AGENTS_STATE_DIR); ARCHITECTURE.md has writer and readers."""

    root: Path

    # --- supervisord and scripts/run ---------------------------------------------------------
    @property
    def supervisor_socket(self) -> Path:
        return self.root / "supervisor.sock"

    @property
    def supervisord_pid(self) -> Path:
        return self.root / "supervisord.pid"

    @property
    def platform_fifo(self) -> Path:
        return self.root / "platform.fifo"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def setup_logs(self) -> Path:
        return self.logs / "setup"

    @property
    def bin(self) -> Path:
        """Helper commands (the supervisorctl wrapper) put on every shell's PATH."""
        return self.root / "bin"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    def secret(self, name: str) -> Path:
        return self.secrets / name

    @property
    def owner_token(self) -> Path:
        """The owner's token connected in the page (services/credentials/store.py)."""
        return self.secrets / "owner-token.json"

    # --- tmux ----------------------------------------------------------------------------------
    @property
    def tmux_socket(self) -> Path:
        return self.root / "tmux.sock"

    @property
    def tmux_conf(self) -> Path:
        return self.root / "tmux.conf"

    @property
    def tmux_shell_conf(self) -> Path:
        # In secrets/: it holds the shells' environment, the owner's PAT included on a laptop.
        return self.secret("tmux-shell.conf")

    @property
    def tmux_install(self) -> Path:
        return self.root / "tmux-install.json"

    # --- gateway -------------------------------------------------------------------------------
    @property
    def local_token(self) -> Path:
        return self.root / "token"

    @property
    def cookie_secret(self) -> Path:
        return self.root / "cookie_secret"

    @property
    def owner(self) -> Path:
        return self.root / "owner.json"

    @property
    def static_cache(self) -> Path:
        return self.root / "static-cache"

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def agent_models(self) -> Path:
        """Per-agent model choices made on the page; they beat the environment's defaults."""
        return self.root / "models.json"

    @property
    def agent_tracing(self) -> Path:
        """Per-agent MLflow tracing switches flipped on the page; they beat CODING_AGENTS_MLFLOW_TRACING."""
        return self.root / "tracing.json"

    def tracing_status(self, agent_id: str) -> Path:
        """What the agent's configurer last did about tracing (services/setup/tracing.py); a file per
        agent, as setup configures the agents in parallel."""
        return self.root / "setup" / "tracing" / f"{agent_id}.json"

    # --- model proxy ---------------------------------------------------------------------------
    @property
    def model_proxy_key(self) -> Path:
        return self.root / "model-proxy.key"

    @property
    def model_proxy_status(self) -> Path:
        return self.root / "model-proxy" / "status.json"

    # --- setup ---------------------------------------------------------------------------------
    @property
    def setup_status(self) -> Path:
        return self.root / "setup" / "status.json"

    @property
    def mcp_check(self) -> Path:
        """Setup's last verdict on each MCP server (services/setup/mcp.py)."""
        return self.root / "setup" / "mcp-check.json"

    @property
    def mcp_written(self) -> Path:
        """The MCP servers setup wrote into each agent's config (so only those are ever removed)."""
        return self.root / "setup" / "mcp-written.json"

    @property
    def setup_request(self) -> Path:
        return self.root / "setup" / "request.json"

    @property
    def setup_lock(self) -> Path:
        return self.root / "setup" / "lock"

    def configure_lock(self, agent: str) -> Path:
        """Held while an agent's configurer rewrites its files (setup, and the gateway's switches)."""
        return self.root / "setup" / "configure" / f"{agent}.lock"

    @property
    def skills(self) -> Path:
        return self.root / "skills"

    # --- sync ----------------------------------------------------------------------------------
    @property
    def sync(self) -> Path:
        return self.root / "sync"

    @property
    def sync_status(self) -> Path:
        return self.sync / "status.json"

    @property
    def sync_lock(self) -> Path:
        return self.sync / "lock"

    @property
    def sync_journal(self) -> Path:
        return self.sync / "journal.sqlite"

    @property
    def sync_notice(self) -> Path:
        return self.sync / "restore-notice"


# --- models.json: gateway writes, setup's configurers and the gateway read --------------------


def _json_object(path: Path) -> dict[str, Any]:
    """The file's JSON object; {} when it is missing or unusable (the defaults then apply)."""
    try:
        data = state.read_json(path)
    except (OSError, ValueError):
        return {}
    return {str(k): v for k, v in data.items()} if isinstance(data, dict) else {}


def read_model_choices(path: Path) -> dict[str, str]:
    """Agent id → serving endpoint chosen on the page; {} when none was made or the file is unusable
    (the environment's defaults then apply, as before any choice)."""
    return {k: v for k, v in _json_object(path).items() if isinstance(v, str) and v}


def save_model_choice(path: Path, agent_id: str, model: str) -> None:
    choices = read_model_choices(path)
    choices[agent_id] = model
    state.atomic_write_json(path, choices, mode=0o644)


# --- tracing.json: gateway writes, setup's configurers and the gateway read ---------------------


def read_tracing_choices(path: Path) -> dict[str, bool]:
    """Agent id → tracing on/off as switched on the page; {} when never switched."""
    return {k: v for k, v in _json_object(path).items() if isinstance(v, bool)}


def save_tracing_choice(path: Path, agent_id: str, on: bool) -> None:
    choices = read_tracing_choices(path)
    choices[agent_id] = on
    state.atomic_write_json(path, choices, mode=0o644)


@dataclass
class TracingStatus:
    """One agent's tracing as its configurer left it: the page shows it beside the switch."""

    wanted: bool = False
    on: bool = False
    experiment: str = ""
    experiment_id: str = ""
    reason: str = ""  # why it is off although wanted
    written: bool = False  # our hook is in the agent's config (only then do we ever remove one)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> TracingStatus:
        if not isinstance(data, dict):
            return cls()
        return cls(
            wanted=data.get("wanted") is True,
            on=data.get("on") is True,
            experiment=str(data.get("experiment") or ""),
            experiment_id=str(data.get("experiment_id") or ""),
            reason=str(data.get("reason") or ""),
            written=data.get("written") is True,
        )


def read_tracing_status(path: Path) -> TracingStatus:
    """The agent's last tracing outcome; a default (off, never written) before the first one."""
    try:
        return TracingStatus.from_json(state.read_json(path))
    except (OSError, ValueError):
        return TracingStatus()


def save_tracing_status(path: Path, status: TracingStatus) -> None:
    state.atomic_write_json(path, status.to_json(), mode=0o644)


# --- model-proxy/status.json: the model proxy writes, the gateway serves ----------------------


@dataclass
class ModelProxyStatus:
    """What /api/model-proxy shows: the upstreams, the credential in use and per-agent counters."""

    upstream: dict[str, Any] = field(default_factory=dict)
    credential: str = ""
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    now: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream,
            "credential": self.credential,
            "agents": self.agents,
            "now": self.now,
        }

    @classmethod
    def from_json(cls, data: object) -> ModelProxyStatus:
        if not isinstance(data, dict):
            raise ValueError("the model proxy status is not a JSON object")
        upstream, agents = data.get("upstream", {}), data.get("agents", {})
        credential, now = data.get("credential", ""), data.get("now", 0.0)
        if not isinstance(upstream, dict) or not isinstance(agents, dict):
            raise ValueError("the model proxy status has no 'upstream'/'agents' objects")
        if not isinstance(credential, str) or isinstance(now, bool) or not isinstance(now, int | float):
            raise ValueError("the model proxy status has a bad 'credential' or 'now'")
        return cls(upstream, credential, agents, float(now))


def write_model_proxy_status(path: Path, status: ModelProxyStatus) -> None:
    state.atomic_write_json(path, status.to_json(), 0o644)


def read_model_proxy_status(path: Path) -> ModelProxyStatus:
    """Raises FileNotFoundError before the proxy's first write, ValueError for a broken file."""
    return ModelProxyStatus.from_json(state.read_json(path))
