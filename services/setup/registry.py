"""agents.yaml, loaded in named stages: read (YAML) → validate (every rule, every entry) → build
(frozen dataclasses). Each broken rule is one line naming the file, the entry and the fix, and all
of them are reported at once, so a bad registry is fixed in one edit, not one error per run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from services.config import PROJECT_ROOT
from services.setup.mcp import MCP_NAME, valid_url

DEFAULT_REGISTRY = PROJECT_ROOT / "agents.yaml"
DEFAULT_TIMEOUT = 600.0
FAMILIES = ("anthropic", "gemini", "openai")  # the APIs the model proxy routes (services/model_proxy)
# The names agents.yaml may give `run:` (kind builtin) and `configurer:`, each implemented in
# services/setup/builtins.py (tests/setup/test_registry.py checks they agree). Named here so that
# loading the registry imports no step code: the gateway loads it too.
BUILTIN_NAMES = frozenset({"workspace_identity", "skills", "tmux", "gh_git_credentials"})
CONFIGURER_NAMES = frozenset({"claude", "gemini", "opencode", "codex"})
TOOL_KINDS = ("download", "builtin", "command")
ARCHES = ("amd64", "arm64")
ENTRY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
# Exact versions only: a range or a tag ("latest", "^1.2") would install whatever is newest today.
PINNED = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")
SHA256 = re.compile(r"[0-9a-f]{64}")
ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
NPM_PACKAGE = re.compile(r"(?:@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*")
BINARY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

COMMON_KEYS = {"title", "after", "timeout"}
AGENT_KEYS = COMMON_KEYS | {
    "package",
    "version",
    "binary",
    "launch",
    "family",
    "model",
    "model_env",
    "configurer",
    "memory_mb",
    "skill_dirs",
    "sessions",
}
AGENT_REQUIRED = ("title", "package", "version", "binary", "launch", "family", "model")
TOOL_KEYS: dict[str, set[str]] = {
    "download": COMMON_KEYS | {"kind", "version", "binary", "member", "url", "sha256", "sha256_url"},
    "builtin": COMMON_KEYS | {"kind", "run"},
    "command": COMMON_KEYS | {"kind", "version", "run", "check"},
}
TOOL_REQUIRED: dict[str, tuple[str, ...]] = {
    "download": ("title", "version", "binary", "member", "url"),
    "builtin": ("title", "run"),
    "command": ("title", "run"),
}


class RegistryError(ValueError):
    """The registry cannot be used; one line per broken rule."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{path}: " + "\n  ".join(["invalid registry:", *problems]))


@dataclass(frozen=True)
class Agent:
    id: str
    title: str
    package: str
    version: str
    binary: str
    launch: str
    family: str
    model: str
    model_env: str = ""
    configurer: str = ""
    after: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    # Memory a window of it needs (whole process tree, MiB): the gateway's memory guard keeps this
    # much plus the floor free before it launches one. 0: not given (a default applies).
    memory_mb: int = 0
    # Folders (relative to HOME) the agent reads user-level skills from; setup installs skills there.
    skill_dirs: tuple[str, ...] = ()
    # Where its conversations live (globs relative to HOME), mirrored to the workspace by the sync
    # (services/sync/agent_sessions.py) so a resume works after a redeploy.
    sessions: tuple[str, ...] = ()

    def current_model(self, env: Mapping[str, str]) -> str:
        return (env.get(self.model_env, "").strip() if self.model_env else "") or self.model


@dataclass(frozen=True)
class Tool:
    id: str
    title: str
    kind: str
    version: str = ""
    binary: str = ""
    member: str = ""
    url: Mapping[str, str] = field(default_factory=dict)  # arch → URL, {version} filled in
    sha256: Mapping[str, str] = field(default_factory=dict)  # arch → hex digest
    # A published checksum file (one digest, or "<sha256>  <file name>" lines); {url} is the asset's URL.
    sha256_url: str = ""
    run: tuple[str, ...] = ()  # builtin: (function name,); command: argv
    check: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Registry:
    path: Path
    agents: tuple[Agent, ...]
    tools: tuple[Tool, ...]
    # `mcp_servers:` — name → URL (add or override a default) or None (switch it off).
    mcp_servers: Mapping[str, str | None] = field(default_factory=dict)

    def agent(self, agent_id: str) -> Agent | None:
        return next((a for a in self.agents if a.id == agent_id), None)


