"""The console reaches each function at one base URL (emulator, compose) or at its own Cloud Run service."""

from __future__ import annotations

from console.client import ParadyzeClient


def test_one_base_url_puts_the_function_in_the_path() -> None:
    assert ParadyzeClient("http://127.0.0.1:8080/", None).url("list_agents") == "http://127.0.0.1:8080/list_agents"


def test_a_template_names_each_functions_own_service() -> None:
    client = ParadyzeClient("https://paradyze-{function}-123456789.us-central1.run.app", None)
    assert client.url("health_check") == "https://paradyze-health-check-123456789.us-central1.run.app"
