"""Settings shared by every process, read once from the environment.

Every knob a test needs to isolate (port, state dir, HOME) comes from here, so two copies of the whole
system can run side by side on one machine.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services import redact
from services.limits import Limits, LimitsError, whole_number
from services.statefiles import StateFiles

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WEB_DIR = PROJECT_ROOT / "web"
# The page's third-party files: web/vendor in a staged deploy set (services/deploy copies them out of
# node_modules, so the app needs no npm at runtime), else web/node_modules from `npm ci`.
WEB_VENDOR_DIR = WEB_DIR / "vendor"
WEB_NODE_MODULES_DIR = WEB_DIR / "node_modules"
# The shells' home when HOME is unusable: inside the app folder (the one place Databricks Apps is
# known to let the app write) but apart from the app's files.
FALLBACK_HOME = PROJECT_ROOT / ".home"

DEFAULT_PORT = 8000
DEFAULT_SESSION = "main"
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
# The app's secrets. scripts/run moves each from its environment into $STATE/secrets/NAME (0600) and
# starts supervisord without it, so no program holds one in /proc/<pid>/environ; Settings reads
# the variable when it is set (a program started by hand, a test), else the file.
SECRET_VARIABLES = ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "CODING_AGENTS_TOKEN")


class ConfigError(ValueError):
    """An environment variable holds a value the app cannot use; the message names it."""


def _home(env: Mapping[str, str]) -> Path:
    """The shells' home: HOME, unless it is unusable or the app's own source folder.

    Databricks Apps may leave HOME unset or "/", and older deploys set it to the source folder, where
    `ls ~` showed the app and an agent cleaning up `~` could break it. scripts/lib/env.sh applies the
    same rule, so every process agrees.
    """
    home = env.get("HOME", "").strip()
    if home and home != "/" and Path(home).resolve() != PROJECT_ROOT:
        return Path(home)
    return FALLBACK_HOME


def _port(env: Mapping[str, str]) -> int:
    return _optional_port(env, "DATABRICKS_APP_PORT") or DEFAULT_PORT


def _optional_port(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return 0
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a port number, got {raw!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{name} must be between 1 and 65535, got {port}")
    return port


def _owner(env: Mapping[str, str]) -> str:
    owner = env.get("CODING_AGENTS_OWNER", "").strip()
    if owner and not EMAIL.fullmatch(owner):
        raise ConfigError(f"CODING_AGENTS_OWNER must be an e-mail address, got {owner[:100]!r}")
    return owner


def _secret(env: Mapping[str, str], state_dir: Path, name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        path = StateFiles(state_dir).secret(name)
        try:
            value = path.read_text().strip()
        except FileNotFoundError:
            value = ""
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None
    redact.hide(value)
    return value


def normalize_host(raw: str) -> str:
    """Workspace URL with a scheme and no trailing slash; Apps may inject it without `https://`."""
    host = raw.strip().rstrip("/")
    if host and "://" not in host:
        host = "https://" + host
    return host


def _switch(env: Mapping[str, str], name: str, default: bool = True) -> bool:
    """An on/off variable; unset or empty keeps `default`."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("on", "off"):
        raise ConfigError(f"{name} must be on or off, got {raw[:40]!r}")
    return raw == "on"


DEFAULT_PROXY_PROBE_SECONDS = 30.0


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86_400:
        raise ConfigError(f"{name} must be a number of seconds above 0, got {raw[:40]!r}")
    return value


