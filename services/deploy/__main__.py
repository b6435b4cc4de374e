"""scripts/deploy: deploy this project to Databricks Apps in one idempotent command.

Steps: credentials and who you are, staging the deploy set, the app (created if missing), the owner's
token in a secret scope attached to the app, the upload (only what changed), the deployment.
`--stage-only DIR` does the staging alone, with no workspace credentials.
Exit codes: 0 deployed (or staged), 1 a step failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from databricks.sdk import WorkspaceClient

from services import skills
from services.config import PROJECT_ROOT
from services.deploy import app_api, upload
from services.deploy.errors import api_step
from services.deploy.progress import DeployError, Progress, UsageError
from services.deploy.stage import Staged, StageOptions, default_skill_cache, stage

DEFAULT_APP = "coding-agents"
DEFAULT_TIMEOUT = 1200.0  # per wait (compute start, deployment, app start), as the SDK's own waiters
POLL_ENV = "CODING_AGENTS_DEPLOY_POLL_SECONDS"  # tests poll the fake workspace faster
DEFAULT_POLL = 3.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/deploy",
        description="Deploy this project to Databricks Apps: create the app if missing, store your token as "
        "its secret, upload what changed and deploy. Credentials: DATABRICKS_HOST and DATABRICKS_TOKEN, or "
        "a ~/.databrickscfg profile (--profile).",
    )
    parser.add_argument("--app", default=DEFAULT_APP, help=f"app name (default {DEFAULT_APP})")
    parser.add_argument("--profile", help="~/.databrickscfg profile to use instead of DATABRICKS_* variables")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--no-token",
        action="store_true",
        help="deploy without any secret: the app's creator owns it and connects the workspace from its page",
    )
    secret.add_argument(
        "--no-secret",
        action="store_true",
        help="do not store your token nor attach it to the app (add a 'databricks-token' resource yourself)",
    )
    parser.add_argument("--secret-scope", help="secret scope for the token (default <app>-secrets)")
    parser.add_argument(
        "--source-path", help="workspace folder to upload to (default /Workspace/Users/<you>/apps/<app>)"
    )
    parser.add_argument(
        "--stage-only",
        metavar="DIR",
        type=Path,
        help="only build the deploy set into DIR (empty or new); needs no workspace credentials",
    )
    parser.add_argument(
        "--skill-sources",
        metavar="FILE",
        type=Path,
        help=f"skill sources to ship (default ${skills.SOURCES_ENV}, else skills/sources.yaml)",
    )
    parser.add_argument(
        "--skip-skills",
        action="store_true",
        help="leave out a skill source that cannot be fetched (the app fetches it when it starts)",
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for each workspace state"
    )
    return parser


def _stage_options(args: argparse.Namespace, dest: Path) -> StageOptions:
    sources = args.skill_sources or skills.sources_path(os.environ)
    if not sources.is_file():
        raise UsageError(f"skill sources file {sources} does not exist")
    return StageOptions(
        project=PROJECT_ROOT,
        dest=dest,
        skill_sources=sources,
        skill_cache=default_skill_cache(os.environ),
        skip_failed_skills=args.skip_skills,
        no_token=args.no_token,
    )


def _stage(args: argparse.Namespace, dest: Path, progress: Progress) -> Staged:
    progress.step(f"Staging the deploy set in {dest}")
    return stage(_stage_options(args, dest), progress.line, progress.warn)


def _connect(profile: str | None) -> WorkspaceClient:
    try:
        return WorkspaceClient(profile=profile) if profile else WorkspaceClient()
    except ValueError as exc:
        raise DeployError(
            "credentials",
            str(exc).strip().splitlines()[0],
            "set DATABRICKS_HOST and DATABRICKS_TOKEN, or pass --profile NAME of a ~/.databrickscfg entry",
        ) from None


def _poll_seconds() -> float:
    raw = os.environ.get(POLL_ENV, "").strip()
    try:
        return float(raw) if raw else DEFAULT_POLL
    except ValueError:
        raise UsageError(f"{POLL_ENV}={raw!r} is not a number of seconds") from None


def deploy(args: argparse.Namespace, progress: Progress) -> None:
    app_name = app_api.check_app_name(args.app)
    scope = app_api.check_scope_name(args.secret_scope or app_api.default_scope(app_name))
    source_path = upload.workspace_path(args.source_path) if args.source_path else None
    if args.no_token and args.secret_scope:
        raise UsageError("--secret-scope names where the token goes; --no-token stores none")
    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    poll = _poll_seconds()

    progress.step("Credentials")
    w = _connect(args.profile)
    with api_step("credentials", "asking the workspace who you are (SCIM Me)"):
        me = w.current_user.me().user_name or ""
    if not me:
        raise DeployError("credentials", "the workspace returned no user name for these credentials")
    source_path = source_path or f"{upload.WORKSPACE_PREFIX}/Users/{me}/apps/{app_name}"
    progress.line(f"{me} deploys app {app_name} to {w.config.host}, from {source_path}")

    with tempfile.TemporaryDirectory(prefix="coding-agents-deploy-") as tmp:
        staged = _stage(args, Path(tmp) / "app", progress)

        progress.step(f"App {app_name}")
        app = app_api.ensure_app(w, app_name, app_api.Waiter(progress, "app", poll, args.timeout))

        if args.no_token:
            progress.step("Secret: none (--no-token)")
            app = app_api.detach_secret(w, app, progress)
            owner = app.creator or me
            progress.line(
                f"the app's owner is its creator, {owner}: open the app and connect your workspace there"
            )
            if owner.lower() != me.lower():
                progress.warn(
                    f"app {app_name} was created by {owner}, not you: only {owner} gets in "
                    "(set CODING_AGENTS_OWNER in your app.yaml to change that)"
                )
        elif args.no_secret:
            progress.step("Secret: skipped (--no-secret)")
            if not any(r.name == app_api.TOKEN_RESOURCE for r in app.resources or []):
                progress.warn(
                    f"app {app_name} has no '{app_api.TOKEN_RESOURCE}' resource, which app.yaml's "
                    "DATABRICKS_TOKEN reads: add one (README, Deploy) or run without --no-secret"
                )
        else:
            progress.step(f"Secret: your token in scope {scope}, attached to the app")
            token = w.config.token
            if not token:
                raise DeployError(
                    "secret",
                    f"you are signed in with '{w.config.auth_type}', not a personal access token: "
                    "there is no token to store",
                    "use a token (DATABRICKS_TOKEN, or a profile with token = ...), or pass --no-secret and "
                    f"attach a '{app_api.TOKEN_RESOURCE}' secret resource to the app yourself",
                )
            app_api.ensure_secret(w, scope, token, me, progress)
            app = app_api.attach_secret(w, app, scope, progress)

        progress.step(f"Upload to {source_path}")
        result = upload.sync(w, staged, source_path, progress)
        for verb, names in (("uploaded", result.uploaded), ("deleted", result.deleted)):
            if names:
                shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
                progress.line(f"{verb} {len(names)}: {shown}")
        progress.line(f"{result.unchanged} files unchanged")

    progress.step("Deploy")
    running = app_api.deploy(w, app, source_path, app_api.Waiter(progress, "deploy", poll, args.timeout))
    print(f"\nApp {app_name} is running: {running.url or '(the workspace returned no URL)'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # bad flags: argparse prints usage and exits 2
    progress = Progress(total=1 if args.stage_only else 6)
    try:
        if args.stage_only:
            staged = _stage(args, args.stage_only, progress)
            print(f"\nStaged {len(staged.files)} files in {args.stage_only}", flush=True)
        else:
            deploy(args, progress)
    except UsageError as exc:
        progress.failed(exc)
        return 2
    except DeployError as exc:
        progress.failed(exc)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to finish (it resumes)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
