"""Helpers every page shares: the client, the backend banner, readable errors and status badges."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from console import pricing
from console.client import ApiError, BackendDown, ParadyzeClient
from console.identity import NoIdentity
from console.models import Agent
from console.settings import get_console_settings

STATUS_BADGES = {
    "running": "🟢 running",
    "provisioning": "🔵 provisioning",
    "waking": "🔵 waking",
    "hibernating": "🟡 hibernating",
    "hibernated": "💤 hibernated",
    "error": "🔴 error",
    "deleting": "⚫ deleting",
    "deleted": "🗑️ deleted",
}
STATUS_COLOURS = {
    "running": "#2e7d32",
    "provisioning": "#1e88e5",
    "waking": "#64b5f6",
    "hibernating": "#f9a825",
    "hibernated": "#9e9e9e",
    "error": "#c62828",
    "deleting": "#424242",
    "deleted": "#424242",
}
PLATFORM_OWNER = "00000000-0000-0000-0000-000000000000"
_BACKEND_KEY = "_backend_error"


def client() -> ParadyzeClient:
    settings = get_console_settings()
    # The token is read on every run so a restarted emulator's new token is picked up.
    try:
        token = settings.token()
    except NoIdentity:
        token = None  # check_backend has said why; calls answer 401
    return ParadyzeClient(settings.api_url, token, timeout=settings.request_timeout)


def check_backend() -> None:
    """Once per run (from app.py): remember whether the functions can be used with this token."""
    settings = get_console_settings()
    try:
        token = settings.token()
    except NoIdentity as exc:
        problem: ApiError | None = ApiError("console identity", 401, "no_identity", str(exc))
    else:
        if token is None:
            problem = ApiError("admin token", 401, "no_token", "No admin token is configured.")
        else:
            problem = client().reachable()
    st.session_state[_BACKEND_KEY] = problem


def header(title: str) -> None:
    """The page title, and under it the banner when the functions cannot be used (on every page)."""
    st.title(title)
    problem = st.session_state.get(_BACKEND_KEY)
    if problem is None:
        return
    settings = get_console_settings()
    if isinstance(problem, BackendDown):
        st.error(
            f"**The Paradyze functions are not answering at {settings.api_url}.** {problem.message}\n\n"
            "Start them (`python -m local_emulator`) or point `PARADYZE_API_URL` at the deployed "
            "functions, then reload this page.",
            icon="🚨",
        )
    elif problem.code == "no_token":
        st.error(
            "**No admin token.** Set `PARADYZE_ADMIN_TOKEN`, or start the local emulator, which writes "
            f"`{settings.home / 'admin-token'}`.",
            icon="🔑",
        )
    elif problem.code == "no_identity":
        st.error(
            f"**The console has no Google identity** to call the functions for `{settings.api_audience}`"
            f" (`PARADYZE_API_AUDIENCE`): {problem.message}. On Cloud Run it uses its service account; elsewhere"
            " set `PARADYZE_ADMIN_TOKEN` instead.",
            icon="🔑",
        )
    else:
        show_error(problem, "Connecting to the functions")


def backend_down() -> bool:
    return st.session_state.get(_BACKEND_KEY) is not None


def stop_if_backend_down() -> None:
    if backend_down():
        st.info("This page needs the functions; it will fill in once they answer.")
        st.stop()


def show_error(exc: ApiError, action: str) -> None:
    """The server's message, what to do next, and per-field details; never a traceback."""
    lines = [f"**{action} failed:** {exc.message}", "", exc.hint]
    fields = exc.field_errors()
    if fields:
        lines.append("")
        lines.extend(f"- `{loc or '(request)'}`: {msg}" for loc, msg in fields.items())
    st.error("\n".join(lines), icon="⚠️")


def badge(status: str | None) -> str:
    return STATUS_BADGES.get(status or "", f"⚪ {status or 'unknown'}")


def now() -> datetime:
    return datetime.now(UTC)


def ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return f"{duration((now() - moment).total_seconds())} ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(int(seconds), 0)
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def uptime(agent: Agent) -> str:
    if agent.status != "running" or agent.started_at is None:
        return "—"
    return duration((now() - agent.started_at).total_seconds())


def size(num_bytes: int | None) -> str:
    value = float(num_bytes or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def owner(owner_id: str | None) -> str:
    """Who owns an agent, as an operator reads it: the platform, or the user's id in full."""
    if not owner_id or owner_id == PLATFORM_OWNER:
        return "platform"
    return owner_id


def label(agent: Agent) -> str:
    return f"{agent.name} · {badge(agent.status)} · {agent.id[:8]}"


def load_agents(status: str | None = None, q: str | None = None) -> list[Agent] | None:
    """The agent list, or None after showing why it could not be loaded."""
    try:
        return client().list_agents(status=status, q=q)
    except ApiError as exc:
        show_error(exc, "Loading the agents")
        return None


def agents_and_link() -> tuple[dict[str, Agent], str | None]:
    """Every agent by id, and the agent the page's link names (?agent_id=); stops the page after saying
    why when the agents cannot be loaded, there are none, or the link names an unknown agent (a stale
    or mistyped link never shows some other agent in its place)."""
    agents = load_agents()
    if agents is None:
        st.stop()
    by_id = {a.id: a for a in agents}
    wanted = st.query_params.get("agent_id")
    if wanted and wanted not in by_id:
        st.error(f"**Agent `{wanted}` not found.** It may have been deleted, or the link is mistyped.", icon="🔍")
        st.page_link("views/agents.py", label="Back to all agents", icon="🤖")
        st.stop()
    if not agents:
        st.info("No agents yet. Create one on the **Create agent** page.")
        st.stop()
    return by_id, wanted


def hourly_rate() -> float:
    """$ per running agent-hour: what the Costs page set, else the configured region's published price."""
    if "hourly_rate" in st.session_state:  # kept by the Costs page (its widgets' own state is not)
        return float(st.session_state["hourly_rate"])
    region = get_console_settings().region
    try:
        return pricing.price(region).per_agent_hour()
    except KeyError:
        return pricing.price(pricing.DEFAULT_REGION).per_agent_hour()


# Narrow screens: smaller metrics and tighter padding, so a phone shows the table, not three numbers.
_PHONE_CSS = """
@media (max-width: 640px) {
  [data-testid="stMetricValue"] { font-size: 1.25rem; }
  [data-testid="stMetricLabel"] { font-size: 0.8rem; }
  .block-container { padding: 2.5rem 0.75rem 1rem; }
  h1 { font-size: 1.6rem; }
}
"""
# Streamlit's own theme is chosen per browser in ⋮ → Settings; this toggle is the one-click version,
# applied to this session only. Tables and charts draw on canvas, so they are inverted as a whole.
_DARK_CSS = """
.stApp, [data-testid="stHeader"], [data-testid="stSidebar"] { background: #0e1117; color: #fafafa; }
.stApp p, .stApp li, .stApp label, .stApp h1, .stApp h2, .stApp h3, .stApp span,
[data-testid="stMetricValue"], [data-testid="stCaptionContainer"] { color: #fafafa; }
[data-testid="stDataFrame"], [data-testid="stVegaLiteChart"] { filter: invert(0.9) hue-rotate(180deg); }
.stApp input, .stApp textarea, .stApp [data-baseweb="select"] > div { background: #262730; color: #fafafa; }
"""


def responsive_layout() -> None:
    st.html(f"<style>{_PHONE_CSS}</style>")


def theme_toggle() -> None:
    if st.toggle("🌙 Dark theme", key="console_dark"):
        st.html(f"<style>{_DARK_CSS}</style>")
