"""The OpenAPI document is valid, lists every function with the methods it answers, and types what it takes."""

from __future__ import annotations

import ast
from typing import Any

import pytest
from openapi_spec_validator import validate

from helpers import SOURCE, Functions, User

ERROR_REF = "#/components/schemas/ErrorEnvelope"


def functions_in_main() -> list[str]:
    """The functions main.py serves, read from its source: every def under @functions_framework.http."""
    tree = ast.parse(open(SOURCE).read())
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
            and any(ast.unparse(d) == "functions_framework.http" for d in node.decorator_list)]


@pytest.fixture(scope="module")
def doc(functions: Functions) -> dict[str, Any]:
    return functions.client("openapi_spec").get("/").get_json()


def params(doc: dict[str, Any], name: str, method: str = "get") -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in doc["paths"][f"/{name}"][method].get("parameters", [])}


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_function_is_documented_with_the_methods_it_answers(doc: dict[str, Any], functions: Functions) -> None:
    from local_emulator.app import FUNCTIONS

    served = [name for name in functions_in_main() if name != "openapi_spec"]
    assert len(served) >= 18
    assert {p.strip("/") for p in doc["paths"]} == set(served) == set(FUNCTIONS)
    for name in served:
        client = functions.client(name)
        # Without a token, a method the function takes is a 401; one it does not take is a 400 naming the others.
        answered = {m for m in ("GET", "POST", "PUT", "DELETE") if client.open("/", method=m).status_code == 401}
        assert {m.upper() for m in doc["paths"][f"/{name}"]} == answered, name


def test_query_parameters_are_declared_and_typed(doc: dict[str, Any]) -> None:
    agents = params(doc, "list_agents")
    assert set(agents) == {"status", "q", "limit", "cursor"}
    assert "running" in agents["status"]["schema"]["enum"] and "hibernated" in agents["status"]["schema"]["enum"]
    assert agents["limit"]["schema"]["type"] == "integer" and agents["limit"]["schema"]["maximum"] == 200
    # Every list pages: a bounded limit and a cursor in, and next_cursor out.
    for name in ("list_agents", "agent_events", "character_versions", "list_backups"):
        page = params(doc, name)
        assert page["limit"]["schema"]["maximum"] == 200 and page["cursor"]["schema"]["type"] == "string"
        answer = doc["paths"][f"/{name}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert "next_cursor" in doc["components"]["schemas"][answer.rsplit("/", 1)[1]]["properties"]
    events = params(doc, "agent_events")
    assert set(events) == {"agent_id", "limit", "cursor"} and events["agent_id"]["schema"]["format"] == "uuid"
    logs = params(doc, "agent_logs")
    assert logs["tail"]["schema"]["type"] == "integer" and logs["agent_id"]["required"] is True
    assert params(doc, "get_agent")["agent_id"]["schema"] == {"format": "uuid", "type": "string"}
    for method in ("get", "post"):
        assert params(doc, "health_check", method)["repair"]["schema"]["type"] == "boolean"
    assert params(doc, "create_agent", "post")["Idempotency-Key"]["in"] == "header"


def test_every_answer_has_its_schema_and_every_error_the_envelope(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            assert op["security"] == [{"bearer": []}]
            ok = [s for s in op["responses"] if s.startswith("2")]
            assert ok, (path, method)
            for status, answer in op["responses"].items():
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref.removeprefix("#/components/schemas/") in schemas
                if status[0] in "45":
                    assert ref == ERROR_REF, (path, status)
                else:
                    assert ref != ERROR_REF and schemas[ref.rsplit("/", 1)[1]]["properties"], (path, status)
            for status in ("401", "422", "500"):
                assert status in op["responses"], (path, method, status)
    assert doc["paths"]["/create_agent"]["post"]["responses"].keys() >= {"200", "201", "413", "415"}
    agent = schemas["AgentEnvelope"]["properties"]["agent"]["$ref"]
    assert agent == "#/components/schemas/AgentPublic"
    error = schemas["ErrorBody"]
    assert set(error["required"]) == {"code", "message", "details"}
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer",
                                                              "bearerFormat": "JWT"}


def test_the_answers_match_the_document(doc: dict[str, Any], functions: Functions, alice: User,
                                         admin_token: str) -> None:
    """What the functions answer validates against the schema the document gives for it."""
    from jsonschema import Draft202012Validator

    def check(name: str, resp: Any, method: str = "get") -> None:
        op = doc["paths"][f"/{name}"][method]
        ref = op["responses"][str(resp.status_code)]["content"]["application/json"]["schema"]["$ref"]
        schema = {"$ref": ref, "components": doc["components"]}
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(resp.get_json())]
        assert not errors, (name, resp.status_code, errors[:3])

    check("list_agents", functions.get("list_agents", alice.token, status="running"))
    check("list_backups", functions.get("list_backups", admin_token))
    check("health_check", functions.get("health_check", admin_token, repair="false"))
    check("agent_events", functions.get("agent_events", admin_token, limit=5))
    check("get_agent", functions.get("get_agent", alice.token, agent_id="6f1c1d5e-0000-4000-8000-000000000000"))
    check("wake_agent", functions.post("wake_agent", alice.token, {"agent_id": "x"}), "post")
