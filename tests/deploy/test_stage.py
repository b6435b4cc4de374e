"""`python -m services.deploy --stage-only DIR`: the deploy set, built without workspace credentials."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from services.skills import VENDOR_MARKER
from tests.deploy.conftest import SKILL_TAG, Project
from tests.helpers import env_for_subprocess

LIMIT = 10 * 1024 * 1024
# Independent of services.deploy.web_assets: anything our page files name under node_modules.
PAGE_REFERENCE = re.compile(r"/static/node_modules/([A-Za-z0-9@._/-]+)")
RELATIVE_IMPORT = re.compile(r"""(?:from|import)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""")


def stage(project: Project, dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return project.deploy("--stage-only", str(dest), *args)


def staged_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_stage_only_needs_no_credentials_and_builds_the_deploy_set(project: Project, tmp_path: Path) -> None:
    dest = tmp_path / "staged"
    result = stage(project, dest)
    assert result.returncode == 0, result.stderr
    assert "DATABRICKS_HOST" not in project.env()
    files = staged_files(dest)
    assert {"supervisord.conf", "uv.lock", "scripts/run", "services/gateway/app.py"} <= set(files)
    assert not [f for f in files if {".git", "node_modules", ".venv", ".coding-agents"} & set(f.split("/"))]
    assert not [f for f in files if (dest / f).stat().st_size > LIMIT]

    requirements = (dest / "requirements.txt").read_text()
    assert "tornado==6.6.1" in requirements and "databricks-sdk==0.162.0" in requirements
    assert "--hash=sha256:" in requirements
    # No dev tools, no editable install of the project itself.
    assert not re.search(r"^(pytest|mypy|ruff|playwright)==|^-e ", requirements, re.MULTILINE)
    assert str(project.root) not in requirements

    # The deploy set has no .git: which commit it is travels in VERSION (services/version.py).
    head = project.git("rev-parse", "--short=12", "HEAD").strip()
    assert re.fullmatch(rf"\d+\.\d+\.\d+\+{head}(-dirty)?", (dest / "VERSION").read_text().strip())

    app_yaml = yaml.safe_load((dest / "app.yaml").read_text())
    assert app_yaml["command"] == ["bash", "scripts/run"]
    env = {item["name"]: item for item in app_yaml["env"]}
    assert env["DATABRICKS_TOKEN"]["valueFrom"] == "databricks-token" and "HOME" not in env

    marker = json.loads((dest / "skills/vendor/upstream" / VENDOR_MARKER).read_text())
    assert marker["repo"] == str(project.upstream) and marker["ref"] == SKILL_TAG
    assert marker["commit"] == project.git(
        "-C", str(project.upstream), "rev-parse", f"{SKILL_TAG}^{{commit}}"
    )
    assert (dest / "skills/vendor/upstream/skills/alpha/SKILL.md").is_file()
    assert (dest / "skills/sources.yaml").read_text() == (project.root / "skills/sources.yaml").read_text()

    manifest = json.loads((dest / ".deploy-manifest.json").read_text())["files"]
    assert set(manifest) == set(files) - {".deploy-manifest.json"}
    assert manifest["app.yaml"] == hashlib.sha256((dest / "app.yaml").read_bytes()).hexdigest()


def test_web_vendor_holds_every_node_modules_file_the_page_references(
    project: Project, tmp_path: Path
) -> None:
    dest = tmp_path / "staged"
    assert stage(project, dest).returncode == 0
    web = dest / "web"
    page_files = [web / "index.html", web / "style.css", *sorted((web / "js").rglob("*.js"))]
    referenced = {m for f in page_files for m in PAGE_REFERENCE.findall(f.read_text())}
    assert "@xterm/xterm/lib/xterm.mjs" in referenced and "@xterm/xterm/css/xterm.css" in referenced
    vendor = web / "vendor"
    assert sorted(r for r in referenced if not (vendor / r).is_file()) == []
    for module in vendor.rglob("*.mjs"):
        for rel in RELATIVE_IMPORT.findall(module.read_text()):
            assert (module.parent / rel).resolve().is_file(), f"{module} imports {rel}"
    # Only what the page loads: no package.json, no source maps, no typings.
    assert not [p for p in vendor.rglob("*") if p.suffix in (".json", ".map", ".ts")]


def test_a_page_reference_missing_from_node_modules_fails_the_staging(
    project: Project, tmp_path: Path
) -> None:
    terminal = project.root / "web/js/terminal.js"
    terminal.write_text(
        'import { Nope } from "/static/node_modules/@xterm/nope/lib/nope.mjs";\n' + terminal.read_text()
    )
    result = stage(project, tmp_path / "staged")
    assert result.returncode == 1
    assert "web/js/terminal.js loads /static/node_modules/@xterm/nope/lib/nope.mjs" in result.stderr


def test_a_file_over_10_mb_fails_the_staging_naming_it(project: Project, tmp_path: Path) -> None:
    (project.root / "data").mkdir()
    (project.root / "data/big.bin").write_bytes(b"\0" * (LIMIT + 1))
    project.git("add", "data/big.bin")
    result = stage(project, tmp_path / "staged")
    assert result.returncode == 1
    assert f"data/big.bin ({LIMIT + 1} bytes)" in result.stderr and "10485760" in result.stderr


def test_without_git_the_staging_says_so(project: Project, tmp_path: Path) -> None:
    subprocess.run(["rm", "-rf", str(project.root / ".git")], check=True)
    result = stage(project, tmp_path / "staged")
    assert result.returncode == 1
    assert "is not a git checkout" in result.stderr and "git clone" in result.stderr


def test_a_skill_source_that_cannot_be_fetched_fails_unless_skip_skills(
    project: Project, tmp_path: Path
) -> None:
    sources = project.root / "skills/sources.yaml"
    sources.write_text(
        sources.read_text() + f"  - name: gone\n    repo: {tmp_path}/nowhere\n    ref: v1.0.0\n    path: s\n"
    )
    result = stage(project, tmp_path / "staged")
    assert result.returncode == 1
    assert "skill source gone" in result.stderr and "--skip-skills" in result.stderr

    result = stage(project, tmp_path / "staged2", "--skip-skills")
    assert result.returncode == 0, result.stderr
    assert "skill source gone" in result.stderr and "left out" in result.stderr
    assert (tmp_path / "staged2/skills/vendor/upstream/skills/beta/SKILL.md").is_file()
    assert not (tmp_path / "staged2/skills/vendor/gone").exists()


def test_staging_refuses_a_folder_it_did_not_make(project: Project, tmp_path: Path) -> None:
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    result = stage(project, dest)
    assert result.returncode == 1 and "is not empty" in result.stderr
    assert (dest / "notes.txt").read_text() == "keep me"
    assert stage(project, tmp_path / "again").returncode == 0
    assert stage(project, tmp_path / "again").returncode == 0  # an earlier staging is replaced


def test_the_app_installs_skills_from_the_staged_copy_without_git(project: Project, tmp_path: Path) -> None:
    dest = tmp_path / "staged"
    assert stage(project, dest).returncode == 0
    home, no_git = tmp_path / "app-home", tmp_path / "empty-bin"
    home.mkdir()
    no_git.mkdir()

    def refresh() -> subprocess.CompletedProcess[str]:
        env = env_for_subprocess() | {
            "HOME": str(home),
            "CODING_AGENTS_STATE_DIR": str(tmp_path / "state"),
            "PATH": str(no_git),  # no git: a fetch would fail with "git is not installed"
        }
        env.pop("CODING_AGENTS_SKILL_SOURCES", None)
        return subprocess.run(
            [sys.executable, "-m", "services.skills"],
            cwd=dest,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    result = refresh()
    assert result.returncode == 0, result.stderr
    assert f"source upstream @ {SKILL_TAG}" in result.stdout and "staged copy" in result.stdout
    for folder in (".claude/skills", ".agents/skills"):
        assert (home / folder / "alpha/SKILL.md").read_text() == (
            project.upstream / "skills/alpha/SKILL.md"
        ).read_text()
    # A copy of another ref is not used: the app would have to fetch, and cannot here.
    sources = dest / "skills/sources.yaml"
    sources.write_text(sources.read_text().replace(SKILL_TAG, "v2.0.0"))
    result = refresh()
    assert "source upstream @ v2.0.0: FAILED: git is not installed" in result.stdout
