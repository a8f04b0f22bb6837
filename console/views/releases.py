"""Releases: an agent's blue/green releases and rollbacks with their smoke tests; release or roll back."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from console import progress, ui
from console.client import ApiError

ui.header("🚀 Releases")
ui.stop_if_backend_down()
client = ui.client()

by_id, wanted = ui.agents_and_link()
ids = list(by_id)
agent_id = st.selectbox("Agent", ids, index=ids.index(wanted) if wanted in by_id else 0,
                        format_func=lambda i: ui.label(by_id[i]), key="releases_agent")
st.query_params["agent_id"] = agent_id
agent = by_id[agent_id]
if flash := st.session_state.pop("releases_flash", None):
    (st.success if flash[0] else st.warning)(flash[1])
st.caption(f"{agent.name} serves v{agent.character_version}. A release starts the new version beside the "
           "running one, plays the smoke test against it and switches only if it passes; the old one is kept "
           "for the grace period, so a rollback within it is instant.")

try:
    versions = sorted(v.version for v in client.character_versions(agent.id))
    history = client.list_releases(agent.id)
except ApiError as exc:
    ui.show_error(exc, "Loading the releases")
    st.stop()

c1, c2 = st.columns(2)
with c1, st.container(border=True):
    st.markdown("**Release a version**")
    others = [v for v in versions if v != agent.character_version] or versions
    target = st.selectbox("Version", others, index=len(others) - 1, format_func=lambda v: f"v{v}",
                          key=f"release_version_{agent.id}")
    grace = st.number_input("Keep the old version for (seconds)", 0, 86_400, 60, step=30, key="release_grace")
    if st.button(f"Release v{target}", type="primary", key="release_run"):
        try:
            done = progress.follow(client, f"Releasing v{target} of {agent.name}",
                                   lambda: client.release_version(agent.id, int(target), int(grace)),
                                   lambda: agent.id)
        except ApiError as exc:
            ui.show_error(exc, f"Releasing v{target}")
        else:
            st.session_state["releases_flash"] = (done.status in ("switched", "done"),
                                                  f"Release of v{target}: {done.status}"
                                                  + (f" ({done.reason})" if done.reason else "") + ".")
            st.rerun()
with c2, st.container(border=True):
    st.markdown("**Roll back**")
    earlier = [v for v in versions if v < (agent.character_version or 0)]
    if not earlier:
        st.caption("There is no earlier version to go back to.")
    else:
        back = st.selectbox("To version", earlier, index=len(earlier) - 1, format_func=lambda v: f"v{v}",
                            key=f"rollback_version_{agent.id}")
        if st.button(f"Roll back to v{back}", key="rollback_run"):
            try:
                done = progress.follow(client, f"Rolling {agent.name} back to v{back}",
                                       lambda: client.rollback(agent.id, int(back)), lambda: agent.id)
            except ApiError as exc:
                ui.show_error(exc, f"Rolling back to v{back}")
            else:
                st.session_state["releases_flash"] = (done.status in ("switched", "done"),
                                                      f"Rollback to v{back}: {done.status}.")
                st.rerun()

st.subheader(f"{len(history)} releases and rollbacks")
if not history:
    st.info("No releases yet: a character saved on the agent's page runs at once; a release tests it first.")
else:
    st.dataframe(
        pd.DataFrame([
            {
                "At": r.created_at,
                "Kind": r.kind,
                "Versions": f"v{r.from_version or '—'} → v{r.to_version}",
                "Status": r.status,
                "Serving": r.serving or "",
                "Smoke test": f"{sum(1 for c in r.smoke if c.get('passed'))} of {len(r.smoke)} passed"
                if r.smoke else "none",
                "Reason": r.reason or "",
            }
            for r in history
        ]),
        hide_index=True, width="stretch",
        column_config={"At": st.column_config.DatetimeColumn("At", format="YYYY-MM-DD HH:mm:ss")},
    )  # fmt: skip
