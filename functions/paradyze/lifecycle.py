"""Agent lifecycle services: create, hibernate, wake, delete, character updates; every transition recorded.

Each operation on an agent holds that agent's lock (db.agent_lock), reads the row once as the caller
and writes its first step in that transaction (instances.authorised), then writes its progress in
short committed steps (instances.py): the transitional status first, then the runtime action, then
the result. A crash between two steps leaves a row that says what was under way, and reconcile()
finishes it.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from datetime import datetime

import psycopg

from . import db, eliza_character, limits, repository, vault
from .agents import STOPPED, Agent, AgentChange, AgentCreate, AgentPublic, CharacterUpdate
from .auth import PLATFORM_OWNER, SYSTEM, Caller
from .characters import Secrets, canonical_bytes, merge_secrets, sha256_hex, split_secrets
from .db import Conn
from .errors import Conflict, Forbidden
from .instances import (
    alive,
    authorised,
    await_running,
    crash_point,
    finish_delete,
    require_agent,
    start_instance,
    step,
    stop_instance,
    transition,
)
from .queries import get, public
from .reconcile import reconcile_locked
from .runtimes import get_runtime
from .scheduler.sync import sync_stored_agent
from .settings import get_settings
from .storage import get_store

# --- create ----------------------------------------------------------------------------------

def create(caller: Caller, cmd: AgentCreate, idempotency_key: str | None = None) -> tuple[AgentPublic, bool]:
    """Store version 1, insert the rows, start the agent and wait until it answers health.

    Returns (agent, created): a retry with the same Idempotency-Key returns the first agent and
    False. Raises Conflict (key reused with another body), RateLimited, QuotaExceeded,
    AgentStartFailed, RuntimeUnavailable.
    """
    limits.check_rate(caller, "create_agent")
    settings = get_settings()
    user_id = _owner_of(caller, cmd)
    runtime_kind = cmd.runtime or settings.runtime
    get_runtime(runtime_kind)  # an unknown or unavailable backend fails before anything is written
    request_sha = _request_fingerprint(cmd) if idempotency_key else None
    if idempotency_key:
        existing = _existing_for_key(caller, user_id, idempotency_key, request_sha)
        if existing is not None:
            return existing, False

    split = split_secrets(cmd.character)
    eliza_character.check(split.config, split.secrets)  # a 422 before anything is written
    data = canonical_bytes(split.config)
    agent_id, character_id = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        # Nothing to own yet: the owner is the caller (_owner_of), and the platform writes the rows.
        with db.transaction(caller) as conn, db.as_service_role(conn):
            limits.reserve_new_agent(conn, user_id)
            repository.insert_character_with_id(conn, character_id, user_id, split.config["name"])
            uri = get_store().put(character_id, 1, data)
            repository.insert_version(conn, character_id=character_id, version=1, user_id=user_id,
                                      config=split.config, sha256=sha256_hex(data), storage_uri=uri)
            if merge_secrets({}, split.secrets):
                _put_secrets(conn, character_id, user_id, {}, split.secrets)
            repository.insert_agent(
                conn, agent_id=agent_id, user_id=user_id, character_id=character_id, name=split.config["name"],
                runtime=runtime_kind, idle_timeout_minutes=cmd.policy.idle_timeout_minutes,
                auto_hibernate=cmd.policy.auto_hibernate, idempotency_key=idempotency_key,
                request_sha256=request_sha,
            )
            if cmd.policy.schedules:
                repository.replace_schedules(conn, agent_id, user_id,
                                             [s.model_dump() for s in cmd.policy.schedules])
            repository.insert_event(conn, agent_id=agent_id, user_id=user_id, from_status=None,
                                    to_status="provisioning", actor=caller.actor, reason="created",
                                    details={"version": 1, "runtime": runtime_kind})
    except psycopg.errors.UniqueViolation:
        # The same key raced us: the other request created the agent.
        existing = _existing_for_key(caller, user_id, idempotency_key or "", request_sha)
        if existing is None:
            raise
        return existing, False
    crash_point("create:rows")
    if cmd.policy.schedules:
        sync_stored_agent(agent_id)
    with db.agent_lock(agent_id):
        with db.transaction(SYSTEM) as conn:
            agent = require_agent(conn, agent_id)  # a retry of this request may have started it meanwhile
        if agent.status == "provisioning":
            agent = start_instance(agent, actor=caller.actor, reason="created")
    return _public(agent), True


def _existing_for_key(caller: Caller, user_id: str, key: str, request_sha: str | None) -> AgentPublic | None:
    with db.transaction(caller) as conn:
        row = repository.find_by_idempotency_key(conn, user_id, key)
    if row is None:
        return None
    if row.request_sha256 != request_sha:
        raise Conflict("this Idempotency-Key was used for a different request",
                       details=[{"loc": ["headers", "Idempotency-Key"], "msg": "reused with another body"}])
    # The first request may still be starting the agent: wait for it, then answer as it did. If
    # it died before the agent ran, whoever holds the lock first finishes the start.
    with db.agent_lock(row.id):
        _start_if_provisioning(row.id, actor=caller.actor)
    agent = get(caller, row.id)
    if agent.status == "error" and agent.started_at is None:
        # The first try created it but could not start it (a dependency was down): the retry
        # is the caller asking again, so try the start again rather than answer the old error.
        agent = wake(caller, agent.id, reason="create retried")
    return agent


def _start_if_provisioning(agent_id: str, *, actor: str) -> None:
    """Under the agent's lock: finish the start of an agent a retried create found, unless done.

    The request that created the row may have died after launching the agent, so reconcile (which
    looks for that instance in the runtime and adopts it) instead of starting blind. The request
    that inserts the row starts it directly: that scan costs tens of ms.
    """
    with db.transaction(SYSTEM) as conn:
        agent = require_agent(conn, agent_id)
    if agent.status == "provisioning":
        reconcile_locked(agent, actor=actor)


def _request_fingerprint(cmd: AgentCreate) -> str:
    body = json.dumps(cmd.model_dump(mode="json", exclude_unset=True), sort_keys=True).encode()
    # Keyed, because the body holds secrets: the stored fingerprint must not let anyone test guesses.
    return hmac.new(get_settings().secrets_key_value().encode(), body, "sha256").hexdigest()


def _owner_of(caller: Caller, cmd: AgentCreate) -> str:
    """The agent's owner: the calling user, or whom the admin names (the platform's own id if none).

    Raises Forbidden when a user names an owner.
    """
    if caller.user_id:
        if cmd.owner is not None and str(cmd.owner) != caller.user_id:
            raise Forbidden("only the admin can create an agent for another user",
                            details=[{"loc": ["owner"], "msg": "must be omitted or your own id"}])
        return caller.user_id
    return str(cmd.owner or PLATFORM_OWNER)


def _put_secrets(conn: Conn, character_id: str, user_id: str, stored: dict[str, str], sent: Secrets) -> None:
    """The stored secrets with the sent ones applied; the caller writes as service_role."""
    secrets = merge_secrets(stored, sent)
    repository.put_secrets(conn, character_id, user_id, sorted(secrets), vault.seal(secrets))


def _stored_secrets(conn: Conn, character_id: str) -> dict[str, str]:
    row = repository.get_secrets(conn, character_id)
    return vault.unseal(row["ciphertext"]) if row else {}


# --- hibernate / wake / delete ------------------------------------------------------------------

def hibernate(caller: Caller, agent_id: str, *, reason: str = "requested",
              idle_since: datetime | None = None) -> AgentPublic:
    """Stop the agent's compute and keep everything else. Idempotent. Raises NotFound.

    idle_since: hibernate only if the agent has had no activity since then and no message is in
    flight, checked under the lock, so a message that arrived after the idle sweep looked keeps
    the agent awake.
    """
    with db.agent_lock(agent_id):
        with authorised(caller, agent_id) as (conn, agent):
            if agent.status == "hibernated" or (idle_since is not None and (
                    agent.last_activity_at >= idle_since or db.messages_in_flight(conn, agent_id))):
                return public(conn, agent)
            began = time.monotonic()
            if agent.status != "hibernating":
                agent = transition(conn, agent, "hibernating", actor=caller.actor, reason=reason,
                                   change=AgentChange(desired_state="hibernated"))
        crash_point("hibernate:marked")
        db.drain_messages(agent_id)
        stop_instance(agent)
        crash_point("hibernate:stopped")
        return _public(step(agent, "hibernated", actor=caller.actor, reason=reason,
                            duration_ms=int((time.monotonic() - began) * 1000),
                            change=STOPPED.model_copy(update={"desired_state": "hibernated"})))


def wake(caller: Caller, agent_id: str, *, reason: str = "requested", deadline: float | None = None) -> AgentPublic:
    """Start the agent again from its current version; returns once it answers. Idempotent.

    deadline (time.monotonic()): give up waiting then, for the lock or for health, with AgentBusy;
    a start under way is left waking, and the next wake (or reconcile) finishes it.
    Raises NotFound, InvalidTransition, QuotaExceeded (the owner runs as many agents as allowed),
    AgentStartFailed, RuntimeUnavailable, AgentBusy.
    """
    with db.agent_lock(agent_id, timeout=None if deadline is None else max(0.01, deadline - time.monotonic())):
        with authorised(caller, agent_id) as (conn, agent):
            if agent.status == "running" and alive(agent):
                return public(conn, agent)
            resuming = agent.status == "waking"
            if not resuming:
                agent = transition(conn, agent, "waking", actor=caller.actor, reason=reason,
                                   change=AgentChange(desired_state="running"), guard=limits.reserve_running_slot)
        crash_point("wake:marked")
        if resuming and agent.url and alive(agent):  # a start that an earlier wake left under way
            agent = await_running(agent, get_runtime(agent.runtime), actor=caller.actor, reason=reason,
                                  began=time.monotonic(), deadline=deadline)
        else:
            stop_instance(agent)  # a dead or stale instance left from before
            agent = start_instance(agent, actor=caller.actor, reason=reason, deadline=deadline)
    return _public(agent)


def delete(caller: Caller, agent_id: str) -> AgentPublic:
    """Stop the agent and remove its rows, versions and schedules. Raises NotFound."""
    with db.agent_lock(agent_id):
        with authorised(caller, agent_id) as (conn, agent):
            before = public(conn, agent)
            agent = transition(conn, agent, "deleting", actor=caller.actor, reason="deleted",
                               change=AgentChange(desired_state="deleted"))
        crash_point("delete:marked")
        finish_delete(agent, actor=caller.actor)
    return before.model_copy(update={"status": "deleted", "url": None})


def _public(agent: Agent) -> AgentPublic:
    with db.transaction(SYSTEM) as conn:
        return public(conn, agent)


# --- character updates -------------------------------------------------------------------------

def update_character(caller: Caller, cmd: CharacterUpdate) -> AgentPublic:
    """Store a new immutable version; a running agent restarts on it. Raises NotFound."""
    split = split_secrets(cmd.character)
    eliza_character.check(split.config, split.secrets)  # a 422 before anything is written
    data = canonical_bytes(split.config)
    with db.agent_lock(cmd.agent_id):
        with authorised(caller, cmd.agent_id) as (conn, agent):
            version = repository.next_version(conn, agent.character_id)
            uri = get_store().put(agent.character_id, version, data)
            semver = repository.insert_version(conn, character_id=agent.character_id, version=version,
                                               user_id=agent.user_id, config=split.config, sha256=sha256_hex(data),
                                               storage_uri=uri, change=cmd.change)
            if split.secrets:  # none sent: the stored secrets stay as they are
                _put_secrets(conn, agent.character_id, agent.user_id, _stored_secrets(conn, agent.character_id),
                             split.secrets)
            repository.insert_event(conn, agent_id=agent.id, user_id=agent.user_id, from_status=agent.status,
                                    to_status=agent.status, actor=caller.actor,
                                    reason=f"character updated to version {version}", details={"version": version})
            agent = agent.model_copy(update={"current_version": version, "current_semver": semver})
            restart = agent.status == "running"
            if restart:
                agent = transition(conn, agent, "waking", actor=caller.actor, reason=f"restart on version {version}")
        if restart:
            stop_instance(agent)
            agent = start_instance(agent, actor=caller.actor, reason=f"running version {version}")
    return _public(agent)
