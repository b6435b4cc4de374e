"""Which serving endpoint each agent uses: the page's choice (models.json), else agents.yaml's default
or the environment's override. Light on purpose: the gateway reads it to list and record choices,
setup's configurers to write the agents' configs, and neither imports the other."""

from __future__ import annotations

from collections.abc import Mapping

from services.setup.registry import Agent
from services.statefiles import StateFiles, read_model_choices


def chosen_model(files: StateFiles, agent: Agent, env: Mapping[str, str]) -> str:
    return read_model_choices(files.agent_models).get(agent.id) or agent.current_model(env)
