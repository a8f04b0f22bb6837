"""Costs: running hours per agent from the events, a monthly estimate, and what hibernation saves."""

from __future__ import annotations

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from console import analytics, ui
from console.client import ApiError

ui.header("💰 Costs")
ui.stop_if_backend_down()
client = ui.client()

st.caption(
    "An estimate: each agent's share of time spent running (from its status events) projected over a "
    "month and priced per running agent-hour, plus a fixed platform fee. The defaults fit the plan's "
    "$70–170 a month for 100 agents; change them to your provider's prices."
)
c1, c2, c3 = st.columns(3)
rate = c1.number_input(
    "$ per running agent-hour",
    0.0,
    10.0,
    analytics.DEFAULT_RATE_PER_AGENT_HOUR,
    step=0.001,
    format="%.4f",
    key="cost_rate",
)
fee = c2.number_input(
    "Fixed platform fee, $ / month", 0.0, 10_000.0, analytics.DEFAULT_PLATFORM_FEE, step=5.0, key="cost_fee"
)
days = c3.number_input("Look back (days)", 1, 90, 30, key="cost_days")

agents = ui.load_agents()
if agents is None:
    st.stop()
try:
    events = client.agent_events(limit=1000)
except ApiError as exc:
    ui.show_error(exc, "Loading the events")
    events = []

estimate = analytics.estimate_costs(
    agents, events, now=ui.now(), rate=float(rate), platform_fee=float(fee), window=timedelta(days=int(days))
)
m = st.columns(4)
m[0].metric("Estimated / month", f"${estimate.monthly_total:,.2f}")
m[1].metric("Always-on / month", f"${estimate.always_on_total:,.2f}")
share = estimate.saved / estimate.always_on_total if estimate.always_on_total else 0.0
m[2].metric("Saved by hibernation", f"${estimate.saved:,.2f}", delta=f"{share:.0%}")
m[3].metric("Agents", len(agents))
if len(agents):
    per_100 = fee + (estimate.monthly_total - fee) / len(agents) * 100
    st.caption(f"At this running share, 100 agents would cost about ${per_100:,.0f} a month.")

if not agents:
    st.info("No agents yet, so only the platform fee applies.")
    st.stop()

rows = [
    {
        "Agent": a.name,
        "Status": ui.badge(a.status),
        "Running h (observed)": round(a.running_hours, 2),
        "Observed h": round(a.observed_hours, 2),
        "Running share": a.monthly_hours / analytics.HOURS_PER_MONTH,
        "Hours / month": round(a.monthly_hours, 1),
        "$ / month": round(a.monthly_cost, 2),
        "$ always-on": round(a.always_on_cost, 2),
    }
    for a in sorted(estimate.agents, key=lambda a: a.monthly_cost, reverse=True)
]
st.dataframe(
    pd.DataFrame(rows),
    hide_index=True,
    width="stretch",
    column_config={
        "Running share": st.column_config.ProgressColumn(
            "Running share", format="percent", min_value=0, max_value=1
        ),
        "$ / month": st.column_config.NumberColumn(format="$%.2f"),
        "$ always-on": st.column_config.NumberColumn(format="$%.2f"),
    },
)

chart = pd.DataFrame(
    [{"Agent": r["Agent"], "Cost": r["$ / month"], "Kind": "with hibernation"} for r in rows]
    + [{"Agent": r["Agent"], "Cost": r["$ always-on"], "Kind": "always-on"} for r in rows]
)
st.altair_chart(
    alt.Chart(chart)
    .mark_bar()
    .encode(
        x=alt.X("Cost:Q", title="$ / month"),
        y=alt.Y("Agent:N", title=None),
        yOffset="Kind:N",
        color=alt.Color("Kind:N", scale=alt.Scale(range=["#9e9e9e", "#2e7d32"])),
        tooltip=["Agent", "Kind", alt.Tooltip("Cost:Q", format="$.2f")],
    ),
    width="stretch",
)
