"""The HTTP edge: the one table from error to status, CORS, body limits, auth, JSON in and out."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

import flask
import pydantic
from pydantic_core import to_jsonable_python

from . import errors, limits
from .auth import Caller, caller_from_header
from .settings import get_settings

log = logging.getLogger("paradyze.http")

MAX_BODY = 1024 * 1024

STATUS: dict[type[errors.ParadyzeError], int] = {
    errors.BadRequest: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.QuotaExceeded: 403,
    errors.NotFound: 404,
    errors.InvalidTransition: 409,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.ValidationFailed: 422,
    errors.AgentFailed: 502,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
}

M = TypeVar("M", bound=pydantic.BaseModel)
Handler = Callable[[flask.Request, Caller], Any]


def endpoint(*, auth: Literal["user", "admin"], methods: tuple[str, ...]) -> Callable[[Handler], Callable[..., Any]]:
    """Wrap a handler: CORS, method and size checks, the caller from the token, errors as JSON.

    The handler returns a JSON-able value (dict, pydantic model) or (value, status).
    """

    def decorate(handler: Handler) -> Callable[..., Any]:
        @functools.wraps(handler)
        def wrapper(request: flask.Request) -> flask.Response:
            began = time.monotonic()
            if request.method == "OPTIONS":
                response = flask.Response(status=204)
            else:
                try:
                    response = _json_response(*_run(handler, request, auth, methods))
                except errors.ParadyzeError as exc:
                    response = error_response(exc)
                except pydantic.ValidationError as exc:
                    response = error_response(validation_error(exc))
                except Exception:
                    log.exception("unexpected error in %s", handler.__name__)
                    response = _json_response(
                        {"error": {"code": "internal", "message": "internal error; it has been logged", "details": []}},
                        500,
                    )
            _cors(request, response, methods)
            log.info("%s %s -> %s in %d ms", request.method, handler.__name__, response.status_code,
                     (time.monotonic() - began) * 1000)
            return response

        return wrapper

    return decorate


def _run(handler: Handler, request: flask.Request, auth: str, methods: tuple[str, ...]) -> tuple[Any, int]:
    if request.method not in methods:
        raise errors.BadRequest(f"use {' or '.join(methods)} for this function, not {request.method}",
                                details=[{"loc": ["method"], "msg": f"expected {'/'.join(methods)}"}])
    if (request.content_length or 0) > MAX_BODY:
        raise errors.PayloadTooLarge(f"the body is {request.content_length} bytes; the limit is {MAX_BODY} (1 MiB)")
    caller = caller_from_header(request.headers.get("Authorization"), get_settings())
    if auth == "admin" and not caller.is_admin:
        raise errors.Forbidden("this function is for the platform's admin (service_role) only")
    with limits.in_flight(caller):
        result = handler(request, caller)
    if isinstance(result, tuple):
        return result[0], result[1]
    return result, 200


def body(request: flask.Request, model: type[M]) -> M:
    """The JSON body parsed into model; raises BadRequest or pydantic.ValidationError."""
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY:
        raise errors.PayloadTooLarge(f"the body is {len(raw)} bytes; the limit is {MAX_BODY} (1 MiB)")
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise errors.BadRequest(f"the body is not valid JSON: {exc}",
                                    details=[{"loc": ["body"], "msg": str(exc)}]) from exc
    if not isinstance(data, dict):
        raise errors.BadRequest("the body must be a JSON object",
                                details=[{"loc": ["body"], "msg": f"got {type(data).__name__}"}])
    bad = list(_unstorable_text(data, []))
    if bad:
        raise errors.ValidationFailed(
            f"text that cannot be stored: {', '.join('.'.join(map(str, loc)) or 'body' for loc in bad[:5])}",
            details=[{"loc": loc, "msg": "contains a NUL character or an unpaired surrogate", "type": "text"}
                     for loc in bad],
        )
    return model.model_validate(data)


def _unstorable_text(value: Any, loc: list[str | int]) -> Iterator[list[str | int]]:
    """Paths of strings (keys too) that JSON allows but UTF-8 and Postgres text cannot hold."""
    if isinstance(value, str):
        if not _storable(value):
            yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            if not _storable(key):
                yield [*loc, key.encode("utf-8", "backslashreplace").decode()]
            yield from _unstorable_text(item, [*loc, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable_text(item, [*loc, index])


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def query(request: flask.Request, model: type[M]) -> M:
    return model.model_validate(request.args.to_dict())


def validation_error(exc: pydantic.ValidationError) -> errors.ValidationFailed:
    details = []
    for err in exc.errors(include_url=False, include_input=False):
        # Drop pydantic's names for union branches ("list[str]", "function-after[...]"): a user
        # wants the path through their document, not through our types.
        loc = [p for p in err["loc"] if isinstance(p, int) or ("[" not in p and p != "str")]
        details.append({"loc": loc, "msg": err["msg"], "type": err["type"]})
    fields = ", ".join(".".join(str(p) for p in d["loc"]) or "body" for d in details[:5])
    return errors.ValidationFailed(f"invalid fields: {fields}", details=details)


def error_response(exc: errors.ParadyzeError) -> flask.Response:
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 500)
    response = _json_response({"error": {"code": exc.code, "message": exc.message, "details": exc.details}}, status)
    if isinstance(exc, (errors.Unavailable, errors.RateLimited)):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="paradyze"'
    return response


def _json_response(value: Any, status: int) -> flask.Response:
    if isinstance(value, pydantic.BaseModel):
        value = value.model_dump(mode="json")
    return flask.Response(json.dumps(to_jsonable_python(value)), status=status, mimetype="application/json")


def _cors(request: flask.Request, response: flask.Response, methods: tuple[str, ...]) -> None:
    allowed = [o.strip() for o in get_settings().cors_origins.split(",") if o.strip()]
    origin = request.headers.get("Origin")
    if not origin or not allowed:
        return
    if "*" in allowed:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    else:
        return
    response.headers["Access-Control-Allow-Methods"] = ", ".join((*methods, "OPTIONS"))
    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Idempotency-Key"
    response.headers["Access-Control-Max-Age"] = "3600"
