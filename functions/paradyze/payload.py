"""Reading a request into its models: the JSON body, the query and headers, with limits that answer 4xx."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any, TypeVar

import flask
import pydantic
from werkzeug.exceptions import RequestEntityTooLarge

from . import errors

M = TypeVar("M", bound=pydantic.BaseModel)

MAX_BODY = 1024 * 1024
# Deeper than any character file needs, and far inside what the parser and pydantic can recurse.
MAX_DEPTH = 64
# Media types a body may be sent as. curl -d sends form-urlencoded, so the README's tour works as written.
JSON_TYPES = ("application/json", "application/x-www-form-urlencoded")

Loc = list[str | int]


class _Unrepresentable:
    """A number the JSON parser met that Python or Postgres cannot hold; found again with its path."""

    def __init__(self, text: str, why: str) -> None:
        self.text, self.why = text, why


def read_body(request: flask.Request, model: type[M]) -> M:
    """The JSON body parsed into model.

    Raises PayloadTooLarge (over 1 MiB), UnsupportedMediaType, BadRequest (not UTF-8, not JSON,
    not an object, nested too deep), ValidationFailed (numbers or text that cannot be stored,
    and pydantic's own field errors, each with its path).
    """
    raw = _bounded_bytes(request)
    if not raw.strip():
        return _validated(model, {}, "body")
    if request.mimetype and request.mimetype not in JSON_TYPES and not request.mimetype.endswith("+json"):
        raise errors.UnsupportedMediaType(
            f"the body is {request.mimetype}; send it as application/json",
            details=[{"loc": ["Content-Type"], "in": "header", "msg": "expected application/json"}],
        )
    data = _parsed(raw)
    if not isinstance(data, dict):
        raise errors.BadRequest("the body must be a JSON object",
                                details=[{"loc": [], "in": "body", "msg": f"got a JSON {_json_type(data)}"}])
    _check_values(data, "body")
    return _validated(model, data, "body")


def read_query(request: flask.Request, model: type[M]) -> M:
    """The query string parsed into model; a parameter given twice is a ValidationFailed naming it."""
    repeated = [name for name, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise errors.ValidationFailed(
            f"query parameters given more than once: {', '.join(repeated)}",
            details=[{"loc": [name], "in": "query", "msg": "give this parameter once", "type": "repeated"}
                     for name in repeated],
        )
    data = request.args.to_dict()
    _check_values(data, "query")
    return _validated(model, data, "query")


def read_headers(request: flask.Request, model: type[M]) -> M:
    """The request headers the model names (by alias, e.g. Idempotency-Key) parsed into it."""
    data = {name: request.headers[name] for name in _aliases(model) if name in request.headers}
    _check_values(data, "header")
    return _validated(model, data, "header")


def validation_error(exc: pydantic.ValidationError, where: str = "body") -> errors.ValidationFailed:
    """pydantic's errors as one ValidationFailed: each detail has the path through the user's document."""
    details = []
    for err in exc.errors(include_url=False, include_input=False):
        # Drop pydantic's names for union branches ("list[str]", "function-after[...]"): a user
        # wants the path through their document, not through our types.
        loc = [p for p in err["loc"] if isinstance(p, int) or ("[" not in p and p != "str")]
        details.append({"loc": loc, "in": where, "msg": err["msg"], "type": err["type"]})
    fields = ", ".join(".".join(str(p) for p in d["loc"]) or where for d in details[:5])
    return errors.ValidationFailed(f"invalid fields: {fields}", details=details)


def _validated(model: type[M], data: dict[str, Any], where: str) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc, where) from None


def _bounded_bytes(request: flask.Request) -> bytes:
    too_big = errors.PayloadTooLarge(
        f"the body is over {MAX_BODY} bytes (1 MiB), the limit",
        details=[{"loc": [], "in": "body", "msg": f"at most {MAX_BODY} bytes"}],
    )
    if (request.content_length or 0) > MAX_BODY:
        raise too_big
    # Also bounds a chunked body that names no length.
    request.max_content_length = MAX_BODY
    try:
        raw = request.get_data(cache=True)
        # The bounded stream stops at the limit quietly; one more byte says whether the body went on.
        if len(raw) >= MAX_BODY and request.stream.read(1):
            raise too_big
    except RequestEntityTooLarge:
        raise too_big from None
    return raw


def _parsed(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.BadRequest(
            f"the body is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}",
            details=[{"loc": [], "in": "body", "msg": "JSON must be UTF-8", "offset": exc.start}],
        ) from None
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise errors.BadRequest(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            details=[{"loc": [], "in": "body", "msg": exc.msg, "line": exc.lineno, "column": exc.colno}],
        ) from None
    except RecursionError:
        raise _too_deep([]) from None


def _int(text: str) -> int | _Unrepresentable:
    digits = len(text.lstrip("-"))
    limit = sys.get_int_max_str_digits() or digits
    if digits > limit:
        return _Unrepresentable(text, f"an integer of {digits} digits; at most {limit} are accepted")
    return int(text)


def _float(text: str) -> float | _Unrepresentable:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return _Unrepresentable(text, "a number too large for a double")
    return value


def _constant(text: str) -> _Unrepresentable:
    return _Unrepresentable(text, f"{text} is not JSON")


def _check_values(data: dict[str, Any], where: str) -> None:
    """Raises for nesting deeper than MAX_DEPTH, then for numbers and text that cannot be stored."""
    bad: list[dict[str, Any]] = []
    for loc, value, depth in _walk(data):
        if depth > MAX_DEPTH:
            raise _too_deep(loc)
        if isinstance(value, _Unrepresentable):
            bad.append({"loc": loc, "in": where, "msg": value.why, "type": "number"})
        elif isinstance(value, str) and not _storable(value):
            bad.append({"loc": loc, "in": where, "msg": "contains a NUL character or an unpaired surrogate",
                        "type": "text"})
        elif isinstance(value, _Key):
            bad.append({"loc": loc, "in": where, "msg": "this key contains a NUL character or an unpaired"
                        " surrogate", "type": "text"})
    if bad:
        where_ = ", ".join(".".join(map(str, d["loc"])) or where for d in bad[:5])
        raise errors.ValidationFailed(f"values that cannot be stored: {where_}", details=bad)


class _Key(str):
    """A dict key that cannot be stored, reported at its own path."""


def _walk(root: Any) -> Iterator[tuple[Loc, Any, int]]:
    # Iterative: a value deeper than the interpreter's recursion limit must not crash the walk.
    stack: list[tuple[Loc, Any, int]] = [([], root, 0)]
    while stack:
        loc, value, depth = stack.pop()
        yield loc, value, depth
        if isinstance(value, dict):
            for key, item in reversed(value.items()):
                if not _storable(key):
                    safe = key.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")
                    yield [*loc, safe], _Key(safe), depth + 1
                    continue
                stack.append(([*loc, key], item, depth + 1))
        elif isinstance(value, list):
            stack.extend(([*loc, index], item, depth + 1) for index, item in reversed(list(enumerate(value))))


def _storable(text: str) -> bool:
    """JSON allows NUL and unpaired surrogates in strings; UTF-8 and Postgres text cannot hold them."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep(loc: Loc) -> errors.BadRequest:
    return errors.BadRequest(
        f"the body nests more than {MAX_DEPTH} levels deep",
        details=[{"loc": loc[:MAX_DEPTH], "in": "body", "msg": f"at most {MAX_DEPTH} levels of arrays and objects"}],
    )


def _aliases(model: type[pydantic.BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
