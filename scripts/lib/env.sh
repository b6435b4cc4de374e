# Sourced by scripts/*: the shared environment contract (see README) and bootstrap helpers.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
UV_VERSION=0.13.8

# Databricks Apps may leave HOME unset or "/": fall back to the app's source folder.
if [ -z "${HOME:-}" ] || [ "$HOME" = "/" ] || [ ! -w "$HOME" ]; then
  export HOME="$ROOT"
fi
export CODING_AGENTS_STATE_DIR="${CODING_AGENTS_STATE_DIR:-$HOME/.coding-agents}"
export DATABRICKS_APP_PORT="${DATABRICKS_APP_PORT:-8000}"
export CODING_AGENTS_PYTHON="$ROOT/.venv/bin/python"
# Where programs' stderr goes (services/platform_log.py): this script's stdout, which is the log
# Databricks Apps shows. A stdout supervisord cannot open by name (a socket) falls back to a file.
if [ -z "${CODING_AGENTS_PLATFORM_LOG:-}" ]; then
  if [ -w /dev/stdout ] && { true >>/proc/self/fd/1; } 2>/dev/null; then
    export CODING_AGENTS_PLATFORM_LOG=/dev/stdout
  else
    export CODING_AGENTS_PLATFORM_LOG="$CODING_AGENTS_STATE_DIR/logs/platform.log"
  fi
fi
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

# The app's virtualenv from uv.lock; extra args select dependency groups.
sync_python() {
  find_uv
  UV_PYTHON_DOWNLOADS=never "$UV" sync --frozen --inexact --project "$ROOT" "$@" -q \
    || die "uv sync failed (see above)"
}

# xterm.js and addons from web/package-lock.json, reinstalled only when the lockfile changed.
sync_web() {
  local stamp="$ROOT/web/node_modules/.package-lock.json"
  if [ -f "$stamp" ] && ! [ "$ROOT/web/package-lock.json" -nt "$stamp" ]; then return; fi
  command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js 20+ (it serves the terminal's JS)"
  say "installing web dependencies (npm ci)"
  (cd "$ROOT/web" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed (see above)"
}
