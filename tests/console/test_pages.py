"""Every console page driven with Streamlit's AppTest against the real local emulator."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from console.client import ParadyzeClient
from console.models import Agent
from console.settings import get_console_settings
from tests.console.conftest import Backend
from tests.console.fake_api import TOKEN, FakeServer

APP = Path(__file__).resolve().parents[2] / "console" / "app.py"
PAGES = ["agents", "create_agent", "agent_detail", "releases", "backups", "health", "costs"]
FIXTURE = "eliza-default.character.json"
# Creating or waking an agent waits for it to answer health.
TIMEOUT = 120


def _app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def _open(page: str, **query: str) -> AppTest:
    at = _app()
    at.query_params.update(query)
    at.run()
    if page != "agents":
        at.switch_page(f"views/{page}.py").run()
    return at


def _assert_clean(at: AppTest) -> None:
    """No Streamlit exception and no error box: what an operator would call a broken page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _button(at: AppTest, label: str):  # noqa: ANN202 - AppTest's Button type is internal
    return next(b for b in at.button if b.label == label)


@pytest.fixture
def api(console_env: Backend) -> ParadyzeClient:
    return ParadyzeClient(console_env.url, console_env.token, timeout=TIMEOUT)


@pytest.fixture
def agent(api: ParadyzeClient) -> Iterator[Agent]:
    """An agent made through the UI from a fixture file, deleted afterwards."""
    before = {a.id for a in api.list_agents()}
    at = _open("create_agent")
    at.radio(key="cc_origin").set_value("Fixture").run()
    at.selectbox(key="cc_fixture").set_value(FIXTURE).run()
    assert at.text_input(key="cc_name").value == "Eliza"
    at.button(key="cc_create").click().run()
    _assert_clean(at)
    assert "Created **Eliza**" in at.success[0].value
    steps = [m.value for m in at.markdown]
    # Each step of the start, as it happened, with the time it took so far.
    assert any(s.startswith("🔵 provisioning — provisioning") for s in steps), steps
    assert any(s.startswith("🟢 running — answering (it passed its health check) · ") for s in steps), steps
    created = [a for a in api.list_agents() if a.id not in before]
    assert [a.name for a in created] == ["Eliza"]
    yield created[0]
    try:
        api.delete_agent(created[0].id)
    except Exception:  # already deleted by the test
        pass


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_cleanly(console_env: Backend, page: str) -> None:
    at = _open(page)
    _assert_clean(at)
    assert at.title, f"{page} shows no title"


def test_created_agent_is_in_the_table_running(agent: Agent) -> None:
    at = _open("agents")
    _assert_clean(at)
    table = at.dataframe[0].value
    row = table[table["ID"] == agent.id].iloc[0]
    assert row["Name"] == "Eliza"
    assert row["Status"] == "🟢 running"
    assert row["Runtime"] == "process" and row["Version"] == 1


def test_search_and_status_filter(agent: Agent) -> None:
    at = _open("agents")
    at.text_input(key="agents_q").set_value("no agent is called this").run()
    assert not at.dataframe
    assert "No agent matches these filters." in [i.value for i in at.info]
    at.text_input(key="agents_q").set_value("").run()
    at.multiselect(key="agents_status").set_value(["hibernated"]).run()
    assert not at.dataframe or agent.id not in set(at.dataframe[0].value["ID"])
    at.multiselect(key="agents_status").set_value(["running"]).run()
    assert agent.id in set(at.dataframe[0].value["ID"])


def test_no_match_offers_to_clear_the_filters(agent: Agent) -> None:
    at = _open("agents")
    at.multiselect(key="agents_runtime").set_value(["cloud_run"]).run()
    at.text_input(key="agents_q").set_value("Eliza").run()
    assert not at.dataframe
    at.button(key="agents_clear").click().run()
    _assert_clean(at)
    assert at.text_input(key="agents_q").value == "" and at.multiselect(key="agents_runtime").value == []
    row = at.dataframe[0].value.set_index("ID").loc[agent.id]
    assert (row["Name"], row["Version"], row["Owner"]) == ("Eliza", 1, "platform")
    assert row["URL"].startswith("http://127.0.0.1:") and row["$/month"] > 0


