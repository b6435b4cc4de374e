# Sourced by scripts/*: the shared environment contract (see README) and bootstrap helpers.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
UV_VERSION=0.13.8

# The shells' home. Databricks Apps may leave HOME unset or "/", and older deploys pointed it at this
# source folder: use a folder of its own instead, so `ls ~` shows the user's files and `rm -rf ~/*`
# cannot break the app (services/config.py applies the same rule).
if [ -z "${HOME:-}" ] || [ "$HOME" = "/" ] || [ ! -w "$HOME" ] || [ "$(cd "$HOME" && pwd -P)" = "$(cd "$ROOT" && pwd -P)" ]; then
  export HOME="$ROOT/.home"
  mkdir -p "$HOME"
fi
export CODING_AGENTS_STATE_DIR="${CODING_AGENTS_STATE_DIR:-$HOME/.coding-agents}"
export DATABRICKS_APP_PORT="${DATABRICKS_APP_PORT:-8000}"
export CODING_AGENTS_PYTHON="$ROOT/.venv/bin/python"
export PATH="$HOME/.local/bin:$PATH"
unset TMUX TMUX_PANE

say() { printf '\033[1m[coding-agents]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[coding-agents] error:\033[0m %s\n' "$*" >&2; exit 1; }

# uv from PATH, else a pinned copy in .tools/ (pip from PyPI, no other downloads).
find_uv() {
  if command -v uv >/dev/null 2>&1; then UV=$(command -v uv); return; fi
  UV="$ROOT/.tools/bin/uv"
  if [ ! -x "$UV" ]; then
    say "installing uv $UV_VERSION into .tools/"
    python3 -m venv "$ROOT/.tools" || die "python3 -m venv failed: install Python 3.11+ with venv"
    "$ROOT/.tools/bin/pip" install -q "uv==$UV_VERSION" || die "could not install uv from PyPI"
  fi
}

# Every module the app's processes import (mlflow: the Claude Code tracing hook); by name only, never imported.
RUNTIME_MODULES="tornado libtmux supervisor yaml httpx tomli_w databricks.sdk mlflow dateutil"

# A Python that already has the app's dependencies: on Databricks Apps the platform runs
# `pip install -r requirements.txt` (staged by scripts/deploy) before the app's command, so neither
# uv nor a venv of our own is needed there. Prints its path, or fails.
installed_python() {
  [ -f "$ROOT/requirements.txt" ] || return 1
  local python
  python=$(command -v python3) || return 1
  "$python" - $RUNTIME_MODULES <<'PY' >/dev/null 2>&1 || return 1
import importlib.util, sys
sys.exit(any(importlib.util.find_spec(name) is None for name in sys.argv[1:]))
PY
  echo "$python"
}

# The app's virtualenv from uv.lock; extra args select dependency groups.
sync_python() {
  find_uv
  # A private index named the pip way (Databricks Apps documents PIP_INDEX_URL) serves uv too.
  if [ -n "${PIP_INDEX_URL:-}" ] && [ -z "${UV_INDEX_URL:-}" ] && [ -z "${UV_DEFAULT_INDEX:-}" ]; then
    export UV_DEFAULT_INDEX="$PIP_INDEX_URL"
  fi
  UV_PYTHON_DOWNLOADS=never "$UV" sync --frozen --inexact --project "$ROOT" "$@" -q \
    || die "uv sync failed (see above)"
}

# xterm.js and addons from web/package-lock.json, reinstalled only when the lockfile changed.
# A staged deploy set carries the files the page needs in web/vendor instead (no npm at runtime).
sync_web() {
  if [ -d "$ROOT/web/vendor" ]; then return; fi
  local stamp="$ROOT/web/node_modules/.package-lock.json"
  if [ -f "$stamp" ] && ! [ "$ROOT/web/package-lock.json" -nt "$stamp" ]; then return; fi
  command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js 20+ (it serves the terminal's JS)"
  say "installing web dependencies (npm ci)"
  (cd "$ROOT/web" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed (see above)"
}
