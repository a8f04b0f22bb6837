"""Experiments: every A/B run with its variants' scores, as a table and a chart, and each case's checks."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from console import ui
from console.client import ApiError

ui.header("🧪 Experiments")
ui.stop_if_backend_down()
client = ui.client()

st.write("An experiment runs one test agent per variant of a character against scripted conversations, "
         "scores each variant, keeps the results and deletes the test agents (`run_experiment`).")
try:
    experiments = client.call("GET", "list_experiments", params={"limit": 200})["experiments"]
except ApiError as exc:
    ui.show_error(exc, "Listing the experiments")
    st.stop()

st.subheader(f"{len(experiments)} experiments")
if not experiments:
    st.info("No experiments yet: run one with run_experiment (see the README).")
    st.stop()
st.dataframe(
    pd.DataFrame([{"Created": e["created_at"], "Name": e["name"], "Status": e["status"], "Best": e["best"],
                   "Variants": len(e["variants"]), "ID": e["id"]} for e in experiments]),
    hide_index=True, width="stretch",
)
labels = {e["id"]: f"{e['name']} ({e['created_at'][:19]}, {e['status']})" for e in experiments}
chosen = st.selectbox("Experiment", list(labels), format_func=labels.__getitem__, key="exp_pick")
experiment = next(e for e in experiments if e["id"] == chosen)
if experiment["error"]:
    st.warning(experiment["error"])
results = experiment["results"]
if results:
    scores = pd.DataFrame([{"Variant": r["variant"], "Score": r["score"], "Cases passed": r["passed"],
                            "Cases": len(r["cases"])} for r in results])
    st.dataframe(scores, hide_index=True, width="stretch")
    st.bar_chart(scores.set_index("Variant")["Score"], y_label="score (0-1)")
    for result in results:
        with st.expander(f"{result['variant']}: {result['score']:.2f}"):
            st.dataframe(pd.DataFrame([
                {"Case": case["name"], "Turn": n + 1, "Message": turn["message"], "Reply": turn["reply"],
                 "Score": turn["score"],
                 "Checks": "; ".join(f"{'✓' if c['passed'] else '✗' if c['passed'] is False else '–'} {c['check']}"
                                     for c in turn["checks"])}
                for case in result["cases"] for n, turn in enumerate(case["turns"])]), hide_index=True)
