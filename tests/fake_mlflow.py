"""The MLflow tracking API of the fake workspace (tests/fake_workspace.py serves it): experiments by
name and id, and traces as the real `mlflow` package logs them to a Databricks tracking URI.

Shapes follow what mlflow-skinny 3.12.0 sends and reads (mlflow/protos/service.proto, the v3 trace
routes of mlflow/store/tracking/rest_store.py). Every trace call is recorded in FakeMlflow, so a test
sees which experiment got which trace and the spans' payload. An experiment lives only in memory.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fake_api import json_body, workspace_path

if TYPE_CHECKING:
    from tests.fake_workspace import FakeWorkspace, Recorded, _Handler


@dataclass
class FakeMlflow:
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id
    traces: dict[str, dict[str, Any]] = field(default_factory=dict)  # trace_id → trace_info
    spans: dict[str, bytes] = field(default_factory=dict)  # trace_id → uploaded trace data
    next_id: int = 3_141_592_653
    lock: threading.Lock = field(default_factory=threading.Lock)

    def by_name(self, name: str) -> dict[str, Any] | None:
        wanted = workspace_path(name)
        return next((e for e in self.experiments.values() if workspace_path(e["name"]) == wanted), None)

    def traces_in(self, experiment_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [t for t in self.traces.values() if _experiment_of(t) == experiment_id]


def _experiment_of(trace_info: dict[str, Any]) -> str:
    location = trace_info.get("trace_location") or {}
    return str((location.get("mlflow_experiment") or {}).get("experiment_id", ""))


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"error_code": code, "message": message}


def _get_by_name(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    name = req.query.get("experiment_name", [""])[0]
    with ws.mlflow.lock:
        experiment = ws.mlflow.by_name(name)
    if experiment is None:
        return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Node named '{name}' does not exist.")
    return 200, {"experiment": experiment}


def _get(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    experiment_id = req.query.get("experiment_id", [""])[0]
    with ws.mlflow.lock:
        experiment = ws.mlflow.experiments.get(experiment_id)
    if experiment is None:
        return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Node ID {experiment_id} does not exist.")
    return 200, {"experiment": experiment}


def _create(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    name = str(json_body(req.body).get("name", ""))
    if not name.startswith("/"):
        return _error(
            400, "INVALID_PARAMETER_VALUE", "Experiment name must be an absolute path. (wording assumed)"
        )
    parent = workspace_path(name).rsplit("/", 1)[0] or "/"
    owner = h.user.email if h.user else ""
    if parent.startswith("/Users/") and not parent.startswith(f"/Users/{owner}"):
        return _error(403, "PERMISSION_DENIED", f"User {owner} does not have Manage permissions on {parent}.")
    with ws.mlflow.lock:
        if ws.mlflow.by_name(name) is not None:
            return _error(400, "RESOURCE_ALREADY_EXISTS", f"Node named '{name}' already exists")
        experiment_id = str(ws.mlflow.next_id)
        ws.mlflow.next_id += 1
        ws.mlflow.experiments[experiment_id] = {
            "experiment_id": experiment_id,
            "name": name,
            "lifecycle_stage": "active",
            "artifact_location": f"dbfs:/databricks/mlflow-tracking/{experiment_id}",
        }
    return 200, {"experiment_id": experiment_id}


def _start_trace(h: _Handler, ws: FakeWorkspace, req: Recorded) -> tuple[int, Any]:
    """StartTraceV3 (called when a trace ends): the info is kept; spans come by the upload below."""
    info = dict((json_body(req.body).get("trace") or {}).get("trace_info") or {})
    trace_id = str(info.get("trace_id", ""))
    experiment_id = _experiment_of(info)
    with ws.mlflow.lock:
        if experiment_id not in ws.mlflow.experiments:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Node ID {experiment_id} does not exist.")
        if not trace_id.startswith("tr-"):
            return _error(400, "INVALID_PARAMETER_VALUE", f"Invalid trace id {trace_id!r} (wording assumed)")
        tags = dict(info.get("tags") or {})
        # The trace id takes the run's place (mlflow's DatabricksRunArtifactRepository skips "tr-" ids).
        tags["mlflow.artifactLocation"] = (
            f"dbfs:/databricks/mlflow-tracking/{experiment_id}/{trace_id}/artifacts"
        )
        info["tags"] = tags
        ws.mlflow.traces[trace_id] = info
    return 200, {"trace": {"trace_info": info}}


def _get_trace_info(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    with ws.mlflow.lock:
        info = ws.mlflow.traces.get(match.group(1))
    if info is None:
        return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Trace with ID {match.group(1)} is not found.")
    return 200, {"trace": {"trace_info": info}}


def _data_credentials(h: _Handler, ws: FakeWorkspace, req: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    """A presigned URL (the fake's own storage path), as the workspace hands out for cloud storage."""
    trace_id = match.group(1)
    with ws.mlflow.lock:
        if trace_id not in ws.mlflow.traces:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Trace with ID {trace_id} is not found.")
    signed = f"{ws.url}{STORAGE_PREFIX}{trace_id}/traces.json?signature=fake"
    return 200, {"credential_info": {"type": "AWS_PRESIGNED_URL", "signed_uri": signed, "headers": []}}


STORAGE_PREFIX = "/fake-cloud-storage/"


def cloud_storage(ws: FakeWorkspace, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """A PUT or GET on a presigned URL: no Databricks token (the signature is the credential)."""
    trace_id = path.removeprefix(STORAGE_PREFIX).split("/", 1)[0]
    with ws.mlflow.lock:
        if trace_id not in ws.mlflow.traces:
            return 403, b"no such object"
        if method == "PUT":
            ws.mlflow.spans[trace_id] = body
            return 200, b""
        stored = ws.mlflow.spans.get(trace_id)
    return (200, stored) if stored is not None else (404, b"no such object")


def uploaded_spans(ws: FakeWorkspace, trace_id: str) -> list[dict[str, Any]]:
    with ws.mlflow.lock:
        data = ws.mlflow.spans.get(trace_id)
    return list(json.loads(data).get("spans", [])) if data else []


MLFLOW_PATTERN_ROUTES = [
    ("GET", re.compile(r"/api/3\.0/mlflow/traces/(tr-[0-9a-f]+)"), _get_trace_info),
    (
        "GET",
        re.compile(r"/api/2\.0/mlflow/traces/(tr-[0-9a-f]+)/credentials-for-data-(?:upload|download)"),
        _data_credentials,
    ),
]

MLFLOW_ROUTES = {
    ("POST", "/api/3.0/mlflow/traces"): _start_trace,
    ("GET", "/api/2.0/mlflow/experiments/get-by-name"): _get_by_name,
    ("GET", "/api/2.0/mlflow/experiments/get"): _get,
    ("POST", "/api/2.0/mlflow/experiments/create"): _create,
}
