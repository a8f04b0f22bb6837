"""Memory and CPU per agent on the Health page: the seam where the metrics functions' series are drawn.

Until a function serves per-agent history, this shows the one figure the health check carries
(memory now) and says where the history will come from.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from console import ui
from console.client import ParadyzeClient
from console.models import AgentHealth


def draw(client: ParadyzeClient, agents: list[AgentHealth]) -> None:
    """Per-agent memory and CPU over time; today, memory now, from the health check."""
    now = [{"Agent": a.name or a.agent_id[:8], "Memory now": ui.size(a.memory_bytes)}
           for a in agents if a.memory_bytes]
    st.caption("History of memory and CPU per agent comes from the platform's metrics functions, "
               "which this deployment does not serve yet; until then, memory as of this check.")
    if now:
        st.dataframe(pd.DataFrame(now), hide_index=True)
