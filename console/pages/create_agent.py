"""Create agent: start from a fixture, an upload or a blank file; edit, check, choose runtime and policy."""

from __future__ import annotations

import hashlib
import json
import uuid
from zoneinfo import available_timezones

import streamlit as st

from console import progress, ui
from console.characters import (
    LIST_FIELDS,
    STYLE_KEYS,
    TEXT_FIELDS,
    merge_character,
    server_field_errors,
    split_character,
    validate_character,
    validate_schedule,
)
from console.client import ApiError
from console.schedules import describe, next_runs
from console.settings import get_console_settings

_P = "cc_"  # session-state prefix of this page's widgets
_BLANK = {"name": "", "bio": [""]}
_LABELS = {
    "name": "Name",
    "username": "Username",
    "system": "System prompt",
    "modelProvider": "Model provider",
    "bio": "Bio (one entry per line)",
    "lore": "Lore (one per line)",
    "adjectives": "Adjectives (one per line)",
    "topics": "Topics (one per line)",
    "postExamples": "Post examples (one per line)",
    "plugins": "Plugins (one per line)",
    "clients": "Clients (one per line)",
}

ui.header("➕ Create agent")
settings = get_console_settings()


def _load(source_id: str, character: dict) -> None:
    """Put a character into the editor's widgets (only when the source changes, not on every edit)."""
    form, rest, secrets = split_character(character)
    for key, value in form.items():
        st.session_state[_P + key] = value
    for key in [*TEXT_FIELDS, *LIST_FIELDS, *(f"style.{k}" for k in STYLE_KEYS)]:
        st.session_state.setdefault(_P + key, "")
    st.session_state[_P + "rest"] = json.dumps(rest, indent=2, ensure_ascii=False)
    st.session_state[_P + "secret_names"] = list(secrets)
    for name, value in secrets.items():
        st.session_state[_P + "secret." + name] = value
    st.session_state[_P + "source"] = source_id
    st.session_state[_P + "idempotency"] = str(uuid.uuid4())
    st.session_state.pop(_P + "server_errors", None)


# -- where the character comes from ----------------------------------------------------------
fixtures = {path.name: path for path in settings.fixture_files()}
origins = ["Fixture", "Upload", "Blank"] if fixtures else ["Upload", "Blank"]
origin = st.radio("Start from", origins, horizontal=True, key=_P + "origin")
if origin == "Fixture":
    name = st.selectbox("Fixture", list(fixtures), key=_P + "fixture")
    source_id = f"fixture:{name}"
    if st.session_state.get(_P + "source") != source_id:
        _load(source_id, json.loads(fixtures[name].read_text()))
elif origin == "Upload":
    upload = st.file_uploader("Character file (.json)", type=["json"], key=_P + "upload")
    if upload is None:
        st.info("Upload an ElizaOS character file (`*.character.json`) to edit it here.")
        st.stop()
    raw = upload.getvalue()
    source_id = f"upload:{hashlib.sha256(raw).hexdigest()}"
    if st.session_state.get(_P + "source") != source_id:
        try:
            uploaded = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            st.error(f"**{upload.name} is not valid JSON:** {exc}. Fix the file and upload it again.")
            st.stop()
        if not isinstance(uploaded, dict):
            st.error(f"**{upload.name} is not a character:** the file must hold one JSON object.")
            st.stop()
        _load(source_id, uploaded)
elif st.session_state.get(_P + "source") != "blank":
    _load("blank", _BLANK)


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _server_errors(part: str, current: object) -> dict[str, str]:
    """The server's 422 field errors for `part`, while that part is unchanged since it was sent."""
    stored = st.session_state.get(_P + "server_errors", {}).get(part)
    return stored[1] if stored and stored[0] == _digest(current) else {}


def _field_error(key: str, errors: dict[str, str], server: dict[str, str]) -> None:
    message = errors.get(key) or server.get(key)
    if message:
        st.error(f"**{key}**: {message}", icon="⚠️")


# -- the editor -----------------------------------------------------------------------------
st.subheader("Character")
form_values: dict[str, object] = {"bio_is_text": st.session_state.get(_P + "bio_is_text", False)}
left, right = st.columns(2)
with left:
    for key in ("name", "username", "modelProvider"):
        form_values[key] = st.text_input(_LABELS[key], key=_P + key)
        if key == "name":
            name_slot = st.empty()  # filled once the whole character has been checked
    form_values["system"] = st.text_area(_LABELS["system"], key=_P + "system", height=120)
    form_values["bio"] = st.text_area(_LABELS["bio"], key=_P + "bio", height=160)
    bio_slot = st.empty()
    form_values["lore"] = st.text_area(_LABELS["lore"], key=_P + "lore", height=120)
with right:
    for key in ("adjectives", "topics", "postExamples", "plugins", "clients"):
        form_values[key] = st.text_area(_LABELS[key], key=_P + key, height=90)
    for key in STYLE_KEYS:
        form_values[f"style.{key}"] = st.text_area(
            f"Style: {key} (one per line)", key=_P + f"style.{key}", height=90
        )

secrets: dict[str, str] = {}
secret_names = st.session_state.get(_P + "secret_names", [])
if secret_names:
    with st.expander(f"Secrets ({len(secret_names)}) — sent encrypted, never shown again", expanded=False):
        for secret in secret_names:
            secrets[secret] = st.text_input(secret, key=_P + "secret." + secret, type="password")

