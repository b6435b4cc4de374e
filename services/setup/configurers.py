"""One configurer per agent: point it at the local model proxy, pick its model, add MCP servers.

Each merges into the agent's own files: keys this product manages are (re)written on every run, and
everything else — the user's own settings, servers, providers — is kept. A file that is not valid
JSON/TOML fails the step with its name instead of being replaced. Files hold only the local proxy
key, never the Databricks credential (that stays in the proxy's environment).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w

from services import state
from services.agent_models import chosen_model
from services.config import Settings
from services.model_proxy.key import proxy_key
from services.setup import codex_models, mcp
from services.setup.registry import Agent, RegistryError, load, registry_path
from services.setup.steps import Configurer, StepContext, StepFailed
from services.setup.tracing import configure_claude_tracing, record_tracing


def merge_mcp(section: dict[str, Any], ctx: StepContext, agent: Agent, entry: Callable[[str], Any]) -> str:
    """The configured MCP servers (services/setup/mcp.py) that answer, written into an agent's MCP
    section; the ones we wrote before that are now off or unreachable removed. Returns the note
    for the step's log, which names each server switched off and why."""
    try:
        servers = mcp.wanted_servers(load(registry_path(ctx.env)).mcp_servers, ctx.env)
    except (mcp.McpConfigError, RegistryError) as exc:
        raise StepFailed(str(exc).replace("\n", " ")) from None
    verdict = mcp.check(ctx.settings, servers, ctx.env)
    return mcp.merge(section, agent.id, ctx.settings, servers, verdict, entry)


CLAUDE_TIERS = {
    "OPUS": "databricks-claude-opus-4-6",
    "SONNET": "databricks-claude-sonnet-4-6",
    "HAIKU": "databricks-claude-haiku-4-5",
}
# Context and output limits OpenCode needs per model (it cannot ask the endpoint).
LIMITS = {"claude": (200_000, 16_384), "gemini": (1_000_000, 8_192), "gpt": (400_000, 16_384)}
OPENCODE_PROVIDER = "dbx-serving"  # not "databricks": OpenCode's built-in provider of that id would merge in
CODEX_PROVIDER = "coding-agents-proxy"


def proxy_base(settings: Settings, agent: Agent) -> str:
    return f"{settings.model_proxy_url}/a/{agent.id}/{agent.family}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise StepFailed(
            f"{path} is not valid JSON ({exc}); fix or remove it, it was left as it is"
        ) from None
    if not isinstance(data, dict):
        raise StepFailed(f"{path} does not hold a JSON object; fix or remove it, it was left as it is")
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    state.atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode(), mode=0o600)


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        value = {}
        data[key] = value
    return value


def merge_dotenv(text: str, values: dict[str, str]) -> str:
    """KEY=VALUE lines set or replaced; comments and other keys kept. Values stay unquoted: Gemini CLI
    reads a quoted GEMINI_API_KEY_AUTH_MECHANISM literally and falls back to its default."""
    lines = text.splitlines()
    remaining = dict(values)
    out = []
    for line in lines:
        key = line.split("=", 1)[0].strip().removeprefix("export ").strip() if "=" in line else ""
        if key in remaining:
            out.append(f"{key}={remaining.pop(key)}")
        elif key in values:
            continue  # a duplicate of a key already written
        else:
            out.append(line)
    out += [f"{k}={v}" for k, v in remaining.items()]
    return "\n".join(out) + "\n"


