"""Scheduler authentication: the service role, or a Google OIDC token of the configured service account."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from helpers import Functions, User
from paradyze.settings import get_settings

ACCOUNT = "scheduler@paradyze-test.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def google_keys() -> Iterator[tuple[rsa.RSAPrivateKey, str]]:
    """A signing key and a local stand-in for Google's certificate endpoint on 127.0.0.1."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-google")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    body = json.dumps({"k1": cert.public_bytes(serialization.Encoding.PEM).decode()}).encode()

    class Certs(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Certs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield key, f"http://127.0.0.1:{server.server_address[1]}/certs"
    server.shutdown()


@pytest.fixture
def oidc(google_keys: tuple[rsa.RSAPrivateKey, str], monkeypatch: pytest.MonkeyPatch) -> rsa.RSAPrivateKey:
    settings = get_settings()
    monkeypatch.setattr(settings, "scheduler_service_account", ACCOUNT)
    monkeypatch.setattr(settings, "google_certs_url", google_keys[1])
    return google_keys[0]


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
