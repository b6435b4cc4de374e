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
from services.limits import Limits, LimitsError

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
DEFAULT_ANTHROPIC_MODEL = "databricks-claude-opus-4-6"
DEFAULT_GEMINI_MODEL = "databricks-gemini-3-1-pro"
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


def secrets_dir(state_dir: Path) -> Path:
    return state_dir / "secrets"


def _secret(env: Mapping[str, str], state_dir: Path, name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        path = secrets_dir(state_dir) / name
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


DEFAULT_UPLOAD_LIMIT_MB = 50
# The owner's token the app mints for itself (README, "Connect your workspace"): a day's lifetime,
# replaced two hours before it ends, so a workspace outage of under two hours never loses it.
DEFAULT_TOKEN_LIFETIME_SECONDS = 24 * 3600
DEFAULT_TOKEN_MARGIN_SECONDS = 2 * 3600
MIN_TOKEN_LIFETIME_SECONDS = 10
MAX_TOKEN_LIFETIME_SECONDS = 730 * 24 * 3600  # the tokens API's own default, two years


def _seconds(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of seconds, got {raw[:40]!r}") from None


def _token_rotation(env: Mapping[str, str]) -> tuple[int, int]:
    """(lifetime, margin) of the tokens the app mints for its owner."""
    lifetime = _seconds(env, "CODING_AGENTS_TOKEN_LIFETIME_SECONDS", DEFAULT_TOKEN_LIFETIME_SECONDS)
    if not MIN_TOKEN_LIFETIME_SECONDS <= lifetime <= MAX_TOKEN_LIFETIME_SECONDS:
        raise ConfigError(
            f"CODING_AGENTS_TOKEN_LIFETIME_SECONDS must be between {MIN_TOKEN_LIFETIME_SECONDS} and "
            f"{MAX_TOKEN_LIFETIME_SECONDS}, got {lifetime}"
        )
    default_margin = min(DEFAULT_TOKEN_MARGIN_SECONDS, lifetime // 2)
    margin = _seconds(env, "CODING_AGENTS_TOKEN_MARGIN_SECONDS", default_margin)
    if not 1 <= margin < lifetime:
        raise ConfigError(
            f"CODING_AGENTS_TOKEN_MARGIN_SECONDS must be at least 1 and less than the lifetime "
            f"({lifetime} s), got {margin}"
        )
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
    app_name: str
    token_override: str = field(repr=False)
    databricks_host: str
    allowed_hosts: tuple[str, ...]
    anthropic_model: str
    gemini_model: str
    tmux_bin: str
    # The owner's PAT: kept out of repr so a logged or asserted Settings never shows it.
    databricks_token: str = field(default="", repr=False)
    owner_override: str = ""
    gateway_host: str = ""
    proxy_port: int = 0  # the model proxy's loopback port; 0 means DATABRICKS_APP_PORT + 1
    client_id: str = ""  # the app's service principal (Apps injects it): PAT-less model access
    client_secret: str = field(default="", repr=False)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    upload_limit_bytes: int = DEFAULT_UPLOAD_LIMIT_MB * 1024 * 1024  # per upload request
    limits: Limits = field(default_factory=Limits)  # README, "Limits"
    token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS  # of the owner's tokens the app mints
    token_margin_seconds: int = DEFAULT_TOKEN_MARGIN_SECONDS  # replaced this long before they expire

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
    def tmux_socket(self) -> Path:
        return self.state_dir / "tmux.sock"

    @property
    def projects_dir(self) -> Path:
        return self.home / "projects"

    @property
    def local_bin(self) -> Path:
        return self.home / ".local" / "bin"

    @property
    def state_bin(self) -> Path:
        """Helper commands (the supervisorctl wrapper) put on every shell's PATH."""
        return self.state_dir / "bin"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

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
        return cls(
            port=_port(env),
            state_dir=state_dir,
            home=home.absolute(),
            apps_mode=bool(env.get("DATABRICKS_APP_NAME", "").strip()),
            app_name=env.get("DATABRICKS_APP_NAME", "").strip(),
            token_override=_secret(env, state_dir, "CODING_AGENTS_TOKEN"),
            databricks_host=normalize_host(env.get("DATABRICKS_HOST", "")),
            allowed_hosts=allowed,
            token_lifetime_seconds=lifetime,
            token_margin_seconds=margin,
            anthropic_model=env.get("ANTHROPIC_MODEL", "").strip() or DEFAULT_ANTHROPIC_MODEL,
            gemini_model=env.get("GEMINI_MODEL", "").strip() or DEFAULT_GEMINI_MODEL,
            tmux_bin=env.get("CODING_AGENTS_TMUX", "").strip() or _find_tmux(home),
            databricks_token=_secret(env, state_dir, "DATABRICKS_TOKEN"),
            owner_override=_owner(env),
            gateway_host=normalize_host(env.get("DATABRICKS_GATEWAY_HOST", "")),
            proxy_port=_optional_port(env, "CODING_AGENTS_PROXY_PORT"),
            client_id=env.get("DATABRICKS_CLIENT_ID", "").strip(),
            client_secret=_secret(env, state_dir, "DATABRICKS_CLIENT_SECRET"),
            upload_limit_bytes=_upload_limit(env),
            limits=limits,
        )


def _find_tmux(home: Path) -> str:
    found = shutil.which("tmux")
    if found:
        return found
    # scripts/run installs a static tmux here on hosts without one (Databricks Apps).
    return str(home / ".local" / "bin" / "tmux")