def configure_claude(ctx: StepContext, agent: Agent) -> None:
    settings, home = ctx.settings, ctx.settings.home
    model = chosen_model(settings.files, agent, ctx.env)
    path = home / ".claude" / "settings.json"
    data = _read_json(path)
    env = _section(data, "env")
    tiers = {
        name: ctx.env.get(f"ANTHROPIC_DEFAULT_{name}_MODEL", default)
        for name, default in CLAUDE_TIERS.items()
    }
    if "opus" in model:
        tiers["OPUS"] = model
    env.update(
        {
            "ANTHROPIC_BASE_URL": proxy_base(settings, agent),
            "ANTHROPIC_AUTH_TOKEN": proxy_key(settings),
            "ANTHROPIC_MODEL": model,
            **{f"ANTHROPIC_DEFAULT_{name}_MODEL": value for name, value in tiers.items()},
            "ANTHROPIC_CUSTOM_HEADERS": "x-databricks-use-coding-agent-mode: true",
            # Serving endpoints reject anthropic-beta flags they do not implement.
            "CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
        }
    )
    # Databricks' gateway rejects Anthropic's hosted web-search tool (its `ug` CLI denies it too):
    # denied here, Claude Code does not offer a tool that can only fail.
    deny = _section(data, "permissions").setdefault("deny", [])
    if isinstance(deny, list) and "WebSearch" not in deny:
        deny.append("WebSearch")
    tracing_note, tracing = configure_claude_tracing(settings, agent, data)
    _write_json(path, data)
    record_tracing(settings, agent, tracing)
    state_path = home / ".claude.json"
    profile = _read_json(state_path)
    profile["hasCompletedOnboarding"] = True
    # Trusted up front, as Gemini's and Codex's are: a trust question on the first start in the
    # folder every shell opens in reads as a broken agent.
    projects = _section(profile, "projects")
    for trusted_folder in (settings.home, settings.projects_dir):
        _section(projects, str(trusted_folder))["hasTrustDialogAccepted"] = True
    servers = _section(profile, "mcpServers")
    mcp_note = merge_mcp(servers, ctx, agent, lambda url: {"type": "http", "url": url})
    _write_json(state_path, profile)
    ctx.log.line(f"{path}: model {model} via {proxy_base(settings, agent)}; MCP: {mcp_note}; {tracing_note}")


def configure_gemini(ctx: StepContext, agent: Agent) -> None:
    settings, home = ctx.settings, ctx.settings.home
    model = chosen_model(settings.files, agent, ctx.env)
    folder = home / ".gemini"
    dotenv = folder / ".env"
    current = dotenv.read_text() if dotenv.exists() else ""
    values = {
        "GOOGLE_GEMINI_BASE_URL": proxy_base(settings, agent),
        "GEMINI_API_KEY": proxy_key(settings),
        "GEMINI_API_KEY_AUTH_MECHANISM": "bearer",
        "GEMINI_MODEL": model,
    }
    state.atomic_write_bytes(dotenv, merge_dotenv(current, values).encode(), mode=0o600)
    path = folder / "settings.json"
    data = _read_json(path)
    # Without an explicit auth type, a custom base URL makes headless runs fail ("Invalid auth method").
    _section(_section(data, "security"), "auth")["selectedType"] = "gemini-api-key"
    _section(data, "model")["name"] = model
    _section(data, "privacy")["usageStatisticsEnabled"] = False
    _section(data, "telemetry")["enabled"] = False
    general = _section(data, "general")
    general["enableAutoUpdate"] = False
    general["enableAutoUpdateNotification"] = False
    mcp_note = merge_mcp(_section(data, "mcpServers"), ctx, agent, lambda url: {"httpUrl": url})
    _write_json(path, data)
    # Gemini ignores ~/.gemini/.env in folders it does not trust.
    trusted_path = folder / "trustedFolders.json"
    trusted = _read_json(trusted_path)
    for trusted_folder in (home, settings.projects_dir):
        trusted[str(trusted_folder)] = "TRUST_FOLDER"
    _write_json(trusted_path, trusted)
    ctx.log.line(f"{dotenv}: model {model} via {proxy_base(settings, agent)}; MCP: {mcp_note}")


def _limits(model: str) -> dict[str, int]:
    context, output = next((v for k, v in LIMITS.items() if k in model), LIMITS["claude"])
    return {"context": context, "output": output}