def registry_path(env: Mapping[str, str]) -> Path:
    """agents.yaml of the project, or CODING_AGENTS_REGISTRY (tests and custom installs)."""
    raw = env.get("CODING_AGENTS_REGISTRY", "").strip()
    return Path(raw) if raw else DEFAULT_REGISTRY


# --- stage 1: read -------------------------------------------------------------------------------


def read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise RegistryError(path, [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RegistryError(path, [f"not valid YAML: {where}{problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RegistryError(path, ["the top level must be a mapping with 'agents' and 'tools'"])
    return data


# --- stage 2: validate ---------------------------------------------------------------------------


class _Checker:
    def __init__(self, known_builtins: Set[str], known_configurers: Set[str]) -> None:
        self.problems: list[str] = []
        self.builtins = known_builtins
        self.configurers = known_configurers

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def keys(self, where: str, entry: dict[str, Any], allowed: set[str], required: tuple[str, ...]) -> None:
        for key in sorted(set(entry) - allowed):
            self.add(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
        for key in required:
            if key not in entry or entry[key] in (None, ""):
                self.add(where, f"missing field {key!r}")

    def string(
        self, where: str, entry: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None
    ) -> None:
        value = entry.get(key)
        if value is None:
            return
        if not isinstance(value, str):
            self.add(where, f"{key!r} must be a string, got {type(value).__name__}")
        elif pattern is not None and not pattern.fullmatch(value):
            self.add(where, f"{key!r} {value!r} does not match {pattern.pattern}")

    def version(self, where: str, entry: dict[str, Any]) -> None:
        value = entry.get("version")
        if value is None:
            return
        if not isinstance(value, str) or not PINNED.fullmatch(value):
            self.add(where, f'unpinned version {value!r}: give an exact version such as "1.2.3" (quote it)')

    def common(self, where: str, entry: dict[str, Any]) -> None:
        self.string(where, entry, "title")
        after = entry.get("after", [])
        if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
            self.add(where, "'after' must be a list of entry ids")
        timeout = entry.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            self.add(where, f"'timeout' must be a positive number of seconds, got {timeout!r}")

    def agent(self, where: str, entry: dict[str, Any]) -> None:
        self.keys(where, entry, AGENT_KEYS, AGENT_REQUIRED)
        self.common(where, entry)
        self.version(where, entry)
        self.string(where, entry, "package", NPM_PACKAGE)
        self.string(where, entry, "binary", BINARY)
        self.string(where, entry, "launch")
        self.string(where, entry, "model")
        self.string(where, entry, "model_env", ENV_NAME)
        memory = entry.get("memory_mb")
        if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int) or memory <= 0):
            self.add(where, f"'memory_mb' must be a positive whole number of MiB, got {memory!r}")
        dirs = entry.get("skill_dirs", [])
        if not isinstance(dirs, list) or not all(
            isinstance(d, str) and d and not d.startswith("/") and ".." not in d.split("/") for d in dirs
        ):
            self.add(where, "'skill_dirs' must be a list of folders relative to HOME, such as .claude/skills")
        globs = entry.get("sessions", [])
        if not isinstance(globs, list) or not all(is_session_glob(g) for g in globs):
            example = ".claude/projects/*/*.jsonl"
            self.add(where, f"'sessions' must be a list of globs under HOME's dot-folders, such as {example}")
        family = entry.get("family")
        if family is not None and family not in FAMILIES:
            self.add(where, f"unknown family {family!r} (one of: {', '.join(FAMILIES)})")
        configurer = entry.get("configurer")
        if configurer is not None and configurer not in self.configurers:
            known = ", ".join(sorted(self.configurers)) or "none defined"
            self.add(where, f"unknown configurer {configurer!r} (known: {known})")

    def tool(self, where: str, entry: dict[str, Any]) -> None:
        kind = entry.get("kind")
        if kind not in TOOL_KINDS:
            self.add(where, f"unknown kind {kind!r} (one of: {', '.join(TOOL_KINDS)})")
            return
        self.keys(where, entry, TOOL_KEYS[kind], TOOL_REQUIRED[kind])
        self.common(where, entry)
        self.version(where, entry)
        if kind == "download":
            self.download(where, entry)
        elif kind == "builtin":
            run = entry.get("run")
            if run is not None and run not in self.builtins:
                known = ", ".join(sorted(self.builtins)) or "none defined"
                self.add(where, f"unknown builtin {run!r} (known: {known})")
        else:
            for key in ("run", "check"):
                value = entry.get(key)
                if value is not None and (
                    not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value)
                ):
                    self.add(where, f"{key!r} must be a non-empty list of strings (an argv)")

    def download(self, where: str, entry: dict[str, Any]) -> None:
        self.string(where, entry, "binary", BINARY)
        self.string(where, entry, "member")
        urls = self.download_urls(where, entry.get("url"))
        sums = entry.get("sha256")
        if sums is None and not entry.get("sha256_url"):
            self.add(where, "needs 'sha256' (per architecture) or 'sha256_url': downloads are verified")
        if sums is not None:
            self.download_sums(where, sums, urls, bool(entry.get("sha256_url")))
        self.sha256_url(where, entry.get("sha256_url"))

    def sha256_url(self, where: str, template: object) -> None:
        if template is None:
            return
        example = "https://example.com/file"
        if not isinstance(template, str) or not _fetchable(template.replace("{url}", example)):
            hint = "https://, or {url} (the asset's URL) and a suffix"
            self.add(where, f"'sha256_url' must be {hint}: {template!r}")

    def download_urls(self, where: str, urls: object) -> dict[str, Any]:
        """The per-architecture URLs, each checked; {} when absent or not a mapping."""
        if urls is None:
            return {}
        if not isinstance(urls, dict) or not urls:
            self.add(where, "'url' must map an architecture (amd64, arm64) to a URL")
            return {}
        for arch, url in urls.items():
            if arch not in ARCHES:
                self.add(where, f"unknown architecture {arch!r} in 'url' (one of: {', '.join(ARCHES)})")
            elif not isinstance(url, str) or not _fetchable(url):
                self.add(where, f"url for {arch} must be https:// (http:// only for localhost): {url!r}")
        return urls

    def download_sums(self, where: str, sums: object, urls: dict[str, Any], has_sum_url: bool) -> None:
        if not isinstance(sums, dict):
            self.add(where, "'sha256' must map an architecture to a hex digest")
            return
        for arch, digest in sums.items():
            if not isinstance(digest, str) or not SHA256.fullmatch(digest):
                self.add(where, f"sha256 for {arch!r} must be 64 lower-case hex digits")
        for arch in urls:
            if arch not in sums and not has_sum_url:
                self.add(where, f"no sha256 for {arch}")

    def mcp_servers(self, servers: object) -> None:
        if servers is None:
            return
        if not isinstance(servers, dict):
            self.add("mcp_servers", "must map a server name to its URL, or to off")
            return
        for name, url in servers.items():
            where = f"mcp_servers.{name}"
            if not isinstance(name, str) or not MCP_NAME.fullmatch(name):
                self.add(where, "names are 1-32 lower-case letters, digits, '-' and '_'")
            # YAML reads a bare `off` as false.
            if not (url is None or url is False or (isinstance(url, str) and valid_url(url))):
                self.add(where, f"must be an http(s):// URL, or off to switch the server off; got {url!r}")

    def graph(self, entries: dict[str, dict[str, Any]], where: Callable[[str], str]) -> None:
        for entry_id, entry in entries.items():
            after = entry.get("after", [])
            if not isinstance(after, list):
                continue
            for dep in after:
                if dep not in entries:
                    self.add(where(entry_id), f"'after' names {dep!r}, which is not an entry")
                elif dep == entry_id:
                    self.add(where(entry_id), "'after' names the entry itself")
        cycle = _find_cycle({k: [d for d in v.get("after", []) if d in entries] for k, v in entries.items()})
        if cycle:
            self.add(where(cycle[0]), "'after' makes a cycle: " + " → ".join([*cycle, cycle[0]]))


def _fetchable(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.netloc)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def _find_cycle(graph: dict[str, list[str]]) -> list[str]:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str]:
        if node in visiting:
            return visiting[visiting.index(node) :]
        if node in done:
            return []
        visiting.append(node)
        for dep in graph.get(node, []):
            if cycle := visit(dep):
                return cycle
        visiting.pop()
        done.add(node)
        return []

    for node in graph:
        if cycle := visit(node):
            return cycle
    return []


def validate(
    path: Path, data: dict[str, Any], known_builtins: Set[str], known_configurers: Set[str]
) -> list[str]:
    checker = _Checker(known_builtins, known_configurers)
    for key in sorted(set(data) - {"agents", "tools", "mcp_servers"}):
        checker.add("top level", f"unknown key {key!r} (allowed: agents, tools, mcp_servers)")
    checker.mcp_servers(data.get("mcp_servers"))
    sections: dict[str, dict[str, Any]] = {}
    for section in ("agents", "tools"):
        value = data.get(section) or {}
        if not isinstance(value, dict):
            checker.add(section, "must be a mapping of entry id → entry")
            value = {}
        sections[section] = value
    seen: dict[str, str] = {}
    for section, entries in sections.items():
        for entry_id, entry in entries.items():
            where = f"{section}.{entry_id}"
            if not isinstance(entry_id, str) or not ENTRY_ID.fullmatch(entry_id):
                checker.add(where, "ids are 1-32 lower-case letters, digits and '-'")
            if entry_id in seen:
                checker.add(where, f"id also used in {seen[entry_id]}")
            seen[str(entry_id)] = section
            if not isinstance(entry, dict):
                checker.add(where, "must be a mapping of fields")
                continue
            (checker.agent if section == "agents" else checker.tool)(where, entry)
    everything = {
        str(k): v for entries in sections.values() for k, v in entries.items() if isinstance(v, dict)
    }
    checker.graph(everything, lambda entry_id: f"{seen.get(entry_id, '?')}.{entry_id}")
    return checker.problems


# --- stage 3: build ------------------------------------------------------------------------------


def is_session_glob(glob: object) -> bool:
    """Relative to HOME, inside a dot-folder (an agent's own), never climbing out of it."""
    return isinstance(glob, str) and glob.startswith(".") and ".." not in glob.split("/") and "\\" not in glob


def build(path: Path, data: dict[str, Any]) -> Registry:
    agents = tuple(
        Agent(
            id=agent_id,
            title=e["title"],
            package=e["package"],
            version=e["version"],
            binary=e["binary"],
            launch=e["launch"],
            family=e["family"],
            model=e["model"],
            model_env=e.get("model_env", ""),
            configurer=e.get("configurer", ""),
            after=tuple(e.get("after", [])),
            timeout=float(e.get("timeout", DEFAULT_TIMEOUT)),
            memory_mb=int(e.get("memory_mb", 0)),
            skill_dirs=tuple(e.get("skill_dirs", [])),
            sessions=tuple(e.get("sessions", [])),
        )
        for agent_id, e in (data.get("agents") or {}).items()
    )
    tools = []
    for tool_id, e in (data.get("tools") or {}).items():
        version = str(e.get("version", ""))
        run = e.get("run", ())
        tools.append(
            Tool(
                id=tool_id,
                title=e["title"],
                kind=e["kind"],
                version=version,
                binary=e.get("binary", ""),
                member=str(e.get("member", "")).replace("{version}", version),
                url={a: u.replace("{version}", version) for a, u in (e.get("url") or {}).items()},
                sha256=dict(e.get("sha256") or {}),
                sha256_url=str(e.get("sha256_url", "")).replace("{version}", version),
                run=(run,) if isinstance(run, str) else tuple(run),
                check=tuple(e.get("check", ())),
                after=tuple(e.get("after", [])),
                timeout=float(e.get("timeout", DEFAULT_TIMEOUT)),
            )
        )
    servers = (data.get("mcp_servers") or {}).items()
    mcp = {str(name): (url if isinstance(url, str) else None) for name, url in servers}
    return Registry(path, agents, tuple(tools), mcp)


def load(
    path: Path = DEFAULT_REGISTRY,
    known_builtins: Set[str] = BUILTIN_NAMES,
    known_configurers: Set[str] = CONFIGURER_NAMES,
) -> Registry:
    """Read, validate and build; RegistryError lists every problem found."""
    data = read(path)
    problems = validate(path, data, known_builtins, known_configurers)
    if problems:
        raise RegistryError(path, problems)
    return build(path, data)