def test_hibernate_then_wake_from_the_table(agent: Agent, api: ParadyzeClient) -> None:
    at = _open("agents")
    at.multiselect(key="agents_selected").set_value([agent.id]).run()
    _button(at, "Hibernate").click().run()
    _assert_clean(at)
    assert at.success[0].value == "Hibernate: 1 of 1 agents succeeded."
    assert api.get_agent(agent.id).status == "hibernated"
    table = at.dataframe[-1].value
    assert table[table["ID"] == agent.id].iloc[0]["Status"] == "💤 hibernated"

    at.multiselect(key="agents_selected").set_value([agent.id]).run()
    _button(at, "Wake").click().run()
    _assert_clean(at)
    assert at.success[0].value == "Wake: 1 of 1 agents succeeded."
    assert api.get_agent(agent.id).status == "running"


def test_agent_deleted_elsewhere_drops_out_of_the_selection(agent: Agent, api: ParadyzeClient) -> None:
    at = _open("agents")
    at.multiselect(key="agents_selected").set_value([agent.id]).run()
    assert not _button(at, "Hibernate").disabled
    api.delete_agent(agent.id)  # someone else deletes it while the operator looks at the table
    at.run()
    _assert_clean(at)
    assert all(agent.id not in picker.value for picker in at.multiselect)
    assert all(b.disabled for b in at.button if b.label in ("Hibernate", "Wake", "Delete"))


