"""Build the deploy set in a local folder: exactly the files the app needs on Databricks Apps.

- the files git tracks (working-tree content), minus .git, node_modules, .venv and the state dir;
- app.yaml: the project's own, else rendered from app.yaml.template;
- requirements.txt from uv.lock (hashes included): the Apps runtime pip-installs it before the command;
- web/vendor/<path>: the node_modules files the page loads (services.deploy.web_assets);
- skills/vendor/<source>/: each skills/sources.yaml collection fetched here (services.skills);
- VERSION: `git describe` of what is deployed (services.version), as the deploy set has no .git;
- .deploy-manifest.json: the sha256 of every file, which the upload compares with the remote copy.

Needs no workspace credentials; the only network use is fetching the skill sources.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from services import skills, state, version
from services.deploy.progress import DeployError
from services.deploy.web_assets import AssetError, page_assets

STEP = "stage"
MANIFEST = ".deploy-manifest.json"
MANIFEST_VERSION = 1
# Databricks Apps rejects a deploy holding a bigger file: "File is larger than 10485760 bytes".
MAX_FILE_BYTES = 10 * 1024 * 1024
EXCLUDED_PARTS = frozenset({".git", "node_modules", ".venv", ".coding-agents", "__pycache__"})
UV_TIMEOUT = 120.0
GIT_TIMEOUT = 60.0


@dataclass
class StageOptions:
    project: Path
    dest: Path
    skill_sources: Path  # the sources file to vendor; staged as skills/sources.yaml
    skill_cache: Path  # git checkouts of the sources, kept between runs
    skip_failed_skills: bool = False
    no_token: bool = False  # app.yaml without DATABRICKS_TOKEN (scripts/deploy --no-token)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


@dataclass
class Staged:
    root: Path
    files: dict[str, str]  # relative posix path -> sha256 (the manifest, itself not included)

    @property
    def total_bytes(self) -> int:
        return sum((self.root / rel).stat().st_size for rel in self.files)


def default_skill_cache(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME", "").strip() or str(Path(env.get("HOME", "~")).expanduser() / ".cache")
    return Path(base) / "coding-agents" / "deploy-skills"


def _run(argv: list[str], cwd: Path, what: str, timeout: float) -> bytes:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise DeployError(STEP, f"{what}: {argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise DeployError(STEP, f"{what}: {argv[0]} did not finish within {timeout:.0f}s") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise DeployError(
            STEP, f"{what} failed (exit {proc.returncode}): {' | '.join(detail) or 'no output'}"
        )
    return proc.stdout


def tracked_files(project: Path) -> list[str]:
    if not (project / ".git").exists():
        raise DeployError(
            STEP,
            f"{project} is not a git checkout: the deploy set is the files git tracks",
            "deploy from a clone of the repository (git clone ...), not from an unpacked archive",
        )
    out = _run(["git", "ls-files", "-z", "--cached"], project, "listing the tracked files", GIT_TIMEOUT)
    return sorted({p for p in out.decode().split("\0") if p})


def untracked_files(project: Path) -> list[str]:
    """Files git neither tracks nor ignores: left out of the deploy, but worth a warning."""
    out = _run(
        ["git", "ls-files", "-z", "--others", "--exclude-standard"],
        project,
        "listing untracked files",
        GIT_TIMEOUT,
    )
    return sorted(p for p in out.decode().split("\0") if p and p != "app.yaml")


def _excluded(rel: str, state_rel: str | None) -> bool:
    parts = PurePosixPath(rel).parts
    if EXCLUDED_PARTS.intersection(parts):
        return True
    return state_rel is not None and (rel == state_rel or rel.startswith(state_rel + "/"))


def _state_rel(project: Path, env: Mapping[str, str]) -> str | None:
    raw = env.get("CODING_AGENTS_STATE_DIR", "").strip()
    if not raw:
        return None
    state = Path(raw).expanduser().resolve()
    return (
        state.relative_to(project.resolve()).as_posix() if state.is_relative_to(project.resolve()) else None
    )


def _prepare_dest(dest: Path, project: Path) -> None:
    dest_abs, project_abs = dest.resolve(), project.resolve()
    if dest_abs == project_abs or project_abs.is_relative_to(dest_abs):
        raise DeployError(STEP, f"cannot stage into {dest}: it holds the project itself")
    if dest.exists():
        if not dest.is_dir():
            raise DeployError(STEP, f"cannot stage into {dest}: it is not a folder")
        # Only an empty folder or an earlier staging (recognised by its manifest) is replaced.
        if any(dest.iterdir()) and not (dest / MANIFEST).is_file():
            raise DeployError(
                STEP, f"cannot stage into {dest}: it is not empty", "give an empty or new folder"
            )
        shutil.rmtree(dest)
    dest.mkdir(parents=True)


def _copy_tracked(project: Path, dest: Path, rels: list[str], env: Mapping[str, str]) -> int:
    state_rel = _state_rel(project, env)
    copied = 0
    for rel in rels:
        if _excluded(rel, state_rel):
            continue
        src = project / rel
        if src.is_symlink():
            target = src.resolve()
            if not target.is_relative_to(project.resolve()) or not target.is_file():
                raise DeployError(
                    STEP, f"{rel} is a symlink to {Path(src).readlink()}, which is not a project file"
                )
        if not src.is_file():
            continue  # tracked but deleted in the working tree: not part of this deploy
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)  # follows a symlink: the workspace has none
        Path(out).chmod(0o755 if os.access(src, os.X_OK) else 0o644)
        copied += 1
    return copied


def _app_yaml(project: Path, dest: Path, no_token: bool = False) -> str:
    own = project / "app.yaml"
    if own.is_file():
        if no_token and TOKEN_ENTRY.search(own.read_text()):
            raise DeployError(
                STEP,
                "your app.yaml sets DATABRICKS_TOKEN, which --no-token leaves without a secret",
                "remove its DATABRICKS_TOKEN entry, or deploy without --no-token",
            )
        shutil.copyfile(own, dest / "app.yaml")
        return "app.yaml (the project's own)"
    template = project / "app.yaml.template"
    if not template.is_file():
        raise DeployError(STEP, "neither app.yaml nor app.yaml.template is in the project")
    lines = template.read_text().splitlines(keepends=True)
    # The template's leading comment tells people to copy it; the copy says where it came from instead.
    header = "# Rendered by scripts/deploy from app.yaml.template; put an app.yaml beside it to override.\n"
    body = lines[_header_end(lines) :]
    if no_token:
        body = without_token(body)
    (dest / "app.yaml").write_text(header + "".join(body))
    return "app.yaml (rendered from app.yaml.template" + (", without DATABRICKS_TOKEN)" if no_token else ")")


TOKEN_ENTRY = re.compile(r"^\s*-\s*name:\s*DATABRICKS_TOKEN\s*$", re.MULTILINE)
NO_TOKEN_NOTE = (
    "  # No DATABRICKS_TOKEN (scripts/deploy --no-token): the owner is the app's creator, who connects\n"
    '  # the workspace from the app\'s page (README, "Connect your workspace").\n'
)


def without_token(lines: list[str]) -> list[str]:
    """The env list without the DATABRICKS_TOKEN item and the comment right above it."""
    out: list[str] = []
    inside = False
    for line in lines:
        if TOKEN_ENTRY.match(line):
            while out and out[-1].lstrip().startswith("#"):
                out.pop()
            out.append(NO_TOKEN_NOTE)
            inside = True
            continue
        if inside and re.match(r"\s{4,}\S", line):
            continue  # the item's own keys (valueFrom)
        inside = False
        out.append(line)
    return out


def _header_end(lines: list[str]) -> int:
    """The number of leading comment lines (the template's own instructions, not for the copy)."""
    for index, line in enumerate(lines):
        if not line.startswith("#"):
            return index
    return len(lines)


def _uv(project: Path, env: Mapping[str, str]) -> str:
    found = shutil.which("uv", path=env.get("PATH"))
    if found:
        return found
    local = project / ".tools" / "bin" / "uv"  # where scripts/lib/env.sh installs it
    if local.is_file():
        return str(local)
    raise DeployError(STEP, "uv is not installed", "run scripts/deploy (it installs uv), or pip install uv")


def _requirements(project: Path, dest: Path, env: Mapping[str, str]) -> int:
    # cwd, not --project: the command line is echoed into the file's header, and must not name this machine.
    argv = [_uv(project, env), "export", "--frozen", "--no-dev", "--no-emit-project", "--quiet"]
    out = _run(argv, project, "exporting requirements.txt from uv.lock", UV_TIMEOUT)
    (dest / "requirements.txt").write_bytes(out)
    return sum(1 for line in out.decode().splitlines() if line and not line[0].isspace() and "==" in line)


def _web_vendor(project: Path, dest: Path) -> int:
    web = project / "web"
    try:
        assets = page_assets(web)
    except AssetError as exc:
        raise DeployError(STEP, str(exc)) from None
    for rel in assets:
        out = dest / "web" / "vendor" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(web / "node_modules" / rel, out)
    return len(assets)


def _skills_vendor(opts: StageOptions, log: Callable[[str], None], warn: Callable[[str], None]) -> None:
    try:
        sources = skills.load_sources(opts.skill_sources)
    except skills.SourcesError as exc:
        raise DeployError(STEP, str(exc)) from None
    staged_sources = opts.dest / "skills" / "sources.yaml"
    staged_sources.parent.mkdir(parents=True, exist_ok=True)
    # The app reads the staged sources.yaml: it must name exactly the copies staged beside it.
    shutil.copyfile(opts.skill_sources, staged_sources)
    vendor_root = opts.dest / "skills" / skills.VENDOR_DIR
    for source in sources:
        result = skills.SourceResult(source.name, source.repo, source.ref)
        try:
            checkout = skills.fetch(source, opts.skill_cache, opts.env, lambda line: None)
            found = skills.upstream_skills(source, checkout, result)
        except (skills.FetchError, OSError) as exc:
            message = f"skill source {source.name} ({source.repo} at {source.ref}): {exc}"
            if not opts.skip_failed_skills:
                raise DeployError(
                    STEP,
                    message,
                    "fix the source in skills/sources.yaml, or pass --skip-skills to leave "
                    "it out (the app then fetches it itself when it starts)",
                ) from None
            warn(f"{message}; left out (--skip-skills)")
            continue
        skills.write_vendored_copy(vendor_root, source, checkout.commit, found)
        how = "fetched" if checkout.fetched else "cached"
        at = f"{source.ref} ({checkout.commit[:12]}, {how})"
        log(f"skills/vendor/{source.name}: {len(found)} skills at {at}")
        for folder, reason in result.skipped:
            warn(f"skills/vendor/{source.name}: skipped {folder}: {reason}")


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _finish(dest: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    too_big: list[str] = []
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        rel = path.relative_to(dest).as_posix()
        if rel == MANIFEST:
            continue
        if path.stat().st_size > MAX_FILE_BYTES:
            too_big.append(f"{rel} ({path.stat().st_size} bytes)")
        files[rel] = _hash(path)
    if too_big:
        raise DeployError(
            STEP,
            f"Databricks Apps rejects files over {MAX_FILE_BYTES} bytes: {', '.join(too_big)}",
            "untrack the file (git rm --cached) or shrink it",
        )
    state.atomic_write_json(dest / MANIFEST, {"version": MANIFEST_VERSION, "files": files}, mode=0o644)
    return files


def stage(opts: StageOptions, log: Callable[[str], None], warn: Callable[[str], None]) -> Staged:
    """Fill opts.dest (new, empty, or an earlier staging) with the deploy set; DeployError on failure."""
    project = opts.project
    rels = tracked_files(project)
    _prepare_dest(opts.dest, project)
    log(f"{_copy_tracked(project, opts.dest, rels, opts.env)} tracked files")
    if untracked := untracked_files(project):
        shown = ", ".join(untracked[:5]) + (f" and {len(untracked) - 5} more" if len(untracked) > 5 else "")
        warn(f"not deployed, because git does not track them (git add to include): {shown}")
    log(_app_yaml(project, opts.dest, opts.no_token))
    written = version.describe(project)
    (opts.dest / version.VERSION_FILE).write_text(written + "\n")
    log(f"VERSION: {written}")
    log(f"requirements.txt: {_requirements(project, opts.dest, opts.env)} pinned packages from uv.lock")
    log(f"web/vendor: {_web_vendor(project, opts.dest)} files the page loads from node_modules")
    _skills_vendor(opts, log, warn)
    staged = Staged(opts.dest, _finish(opts.dest))
    log(f"{len(staged.files)} files, {staged.total_bytes / 1e6:.1f} MB in {opts.dest}")
    return staged
