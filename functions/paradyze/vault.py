"""Character secrets at rest: encrypted with the platform's key, readable only by the service role."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet

from .settings import get_settings


def seal(secrets: dict[str, str]) -> str:
    return Fernet(get_settings().secrets_key_value().encode()).encrypt(json.dumps(secrets).encode()).decode()


def unseal(ciphertext: str) -> dict[str, str]:
    data: dict[str, str] = json.loads(Fernet(get_settings().secrets_key_value().encode()).decrypt(ciphertext))
    return data