def _whole(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    try:
        return whole_number(env, name, default, minimum, maximum)
    except LimitsError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class SyncSettings:
    """The sync watcher's knobs (services/sync builds its SyncOptions from these)."""

    scan_seconds: float = 30.0  # safety net for commits whose hook did not run
    concurrency: int = 4  # workspace calls at a time
    bundle_idle_seconds: float = 5.0  # refresh a repo's bundle once it has been quiet this long
    max_backoff_seconds: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SyncSettings:
        return cls(
            scan_seconds=_seconds(env, "CODING_AGENTS_SYNC_SCAN_SECONDS", cls.scan_seconds),
            concurrency=_whole(env, "CODING_AGENTS_SYNC_CONCURRENCY", cls.concurrency, 1, 64),
            bundle_idle_seconds=_seconds(
                env, "CODING_AGENTS_SYNC_BUNDLE_IDLE_SECONDS", cls.bundle_idle_seconds
            ),
            max_backoff_seconds=_seconds(
                env, "CODING_AGENTS_SYNC_MAX_BACKOFF_SECONDS", cls.max_backoff_seconds
            ),
        )


@dataclass(frozen=True)
class TracingSettings:
    """MLflow tracing of agent sessions (README, "MLflow tracing"): off unless asked for."""

    agents: frozenset[str] = frozenset()  # agent ids from CODING_AGENTS_MLFLOW_TRACING; "*" = all
    experiment: str = ""  # CODING_AGENTS_MLFLOW_EXPERIMENT; "" = /Users/{owner}/coding-agents

    def wants(self, agent_id: str) -> bool:
        return "*" in self.agents or agent_id in self.agents

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TracingSettings:
        raw = env.get("CODING_AGENTS_MLFLOW_TRACING", "").strip().lower()
        names = [n.strip() for n in raw.split(",") if n.strip()]
        if names in ([], ["off"]):
            agents: frozenset[str] = frozenset()
        elif names in (["all"], ["on"]):
            agents = frozenset({"*"})
        elif all(re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", n) for n in names):
            agents = frozenset(names)
        else:
            raise ConfigError(
                "CODING_AGENTS_MLFLOW_TRACING must be off, all, or agent ids such as claude,codex; "
                f"got {raw[:80]!r}"
            )
        experiment = env.get("CODING_AGENTS_MLFLOW_EXPERIMENT", "").strip().rstrip("/")
        if experiment and not re.fullmatch(r"/[^\x00-\x1f]{1,500}", experiment):
            raise ConfigError(
                "CODING_AGENTS_MLFLOW_EXPERIMENT must be a workspace path such as "
                f"/Users/you@example.com/coding-agents, got {experiment[:80]!r}"
            )
        return cls(agents, experiment)


DEFAULT_UPLOAD_LIMIT_MB = 50
# The owner's token the app mints for itself (README, "Connect your workspace"): a day's lifetime,
# replaced two hours before it ends, so a workspace outage of under two hours never loses it.
DEFAULT_TOKEN_LIFETIME_SECONDS = 24 * 3600
DEFAULT_TOKEN_MARGIN_SECONDS = 2 * 3600
MIN_TOKEN_LIFETIME_SECONDS = 10
MAX_TOKEN_LIFETIME_SECONDS = 730 * 24 * 3600  # the tokens API's own default, two years


def _token_rotation(env: Mapping[str, str]) -> tuple[int, int]:
    """(lifetime, margin) of the tokens the app mints for its owner."""
    lifetime = _whole(
        env,
        "CODING_AGENTS_TOKEN_LIFETIME_SECONDS",
        DEFAULT_TOKEN_LIFETIME_SECONDS,
        MIN_TOKEN_LIFETIME_SECONDS,
        MAX_TOKEN_LIFETIME_SECONDS,
    )
    default_margin = min(DEFAULT_TOKEN_MARGIN_SECONDS, lifetime // 2)
    # Less than the lifetime, or every token would be replaced the moment it is minted.
    margin = _whole(env, "CODING_AGENTS_TOKEN_MARGIN_SECONDS", default_margin, 1, lifetime - 1)
    return lifetime, margin


def _upload_limit(env: Mapping[str, str]) -> int:
    """CODING_AGENTS_UPLOAD_LIMIT_MB: the most one upload request (drop or paste) may carry."""
    raw = env.get("CODING_AGENTS_UPLOAD_LIMIT_MB", "").strip() or str(DEFAULT_UPLOAD_LIMIT_MB)
    try:
        megabytes = int(raw)
    except ValueError:
        raise ConfigError(
            f"CODING_AGENTS_UPLOAD_LIMIT_MB must be a whole number of MiB, got {raw!r}"
        ) from None
    if not 1 <= megabytes <= 10_240:
        raise ConfigError(f"CODING_AGENTS_UPLOAD_LIMIT_MB must be between 1 and 10240, got {megabytes}")
    return megabytes * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    port: int
    state_dir: Path
    home: Path
    apps_mode: bool
    token_override: str = field(repr=False)
    databricks_host: str
    allowed_hosts: tuple[str, ...]
    tmux_bin: str
    # The owner's PAT: kept out of repr so a logged or asserted Settings never shows it.
    databricks_token: str = field(default="", repr=False)
    owner_override: str = ""
    gateway_host: str = ""
    proxy_port: int = 0  # the model proxy's loopback port; 0 means DATABRICKS_APP_PORT + 1
    client_id: str = ""  # the app's service principal (Apps injects it): PAT-less model access
    client_secret: str = field(default="", repr=False)
    upload_limit_bytes: int = DEFAULT_UPLOAD_LIMIT_MB * 1024 * 1024  # per upload request
    # How often the model proxy checks the AI Gateway is up (CODING_AGENTS_PROXY_PROBE_SECONDS).
    proxy_probe_seconds: float = DEFAULT_PROXY_PROBE_SECONDS
    sync: SyncSettings = field(default_factory=lambda: SyncSettings())  # README, "Workspace sync"
    setup_enabled: bool = True  # CODING_AGENTS_SETUP=off: the setup runner does nothing (tests)
    limits: Limits = field(default_factory=Limits)  # README, "Limits"
    app_name: str = ""  # DATABRICKS_APP_NAME: whose creator owns the app when no token says otherwise
    token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS  # of the owner's tokens the app mints
    token_margin_seconds: int = DEFAULT_TOKEN_MARGIN_SECONDS  # replaced this long before they expire
    tracing: TracingSettings = field(default_factory=TracingSettings)  # README, "MLflow tracing"

    @property
    def bind_host(self) -> str:
        # Apps mode must listen on all interfaces or the Apps proxy answers 502.
        return "0.0.0.0" if self.apps_mode else "127.0.0.1"

    @property
    def has_workspace(self) -> bool:
        return bool(self.databricks_host and self.databricks_token)

    @property
    def model_proxy_port(self) -> int:
        return self.proxy_port or self.port + 1

    @property
    def model_proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.model_proxy_port}"

    @property
    def files(self) -> StateFiles:
        """Every path in the state dir (services/statefiles.py, ARCHITECTURE.md)."""
        return StateFiles(self.state_dir)

    @property
    def tmux_socket(self) -> Path:
        return self.files.tmux_socket

    @property
    def projects_dir(self) -> Path:
        return self.home / "projects"

    @property
    def local_bin(self) -> Path:
        return self.home / ".local" / "bin"

    @property
    def state_bin(self) -> Path:
        """Helper commands (the supervisorctl wrapper) put on every shell's PATH."""
        return self.files.bin

    @property
    def log_dir(self) -> Path:
        return self.files.logs

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = _home(env)
        state_raw = env.get("CODING_AGENTS_STATE_DIR", "").strip()
        state_dir = (Path(state_raw).expanduser() if state_raw else home / ".coding-agents").absolute()
        try:
            limits = Limits.from_env(env)
        except LimitsError as exc:
            raise ConfigError(str(exc)) from None
        lifetime, margin = _token_rotation(env)
        allowed = tuple(
            h.strip().lower() for h in env.get("CODING_AGENTS_ALLOWED_HOSTS", "").split(",") if h.strip()
        )
        # Given to the app for the shells' gh and git (README, "GitHub"); never in a log line.
        redact.hide(*(env.get(name, "").strip() for name in ("GH_TOKEN", "GITHUB_TOKEN")))
        return cls(
            port=_port(env),
            state_dir=state_dir,
            home=home.absolute(),
            apps_mode=bool(env.get("DATABRICKS_APP_NAME", "").strip()),
            token_override=_secret(env, state_dir, "CODING_AGENTS_TOKEN"),
            databricks_host=normalize_host(env.get("DATABRICKS_HOST", "")),
            allowed_hosts=allowed,
            app_name=env.get("DATABRICKS_APP_NAME", "").strip(),
            token_lifetime_seconds=lifetime,
            token_margin_seconds=margin,
            tmux_bin=env.get("CODING_AGENTS_TMUX", "").strip() or _find_tmux(home),
            databricks_token=_secret(env, state_dir, "DATABRICKS_TOKEN"),
            owner_override=_owner(env),
            gateway_host=normalize_host(env.get("DATABRICKS_GATEWAY_HOST", "")),
            proxy_port=_optional_port(env, "CODING_AGENTS_PROXY_PORT"),
            client_id=env.get("DATABRICKS_CLIENT_ID", "").strip(),
            client_secret=_secret(env, state_dir, "DATABRICKS_CLIENT_SECRET"),
            upload_limit_bytes=_upload_limit(env),
            sync=SyncSettings.from_env(env),
            setup_enabled=_switch(env, "CODING_AGENTS_SETUP"),
            proxy_probe_seconds=_seconds(
                env, "CODING_AGENTS_PROXY_PROBE_SECONDS", DEFAULT_PROXY_PROBE_SECONDS
            ),
            limits=limits,
            tracing=TracingSettings.from_env(env),
        )


def _find_tmux(home: Path) -> str:
    found = shutil.which("tmux")
    if found:
        return found
    # scripts/run installs a static tmux here on hosts without one (Databricks Apps).
    return str(home / ".local" / "bin" / "tmux")
