"""A fake Databricks workspace: real HTTP on 127.0.0.1, spoken to by the real databricks-sdk.

It answers the REST paths the app calls (shapes in shared notes, databricks-apps.md §8-9; apps and
secrets in tests/fake_apps.py; one-time job runs in tests/fake_jobs.py), records every request, and
has switches to fail (500), hang, refuse the token (401) or go down entirely.
Fault injection for flaky-network tests: a seeded fraction of workspace calls fails with 500, is
throttled (429 + Retry-After) or hangs and then drops the connection without applying anything.
Later features extend it with more paths; keep each handler small and the state in FakeWorkspace.
"""

from __future__ import annotations

import base64
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fake_api import json_body, workspace_path
from tests.fake_apps import PATTERN_ROUTES, FakeApps
from tests.fake_credentials import CREDENTIAL_ROUTES, FakeCredentials, answer_unauthenticated
from tests.fake_jobs import JOBS_ROUTES, FakeJobs
from tests.fake_mlflow import MLFLOW_PATTERN_ROUTES, MLFLOW_ROUTES, STORAGE_PREFIX, FakeMlflow, cloud_storage


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when the request arrived
    fault: str = ""  # the fault injected into it, if any


@dataclass
class User:
    email: str
    display_name: str
    id: str = "4242"

    def scim(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "userName": self.email,
            "displayName": self.display_name,
            "active": True,
            "emails": [{"value": self.email, "primary": True, "type": "work"}],
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        }


