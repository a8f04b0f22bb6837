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
try:
    preview = client.backup_contents(chosen)
except ApiError as exc:
    ui.show_error(exc, "Reading the backup")
    st.stop()
adds, present = preview.restore_adds, preview.already_present
st.markdown(
    f"**A restore now would add back {adds.agents} agents, {adds.characters} characters and {adds.versions} "
    f"versions.** {present.agents} agents, {present.characters} characters and {present.versions} versions "
    "of this backup exist already and are left as they are: a restore only adds back what is missing."
)
st.dataframe(
    pd.DataFrame(
        [
            {
                "Agent": a.name,
                "On restore": a.on_restore,
                "Backed-up version": a.version,
                "Version now": a.current_version,
                "Status now": ui.badge(a.status) if a.status else "— (deleted)",
                "Owner": ui.owner(a.owner),
                "ID": a.id,
            }
            for a in preview.agents
        ]
    ),
    hide_index=True,
    width="stretch",
    column_config={
        "Backed-up version": st.column_config.NumberColumn(format="v%d"),
        "Version now": st.column_config.NumberColumn(format="v%d"),
    },
)
confirm = st.checkbox(f"Yes, restore backup {chosen}", key=f"restore_confirm_{chosen}",
                      disabled=not adds.agents and not adds.characters)
if st.button("Restore", disabled=not confirm, key="restore_run"):
    with st.spinner("Restoring…"):
        try:
            restored = client.restore_backup(chosen)
        except ApiError as exc:
            ui.show_error(exc, "The restore")
        else:
            st.session_state["restore_done"] = (
                f"Restored backup `{restored.backup_id}`: {restored.agents} agents, "
                f"{restored.characters} characters, {restored.versions} versions came back (hibernated)."
            )
            st.rerun()
if done := st.session_state.pop("restore_done", None):
    st.success(done)

# -- one agent back to the backup's version ---------------------------------------------------
st.subheader("Roll one agent back")
changed = [a for a in preview.agents if a.exists and a.version and a.current_version != a.version]
if not changed:
    st.caption("Every agent of this backup that exists now is at the version the backup holds.")
else:
    names = {a.id: a for a in changed}
    pick = st.selectbox(
        "Agent", list(names), key="rollback_agent",
        format_func=lambda i: f"{names[i].name}: now v{names[i].current_version}, backup v{names[i].version}",
    )  # fmt: skip
    target = names[pick]
    st.caption(
        f"Saves the character {target.name} had in this backup (v{target.version}) as its newest version; "
        "a running agent restarts with it. Its secrets stay as they are."
    )
    if st.button(f"Roll {target.name} back to v{target.version}", key="rollback_run", type="primary"):
        try:
            character = client.backup_contents(chosen, agent_id=target.id).character
            saved = client.update_character(target.id, character or {})
        except ApiError as exc:
            ui.show_error(exc, f"Rolling {target.name} back")
        else:
            st.session_state["restore_done"] = (
                f"{target.name} now runs the backup's character (v{target.version}) as v{saved.character_version}."
            )
            st.rerun()
