"""Scripted conversations: test cases a synthetic user plays against an agent, and their scores.

A case is one or more turns; each turn is a message and what its reply must (or must not) hold:
keywords, a regex, the absence of words, or a criterion an LLM judge rules on when the platform has
a model key (OPENAI_API_KEY, and OPENAI_BASE_URL for any OpenAI-compatible server). A turn's score
is the share of its checks that pass; a case's is the mean of its turns'; a case passes when every
check of every turn does. Used by release smoke tests (releases.py) and experiments (experiments.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .settings import get_settings

_JUDGE_TIMEOUT = 30.0
_NAMESPACE = uuid.UUID("5f0b7d1e-6a38-4c8e-9a53-2f1c6f3f0c11")


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contains: list[str] = Field(default_factory=list, max_length=20,
                                description="Every one of these must be in the reply (case-insensitive)")
    absent: list[str] = Field(default_factory=list, max_length=20,
                              description="None of these may be in the reply (case-insensitive)")
    regex: str | None = Field(default=None, max_length=500, description="The reply must match (re.search)")
    judge: str | None = Field(default=None, max_length=2000,
                              description="A criterion an LLM judge rules on; skipped without a model key")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return value


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=4000)
    expect: Expect = Field(default_factory=Expect)


class TestCase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    turns: list[Turn] = Field(min_length=1, max_length=20, description="What the synthetic user says, in order")


TestCases = list[TestCase]


class Check(BaseModel):
    check: str
    passed: bool | None = Field(description="None: not ruled on (a judge without a model key)")
    detail: str = ""


class TurnResult(BaseModel):
    message: str
    reply: str
    score: float
    checks: list[Check]


class CaseResult(BaseModel):
    name: str
    score: float = Field(ge=0, le=1)
    passed: bool
    turns: list[TurnResult]
    error: str | None = None


Send = Callable[[str, str], list[str]]  # (synthetic user id, text) -> the reply texts


def synthetic_user(scope: str, case: str) -> str:
    """A user id of its own per case, so each scripted conversation has its own channel."""
    return str(uuid.uuid5(_NAMESPACE, f"{scope}:{case}"))


def run_case(send: Send, case: TestCase, *, scope: str) -> CaseResult:
    """Play the case turn by turn; a turn the agent fails to answer scores 0 and ends the case."""
    user = synthetic_user(scope, case.name)
    turns: list[TurnResult] = []
    for turn in case.turns:
        try:
            reply = "\n".join(send(user, turn.message))
        except Exception as exc:  # noqa: BLE001 - any failure to answer is a failed turn, said in the result
            turns.append(TurnResult(message=turn.message, reply="", score=0.0,
                                    checks=[Check(check="answered", passed=False, detail=str(exc)[:300])]))
            return _case(case.name, turns, error=f"turn {len(turns)} was not answered: {str(exc)[:300]}")
        checks = evaluate(reply, turn.expect, turn.message)
        ruled = [c for c in checks if c.passed is not None]
        score = sum(1 for c in ruled if c.passed) / len(ruled) if ruled else 1.0
        turns.append(TurnResult(message=turn.message, reply=reply, score=score, checks=checks))
    return _case(case.name, turns)


def _case(name: str, turns: list[TurnResult], error: str | None = None) -> CaseResult:
    passed = error is None and all(c.passed is not False for t in turns for c in t.checks)
    return CaseResult(name=name, score=sum(t.score for t in turns) / len(turns), passed=passed, turns=turns,
                      error=error)


def evaluate(reply: str, expect: Expect, message: str) -> list[Check]:
    text = reply.lower()
    checks = [Check(check=f"contains {word!r}", passed=word.lower() in text) for word in expect.contains]
    checks += [Check(check=f"does not contain {word!r}", passed=word.lower() not in text) for word in expect.absent]
    if expect.regex is not None:
        checks.append(Check(check=f"matches /{expect.regex}/", passed=re.search(expect.regex, reply) is not None))
    if expect.judge is not None:
        checks.append(judge(expect.judge, message, reply))
    return checks


def judge(criterion: str, message: str, reply: str) -> Check:
    """Ask the platform's model whether the reply meets the criterion (PASS or FAIL)."""
    env = get_settings().model_env()
    key = env.get("OPENAI_API_KEY")
    name = f"judge: {criterion[:80]}"
    if not key:
        return Check(check=name, passed=None, detail="no model key (OPENAI_API_KEY): not ruled on")
    base = (env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
    prompt = (f"You judge a chat agent's reply.\nCriterion: {criterion}\nUser message: {message}\n"
              f"Agent reply: {reply}\nAnswer with one word: PASS if the reply meets the criterion, else FAIL.")
    try:
        response = httpx.post(f"{base}/chat/completions", timeout=_JUDGE_TIMEOUT,
                              headers={"Authorization": f"Bearer {key}"},
                              json={"model": env.get("OPENAI_SMALL_MODEL") or "gpt-4o-mini",
                                    "messages": [{"role": "user", "content": prompt}]})
        response.raise_for_status()
        verdict = str(response.json()["choices"][0]["message"]["content"]).strip().upper()
    except (httpx.HTTPError, ValueError, LookupError, TypeError) as exc:
        return Check(check=name, passed=None, detail=f"the judge did not answer ({type(exc).__name__})")
    return Check(check=name, passed=verdict.startswith("PASS"), detail=verdict[:40])
