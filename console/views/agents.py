"""Agents: the hub. Every agent at a glance, kept live; filters, search, bulk actions; click one to open it."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from console import actions, analytics, ui
from console.client import ApiError
from console.models import STATUSES, Agent
from console.settings import get_console_settings

_FILTERS = {"agents_q": "", "agents_status": [], "agents_runtime": []}
_OPEN = "agents_open"  # the agent a click on a row asked to open

if opening := st.session_state.pop(_OPEN, None):
    st.switch_page("views/agent_detail.py", query_params={"agent_id": opening})
ui.header("🤖 Agents")
ui.stop_if_backend_down()
settings = get_console_settings()


def _clear_filters() -> None:
    for key, empty in _FILTERS.items():
        st.session_state[key] = empty


left, mid, right = st.columns([3, 2, 2], vertical_alignment="bottom")
query = left.text_input("Search", placeholder="words of the name (\"tru bot\"), or an id", key="agents_q")
statuses = mid.multiselect("Status", STATUSES, key="agents_status", format_func=ui.badge)
runtimes = right.multiselect("Runtime", ["process", "docker", "cloud_run"], key="agents_runtime")

if results := st.session_state.pop(actions.RESULTS_KEY, None):
    failed = [r for r in results if not r["ok"]]
    (st.warning if failed else st.success)(
        f"{results[0]['action']}: {len(results) - len(failed)} of {len(results)} agents succeeded."
    )
    st.dataframe(pd.DataFrame(results).drop(columns=["ok"]), hide_index=True, width="stretch")


def _monthly_costs(agents: list[Agent]) -> dict[str, float]:
    """$ / month per agent at the Costs page's prices (the region's published price until changed there)."""
    try:
        events = ui.client().agent_events(limit=1000)
    except ApiError:
        return {}  # the column shows "—"; the table is still worth showing
    estimate = analytics.estimate_costs(agents, events, now=ui.now(), rate=ui.hourly_rate(), platform_fee=0.0)
    return {a.agent_id: a.monthly_cost for a in estimate.agents}


def _row(agent: Agent, cost: float | None) -> dict[str, Any]:
    return {
        "Status": ui.badge(agent.status),
        "Name": agent.name,
        "URL": agent.url or "",
        "Version": agent.character_version,
        "$/month": cost,
        "Owner": ui.owner(agent.owner),
        "Runtime": agent.runtime,
        "Last activity": ui.ago(agent.last_activity_at),
        "Uptime": ui.uptime(agent),
        "Restarts": agent.restart_count,
        "Reason": agent.status_reason or "",
        "ID": agent.id,
    }


@st.fragment(run_every=settings.refresh_seconds)
def agent_table() -> None:
    """Re-read on its own every few seconds; a click on a row opens that agent here, in this tab."""
    agents = ui.load_agents(q=query.strip() or None)
    if agents is None:
        return
    shown = [a for a in agents if (not statuses or a.status in statuses) and (not runtimes or a.runtime in runtimes)]
    counts = pd.Series([a.status for a in agents]).value_counts().to_dict() if agents else {}
    st.caption(
        f"{len(shown)} shown of {len(agents)} · "
        + (" · ".join(f"{ui.badge(s)}: {n}" for s, n in counts.items()) or "no agents yet")
        + f" · refreshed {ui.now():%H:%M:%S} UTC"
    )
    filtered = bool(query.strip() or statuses or runtimes)
    if not agents and not filtered:
        st.info("No agents yet. Create one on the **Create agent** page.")
        st.page_link("views/create_agent.py", label="Create an agent", icon="➕")
        return
    if not shown:
        st.info("No agent matches these filters.")
        st.button("No match — clear filters", on_click=_clear_filters, key="agents_clear")
        return
    costs = _monthly_costs(shown)
    table = pd.DataFrame([_row(a, costs.get(a.id)) for a in shown])
    selection = st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key="agents_table",
        on_select="rerun",
        selection_mode=["multi-row", "single-cell"],
        column_config={
            "URL": st.column_config.TextColumn("URL", help="Select the cell and copy it"),
            "Version": st.column_config.NumberColumn("Version", format="v%d"),
            "$/month": st.column_config.NumberColumn("$/month", format="$%.2f"),
            "ID": st.column_config.TextColumn("ID", width="small"),
        },
    )
    st.caption("Click an agent's row to open it; tick rows to act on several at once.")
    cells = selection.selection.cells if selection else []
    if cells and cells[0][0] < len(shown):
        # Switched to from a full run: in a fragment's own run the app's page list is not the one
        # st.navigation declared, and the link would not be /agent.
        st.session_state[_OPEN] = shown[cells[0][0]].id
        st.rerun(scope="app")

    # Ticked rows fill the picker; the picker is what the buttons act on, so agents can also be
    # chosen by name, and the choice survives a filter change.
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
    cols = st.columns(3)
    clicked = None
    for col, action in zip(cols, actions.ACTIONS, strict=False):
        kind = "secondary" if action == "Delete" else "primary"
        if col.button(action, disabled=not chosen, width="stretch", type=kind, key=f"agents_{action.lower()}"):
            clicked = action
    if clicked == "Delete":
        actions.ask_to_delete(chosen)
        st.rerun(scope="app")
    elif clicked:
        st.session_state[actions.RESULTS_KEY] = actions.run(ui.client(), clicked, [by_id[i] for i in chosen])
        st.rerun(scope="app")


def _deleted(results: list[dict[str, Any]]) -> None:
    st.session_state[actions.RESULTS_KEY] = results
    st.session_state.pop("agents_selected", None)


agent_table()
actions.delete_dialog(_deleted)
