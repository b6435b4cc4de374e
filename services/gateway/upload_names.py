"""Safe file names for uploads, and exclusive placement (collisions get -1, -2, ...)."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

MAX_NAME_BYTES = 200  # well under NAME_MAX (255), leaving room for a "-NNN" suffix
MAX_SUFFIX_CHARS = 16
FALLBACK_NAME = "upload"
# Letters and digits of any script, and a few punctuation marks that no shell or agent treats
# specially at the start of a word; everything else becomes "_".
UNSAFE = re.compile(r"[^\w.+@,=-]")
# Control (Cc), format (Cf: bidi overrides that reorder what is shown), separators other than space.
DROPPED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def sanitize_filename(raw: str) -> str:
    """A name safe to create in the uploads folder and to type into a shell.

    Only the last path component is kept (no traversal), composed characters are normalised (NFC),
    control and invisible characters are dropped, leading dots and dashes removed (no hidden files,
    no names that read as options), and the name is shortened to MAX_NAME_BYTES keeping its suffix.
    """
    name = unicodedata.normalize("NFC", raw)
    name = "".join(c for c in name if unicodedata.category(c) not in DROPPED_CATEGORIES)
    name = re.split(r"[/\\]", name)[-1]
    name = UNSAFE.sub("_", name.strip())
    name = re.sub(r"_{2,}", "_", name).lstrip(".-_").rstrip(". ")
    if not name:
        return FALLBACK_NAME
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(suffix) > MAX_SUFFIX_CHARS:
        stem, suffix = name, ""
    suffix = "." + suffix if suffix else ""
    stem = _truncate_utf8(stem, MAX_NAME_BYTES - len(suffix.encode()))
    return (stem or FALLBACK_NAME) + suffix


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode()[:limit].decode("utf-8", errors="ignore")


def numbered(name: str, n: int) -> str:
    """`photo.png`, then `photo-1.png`, `photo-2.png`, ..."""
    if n == 0:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return f"{name}-{n}"
    return f"{stem}-{n}.{suffix}"


def place(temporary: Path, folder: Path, name: str, attempts: int = 1000) -> Path:
    """Give the finished `temporary` file its name in `folder` without ever replacing a file:
    a hard link fails if the name exists, so concurrent uploads cannot overwrite each other."""
    for n in range(attempts):
        target = folder / numbered(name, n)
        try:
            os.link(temporary, target)
        except FileExistsError:
            continue
        temporary.unlink()
        return target
    raise FileExistsError(f"{attempts} files named like {name!r} exist already in {folder}")
