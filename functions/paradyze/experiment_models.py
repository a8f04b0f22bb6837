"""Models of A/B experiments: the request, and an experiment with its scores as the API shows it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .characters import Character
from .conversations import CaseResult, TestCase


class ExperimentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="experiment", min_length=1, max_length=200)
    base: Character = Field(description="The character every variant starts from")
    variants: dict[str, dict[str, Any]] = Field(
        min_length=1, max_length=5,
        description="Variant name -> the top-level fields it replaces in the base ({} runs the base itself)")
    test_cases: list[TestCase] = Field(min_length=1, max_length=20)

    @field_validator("variants")
    @classmethod
    def _names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in value:
            if not 1 <= len(name) <= 64 or not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"variant name {name!r}: 1-64 letters, digits, '-' or '_'")
        return value


class ExperimentRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    experiment_id: str = Field(json_schema_extra={"format": "uuid"})

    @field_validator("experiment_id")
    @classmethod
    def _a_uuid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError as exc:
            raise ValueError("must be an experiment id (a uuid)") from exc


class ExperimentsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=50, ge=1, le=1000)


class VariantResult(BaseModel):
    variant: str
    score: float = Field(ge=0, le=1, description="The mean of its cases' scores")
    passed: int = Field(description="Cases whose every check passed")
    cases: list[CaseResult]


class ExperimentPublic(BaseModel):
    id: str
    name: str
    status: Literal["running", "done", "failed"]
    best: str | None = Field(description="The variant with the highest score (the first of equals)")
    error: str | None
    variants: dict[str, dict[str, Any]]
    results: list[VariantResult]
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ExperimentPublic:
        return cls(id=str(row["id"]), name=row["name"], status=row["status"], best=row["best"], error=row["error"],
                   variants=row["variants"], results=row["results"], created_at=row["created_at"],
                   finished_at=row["finished_at"])


class ExperimentEnvelope(BaseModel):
    experiment: ExperimentPublic


class ExperimentList(BaseModel):
    experiments: list[ExperimentPublic]