def test_failed_action_is_reported_per_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure the emulator cannot be made to produce on demand, injected by the fake API."""
    with FakeServer() as fake:
        monkeypatch.setenv("PARADYZE_API_URL", fake.url)
        monkeypatch.setenv("PARADYZE_ADMIN_TOKEN", TOKEN)
        get_console_settings.cache_clear()
        client = ParadyzeClient(fake.url, TOKEN)
        first, second = (client.create_agent({"name": n, "bio": "b"}) for n in ("First", "Second"))
        fake.api.fail_next["hibernate_agent"] = (
            503,
            {"error": {"code": "runtime_unavailable", "message": "the runtime is down"}},
            {"Retry-After": "30"},
        )
        try:
            at = _open("agents")
            at.multiselect(key="agents_selected").set_value([first.id, second.id]).run()
            _button(at, "Hibernate").click().run()
        finally:
            get_console_settings.cache_clear()
    assert not at.exception
    assert at.warning[0].value == "Hibernate: 1 of 2 agents succeeded."
    results = at.dataframe[0].value.set_index("agent")
    assert results.loc["First", "result"] == "❌ failed"
    assert (
        results.loc["First", "message"]
        == "the runtime is down — A dependency is down or busy; try again in 30 seconds."
    )
    assert results.loc["Second", "result"] == "✅ 💤 hibernated"


def test_delete_asks_for_the_name_and_the_confirmation_does_not_stay_armed(
    agent: Agent, api: ParadyzeClient
) -> None:
    other = api.create_agent({"name": "Bystander", "bio": "must survive"})
    try:
        at = _open("agents")
        at.multiselect(key="agents_selected").set_value([agent.id]).run()
        _button(at, "Delete").click().run()
        _assert_clean(at)
        listed = "\n".join(m.value for m in at.markdown)
        assert f"**Eliza** · 🟢 running · `{agent.id}`" in listed
        go = _button(at, "Delete for good")
        assert go.disabled  # nothing typed yet
        at.text_input(key="delete_typed_0").set_value("Eliz").run()
        assert _button(at, "Delete for good").disabled
        at.text_input(key="delete_typed_0").set_value("Eliza").run()
        _button(at, "Delete for good").click().run()
        _assert_clean(at)
        assert at.success[0].value == "Delete: 1 of 1 agents succeeded."
        assert agent.id not in {a.id for a in api.list_agents()}

        # The next delete starts from nothing: a new dialog, empty, for the newly picked agent.
        at.multiselect(key="agents_selected").set_value([other.id]).run()
        _button(at, "Delete").click().run()
        assert at.text_input(key="delete_typed_1").value == ""
        assert _button(at, "Delete for good").disabled
        _button(at, "Cancel").click().run()
        assert not [b for b in at.button if b.label == "Delete for good"]
        assert other.id in {a.id for a in api.list_agents()}
    finally:
        api.delete_agent(other.id)


def test_chat_wakes_a_hibernated_agent_and_the_history_survives_a_reload(agent: Agent, api: ParadyzeClient) -> None:
    api.hibernate_agent(agent.id)
    at = _open("agent_detail", agent_id=agent.id)
    _assert_clean(at)
    at.chat_input[0].set_value("Hello, who are you?").run()
    _assert_clean(at)
    said = [m.markdown[0].value for m in at.chat_message]
    assert said[0] == "Hello, who are you?" and len(said) >= 2 and said[-1].strip()
    assert "Eliza woke up from hibernation to answer." in [s.value for s in at.success]
    assert {m.label: m.value for m in at.metric}["Status"] == "🟢 running"  # re-read after the message
    assert api.get_agent(agent.id).status == "running"

    reloaded = _open("agent_detail", agent_id=agent.id)  # a new session, as a reload or another tab
    assert [m.markdown[0].value for m in reloaded.chat_message] == said


def test_detail_shows_timeline_versions_diff_and_logs(agent: Agent, api: ParadyzeClient) -> None:
    latest = api.character_versions(agent.id)[-1].character
    at = _open("agent_detail", agent_id=agent.id)
    _assert_clean(at)
    edited = {**latest, "topics": [*latest.get("topics", []), "console testing"]}
    at.text_area(key=f"edit_{agent.id}_1").set_value(json.dumps(edited, indent=2)).run()
    at.button(key="save_version").click().run()
    _assert_clean(at)
    # Everything on the page was read again after the save: the header, the versions, the diff.
    assert "Saved v2." in [s.value for s in at.success]
    assert {m.label: m.value for m in at.metric}["Version"] == "v2"
    assert list(at.dataframe[1].value["Version"]) == [1, 2]
    timeline = at.dataframe[0].value
    assert "🔵 provisioning → 🟢 running" in set(timeline["Change"])
    diff = next(c.value for c in at.code if c.language == "diff")
    assert '+    "console testing"' in diff and diff.startswith("--- v1\n+++ v2")
    logs = next(c.value for c in at.code if c.language == "log")
    assert logs.strip()


def test_policy_editor_saves_idle_timeout(agent: Agent, api: ParadyzeClient) -> None:
    at = _open("agent_detail", agent_id=agent.id)
    at.number_input(key=f"idle_{agent.id}").set_value(15)
    at.toggle(key=f"auto_{agent.id}").set_value(False)
    _button(at, "Save policy").click().run()
    _assert_clean(at)
    policy = api.get_agent(agent.id).policy
    assert (policy.idle_timeout_minutes, policy.auto_hibernate) == (15, False)
    assert "Policy saved: 0 schedules." in [s.value for s in at.success]


def test_schedules_form_refuses_unfinished_rows_then_saves_in_the_zone(agent: Agent, api: ParadyzeClient) -> None:
    at = _open("agent_detail", agent_id=agent.id)
    _button(at, "＋ Add a schedule").click().run()
    _button(at, "＋ Add a schedule").click().run()
    first, second = [s.key for s in at.selectbox if s.key and s.key.startswith("sched_action_")]
    at.selectbox(key=first).set_value("hibernate").run()
    _button(at, "Save policy").click().run()
    # The row without an action is an error, never dropped: nothing is saved.
    assert any("schedule 2: choose an action" in e.value for e in at.error)
    assert api.get_agent(agent.id).policy.schedules == []

    uid = second.removeprefix("sched_action_")
    at.selectbox(key=second).set_value("wake").run()
    at.selectbox(key=f"sched_preset_{uid}").set_value("Weekdays at 08:00").run()
    at.selectbox(key=f"sched_tz_{uid}").set_value("Europe/Paris").run()
    preview = [c.value for c in at.caption if c.value.startswith("Wake at 08:00")]
    assert preview and "Monday to Friday (Europe/Paris)" in preview[0] and "08:00 CE" in preview[0]
    _button(at, "Save policy").click().run()
    _assert_clean(at)
    saved = {s.action: s for s in api.get_agent(agent.id).policy.schedules}
    assert (saved["hibernate"].cron, saved["hibernate"].timezone) == ("0 22 * * *", "UTC")
    assert (saved["wake"].cron, saved["wake"].timezone) == ("0 8 * * 1-5", "Europe/Paris")


def test_create_form_checks_fields_before_sending(api: ParadyzeClient) -> None:
    count = len(api.list_agents())
    at = _open("create_agent")
    at.radio(key="cc_origin").set_value("Blank").run()
    errors = [e.value for e in at.error]
    assert "**name**: required" in errors and "**bio**: required" in errors
    assert at.button(key="cc_create").disabled
    at.text_input(key="cc_name").set_value("Blanky").run()
    at.text_area(key="cc_bio").set_value("A test agent.").run()
    at.text_area(key="cc_rest").set_value("{not json").run()
    assert any("not valid JSON" in e.value for e in at.error)
    assert at.button(key="cc_create").disabled
    assert len(api.list_agents()) == count


def test_upload_too_large_shows_the_servers_reason(api: ParadyzeClient) -> None:
    count = len(api.list_agents())
    big = {"name": "Big", "bio": "b", "knowledge": ["x" * 1000] * 1200}
    at = _open("create_agent")
    at.radio(key="cc_origin").set_value("Upload").run()
    at.file_uploader(key="cc_upload").set_value(
        ("big.character.json", json.dumps(big).encode(), "application/json")
    )
    at.run()
    assert at.text_input(key="cc_name").value == "Big"
    at.button(key="cc_create").click().run()
    assert not at.exception
    message = at.error[0].value
    assert message.startswith("**Creating the agent failed:**") and "1 MiB" in message
    assert "Traceback" not in message
    assert len(api.list_agents()) == count


def test_backup_preview_restore_and_roll_one_agent_back(agent: Agent, api: ParadyzeClient) -> None:
    before = len(api.list_backups())
    at = _open("backups")
    at.button(key="backup_run").click().run()
    _assert_clean(at)
    assert at.success[0].value.startswith("Backup `")
    backups = api.list_backups()
    assert len(backups) == before + 1
    newest = max(backups, key=lambda b: b.created_at or 0)
    assert newest.agents >= 1 and newest.size_bytes > 0
    assert newest.id in set(at.dataframe[0].value["ID"])

    # Over the current state the preview says why nothing would come back, and restore is off.
    at.selectbox(key="restore_choice").set_value(newest.id).run()
    said = "\n".join(m.value for m in at.markdown)
    assert "**A restore now would add back 0 agents, 0 characters and 0 versions.**" in said
    assert "a restore only adds back what is missing" in said
    assert at.checkbox(key=f"restore_confirm_{newest.id}").disabled

    # One agent changed since the backup: roll it back to the backup's version.
    latest = api.character_versions(agent.id)[-1].character
    api.update_character(agent.id, {**latest, "bio": ["Changed after the backup."]})
    at.run()
    assert at.selectbox(key="rollback_agent").value == agent.id
    _button(at, "Roll Eliza back to v1").click().run()
    _assert_clean(at)
    assert "Eliza now runs the backup's character (v1) as v3." in [s.value for s in at.success]
    assert api.character_versions(agent.id)[-1].character["bio"] == latest["bio"]


def test_health_and_costs_show_the_agent(agent: Agent) -> None:
    at = _open("health")
    _assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Platform"] == "✅ ok" and metrics["Database"] == "✅ up"
    rows = at.dataframe[0].value
    assert "Eliza" in set(rows["Name"])

    at = _open("costs")
    _assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Estimated / month"].startswith("$")
    assert "Eliza" in set(at.dataframe[0].value["Agent"])


def test_release_page_rolls_back_and_lists_it(agent: Agent, api: ParadyzeClient) -> None:
    latest = api.character_versions(agent.id)[-1].character
    api.update_character(agent.id, {**latest, "bio": ["A second bio."]})
    at = _open("releases", agent_id=agent.id)
    _assert_clean(at)
    assert "No releases yet" in at.info[0].value
    assert at.selectbox(key=f"rollback_version_{agent.id}").value == 1
    at.button(key="rollback_run").click().run()
    _assert_clean(at)
    assert any(s.value.startswith("Rollback to v1: ") for s in at.success)
    row = at.dataframe[0].value.iloc[0]
    assert (row["Kind"], row["Versions"]) == ("rollback", "v2 → v1")
    assert api.get_agent(agent.id).character_version == 1


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    """The console pointed at the in-memory API, for what the emulator cannot be made to show."""
    with FakeServer() as server:
        monkeypatch.setenv("PARADYZE_API_URL", server.url)
        monkeypatch.setenv("PARADYZE_ADMIN_TOKEN", TOKEN)
        get_console_settings.cache_clear()
        yield server
    get_console_settings.cache_clear()


def test_an_unknown_agent_link_says_not_found_and_shows_no_other_agent(fake: FakeServer) -> None:
    ParadyzeClient(fake.url, TOKEN).create_agent({"name": "Someone", "bio": "b"})
    at = _open("agent_detail", agent_id="11111111-2222-3333-4444-555555555555")
    assert not at.exception
    assert at.error[0].value.startswith("**Agent `11111111-2222-3333-4444-555555555555` not found.**")
    assert not at.metric and not at.selectbox


def test_looking_at_health_never_repairs_and_repair_is_a_button(fake: FakeServer) -> None:
    at = _open("health")
    _assert_clean(at)
    calls = [(body if isinstance(body, dict) else {}) for name, _, body in fake.api.requests if name == "health_check"]
    assert calls and all(c.get("repair") == "false" for c in calls)
    at.button(key="health_repair").click().run()
    repairs = [b for name, _, b in fake.api.requests if name == "health_check" and b == {}]
    assert len(repairs) == 1
    assert "Repair ran" in at.success[0].value


def test_costs_warn_when_little_has_been_observed(fake: FakeServer) -> None:
    ParadyzeClient(fake.url, TOKEN).create_agent({"name": "Fresh", "bio": "b"})
    at = _open("costs")
    _assert_clean(at)
    assert at.warning[0].value.startswith("**Only ") and "observed.**" in at.warning[0].value
    assert at.number_input(key="cost_rate_us-central1_1.0_1.0").value == pytest.approx(0.072)
    at.selectbox(key="cost_region").set_value("europe-west2").run()
    assert at.number_input(key="cost_rate_europe-west2_1.0_1.0").value == pytest.approx(0.1008)


def test_backend_down_shows_a_banner_on_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PARADYZE_API_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("PARADYZE_ADMIN_TOKEN", "any-token")
    get_console_settings.cache_clear()
    try:
        for page in PAGES:
            at = _open(page)
            assert not at.exception, page
            banner = at.error[0].value
            assert f"not answering at http://127.0.0.1:{port}" in banner, page
            assert "python -m local_emulator" in banner
    finally:
        get_console_settings.cache_clear()


def test_a_console_with_an_audience_but_no_google_identity_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("PARADYZE_API_URL", f"http://{closed}")
    monkeypatch.setenv("PARADYZE_API_AUDIENCE", "paradyze-dev")
    monkeypatch.setenv("GCE_METADATA_IP", closed)  # no metadata server answers: not on Cloud Run
    monkeypatch.delenv("PARADYZE_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    get_console_settings.cache_clear()
    try:
        at = _open("agents")
        assert not at.exception
        banner = at.error[0].value
        assert "no Google identity" in banner and "paradyze-dev" in banner and "PARADYZE_ADMIN_TOKEN" in banner
    finally:
        get_console_settings.cache_clear()
