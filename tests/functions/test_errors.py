"""Bad input gets the right 4xx, saying what was wrong and where; nothing is half-written."""

from __future__ import annotations

import io
import json

import jwt
import pytest

from helpers import Functions, User, fixture_characters
from paradyze import db
from paradyze.runtimes import get_runtime

CHARACTERS = fixture_characters()


def error_of(resp: object) -> dict:
    body = resp.get_json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_malformed_json_is_400(functions: Functions, alice: User) -> None:
    resp = functions.post("create_agent", alice.token, data='{"character": ')
    assert resp.status_code == 400
    assert "not valid JSON" in error_of(resp)["message"]
    resp = functions.post("create_agent", alice.token, data="[1, 2]")
    assert resp.status_code == 400 and "JSON object" in error_of(resp)["message"]


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer not-a-jwt", "Bearer "])
def test_missing_or_invalid_token_is_401(functions: Functions, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    resp = functions.client("list_agents").get("/", headers=headers)
    assert resp.status_code == 401
    assert error_of(resp)["code"] == "unauthenticated"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_signed_with_another_secret_is_401(functions: Functions, alice: User) -> None:
    forged = jwt.encode({"role": "service_role"}, "not-the-secret", algorithm="HS256")
    resp = functions.get("list_agents", forged)
    assert resp.status_code == 401 and "invalid token" in error_of(resp)["message"]


def test_user_calling_an_admin_function_is_403(functions: Functions, alice: User) -> None:
    for name in ("backup_agents", "hibernate_idle"):
        assert functions.post(name, alice.token).status_code == 403
    assert functions.get("health_check", alice.token).status_code == 403


def test_body_over_one_mib_is_413(functions: Functions, alice: User) -> None:
    big = {"character": {"name": "Big", "bio": "x" * (1024 * 1024)}}
    resp = functions.post("create_agent", alice.token, big)
    assert resp.status_code == 413
    assert "1 MiB" in error_of(resp)["message"]


def test_invalid_character_is_422_naming_each_field(functions: Functions, alice: User) -> None:
    resp = functions.post("create_agent", alice.token,
                          {"character": {"bio": 7, "lore": "one string", "messageExamples": [[{"user": "u"}]]}})
    assert resp.status_code == 422
    err = error_of(resp)
    locs = [d["loc"] for d in err["details"]]
    assert ["character", "name"] in locs
    assert ["character", "bio"] in locs
    assert ["character", "lore"] in locs
    assert ["character", "messageExamples", 0, 0, "content"] in locs
    assert "character.name" in err["message"]
    assert functions.get("list_agents", alice.token).get_json()["agents"] == []


def test_unknown_runtime_and_bad_ids_are_422(functions: Functions, alice: User) -> None:
    resp = functions.post("create_agent", alice.token, {"character": CHARACTERS["eliza-default"], "runtime": "k8s"})
    assert resp.status_code == 422 and ["runtime"] in [d["loc"] for d in error_of(resp)["details"]]
    resp = functions.post("wake_agent", alice.token, {"agent_id": "not-a-uuid"})
    assert resp.status_code == 422 and error_of(resp)["details"][0]["loc"] == ["agent_id"]
    resp = functions.get("get_agent", alice.token)
    assert resp.status_code == 422 and error_of(resp)["details"][0]["loc"] == ["agent_id"]
    resp = functions.post("send_message", alice.token, {"agent_id": "00000000-0000-0000-0000-000000000001",
                                                        "text": ""})
    assert resp.status_code == 422 and ["text"] in [d["loc"] for d in error_of(resp)["details"]]


def test_wrong_method_is_400(functions: Functions, alice: User) -> None:
    resp = functions.client("create_agent").get("/", headers=alice.headers)
    assert resp.status_code == 400 and "POST" in error_of(resp)["message"]


def test_missing_agent_is_404(functions: Functions, alice: User) -> None:
    resp = functions.post("wake_agent", alice.token, {"agent_id": "6f1c1d5e-0000-4000-8000-000000000000"})
    assert resp.status_code == 404 and error_of(resp)["details"][0]["loc"] == ["agent_id"]


def test_agent_that_fails_to_start_is_503_then_409_on_message(
        functions: Functions, alice: User, admin_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = get_runtime("process")
    broken = runtime.settings.model_copy(update={"agent_command": "python3 -c 'import sys; sys.exit(3)'"})
    monkeypatch.setattr(runtime, "settings", broken)
    resp = functions.post("create_agent", alice.token, {"character": CHARACTERS["eliza-default"]})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"].isdigit()
    assert error_of(resp)["code"] == "agent_start_failed"
    monkeypatch.undo()

    agent = functions.get("list_agents", alice.token).get_json()["agents"][0]
    assert agent["status"] == "error" and agent["status_reason"]
    resp = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "hi"})
    assert resp.status_code == 409 and error_of(resp)["code"] == "invalid_transition"
    # Waking it by hand tries again, and with a working command it runs.
    woke = functions.post("wake_agent", alice.token, {"agent_id": agent["id"]})
    assert woke.status_code == 200, woke.get_json()
    assert woke.get_json()["agent"]["status"] == "running"
    functions.post("delete_agent", admin_token, {"agent_id": agent["id"]})