def configure_opencode(ctx: StepContext, agent: Agent) -> None:
    settings = ctx.settings
    model = chosen_model(settings.files, agent, ctx.env)
    path = settings.home / ".config" / "opencode" / "opencode.json"
    data = _read_json(path)
    data.setdefault("$schema", "https://opencode.ai/config.json")
    provider = _section(_section(data, "provider"), OPENCODE_PROVIDER)
    provider["npm"] = "@ai-sdk/openai-compatible"
    provider["name"] = "Databricks"
    options = _section(provider, "options")
    options["baseURL"] = proxy_base(settings, agent) + "/v1"
    options["apiKey"] = proxy_key(settings)
    _section(provider, "models")[model] = {"name": model, "limit": _limits(model)}
    data["model"] = f"{OPENCODE_PROVIDER}/{model}"
    # Titles and summaries go to the same endpoint; left unset, OpenCode picks a model Databricks lacks.
    data["small_model"] = f"{OPENCODE_PROVIDER}/{model}"
    data["autoupdate"] = False
    data["share"] = "disabled"
    remote = _section(data, "mcp")
    mcp_note = merge_mcp(remote, ctx, agent, lambda url: {"type": "remote", "url": url, "enabled": True})
    _write_json(path, data)
    ctx.log.line(f"{path}: model {data['model']} via {options['baseURL']}; MCP: {mcp_note}")


def configure_codex(ctx: StepContext, agent: Agent) -> None:
    settings = ctx.settings
    model = chosen_model(settings.files, agent, ctx.env)
    path = settings.home / ".codex" / "config.toml"
    try:
        data = tomllib.loads(path.read_text()) if path.exists() else {}
    except tomllib.TOMLDecodeError as exc:
        raise StepFailed(
            f"{path} is not valid TOML ({exc}); fix or remove it, it was left as it is"
        ) from None
    data["model"] = model
    data["model_provider"] = CODEX_PROVIDER
    providers = _section(data, "model_providers")
    providers[CODEX_PROVIDER] = {
        "name": "Databricks",
        "base_url": proxy_base(settings, agent) + "/v1",
        "wire_api": "responses",
        "experimental_bearer_token": proxy_key(settings),
    }
    mcp_note = merge_mcp(_section(data, "mcp_servers"), ctx, agent, lambda url: {"url": url})
    metadata = codex_metadata(ctx, agent, model, data)
    data["check_for_update_on_startup"] = False
    _section(data, "analytics")["enabled"] = False  # openai/codex#8350, the `analytics` table
    # Its background app-server daemon, started by the first TUI, copied the whole CLI package
    # (424 MB) into ~/.codex/packages and stayed up; the TUI works without it (the agent test).
    _section(data, "features")["daemon_auto_start"] = False
    # No "Allow Codex to work in this folder?" on the first start where every shell opens.
    for trusted_folder in (settings.home, settings.projects_dir):
        _section(_section(data, "projects"), str(trusted_folder))["trust_level"] = "trusted"
    state.atomic_write_bytes(path, tomli_w.dumps(data).encode(), mode=0o600)
    ctx.log.line(f"{path}: model {model} via {providers[CODEX_PROVIDER]['base_url']}; MCP: {mcp_note}")
    ctx.log.line(metadata)


def codex_metadata(ctx: StepContext, agent: Agent, model: str, data: dict[str, Any]) -> str:
    """Point Codex at metadata for the Databricks models (services/setup/codex_models.py)."""
    folder = ctx.settings.home / ".codex"
    ours = folder / codex_models.CATALOG_NAME
    names = [n for n in dict.fromkeys([model, agent.current_model(ctx.env)]) if codex_models.covers(n)]
    models = {name: _limits(name)["context"] for name in names}
    codex = ctx.settings.local_bin / agent.binary
    try:
        if not models:
            raise codex_models.CatalogUnavailable(f"{model} is not a GPT model")
        path, copied = codex_models.write_catalog(codex, ctx.env, folder, models)
    except codex_models.CatalogUnavailable as exc:
        # A catalog without the model would hide it from /model; a missing one stops Codex.
        if data.get("model_catalog_json") == str(ours) and (not models or not ours.exists()):
            del data["model_catalog_json"]
        return f"model metadata not written ({exc}): Codex warns that it uses fallback metadata"
    data["model_catalog_json"] = str(path)
    return f"{path}: metadata for {', '.join(models)} (from Codex's own {copied})"


CONFIGURERS: dict[str, Configurer] = {
    "claude": configure_claude,
    "gemini": configure_gemini,
    "opencode": configure_opencode,
    "codex": configure_codex,
}
