"""Cursor pagination: opaque, signed cursors that carry a list's keyset position.

A cursor names the list it came from, the filters it was made under and the last row's sort key and
id. It is signed with a key derived from the platform's JWT secret, so a cursor edited by hand, cut
short or taken to another list or filter is a 422 naming `cursor`, never a wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from .errors import ValidationFailed
from .settings import get_settings

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR = 1000  # characters; a real cursor is about 150


def _key() -> bytes:
    secret = get_settings().jwt_secret_value().encode()
    return hmac.new(secret, b"paradyze list cursor v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scope(kind: str, filters: dict[str, Any]) -> str:
    return kind + ":" + json.dumps(filters, sort_keys=True, default=str)


def encode(kind: str, filters: dict[str, Any], position: list[Any]) -> str:
    """The cursor after `position` (the last row's sort key and id, as JSON values) in list `kind`."""
    payload = json.dumps({"s": _scope(kind, filters), "p": position}, separators=(",", ":")).encode()
    mac = hmac.new(_key(), payload, hashlib.sha256).digest()[:16]
    return _b64(payload) + "." + _b64(mac)


def decode(cursor: str | None, kind: str, filters: dict[str, Any]) -> list[Any] | None:
    """The position a cursor carries, or None for the first page.

    Raises ValidationFailed (422, naming `cursor` in the query) when the cursor was not made by this
    platform, was changed, or belongs to another list or other filters.
    """
    if cursor is None:
        return None
    try:
        body, _, mac = cursor.partition(".")
        payload = _unb64(body)
        expected = hmac.new(_key(), payload, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(_unb64(mac), expected):
            raise _invalid("it was not issued by this platform or was changed")
        data = json.loads(payload)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _invalid("it is not a cursor this platform issued") from None
    if data.get("s") != _scope(kind, filters):
        raise _invalid("it belongs to another list or other filters; start again without a cursor")
    position = data.get("p")
    if not isinstance(position, list):
        raise _invalid("it is not a cursor this platform issued")
    return position


def _invalid(why: str) -> ValidationFailed:
    return ValidationFailed(f"invalid cursor: {why}",
                            details=[{"loc": ["cursor"], "in": "query", "msg": why, "type": "cursor"}])


def split(rows: list[Any], limit: int) -> tuple[list[Any], bool]:
    """A page of at most `limit` rows out of the `limit + 1` fetched, and whether more follow."""
    return rows[:limit], len(rows) > limit
