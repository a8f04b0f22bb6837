"""Every function, fuzzed from its own OpenAPI document over real HTTP: no input makes a 5xx, and every
answer is the status, content type and schema the document promises. Then the inputs a fuzzer rarely
builds (100,000-deep arrays, 5,000-digit integers, non-UTF-8, chunked giants), sent by hand."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from helpers import Emulator, fixture_characters

pytestmark = pytest.mark.e2e

AGENT = "6f1c1d5e-0000-4000-8000-000000000000"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_openapi_document_is_valid_openapi(emulator: Emulator) -> None:
    from openapi_spec_validator import validate

    validate(requests.get(f"{emulator.url}/openapi.json", timeout=10).json())


def test_no_generated_request_is_answered_with_a_server_error(emulator: Emulator, tmp_path: Path) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is in requirements.txt"
    doc = requests.get(f"{emulator.url}/openapi.json", timeout=10).json()
    # Real agents, so that half the generated agent ids reach the code behind the 404; delete_agent
    # gets one of its own, or it would take the others' agent away early in the run.
    agent_id, doomed_id = (create(emulator) for _ in range(2))
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'[dictionaries.agents]\nvalues = ["{agent_id}"]\n\n[dictionaries.doomed]\nvalues = ["{doomed_id}"]\n\n'
        '[parameters]\n'
        '"query.agent_id" = { dictionary = "agents", probability = 0.5 }\n'
        '"body.agent_id" = { dictionary = "agents", probability = 0.5 }\n\n'
        '[[operations]]\ninclude-operation-id = "delete_agent"\n'
        'parameters = { "body.agent_id" = { dictionary = "doomed", probability = 0.5 } }\n'
    )
    try:
        result = subprocess.run(
            [cli, "--config-file", str(config), "run", f"{emulator.url}/openapi.json",
             "-H", f"Authorization: Bearer {emulator.token}",
             "--checks", CHECKS, "--max-examples", "30", "--seed", "20261127", "--no-color",
             "--phases", "examples,coverage,fuzzing", "--request-timeout", "120"],
            capture_output=True, text=True, timeout=1500, cwd=tmp_path,
        )
    finally:
        # The agents the run created (ours and the fuzzer's) are processes: none may outlive the test.
        for agent_id in every_agent(emulator):
            emulator.post("delete_agent", {"agent_id": agent_id})
    assert result.returncode == 0, result.stdout[-8000:] + emulator.tail()
    # Every operation was generated for and sent, query parameters and headers included.
    operations = sum(len(methods) for methods in doc["paths"].values())
    assert operations >= 19
    assert f"Selected: {operations}/{operations}" in result.stdout and f"Tested: {operations}" in result.stdout
    # Only the restore needs data the run cannot make (an archive); the rest met a real agent.
    missing = result.stdout.partition("Missing test data")[2].partition("💡")[0]
    assert "/send_message" not in missing and "/wake_agent" not in missing, result.stdout[-4000:]


def every_agent(emu: Emulator) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = emu.get("list_agents", limit=200, **({"cursor": cursor} if cursor else {})).json()
        ids += [a["id"] for a in page["agents"]]
        if not (cursor := page["next_cursor"]):
            return ids


def create(emu: Emulator) -> str:
    resp = requests.post(f"{emu.url}/create_agent", json={"character": fixture_characters()["eliza-default"]},
                         headers=emu.headers(), timeout=120)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["agent"]["id"])


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    from helpers import free_port

    emu = Emulator(home=tmp_path_factory.mktemp("fuzz") / "home", port=free_port())
    emu.home.mkdir()
    emu.start()
    yield emu
    emu.stop()


def post(emu: Emulator, name: str, data: Any, content_type: str = "application/json",
         **headers: str) -> requests.Response:
    return requests.post(f"{emu.url}/{name}", data=data, timeout=60,
                         headers={**emu.headers(), "Content-Type": content_type, **headers})


def error_of(resp: requests.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


def test_a_100000_deep_array_is_400(running: Emulator) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    resp = post(running, "update_character", f'{{"agent_id": "{AGENT}", "character": {{"name": "A", "bio": {deep}}}}}')
    assert resp.status_code == 400 and "levels deep" in error_of(resp)["message"]
    deep_object = '{"a": ' * 100_000 + "1" + "}" * 100_000
    resp = post(running, "create_agent", f'{{"character": {deep_object}}}')
    assert resp.status_code == 400 and "levels deep" in error_of(resp)["message"]


def test_a_5000_digit_integer_is_422_naming_its_field(running: Emulator) -> None:
    resp = post(running, "update_policy", f'{{"agent_id": "{AGENT}", "idle_timeout_minutes": {"1" * 5000}}}')
    assert resp.status_code == 422
    assert error_of(resp)["details"][0]["loc"] == ["idle_timeout_minutes"]
    resp = requests.get(f"{running.url}/list_agents", params={"limit": "9" * 5000}, headers=running.headers(),
                        timeout=60)
    assert resp.status_code == 422 and error_of(resp)["details"][0]["loc"] == ["limit"]


def test_bodies_that_are_not_utf8_json_are_4xx(running: Emulator) -> None:
    resp = post(running, "send_message", f'{{"agent_id": "{AGENT}", "text": "caf\xe9"}}'.encode("latin-1"))
    assert resp.status_code == 400 and "not UTF-8" in error_of(resp)["message"]
    resp = post(running, "send_message", "\ufeff{}".encode("utf-16"))
    assert resp.status_code == 400
    resp = post(running, "send_message", f'{{"agent_id": "{AGENT}", "text": "hi"}}', content_type="text/xml")
    assert resp.status_code == 415 and error_of(resp)["details"][0]["loc"] == ["Content-Type"]
    resp = post(running, "send_message", b"--x\r\n\r\n--x--", content_type="multipart/form-data; boundary=x")
    assert resp.status_code == 415


def test_huge_bodies_are_413_with_or_without_a_length(running: Emulator) -> None:
    big = b'{"character": {"name": "A", "bio": "' + b"x" * (3 * 1024 * 1024) + b'"}}'
    assert post(running, "create_agent", big).status_code == 413

    def chunks() -> Iterator[bytes]:  # requests sends a generator chunked, with no Content-Length
        for start in range(0, len(big), 64 * 1024):
            yield big[start:start + 64 * 1024]

    resp = post(running, "create_agent", chunks())
    assert resp.status_code == 413 and "1 MiB" in error_of(resp)["message"]
    assert requests.get(f"{running.url}/list_agents", headers=running.headers(), timeout=30).json()["agents"] == []


@pytest.mark.parametrize(("name", "query", "loc"), [
    ("list_agents", "limit=ten", ["limit"]),
    ("list_agents", "status=asleep", ["status"]),
    ("list_agents", "q=%00", ["q"]),
    ("list_agents", "q=a&q=b", ["q"]),
    ("agent_events", "agent_id=%ff%fe", ["agent_id"]),
    ("agent_logs", f"agent_id={AGENT}&tail=1.5", ["tail"]),
    ("get_agent", "agent_id=urn:uuid:6f1c1d5e-0000-4000-8000-000000000000&agent_id=x", ["agent_id"]),
    ("health_check", "repair=2", ["repair"]),
])
def test_bad_query_parameters_are_422_naming_each(running: Emulator, name: str, query: str, loc: list) -> None:
    resp = requests.get(f"{running.url}/{name}?{query}", headers=running.headers(), timeout=60)
    assert resp.status_code == 422, resp.text
    detail = error_of(resp)["details"][0]
    assert detail["loc"] == loc and detail["in"] == "query"
