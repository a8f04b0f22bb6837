"""Health: platform checks, per-agent health, and charts of states, messages and restarts."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from console import analytics, metrics_history, ui
from console.client import ApiError
from console.settings import get_console_settings

ui.header("🩺 Health")
ui.stop_if_backend_down()
client = ui.client()

# Looking never changes anything: the page reads the checks without repair; repair is a button.
left, right = st.columns([1, 3], vertical_alignment="center")
if left.button("↻ Check again", key="health_refresh"):
    st.rerun()
if right.button("🛠 Repair: restart agents that should run and do not", key="health_repair"):
    try:
        repaired = client.health_check(repair=True)
    except ApiError as exc:
        ui.show_error(exc, "The repair")
    else:
        done = repaired.model_extra.get("repairs") if repaired.model_extra else None
        st.success(f"Repair ran: {done}." if done else "Repair ran: nothing needed restarting.")
try:
    report = client.health_check(repair=False)
except ApiError as exc:
    ui.show_error(exc, "The health check")
    st.stop()

database = report.platform.get("database", {}) or {}
migrations = report.platform.get("migrations", {}) or {}
unhealthy = [a for a in report.agents if not a.ok]
c = st.columns(4)
c[0].metric("Platform", "✅ ok" if report.status == "ok" else f"⚠️ {report.status}")
c[1].metric("Database", "✅ up" if database.get("ok") else "❌ down")
applied, pending = migrations.get("applied"), migrations.get("pending") or []
# The report may list migrations by name or just count them; show a count either way.
applied_count = len(applied) if isinstance(applied, list) else applied
pending_count = len(pending) if isinstance(pending, list) else int(pending)
c[2].metric(
    "Migrations",
    f"{applied_count} applied" if applied_count is not None else "—",
    delta=f"{pending_count} pending" if pending_count else None,
    delta_color="inverse",
)
c[3].metric("Agents healthy", f"{len(report.agents) - len(unhealthy)} / {len(report.agents)}")
if report.status != "ok":
    problems = (
        [f"- database: {database.get('detail') or database.get('error') or 'not ok'}"]
        if not database.get("ok")
        else []
    )
    if pending_count:
        listed = ", ".join(map(str, pending)) if isinstance(pending, list) else str(pending_count)
        problems.append(f"- migrations pending: {listed}")
    problems += [f"- {a.name or a.agent_id}: {a.detail or a.runtime_state or 'not ok'}" for a in unhealthy]
    st.warning("**The platform is degraded.**\n\n" + "\n".join(problems))
with st.expander("Platform check details"):
    st.json(report.platform)

st.subheader("Agents")
if report.agents:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "OK": "✅" if a.ok else "❌",
                    "Name": a.name,
                    "Status": ui.badge(a.status),
                    "Desired": a.desired_state,
                    "Runtime state": a.runtime_state,
                    "Answering": {True: "yes", False: "no"}.get(a.answering, "—"),
                    "Restarts": a.restarts,
                    "Memory": ui.size(a.memory_bytes) if a.memory_bytes else "—",
                    "Detail": a.detail or "",
                }
                for a in report.agents
            ]
        ),
        hide_index=True,
        width="stretch",
    )
else:
    st.info("No agents to check.")

# -- charts ----------------------------------------------------------------------------------
def _counts(values: dict[str, int], what: str) -> None:
    """A bar per agent with whole-number ticks (no half an agent, no 0.5 restarts)."""
    frame = pd.DataFrame({"agent": list(values), what: list(values.values())})
    st.altair_chart(
        alt.Chart(frame).mark_bar().encode(
            x=alt.X(f"{what}:Q", axis=alt.Axis(tickMinStep=1, format="d")), y=alt.Y("agent:N", title=None),
            tooltip=["agent", f"{what}:Q"],
        ),
        width="stretch",
    )


agents = ui.load_agents() or []
try:
    events = client.agent_events(limit=1000)
except ApiError as exc:
    ui.show_error(exc, "Loading the recent events")
    events = []

st.subheader("Agents by state over time")
states = analytics.states_over_time(events, now=ui.now())
if states:
    frame = pd.DataFrame(states)
    colours = alt.Scale(domain=list(ui.STATUS_COLOURS), range=list(ui.STATUS_COLOURS.values()))
    st.altair_chart(
        alt.Chart(frame)
        .mark_area(interpolate="step-after")
        .encode(
            x=alt.X("at:T", title=None, axis=alt.Axis(format="%H:%M", labelAngle=0)),
            y=alt.Y("agents:Q", stack=True, title="agents", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color("status:N", scale=colours),
            tooltip=[alt.Tooltip("at:T", format="%Y-%m-%d %H:%M:%S"), "status:N", "agents:Q"],
        ),
        width="stretch",
    )
else:
    st.caption("No status events yet.")

left, right = st.columns(2)
with left:
    st.subheader("Messages per agent")
    messages = analytics.messages_per_agent(agents, events)
    if messages:
        _counts(messages, "messages")
    else:
        st.caption("The functions do not report message counts yet, and no event mentions a message.")
with right:
    st.subheader("Restarts per agent")
    restarts = analytics.restarts_per_agent(agents)
    if any(restarts.values()):
        _counts(restarts, "restarts")
    else:
        st.caption(f"No restarts across {len(restarts)} agents. 🎉")

st.subheader("Scheduler jobs")
st.caption("Cloud Scheduler runs these on its own; run them now to test a policy or clear idle agents.")
if st.button("Hibernate idle agents now", key="job_idle"):
    try:
        hibernated = client.hibernate_idle()
    except ApiError as exc:
        ui.show_error(exc, "Hibernating idle agents")
    else:
        st.success(f"Hibernated {len(hibernated)} idle agents.")

# -- over time: the functions' own metrics (the emulator's /metrics), scraped while the console runs ----


@st.cache_resource
def _history(url: str) -> metrics_history.MetricsHistory:
    return metrics_history.MetricsHistory(url).start()


def _line(frame: pd.DataFrame, by: str, title: str, unit: str) -> None:
    if frame.empty:
        st.caption(f"{title}: nothing yet.")
        return
    st.altair_chart(alt.Chart(frame, title=title).mark_line(point=True).encode(
        x=alt.X("at:T", title=None), y=alt.Y("value:Q", title=unit), color=alt.Color(f"{by}:N", title=by),
        tooltip=["at:T", f"{by}:N", alt.Tooltip("value:Q", format=".3~f")]), width="stretch")


st.subheader("Over time")
history = _history(get_console_settings().api_url)
history.scrape()  # one point now, besides the scrapes every 15 s
if history.error:
    st.caption(f"No metrics history: {history.error}. In the cloud, see the Cloud Monitoring dashboard.")
else:
    names = {a.agent_id: a.name or a.agent_id[:8] for a in report.agents}

    def named(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(agent=frame["agent_id"].map(lambda i: names.get(i, i[:8]))) if not frame.empty else \
            frame.assign(agent=[])

    st.caption(f"{len(history.scrapes())} scrapes of {history.url}, every {history.interval:g} s, while this"
               " console runs; rates and means are between scrapes.")
    left, right = st.columns(2)
    with left:
        _line(named(history.rate("paradyze_agent_messages_in_total", "agent_id")), "agent",
              "Messages in per minute", "per minute")
        _line(named(history.rate("paradyze_agent_errors_total", "agent_id")), "agent", "Agent errors per minute",
              "per minute")
        _line(history.gauge("paradyze_agents", "status"), "status", "Agents by status", "agents")
        _line(history.mean("paradyze_function_duration_seconds", "operation"), "operation",
              "Function latency (mean)", "s")
    with right:
        _line(named(history.mean("paradyze_agent_reply_latency_seconds", "agent_id")), "agent",
              "Reply latency (mean)", "s")
        _line(named(history.rate("paradyze_agent_wakes_total", "agent_id")), "agent", "Wakes per minute",
              "per minute")
        _line(named(history.gauge("paradyze_agent_memory_rss_bytes", "agent_id")).assign(
            value=lambda f: f["value"] / 2**20), "agent", "Memory (RSS)", "MiB")
        _line(history.gauge("paradyze_db_pool_connections", "state"), "state", "Database pool", "connections")

    st.markdown("**One agent's history**")
    if names:
        chosen = st.selectbox("Agent", list(names), format_func=lambda i: f"{names[i]} ({i[:8]})",
                              key="health_history_agent")
        one = {"agent_id": chosen}
        series = pd.concat([
            history.rate("paradyze_agent_messages_in_total", "agent_id", **one).assign(series="messages in / min"),
            history.rate("paradyze_agent_messages_out_total", "agent_id", **one).assign(series="replies / min"),
            history.mean("paradyze_agent_reply_latency_seconds", "agent_id", **one).assign(series="reply latency (s)"),
            history.rate("paradyze_agent_cpu_time_seconds_total", "agent_id", per=100, **one).assign(series="CPU %"),
            history.gauge("paradyze_agent_restarts_total", "agent_id", **one).assign(series="restarts"),
        ])
        _line(series, "series", f"{names[chosen]}", "value")
    else:
        st.caption("No agents.")
