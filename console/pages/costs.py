"""Costs: running hours from the events, priced at Cloud Run's published prices; over time and per agent."""

from __future__ import annotations

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from console import analytics, pricing, ui
from console.client import ApiError
from console.settings import get_console_settings

SHORT_HOURS = 7 * 24  # less history than a week makes a monthly projection a guess

ui.header("💰 Costs")
ui.stop_if_backend_down()
client = ui.client()
settings = get_console_settings()

st.caption(
    "An estimate: each agent's share of time spent running (from its status events), projected over a "
    "month and priced per running agent-hour at Cloud Run's published instance-based prices for the "
    f"region ({pricing.SOURCE}), plus a fixed platform fee you set."
)
c1, c2, c3, c4 = st.columns(4)
regions = list(pricing.REGIONS)
default_region = settings.region if settings.region in regions else pricing.DEFAULT_REGION
region = c1.selectbox("Region", regions, index=regions.index(default_region), key="cost_region")
vcpus = c2.number_input("vCPUs per agent", 0.25, 8.0, pricing.DEFAULT_VCPUS, step=0.25, key="cost_vcpus")
gib = c3.number_input("GiB per agent", 0.125, 32.0, pricing.DEFAULT_GIB, step=0.125, key="cost_gib")
days = c4.number_input("Look back (days)", 1, 90, 30, key="cost_days")
published = pricing.price(region)
c5, c6 = st.columns(2)
# Keyed by what the price is computed from, so changing region or size shows that price again.
rate = c5.number_input(
    "$ per running agent-hour", 0.0, 10.0, published.per_agent_hour(vcpus, gib), step=0.001, format="%.4f",
    key=f"cost_rate_{region}_{vcpus}_{gib}",
    help=f"{region} is a Tier {published.tier} region: ${published.per_vcpu_second:.7f} per vCPU-second and "
    f"${published.per_gib_second:.7f} per GiB-second",
)  # fmt: skip
fee = c6.number_input("Fixed platform fee, $ / month", 0.0, 10_000.0, analytics.DEFAULT_PLATFORM_FEE, step=5.0,
                      key="cost_fee")
st.session_state["hourly_rate"] = float(rate)  # the Agents list prices its $/month column the same way

agents = ui.load_agents()
if agents is None:
    st.stop()
try:
    events = client.agent_events(limit=5000)
except ApiError as exc:
    ui.show_error(exc, "Loading the events")
    events = []

window = timedelta(days=int(days))
estimate = analytics.estimate_costs(agents, events, now=ui.now(), rate=float(rate), platform_fee=float(fee),
                                    window=window)
m = st.columns(4)
m[0].metric("Estimated / month", f"${estimate.monthly_total:,.2f}")
m[1].metric("Always-on / month", f"${estimate.always_on_total:,.2f}")
share = estimate.saved / estimate.always_on_total if estimate.always_on_total else 0.0
m[2].metric("Saved by hibernation", f"${estimate.saved:,.2f}", delta=f"{share:.0%}")
m[3].metric("Agents", len(agents))
if not agents:
    st.info("No agents yet, so only the platform fee applies.")
    st.stop()
observed = max(a.observed_hours for a in estimate.agents)
if observed < SHORT_HOURS:
    st.warning(
        f"**Only {ui.duration(observed * 3600)} observed.** The monthly figures project that much history "
        "over 730 hours; a week or more of running and hibernating makes them worth trusting.",
        icon="⏳",
    )
per_100 = fee + (estimate.monthly_total - fee) / len(agents) * 100
st.caption(f"At this running share, 100 agents would cost about ${per_100:,.0f} a month.")

rows = [
    {
        "Agent": a.name,
        "Status": ui.badge(a.status),
        "Running h (observed)": round(a.running_hours, 2),
        "Observed h": round(a.observed_hours, 2),
        "Running share": a.monthly_hours / analytics.HOURS_PER_MONTH,
        "$ / month": round(a.monthly_cost, 2),
        "$ always-on": round(a.always_on_cost, 2),
    }
    for a in sorted(estimate.agents, key=lambda a: a.monthly_cost, reverse=True)
]
overall, one = st.tabs(["All agents", "One agent"])
daily = pd.DataFrame(analytics.running_hours_by_day(agents, events, now=ui.now(), window=window))
daily["cost"] = daily["hours"] * float(rate)

with overall:
    st.dataframe(
        pd.DataFrame(rows), hide_index=True, width="stretch",
        column_config={
            "Running share": st.column_config.ProgressColumn("Running share", format="percent", min_value=0,
                                                             max_value=1),
            "$ / month": st.column_config.NumberColumn(format="$%.2f"),
            "$ always-on": st.column_config.NumberColumn(format="$%.2f"),
        },
    )  # fmt: skip
    st.subheader("Cost per day")
    st.altair_chart(
        alt.Chart(daily).mark_bar().encode(
            x=alt.X("day:T", title=None, axis=alt.Axis(format="%d %b", labelAngle=0)),
            y=alt.Y("sum(cost):Q", title="$ per day"),
            color=alt.Color("name:N", title="Agent"),
            tooltip=[alt.Tooltip("day:T", format="%Y-%m-%d"), "name:N", alt.Tooltip("cost:Q", format="$.4f"),
                     alt.Tooltip("hours:Q", format=".2f", title="running hours")],
        ),
        width="stretch",
    )  # fmt: skip

with one:
    names = {a.agent_id: a for a in estimate.agents}
    picked = st.selectbox("Agent", list(names), format_func=lambda i: names[i].name, key="cost_agent")
    chosen = names[picked]
    k = st.columns(3)
    k[0].metric("$ / month", f"${chosen.monthly_cost:,.2f}")
    k[1].metric("Running share", f"{chosen.monthly_hours / analytics.HOURS_PER_MONTH:.0%}")
    k[2].metric("Observed", ui.duration(chosen.observed_hours * 3600))
    mine = daily[daily["agent_id"] == picked]
    st.altair_chart(
        alt.Chart(mine).mark_bar(color="#2e7d32").encode(
            x=alt.X("day:T", title=None, axis=alt.Axis(format="%d %b", labelAngle=0)),
            y=alt.Y("hours:Q", title="running hours", scale=alt.Scale(domain=[0, 24])),
            tooltip=[alt.Tooltip("day:T", format="%Y-%m-%d"), alt.Tooltip("hours:Q", format=".2f"),
                     alt.Tooltip("cost:Q", format="$.4f")],
        ),
        width="stretch",
    )  # fmt: skip
