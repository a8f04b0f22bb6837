"""A/B experiments: each variant's test agent talks to a fake model whose answers are known, so every
score is known; the results are kept and the test agents deleted."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.model_server import FakeModelServer

from helpers import Functions, User
from paradyze import db

BASE = {"name": "Support", "bio": ["Answers customers' questions."], "system": "You are a support agent."}
CASES = [
    {"name": "refunds", "turns": [{"message": "what is your refund policy?", "expect": {
        "contains": ["refund", "30 days"], "judge": "says how long a customer has to ask for a refund"}}]},
    {"name": "polite", "turns": [{"message": "hello", "expect": {"absent": ["no."]}},
                                 {"message": "thanks", "expect": {"regex": r"^\w+"}}]},
]


def known_answers(prompt: str) -> str | None:
    if prompt.startswith("You judge a chat agent's reply"):
        return "PASS" if "30 days" in prompt.split("Agent reply: ", 1)[1] else "FAIL"
    if "VARIANT-HELPFUL" in prompt:
        return "Our refund policy: 30 days, no questions asked."
    if "VARIANT-TERSE" in prompt:
        return "No."
    return None


def test_variants_are_scored_from_a_model_whose_answers_are_known(
        functions: Functions, alice: User, bob: User, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeModelServer() as model:
        model.script(known_answers)
        # The platform's keys: the reference agents ask the model through them, and so does the judge.
        for var, value in {"OPENROUTER_API_KEY": "sk-or-test", "OPENROUTER_BASE_URL": model.base_url,
                           "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.base_url}.items():
            monkeypatch.setenv(var, value)
        resp = functions.post("run_experiment", alice.token, {
            "name": "tone", "base": BASE, "test_cases": CASES,
            "variants": {"helpful": {"system": "You are helpful. VARIANT-HELPFUL"},
                         "terse": {"system": "You are terse. VARIANT-TERSE"}}})
    assert resp.status_code == 200, resp.get_json()
    experiment = resp.get_json()["experiment"]
    assert experiment["status"] == "done" and experiment["best"] == "helpful"
    scores = {r["variant"]: (r["score"], r["passed"]) for r in experiment["results"]}
    # helpful: refunds 3/3, polite 1 and 1; terse: refunds 0/3, polite 0 then 1.
    assert scores == {"helpful": (1.0, 2), "terse": (0.25, 0)}
    terse = next(r for r in experiment["results"] if r["variant"] == "terse")
    refunds = terse["cases"][0]["turns"][0]
    assert refunds["reply"] == "No." and [c["passed"] for c in refunds["checks"]] == [False, False, False]
    assert refunds["checks"][2]["detail"] == "FAIL"

    # The test agents are gone; the results stay, for their owner only.
    assert functions.get("list_agents", alice.token).get_json()["agents"] == []
    listed = functions.get("list_experiments", alice.token).get_json()["experiments"]
    assert [e["id"] for e in listed] == [experiment["id"]]
    again = functions.get("get_experiment", alice.token, experiment_id=experiment["id"]).get_json()["experiment"]
    assert again["results"] == experiment["results"]
    assert functions.get("get_experiment", bob.token, experiment_id=experiment["id"]).status_code == 404
    assert functions.get("list_experiments", bob.token).get_json()["experiments"] == []


def test_without_a_model_key_the_judge_does_not_rule(functions: Functions, alice: User) -> None:
    case: dict[str, Any] = {"name": "greets", "turns": [{"message": "hi", "expect": {"judge": "is friendly"}}]}
    resp = functions.post("run_experiment", alice.token, {"base": BASE, "test_cases": [case], "variants": {"base": {}}})
    [result] = resp.get_json()["experiment"]["results"]
    check = result["cases"][0]["turns"][0]["checks"][0]
    assert check["passed"] is None and "no model key" in check["detail"]
    assert result["score"] == 1.0  # nothing was ruled on, nothing failed


def test_a_variant_that_is_not_a_character_is_refused_before_any_agent_starts(
        functions: Functions, alice: User) -> None:
    resp = functions.post("run_experiment", alice.token, {"base": BASE, "test_cases": CASES,
                                                          "variants": {"nameless": {"name": ""}}})
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["details"][0]["loc"][:2] == ["variants", "nameless"]
    assert functions.get("list_agents", alice.token).get_json()["agents"] == []


def test_the_sweep_deletes_the_test_agents_of_an_experiment_whose_run_died(
        functions: Functions, alice: User, admin_token: str) -> None:
    agent = functions.post("create_agent", alice.token, {"character": BASE}).get_json()["agent"]
    with db.pool().connection() as conn:
        row = conn.execute(
            "insert into public.experiments (user_id, name, status, base, variants, test_cases, agent_ids, actor,"
            " created_at) values (%s, 'died', 'running', '{}', '{}', '[]', array[%s::uuid], 'test',"
            " now() - interval '2 hours') returning id", (alice.id, agent["id"])).fetchone()
    assert functions.post("hibernate_idle", admin_token).status_code == 200
    assert functions.get("get_agent", alice.token, agent_id=agent["id"]).status_code == 404
    died = functions.get("get_experiment", alice.token, experiment_id=str(row["id"])).get_json()["experiment"]
    assert died["status"] == "failed" and "interrupted" in died["error"]


def test_an_experiment_id_that_is_not_a_uuid_is_a_422_naming_it(functions: Functions, alice: User) -> None:
    # 36 hex digits look like an id's length but are no uuid: the answer says so, never a 500.
    resp = functions.get("get_experiment", alice.token, experiment_id="0" * 36)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"][0]["loc"][-1] == "experiment_id"
    unknown = functions.get("get_experiment", alice.token, experiment_id="00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404
