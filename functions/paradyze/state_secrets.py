"""Secrets the platform makes for itself in its state folder when none is configured (local use):
the JWT secret and the secrets key, each written once and never changed."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def generate_once(path: Path, *, fernet: bool = False) -> str:
    """The secret in path; a new random one (a Fernet key when fernet) written there first, mode 600,
    when there is none."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    if fernet:
        from cryptography.fernet import Fernet

        value = Fernet.generate_key().decode()
    else:
        value = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once agree on the first one written.
    try:
        with open(path, "x", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
            fh.write(value)
    except FileExistsError:
        return path.read_text().strip()
    return value
