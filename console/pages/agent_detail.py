"""Agent detail: status and timeline, chat, character versions and their diff, policy, logs."""

from __future__ import annotations

import difflib
import json

import pandas as pd
import streamlit as st

from console import ui
from console.characters import validate_character, validate_schedule
from console.client import ApiError

ui.header("🔎 Agent detail")
ui.stop_if_backend_down()
client = ui.client()

agents = ui.load_agents()
if agents is None:
    st.stop()
if not agents:
    st.info("No agents yet. Create one on the **Create agent** page.")
    st.stop()
by_id = {a.id: a for a in agents}
wanted = st.query_params.get("agent_id") or st.session_state.get("created_agent_id")
ids = list(by_id)
agent_id = st.selectbox(
    "Agent",
    ids,
    index=ids.index(wanted) if wanted in by_id else 0,
    format_func=lambda i: ui.label(by_id[i]),
)
st.query_params["agent_id"] = agent_id  # so the page can be bookmarked and shared


try:
    agent = client.get_agent(agent_id)
except ApiError as exc:
    ui.show_error(exc, "Loading the agent")
    st.stop()

# -- status ----------------------------------------------------------------------------------
m = st.columns([2, 1, 1, 1, 1, 1])
m[0].metric("Status", ui.badge(agent.status))
m[1].metric("Desired", agent.desired_state or "—")
m[2].metric("Runtime", agent.runtime or "—")
m[3].metric("Version", f"v{agent.character_version}" if agent.character_version else "—")
m[4].metric("Uptime", ui.uptime(agent))
m[5].metric("Restarts", agent.restart_count)
st.caption(
    f"Last activity {ui.ago(agent.last_activity_at)} · created {ui.ago(agent.created_at)} · "
    f"owner `{agent.owner}` · id `{agent.id}`" + (f" · URL {agent.url}" if agent.url else "")
)
if agent.status_reason:
    (st.error if agent.status == "error" else st.info)(f"Reason: {agent.status_reason}")

b = st.columns([1, 1, 1, 4])
for col, (title, method) in zip(
    b, (("Hibernate", "hibernate_agent"), ("Wake", "wake_agent"), ("Refresh", None)), strict=False
):
    if col.button(title, key=f"detail_{title.lower()}", width="stretch"):
        if method is None:
            st.rerun()
        with st.spinner(f"{title} {agent.name}…"):
            try:
                getattr(client, method)(agent.id)
            except ApiError as exc:
                ui.show_error(exc, f"{title} {agent.name}")
            else:
                st.rerun()

timeline, chat, versions, policy_tab, logs = st.tabs(
    ["Timeline", "Chat", "Character versions", "Policy & schedules", "Logs"]
)

# -- timeline --------------------------------------------------------------------------------
with timeline:
    try:
        events = client.agent_events(agent.id, limit=200)
    except ApiError as exc:
        ui.show_error(exc, "Loading the events")
        events = []
    if events:
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
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    else:
        st.info("No events recorded for this agent yet.")

# -- chat ------------------------------------------------------------------------------------
with chat:
    history: list[dict[str, str]] = st.session_state.setdefault(f"chat_{agent.id}", [])
    if agent.status != "running":
        st.caption(f"The agent is {agent.status}; sending a message wakes it first, which can take a moment.")
    box = st.container(height=360)
    for turn in history:
        box.chat_message(turn["role"]).write(turn["text"])
    if prompt := st.chat_input(f"Message {agent.name}", key=f"chat_input_{agent.id}"):
        history.append({"role": "user", "text": prompt})
        box.chat_message("user").write(prompt)
        with box, st.spinner("Waiting for the reply…" if agent.status == "running" else "Waking the agent…"):
            try:
                result = client.send_message(agent.id, prompt)
            except ApiError as exc:
                ui.show_error(exc, "Sending the message")
                result = None
        if result is not None:
            if result.woke:
                history.append({"role": "assistant", "text": "_(woke up from hibernation)_"})
                box.chat_message("assistant").write("_(woke up from hibernation)_")
            for reply in result.replies or []:
                history.append({"role": "assistant", "text": reply.text})
                box.chat_message("assistant").write(reply.text)
            if not result.replies:
                box.caption("The agent answered with no reply.")

