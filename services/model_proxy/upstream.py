"""Where each API family goes upstream: the AI Gateway while it answers, else the workspace's
serving endpoints; and the credential added to every request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from services.config import Settings

log = logging.getLogger("model_proxy")

PROBE_TIMEOUT = 2.0


# Databricks' coding-agent gateway on the workspace host (Unity AI Gateway): each agent's API under
# /ai-gateway (shared/notes/agents.md, "Databricks' own coding-agent gateway"). Absent, it answers 404.
WORKSPACE_GATEWAY_PATH = "/ai-gateway"
GATEWAY_PROBE_PATH = "/anthropic/v1/messages"
GATEWAY_MODELS_PATH = "/anthropic/v1/models"


@dataclass(frozen=True)
class Target:
    url: str
    via: str  # "gateway" or "serving"


def gateway_url(gateway: str, family: str, path: str) -> str:
    """A dedicated gateway host (DATABRICKS_GATEWAY_HOST)."""
    if family == "openai":
        # The gateway serves Responses under /openai and chat completions under /mlflow.
        rest = path.removeprefix("v1/")
        prefix = "openai/v1" if rest.startswith("responses") else "mlflow/v1"
        return f"{gateway}/{prefix}/{rest}"
    return f"{gateway}/{family}/{path}"


def workspace_gateway_url(base: str, family: str, path: str) -> str:
    """The gateway on the workspace host (`base` ends in /ai-gateway): Codex's Responses live under
    /codex/v1, chat completions (OpenCode) under /mlflow/v1; Anthropic and Gemini under their names."""
    if family == "openai":
        rest = path.removeprefix("v1/")
        prefix = "codex/v1" if rest.startswith("responses") else "mlflow/v1"
        return f"{base}/{prefix}/{rest}"
    return f"{base}/{family}/{path}"


def serving_url(host: str, family: str, path: str) -> str:
    if family == "openai":
        # OpenAI-compatible calls go to the serving root; `model` in the body names the endpoint.
        return f"{host}/serving-endpoints/{path.removeprefix('v1/')}"
    return f"{host}/serving-endpoints/{family}/{path}"


def as_serving_name(model: str) -> str:
    """`system.ai.claude-sonnet-4-6` → `databricks-claude-sonnet-4-6`: the gateway reads that name
    as the system.ai one, and serving endpoints know only it, so one name works on either upstream."""
    return "databricks-" + model.removeprefix("system.ai.") if model.startswith("system.ai.") else model


Headers = Callable[[], Awaitable[dict[str, str]]]


class Upstreams:
    """Chooses gateway or serving endpoints; the gateway's presence and health are probed, not assumed.

    DATABRICKS_GATEWAY_HOST set: that host, probed for any answer. Unset: the workspace host's own
    /ai-gateway, used when it answers there (not 404), found again by each probe.
    """

    def __init__(self, settings: Settings, probe_interval: float, headers: Headers | None = None):
        self.host = settings.databricks_host
        self.explicit = bool(settings.gateway_host)
        if self.explicit:
            self.gateway = settings.gateway_host
        elif self.host:
            self.gateway = self.host + WORKSPACE_GATEWAY_PATH
        else:
            self.gateway = ""
        self.probe_interval = probe_interval
        # An explicit host is used until it fails; the workspace's is used once a probe finds it.
        self.gateway_up = self.explicit
        self.reason = "DATABRICKS_GATEWAY_HOST is set" if self.explicit else "not probed yet"
        self.models: list[str] = []  # what the gateway offers, as serving names
        self._headers = headers

    def url(self, family: str, path: str) -> str:
        if self.explicit:
            return gateway_url(self.gateway, family, path)
        return workspace_gateway_url(self.gateway, family, path)

    def targets(self, family: str, path: str) -> list[Target]:
        """In order of preference: the gateway first while it is up, serving endpoints always."""
        serving = Target(serving_url(self.host, family, path), "serving")
        if self.gateway and self.gateway_up:
            return [Target(self.url(family, path), "gateway"), serving]
        return [serving]

    def describe(self) -> dict[str, object]:
        """For the status file: where requests go now, and why."""
        return {
            "serving": self.host,
            "gateway": self.gateway or None,
            "gateway_up": self.gateway_up if self.gateway else None,
            "gateway_source": "DATABRICKS_GATEWAY_HOST" if self.explicit else "workspace",
            "via": "gateway" if self.gateway and self.gateway_up else "serving",
            "reason": self.reason,
            "gateway_models": self.models,
        }

    def gateway_failed(self, reason: str) -> None:
        if self.gateway_up:
            log.warning("AI Gateway unreachable (%s): using serving endpoints until it answers again", reason)
        self.gateway_up = False
        self.reason = f"the AI Gateway failed a request ({reason}); serving endpoints until it answers"

    async def probe(self) -> bool:
        """Explicit host: any HTTP answer means it is there. Workspace host: there unless it says
        404 (no gateway on this workspace), refuses us (401/403: not for this credential) or fails."""
        try:
            headers = await self._headers() if (self._headers and not self.explicit) else {}
        except Exception as exc:  # no credential yet: serving endpoints say the same, more clearly
            self.reason = f"no credential to probe the workspace's AI Gateway ({exc})"
            return False
        try:
            async with httpx.AsyncClient(timeout=PROBE_TIMEOUT, trust_env=False) as client:
                if self.explicit:
                    await client.get(self.gateway + "/")
                    self.reason = "DATABRICKS_GATEWAY_HOST is set and answers"
                    return True
                answer = await client.head(self.gateway + GATEWAY_PROBE_PATH, headers=headers)
                if answer.status_code in (401, 403, 404) or answer.status_code >= 500:
                    self.reason = (
                        f"{self.gateway} answered {answer.status_code}: no AI Gateway for this workspace "
                        "or credential; using serving endpoints"
                    )
                    return False
                self.models = await self._offered(client, headers)
        except httpx.TransportError as exc:
            self.reason = f"{self.gateway} did not answer ({type(exc).__name__}); using serving endpoints"
            return False
        self.reason = f"the workspace's AI Gateway answers at {self.gateway}"
        return True

    async def _offered(self, client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
        """The models the gateway lists (Anthropic's list; the same names serve every family)."""
        try:
            answer = await client.get(self.gateway + GATEWAY_MODELS_PATH, headers=headers)
            data = answer.json().get("data", []) if answer.status_code == 200 else []
        except (httpx.HTTPError, ValueError, AttributeError):
            return self.models
        names = [as_serving_name(str(m["id"])) for m in data if isinstance(m, dict) and m.get("id")]
        return sorted(set(names))

    async def watch_gateway(self) -> None:
        if not self.gateway:
            return
        while True:
            up = await self.probe()
            if up != self.gateway_up:
                log.info(
                    "AI Gateway %s (%s)",
                    "answers: routing to it" if up else "not in use: using serving endpoints",
                    self.reason,
                )
            self.gateway_up = up
            await asyncio.sleep(self.probe_interval)
