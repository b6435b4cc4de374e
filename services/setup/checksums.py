"""The sha256 of one asset from a published checksum file.

Two formats are in use: a release-wide list in `sha256sum` output ("<hex>  <file name>" per line, e.g.
GitHub CLI's gh_<version>_checksums.txt) and a file beside one asset holding its digest alone, with or
without the name (micro's "<asset>.sha"). A list is only trusted for the line naming the asset: the
first digest of a list belongs to some other file.
"""

from __future__ import annotations

import re

# "<hex>", "<hex>  name" (text mode) or "<hex> *name" (binary mode), as sha256sum writes them.
LINE = re.compile(r"^\s*([0-9a-fA-F]{64})(?:\s+\*?(\S.*?))?\s*$")


class NoChecksum(ValueError):
    """The file gives no digest for the asset; the message says why, in one line."""


def asset_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def digest_for(text: str, name: str, source: str) -> str:
    """The lower-case digest `text` gives for the file `name`; NoChecksum saying what is missing.

    A named line counts by its base name (`sha256sum dist/x` writes "dist/x"). A file whose only
    digest names no file is the single-asset kind and is taken as it is.
    """
    named: dict[str, str] = {}
    unnamed: list[str] = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match is None:
            continue
        digest, listed = match.group(1).lower(), match.group(2)
        if listed:
            named.setdefault(listed.rsplit("/", 1)[-1], digest)
        else:
            unnamed.append(digest)
    if name in named:
        return named[name]
    if not named and len(unnamed) == 1:
        return unnamed[0]
    if named:
        raise NoChecksum(f"{source} lists no checksum for {name} (it names {len(named)} other files)")
    if unnamed:
        raise NoChecksum(f"{source} holds {len(unnamed)} digests and names no file: which one is {name}?")
    raise NoChecksum(f"{source} holds no sha256 digest")
