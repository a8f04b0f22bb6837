"""The schedules form on an agent's page: one row per schedule, each with a preview in plain words."""

from __future__ import annotations

import uuid
from zoneinfo import available_timezones

import streamlit as st

from console.models import Agent
from console.schedules import ACTIONS, CUSTOM, PRESETS, ScheduleRow, describe, next_runs, preset_for

ZONES = sorted(available_timezones())


def _key(agent: Agent) -> str:
    return f"schedule_rows_{agent.id}"


def reset(agent: Agent) -> None:
    """Forget the edited rows, so the next run shows the schedules as stored."""
    st.session_state.pop(_key(agent), None)


def _blank() -> dict[str, object]:
    return {"uid": uuid.uuid4().hex[:8], "action": None, "cron": "0 22 * * *", "timezone": "UTC", "enabled": True}


def schedule_rows(agent: Agent) -> list[ScheduleRow]:
    """Draw the rows (stored ones first) and return them as the operator left them, finished or not."""
    rows: list[dict[str, object]] = st.session_state.setdefault(
        _key(agent),
        [{**_blank(), "action": s.action, "cron": s.cron, "timezone": s.timezone, "enabled": s.enabled}
         for s in agent.policy.schedules],
    )
    out: list[ScheduleRow] = []
    for n, row in enumerate(list(rows), start=1):
        uid = row["uid"]
        with st.container(border=True):
            c = st.columns([2, 3, 3, 1], vertical_alignment="bottom")
            action = c[0].selectbox(
                f"Schedule {n}: action", ACTIONS, index=ACTIONS.index(row["action"]) if row["action"] in ACTIONS
                else None, placeholder="choose…", key=f"sched_action_{uid}",
            )  # fmt: skip
            choices = [*PRESETS, CUSTOM]
            preset = c[1].selectbox("When", choices, index=choices.index(preset_for(str(row["cron"]))),
                                    key=f"sched_preset_{uid}")
            if preset == CUSTOM:
                cron = c[1].text_input("Cron (minute hour day month weekday)", str(row["cron"]),
                                       key=f"sched_cron_{uid}")
            else:
                cron = PRESETS[preset]
            zones = ZONES if row["timezone"] in ZONES else [str(row["timezone"]), *ZONES]
            tz = c[2].selectbox("Time zone", zones, index=zones.index(str(row["timezone"])), key=f"sched_tz_{uid}")
            enabled = c[3].toggle("On", bool(row["enabled"]), key=f"sched_on_{uid}")
            runs = next_runs(cron, tz)
            words = describe(cron)
            st.caption(
                f"{(action or 'choose an action').capitalize()} {words} ({tz})"
                + (" · next: " + ", ".join(f"{t:%a %d %b %H:%M %Z}" for t in runs) if runs else "")
                + ("" if enabled else " · paused")
            )
            if st.button("Remove", key=f"sched_remove_{uid}"):
                rows.remove(row)
                st.rerun()
        out.append(ScheduleRow(action=action, cron=cron, timezone=tz, enabled=enabled))
    if len(rows) < len(ACTIONS) and st.button("＋ Add a schedule", key=f"sched_add_{agent.id}"):
        rows.append(_blank())
        st.rerun()
    return out
