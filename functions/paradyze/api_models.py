"""What each function answers (the JSON envelopes around the public models), and the small request parts
(headers, the health query) that no domain model holds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .agents import AgentPublic, AgentRef, Status, agent_id_or_none
from .pages import DEFAULT_LIMIT, MAX_CURSOR, MAX_LIMIT


class CreateHeaders(BaseModel):
    # The same key again returns the first agent; with another body it is a 409.
    idempotency_key: str | None = Field(default=None, alias="Idempotency-Key", min_length=1, max_length=200,
                                        description="Retrying with the same key returns the first agent")


class HealthQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    repair: bool = Field(default=True, description="Restart agents that should run and do not")


class PageQuery(BaseModel):
    """Every list: `limit` rows a page and the `cursor` the previous page's `next_cursor` gave."""

    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Rows in this page")
    cursor: str | None = Field(default=None, min_length=1, max_length=MAX_CURSOR,
                               description="The `next_cursor` of the previous page; leave out for the first")


class AgentListQuery(PageQuery):
    status: Status | None = None
    q: str | None = Field(default=None, max_length=200,
                          description="Words that begin words of the name, in any case (\"tru bot\" finds"
                                      " \"Trump Bot\"), or the agent's whole id")


class VersionsQuery(PageQuery, AgentRef):
    model_config = ConfigDict(extra="forbid")


class EventsQuery(PageQuery):
    agent_id: str | None = Field(default=None, json_schema_extra={"format": "uuid"},
                                 description="Leave out for every agent's events (admin only)")

    @field_validator("agent_id")
    @classmethod
    def _agent_id_is_uuid(cls, value: str | None) -> str | None:
        return agent_id_or_none(value)


class BackupsQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel):
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


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


class AgentList(Page):
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


class VersionList(Page):
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


class EventList(Page):
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


class BackupList(Page):
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


class Pruned(BaseModel):
    events_by_age: int = Field(description="Events past PARADYZE_EVENT_KEEP_DAYS removed, oldest first")
    events_by_count: int = Field(description="Events past an agent's newest PARADYZE_EVENT_KEEP_PER_AGENT removed")
    backups: list[str] = Field(description="Backups past the policy removed, their archives with them")
    complete: bool = Field(description="False when the time budget ran out; the next sweep goes on")


class IdleSweep(BaseModel):
    hibernated: list[str]
    failed: list[str]
    active: list[str] = Field(description="Idle by the platform's count, but the agent reports activity")
    checked: int
    elapsed_ms: int
    complete: bool = Field(description="False when the time budget ran out; the next sweep goes on")
    stuck_finished: list[str] = Field(description="Agents whose transition was stuck and was finished")
    retention: Pruned | None = None


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


class MessagesQuery(AgentRef):
    limit: int = Field(default=100, ge=1, le=1000, description="How many of the latest turns")


class ChatTurn(BaseModel):
    role: Literal["user", "agent"] = Field(description="user: the message sent; agent: one of its replies")
    text: str
    at: datetime


class MessageHistory(BaseModel):
    agent_id: str = Field(json_schema_extra={"format": "uuid"})
    messages: list[ChatTurn] = Field(description="The caller's conversation with the agent, oldest first")


class BackupContentsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backup_id: uuid.UUID
    agent_id: uuid.UUID | None = Field(default=None, description="Also answer this agent's character as backed up")


class Counts(BaseModel):
    characters: int
    versions: int
    agents: int


class BackedUpAgent(BaseModel):
    id: str
    name: str
    owner: str
    character_id: str
    version: int | None = Field(description="The character version the backup holds for it")
    exists: bool = Field(description="The agent exists now")
    current_version: int | None = Field(description="Its character version now, when it exists")
    status: str | None = Field(description="Its status now, when it exists")
    on_restore: str = Field(description="What a restore does with it: comes back, already here, or not restored")


class BackupContents(BaseModel):
    backup_id: str
    agents: list[BackedUpAgent]
    restore_adds: Counts = Field(description="What a restore of this backup would add back now")
    already_present: Counts = Field(description="What the backup holds that exists now, left as it is")
    character: dict[str, Any] | None = Field(description="With agent_id: its character at the backed-up version")
