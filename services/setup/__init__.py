"""The one-shot setup runner: installs and configures agents and tools from agents.yaml."""
