"""The HTTP edge: browsers' CORS preflights are answered for the allowed origins only, by flask-cors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import functions_framework
import pytest

from helpers import SOURCE, Functions, User
from paradyze import settings as settings_module

ALLOWED = "https://app.example"


def preflight(client: Any, origin: str, method: str = "POST") -> Any:
    return client.options("/", headers={"Origin": origin, "Access-Control-Request-Method": method,
                                        "Access-Control-Request-Headers": "authorization, content-type"})


@pytest.fixture
def restricted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Functions started with PARADYZE_CORS_ORIGINS naming two origins."""
    monkeypatch.setenv("PARADYZE_CORS_ORIGINS", f"{ALLOWED}, https://admin.example")
    settings_module.get_settings.cache_clear()
    yield lambda name: functions_framework.create_app(name, SOURCE).test_client()
    monkeypatch.undo()
    settings_module.get_settings.cache_clear()


def test_preflight_from_an_allowed_origin_is_answered(restricted: Any) -> None:
    resp = preflight(restricted("create_agent"), ALLOWED)
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "authorization" in resp.headers["Access-Control-Allow-Headers"].lower()
    assert "Origin" in resp.headers.get("Vary", "")


def test_preflight_from_another_origin_gets_no_cors_headers(restricted: Any) -> None:
    for origin in ("https://evil.example", "https://app.example.evil.example", "null"):
        resp = preflight(restricted("create_agent"), origin)
        assert "Access-Control-Allow-Origin" not in resp.headers, origin
        assert "Access-Control-Allow-Methods" not in resp.headers
    spec = restricted("openapi_spec").get("/", headers={"Origin": "https://evil.example"})
    assert spec.status_code == 200 and "Access-Control-Allow-Origin" not in spec.headers
    spec = restricted("openapi_spec").get("/", headers={"Origin": ALLOWED})
    assert spec.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_a_method_the_function_does_not_take_is_not_offered(restricted: Any) -> None:
    resp = preflight(restricted("list_agents"), ALLOWED, method="DELETE")
    assert "Access-Control-Allow-Methods" not in resp.headers


def test_answers_and_errors_carry_the_origin(restricted: Any, alice: User) -> None:
    ok = restricted("list_agents").get("/", headers={**alice.headers, "Origin": ALLOWED})
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == ALLOWED
    # A browser must be able to read a 401's body too.
    denied = restricted("list_agents").get("/", headers={"Origin": ALLOWED})
    assert denied.status_code == 401 and denied.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_star_allows_every_origin_with_a_shared_answer(functions: Functions, alice: User) -> None:
    pre = preflight(functions.client("create_agent"), "https://anywhere.example")
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    resp = functions.client("list_agents").get("/", headers={**alice.headers, "Origin": "https://anywhere.example"})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_a_wrong_method_names_the_allowed_ones(functions: Functions, alice: User) -> None:
    resp = functions.client("create_agent").get("/", headers=alice.headers)
    assert resp.status_code == 400
    assert resp.headers["Allow"] == "POST, OPTIONS"
