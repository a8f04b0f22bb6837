"""The HTTP edge: the registry of operations, the one table from error to status, CORS, auth, JSON out."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import flask
import flask_cors
import pydantic
from pydantic_core import to_jsonable_python

from . import errors, limits, telemetry
from .auth import VerifiedTokens, caller_from_header
from .payload import read_body, read_headers, read_query, validation_error
from .settings import Settings, get_settings

__all__ = ["STATUS", "Operation", "Registry", "cors", "error_response", "validation_error"]

log = logging.getLogger("paradyze.http")

STATUS: dict[type[errors.ParadyzeError], int] = {
    errors.BadRequest: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.QuotaExceeded: 403,
    errors.NotFound: 404,
    errors.InvalidTransition: 409,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.ValidationFailed: 422,
    errors.AgentFailed: 502,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
}

Auth = Literal["user", "admin"]
Model = type[pydantic.BaseModel]
Handler = Callable[..., Any]
CORS_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")


@dataclass(frozen=True)
class Operation:
    """One function as its caller sees it: what it takes, what it answers, who may call it."""

    name: str
    summary: str
    auth: Auth
    methods: tuple[str, ...]
    response: Model
    statuses: tuple[int, ...] = (200,)
    body: Model | None = None
    query: Model | None = None
    headers: Model | None = None
    # The handler takes the caller's request slot itself, in its own first transaction (send_message).
    own_slot: bool = False


class Registry:
    """Every operation, declared once by its decorator; the OpenAPI document is built from here."""

    def __init__(self) -> None:
        self.operations: dict[str, Operation] = {}
        self.tokens = VerifiedTokens()  # shared by this process's functions: one token, one check

    def endpoint(self, *, auth: Auth, methods: tuple[str, ...], response: Model, status: int | tuple[int, ...] = 200,
                 body: Model | None = None, query: Model | None = None,
                 headers: Model | None = None,
                 own_slot: bool = False) -> Callable[[Handler], Callable[[flask.Request], flask.Response]]:
        """Register the handler and wrap it: CORS, method, auth, the request parsed, errors as JSON.

        The handler is called as handler(request, caller, body=..., query=..., headers=...) with
        the parsed models it declared, and returns a `response` model (or what validates as one),
        or (that, status). The caller holds one of their request slots (limits.in_flight) while it
        runs, unless own_slot says the handler takes it itself (limits.admit).
        """

        def decorate(handler: Handler) -> Callable[[flask.Request], flask.Response]:
            op = Operation(name=handler.__name__, summary=(handler.__doc__ or handler.__name__).strip().splitlines()[0],
                           auth=auth, methods=methods, response=response,
                           statuses=status if isinstance(status, tuple) else (status,),
                           body=body, query=query, headers=headers, own_slot=own_slot)
            self.operations[op.name] = op
            return serve(op, handler, get_settings(), self.tokens)

        return decorate


def serve(op: Operation, handler: Handler, settings: Settings,
          tokens: VerifiedTokens | None = None) -> Callable[[flask.Request], flask.Response]:
    """The functions-framework entry point for op: every answer is JSON, and passes through CORS."""

    @cors(settings, op.methods)
    @functools.wraps(handler)
    def wrapper(request: flask.Request) -> flask.Response:
        began = time.monotonic()
        if request.method == "OPTIONS":
            response = flask.Response(status=204)
        else:
            try:
                response = _run(op, handler, request, tokens)
            except errors.ParadyzeError as exc:
                response = error_response(exc)
            except Exception:
                log.exception("unexpected error in %s", op.name)
                response = _json_response(
                    {"error": {"code": "internal", "message": "internal error; it has been logged", "details": []}},
                    500,
                )
        log.info("%s %s -> %s in %d ms", request.method, op.name, response.status_code,
                 (time.monotonic() - began) * 1000)
        return response

    return telemetry.instrument(op.name, wrapper)


def cors(settings: Settings, methods: tuple[str, ...]) -> Callable[[Handler], Handler]:
    """flask-cors for one function: PARADYZE_CORS_ORIGINS (comma-separated, or *) may call it from a browser."""
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    return flask_cors.cross_origin(
        origins=origins, methods=[*methods, "OPTIONS"], allow_headers=list(CORS_HEADERS), max_age=3600,
        # "*" needs no per-origin answer (bearer tokens, not cookies), so caches may share it.
        send_wildcard=origins == ["*"],
        # Our wrapper answers OPTIONS itself (204); flask-cors adds the preflight headers to it.
        automatic_options=False,
    )


def _run(op: Operation, handler: Handler, request: flask.Request, tokens: VerifiedTokens | None) -> flask.Response:
    if request.method not in op.methods:
        exc = errors.BadRequest(f"use {' or '.join(op.methods)} for this function, not {request.method}",
                                details=[{"loc": ["method"], "msg": f"expected {'/'.join(op.methods)}"}])
        response = error_response(exc)
        response.headers["Allow"] = ", ".join((*op.methods, "OPTIONS"))
        return response
    caller = caller_from_header(request.headers.get("Authorization"), get_settings(), tokens)
    telemetry.bind(user_id=caller.user_id)
    if op.auth == "admin" and not caller.is_admin:
        raise errors.Forbidden("this function is for the platform's admin (service_role) only")
    inputs: dict[str, Any] = {}
    if op.body is not None:
        inputs["body"] = read_body(request, op.body)
    if op.query is not None:
        inputs["query"] = read_query(request, op.query)
    if op.headers is not None:
        inputs["headers"] = read_headers(request, op.headers)
    telemetry.bind_inputs(inputs)
    with contextlib.nullcontext() if op.own_slot else limits.in_flight(caller):
        result = handler(request, caller, **inputs)
    value, status = result if isinstance(result, tuple) else (result, op.statuses[0])
    # Answers pass through the declared model, so the document and the wire cannot differ.
    try:
        answer = value if isinstance(value, op.response) else op.response.model_validate(value)
    except pydantic.ValidationError:
        log.exception("%s answered something that is not a %s", op.name, op.response.__name__)
        raise RuntimeError(f"{op.name} broke its own response model") from None
    return _json_response(answer, status)


def error_response(exc: errors.ParadyzeError) -> flask.Response:
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 500)
    response = _json_response({"error": {"code": exc.code, "message": exc.message, "details": exc.details}}, status)
    if isinstance(exc, (errors.Unavailable, errors.RateLimited)):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="paradyze"'
    return response


def _json_response(value: Any, status: int) -> flask.Response:
    # A model is written by pydantic's own serializer: a page of 50 agents in a third of the time
    # that dumping it to Python values and then to JSON took.
    body = value.model_dump_json() if isinstance(value, pydantic.BaseModel) else json.dumps(to_jsonable_python(value))
    return flask.Response(body, status=status, mimetype="application/json")
