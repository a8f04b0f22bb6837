"""Agent models (Create / stored / Public) and the one table of allowed state transitions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from .characters import Character
from .errors import InvalidTransition
from .scheduler.cron import ScheduleList
from .settings import RuntimeKind

Status = Literal["provisioning", "running", "hibernating", "hibernated", "waking", "error", "deleting"]
PublicStatus = Literal["provisioning", "running", "hibernating", "hibernated", "waking", "error", "deleting", "deleted"]
DesiredState = Literal["running", "hibernated", "deleted"]
# Postgres hands ids back as uuid.UUID; the models and the API speak them as strings.
Id = Annotated[str, BeforeValidator(str)]
OptionalId = Annotated[str | None, BeforeValidator(lambda value: None if value is None else str(value))]

# Every allowed move of an agent's status, in one place. `error` can be left by waking or
# hibernating it (retrying by hand), and anything can start deleting.
TRANSITIONS: dict[str, frozenset[str]] = {
    "provisioning": frozenset({"running", "error", "deleting", "hibernated"}),
    "running": frozenset({"hibernating", "waking", "error", "deleting"}),
    "hibernating": frozenset({"hibernated", "error", "deleting", "running"}),
    "hibernated": frozenset({"waking", "deleting"}),
    "waking": frozenset({"running", "error", "deleting", "hibernated"}),
    "error": frozenset({"waking", "hibernating", "hibernated", "deleting"}),
    "deleting": frozenset({"deleting"}),
}
TRANSITIONAL = frozenset({"provisioning", "hibernating", "waking", "deleting"})


def check_transition(agent_id: str, current: str, target: str) -> None:
    """Raises InvalidTransition unless current -> target is allowed."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(
            f"agent {agent_id} is {current}; it cannot become {target}",
            details=[{"loc": ["status"], "msg": f"{current} -> {target} is not allowed", "status": current}],
        )


class Agent(BaseModel):
    """One stored row of public.agents, with its character's current version (repository loads it)."""

    model_config = ConfigDict(frozen=True)
    id: Id
    user_id: Id
    character_id: Id
    current_version: int
    current_semver: str | None = None  # the current version's semantic version
    instance_id: OptionalId = None  # which of its two runtime identities serves it (see slots)
    name: str
    runtime: RuntimeKind
    runtime_handle: str | None
    url: str | None
    eliza_agent_id: str | None
    status: Status
    desired_state: DesiredState
    status_reason: str | None
    running_version: int | None
    transition_started_at: datetime | None
    last_activity_at: datetime
    restart_count: int
    message_count: int
    inflight_messages: int
    crash_times: list[datetime]
    idle_timeout_minutes: int
    auto_hibernate: bool
    started_at: datetime | None
    idempotency_key: str | None
    request_sha256: str | None
    created_at: datetime
    updated_at: datetime


class AgentChange(BaseModel):
    """The columns a service may change on an agent; only those set are written."""

    runtime_handle: str | None = None
    url: str | None = None
    eliza_agent_id: str | None = None
    desired_state: DesiredState | None = None
    status_reason: str | None = None
    running_version: int | None = None
    transition_started_at: datetime | None = None
    last_activity_at: datetime | None = None
    restart_count: int | None = None
    crash_times: list[datetime] | None = None
    idle_timeout_minutes: int | None = None
    auto_hibernate: bool | None = None
    started_at: datetime | None = None

    def columns(self) -> dict[str, object]:
        return self.model_dump(exclude_unset=True)


# The instance fields that a stopped agent no longer has.
STOPPED = AgentChange(runtime_handle=None, url=None, running_version=None, transition_started_at=None)


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise ValueError("must be an agent id (a uuid)") from exc


class Policy(BaseModel):
    idle_timeout_minutes: int = Field(default=60, ge=1, le=525600)
    auto_hibernate: bool = True
    schedules: ScheduleList = Field(default_factory=list)


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    character: Character
    runtime: RuntimeKind | None = None
    policy: Policy = Field(default_factory=Policy)
    # Only the admin may create an agent for a user; a user's agents are always their own.
    owner: uuid.UUID | None = None


def agent_id_or_none(value: str | None) -> str | None:
    return None if value is None else _uuid(value)


_AGENT_ID = Field(description="The agent's id", json_schema_extra={"format": "uuid"})


class AgentRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = _AGENT_ID

    @field_validator("agent_id")
    @classmethod
    def _agent_id_is_uuid(cls, value: str) -> str:
        return _uuid(value)


class MessageSend(AgentRef):
    text: str = Field(min_length=1, max_length=32_000)
    wake_timeout_s: float = Field(default=60.0, gt=0, le=300)


ChangeKind = Literal["major", "minor", "patch"]


class CharacterUpdate(AgentRef):
    character: Character
    change: ChangeKind | None = Field(
        default=None, description="The kind of change, for the semantic version; inferred from the difference"
                                  " when left out (new name or plugins: major; examples: minor; else patch)")


class PolicyUpdate(AgentRef):
    idle_timeout_minutes: int | None = Field(default=None, ge=1, le=525600)
    auto_hibernate: bool | None = None
    schedules: ScheduleList | None = None


class SchedulePublic(BaseModel):
    id: str
    action: str
    cron: str
    timezone: str
    enabled: bool
    next_run_at: datetime | None = None


class PolicyPublic(BaseModel):
    idle_timeout_minutes: int
    auto_hibernate: bool
    schedules: list[SchedulePublic] = Field(default_factory=list)


class AgentPublic(BaseModel):
    id: str
    owner: str
    name: str
    status: PublicStatus
    desired_state: str
    status_reason: str | None
    url: str | None
    runtime: str
    character_id: str
    character_version: int
    character_semver: str | None = Field(default=None, description="character_version's semantic version")
    running_version: int | None
    restart_count: int
    message_count: int
    last_activity_at: datetime
    started_at: datetime | None
    created_at: datetime
    updated_at: datetime
    policy: PolicyPublic

    @classmethod
    def of(cls, agent: Agent, schedules: list[SchedulePublic]) -> AgentPublic:
        """The public view of a stored agent: its own fields, plus those named otherwise here."""
        return cls(
            **agent.model_dump(include=_SHARED_WITH_PUBLIC), owner=agent.user_id,
            character_version=agent.current_version, character_semver=agent.current_semver,
            policy=PolicyPublic(idle_timeout_minutes=agent.idle_timeout_minutes,
                                auto_hibernate=agent.auto_hibernate, schedules=schedules),
        )


_SHARED_WITH_PUBLIC = set(Agent.model_fields) & set(AgentPublic.model_fields)


class LogsQuery(AgentRef):
    model_config = ConfigDict(extra="ignore")
    tail: int = Field(default=200, ge=1, le=5000)