@dataclass
class FakeWorkspace:
    """State and switches; `url` is what DATABRICKS_HOST should be set to."""

    tokens: dict[str, User] = field(default_factory=dict)
    mode: str = "ok"  # ok | fail | hang | unauthorized | forbidden
    files: dict[str, bytes] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=lambda: {"/"})
    endpoints: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"name": "databricks-claude-opus-4-6", "task": "llm/v1/chat", "state": {"ready": "READY"}},
        ]
    )
    requests: list[Recorded] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)  # import format last used per path
    # Faults, drawn per call on paths matching fault_paths (seeded by `seed`, so runs repeat):
    fail_rate: float = 0.0  # 500 INTERNAL_ERROR
    throttle_rate: float = 0.0  # 429 with Retry-After: retry_after
    retry_after: int = 1
    hang_rate: float = 0.0  # wait hang_seconds (or until stop()), then drop the connection unapplied
    hang_seconds: float = 2.0
    latency: float = 0.0  # seconds added to every matching call that goes through
    fault_paths: str = r"^/api/2\.0/workspace/"
    reject_paths: str = ""  # imports to matching paths answer 400 INVALID_PARAMETER_VALUE
    forbidden_dirs: str = ""  # mkdirs of matching workspace paths answer 403 PERMISSION_DENIED
    seed: int = 0
    apps_api: FakeApps = field(default_factory=FakeApps)  # apps and secrets (tests/fake_apps.py)
    jobs: FakeJobs = field(default_factory=FakeJobs)  # one-time job runs (tests/fake_jobs.py)
    mlflow: FakeMlflow = field(default_factory=FakeMlflow)  # experiments and traces (tests/fake_mlflow.py)
    credentials: FakeCredentials = field(default_factory=FakeCredentials)  # tests/fake_credentials.py
    # (method, path regex, status, error_code, message): matching calls are refused with that error.
    refusals: list[tuple[str, str, int, str, str]] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)  # injected faults by kind
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_user(self, token: str, email: str, display_name: str) -> User:
        user = User(email, display_name, id=str(4242 + len(self.tokens)))
        self.tokens[token] = user
        return user

    def start(self) -> FakeWorkspace:
        """Listen (again, on the same port after stop()) and serve in a daemon thread."""
        self._release.clear()
        server = _Server(("127.0.0.1", self.port), _handler_for(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fake-workspace", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Go down: the port refuses connections until start() is called again."""
        self._release.set()  # let hanging requests finish
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def draw_fault(self, path: str) -> str:
        """'fail', 'throttle', 'hang' or '' for one call to `path`."""
        if not re.search(self.fault_paths, path):
            return ""
        with self.lock:
            if self._rng is None:
                self._rng = random.Random(self.seed)
            roll = self._rng.random()
            for kind, rate in (
                ("fail", self.fail_rate),
                ("throttle", self.throttle_rate),
                ("hang", self.hang_rate),
            ):
                if roll < rate:
                    self.faults[kind] += 1
                    return kind
                roll -= rate
        return ""

    def calls(self, path_pattern: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if re.search(path_pattern, r.path)]


Route = Callable[["_Handler", FakeWorkspace, Recorded], tuple[int, Any]]


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"error_code": code, "message": message}


def _me(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    return 200, h.user.scim() if h.user else {}


def _endpoints(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    return 200, {"endpoints": ws.endpoints}


def _json(req: Recorded) -> dict[str, Any]:
    return json_body(req.body)


_norm = workspace_path


def _mkdirs(ws: FakeWorkspace, path: str) -> None:
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        ws.dirs.add("/" + "/".join(parts[:i]))


def _ws_mkdirs(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    path = _norm(str(_json(req).get("path", "")))
    if ws.forbidden_dirs and re.search(ws.forbidden_dirs, path):
        return _error(403, "PERMISSION_DENIED", f"User does not have permission to create {path}.")
    with ws.lock:
        if path in ws.files:
            return _error(400, "RESOURCE_ALREADY_EXISTS", f"{path} exists and is a file")
        _mkdirs(ws, path)
    return 200, {}


def _ws_import(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    content_type = req.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        fields = _multipart(req.body, content_type)
        path = _norm(fields.get("path", b"").decode())
        content = fields.get("content", b"")
        overwrite = fields.get("overwrite", b"false").decode().lower() == "true"
        fmt = fields.get("format", b"").decode()
    else:
        body = _json(req)
        path = _norm(str(body.get("path", "")))
        content = base64.b64decode(body.get("content", "") or "")
        overwrite = bool(body.get("overwrite", False))
        fmt = str(body.get("format", ""))
    parent = path.rsplit("/", 1)[0] or "/"
    if ws.reject_paths and re.search(ws.reject_paths, path):
        return _error(400, "INVALID_PARAMETER_VALUE", f"{path} is not a valid name")
    with ws.lock:
        if parent not in ws.dirs:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"The parent folder ({parent}) does not exist.")
        if path in ws.files and not overwrite:
            return _error(400, "RESOURCE_ALREADY_EXISTS", f"{path} already exists.")
        ws.files[path] = content
        ws.formats[path] = fmt
    return 200, {}


def _ws_status(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    path = _norm(req.query.get("path", [""])[0])
    with ws.lock:
        if path in ws.files:
            return 200, {"object_type": "FILE", "path": path, "size": len(ws.files[path])}
        if path in ws.dirs:
            return 200, {"object_type": "DIRECTORY", "path": path}
    return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")


def _ws_list(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    path = _norm(req.query.get("path", [""])[0])
    with ws.lock:
        if path not in ws.dirs:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")
        prefix = path.rstrip("/") + "/"
        objects = [
            {"object_type": "DIRECTORY", "path": d}
            for d in sorted(ws.dirs)
            if d.startswith(prefix) and "/" not in d[len(prefix) :]
        ] + [
            {"object_type": "FILE", "path": f, "size": len(data)}
            for f, data in sorted(ws.files.items())
            if f.startswith(prefix) and "/" not in f[len(prefix) :]
        ]
    return 200, {"objects": objects} if objects else {}


def _ws_delete(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    body = _json(req)
    path = _norm(str(body.get("path", "")))
    with ws.lock:
        if path in ws.files:
            del ws.files[path]
            return 200, {}
        if path not in ws.dirs:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")
        prefix = path.rstrip("/") + "/"
        children = [p for p in [*ws.files, *ws.dirs] if p.startswith(prefix)]
        if children and not body.get("recursive"):
            return _error(400, "DIRECTORY_NOT_EMPTY", f"Folder ({path}) is not empty.")
        for f in [f for f in ws.files if f.startswith(prefix)]:
            del ws.files[f]
        ws.dirs -= {d for d in ws.dirs if d.startswith(prefix) or d == path}
    return 200, {}


def _ws_export(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    path = _norm(req.query.get("path", [""])[0])
    with ws.lock:
        if path not in ws.files:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")
        data = ws.files[path]
    if req.query.get("direct_download", ["false"])[0] == "true":
        return 200, data
    return 200, {"content": base64.b64encode(data).decode()}


# A fault that answers nothing: the connection is dropped.
NO_ANSWER: tuple[Any, ...] = ("no answer",)

ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api/2.0/preview/scim/v2/Me"): _me,
    ("GET", "/api/2.0/serving-endpoints"): _endpoints,
    ("POST", "/api/2.0/workspace/mkdirs"): _ws_mkdirs,
    ("POST", "/api/2.0/workspace/import"): _ws_import,
    ("GET", "/api/2.0/workspace/get-status"): _ws_status,
    ("GET", "/api/2.0/workspace/list"): _ws_list,
    ("POST", "/api/2.0/workspace/delete"): _ws_delete,
    ("GET", "/api/2.0/workspace/export"): _ws_export,
    **JOBS_ROUTES,
    **MLFLOW_ROUTES,
}


def _multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    boundary = content_type.split("boundary=", 1)[1].strip().strip('"').encode()
    fields: dict[str, bytes] = {}
    for part in body.split(b"--" + boundary):
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        match = re.search(rb'name="([^"]+)"', head)
        if match:
            fields[match.group(1).decode()] = value.removesuffix(b"\r\n")
    return fields


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (killed mid-request, or timed out on a hang) is not a fake bug.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    workspace: FakeWorkspace
    user: User | None = None
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, each reply waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are recorded instead of printed

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        req = Recorded(
            method,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        with self.workspace.lock:
            self.workspace.requests.append(req)
        if parts.path.startswith(STORAGE_PREFIX):
            self._reply(*cloud_storage(self.workspace, method, parts.path, req.body))
            return
        refused = self._refusal(req, method, parts.path)
        if refused is NO_ANSWER:
            self.close_connection = True  # no answer at all: the client cannot tell what happened
        elif refused is not None:
            self._reply(*refused)
        else:
            self._reply(*self._route(req, method, parts.path))

    def _refusal(self, req: Recorded, method: str, path: str) -> tuple[Any, ...] | None:
        """The answer of a workspace that is down, refuses this caller, or has a fault injected."""
        ws = self.workspace
        unauthenticated = answer_unauthenticated(self, ws, req)
        if unauthenticated is not None:
            return unauthenticated
        if ws.mode == "hang":
            ws._release.wait(60)
            return _error(503, "TEMPORARILY_UNAVAILABLE", "released")
        if ws.mode == "fail":
            return _error(500, "INTERNAL_ERROR", "the fake workspace is failing on purpose")
        auth = req.headers.get("authorization", "")
        bearer = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        self.user = ws.tokens.get(bearer) if bearer and ws.credentials.valid(bearer) else None
        if ws.mode == "unauthorized" or self.user is None:
            return _error(401, "UNAUTHENTICATED", "Invalid access token.")
        if ws.mode == "forbidden":
            return _error(403, "PERMISSION_DENIED", "This API is disabled for the user.")
        return self._injected(req, method, path)

    def _injected(self, req: Recorded, method: str, path: str) -> tuple[Any, ...] | None:
        ws = self.workspace
        fault = req.fault = ws.draw_fault(path)
        if fault == "hang":
            ws._release.wait(ws.hang_seconds)
            return NO_ANSWER
        if fault == "fail":
            return _error(500, "INTERNAL_ERROR", "injected failure")
        if fault == "throttle":
            return (
                *_error(429, "REQUEST_LIMIT_EXCEEDED", "injected throttling"),
                {"Retry-After": str(ws.retry_after)},
            )
        if ws.latency and re.search(ws.fault_paths, path):
            time.sleep(ws.latency)
        for verb, pattern, status, code, message in ws.refusals:
            if verb == method and re.search(pattern, path):
                return _error(status, code, message)
        return None

    def _route(self, req: Recorded, method: str, path: str) -> tuple[Any, ...]:
        ws = self.workspace
        route = ROUTES.get((method, path))
        if route is not None:
            return tuple(route(self, ws, req))
        for verb, path_re, pattern_route in [*PATTERN_ROUTES, *CREDENTIAL_ROUTES, *MLFLOW_PATTERN_ROUTES]:
            if verb == method and (match := path_re.fullmatch(path)):
                return tuple(pattern_route(self, ws, req, match))
        return _error(404, "RESOURCE_DOES_NOT_EXIST", f"No API found for {path}")

    def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header(
            "Content-Type", "application/octet-stream" if isinstance(payload, bytes) else "application/json"
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")


def _handler_for(ws: FakeWorkspace) -> type[_Handler]:
    return type("FakeWorkspaceHandler", (_Handler,), {"workspace": ws})


def wait_for_requests(ws: FakeWorkspace, pattern: str, count: int = 1, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(ws.calls(pattern)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fake workspace saw {len(ws.calls(pattern))} of {count} calls to {pattern}")
        time.sleep(0.02)
