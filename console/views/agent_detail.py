"""Agent detail: live status and timeline, chat, character versions and their diff, policy, logs, delete."""

from __future__ import annotations

import difflib
import json

import pandas as pd
import streamlit as st

from console import actions, agent_views, schedule_form, ui
from console.characters import validate_character
from console.client import ApiError
from console.schedules import check_rows

_BACK_TO_LIST = "detail_deleted"
if st.session_state.pop(_BACK_TO_LIST, False):
    st.switch_page("views/agents.py")
ui.header("🔎 Agent detail")
ui.stop_if_backend_down()
client = ui.client()

by_id, wanted = ui.agents_and_link()
wanted = wanted or st.session_state.get("created_agent_id")
ids = list(by_id)
agent_id = st.selectbox(
    "Agent", ids, index=ids.index(wanted) if wanted in by_id else 0, format_func=lambda i: ui.label(by_id[i])
)
st.query_params["agent_id"] = agent_id  # so the page can be bookmarked and shared
agent = agent_views.load(client, agent_id)
if agent is None:
    st.stop()

if flash := st.session_state.pop(agent_views.FLASH, None):
    st.success(flash)
agent_views.header(agent.id)

b = st.columns(4)
if b[0].button("Hibernate", key="detail_hibernate", width="stretch", disabled=agent.status != "running"):
    agent_views.act(client, agent, "Hibernate", "hibernate_agent")
if b[1].button("Wake", key="detail_wake", width="stretch", disabled=agent.status not in ("hibernated", "error")):
    agent_views.act(client, agent, "Wake", "wake_agent")
if b[2].button("↻ Refresh", key="detail_refresh", width="stretch"):
    st.rerun()
if b[3].button("Delete…", key="detail_delete", width="stretch"):
    actions.ask_to_delete([agent.id])


def _deleted(results: list[dict[str, object]]) -> None:
    st.session_state[actions.RESULTS_KEY] = results
    st.session_state[_BACK_TO_LIST] = True  # the dialog's rerun comes back here, then goes to the list


actions.delete_dialog(_deleted)

timeline, chat, versions, policy_tab, logs = st.tabs(
    ["Timeline", "Chat", "Character versions", "Policy & schedules", "Logs"]
)
with timeline:
    agent_views.timeline(agent.id)
with chat:
    agent_views.chat(client, agent)

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
                [{"Version": v.version, "Created": v.created_at, "SHA-256": (v.sha256 or "")[:16]} for v in found]
            ),
            hide_index=True,
        )
        numbers = [v.version for v in found]
        by_version = {v.version: v for v in found}
        latest = numbers[-1]
        c1, c2 = st.columns(2)
        # Keyed by the newest version, so a new version resets the pair to (previous, newest).
        old = c1.selectbox("From version", numbers, index=max(len(numbers) - 2, 0), key=f"diff_from_{latest}")
        new = c2.selectbox("To version", numbers, index=len(numbers) - 1, key=f"diff_to_{latest}")
        a = json.dumps(by_version[old].character, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
        b = json.dumps(by_version[new].character, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
        diff = "\n".join(difflib.unified_diff(a, b, f"v{old}", f"v{new}", lineterm=""))
        if diff:
            st.code(diff, language="diff")
        else:
            st.caption(f"v{old} and v{new} are identical." if old != new else "Choose two versions to compare.")

        with st.expander("Edit the character (saves a new version; a running agent restarts)"):
            current = by_version[latest].character
            text = st.text_area(
                "Character JSON", json.dumps(current, indent=2, ensure_ascii=False), height=300,
                key=f"edit_{agent.id}_{latest}",
            )  # fmt: skip
            try:
                edited = json.loads(text)
                problems = validate_character(edited)
            except json.JSONDecodeError as exc:
                edited, problems = None, {"": f"not valid JSON: {exc.msg} at line {exc.lineno}"}
            for loc, message in problems.items():
                st.error(f"**{loc or 'character'}**: {message}", icon="⚠️")
            if st.button("Save new version", disabled=bool(problems) or edited == current, key="save_version"):
                try:
                    saved = client.update_character(agent.id, edited)
                except ApiError as exc:
                    ui.show_error(exc, "Saving the character")
                else:
                    st.session_state[agent_views.FLASH] = f"Saved v{saved.character_version}."
                    st.rerun()  # re-read: the header, the versions and the diff all show the new version
    else:
        st.info("No character versions found.")

# -- policy ----------------------------------------------------------------------------------
with policy_tab:
    c1, c2 = st.columns(2)
    idle = c1.number_input(
        "Hibernate after idle (minutes)", 1, 7 * 24 * 60, agent.policy.idle_timeout_minutes, key=f"idle_{agent.id}"
    )
    auto = c2.toggle("Auto-hibernate when idle", agent.policy.auto_hibernate, key=f"auto_{agent.id}")
    st.markdown("**Schedules** — at most one hibernate and one wake, at least 15 minutes apart.")
    rows = schedule_form.schedule_rows(agent)
    if st.button("Save policy", type="primary", key="save_policy"):
        schedules, problems = check_rows(rows)
        if problems:
            st.error("**The policy was not saved:**\n\n" + "\n".join(f"- {p}" for p in problems), icon="⚠️")
        else:
            try:
                client.update_policy(
                    agent.id, idle_timeout_minutes=int(idle), auto_hibernate=bool(auto), schedules=schedules
                )
            except ApiError as exc:
                ui.show_error(exc, "Saving the policy")
            else:
                schedule_form.reset(agent)
                st.session_state[agent_views.FLASH] = f"Policy saved: {len(schedules)} schedules."
                st.rerun()

with logs:
    agent_views.logs(agent.id)
