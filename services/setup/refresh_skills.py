"""`refresh-skills` in the terminal: reinstall the agents' skills (services.skills), then rewrite the
agents' instruction files, which list them (services.setup.instructions)."""

from __future__ import annotations

import sys

from services import skills
from services.config import Settings
from services.setup import instructions


def rewrite_instructions(settings: Settings) -> None:
    instructions.write_all(settings, print)


def main(argv: list[str] | None = None) -> int:
    return skills.main(argv, after=rewrite_instructions)


if __name__ == "__main__":
    sys.exit(main())
