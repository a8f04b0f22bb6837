"""Tokens as an attacker would make them, against the functions: each one refused with a 401."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any

import jwt
import pytest

from helpers import REPO, Functions, User, fixture_characters
from paradyze import admin_tokens
from paradyze.auth import PLATFORM_OWNER
from paradyze.settings import get_settings

ISSUER = "https://abcdefghijklmnop.supabase.co/auth/v1"


def signed(**claims: Any) -> str:
    """A token signed with the platform's own secret, so only the claims can make it fail."""
    return jwt.encode(claims, get_settings().jwt_secret_value(), algorithm="HS256")


def user_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"role": "authenticated", "aud": "authenticated", "sub": str(uuid.uuid4()), "iat": now,
            "exp": now + 600, **overrides}


def error_of(resp: Any) -> dict[str, Any]:
    body = resp.get_json()
    assert "error" in body, body
    return dict(body["error"])


def test_a_well_formed_user_token_is_accepted(functions: Functions) -> None:
    assert functions.get("list_agents", signed(**user_claims())).status_code == 200


def test_a_token_without_exp_is_refused(functions: Functions) -> None:
    never_expires = user_claims()
    del never_expires["exp"]
    resp = functions.get("list_agents", signed(**never_expires))
    assert resp.status_code == 401
    assert "'exp'" in error_of(resp)["message"]
    # Nor can anyone holding the secret make an admin token that never expires.
    resp = functions.get("list_backups", signed(role="service_role", aud=admin_tokens.AUDIENCE,
                                                 iss=admin_tokens.ISSUER, iat=int(time.time()), gen=1))
    assert resp.status_code == 401


@pytest.mark.parametrize("aud", [None, "anon", "paradyze-admin", ["anon"]])
def test_a_user_token_for_another_audience_is_refused(functions: Functions, aud: Any) -> None:
    claims = user_claims(aud=aud) if aud is not None else {k: v for k, v in user_claims().items() if k != "aud"}
    resp = functions.get("list_agents", signed(**claims))
    assert resp.status_code == 401
    assert "audience" in error_of(resp)["message"]


def test_the_issuer_is_checked_when_configured(functions: Functions, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "jwt_issuer", ISSUER)
    other_project = signed(**user_claims(iss="https://qrstuvwxyzabcdef.supabase.co/auth/v1"))
    resp = functions.get("list_agents", other_project)
    assert resp.status_code == 401
    assert ISSUER in error_of(resp)["message"]
    no_issuer = signed(**user_claims())
    assert functions.get("list_agents", no_issuer).status_code == 401
    assert functions.get("list_agents", signed(**user_claims(iss=ISSUER))).status_code == 200


@pytest.mark.parametrize("sub", [
    f"urn:uuid:{uuid.uuid4()}",
    "{" + str(uuid.uuid4()) + "}",
    uuid.uuid4().hex,
    f" {uuid.uuid4()}",
    "alice",
    12345,
    "",
])
def test_a_sub_that_is_not_a_uuid_is_401_not_500(functions: Functions, sub: Any) -> None:
    for name in ("list_agents", "get_agent"):
        resp = functions.get(name, signed(**user_claims(sub=sub)), agent_id=str(uuid.uuid4()))
        assert resp.status_code == 401, (name, resp.get_json())
    resp = functions.post("create_agent", signed(**user_claims(sub=sub)),
                          {"character": fixture_characters()["eliza-default"]})
    assert resp.status_code == 401


def test_an_expired_admin_token_is_refused(functions: Functions) -> None:
    settings = get_settings()
    now = int(time.time())
    expired = signed(role="service_role", aud=admin_tokens.AUDIENCE, iss=admin_tokens.ISSUER, iat=now - 7200,
                     exp=now - 3600, gen=admin_tokens.current_generation(), jti=str(uuid.uuid4()))
    resp = functions.get("list_backups", expired)
    assert resp.status_code == 401 and "expired" in error_of(resp)["message"]
    # A 30-day token, as the emulator used to print, is refused though it has not expired.
    month = signed(role="service_role", aud=admin_tokens.AUDIENCE, iss=admin_tokens.ISSUER, iat=now,
                   exp=now + 30 * 24 * 3600, gen=admin_tokens.current_generation(), jti=str(uuid.uuid4()))
    resp = functions.get("list_backups", month)
    assert resp.status_code == 401
    assert f"{settings.admin_token_ttl_hours:g} hours" in error_of(resp)["message"]


def test_a_service_role_token_that_is_not_an_admin_token_is_refused(functions: Functions) -> None:
    # What Supabase's service_role API key looks like: long-lived, no audience.
    now = int(time.time())
    supabase_key = signed(role="service_role", iss="supabase", iat=now, exp=now + 10 * 365 * 24 * 3600)
    resp = functions.get("list_backups", supabase_key)
    assert resp.status_code == 401 and "admin_token" in error_of(resp)["message"]


def test_revoking_every_admin_token_refuses_the_old_ones(functions: Functions, admin_token: str) -> None:
    assert functions.get("list_backups", admin_token).status_code == 200
    admin_tokens.revoke_all()
    resp = functions.get("list_backups", admin_token)
    assert resp.status_code == 401 and "revoked" in error_of(resp)["message"]
    fresh = admin_tokens.mint(get_settings())
    assert functions.get("list_backups", fresh).status_code == 200


def test_the_mint_command_prints_a_token_that_works_and_revoke_all_ends_it(functions: Functions) -> None:
    env = {**os.environ, "PARADYZE_HOME": str(get_settings().home)}
    command = [sys.executable, "-m", "local_emulator.admin_token"]
    minted = subprocess.run([*command, "--hours", "2"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120, check=True)
    token = minted.stdout.strip()
    assert functions.get("list_backups", token).status_code == 200
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 2 * 3600
    assert token not in minted.stderr and claims["jti"] in minted.stderr  # named, never shown, on stderr

    subprocess.run([*command, "--revoke-all"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                   check=True)
    assert functions.get("list_backups", token).status_code == 401


def test_the_nil_uuid_cannot_see_what_the_admin_created(
        functions: Functions, admin_token: str, alice: User, cleanup_agents: list[str]) -> None:
    resp = functions.post("create_agent", admin_token, {"character": fixture_characters()["eliza-default"]})
    assert resp.status_code == 201, resp.get_json()
    agent = resp.get_json()["agent"]
    cleanup_agents.append(agent["id"])
    assert agent["owner"] == PLATFORM_OWNER

    nil = signed(**user_claims(sub=PLATFORM_OWNER))
    assert functions.get("list_agents", nil).status_code == 401
    assert functions.get("get_agent", nil, agent_id=agent["id"]).status_code == 401
    assert functions.post("send_message", nil, {"agent_id": agent["id"], "text": "hi"}).status_code == 401
    # A real user sees nothing of it either.
    assert functions.get("get_agent", alice.token, agent_id=agent["id"]).status_code == 404
