"""Models of blue/green releases: the requests, and a release as the API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .agents import AgentRef, ChangeKind
from .characters import Character
from .conversations import CaseResult, TestCases

_CASES: Any = Field(default_factory=list, max_length=20,
               description="The smoke test's scripted conversations, played against green before the switch")
_GRACE: Any = Field(default=60, ge=0, le=86400,
               description="Seconds blue is kept after the switch, for an instant rollback; 0 stops it at once")


class ReleaseRequest(AgentRef):
    version: int | None = Field(default=None, ge=1, description="A stored version to release (default: the newest)")
    character: Character | None = Field(default=None, description="A new version to store and release")
    change: ChangeKind | None = Field(default=None, description="For the new version's semantic version")
    test_cases: TestCases = _CASES
    grace_seconds: int = _GRACE

    @model_validator(mode="after")
    def _one_source(self) -> ReleaseRequest:
        if self.version is not None and self.character is not None:
            raise ValueError("give a version or a character, not both")
        return self


class RollbackRequest(AgentRef):
    version: int = Field(ge=1, description="The earlier version to return to")
    test_cases: TestCases = _CASES
    grace_seconds: int = _GRACE


class ReleasesQuery(AgentRef):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=50, ge=1, le=1000)


class ReleasePublic(BaseModel):
    id: str
    agent_id: str
    kind: Literal["release", "rollback"]
    status: Literal["starting", "testing", "switched", "done", "failed", "rolled_back"] = Field(
        description="switched: green serves, blue is kept until keep_until; done: blue is stopped;"
                    " failed or rolled_back: blue serves")
    serving: Literal["blue", "green"] = Field(description="Which instance serves, as this release left it")
    reason: str | None
    from_version: int | None
    to_version: int
    smoke: list[CaseResult]
    grace_seconds: int
    keep_until: datetime | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ReleasePublic:
        return cls(id=str(row["id"]), agent_id=str(row["agent_id"]), kind=row["kind"], status=row["status"],
                   serving=row["serving"], reason=row["reason"], from_version=row["from_version"],
                   to_version=row["to_version"], smoke=row["smoke"], grace_seconds=row["grace_seconds"],
                   keep_until=row["keep_until"], created_at=row["created_at"], finished_at=row["finished_at"])


class ReleaseEnvelope(BaseModel):
    release: ReleasePublic


class ReleaseList(BaseModel):
    releases: list[ReleasePublic]
