"""Acting on agents from any page: bulk hibernate / wake / delete, and the delete dialog that names them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from console import ui
from console.client import ApiError, ParadyzeClient
from console.models import Agent

ACTIONS = {"Hibernate": "hibernate_agent", "Wake": "wake_agent", "Delete": "delete_agent"}
RESULTS_KEY = "agents_results"
_PENDING = "delete_pending"  # ids the delete dialog is asking about
_NONCE = "delete_nonce"  # bumped after every action, so the dialog's inputs start empty each time


def run(client: ParadyzeClient, action: str, agents: list[Agent]) -> list[dict[str, Any]]:
    """Apply one action to each agent in turn, with a progress bar; one result row per agent."""
    results = []
    bar = st.progress(0.0, text=f"{action} {len(agents)} agents…")
    for n, agent in enumerate(agents, start=1):
        row: dict[str, Any] = {"action": action, "agent": agent.name}
        try:
            after = getattr(client, ACTIONS[action])(agent.id)
            row |= {"ok": True, "result": f"✅ {ui.badge(after.status)}", "message": after.status_reason or ""}
        except ApiError as exc:
            row |= {"ok": False, "result": "❌ failed", "message": f"{exc.message} — {exc.hint}"}
        results.append(row)
        bar.progress(n / len(agents), text=f"{action}: {n} of {len(agents)} done ({agent.name})")
    return results


def ask_to_delete(agent_ids: list[str]) -> None:
    """Open the delete dialog for these agents on the next run (see `delete_dialog`)."""
    st.session_state[_PENDING] = list(agent_ids)


def _forget() -> None:
    st.session_state.pop(_PENDING, None)
    st.session_state[_NONCE] = st.session_state.get(_NONCE, 0) + 1


def delete_dialog(after: Callable[[list[dict[str, Any]]], None]) -> None:
    """Show the dialog when a delete is pending; `after(results)` runs once the agents are deleted."""
    wanted = st.session_state.get(_PENDING)
    if not wanted:
        return
    agents = {a.id: a for a in ui.load_agents() or []}  # fresh: the dialog names them as they are now
    pending = [agents[i] for i in wanted if i in agents]
    if not pending:
        st.session_state.pop(_PENDING, None)
        return
    title = f"Delete {pending[0].name}?" if len(pending) == 1 else f"Delete {len(pending)} agents?"

    @st.dialog(title, on_dismiss=_forget)
    def _confirm() -> None:
        nonce = st.session_state.get(_NONCE, 0)
        st.write("Deleting stops these agents and removes them, their characters and files, for good:")
        st.markdown("\n".join(f"- **{a.name}** · {ui.badge(a.status)} · `{a.id}`" for a in pending))
        if len(pending) == 1:
            typed = st.text_input(f"Type **{pending[0].name}** to confirm", key=f"delete_typed_{nonce}")
            ready = typed.strip() == pending[0].name
        else:
            ready = st.checkbox(f"Yes, delete these {len(pending)} agents", key=f"delete_confirm_{nonce}")
        left, right = st.columns(2)
        if left.button("Cancel", key=f"delete_cancel_{nonce}", width="stretch"):
            _forget()
            st.rerun()
        if right.button("Delete for good", type="primary", disabled=not ready, key=f"delete_go_{nonce}",
                        width="stretch"):
            results = run(ui.client(), "Delete", pending)
            _forget()
            after(results)
            st.rerun()

    _confirm()
