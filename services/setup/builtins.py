"""Steps written in Python, named from agents.yaml (`kind: builtin`, `run: NAME`), and the agents'
configurers (`configurer: NAME`). A name missing here is a registry error, not a runtime surprise.
"""

from __future__ import annotations

import time

from services import github, skills
from services.setup import configurers, instructions
from services.setup.steps import Builtin, StepContext, StepFailed, StepSkipped
from services.setup.tmux_step import install_tmux

OWNER_ATTEMPTS = 3


def workspace_identity(ctx: StepContext) -> None:
    """git author and the CLI profile of the owner (Apps mode; a laptop keeps its own)."""
    settings = ctx.settings
    if not settings.apps_mode:
        raise StepSkipped("local mode: your own git identity and ~/.databrickscfg are left as they are")
    # databricks-sdk takes a second to import: only runs that talk to the workspace pay for it.
    from services import databricks, identity
    from services.databricks import WorkspaceUnavailable

    for attempt in range(1, OWNER_ATTEMPTS + 1):
        try:
            owner = databricks.lookup_owner(settings)
            break
        except WorkspaceUnavailable as exc:
            ctx.log.line(f"attempt {attempt}: {exc}")
            if attempt == OWNER_ATTEMPTS:
                raise StepFailed(str(exc)) from None
            time.sleep(2**attempt)
    identity.apply(settings, owner)
    ctx.log.line(f"git user {owner.display_name} <{owner.email}>")
    if settings.has_workspace:
        ctx.log.line(f"~/.databrickscfg [DEFAULT] → {settings.databricks_host} (0600)")


def install_skills(ctx: StepContext) -> None:
    """Install every skill; a failure is shown on the step, the others are still installed."""
    report = skills.install_skills(
        ctx.settings.home, ctx.settings.state_dir, skills.sources_path(ctx.env), ctx.log.line, env=ctx.env
    )
    for line in report.summary():
        ctx.log.line(line)
    if report.failures:
        prefix = "" if report.shipped_ok else "shipped skills NOT installed: "
        raise StepFailed((prefix + "; ".join(report.failures))[:400])


def skills_and_instructions(ctx: StepContext) -> None:
    """Skills, then the agents' instruction files listing them (written even when a source failed)."""
    failures: list[str] = []
    try:
        install_skills(ctx)
    except StepFailed as exc:
        failures.append(exc.reason)
    failures += instructions.write_all(ctx.settings, ctx.log.line)
    if failures:
        raise StepFailed("; ".join(failures)[:400])


def gh_git_credentials(ctx: StepContext) -> None:
    """git over https to github.com uses gh's login (gh-login, or GH_TOKEN given to the app)."""
    settings = ctx.settings
    if not settings.apps_mode:
        raise StepSkipped("local mode: your own git credentials are left as they are (gh auth setup-git)")
    gh = github.find_gh(settings, ctx.env)
    if gh is None:
        raise StepFailed(f"gh is not installed: neither {settings.local_bin / 'gh'} nor gh on PATH")
    try:
        github.configure_git(gh, ctx.env, ctx.log.line)
    except github.CredentialError as exc:
        raise StepFailed(str(exc)) from None


BUILTINS: dict[str, Builtin] = {
    "workspace_identity": workspace_identity,
    "skills": skills_and_instructions,
    "tmux": install_tmux,
    "gh_git_credentials": gh_git_credentials,
}

# Agent configurers, each run as its own step after the agent's install (names valid in agents.yaml).
CONFIGURERS = configurers.CONFIGURERS
