"""The kept-alive connections to agents, against a real HTTP/1.1 server that closes idle sockets as Node does."""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from paradyze.agent_http import _IDLE_MAX as IDLE_MAX
from paradyze.agent_http import ConnectFailed, KeepAlive, TimedOut


class Agent(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Node answers
    idle_close_s = 0.3  # Node's keepAliveTimeout, shortened
    connections: list[str] = []

    open_now: dict[int, int] = {}  # per server (by its port): connections open now
    lock = threading.Lock()

    def setup(self) -> None:
        super().setup()
        self.connections.append(f"{self.client_address}")
        self.request.settimeout(self.idle_close_s)
        with self.lock:
            self.open_now[self.server.server_address[1]] = self.open_now.get(self.server.server_address[1], 0) + 1

    def finish(self) -> None:
        with self.lock:
            self.open_now[self.server.server_address[1]] -= 1
        super().finish()

    def handle(self) -> None:
        try:
            super().handle()
        except TimeoutError:
            pass  # idle too long: the socket is closed, as Node closes it

    def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/slow":
            time.sleep(1.5)
        answer = b'{"echo": "' + body + b'", "key": "' + self.headers["X-API-KEY"].encode() + b'"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # Node's backlog is 511; socketserver's 5 would refuse a burst of connections


@pytest.fixture
def agent() -> Iterator[str]:
    Agent.connections = []
    server = Server(("127.0.0.1", 0), Agent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def post(http: KeepAlive, url: str, text: str, timeout: float = 10.0) -> dict[str, str]:
    reply = http.request("POST", url, headers={"X-API-KEY": "k1", "Content-Type": "application/json"},
                         body=text.encode(), timeout=timeout)
    assert reply.status_code == 200 and reply.is_success
    return dict(reply.json())


def test_calls_in_a_row_share_one_connection(agent: str) -> None:
    http = KeepAlive()
    try:
        assert [post(http, f"{agent}/m", f"m{i}")["echo"] for i in range(5)] == [f"m{i}" for i in range(5)]
        assert post(http, f"{agent}/m", "x")["key"] == "k1"
    finally:
        http.close()
    assert len(Agent.connections) == 1


def test_a_connection_the_agent_closed_while_idle_is_not_reused(agent: str) -> None:
    http = KeepAlive()
    try:
        post(http, f"{agent}/m", "before")
        time.sleep(Agent.idle_close_s + 0.5)  # the agent has closed it by now
        assert post(http, f"{agent}/m", "after")["echo"] == "after"  # delivered, not a broken connection
    finally:
        http.close()
    assert len(Agent.connections) == 2


def test_no_listener_is_connect_failed_and_no_answer_is_timed_out(agent: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        http = KeepAlive()
        with pytest.raises(ConnectFailed):
            post(http, f"http://127.0.0.1:{port}/m", "hi")
    with pytest.raises(TimedOut):
        post(http, f"{agent}/slow", "hi", timeout=0.3)
    assert post(http, f"{agent}/m", "next")["echo"] == "next"  # the timed-out connection was not kept
    http.close()


def test_no_more_idle_connections_stay_open_than_the_bound(agent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Agent, "idle_close_s", 30.0)  # the agent keeps them: only the client's bound closes any
    http = KeepAlive()
    calls = IDLE_MAX + 6
    try:
        with concurrent.futures.ThreadPoolExecutor(calls) as pool:  # all at once: one connection each
            assert len(list(pool.map(lambda i: post(http, f"{agent}/slow", f"m{i}"), range(calls)))) == calls
        port = int(agent.rsplit(":", 1)[1])
        deadline = time.monotonic() + 10
        while Agent.open_now[port] > IDLE_MAX and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(Agent.connections) == calls and Agent.open_now[port] == IDLE_MAX
    finally:
        http.close()
