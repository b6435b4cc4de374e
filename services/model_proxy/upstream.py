"""Where each API family goes upstream: the AI Gateway while it answers, else the workspace's
serving endpoints; and the credential added to every request."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from services.config import Settings

log = logging.getLogger("model_proxy")

PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class Target:
    url: str
    via: str  # "gateway" or "serving"


def gateway_url(gateway: str, family: str, path: str) -> str:
    if family == "openai":
        # The gateway serves Responses under /openai and chat completions under /mlflow.
        rest = path.removeprefix("v1/")
        prefix = "openai/v1" if rest.startswith("responses") else "mlflow/v1"
        return f"{gateway}/{prefix}/{rest}"
    return f"{gateway}/{family}/{path}"


def serving_url(host: str, family: str, path: str) -> str:
    if family == "openai":
        # OpenAI-compatible calls go to the serving root; `model` in the body names the endpoint.
        return f"{host}/serving-endpoints/{path.removeprefix('v1/')}"
    return f"{host}/serving-endpoints/{family}/{path}"


class Upstreams:
    """Chooses gateway or serving endpoints; the gateway's health is probed, not assumed."""

    def __init__(self, settings: Settings, probe_interval: float):
        self.host = settings.databricks_host
        self.gateway = settings.gateway_host
        self.probe_interval = probe_interval
        self.gateway_up = bool(self.gateway)

    def targets(self, family: str, path: str) -> list[Target]:
        """In order of preference: the gateway first while it is up, serving endpoints always."""
        serving = Target(serving_url(self.host, family, path), "serving")
        if self.gateway and self.gateway_up:
            return [Target(gateway_url(self.gateway, family, path), "gateway"), serving]
        return [serving]

    def gateway_failed(self, reason: str) -> None:
        if self.gateway_up:
            log.warning("AI Gateway unreachable (%s): using serving endpoints until it answers again", reason)
        self.gateway_up = False

    async def probe(self) -> bool:
        """Any HTTP answer from the gateway means it is there; no answer means it is not."""
        try:
            async with httpx.AsyncClient(timeout=PROBE_TIMEOUT, trust_env=False) as client:
                await client.get(self.gateway + "/")
        except httpx.TransportError:
            return False
        return True

    async def watch_gateway(self) -> None:
        if not self.gateway:
            return
        while True:
            up = await self.probe()
            if up != self.gateway_up:
                log.info(
                    "AI Gateway %s", "answers again: routing to it" if up else "down: using serving endpoints"
                )
            self.gateway_up = up
            await asyncio.sleep(self.probe_interval)
