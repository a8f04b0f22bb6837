"""Google Cloud REST clients made one way: Google's endpoint with its credentials, or a local stand-in's."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Client = TypeVar("Client")


def rest_client(client_class: Callable[..., Client], endpoint: str | None) -> Client:
    """client_class over REST (one transport, so one set of transport errors to translate); at endpoint,
    without credentials, when one is named (a local fake of the API)."""
    if endpoint:
        # Loaded only with a backend that uses it, like the client class itself.
        from google.auth.credentials import AnonymousCredentials

        return client_class(transport="rest", client_options={"api_endpoint": endpoint},
                            credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
    return client_class(transport="rest")
