"""The CharacterStore Protocol: versioned character files, each written once and never overwritten."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


def version_key(character_id: str, version: int) -> str:
    """The one naming scheme every store uses: `<character_id>/v<version>.character.json`."""
    return f"{character_id}/v{version}.character.json"


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
