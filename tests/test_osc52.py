"""OSC 52 in tmux (issue 12, item 4): a program may not read the clipboard through a query, which
tmux 3.3 with `set-clipboard on` answers with the newest paste buffer of any session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from services.tmux import TmuxSessions
from tests.conftest import Stack
from tests.helpers import wait_until

# In the pane: raw mode (so an answer is not held for a newline), the query, then whatever comes
# back within 3 s, written to a file.
ASK = """
import os, select, sys, tty
tty.setraw(0)
os.write(1, b"\\x1b]52;c;?\\x07")
answer = b""
while select.select([0], [], [], 3)[0]:
    answer += os.read(0, 4096)
open(sys.argv[1], "wb").write(b"ANSWER:" + answer)
"""


def test_an_osc52_query_gets_no_answer(stack: Stack, tmux: TmuxSessions) -> None:
    settings = stack.settings
    base = [settings.tmux_bin, "-S", str(settings.tmux_socket)]
    # What another session copied: the answer would carry it.
    subprocess.run([*base, "set-buffer", "secret-from-another-session"], check=True)
    script, out = stack.root / "ask.py", stack.root / "answer"
    script.write_text(ASK)
    asker = [sys.executable, str(script), str(out)]
    new_session = [*base, "new-session", "-d", "-s", "asker", "-x", "80", "-y", "24"]
    subprocess.run([*new_session, *asker], check=True, env=stack.env)
    wait_until(lambda: Path(out).exists() and Path(out).read_bytes().startswith(b"ANSWER:"), timeout=20)
    assert Path(out).read_bytes() == b"ANSWER:"
