"""Backups: run one now, list them with sizes and counts, restore one after confirming."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from console import ui
from console.client import ApiError

ui.header("💾 Backups")
ui.stop_if_backend_down()
client = ui.client()

st.write("A backup holds every character, every character version and every agent's record and policy.")
if st.button("Run a backup now", type="primary", key="backup_run"):
    with st.status("Backing up…", expanded=True) as status:
        bar = st.progress(0.1, text="Asking the functions to write a backup…")
        try:
            backup = client.backup_agents()
        except ApiError as exc:
            bar.progress(1.0, text="Failed")
            status.update(label="Backup failed", state="error")
            ui.show_error(exc, "The backup")
        else:
            bar.progress(1.0, text="Written and checksummed")
            status.update(label=f"Backup {backup.id} done", state="complete")
            st.success(
                f"Backup `{backup.id}`: {backup.agents} agents, {backup.characters} characters, "
                f"{backup.versions} versions, {ui.size(backup.size_bytes)} at `{backup.location}`."
            )

try:
    backups = sorted(client.list_backups(), key=lambda b: str(b.created_at or ""), reverse=True)
except ApiError as exc:
    ui.show_error(exc, "Listing the backups")
    st.stop()

st.subheader(f"{len(backups)} backups")
if not backups:
    st.info("No backups yet. Run one above; the scheduler also runs one every week.")
    st.stop()
st.dataframe(
    pd.DataFrame(
        [
            {
                "Created": b.created_at,
                "ID": b.id,
                "Agents": b.agents,
                "Characters": b.characters,
                "Versions": b.versions,
                "Size": ui.size(b.size_bytes),
                "SHA-256": (b.sha256 or "")[:16],
                "Location": b.location,
            }
            for b in backups
        ]
    ),
    hide_index=True,
    width="stretch",
)

st.subheader("Restore")
by_id = {b.id: b for b in backups}
chosen = st.selectbox(
    "Backup to restore",
    list(by_id),
    format_func=lambda i: (
        f"{by_id[i].created_at:%Y-%m-%d %H:%M} · {by_id[i].agents} agents · {i}" if by_id[i].created_at else i
    ),
    key="restore_choice",
)
st.warning(
    "Restoring writes this backup's characters, versions and agent records back into the platform. "
    "Run a fresh backup first if you may want today's state back."
)
confirm = st.checkbox(f"Yes, restore backup {chosen}", key="restore_confirm")
if st.button("Restore", disabled=not confirm, key="restore_run"):
    with st.spinner("Restoring…"):
        try:
            restored = client.restore_backup(chosen)
        except ApiError as exc:
            ui.show_error(exc, "The restore")
        else:
            st.success(
                f"Restored backup `{restored.backup_id}`: {restored.agents} agents, "
                f"{restored.characters} characters, {restored.versions} versions."
            )
