"""Workspace sync: every commit in `~/projects/*` mirrored to `/Workspace/Users/{owner}/projects/`.

`python -m services.sync` runs under supervisord. A tiny post-commit hook drops an event in a spool
folder; the watcher picks it up, diffs HEAD against the last synced commit (a SQLite journal in the
state dir) and uploads/deletes the difference with databricks-sdk. A git bundle of every repo lets a
fresh container restore the projects with their history. README, "Workspace sync".
"""
