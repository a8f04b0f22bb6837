"""The live parts of an agent's page: header, timeline, logs (followed and searched) and chat."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from console import progress, ui
from console.client import ApiError, ParadyzeClient
from console.models import Agent
from console.settings import get_console_settings

_EVERY = get_console_settings().refresh_seconds
FLASH = "detail_flash"  # a message to show once after an action's rerun


def load(client: ParadyzeClient, agent_id: str) -> Agent | None:
    try:
        return client.get_agent(agent_id)
    except ApiError as exc:
        ui.show_error(exc, "Loading the agent")
        return None


@st.fragment(run_every=_EVERY)
def header(agent_id: str) -> None:
    """Status, version, uptime and the rest, re-read every few seconds."""
    agent = load(ui.client(), agent_id)
    if agent is None:
        return
    top = st.columns(3)
    top[0].metric("Status", ui.badge(agent.status))
    top[1].metric("Version", f"v{agent.character_version}" if agent.character_version else "—")
    top[2].metric("Uptime", ui.uptime(agent))
    st.caption(
        f"Wants to be **{agent.desired_state or '—'}** · runtime {agent.runtime or '—'} · "
        f"{agent.restart_count} restarts · last activity {ui.ago(agent.last_activity_at)} · "
        f"created {ui.ago(agent.created_at)} · owner {ui.owner(agent.owner)} · id `{agent.id}`"
        + (f" · URL `{agent.url}`" if agent.url else "")
        + f" · refreshed {ui.now():%H:%M:%S} UTC"
    )
    if agent.status_reason:
        (st.error if agent.status == "error" else st.info)(f"Reason: {agent.status_reason}")


@st.fragment(run_every=_EVERY)
def timeline(agent_id: str) -> None:
    try:
        events = ui.client().agent_events(agent_id, limit=200)
    except ApiError as exc:
        ui.show_error(exc, "Loading the events")
        return
    if not events:
        st.info("No events recorded for this agent yet.")
        return
    rows = [
        {
            "At": e.at,
            "Change": f"{ui.badge(e.from_status) if e.from_status else '∅'} → {ui.badge(e.to_status)}",
            "Actor": e.actor or "",
            "Reason": e.reason or "",
            "Took": ui.duration(e.duration_ms / 1000) if e.duration_ms is not None else "—",
        }
        for e in sorted(events, key=lambda e: e.at, reverse=True)
    ]
    st.dataframe(
        pd.DataFrame(rows), hide_index=True, width="stretch",
        column_config={"At": st.column_config.DatetimeColumn("At", format="YYYY-MM-DD HH:mm:ss")},
    )  # fmt: skip


def logs(agent_id: str) -> None:
    c1, c2, c3 = st.columns([1, 3, 1], vertical_alignment="bottom")
    tail = c1.number_input("Lines", 10, 5000, 200, step=50, key="logs_tail")
    needle = c2.text_input("Search the logs", key="logs_search", placeholder="text to look for, e.g. error")
    follow = c3.toggle("Follow", key="logs_follow", help=f"Re-read the last lines every {_EVERY:g} s")

    @st.fragment(run_every=_EVERY if follow else None)
    def _lines() -> None:
        try:
            lines = ui.client().agent_logs(agent_id, tail=int(tail))
        except ApiError as exc:
            ui.show_error(exc, "Loading the logs")
            return
        shown = [line for line in lines if needle.lower() in line.lower()] if needle.strip() else lines
        if needle.strip():
            st.caption(f"{len(shown)} of {len(lines)} lines contain “{needle}”.")
        st.code("\n".join(shown) or "(no output yet)", language="log", height=420)
        if follow:
            st.caption(f"Following: last read {ui.now():%H:%M:%S} UTC.")

    _lines()


def act(client: ParadyzeClient, agent: Agent, title: str, method: str) -> None:
    """Hibernate or wake, showing each step as it happens; then re-read the whole page."""
    try:
        after = progress.follow(client, f"{title} {agent.name}", lambda: getattr(client, method)(agent.id),
                                lambda: agent.id)
    except ApiError as exc:
        ui.show_error(exc, f"{title} {agent.name}")
        return
    st.session_state[FLASH] = f"{title}: {agent.name} is {ui.badge(after.status)}."
    st.rerun()


def chat(client: ParadyzeClient, agent: Agent) -> None:
    """The conversation as the server keeps it, so a reload or another tab shows the same history."""
    try:
        history = [(m.role, m.text) for m in client.agent_messages(agent.id)]
    except ApiError as exc:
        ui.show_error(exc, "Loading the conversation")
        history = []
    if agent.status != "running":
        st.caption(f"The agent is {agent.status}; sending a message wakes it first, which can take a moment.")
    box = st.container(height=360)
    for role, text in history:
        box.chat_message("user" if role == "user" else "assistant").write(text)
    if not history:
        box.caption("No messages yet.")
    prompt = st.chat_input(f"Message {agent.name}", key=f"chat_input_{agent.id}")
    if not prompt:
        return
    box.chat_message("user").write(prompt)
    try:
        title = "Sending" if agent.status == "running" else "Waking the agent and sending"
        result = progress.follow(client, title, lambda: client.send_message(agent.id, prompt), lambda: agent.id)
    except ApiError as exc:
        ui.show_error(exc, "Sending the message")
        return
    if result.woke:
        st.session_state[FLASH] = f"{agent.name} woke up from hibernation to answer."
    if not result.replies:
        st.session_state[FLASH] = "The agent answered with no reply."
    st.rerun()
