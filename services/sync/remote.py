"""The workspace side of the mirror: databricks-sdk calls, error classes, retries and throttling.

Every call here is idempotent (upload with overwrite, delete that accepts "already gone", mkdirs), so
repeating one after a timeout or a kill is always safe. The SDK's own retry window is kept at its
minimum (1 s): the watcher's backoff, which honours Retry-After and shows each wait in the status,
decides how long to keep trying.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.credentials_provider import CredentialsProvider, CredentialsStrategy
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from databricks.sdk.errors.base import DatabricksError
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, ObjectType

from services.config import Settings
from services.credentials.store import owner_token
from services.databricks import describe_error
from services.sync.failures import Failure, Kind, OpFailed, Stopped

T = TypeVar("T")
# Refusals about one file that no retry can fix (a name or a size the workspace will not take).
PERMANENT_CODES = {"INVALID_PARAMETER_VALUE", "MAX_NOTEBOOK_SIZE_EXCEEDED", "MAX_FILE_SIZE_EXCEEDED"}


def workspace_client(settings: Settings, http_timeout: float) -> WorkspaceClient:
    """The owner's client with split timeouts: uploads of up to 10 MB may take a while (http timeout),
    but the SDK must not retry on its own for minutes: the watcher's backoff is in control.

    The token is read on every call (services.credentials.store), so a pasted or renewed one is used
    from the next call on, without a restart."""
    config = Config(
        host=settings.databricks_host,
        credentials_strategy=_CurrentOwnerToken(settings),
        retry_timeout_seconds=1,
        http_timeout_seconds=http_timeout,
    )
    return WorkspaceClient(config=config)


class _CurrentOwnerToken(CredentialsStrategy):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def auth_type(self) -> str:
        return "pat"

    def __call__(self, cfg: Config) -> CredentialsProvider:
        def headers() -> dict[str, str]:
            return {"Authorization": f"Bearer {owner_token(self._settings)}"}

        return headers


def root_cause(exc: BaseException) -> BaseException:
    # The SDK wraps the last error of its retry loop in TimeoutError("Timed out after ...").
    while isinstance(exc, TimeoutError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def classify(exc: BaseException) -> Failure:
    cause = root_cause(exc)
    retry_after = float(getattr(cause, "retry_after_secs", None) or 0)
    message = describe_error(cause)
    if isinstance(cause, Unauthenticated | PermissionDenied):
        return Failure(Kind.AUTH, message)
    code = getattr(cause, "error_code", None) or ""
    if code in PERMANENT_CODES or isinstance(cause, InvalidParameterValue):
        return Failure(Kind.PERMANENT, message)
    if isinstance(cause, BadRequest) and code not in ("RESOURCE_ALREADY_EXISTS", ""):
        return Failure(Kind.PERMANENT, message)
    return Failure(Kind.TRANSIENT, message, retry_after)


class Throttle:
    """One pause shared by all workers: after a 429, nobody calls before Retry-After has passed."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._until = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self) -> None:
        while True:
            with self._lock:
                left = self._until - time.monotonic()
            if left <= 0:
                return
            if self._stop.wait(left):
                raise Stopped()

    def sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise Stopped()


class Remote:
    """Workspace operations under `root` (`/Users/{owner}/projects`), each retried a few times."""

    def __init__(
        self,
        client: WorkspaceClient,
        root: str,
        stop: threading.Event,
        tries: int = 3,
        first_delay: float = 0.2,
    ) -> None:
        self.client = client
        self.root = root.rstrip("/")
        self.throttle = Throttle(stop)
        self.tries = tries
        self.first_delay = first_delay

    def path(self, repo: str, rel: str = "") -> str:
        return f"{self.root}/{repo}/{rel}" if rel else f"{self.root}/{repo}"

    def _retry(self, call: Callable[[], T]) -> T:
        delay = self.first_delay
        for attempt in range(1, self.tries + 1):
            self.throttle.wait()
            try:
                return call()
            except Exception as exc:
                failure = classify(exc)
                if failure.retry_after:
                    self.throttle.pause(failure.retry_after)
                if failure.kind is not Kind.TRANSIENT or attempt == self.tries:
                    raise OpFailed(failure) from exc
                self.throttle.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def upload(self, path: str, data: bytes) -> None:
        def call() -> None:
            try:
                self._upload(path, data)
            except NotFound:
                # The parent folder is missing (first file of a new folder, or removed by hand).
                self.client.workspace.mkdirs(path.rsplit("/", 1)[0])
                self._upload(path, data)

        self._retry(call)

    def _upload(self, path: str, data: bytes) -> None:
        # AUTO keeps .py/.sql/.scala/.R as plain files (SOURCE, the SDK's default, makes notebooks);
        # AUTO would unpack a .zip into a folder, RAW keeps it as it is.
        fmt = ImportFormat.RAW if path.lower().endswith(".zip") else ImportFormat.AUTO
        self.client.workspace.upload(path, data, format=fmt, overwrite=True)

    def delete(self, path: str, recursive: bool = False) -> None:
        def call() -> None:
            with contextlib.suppress(NotFound):  # already gone: the goal of a delete
                self.client.workspace.delete(path, recursive=recursive)

        self._retry(call)

    def rmdir(self, path: str) -> None:
        """Remove a folder if it is empty; leave it (and anything someone put there) otherwise."""

        def call() -> None:
            try:
                self.client.workspace.delete(path, recursive=False)
            except NotFound:
                pass
            except DatabricksError as exc:
                if exc.error_code != "DIRECTORY_NOT_EMPTY":
                    raise

        self._retry(call)

    def mkdirs(self, path: str) -> None:
        self._retry(lambda: self.client.workspace.mkdirs(path))

    def download(self, path: str) -> bytes | None:
        """A file's bytes; None when it does not exist."""

        def call() -> bytes | None:
            try:
                return self.client.workspace.download(path, format=ExportFormat.AUTO).read()
            except NotFound:
                return None

        return self._retry(call)

    def list_dir(self, path: str) -> list[tuple[str, bool, int]] | None:
        """(name, is_dir, size) of a folder's children; None when the folder does not exist."""

        def call() -> list[tuple[str, bool, int]] | None:
            try:
                objects = list(self.client.workspace.list(path))
            except NotFound:
                return None
            out = []
            for obj in objects:
                name = str(obj.path or "").rsplit("/", 1)[-1]
                is_dir = obj.object_type in (ObjectType.DIRECTORY, ObjectType.REPO)
                out.append((name, is_dir, int(obj.size or 0)))
            return out

        return self._retry(call)

    def walk(self, top: str, pool: Executor) -> tuple[dict[str, int], set[str]] | None:
        """Every file (relative path -> size) and folder under `top`, listing one level at a time in
        parallel; None when `top` does not exist."""
        first = self.list_dir(top)
        if first is None:
            return None
        files: dict[str, int] = {}
        dirs: set[str] = set()
        level = [("", first)]
        while level:
            subdirs: list[str] = []
            for prefix, children in level:
                for name, is_dir, size in children:
                    rel = f"{prefix}{name}"
                    if is_dir:
                        dirs.add(rel)
                        subdirs.append(rel)
                    else:
                        files[rel] = size
            listed = list(pool.map(lambda d: self.list_dir(f"{top}/{d}"), subdirs))
            level = [(f"{d}/", children or []) for d, children in zip(subdirs, listed, strict=True)]
        return files, dirs