rest_text = st.text_area(
    "Everything else (JSON): messageExamples, settings, knowledge, templates…", key=_P + "rest", height=220
)
try:
    rest = json.loads(rest_text or "{}")
    rest_error = None if isinstance(rest, dict) else "must be a JSON object ({...})"
except json.JSONDecodeError as exc:
    rest, rest_error = {}, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
if rest_error:
    st.error(f"**Other fields**: {rest_error}", icon="⚠️")

character = merge_character(form_values, rest if isinstance(rest, dict) else {}, secrets)
errors = validate_character(character)
server_errors = _server_errors("character", character)
with name_slot.container():
    _field_error("name", errors, server_errors)
with bio_slot.container():
    _field_error("bio", errors, server_errors)
other = {k: v for k, v in {**server_errors, **errors}.items() if k not in ("name", "bio")}
for key, message in other.items():
    st.error(f"**{key or 'character'}**: {message}", icon="⚠️")

# -- runtime and policy ---------------------------------------------------------------------
st.subheader("Runtime and policy")
c1, c2, c3 = st.columns(3)
runtime = c1.selectbox("Runtime", ["process", "docker", "cloud_run"], key=_P + "runtime")
idle = c2.number_input("Hibernate after idle (minutes)", 1, 7 * 24 * 60, 60, key=_P + "idle")
auto = c3.toggle("Auto-hibernate when idle", True, key=_P + "auto")
zones = sorted(available_timezones())
s1, s2, s3 = st.columns(3)
tz = s1.selectbox("Schedule time zone", zones, index=zones.index("UTC"), key=_P + "tz")
schedules: list[dict[str, object]] = []
policy_errors: dict[str, str] = {}
for column, action, default in ((s2, "hibernate", "0 22 * * *"), (s3, "wake", "0 8 * * 1-5")):
    with column:
        if st.checkbox(f"{action.capitalize()} on a schedule", key=_P + f"sched_{action}"):
            cron = st.text_input(f"{action.capitalize()} at (cron)", default, key=_P + f"cron_{action}")
            st.caption(f"{action.capitalize()} {describe(cron)} ({tz}); next: "
                       + ", ".join(f"{t:%a %d %b %H:%M %Z}" for t in next_runs(cron, tz)))
            problems = validate_schedule(cron, tz)
            for field, message in problems.items():
                st.error(f"**{action} {field}**: {message}", icon="⚠️")
                policy_errors[f"{action}.{field}"] = message
            schedules.append({"action": action, "cron": cron.strip(), "timezone": tz, "enabled": True})
policy = {"idle_timeout_minutes": int(idle), "auto_hibernate": bool(auto), "schedules": schedules}
owner = st.text_input("Owner's user id (empty: the platform owns it)", key=_P + "owner").strip()
try:
    owner = str(uuid.UUID(owner)) if owner else ""
except ValueError:
    st.error("**owner**: must be a user id (a uuid), or empty", icon="⚠️")
    policy_errors["owner"] = "not a uuid"
for key, message in {**_server_errors("policy", policy), **_server_errors("request", runtime)}.items():
    st.error(f"**{key}**: {message}", icon="⚠️")

with st.expander("Preview the request"):
    shown = json.loads(json.dumps(character))
    if isinstance(shown.get("settings"), dict) and isinstance(shown["settings"].get("secrets"), dict):
        shown["settings"]["secrets"] = {
            k: "••••" if v else "" for k, v in shown["settings"]["secrets"].items()
        }
    st.json({"character": shown, "runtime": runtime, "policy": policy, "owner": owner or None}, expanded=False)

# -- send -------------------------------------------------------------------------------------
blocked = bool(errors or rest_error or policy_errors)
if blocked:
    st.caption("Fix the fields marked above to create the agent.")
request_digest = _digest([character, policy, runtime, owner])
failure = st.session_state.get(_P + "failure")
if failure and failure[0] == request_digest:
    ui.show_error(failure[1], "Creating the agent")
if st.button("Create agent", type="primary", disabled=blocked or ui.backend_down(), key=_P + "create"):
    client = ui.client()
    before = {a.id for a in client.list_agents()}
    found: list[str] = []

    def _new_agent() -> str | None:
        """The agent this create made, once the functions have recorded it (to show its steps)."""
        if not found:
            found.extend(a.id for a in client.list_agents(q=str(character.get("name") or "")) if a.id not in before)
        return found[0] if found else None

    try:
        agent = progress.follow(
            client, f"Creating {character.get('name')}",
            lambda: client.create_agent(character, runtime, policy, owner=owner or None,
                                        idempotency_key=st.session_state.get(_P + "idempotency")),
            _new_agent,
        )
    except ApiError as exc:
        fields = exc.field_errors()
        # Kept with a digest of what was sent, so each error shows beside its field until edited.
        st.session_state[_P + "server_errors"] = {
            "character": (_digest(character), server_field_errors(fields)),
            "policy": (_digest(policy), server_field_errors(fields, "policy")),
            "request": (_digest(runtime), {k: v for k, v in fields.items() if k in ("runtime", "owner")}),
        }
        st.session_state[_P + "failure"] = (request_digest, exc)
        st.rerun()
    st.session_state[_P + "idempotency"] = str(uuid.uuid4())  # the next click is a new agent
    st.session_state.pop(_P + "server_errors", None)
    st.session_state.pop(_P + "failure", None)
    st.session_state["created_agent_id"] = agent.id
    st.success(f"Created **{agent.name}** ({ui.badge(agent.status)}), id `{agent.id}`.")
    st.page_link(
        "pages/agent_detail.py", label="Open its detail page", icon="🔎", query_params={"agent_id": agent.id}
    )
