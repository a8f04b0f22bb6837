"""A/B experiments: one test agent per variant of a base character, scripted conversations played
against each, a score per variant, the results kept and the test agents deleted."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from . import agent_client, db, experiment_store, lifecycle, repository
from .agents import AgentCreate, Policy
from .auth import PLATFORM_OWNER, SYSTEM, Caller
from .characters import Character, split_secrets
from .conversations import run_case
from .errors import NotFound, ParadyzeError, ValidationFailed
from .experiment_models import ExperimentPublic, ExperimentRequest, VariantResult

log = logging.getLogger(__name__)


def run(caller: Caller, cmd: ExperimentRequest) -> ExperimentPublic:
    """Create each variant's agent, play every case against it, score it, delete it; one variant at a time.

    Raises ValidationFailed (a variant that is not a character that can run), RateLimited and
    QuotaExceeded (test agents count as the caller's agents while they run).
    """
    characters = {name: _variant(cmd.base, name, override) for name, override in cmd.variants.items()}
    with db.transaction(SYSTEM) as conn:
        row = experiment_store.insert(
            conn, user_id=caller.user_id or PLATFORM_OWNER, name=cmd.name, base=split_secrets(cmd.base).config,
            variants=cmd.variants, test_cases=[c.model_dump(mode="json") for c in cmd.test_cases], actor=caller.actor)
    experiment_id = str(row["id"])
    results: list[VariantResult] = []
    error = None
    try:
        for name, character in characters.items():
            results.append(_run_variant(caller, experiment_id, name, character, cmd))
    except ParadyzeError as exc:
        error = f"variant {len(results) + 1} of {len(characters)}: {exc.message}"
    best = max(results, key=lambda r: r.score).variant if results and error is None else None
    with db.transaction(SYSTEM) as conn:
        row = experiment_store.finish(conn, experiment_id, results=[r.model_dump(mode="json") for r in results],
                                      best=best, error=error)
    return ExperimentPublic.from_row(row)


def get(caller: Caller, experiment_id: str) -> ExperimentPublic:
    """Raises NotFound when there is no such experiment of the caller's."""
    with db.transaction(caller) as conn:
        row = experiment_store.get(conn, experiment_id)
    if row is None:
        raise NotFound(f"experiment {experiment_id} not found",
                       details=[{"loc": ["experiment_id"], "msg": "no such experiment"}])
    return ExperimentPublic.from_row(row)


def list_all(caller: Caller, limit: int) -> list[ExperimentPublic]:
    with db.transaction(caller) as conn:
        rows = experiment_store.list_recent(conn, limit)
    return [ExperimentPublic.from_row(r) for r in rows]


def clean_up_abandoned(caller: Caller) -> list[str]:
    """The sweep: delete the test agents of experiments whose request died, and say so in each."""
    with db.transaction(SYSTEM) as conn:
        rows = experiment_store.abandoned(conn)
    for row in rows:
        for agent_id in row["agent_ids"]:
            try:
                lifecycle.delete(caller, str(agent_id))
            except NotFound:
                pass  # deleted by the run itself before it died
        with db.transaction(SYSTEM) as conn:
            experiment_store.finish(conn, str(row["id"]), results=row["results"], best=None,
                                    error="the run was interrupted; its test agents were deleted")
    return [str(r["id"]) for r in rows]


def _variant(base: Character, name: str, override: dict[str, Any]) -> Character:
    merged = {**base.model_dump(mode="json", exclude_unset=True, by_alias=True), **override}
    try:
        return Character.model_validate(merged)
    except ValidationError as exc:
        raise ValidationFailed(f"variant {name!r} is not a valid character", details=[
            {"loc": ["variants", name, *e["loc"]], "msg": e["msg"]} for e in exc.errors()]) from exc


def _run_variant(caller: Caller, experiment_id: str, name: str, character: Character,
                 cmd: ExperimentRequest) -> VariantResult:
    agent, _ = lifecycle.create(caller, AgentCreate(character=character, policy=Policy(auto_hibernate=False)))
    with db.transaction(SYSTEM) as conn:
        experiment_store.add_agent(conn, experiment_id, agent.id)
    try:
        with db.transaction(SYSTEM) as conn:
            row = repository.get_agent(conn, agent.id)
        assert row is not None and row.url is not None
        url, eliza_agent_id = row.url, row.eliza_agent_id
        client = agent_client.get_client()

        def send(user: str, text: str) -> list[str]:
            replies = client.send_message(url, agent.id, text, user_id=user, eliza_agent_id=eliza_agent_id)
            return [str(r.get("text") or "") for r in replies]

        cases = [run_case(send, case, scope=f"experiment:{experiment_id}:{name}") for case in cmd.test_cases]
    finally:
        lifecycle.delete(caller, agent.id)
    return VariantResult(variant=name, score=sum(c.score for c in cases) / len(cases),
                         passed=sum(1 for c in cases if c.passed), cases=cases)
