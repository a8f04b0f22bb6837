"""Local copies of remote character files, and the URI scheme the remote stores share."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from ..errors import NotFound
from ..settings import Settings
from .base import write_once


def make_uri(scheme: str, bucket: str, name: str) -> str:
    return f"{scheme}://{bucket}/{name}"


def split_uri(uri: str, scheme: str) -> tuple[str, str]:
    """(bucket, object name) of `<scheme>://bucket/name`; NotFound for a URI of another store."""
    parsed = urlparse(uri)
    name = parsed.path.lstrip("/")
    if parsed.scheme != scheme or not parsed.netloc or not name or ".." in name.split("/"):
        # A URI written by another backend (e.g. file:// from before a switch to this store)
        # names nothing this store can read.
        raise NotFound(f"{uri!r} is not a {scheme}:// character file URI")
    return parsed.netloc, name


def character_folder(character_id: str) -> str:
    """`<character_id>/`, the prefix of all its versions; refuses ids that would widen it."""
    if not character_id or "/" in character_id or character_id in (".", ".."):
        raise ValueError(f"invalid character id {character_id!r}")
    return f"{character_id}/"


class FileCache:
    """`<state>/store-cache/<scheme>/<bucket>/<name>`: each version file written once, read-only.

    Versions are never overwritten, so a cached copy never goes stale; the scheme and bucket
    in the path keep two stores (or a bucket switch) from ever sharing a copy.
    """

    def __init__(self, settings: Settings, scheme: str) -> None:
        self.root = settings.state_dir / "store-cache" / scheme

    def path(self, bucket: str, name: str, fetch: Callable[[], bytes]) -> Path:
        """The cached copy of `bucket/name`, calling `fetch` for its bytes the first time."""
        path = self.root / bucket / name
        if path.is_file():
            return path
        # Of two processes fetching at once, the second simply finds the first one's identical copy.
        write_once(path, fetch())
        return path

    def drop(self, bucket: str, folder: str) -> None:
        """Forget a deleted character's copies, so local_path cannot outlive the store."""
        shutil.rmtree(self.root / bucket / folder, ignore_errors=True)
