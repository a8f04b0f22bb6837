"""What each function answers (the JSON envelopes around the public models), and the small request parts
(headers, the health query) that no domain model holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .agents import AgentPublic


class CreateHeaders(BaseModel):
    # The same key again returns the first agent; with another body it is a 409.
    idempotency_key: str | None = Field(default=None, alias="Idempotency-Key", min_length=1, max_length=200,
                                        description="Retrying with the same key returns the first agent")


class HealthQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    repair: bool = Field(default=True, description="Restart agents that should run and do not")


class AgentEnvelope(BaseModel):
    agent: AgentPublic


class Notice(BaseModel):
    loc: list[str | int] = Field(description="The path in the request the notice is about")
    msg: str


class AgentCreated(BaseModel):
    agent: AgentPublic
    created: bool = Field(description="False when an Idempotency-Key returned an earlier agent (status 200)")
    warnings: list[Notice] = Field(default_factory=list,
                                   description="What of the character the agent runs without (plugins not installed)")


class AgentUpdated(AgentEnvelope):
    warnings: list[Notice] = Field(default_factory=list,
                                   description="What of the character the agent runs without (plugins not installed)")


class AgentList(BaseModel):
    agents: list[AgentPublic]


class Reply(BaseModel):
    # The agent's own message fields come along as they are.
    model_config = ConfigDict(extra="allow")
    text: str


class MessageResult(BaseModel):
    agent_id: str = Field(json_schema_extra={"format": "uuid"})
    replies: list[Reply]
    woke: bool = Field(description="The agent was hibernated and woken for this message")


class CharacterVersion(BaseModel):
    version: int
    semver: str = Field(description="Semantic version: major.minor.patch (see the README's rule)")
    change: Literal["initial", "major", "minor", "patch"] = Field(
        description="What this version changed: named by the user, or inferred from the difference")
    current: bool = Field(description="The version the agent runs (or will, at its next start)")
    sha256: str
    created_at: datetime
    character: dict[str, Any]


class VersionList(BaseModel):
    versions: list[CharacterVersion]


class Event(BaseModel):
    id: int
    agent_id: str
    user_id: str
    at: datetime
    from_status: str | None
    to_status: str | None
    actor: str
    reason: str
    duration_ms: int | None
    details: dict[str, Any]


class EventList(BaseModel):
    events: list[Event]


class LogLines(BaseModel):
    lines: list[str]


class BackupPublic(BaseModel):
    id: str
    location: str
    sha256: str
    size_bytes: int
    characters: int
    versions: int
    agents: int
    created_by: str
    created_at: datetime


class BackupEnvelope(BaseModel):
    backup: BackupPublic


class BackupList(BaseModel):
    backups: list[BackupPublic]


class Restored(BaseModel):
    backup_id: str
    characters: int
    versions: int
    agents: int


class RestoreEnvelope(BaseModel):
    restore: Restored


class AgentHealth(BaseModel):
    agent_id: str
    name: str
    owner: str
    runtime: str
    status: str
    desired_state: str
    restarts: int
    messages: int
    runtime_state: str | None
    answering: bool
    memory_bytes: int | None
    detail: str
    ok: bool


class Repairs(BaseModel):
    restarted: list[str]
    adopted: list[str]
    errored: list[str]
    removed_orphans: list[str]


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    platform: dict[str, Any] = Field(description="The database and migrations, each with ok")
    agents: list[AgentHealth]
    repairs: Repairs | None = None


class IdleSweep(BaseModel):
    hibernated: list[str]
    failed: list[str]
    active: list[str] = Field(description="Idle by the platform's count, but the agent reports activity")
    checked: int
    elapsed_ms: int
    complete: bool = Field(description="False when the time budget ran out; the next sweep goes on")
    stuck_finished: list[str] = Field(description="Agents whose transition was stuck and was finished")


class SyncCounts(BaseModel):
    created: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: list[str]


class SyncEnvelope(BaseModel):
    sync: SyncCounts


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    loc: list[str | int] = Field(description="The path to what was wrong, within `in`")
    msg: str
    type: str | None = None
    in_: Literal["body", "query", "header"] | None = Field(default=None, alias="in")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable: bad_request, validation_failed, not_found, unavailable, ...")
    message: str
    details: list[ErrorDetail]


class ErrorEnvelope(BaseModel):
    """Every 4xx and 5xx answer."""

    error: ErrorBody
