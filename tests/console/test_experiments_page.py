"""The experiments page shows each variant's score as a table and a chart, and every case's checks."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from console.client import ParadyzeClient
from tests.console.conftest import Backend

APP = Path(__file__).resolve().parents[2] / "console" / "app.py"
BASE = {"name": "Eliza", "bio": ["Helps."], "messageExamples": [[
    {"name": "{{user1}}", "content": {"text": "can you help me?"}},
    {"name": "Eliza", "content": {"text": "sure, what are you working on?"}}]]}


def test_an_experiment_shows_its_scores(console_env: Backend) -> None:
    api = ParadyzeClient(console_env.url, console_env.token, timeout=120)
    ran = api.call("POST", "run_experiment", body={
        "name": "greeting", "base": BASE, "variants": {"as-is": {}, "curt": {"messageExamples": [[
            {"name": "{{user1}}", "content": {"text": "can you help me?"}},
            {"name": "Eliza", "content": {"text": "no."}}]]}},
        "test_cases": [{"name": "helps", "turns": [{"message": "can you help me?",
                                                    "expect": {"contains": ["sure"]}}]}]}, timeout=120)
    assert ran["experiment"]["best"] == "as-is"
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("pages/experiments.py").run()
    assert not at.exception and not at.error
    scores = next(df.value for df in at.dataframe if "Variant" in df.value.columns)
    assert dict(zip(scores["Variant"], scores["Score"], strict=True)) == {"as-is": 1.0, "curt": 0.0}
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart"), "the scores are charted"
