"""Which serving endpoint each agent uses: the page's choice (models.json), else agents.yaml's default
or the environment's override; and whether its sessions are traced to MLflow (tracing.json, else
CODING_AGENTS_MLFLOW_TRACING). Light on purpose: the gateway reads it to list and record choices,
setup's configurers to write the agents' configs, and neither imports the other."""

from __future__ import annotations

from collections.abc import Mapping

from services.config import Settings
from services.setup.registry import Agent
from services.statefiles import StateFiles, read_model_choices, read_tracing_choices

# Configurers whose agent the pinned `mlflow` package traces with an integration of its own: Claude
# Code's Stop hook (mlflow.claude_code, mlflow-skinny 3.12.0). Gemini CLI (OTLP telemetry) and Codex
# (an npm plugin) are traced only through an MLflow server's own endpoints or packages this app cannot
# pin, OpenCode not at all (README, "MLflow tracing").
TRACEABLE_CONFIGURERS = frozenset({"claude"})


def chosen_model(files: StateFiles, agent: Agent, env: Mapping[str, str]) -> str:
    return read_model_choices(files.agent_models).get(agent.id) or agent.current_model(env)


def tracing_available(agent: Agent) -> bool:
    return agent.configurer in TRACEABLE_CONFIGURERS


def tracing_wanted(settings: Settings, agent: Agent) -> bool:
    """The page's switch if it was ever flipped, else the environment's list; never for an agent
    without an integration."""
    if not tracing_available(agent):
        return False
    choice = read_tracing_choices(settings.files.agent_tracing).get(agent.id)
    return settings.tracing.wants(agent.id) if choice is None else choice
