"""The default character store: a local folder, `character-files/<character_id>/v<n>.character.json`."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import Conflict, NotFound
from ..settings import Settings
from .base import version_key, write_once


class LocalStore:
    kind = "local"

    def __init__(self, settings: Settings) -> None:
        self.root = settings.character_dir

    def put(self, character_id: str, version: int, data: bytes) -> str:
        path = self.root / version_key(character_id, version)
        if not write_once(path, data) and path.read_bytes() != data:
            raise Conflict(f"version {version} of character {character_id} already exists")
        return path.as_uri()

    def local_path(self, uri: str) -> Path:
        path = Path(unquote(urlparse(uri).path))
        if not path.is_file():
            raise NotFound(f"character file {path.name} is missing from the store")
        return path

    def get(self, uri: str) -> bytes:
        return self.local_path(uri).read_bytes()

    def delete_character(self, character_id: str) -> None:
        shutil.rmtree(self.root / character_id, ignore_errors=True)
