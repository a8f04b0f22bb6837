"""What a request is about, carried to every log line, span and agent call it causes: request id and labels."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ParamSpec, TypeVar

from opentelemetry import propagate

P = ParamSpec("P")
T = TypeVar("T")

REQUEST_ID_HEADER = "X-Request-Id"
# A request id a caller sends is kept only when it cannot carry anything but an id.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
_UUID = re.compile(r"[0-9a-fA-F-]{36}")


@dataclass(frozen=True)
class Labels:
    """The bounded set of labels a log line may carry: ids and the operation's name, never user text."""

    request_id: str = ""
    operation: str = ""
    agent_id: str = ""
    user_id: str = ""


_NONE = Labels()
_current: contextvars.ContextVar[Labels | None] = contextvars.ContextVar("paradyze_labels", default=None)


def current() -> Labels:
    return _current.get() or _NONE


def begin(operation: str, incoming_request_id: str | None) -> contextvars.Token[Labels | None]:
    """Start a request's labels: its operation and an id (the caller's X-Request-Id when well formed)."""
    rid = incoming_request_id if incoming_request_id and _REQUEST_ID.fullmatch(incoming_request_id) else None
    return _current.set(Labels(request_id=rid or uuid.uuid4().hex, operation=operation))


def end(token: contextvars.Token[Labels | None]) -> None:
    _current.reset(token)


def bind(*, agent_id: object = None, user_id: object = None) -> None:
    """Add the agent or user a request turned out to be about; only uuid-shaped values are kept."""
    labels = current()
    if isinstance(agent_id, (str, uuid.UUID)) and _UUID.fullmatch(str(agent_id)):
        labels = replace(labels, agent_id=str(agent_id))
    if isinstance(user_id, (str, uuid.UUID)) and _UUID.fullmatch(str(user_id)):
        labels = replace(labels, user_id=str(user_id))
    _current.set(labels)


def bind_inputs(inputs: Mapping[str, Any]) -> None:
    """bind() the agent_id of a request's parsed body or query, when it names one."""
    for model in inputs.values():
        agent_id = getattr(model, "agent_id", None)
        if agent_id is not None:
            bind(agent_id=agent_id)
            return


def carry(fn: Callable[P, T]) -> Callable[P, T]:
    """fn, to run in another thread with this request's labels and trace (executors don't copy them)."""
    ctx = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return ctx.run(fn, *args, **kwargs)

    return run


def outgoing_headers() -> dict[str, str]:
    """Headers for a call to an agent: the request id, and the trace (W3C traceparent)."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    rid = current().request_id
    if rid:
        headers[REQUEST_ID_HEADER] = rid
    return headers
