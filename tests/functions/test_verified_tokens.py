"""A token checked once is remembered for its lifetime, and no longer: what a client sees of that."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from helpers import Functions
from paradyze.settings import get_settings


def token(exp_in: int) -> str:
    now = int(time.time())
    claims = {"role": "authenticated", "aud": "authenticated", "sub": str(uuid.uuid4()), "iat": now - 60,
              "exp": now + exp_in}
    return jwt.encode(claims, get_settings().jwt_secret_value(), algorithm="HS256")


def list_agents(functions: Functions, bearer: str) -> Any:
    return functions.get("list_agents", bearer)


def test_a_token_used_again_and_again_is_refused_once_it_expires(functions: Functions) -> None:
    # Expired 25 s ago: still inside the 30 s allowed for clock skew, for another 5 s.
    almost = token(exp_in=-25)
    assert list_agents(functions, almost).status_code == 200
    assert list_agents(functions, almost).status_code == 200  # remembered
    time.sleep(6)
    refused = list_agents(functions, almost)
    assert refused.status_code == 401 and "expired" in refused.get_json()["error"]["message"]


def test_a_remembered_token_is_refused_after_the_secret_changes(
        functions: Functions, monkeypatch: pytest.MonkeyPatch) -> None:
    bearer = token(exp_in=600)
    assert list_agents(functions, bearer).status_code == 200
    monkeypatch.setattr(get_settings(), "jwt_secret", SecretStr("another-secret-" + uuid.uuid4().hex))
    assert list_agents(functions, bearer).status_code == 401


def test_a_remembered_tokens_claims_with_another_signature_are_refused(functions: Functions) -> None:
    bearer = token(exp_in=600)
    assert list_agents(functions, bearer).status_code == 200
    head, body, signature = bearer.split(".")
    forged = ".".join([head, body, ("A" if signature[0] != "A" else "B") + signature[1:]])
    assert list_agents(functions, forged).status_code == 401