def test_unexpected_errors_are_a_generic_500(functions: Functions, alice: User,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from paradyze import queries

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("password=hunter2 leaked in an exception")

    monkeypatch.setattr(queries, "list_all", boom)
    resp = functions.get("list_agents", alice.token)
    assert resp.status_code == 500
    assert "hunter2" not in resp.get_data(as_text=True)
    assert error_of(resp)["code"] == "internal"


def test_database_down_is_503_with_retry_after(functions: Functions, alice: User,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    def down(*_: object, **__: object) -> None:
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(db, "pool", down)
    resp = functions.get("list_agents", alice.token)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"].isdigit()
    assert "database" in error_of(resp)["message"]
    json.dumps(resp.get_json())


@pytest.mark.parametrize(("raw", "loc"), [
    ('{"character": {"name": "A", "bio": "nul \\u0000 here"}}', ["character", "bio"]),
    ('{"character": {"name": "A", "bio": ["ok", "half \\ud800 pair"]}}', ["character", "bio", 1]),
    ('{"character": {"name": "A", "bio": "b", "extra": {"k": ["\\u0000"]}}}', ["character", "extra", "k", 0]),
])
def test_text_postgres_cannot_store_is_422_not_500(functions: Functions, alice: User, raw: str, loc: list) -> None:
    resp = functions.post("create_agent", alice.token, data=raw)
    assert resp.status_code == 422, resp.get_json()
    assert error_of(resp)["details"][0]["loc"] == loc
    assert functions.get("list_agents", alice.token).get_json()["agents"] == []


def test_retrying_a_create_whose_start_failed_starts_it(
        functions: Functions, alice: User, admin_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = get_runtime("process")
    broken = runtime.settings.model_copy(update={"agent_command": "python3 -c 'import sys; sys.exit(3)'"})
    monkeypatch.setattr(runtime, "settings", broken)
    payload = {"character": CHARACTERS["sam-altman"]}
    first = functions.post("create_agent", alice.token, payload, headers={"Idempotency-Key": "flaky-dependency"})
    assert first.status_code == 503
    monkeypatch.undo()
    retry = functions.post("create_agent", alice.token, payload, headers={"Idempotency-Key": "flaky-dependency"})
    assert retry.status_code == 200, retry.get_json()
    agent = retry.get_json()["agent"]
    assert agent["status"] == "running"
    assert [a["id"] for a in functions.get("list_agents", alice.token).get_json()["agents"]] == [agent["id"]]
    functions.post("delete_agent", admin_token, {"agent_id": agent["id"]})


def test_a_runtime_this_platform_does_not_offer_is_422(functions: Functions, alice: User) -> None:
    resp = functions.post("create_agent", alice.token, {"character": CHARACTERS["sam-altman"], "runtime": "cloud_run"})
    assert resp.status_code == 422
    assert error_of(resp)["details"][0]["loc"] == ["runtime"]
    assert functions.get("list_agents", alice.token).get_json()["agents"] == []


# --- input no parser should choke on: each a 4xx that says what and where, never a 500 ------------

AGENT = "6f1c1d5e-0000-4000-8000-000000000000"


def test_a_100000_deep_array_is_400(functions: Functions, alice: User) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    resp = functions.post("create_agent", alice.token, data='{"character": {"name": "A", "bio": ' + deep + "}}")
    assert resp.status_code == 400
    assert "nests more than 64 levels" in error_of(resp)["message"]


def test_nesting_past_the_limit_names_where(functions: Functions, alice: User) -> None:
    deep = "[" * 70 + "]" * 70
    resp = functions.post("create_agent", alice.token,
                          data='{"character": {"name": "A", "bio": "b", "templates": {"t": ' + deep + "}}}")
    assert resp.status_code == 400
    loc = error_of(resp)["details"][0]["loc"]
    assert loc[:3] == ["character", "templates", "t"] and set(loc[3:]) == {0}


def test_a_5000_digit_integer_is_422_at_its_path(functions: Functions, alice: User) -> None:
    resp = functions.post("update_policy", alice.token, data=f'{{"agent_id": "{AGENT}", '
                          f'"idle_timeout_minutes": {"9" * 5000}}}')
    assert resp.status_code == 422
    detail = error_of(resp)["details"][0]
    assert detail["loc"] == ["idle_timeout_minutes"] and detail["in"] == "body"
    assert "5000 digits" in detail["msg"]
    resp = functions.post("create_agent", alice.token,
                          data='{"character": {"name": "A", "bio": "b", "knowledge": [1, -' + "7" * 5000 + "]}}")
    assert resp.status_code == 422 and error_of(resp)["details"][0]["loc"] == ["character", "knowledge", 1]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_numbers_json_and_postgres_cannot_hold_are_422(functions: Functions, alice: User, number: str) -> None:
    resp = functions.post("create_agent", alice.token,
                          data='{"character": {"name": "A", "bio": "b", "templates": {"n": ' + number + "}}}")
    assert resp.status_code == 422
    assert error_of(resp)["details"][0]["loc"] == ["character", "templates", "n"]


def test_a_body_that_is_not_utf8_is_400_naming_the_byte(functions: Functions, alice: User) -> None:
    raw = '{"character": {"name": "Zoë", "bio": "b"}}'.encode("latin-1")
    resp = functions.post("create_agent", alice.token, data=raw)
    assert resp.status_code == 400
    err = error_of(resp)
    assert "not UTF-8" in err["message"] and "0xeb" in err["message"]
    assert err["details"][0]["offset"] == raw.index(b"\xeb")


def test_a_body_over_one_mib_without_a_length_is_413(functions: Functions, alice: User) -> None:
    body = io.BytesIO(b'{"character": {"name": "A", "bio": "' + b"x" * (2 * 1024 * 1024) + b'"}}')
    # A chunked upload: no Content-Length, the server says where the body ends.
    resp = functions.client("create_agent").post(
        "/", input_stream=body, headers={**alice.headers, "Content-Type": "application/json"},
        environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True})
    assert resp.status_code == 413, resp.get_json()
    assert "1 MiB" in error_of(resp)["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", "application/xml"])
def test_a_body_that_is_not_json_by_its_type_is_415(functions: Functions, alice: User, content_type: str) -> None:
    resp = functions.client("create_agent").post("/", data='{"character": {"name": "A", "bio": "b"}}',
                                                 headers={**alice.headers, "Content-Type": content_type})
    assert resp.status_code == 415
    assert error_of(resp)["details"][0] == {"loc": ["Content-Type"], "in": "header", "msg": "expected application/json"}
    assert functions.get("list_agents", alice.token).get_json()["agents"] == []


@pytest.mark.parametrize(("name", "query", "loc"), [
    ("list_agents", "limit=many", ["limit"]),
    ("list_agents", "limit=0", ["limit"]),
    ("list_agents", "status=sleeping", ["status"]),
    ("list_agents", "q=a%00b", ["q"]),
    ("agent_logs", f"agent_id={AGENT}&tail=-1", ["tail"]),
    ("agent_logs", "agent_id=urn:uuid:x", ["agent_id"]),
    ("agent_events", "limit=1e3", ["limit"]),
    ("health_check", "repair=perhaps", ["repair"]),
    ("get_agent", f"agent_id={AGENT}&agent_id={AGENT}", ["agent_id"]),
    ("list_agents", "limit=5&limit=6", ["limit"]),
])
def test_bad_query_parameters_are_422_naming_each(functions: Functions, admin_token: str,
                                                  name: str, query: str, loc: list) -> None:
    resp = functions.client(name).get(f"/?{query}", headers={"Authorization": f"Bearer {admin_token}"})
    assert resp.status_code == 422, resp.get_json()
    detail = error_of(resp)["details"][0]
    assert detail["loc"] == loc and detail["in"] == "query"


def test_an_idempotency_key_over_200_characters_is_422(functions: Functions, alice: User) -> None:
    resp = functions.post("create_agent", alice.token, {"character": CHARACTERS["eliza-default"]},
                          headers={"Idempotency-Key": "k" * 201})
    assert resp.status_code == 422
    assert error_of(resp)["details"][0] == {**error_of(resp)["details"][0], "loc": ["Idempotency-Key"], "in": "header"}
    assert functions.get("list_agents", alice.token).get_json()["agents"] == []


def test_a_key_postgres_cannot_store_is_422_at_its_path(functions: Functions, alice: User) -> None:
    resp = functions.post("create_agent", alice.token,
                          data='{"character": {"name": "A", "bio": "b", "templates": {"k\\u0000": 1}}}')
    assert resp.status_code == 422
    assert error_of(resp)["details"][0]["loc"] == ["character", "templates", "k\\x00"]


def test_an_answer_off_its_model_is_a_500_not_sent(functions: Functions, alice: User,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from paradyze import queries

    # What the document promises is what goes out: a service that breaks it is a bug, logged, not leaked.
    monkeypatch.setattr(queries, "logs", lambda *_, **__: [{"secret": "hunter2"}])
    resp = functions.get("agent_logs", alice.token, agent_id=AGENT)
    assert resp.status_code == 500 and error_of(resp)["code"] == "internal"
    assert "hunter2" not in resp.get_data(as_text=True)


def test_two_schedules_for_one_action_are_422_not_500(functions: Functions, alice: User,
                                                      cleanup_agents: list[str]) -> None:
    agent = functions.post("create_agent", alice.token, {"character": CHARACTERS["eliza-default"]}).get_json()["agent"]
    cleanup_agents.append(agent["id"])
    two = [{"action": "hibernate", "cron": "0 22 * * *"}, {"action": "hibernate", "cron": "0 23 * * *"}]
    resp = functions.post("update_policy", alice.token, {"agent_id": agent["id"], "schedules": two})
    assert resp.status_code == 422
    assert error_of(resp)["details"][0]["loc"] == ["schedules"]
    assert "at most one schedule per action" in error_of(resp)["details"][0]["msg"]
    many = [{"action": "wake", "cron": f"{i % 60} {i % 24} * * *"} for i in range(10_000)]
    resp = functions.post("update_policy", alice.token, {"agent_id": agent["id"], "schedules": many})
    assert resp.status_code == 422 and error_of(resp)["details"][0]["loc"] == ["schedules"]
    stored = functions.get("get_agent", alice.token, agent_id=agent["id"]).get_json()["agent"]
    assert stored["policy"]["schedules"] == []
    resp = functions.post("create_agent", alice.token,
                          {"character": CHARACTERS["sam-altman"], "policy": {"schedules": two}})
    assert resp.status_code == 422 and error_of(resp)["details"][0]["loc"] == ["policy", "schedules"]


@pytest.mark.parametrize("sub", ["urn:uuid:6f1c1d5e-0000-4000-8000-000000000000",
                                 "{6f1c1d5e-0000-4000-8000-000000000000}", "6f1c1d5e000040008000000000000000"])
def test_a_sub_in_another_uuid_spelling_is_401_not_500(functions: Functions, sub: str) -> None:
    from paradyze.auth import USER_ROLE, mint_token
    from paradyze.settings import get_settings

    resp = functions.get("list_agents", mint_token(get_settings(), role=USER_ROLE, sub=sub))
    assert resp.status_code == 401 and "must be the user's id, a uuid" in error_of(resp)["message"]
