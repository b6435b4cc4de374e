"""Agent skills: the ones this product ships (`skills/`) and the upstream collections named in
`skills/sources.yaml`, fetched with git (shallow, at a pinned ref) and copied into every agent's
skills folder. Run by the setup step and by `refresh-skills` (`python -m services.skills`).

Rules that keep a user's own work safe:
- Only folders listed in the manifest (`$STATE/skills/installed.json`) are ever replaced or removed;
  any other folder in an agent's skills folder is the user's and is never touched.
- An installed skill the user edited becomes theirs: it is kept and dropped from the manifest.
- A source that cannot be fetched keeps the skills it installed before; shipped skills always install.

A deployed app carries a copy of each source made on the deployer's machine (`skills/vendor/<name>/`,
written by services.deploy); a copy whose marker names the source's repo and ref is used as is, with no
git and no network.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from services import state
from services.config import PROJECT_ROOT, ConfigError, Settings
from services.setup.registry import Agent, load, registry_path
from services.statefiles import StateFiles

SHIPPED_DIR = PROJECT_ROOT / "skills"
DEFAULT_SOURCES = SHIPPED_DIR / "sources.yaml"
SOURCES_ENV = "CODING_AGENTS_SKILL_SOURCES"
SHIPPED = "coding-agents"  # the source label of skills/ in reports and the manifest
VENDOR_DIR = "vendor"  # skills/vendor/<source>/: staged copies of the sources; not a shipped skill
VENDOR_MARKER = ".vendored.json"  # in each staged copy: the repo, ref, commit and path it holds
MANIFEST_VERSION = 1
FETCH_TIMEOUT = 180.0  # one source's whole fetch: two stalled sources still end within a setup step's 600 s
GIT_TIMEOUT = 60.0  # local git commands (init, checkout, rev-parse)


# Agent Skills naming rule (agentskills.io; OpenCode enforces it): 1-64 lower-case letters and digits
# in hyphen-separated words, equal to the folder name.
SKILL_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_NAME = 64
MAX_DESCRIPTION = 1024
SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
# A release tag: a branch name ("main") would install whatever is newest on the day of the refresh.
RELEASE_TAG = re.compile(r"(?:refs/tags/)?v?\d+(?:\.\d+)+(?:[-+][0-9A-Za-z.-]+)?")
SOURCE_KEYS = {"name", "repo", "ref", "path", "include", "exclude"}
SOURCE_REQUIRED = ("name", "repo", "ref", "path")
# Temp and old copies made while replacing a skill folder; hidden, so agents skip them.
WORK_PREFIX = ".cas-"


# --- SKILL.md ------------------------------------------------------------------------------------


class SkillError(ValueError):
    """A folder is not a valid skill; the message says why in one line."""


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    body: str


def read_skill(folder: Path) -> Skill:
    """The front matter and body of folder/SKILL.md, checked against the Agent Skills rules."""
    path = folder / "SKILL.md"
    if path.is_symlink() or not path.is_file():
        raise SkillError("no SKILL.md file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SkillError(f"cannot read SKILL.md: {exc}") from None
    meta, body = _front_matter(text.lstrip("\ufeff").splitlines())
    name, description = meta.get("name"), meta.get("description")
    if not isinstance(name, str) or not name:
        raise SkillError("front matter has no 'name'")
    if len(name) > MAX_NAME or not SKILL_NAME.fullmatch(name):
        raise SkillError(f"name {name!r} must be 1-{MAX_NAME} lower-case letters/digits in hyphenated words")
    if name != folder.name:
        raise SkillError(f"name {name!r} does not match its folder {folder.name!r}")
    if not isinstance(description, str) or not description.strip():
        raise SkillError("front matter has no 'description'")
    if len(description) > MAX_DESCRIPTION:
        raise SkillError(f"description is longer than {MAX_DESCRIPTION} characters")
    if not body:
        raise SkillError("SKILL.md has no instructions after the front matter")
    return Skill(name, description.strip(), body)


def _front_matter(lines: list[str]) -> tuple[dict[str, Any], str]:
    """SKILL.md's YAML front matter (a mapping) and the instructions after it."""
    if not lines or lines[0].strip() != "---":
        raise SkillError("SKILL.md must start with YAML front matter between '---' lines")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise SkillError("SKILL.md front matter has no closing '---' line")
    try:
        meta = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        raise SkillError(f"SKILL.md front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise SkillError("SKILL.md front matter must be a mapping with 'name' and 'description'")
    return meta, "\n".join(lines[end + 1 :]).strip()


def _skill_folders(root: Path, skip: tuple[str, ...] = ()) -> Iterator[Path]:
    """Candidate skill folders directly under root: real directories, not hidden ones."""
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or child.name in skip or child.is_symlink() or not child.is_dir():
            continue
        yield child


def shipped_skills(root: Path = SHIPPED_DIR) -> tuple[dict[str, Path], list[str]]:
    """The valid skill folders this product ships, and one problem line per broken one."""
    found: dict[str, Path] = {}
    problems: list[str] = []
    try:
        folders = list(_skill_folders(root, skip=(VENDOR_DIR,)))
    except OSError as exc:
        return {}, [f"{root}: {exc.strerror or exc}"]
    for folder in folders:
        try:
            read_skill(folder)
        except SkillError as exc:
            problems.append(f"{folder.name}: {exc}")
            continue
        found[folder.name] = folder
    if not found and not problems:
        problems.append(f"{root}: no skill folders")
    return found, problems


# --- sources.yaml --------------------------------------------------------------------------------


class SourcesError(ValueError):
    """The sources file cannot be used; one line per broken rule, all reported at once."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{path}: " + "\n  ".join(["invalid skill sources:", *problems]))


@dataclass(frozen=True)
class Source:
    name: str
    repo: str
    ref: str
    path: str  # "" for the repository's root
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


def sources_path(env: Mapping[str, str]) -> Path:
    """skills/sources.yaml, or CODING_AGENTS_SKILL_SOURCES (tests, trying a collection out)."""
    raw = env.get(SOURCES_ENV, "").strip()
    return Path(raw).expanduser() if raw else DEFAULT_SOURCES


def _repo_problem(repo: Any) -> str | None:
    if not isinstance(repo, str) or not repo.strip():
        return "'repo' must be a git URL"
    if repo.startswith("https://"):
        return None if len(repo) > len("https://") else "'repo' has no host"
    if repo.startswith("file:///") or (repo.startswith("/") and not repo.startswith("//")):
        return None
    return f"'repo' {repo!r} must be an https:// URL (file:// or an absolute path for a local repository)"


def _ref_problem(ref: Any) -> str | None:
    if not isinstance(ref, str) or not (COMMIT_SHA.fullmatch(ref) or RELEASE_TAG.fullmatch(ref)):
        return (
            f"unpinned ref {ref!r}: give a full 40-hex commit SHA (lower case) or a release tag such as "
            '"v1.2.3", never a branch'
        )
    return None


def _path_problem(path: Any) -> str | None:
    if not isinstance(path, str):
        return "'path' must be a folder in the repository (\"\" for its root)"
    parts = PurePosixPath(path).parts
    if path.startswith("/") or ".." in parts or "\\" in path:
        return f"'path' {path!r} must be relative to the repository, without '..'"
    return None


def _names_problem(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v and "/" not in v and not v.startswith(".") for v in value
    ):
        return f"'{key}' must be a list of skill folder names"
    return None


def validate_sources(data: Any) -> list[str]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return ["the top level must be a mapping with a 'sources' list"]
    problems = [f"top level: unknown key {k!r} (allowed: sources)" for k in sorted(set(data) - {"sources"})]
    entries = data.get("sources") or []
    if not isinstance(entries, list):
        return [*problems, "'sources' must be a list of entries"]
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        label = entry.get("name") if isinstance(entry, dict) else None
        where = f"sources[{index}]" + (f" ({label})" if isinstance(label, str) else "")
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a mapping of fields")
            continue
        problems += [f"{where}: {problem}" for problem in _source_problems(entry, seen)]
    return problems


def _source_problems(entry: dict[str, Any], seen: set[str]) -> list[str]:
    """What is wrong with one source entry; its name joins `seen` when it is a new, valid one."""
    problems = [
        f"unknown key {key!r} (allowed: {', '.join(sorted(SOURCE_KEYS))})"
        for key in sorted(set(entry) - SOURCE_KEYS)
    ]
    problems += [f"missing field {key!r}" for key in SOURCE_REQUIRED if entry.get(key) is None]
    name = entry.get("name")
    if name is not None:
        if not isinstance(name, str) or not SOURCE_NAME.fullmatch(name):
            problems.append("'name' must be 1-64 lower-case letters, digits and '-'")
        elif name in seen or name == SHIPPED:
            problems.append(f"name {name!r} is already used")
        else:
            seen.add(name)
    checks = (("repo", _repo_problem), ("ref", _ref_problem), ("path", _path_problem))
    for key, check in checks:
        if key in entry and entry[key] is not None and (problem := check(entry[key])):
            problems.append(problem)
    for key in ("include", "exclude"):
        if problem := _names_problem(key, entry.get(key)):
            problems.append(problem)
    return problems


def load_sources(path: Path) -> list[Source]:
    """Read and validate the sources file; SourcesError lists every problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SourcesError(path, [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise SourcesError(path, [f"not valid YAML: {where}{getattr(exc, 'problem', None) or exc}"]) from None
    problems = validate_sources(data)
    if problems:
        raise SourcesError(path, problems)
    return [
        Source(
            name=e["name"],
            repo=e["repo"],
            ref=e["ref"],
            path="" if e["path"] in ("", ".") else str(PurePosixPath(e["path"])),
            include=tuple(e.get("include") or ()),
            exclude=tuple(e.get("exclude") or ()),
        )
        for e in (data or {}).get("sources") or []
    ]


# --- fetching ------------------------------------------------------------------------------------


class FetchError(Exception):
    """A source could not be fetched; the message is one line for the report."""


@dataclass(frozen=True)
class Checkout:
    path: Path
    commit: str
    fetched: bool  # False: the pinned ref was already in the cache, no network used
    vendored: bool = False  # True: the staged copy shipped with the app (skills/vendor/<name>)


def _git_env(base: Mapping[str, str]) -> dict[str, str]:
    # A repository the caller happens to be in must not leak into ours; a private or missing
    # repository must fail at once instead of waiting for a password nobody will type.
    env = {
        k: v for k, v in base.items() if not k.startswith("GIT_") or k.startswith(("GIT_SSL", "GIT_PROXY"))
    }
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_ASKPASS"] = "true"
    return env


def _git(args: list[str], cwd: Path, env: Mapping[str, str], timeout: float) -> str:
    """Run git in its own process group; on timeout the whole group (git-remote-https too) dies."""
    # Hooks are off: a user's global core.hooksPath must not run on our checkouts.
    argv = ["git", "-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false", *args]
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except FileNotFoundError:
        raise FetchError("git is not installed") from None
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise FetchError(f"git {args[0]} timed out after {timeout:.0f}s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
        # git's own verdict ("fatal: unable to access …: Could not resolve host") over its advice.
        verdict = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
        detail = " | ".join(verdict[:2] or lines[-2:]) or "no output"
        raise FetchError(f"git {args[0]} failed (exit {proc.returncode}): {detail}"[:400])
    return out


def _marker(cache_root: Path, source: Source) -> Path:
    return cache_root / f"{source.name}.json"


def cached_checkout(cache_root: Path, source: Source) -> Checkout | None:
    """The cache's checkout of exactly this repo and ref, or None."""
    try:
        marker = state.read_json(_marker(cache_root, source))
    except (OSError, ValueError):
        return None
    folder = cache_root / source.name
    if (
        isinstance(marker, dict)
        and marker.get("repo") == source.repo
        and marker.get("ref") == source.ref
        and isinstance(marker.get("commit"), str)
        and (folder / ".git").is_dir()
    ):
        return Checkout(folder, marker["commit"], fetched=False)
    return None


def vendored_checkout(vendor_root: Path, source: Source) -> Checkout | None:
    """The staged copy of exactly this repo, ref and path under vendor_root (skills/vendor), or None."""
    folder = vendor_root / source.name
    try:
        marker = state.read_json(folder / VENDOR_MARKER)
    except (OSError, ValueError):
        return None
    if (
        isinstance(marker, dict)
        and marker.get("repo") == source.repo
        and marker.get("ref") == source.ref
        and marker.get("path", "") == source.path
        and isinstance(marker.get("commit"), str)
        and not folder.is_symlink()
        and (folder / source.path).is_dir()
    ):
        return Checkout(folder, marker["commit"], fetched=False, vendored=True)
    return None


def write_vendored_copy(vendor_root: Path, source: Source, commit: str, found: Mapping[str, Path]) -> Path:
    """Copy a source's skill folders to vendor_root/<name>/<path>/<skill>/ and write the marker that
    vendored_checkout accepts. Called by services.deploy while staging; vendor_root/<name> must not exist."""
    folder = vendor_root / source.name
    root = folder / source.path if source.path else folder
    root.mkdir(parents=True)
    for name, src in sorted(found.items()):
        _copy_skill(src, root / name)
    marker = {"repo": source.repo, "ref": source.ref, "commit": commit, "path": source.path}
    state.atomic_write_json(folder / VENDOR_MARKER, marker, mode=0o644)
    return folder


def fetch(
    source: Source,
    cache_root: Path,
    env: Mapping[str, str],
    log: Callable[[str], None],
    timeout: float = FETCH_TIMEOUT,
) -> Checkout:
    """The source's tree at its pinned ref: from the cache when already fetched, else one shallow fetch.

    The new checkout is built beside the cache and swapped in only when complete, so a failed or
    killed fetch leaves the previous one intact.
    """
    cached = cached_checkout(cache_root, source)
    if cached is not None:
        return cached
    state.ensure_dir(cache_root)
    for leftover in [
        *cache_root.glob(f".{source.name}.new-*"),
        *cache_root.glob(f"{WORK_PREFIX}{source.name}.old-*"),
    ]:
        shutil.rmtree(leftover, ignore_errors=True)  # from a fetch that was killed midway
    genv = _git_env(env)
    work = Path(tempfile.mkdtemp(prefix=f".{source.name}.new-", dir=cache_root))
    try:
        log(f"{source.name}: fetching {source.repo} at {source.ref}")
        _git(["init", "--quiet", str(work)], cache_root, genv, GIT_TIMEOUT)
        # By URL, no remote configured: the one commit asked for lands in FETCH_HEAD and nothing else.
        _git(["fetch", "--quiet", "--depth", "1", "--no-tags", source.repo, source.ref], work, genv, timeout)
        _git(["checkout", "--quiet", "--detach", "FETCH_HEAD"], work, genv, GIT_TIMEOUT)
        commit = _git(["rev-parse", "HEAD"], work, genv, GIT_TIMEOUT).strip()
        if COMMIT_SHA.fullmatch(source.ref) and commit != source.ref:
            raise FetchError(f"fetched commit {commit} is not the pinned {source.ref}")
        folder = cache_root / source.name
        _replace_dir(work, folder)
        state.atomic_write_json(
            _marker(cache_root, source), {"repo": source.repo, "ref": source.ref, "commit": commit}
        )
        return Checkout(folder, commit, fetched=True)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _replace_dir(new: Path, dest: Path) -> None:
    """Put new at dest; the old dest (if any) disappears only after new is in place."""
    old: Path | None = None
    if dest.exists() or dest.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{dest.name}.old-", dir=dest.parent))
        Path(dest).rename(old / dest.name)
    Path(new).rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- copying -------------------------------------------------------------------------------------


def _files(folder: Path) -> list[tuple[str, Path]]:
    """A skill's regular files (relative path, path), sorted. Symlinks and .git are left out: a link
    in an upstream repository could point anywhere on this machine."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d != ".git" and not (base / d).is_symlink())
        for name in filenames:
            path = base / name
            if not path.is_symlink() and path.is_file():
                found.append((path.relative_to(folder).as_posix(), path))
    return sorted(found)


def tree_hash(folder: Path) -> str | None:
    """Content hash of a skill folder (names, executable bits, bytes); None if it is not a real folder."""
    if folder.is_symlink() or not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for rel, path in _files(folder):
        digest.update(f"{rel}\0{int(_executable(path))}\0{path.stat().st_size}\0".encode())
        with Path(path).open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o111)


def _copy_skill(src: Path, dest: Path) -> None:
    """Copy src to dest, replacing dest only once the copy is complete (temp folder + rename)."""
    work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{dest.name}.new-", dir=dest.parent))
    try:
        target = work / dest.name
        target.mkdir()
        for rel, path in _files(src):
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)
            Path(out).chmod(0o755 if _executable(path) else 0o644)
        _replace_dir(target, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_skill(dest: Path) -> None:
    # Renamed away first so an agent starting meanwhile sees the whole skill or none of it.
    work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{dest.name}.old-", dir=dest.parent))
    Path(dest).rename(work / dest.name)
    shutil.rmtree(work, ignore_errors=True)


# --- the report ----------------------------------------------------------------------------------


@dataclass
class SourceResult:
    name: str
    repo: str
    ref: str
    commit: str = ""
    fetched: bool = False
    vendored: bool = False
    skills: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (folder, reason)
    error: str = ""


@dataclass
class TargetResult:
    path: Path
    agents: tuple[str, ...]
    installed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_own: list[str] = field(default_factory=list)  # a user's folder has the name: theirs wins
    kept_edited: list[str] = field(default_factory=list)  # installed by us, edited since: now theirs
    error: str = ""

    @property
    def present(self) -> set[str]:
        return {*self.installed, *self.updated, *self.unchanged, *self.kept_own, *self.kept_edited}


@dataclass
class SkillsReport:
    home: Path
    shipped: list[str] = field(default_factory=list)
    shipped_error: str = ""
    sources_error: str = ""
    sources: list[SourceResult] = field(default_factory=list)
    targets: list[TargetResult] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)  # agent id → title (agents.yaml)

    @property
    def shipped_ok(self) -> bool:
        """Every shipped skill is in every agent folder (or a user's own skill of that name is)."""
        return (
            not self.shipped_error
            and bool(self.targets)
            and all(not t.error and set(self.shipped) <= t.present for t in self.targets)
        )

    @property
    def failures(self) -> list[str]:
        out = [f"shipped skills: {self.shipped_error}"] if self.shipped_error else []
        out += [self.sources_error] if self.sources_error else []
        out += [f"{s.name}: {s.error}" for s in self.sources if s.error]
        out += [f"{self.display(t.path)}: {t.error}" for t in self.targets if t.error]
        return out

    def summary(self) -> list[str]:
        lines = [f"shipped: {_count(len(self.shipped), 'skill')} ({', '.join(self.shipped)})"]
        if self.shipped_error:
            lines.append(f"shipped: FAILED: {self.shipped_error}")
        if self.sources_error:
            lines.append(f"sources: FAILED: {self.sources_error}")
        for s in self.sources:
            head = f"source {s.name} @ {s.ref}"
            if s.error:
                lines.append(f"{head}: FAILED: {s.error}")
                continue
            how = "staged copy" if s.vendored else "fetched" if s.fetched else "cached"
            lines.append(f"{head} ({s.commit[:12]}, {how}): {_count(len(s.skills), 'skill')}")
            lines += [f"  skipped {folder}: {reason}" for folder, reason in s.skipped]
        for t in self.targets:
            who = ", ".join(self.titles.get(a, a) for a in t.agents)
            head = f"{self.display(t.path)} ({who})"
            if t.error:
                lines.append(f"{head}: FAILED: {t.error}")
                continue
            counts = [
                f"{len(names)} {label}"
                for label, names in (
                    ("installed", t.installed),
                    ("updated", t.updated),
                    ("unchanged", t.unchanged),
                    ("removed", t.removed),
                )
                if names
            ]
            lines.append(f"{head}: {_count(len(t.present), 'skill')}: {', '.join(counts) or 'nothing to do'}")
            if t.removed:
                lines.append(f"  removed: {', '.join(t.removed)}")
            if t.kept_own:
                lines.append(f"  kept your own: {', '.join(t.kept_own)}")
            if t.kept_edited:
                lines.append(f"  kept (edited by you, no longer updated): {', '.join(t.kept_edited)}")
        return lines

    def display(self, path: Path) -> str:
        """path as ~/… when it is under HOME (or under HOME's real path, for a symlinked home)."""
        for home in (self.home, self.home.resolve()):
            if path.is_relative_to(home):
                return "~/" + path.relative_to(home).as_posix()
        return str(path)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# --- installing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    name: str
    source: str
    ref: str
    commit: str
    folder: Path
    hash: str


def _targets(home: Path, agents: Sequence[Agent]) -> list[tuple[Path, tuple[str, ...]]]:
    """Each distinct skills folder (a symlinked one counted once) and the agents reading it (by id,
    sorted: the report reads the same whatever the order of agents.yaml)."""
    by_dir: dict[str, list[str]] = {}
    for agent in sorted(agents, key=lambda a: a.id):
        for rel in agent.skill_dirs:
            by_dir.setdefault(rel, []).append(agent.id)
    out: dict[Path, list[str]] = {}
    for rel, readers in by_dir.items():
        real = (home / rel).resolve()
        out.setdefault(real, [])
        out[real] += [a for a in readers if a not in out[real]]
    return [(path, tuple(sorted(readers))) for path, readers in out.items()]


def _read_manifest(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    try:
        data = state.read_json(path)
    except (OSError, ValueError):
        return {}
    targets = data.get("targets") if isinstance(data, dict) else None
    if not isinstance(targets, dict):
        return {}
    return {
        str(t): {str(n): dict(e) for n, e in entries.items() if isinstance(e, dict)}
        for t, entries in targets.items()
        if isinstance(entries, dict)
    }


def upstream_skills(source: Source, checkout: Checkout, result: SourceResult) -> dict[str, Path]:
    """The valid skill folders a source offers (include/exclude applied); skipped ones go to result."""
    root = checkout.path / source.path if source.path else checkout.path
    if root.is_symlink() or not root.is_dir():
        raise FetchError(f"no folder {source.path or '.'!r} at {checkout.commit[:12]}")
    found: dict[str, Path] = {}
    for folder in _skill_folders(root):
        if (source.include and folder.name not in source.include) or folder.name in source.exclude:
            continue
        if not (folder / "SKILL.md").exists():
            continue  # not a skill (docs, scripts): nothing to report
        try:
            read_skill(folder)
        except SkillError as exc:
            result.skipped.append((folder.name, str(exc)))
            continue
        found[folder.name] = folder
    missing = [n for n in source.include if n not in found and n not in dict(result.skipped)]
    result.skipped += [(n, "named in 'include' but not found") for n in missing]
    return found


def _plan(
    shipped: dict[str, Path],
    sources: list[Source],
    cache_root: Path,
    vendor_root: Path,
    env: Mapping[str, str],
    log: Callable[[str], None],
    report: SkillsReport,
) -> dict[str, Planned]:
    plan = {
        name: Planned(name, SHIPPED, "", "", folder, tree_hash(folder) or "")
        for name, folder in shipped.items()
    }
    for source in sources:
        result = SourceResult(source.name, source.repo, source.ref)
        report.sources.append(result)
        try:
            checkout = vendored_checkout(vendor_root, source) or fetch(source, cache_root, env, log)
            result.commit, result.fetched = checkout.commit, checkout.fetched
            result.vendored = checkout.vendored
            found = upstream_skills(source, checkout, result)
        except (FetchError, OSError) as exc:
            result.error = str(exc)
            log(f"{source.name}: FAILED: {exc}")
            continue
        for name, folder in found.items():
            if name in plan:
                owner = "this product's own skill" if plan[name].source == SHIPPED else plan[name].source
                result.skipped.append((name, f"name taken by {owner}"))
                continue
            plan[name] = Planned(
                name, source.name, source.ref, checkout.commit, folder, tree_hash(folder) or ""
            )
            result.skills.append(name)
    return plan


def _sync_target(
    target: Path,
    plan: dict[str, Planned],
    entries: dict[str, dict[str, str]],
    protected: set[str],
    result: TargetResult,
    log: Callable[[str], None],
    display: Callable[[Path], str],
) -> dict[str, dict[str, str]]:
    """Bring one agent skills folder in line with the plan; returns its new manifest entries."""
    target.mkdir(parents=True, exist_ok=True)
    for leftover in target.glob(f"{WORK_PREFIX}*"):  # from a refresh that was killed midway
        shutil.rmtree(leftover, ignore_errors=True)
    new_entries: dict[str, dict[str, str]] = {}
    for name, item in sorted(plan.items()):
        if (
            record := _install_planned(target / name, item, entries.get(name), result, log, display)
        ) is not None:
            new_entries[name] = record
    for name, entry in sorted(entries.items()):
        if name not in plan and _keep_unplanned(
            target / name, entry, name in protected, result, log, display
        ):
            new_entries[name] = entry
    return new_entries


def _install_planned(
    dest: Path,
    item: Planned,
    entry: dict[str, str] | None,
    result: TargetResult,
    log: Callable[[str], None],
    display: Callable[[Path], str],
) -> dict[str, str] | None:
    """Install or update one planned skill unless it is the user's; its manifest entry, if ours."""
    name = dest.name
    exists = dest.exists() or dest.is_symlink()
    record = {"source": item.source, "ref": item.ref, "commit": item.commit, "hash": item.hash}
    if exists and entry is None:
        # Byte for byte what we would install: ours from a lost manifest (state dir wiped, or a
        # second copy of the app sharing this HOME), so it is adopted. Anything else is the user's.
        if tree_hash(dest) == item.hash:
            result.unchanged.append(name)
            return record
        result.kept_own.append(name)
        return None
    if exists and entry is not None:
        current = tree_hash(dest)
        if current != entry.get("hash"):
            log(f"{display(dest)}: edited since it was installed, keeping it as yours")
            result.kept_edited.append(name)
            return None
        if current == item.hash:
            result.unchanged.append(name)
            return record
    _copy_skill(item.folder, dest)
    (result.updated if exists else result.installed).append(name)
    return record


def _keep_unplanned(
    dest: Path,
    entry: dict[str, str],
    protected: bool,
    result: TargetResult,
    log: Callable[[str], None],
    display: Callable[[Path], str],
) -> bool:
    """A skill we installed that is no longer planned: removed unless edited; True if it stays ours
    (its source failed this time, so what it installed before is kept)."""
    if protected:
        return dest.exists()
    if not (dest.exists() or dest.is_symlink()):
        return False
    if tree_hash(dest) != entry.get("hash"):
        log(f"{display(dest)}: edited since it was installed, keeping it as yours")
        result.kept_edited.append(dest.name)
        return False
    _remove_skill(dest)
    result.removed.append(dest.name)
    return False


def install_skills(
    home: Path,
    state_dir: Path,
    sources_file: Path,
    log: Callable[[str], None],
    *,
    env: Mapping[str, str] | None = None,
    shipped_dir: Path = SHIPPED_DIR,
    agents: Sequence[Agent] | None = None,
) -> SkillsReport:
    """Install the shipped skills and every upstream skill into each agent's skills folder.

    Never raises for a bad source, a failed fetch or an unwritable folder: each is reported in the
    returned SkillsReport (and logged), and everything else still installs. `agents`: whose skill
    folders to fill; those of the registry (agents.yaml, or CODING_AGENTS_REGISTRY) when not given.
    """
    env = os.environ if env is None else env
    if agents is None:
        agents = load(registry_path(env)).agents
    report = SkillsReport(home, titles={a.id: a.title for a in agents})
    skills_state = StateFiles(state_dir).skills
    # One refresh at a time (the setup step and a user's `refresh-skills` may overlap).
    waiting = "another skills refresh is running; waiting for it"
    with state.exclusive(skills_state / "lock", lambda: log(waiting)):
        shipped, problems = shipped_skills(shipped_dir)
        report.shipped = sorted(shipped)
        if problems:
            report.shipped_error = "; ".join(problems)
            log(f"shipped skills: FAILED: {report.shipped_error}")
        try:
            sources = load_sources(sources_file)
        except SourcesError as exc:
            report.sources_error = str(exc)
            log(str(exc))
            sources = []
        plan = _plan(shipped, sources, skills_state / "cache", shipped_dir / VENDOR_DIR, env, log, report)
        failed = {s.name for s in report.sources if s.error}
        manifest_path = skills_state / "installed.json"
        manifest = _read_manifest(manifest_path)
        new_manifest: dict[str, dict[str, dict[str, str]]] = {}
        for target, readers in _targets(home, agents):
            result = TargetResult(target, readers)
            report.targets.append(result)
            entries = manifest.get(str(target), {})
            # Skills whose origin could not be read this time stay as they are: a failed fetch, a
            # broken sources file or broken shipped skills must not uninstall anything.
            protected = {
                name
                for name, e in entries.items()
                if e.get("source") in failed
                or (report.sources_error and e.get("source") != SHIPPED)
                or (report.shipped_error and e.get("source") == SHIPPED)
            }
            try:
                new_manifest[str(target)] = _sync_target(
                    target, plan, entries, protected, result, log, report.display
                )
            except OSError as exc:
                result.error = f"cannot write skills: {exc}"
                log(f"{report.display(target)}: FAILED: {result.error}")
                new_manifest[str(target)] = entries
        state.atomic_write_json(manifest_path, {"version": MANIFEST_VERSION, "targets": new_manifest})
    return report


# --- entry points --------------------------------------------------------------------------------


def _check(shipped_dir: Path, sources_file: Path) -> int:
    problems: list[str] = []
    names, problems = shipped_skills(shipped_dir)
    if not problems:
        print(f"shipped skills ok: {', '.join(sorted(names))}")
    try:
        sources = load_sources(sources_file)
        print(f"{sources_file}: ok ({', '.join(f'{s.name}@{s.ref}' for s in sources) or 'no sources'})")
    except SourcesError as exc:
        problems.append(str(exc))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None, after: Callable[[Settings], object] | None = None) -> int:
    """`after(settings)` runs once the skills are installed (services.setup.refresh_skills: the
    agents' instruction files, which list them)."""
    parser = argparse.ArgumentParser(
        prog="refresh-skills",
        description="Install the agent skills shipped with this app and the pinned upstream collections "
        f"(skills/sources.yaml, or ${SOURCES_ENV}) into every agent's skills folder.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="refresh",
        choices=("refresh", "check"),
        help="refresh (default): fetch and install; check: validate skills and sources, no network",
    )
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(SHIPPED_DIR, sources_path(os.environ))
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"refresh-skills: {exc}", file=sys.stderr)
        return 2
    report = install_skills(settings.home, settings.state_dir, sources_path(os.environ), print)
    if after is not None:
        after(settings)
    print()
    for line in report.summary():
        print(line)
    if not report.shipped_ok:
        print("refresh-skills: the skills shipped with this app could not be installed", file=sys.stderr)
        return 1
    if report.failures:
        print(
            f"refresh-skills: {len(report.failures)} problem(s) above; everything else is installed",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
