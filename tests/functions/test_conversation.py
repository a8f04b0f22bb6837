"""agent_messages: the conversation a caller had with an agent, kept by the platform, scoped like every read."""

from __future__ import annotations

from helpers import Functions, User, fixture_characters
from paradyze import db


def create(functions: Functions, user: User, cleanup: list[str]) -> dict:
    resp = functions.post("create_agent", user.token, {"character": fixture_characters()["eliza-default"]})
    assert resp.status_code == 201, resp.get_json()
    cleanup.append(resp.get_json()["agent"]["id"])
    return resp.get_json()["agent"]


def say(functions: Functions, token: str, agent_id: str, text: str) -> list[str]:
    resp = functions.post("send_message", token, {"agent_id": agent_id, "text": text})
    assert resp.status_code == 200, resp.get_json()
    return [r["text"] for r in resp.get_json()["replies"]]


def history(functions: Functions, token: str, agent_id: str, **params: object) -> list[tuple[str, str]]:
    resp = functions.get("agent_messages", token, agent_id=agent_id, **params)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["agent_id"] == agent_id
    return [(m["role"], m["text"]) for m in body["messages"]]


def test_the_conversation_reads_back_in_order_on_every_read(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    assert history(functions, alice.token, agent["id"]) == []
    first = say(functions, alice.token, agent["id"], "hello, who are you?")
    second = say(functions, alice.token, agent["id"], "and what do you like?")
    expected = [("user", "hello, who are you?"), *[("agent", t) for t in first],
                ("user", "and what do you like?"), *[("agent", t) for t in second]]
    assert history(functions, alice.token, agent["id"]) == expected
    assert history(functions, alice.token, agent["id"]) == expected  # a reload reads the same
    assert history(functions, alice.token, agent["id"], limit=len(second) + 1) == expected[-(len(second) + 1):]


def test_another_user_gets_not_found_and_the_admin_sees_only_its_own_conversation(
        functions: Functions, alice: User, bob: User, admin_token: str, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    say(functions, alice.token, agent["id"], "a private note to my agent")

    resp = functions.get("agent_messages", bob.token, agent_id=agent["id"])
    assert resp.status_code == 404 and "a private note" not in resp.get_data(as_text=True)

    assert history(functions, admin_token, agent["id"]) == []
    say(functions, admin_token, agent["id"], "operator checking in")
    admin_view = history(functions, admin_token, agent["id"])
    assert admin_view[0] == ("user", "operator checking in")
    assert all("private note" not in text for _, text in admin_view)
    assert history(functions, alice.token, agent["id"])[0] == ("user", "a private note to my agent")


def test_bad_requests_say_what_is_wrong(functions: Functions, alice: User) -> None:
    resp = functions.get("agent_messages", alice.token, agent_id="not-a-uuid")
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"][0]["loc"] == ["agent_id"]
    assert functions.get("agent_messages", None, agent_id="00000000-0000-0000-0000-000000000001").status_code == 401


def test_deleting_the_agent_deletes_its_conversation(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    say(functions, alice.token, agent["id"], "soon gone")
    assert functions.post("delete_agent", alice.token, {"agent_id": agent["id"]}).status_code == 200
    with db.pool().connection() as conn:
        left = conn.execute("select count(*) as n from public.agent_messages where agent_id = %s",
                            (agent["id"],)).fetchone()
    assert left["n"] == 0
