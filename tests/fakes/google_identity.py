"""Google's side of service-account identity, on 127.0.0.1: the certificate endpoint ID tokens are
checked against, and a Cloud Run metadata server that hands a service account its ID tokens.

- `certs_url` serves `{kid: PEM certificate}` as https://www.googleapis.com/oauth2/v1/certs does.
- The metadata server answers google-auth's probe (`GET /` with `Metadata-Flavor: Google`, echoed
  in the response), the account (`.../service-accounts/default/?recursive=true`: email, aliases,
  scopes) and `GET /computeMetadata/v1/instance/service-accounts/default/identity
  ?audience=A&format=full` with an RS256 token for A of `email`, as Cloud Run's does; a request
  without the `Metadata-Flavor: Google` header is refused (403), as there. Point google-auth at it
  with `GCE_METADATA_HOST` and `GCE_METADATA_IP` (read when google-auth is imported).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

KID = "k1"
ACCOUNT_PATH = "/computeMetadata/v1/instance/service-accounts/default/"
IDENTITY_PATH = ACCOUNT_PATH + "identity"


class GoogleIdentity:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.audiences: list[str] = []  # of every identity request, in order
        self.email = "console@paradyze-test.iam.gserviceaccount.com"
        self.certs_url = ""
        self.metadata_host = ""

    def token(self, **claims: Any) -> str:
        """An ID token as Google signs them; claims override the defaults."""
        now = int(time.time())
        body = {"iss": "https://accounts.google.com", "email": self.email, "email_verified": True,
                "sub": "1234", "iat": now, "exp": now + 3600, **claims}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": KID})

    def _certs(self) -> bytes:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-google")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(1).not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=1)).sign(self.key, hashes.SHA256()))
        return json.dumps({KID: cert.public_bytes(serialization.Encoding.PEM).decode()}).encode()


@contextmanager
def google_identity() -> Iterator[GoogleIdentity]:
    """Both endpoints, on one port, for the life of the block."""
    google = GoogleIdentity()
    certs = google._certs()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            if url.path == "/certs":
                return self._send(200, certs, "application/json")
            if self.headers.get("Metadata-Flavor") != "Google":
                return self._send(403, b"Missing Metadata-Flavor:Google header.", "text/plain")
            if url.path == "/":
                return self._send(200, b"", "text/plain")
            if url.path == ACCOUNT_PATH:  # google-auth reads the account first
                info = {"aliases": ["default"], "email": google.email,
                        "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
                return self._send(200, json.dumps(info).encode(), "application/json")
            if url.path == IDENTITY_PATH:
                audience = parse_qs(url.query).get("audience", [""])[0]
                if not audience:
                    return self._send(400, b"non-empty audience parameter required", "text/plain")
                google.audiences.append(audience)
                return self._send(200, google.token(aud=audience).encode(), "text/plain")
            return self._send(404, b"not found", "text/plain")

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Metadata-Flavor", "Google")
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    google.metadata_host = f"127.0.0.1:{server.server_address[1]}"
    google.certs_url = f"http://{google.metadata_host}/certs"
    try:
        yield google
    finally:
        server.shutdown()
        server.server_close()
