"""The CharacterStore Protocol: versioned character files, each written once and never overwritten."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol


def version_key(character_id: str, version: int) -> str:
    """The one naming scheme every store uses: `<character_id>/v<version>.character.json`."""
    return f"{character_id}/v{version}.character.json"


def write_once(path: Path, data: bytes) -> bool:
    """Write a read-only file that appears whole or not at all; False when it already existed.

    The bytes go to a temporary file that is then linked into place: the link fails if the name
    exists, so a file is never replaced, and of two writers at once exactly one wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o444)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        os.unlink(tmp)
    return True


class CharacterStore(Protocol):
    kind: str

    def put(self, character_id: str, version: int, data: bytes) -> str:
        """Store a version; returns its URI. Writing the same bytes again is a no-op (a retried
        request), different bytes for an existing version raise VersionConflict."""

    def get(self, uri: str) -> bytes: ...

    def local_path(self, uri: str) -> Path:
        """A local file with the version's bytes, for runtimes that mount or pass a path."""

    def delete_character(self, character_id: str) -> None:
        """Remove every version of a deleted character."""
