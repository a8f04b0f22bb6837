"""The OpenAPI 3.1 document, built from the operations the handlers declare (http.Registry).

Request and response schemas are pydantic's JSON schemas of the very models the decorator parses
into and answers with, so the document and the handlers cannot drift apart.
"""

from __future__ import annotations

import json
from typing import Any

import flask
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .api_models import ErrorEnvelope
from .http import STATUS, Operation, Registry
from .settings import Settings

REF = "#/components/schemas/{model}"
ERROR_REF = {"$ref": REF.format(model=ErrorEnvelope.__name__)}


def document(registry: Registry, settings: Settings) -> dict[str, Any]:
    ops = list(registry.operations.values())
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorEnvelope, "serialization")]
    for op in ops:
        wanted.append((op.response, "serialization"))
        if op.body is not None:
            wanted.append((op.body, "validation"))
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    schemas: dict[str, Any] = defs.get("$defs", {})
    paths: dict[str, Any] = {}
    for op in ops:
        paths[f"/{op.name}"] = {
            method.lower(): _operation(op, method, refs, schemas) for method in op.methods
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Paradyze functions", "version": "2.0.0",
                 "description": "Each path is one Cloud Function URL. Bearer JWTs as Supabase issues them."},
        "servers": [{"url": settings.public_url}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def _operation(op: Operation, method: str, refs: dict[Any, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    first = method == op.methods[0]
    answer = {"application/json": {"schema": refs[(op.response, "serialization")]}}
    out: dict[str, Any] = {
        "operationId": op.name if first else f"{op.name}_{method.lower()}",
        "summary": op.summary,
        "tags": ["admin" if op.auth == "admin" else "agents"],
        "security": [{"bearer": []}],
        "responses": {str(status): {"description": op.response.__name__, "content": answer}
                      for status in op.statuses},
    }
    out["responses"].update(_errors(op))
    parameters = [*_parameters(op.query, "query", schemas), *_parameters(op.headers, "header", schemas)]
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": refs[(op.body, "validation")]}}}
    return out


def _errors(op: Operation) -> dict[str, Any]:
    """Every status the one table in http.py can answer, with the error envelope; 413/415 only with a body."""
    codes: dict[int, list[str]] = {}
    for cls, status in STATUS.items():
        if status in (413, 415) and op.body is None:
            continue
        if status == 403 and op.auth != "admin":
            continue
        codes.setdefault(status, []).append(cls.code)
    codes[500] = ["internal"]
    return {str(status): {"description": "error: " + ", ".join(names),
                          "content": {"application/json": {"schema": ERROR_REF}}}
            for status, names in sorted(codes.items())}


def _parameters(model: type[BaseModel] | None, where: str, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    schemas.update(schema.get("$defs", {}))
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        description = prop.pop("description", None)
        if name not in required:
            prop = _without_null(prop)
        param: dict[str, Any] = {"name": name, "in": where, "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter is left out, never sent as null: drop the null branch pydantic adds."""
    branches = [b for b in prop.get("anyOf", []) if b != {"type": "null"}]
    if "anyOf" not in prop or len(branches) != 1:
        return prop
    rest = {k: v for k, v in prop.items() if k not in ("anyOf", "default") or (k == "default" and v is not None)}
    return {**branches[0], **rest}


def response(registry: Registry, settings: Settings) -> flask.Response:
    return flask.Response(json.dumps(document(registry, settings)), mimetype="application/json")
