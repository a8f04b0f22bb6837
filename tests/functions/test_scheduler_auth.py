"""The platform's own service accounts: Cloud Scheduler's and the deployed console's Google OIDC tokens are
admins; anyone else's are not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from helpers import REPO, Functions, User
from paradyze.settings import get_settings
from tests.fakes.google_identity import GoogleIdentity, google_identity

ACCOUNT = "scheduler@paradyze-test.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def google() -> Iterator[GoogleIdentity]:
    with google_identity() as fake:
        yield fake


@pytest.fixture
def oidc(google: GoogleIdentity, monkeypatch: pytest.MonkeyPatch) -> rsa.RSAPrivateKey:
    settings = get_settings()
    monkeypatch.setattr(settings, "scheduler_service_account", ACCOUNT)
    monkeypatch.setattr(settings, "google_certs_url", google.certs_url)
    return google.key


def token(key: rsa.RSAPrivateKey, **overrides: object) -> str:
    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": get_settings().public_url, "email": ACCOUNT,
              "email_verified": True, "sub": "1234", "iat": now, "exp": now + 600, **overrides}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def test_scheduler_oidc_token_is_accepted_as_admin(functions: Functions, oidc: rsa.RSAPrivateKey) -> None:
    resp = functions.post("hibernate_idle", token(oidc))
    assert resp.status_code == 200, resp.get_json()


@pytest.mark.parametrize("bad", [{"email": "intruder@evil.iam.gserviceaccount.com"}, {"email_verified": False}])
def test_another_account_is_403(functions: Functions, oidc: rsa.RSAPrivateKey, bad: dict) -> None:
    assert functions.post("hibernate_idle", token(oidc, **bad)).status_code == 403


@pytest.mark.parametrize("bad", [{"aud": "https://elsewhere.example"}, {"iss": "https://evil.example"},
                                 {"exp": 1000}])
def test_wrong_audience_issuer_or_expired_is_401(functions: Functions, oidc: rsa.RSAPrivateKey, bad: dict) -> None:
    assert functions.post("hibernate_idle", token(oidc, **bad)).status_code == 401


def test_token_signed_by_another_key_is_401(functions: Functions, oidc: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert functions.post("hibernate_idle", token(other)).status_code == 401


def test_users_cannot_call_scheduler_functions(functions: Functions, alice: User) -> None:
    assert functions.post("hibernate_idle", alice.token).status_code == 403


CONSOLE = "console@paradyze-test.iam.gserviceaccount.com"


@pytest.fixture
def console_account(google: GoogleIdentity, monkeypatch: pytest.MonkeyPatch) -> GoogleIdentity:
    """The functions as deployed with a console: they take the console's account as an admin."""
    settings = get_settings()
    monkeypatch.setattr(settings, "console_service_account", CONSOLE)
    monkeypatch.setattr(settings, "scheduler_oidc_audience", "paradyze-test")
    monkeypatch.setattr(settings, "google_certs_url", google.certs_url)
    return google


def test_the_deployed_console_calls_as_its_service_account_with_an_id_token_from_the_metadata_server(
        functions: Functions, console_account: GoogleIdentity, alice: User, cleanup_agents: list[str]) -> None:
    created = functions.post("create_agent", alice.token, {"character": {"name": "Seen", "bio": "b"}})
    assert created.status_code == 201, created.get_json()
    cleanup_agents.append(created.get_json()["agent"]["id"])
    asked = len(console_account.audiences)
    # The console as Cloud Run runs it: no admin token, its audience, the metadata server at hand.
    env = {"PATH": os.environ["PATH"], "PARADYZE_API_AUDIENCE": "paradyze-test", "HOME": "/nonexistent",
           "GCE_METADATA_HOST": console_account.metadata_host, "GCE_METADATA_IP": console_account.metadata_host}
    script = ("from console.settings import ConsoleSettings as C; s = C(); a, b = s.token(), s.token();"
              " print(s.token_source()); print(a if a == b else 'not cached')")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    source, console_token = done.stdout.strip().splitlines()
    assert console_account.audiences[asked:] == ["paradyze-test"], "one ID token, for the functions' audience, kept"
    assert "paradyze-test" in source and console_token not in source

    listed = functions.get("list_agents", console_token).get_json()
    assert created.get_json()["agent"]["id"] in [a["id"] for a in listed["agents"]]  # an admin sees every owner's


def test_the_consoles_account_is_no_admin_where_it_is_not_configured(functions: Functions, oidc: rsa.RSAPrivateKey,
                                                                      google: GoogleIdentity) -> None:
    # Only the scheduler's account is configured: a token of the console's account is someone else's.
    assert functions.post("hibernate_idle", token(oidc, email=CONSOLE)).status_code == 403


def test_a_console_token_for_another_audience_is_401(functions: Functions, console_account: GoogleIdentity) -> None:
    assert functions.get("list_agents", console_account.token(aud="elsewhere", email=CONSOLE)).status_code == 401
