"""What `databricks sync` would upload (everything git does not ignore) fits Databricks Apps."""

from __future__ import annotations

import subprocess

import yaml

from services.config import PROJECT_ROOT

LIMIT = 10 * 1024 * 1024  # Apps rejects the deploy: "File is larger than 10485760 bytes"


def deploy_set() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    )
    return [p for p in out.stdout.decode().split("\0") if p]


def test_no_file_in_the_deploy_set_is_over_10_mb() -> None:
    files = deploy_set()
    assert "supervisord.conf" in files and "uv.lock" in files
    assert not [p for p in files if p.startswith((".venv/", "web/node_modules/", ".coding-agents/"))]
    big = [p for p in files if (PROJECT_ROOT / p).is_file() and (PROJECT_ROOT / p).stat().st_size > LIMIT]
    assert big == []


def test_app_yaml_template_runs_the_same_supervisord_with_the_secret_from_a_resource() -> None:
    config = yaml.safe_load((PROJECT_ROOT / "app.yaml.template").read_text())
    assert config["command"] == ["bash", "scripts/run"]
    env = {item["name"]: item for item in config["env"]}
    assert env["DATABRICKS_TOKEN"] == {"name": "DATABRICKS_TOKEN", "valueFrom": "databricks-token"}
    assert {"ANTHROPIC_MODEL", "GEMINI_MODEL"} <= env.keys()
    # HOME is scripts/run's business (the runtime may leave it unset), not a fixed path here.
    assert "HOME" not in env
    # Values must be strings: Apps rejects bare numbers and booleans.
    assert all(isinstance(item.get("value", ""), str) for item in config["env"])
