"""The Paradyze admin console: `streamlit run console/app.py` (env PARADYZE_API_URL, PARADYZE_ADMIN_TOKEN)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts console/ itself on sys.path; the pages import the package as `console.*`.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from console import ui  # noqa: E402
from console.settings import get_console_settings  # noqa: E402

_PAGES = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="Paradyze console", page_icon="🌴", layout="wide")

home = st.Page(_PAGES / "agents.py", title="Agents", icon="🤖", url_path="home", default=True)


def _to_home() -> None:
    # /agents, as people type a link to the list, leads to it. (The pages live in views/, not pages/:
    # Streamlit would also serve a pages/ folder by file name, and /agents would leave this navigation.)
    st.switch_page(home)


pages = st.navigation(
    {
        "Agents": [
            home,
            st.Page(_to_home, title="Agents", url_path="agents", visibility="hidden"),
            st.Page(_PAGES / "create_agent.py", title="Create agent", icon="➕", url_path="create"),
            st.Page(_PAGES / "agent_detail.py", title="Agent detail", icon="🔎", url_path="agent"),
            st.Page(_PAGES / "releases.py", title="Releases", icon="🚀", url_path="releases"),
            st.Page(_PAGES / "experiments.py", title="Experiments", icon="🧪", url_path="experiments"),
        ],
        "Platform": [
            st.Page(_PAGES / "backups.py", title="Backups", icon="💾", url_path="backups"),
            st.Page(_PAGES / "health.py", title="Health", icon="🩺", url_path="health"),
            st.Page(_PAGES / "costs.py", title="Costs", icon="💰", url_path="costs"),
        ],
    }
)

settings = get_console_settings()
with st.sidebar:
    st.caption(f"Functions: `{settings.api_url}`")
    st.caption(settings.token_source())
    ui.theme_toggle()
ui.responsive_layout()

ui.check_backend()
pages.run()
