"""What the function API answers, as lenient pydantic models (unknown fields are kept, not rejected)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

STATUSES = ("provisioning", "running", "hibernating", "hibernated", "waking", "error", "deleting")


class _Lenient(BaseModel):
    # The console must keep working when the API grows a field, so extras are allowed.
    model_config = ConfigDict(extra="allow")


class Schedule(_Lenient):
    id: str | None = None
    action: str
    cron: str
    timezone: str = "UTC"
    enabled: bool = True
    next_run_at: datetime | None = None


class Policy(_Lenient):
    idle_timeout_minutes: int = 60
    auto_hibernate: bool = True
    schedules: list[Schedule] = Field(default_factory=list)


class Agent(_Lenient):
    id: str
    owner: str | None = None
    name: str = ""
    status: str = "provisioning"
    desired_state: str | None = None
    status_reason: str | None = None
    url: str | None = None
    runtime: str | None = None
    character_id: str | None = None
    character_version: int | None = None
    restart_count: int = 0
    last_activity_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    policy: Policy = Field(default_factory=Policy)


class Event(_Lenient):
    id: str | int | None = None
    agent_id: str | None = None
    at: datetime
    from_status: str | None = None
    to_status: str | None = None
    actor: str | None = None
    reason: str | None = None
    duration_ms: int | float | None = None


class CharacterVersion(_Lenient):
    version: int
    sha256: str | None = None
    created_at: datetime | None = None
    character: dict[str, Any] = Field(default_factory=dict)


class ChatMessage(_Lenient):
    """One turn of an agent's conversation as the server keeps it."""

    role: str  # "user" or "agent"
    text: str = ""
    at: datetime | None = None


class Reply(_Lenient):
    text: str = ""


class MessageResult(_Lenient):
    replies: list[Reply] = Field(default_factory=list)
    woke: bool = False


class Backup(_Lenient):
    id: str
    location: str | None = None
    characters: int = 0
    versions: int = 0
    agents: int = 0
    sha256: str | None = None
    size_bytes: int = 0
    created_at: datetime | None = None


class Restore(_Lenient):
    backup_id: str
    characters: int = 0
    versions: int = 0
    agents: int = 0


class Counts(_Lenient):
    characters: int = 0
    versions: int = 0
    agents: int = 0


class BackedUpAgent(_Lenient):
    id: str
    name: str = ""
    owner: str | None = None
    version: int | None = None
    exists: bool = False
    current_version: int | None = None
    status: str | None = None
    on_restore: str = ""


class BackupContents(_Lenient):
    backup_id: str
    agents: list[BackedUpAgent] = Field(default_factory=list)
    restore_adds: Counts = Field(default_factory=Counts)
    already_present: Counts = Field(default_factory=Counts)
    character: dict[str, Any] | None = None


class AgentHealth(_Lenient):
    agent_id: str
    name: str = ""
    status: str | None = None
    desired_state: str | None = None
    runtime_state: str | None = None
    answering: bool | None = None
    restarts: int = 0
    memory_bytes: int | None = None
    ok: bool = False
    detail: str | None = None


class HealthReport(_Lenient):
    status: str
    platform: dict[str, Any] = Field(default_factory=dict)
    agents: list[AgentHealth] = Field(default_factory=list)




class Release(_Lenient):
    """A blue/green release or rollback of an agent's character version, with its smoke test."""

    id: str
    agent_id: str
    kind: str = "release"
    status: str = ""
    serving: str | None = None
    reason: str | None = None
    from_version: int | None = None
    to_version: int
    smoke: list[dict[str, Any]] = Field(default_factory=list)
    grace_seconds: int = 0
    keep_until: datetime | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
