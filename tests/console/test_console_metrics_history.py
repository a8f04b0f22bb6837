"""The Health page's history: scrapes of the real emulator's /metrics turned into rates, means and gauges."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from console.client import ParadyzeClient
from console.metrics_history import MetricsHistory
from helpers import fixture_characters
from tests.console.conftest import Backend

APP = Path(__file__).resolve().parents[2] / "console" / "app.py"


def test_history_shows_an_agents_messages_latency_and_memory_over_time(console_env: Backend) -> None:
    api = ParadyzeClient(console_env.url, console_env.token, timeout=120)
    agent = api.create_agent(fixture_characters()["eliza-default"])
    try:
        history = MetricsHistory(console_env.url)
        api.send_message(agent.id, "hello")
        api.health_check()  # memory is sampled by the health check
        assert history.scrape(), history.error
        for _ in range(3):
            api.send_message(agent.id, "hello again")
        assert history.scrape(), history.error

        sent = history.rate("paradyze_agent_messages_in_total", "agent_id", agent_id=agent.id)
        assert len(sent) == 1 and sent["value"].iloc[0] > 0  # three messages between the two scrapes
        latency = history.mean("paradyze_agent_reply_latency_seconds", "agent_id", agent_id=agent.id)
        assert len(latency) == 1 and 0 < latency["value"].iloc[0] < 60
        memory = history.gauge("paradyze_agent_memory_rss_bytes", "agent_id", agent_id=agent.id)
        assert len(memory) == 2 and (memory["value"] > 1_000_000).all()

        at = AppTest.from_file(str(APP), default_timeout=120)
        at.run()
        at.switch_page("pages/health.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert any(s.value == "Over time" for s in at.subheader)
        chooser = at.selectbox(key="health_history_agent")
        assert agent.id in chooser.options[0] or any(agent.id[:8] in o for o in chooser.options)
    finally:
        api.delete_agent(agent.id)


def test_history_says_why_when_there_is_no_metrics_endpoint() -> None:
    history = MetricsHistory("http://127.0.0.1:9")
    assert not history.scrape() and "cannot reach" in (history.error or "")
    assert history.rate("paradyze_agent_messages_in_total", "agent_id").empty