# -- character versions ----------------------------------------------------------------------
with versions:
    try:
        found = sorted(client.character_versions(agent.id), key=lambda v: v.version)
    except ApiError as exc:
        ui.show_error(exc, "Loading the character versions")
        found = []
    if found:
        st.dataframe(
            pd.DataFrame(
                [
                    {"Version": v.version, "Created": v.created_at, "SHA-256": (v.sha256 or "")[:16]}
                    for v in found
                ]
            ),
            hide_index=True,
        )
        numbers = [v.version for v in found]
        by_version = {v.version: v for v in found}
        c1, c2 = st.columns(2)
        old = c1.selectbox("From version", numbers, index=max(len(numbers) - 2, 0), key="diff_from")
        new = c2.selectbox("To version", numbers, index=len(numbers) - 1, key="diff_to")
        a = json.dumps(by_version[old].character, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
        b = json.dumps(by_version[new].character, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
        diff = "\n".join(difflib.unified_diff(a, b, f"v{old}", f"v{new}", lineterm=""))
        if diff:
            st.code(diff, language="diff")
        else:
            st.caption(f"v{old} and v{new} are identical.")

        with st.expander("Edit the character (saves a new version; a running agent restarts)"):
            latest = by_version[numbers[-1]].character
            text = st.text_area(
                "Character JSON",
                json.dumps(latest, indent=2, ensure_ascii=False),
                height=300,
                key=f"edit_{agent.id}",
            )
            try:
                edited = json.loads(text)
                problems = validate_character(edited)
            except json.JSONDecodeError as exc:
                edited, problems = None, {"": f"not valid JSON: {exc.msg} at line {exc.lineno}"}
            for loc, message in problems.items():
                st.error(f"**{loc or 'character'}**: {message}", icon="⚠️")
            if st.button("Save new version", disabled=bool(problems) or edited == latest, key="save_version"):
                try:
                    saved = client.update_character(agent.id, edited)
                except ApiError as exc:
                    ui.show_error(exc, "Saving the character")
                else:
                    st.success(f"Saved v{saved.character_version}.")
    else:
        st.info("No character versions found.")

# -- policy ----------------------------------------------------------------------------------
with policy_tab:
    with st.form(f"policy_{agent.id}"):
        c1, c2 = st.columns(2)
        idle = c1.number_input(
            "Hibernate after idle (minutes)", 1, 7 * 24 * 60, agent.policy.idle_timeout_minutes
        )
        auto = c2.toggle("Auto-hibernate when idle", agent.policy.auto_hibernate)
        st.caption("Schedules: action `hibernate` or `wake`, a five-field cron, an IANA time zone.")
        table = pd.DataFrame(
            [
                {
                    "action": s.action,
                    "cron": s.cron,
                    "timezone": s.timezone,
                    "enabled": s.enabled,
                    "next run": s.next_run_at,
                }
                for s in agent.policy.schedules
            ],
            columns=["action", "cron", "timezone", "enabled", "next run"],
        )
        edited_table = st.data_editor(
            table,
            num_rows="dynamic",
            hide_index=True,
            width="stretch",
            column_config={
                "action": st.column_config.SelectboxColumn(
                    "action", options=["hibernate", "wake"], required=True
                ),
                "cron": st.column_config.TextColumn("cron", required=True, default="0 22 * * *"),
                "timezone": st.column_config.TextColumn("timezone", required=True, default="UTC"),
                "enabled": st.column_config.CheckboxColumn("enabled", default=True),
                "next run": st.column_config.DatetimeColumn("next run", disabled=True),
            },
            key=f"schedules_{agent.id}",
        )
        submitted = st.form_submit_button("Save policy", type="primary")
    if submitted:
        schedules, problems = [], []
        for n, row in enumerate(edited_table.to_dict("records"), start=1):
            if not row.get("cron") or row.get("action") not in ("hibernate", "wake"):
                problems.append(f"row {n}: choose an action and a cron")
                continue
            for field, message in validate_schedule(
                str(row["cron"]), str(row.get("timezone") or "UTC")
            ).items():
                problems.append(f"row {n} {field}: {message}")
            schedules.append(
                {
                    "action": row["action"],
                    "cron": str(row["cron"]).strip(),
                    "timezone": str(row.get("timezone") or "UTC").strip(),
                    "enabled": bool(row.get("enabled", True)),
                }
            )
        if problems:
            st.error("**The schedule was not saved:**\n\n" + "\n".join(f"- {p}" for p in problems), icon="⚠️")
        else:
            try:
                client.update_policy(
                    agent.id, idle_timeout_minutes=int(idle), auto_hibernate=bool(auto), schedules=schedules
                )
            except ApiError as exc:
                ui.show_error(exc, "Saving the policy")
            else:
                st.toast("Policy saved.", icon="✅")
                st.rerun()

# -- logs ------------------------------------------------------------------------------------
with logs:
    tail = st.number_input("Lines", 10, 5000, 200, step=50, key="logs_tail")
    try:
        lines = client.agent_logs(agent.id, tail=int(tail))
    except ApiError as exc:
        ui.show_error(exc, "Loading the logs")
    else:
        st.code("\n".join(lines) or "(no output yet)", language="log")
