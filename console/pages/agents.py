"""Agents: every agent at a glance, with filters, search, and bulk hibernate / wake / delete."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from console import ui
from console.client import ApiError
from console.models import STATUSES, Agent

_ACTIONS = {"Hibernate": "hibernate_agent", "Wake": "wake_agent", "Delete": "delete_agent"}
_RESULTS_KEY = "agents_results"

ui.header("🤖 Agents")
ui.stop_if_backend_down()

left, mid, right, refresh = st.columns([3, 2, 2, 1], vertical_alignment="bottom")
query = left.text_input("Search", placeholder="name, id or owner", key="agents_q")
statuses = mid.multiselect("Status", STATUSES, key="agents_status", format_func=ui.badge)
runtimes = right.multiselect("Runtime", ["process", "docker", "cloud_run"], key="agents_runtime")
refresh.button("↻ Refresh", width="stretch")

if results := st.session_state.pop(_RESULTS_KEY, None):
    failed = [r for r in results if not r["ok"]]
    (st.warning if failed else st.success)(
        f"{results[0]['action']}: {len(results) - len(failed)} of {len(results)} agents succeeded."
    )
    st.dataframe(pd.DataFrame(results).drop(columns=["ok"]), hide_index=True, width="stretch")

agents = ui.load_agents(q=query.strip() or None)
if agents is None:
    st.stop()
shown = [
    a for a in agents if (not statuses or a.status in statuses) and (not runtimes or a.runtime in runtimes)
]


def _row(agent: Agent) -> dict[str, object]:
    return {
        "Status": ui.badge(agent.status),
        "Name": agent.name,
        "Owner": (agent.owner or "")[:8],
        "Runtime": agent.runtime,
        "Version": agent.character_version,
        "Last activity": ui.ago(agent.last_activity_at),
        "Uptime": ui.uptime(agent),
        "Restarts": agent.restart_count,
        "Reason": agent.status_reason or "",
        "Open": f"agent?agent_id={agent.id}",
        "ID": agent.id,
    }


counts = pd.Series([a.status for a in agents]).value_counts().to_dict() if agents else {}
st.caption(
    f"{len(shown)} shown of {len(agents)} · "
    + (" · ".join(f"{ui.badge(s)}: {n}" for s, n in counts.items()) or "no agents yet")
)
if not agents:
    st.info("No agents yet. Create one on the **Create agent** page.")
    st.page_link("pages/create_agent.py", label="Create an agent", icon="➕")
    st.stop()

table = pd.DataFrame([_row(a) for a in shown], columns=list(_row(agents[0])))
selection = st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    key="agents_table",
    on_select="rerun",
    selection_mode="multi-row",
    column_config={
        "Open": st.column_config.LinkColumn("Open", display_text="details"),
        "Version": st.column_config.NumberColumn("Version", format="v%d"),
    },
)

# Ticking rows in the table fills the picker below; the picker is what the buttons act on, so
# agents can also be chosen by name (and the selection survives a filter change).
by_id = {a.id: a for a in agents}
ticked = [shown[i].id for i in selection.selection.rows if i < len(shown)] if selection else []
if ticked != st.session_state.get("agents_ticked"):
    st.session_state["agents_ticked"] = ticked
    if ticked:
        st.session_state["agents_selected"] = ticked
st.session_state["agents_selected"] = [i for i in st.session_state.get("agents_selected", []) if i in by_id]
chosen = st.multiselect(
    "Selected agents",
    list(by_id),
    key="agents_selected",
    format_func=lambda agent_id: ui.label(by_id[agent_id]),
    placeholder="tick rows in the table, or pick agents here",
)

cols = st.columns([1, 1, 1, 3], vertical_alignment="center")
clicked = None
for col, action in zip(cols, _ACTIONS, strict=False):
    if col.button(
        action, disabled=not chosen, width="stretch", type="primary" if action != "Delete" else "secondary"
    ):
        clicked = action
confirm = cols[3].checkbox("Yes, delete the selected agents", key="agents_confirm_delete")

if clicked == "Delete" and not confirm:
    st.warning(
        "Tick **Yes, delete the selected agents** first: deleting stops them and removes them for good."
    )
elif clicked:
    client = ui.client()
    results = []
    bar = st.progress(0.0, text=f"{clicked} {len(chosen)} agents…")
    for n, agent_id in enumerate(chosen, start=1):
        agent = by_id[agent_id]
        try:
            after = getattr(client, _ACTIONS[clicked])(agent_id)
            results.append(
                {
                    "action": clicked,
                    "agent": agent.name,
                    "ok": True,
                    "result": f"✅ {ui.badge(after.status)}",
                    "message": after.status_reason or "",
                }
            )
        except ApiError as exc:
            results.append(
                {
                    "action": clicked,
                    "agent": agent.name,
                    "ok": False,
                    "result": "❌ failed",
                    "message": f"{exc.message} — {exc.hint}",
                }
            )
        bar.progress(n / len(chosen), text=f"{clicked}: {n} of {len(chosen)} done ({agent.name})")
    st.session_state[_RESULTS_KEY] = results
    st.session_state.pop("agents_confirm_delete", None)
    st.rerun()
