"""Git plumbing for the sync watcher: HEAD, trees, blobs, bundles. Never touches the index or worktree
of a repository it syncs (read-only object access), so it cannot race the user's own git commands."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

# Variables a hook or a parent git process may leave behind: they would point us at the wrong repo.
_REPO_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
REGULAR_MODES = ("100644", "100755")
GIT_TIMEOUT = 300  # bundle/clone of a big repo; plumbing calls take milliseconds


class GitError(Exception):
    """A git command failed; the message holds its stderr."""


def git_env(home: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _REPO_VARS}
    env.update(
        HOME=str(home),
        LC_ALL="C",
        GIT_TERMINAL_PROMPT="0",
        # We only read objects: never take index.lock behind the user's back (`git status` would).
        GIT_OPTIONAL_LOCKS="0",
    )
    return env


@dataclass(frozen=True)
class Entry:
    """One tree entry: mode (100644, 100755, 120000 symlink, 160000 submodule), object id, size."""

    mode: str
    sha: str
    size: int  # -1 for submodules (no blob)

    @property
    def regular(self) -> bool:
        return self.mode in REGULAR_MODES


def decode_path(raw: bytes) -> str:
    # Non-UTF-8 names survive as surrogates so they can be reported; the workspace cannot hold them.
    return raw.decode("utf-8", errors="surrogateescape")


def is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parents(path: str) -> Iterator[str]:
    """'a/b/c.txt' -> 'a/b', 'a' (never the empty root)."""
    parts = path.split("/")[:-1]
    for i in range(len(parts), 0, -1):
        yield "/".join(parts[:i])


def leaf_dirs(dirs: set[str]) -> list[str]:
    """Directories that are not a parent of another one: mkdirs on these creates all of `dirs`."""
    inner = {p for d in dirs for p in parents(d + "/x") if p != d}
    return sorted(dirs - inner)


class Git:
    """Runs git in one repository with a clean, non-interactive environment."""

    def __init__(self, repo: Path, env: Mapping[str, str]) -> None:
        self.repo = repo
        self.env = dict(env)

    def run(self, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=self.repo,
                env=self.env,
                input=input,
                capture_output=True,
                timeout=GIT_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitError(f"git {args[0]}: {exc}") from exc
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise GitError(f"git {args[0]} failed: {err[-1] if err else f'exit {proc.returncode}'}")
        return proc.stdout

    def rc(self, *args: str) -> int:
        """Exit status only (for questions git answers with it)."""
        try:
            return subprocess.run(
                ["git", *args],
                cwd=self.repo,
                env=self.env,
                capture_output=True,
                timeout=GIT_TIMEOUT,
                check=False,
            ).returncode
        except (OSError, subprocess.TimeoutExpired):
            return -1

    def head(self) -> str | None:
        """HEAD's commit (detached or not); None in a repository without commits."""
        out = self.run("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False).strip()
        return out.decode() if out else None

    def has_commit(self, sha: str) -> bool:
        return self.rc("cat-file", "-e", f"{sha}^{{commit}}") == 0

    def count(self, since: str | None, until: str) -> int:
        """Commits in `until` not in `since` (all of them without `since`)."""
        spec = [until] if since is None else [until, f"^{since}"]
        try:
            return int(self.run("rev-list", "--count", *spec).strip() or 0)
        except (GitError, ValueError):
            return 0

    def tree(self, commit: str, sizes: bool = True) -> dict[str, Entry]:
        """Every entry of the commit's tree, recursively; sizes cost a little more, so are optional."""
        args = ["ls-tree", "-r", "-z", "--full-tree"] + (["-l"] if sizes else []) + [commit]
        entries: dict[str, Entry] = {}
        for record in self.run(*args).split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            fields = meta.split()
            size = -1
            if sizes and len(fields) >= 4 and fields[3] != b"-":
                size = int(fields[3])
            entries[decode_path(raw_path)] = Entry(fields[0].decode(), fields[2].decode(), size)
        return entries

    def symbolic_head(self) -> str | None:
        out = self.run("symbolic-ref", "-q", "HEAD", check=False).strip()
        return out.decode() if out else None

    def refs_digest(self) -> str:
        """Changes whenever any ref or HEAD moves: a bundle of the same digest is the same bundle."""
        return hashlib.sha256(self.run("show-ref", "--head", check=False)).hexdigest()

    def remotes(self) -> dict[str, str]:
        out = self.run("config", "--get-regexp", r"^remote\..*\.url$", check=False).decode(errors="replace")
        found: dict[str, str] = {}
        for line in out.splitlines():
            key, _, url = line.partition(" ")
            found[key[len("remote.") : -len(".url")]] = strip_credentials(url)
        return found

    def bundle(self, out: Path) -> bool:
        """A bundle of every ref (and HEAD) in `out`; False when there is nothing to bundle."""
        if not self.run("for-each-ref", "--count=1").strip():
            return False
        self.run("bundle", "create", "-q", str(out), "--all")
        return True

    def blobs(self) -> BlobReader:
        return BlobReader(self)


def strip_credentials(url: str) -> str:
    """`https://user:token@host/x` -> `https://host/x`: remote URLs may carry tokens."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"


class BlobReader:
    """Blob contents through one long-lived `git cat-file --batch` (a process per file is ~2 ms)."""

    def __init__(self, git: Git) -> None:
        self._proc = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=git.repo,
            env=git.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def read(self, sha: str) -> bytes:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(sha.encode() + b"\n")
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().split()
        if len(header) != 3:
            raise GitError(f"git cat-file: object {sha} is missing")
        size = int(header[2])
        data = self._proc.stdout.read(size)
        self._proc.stdout.read(1)  # the newline after every object
        return data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def find_repos(projects: Path) -> dict[str, Path]:
    """Depth-1 folders of `projects` that are git repositories (a `.git` folder or gitfile)."""
    found: dict[str, Path] = {}
    try:
        entries = list(os.scandir(projects))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        if entry.name.startswith(".restoring-") or not entry.is_dir(follow_symlinks=True):
            continue
        if os.path.lexists(Path(entry.path) / ".git"):
            found[entry.name] = Path(entry.path)
    return found
