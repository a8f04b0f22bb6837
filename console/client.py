"""A small typed HTTP client for the Paradyze function URLs, with every failure turned into ApiError."""

from __future__ import annotations

from typing import Any

import requests

from console.models import (
    Agent,
    AgentHealth,
    Backup,
    BackupContents,
    CharacterVersion,
    ChatMessage,
    Event,
    HealthReport,
    MessageResult,
    Release,
    Restore,
)

# Rows asked for per request: the functions answer at most 200 (a 422 beyond).
PAGE = 200

# What an operator should do next, by status; the server's own message says what went wrong.
_HINTS = {
    400: "The console sent a request the server could not read; reload the page and try again.",
    401: "The admin token was rejected: set PARADYZE_ADMIN_TOKEN or check $PARADYZE_HOME/admin-token.",
    403: "This token is not an admin (service_role) token; the console needs the admin token.",
    404: "It no longer exists (or is not visible to this token); refresh the list.",
    409: "The agent's current state does not allow this; wait for it to settle, refresh, and try again.",
    413: "The request is larger than 1 MiB; shorten large fields such as knowledge and try again.",
    422: "Fix the fields listed below and send again.",
}


class ApiError(Exception):
    """A function call that failed: what was called, the server's code, message and field details."""

    def __init__(
        self,
        operation: str,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.retry_after = retry_after

    @property
    def hint(self) -> str:
        if self.status in _HINTS:
            return _HINTS[self.status]
        if self.status == 503:
            wait = f"{self.retry_after:g} seconds" if self.retry_after else "a moment"
            return f"A dependency is down or busy; try again in {wait}."
        return "The server failed unexpectedly; check the function logs, then try again."

    def field_errors(self) -> dict[str, str]:
        """422 details keyed by dotted field path, e.g. {"character.bio": "Field required"}."""
        out: dict[str, str] = {}
        for item in self.details:
            loc = ".".join(str(part) for part in item.get("loc") or [])
            msg = str(item.get("msg") or item.get("message") or "invalid")
            out[loc] = f"{out[loc]}; {msg}" if loc in out else msg
        return out


class BackendDown(ApiError):
    """The functions did not answer at all (connection refused, DNS, timeout)."""


class ParadyzeClient:
    """Calls the function URLs with the admin token. One instance per console session."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 90.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self._http = session or requests.Session()

    def __repr__(self) -> str:  # never the token
        return f"ParadyzeClient({self.base_url!r})"

    def url(self, function: str) -> str:
        """Where a function answers: base/function, or, when each function is a Cloud Run service of its
        own, the base with `{function}` replaced by the service's name (`https://paradyze-{function}-...`)."""
        if "{function}" in self.base_url:
            return self.base_url.replace("{function}", function.replace("_", "-"))
        return f"{self.base_url}/{function}"

    # -- transport ---------------------------------------------------------------------------

    def call(
        self,
        method: str,
        function: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One request to one function; returns the JSON object or raises ApiError."""
        sent = {"Accept": "application/json", **(headers or {})}
        if self._token:
            sent["Authorization"] = f"Bearer {self._token}"
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            resp = self._http.request(
                method,
                self.url(function),
                params=clean or None,
                json=body if method != "GET" else None,
                headers=sent,
                timeout=timeout or self.timeout,
            )
        except requests.Timeout as exc:
            raise BackendDown(
                function, 0, "timeout", f"No answer from {self.base_url} within {timeout or self.timeout:g}s."
            ) from exc
        except requests.RequestException as exc:
            raise BackendDown(
                function, 0, "backend_down", f"Cannot reach the Paradyze functions at {self.base_url}."
            ) from exc
        return _decode(function, resp)

    def reachable(self) -> ApiError | None:
        """None when the functions answer with this token; the error otherwise (for the banner)."""
        try:
            self.call("GET", "list_agents", params={"status": "running", "limit": 1}, timeout=5)
        except ApiError as exc:
            return exc
        return None

    # -- agents ------------------------------------------------------------------------------

    def create_agent(
        self,
        character: dict[str, Any],
        runtime: str = "process",
        policy: dict[str, Any] | None = None,
        *,
        owner: str | None = None,
        idempotency_key: str | None = None,
    ) -> Agent:
        body: dict[str, Any] = {"character": character, "runtime": runtime}
        if policy:
            body["policy"] = policy
        if owner:
            body["owner"] = owner
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        data = self.call("POST", "create_agent", body=body, headers=headers)
        return Agent.model_validate(data["agent"])

    def get_agent(self, agent_id: str) -> Agent:
        return Agent.model_validate(self.call("GET", "get_agent", params={"agent_id": agent_id})["agent"])

    def pages(self, function: str, key: str, params: dict[str, Any] | None = None,
              most: int = 10_000) -> list[dict[str, Any]]:
        """Up to `most` rows of a paged list, following `next_cursor` a page (at most 200 rows) at a time."""
        rows: list[dict[str, Any]] = []
        cursor = None
        while len(rows) < most:
            page = {**(params or {}), "limit": min(PAGE, most - len(rows)), "cursor": cursor}
            data = self.call("GET", function, params=page)
            rows.extend(data.get(key, []))
            cursor = data.get("next_cursor")
            if not cursor:
                break
        return rows

    def list_agents(self, status: str | None = None, q: str | None = None, most: int = 10_000) -> list[Agent]:
        rows = self.pages("list_agents", "agents", {"status": status, "q": q}, most)
        return [Agent.model_validate(a) for a in rows]

    def hibernate_agent(self, agent_id: str) -> Agent:
        return self._agent_action("hibernate_agent", agent_id)

    def wake_agent(self, agent_id: str) -> Agent:
        return self._agent_action("wake_agent", agent_id)

    def delete_agent(self, agent_id: str) -> Agent:
        return self._agent_action("delete_agent", agent_id)

    def _agent_action(self, function: str, agent_id: str) -> Agent:
        return Agent.model_validate(self.call("POST", function, body={"agent_id": agent_id})["agent"])

    def send_message(self, agent_id: str, text: str) -> MessageResult:
        data = self.call("POST", "send_message", body={"agent_id": agent_id, "text": text})
        return MessageResult.model_validate(data)

    def update_character(self, agent_id: str, character: dict[str, Any]) -> Agent:
        data = self.call("POST", "update_character", body={"agent_id": agent_id, "character": character})
        return Agent.model_validate(data["agent"])

    def character_versions(self, agent_id: str) -> list[CharacterVersion]:
        rows = self.pages("character_versions", "versions", {"agent_id": agent_id})
        return [CharacterVersion.model_validate(v) for v in rows]

    def release_version(self, agent_id: str, version: int, grace_seconds: int = 60) -> Release:
        """Release a stored version blue/green (smoke-tested before the switch)."""
        body = {"agent_id": agent_id, "version": version, "grace_seconds": grace_seconds}
        return Release.model_validate(self.call("POST", "release_version", body=body)["release"])

    def rollback(self, agent_id: str, version: int) -> Release:
        body = {"agent_id": agent_id, "version": version}
        return Release.model_validate(self.call("POST", "rollback", body=body)["release"])

    def list_releases(self, agent_id: str, limit: int = 50) -> list[Release]:
        data = self.call("GET", "list_releases", params={"agent_id": agent_id, "limit": limit})
        return [Release.model_validate(r) for r in data.get("releases", [])]

    def agent_events(self, agent_id: str | None = None, limit: int = 100) -> list[Event]:
        rows = self.pages("agent_events", "events", {"agent_id": agent_id}, limit)
        return [Event.model_validate(e) for e in rows]

    def agent_logs(self, agent_id: str, tail: int = 200) -> list[str]:
        data = self.call("GET", "agent_logs", params={"agent_id": agent_id, "tail": tail})
        return [str(line) for line in data.get("lines", [])]

    def agent_messages(self, agent_id: str, limit: int = 100) -> list[ChatMessage]:
        """The conversation the caller has had with the agent, oldest first."""
        data = self.call("GET", "agent_messages", params={"agent_id": agent_id, "limit": limit})
        return [ChatMessage.model_validate(m) for m in data.get("messages", [])]

    def update_policy(self, agent_id: str, **changes: Any) -> Agent:
        body = {"agent_id": agent_id, **{k: v for k, v in changes.items() if v is not None}}
        return Agent.model_validate(self.call("POST", "update_policy", body=body)["agent"])

    # -- platform (admin) ----------------------------------------------------------------------

    def backup_agents(self) -> Backup:
        return Backup.model_validate(self.call("POST", "backup_agents", body={})["backup"])

    def list_backups(self) -> list[Backup]:
        return [Backup.model_validate(b) for b in self.pages("list_backups", "backups")]

    def backup_contents(self, backup_id: str, agent_id: str | None = None) -> BackupContents:
        """What the backup holds beside what exists now; with agent_id, that agent's backed-up character."""
        data = self.call("GET", "backup_contents", params={"backup_id": backup_id, "agent_id": agent_id})
        return BackupContents.model_validate(data)

    def restore_backup(self, backup_id: str) -> Restore:
        data = self.call("POST", "restore_backup", body={"backup_id": backup_id})
        return Restore.model_validate(data["restore"])

    def health_check(self, *, repair: bool = False) -> HealthReport:
        """The platform's checks, changing nothing; with repair, agents that should run and do not are
        restarted too."""
        if repair:
            return HealthReport.model_validate(self.call("POST", "health_check", body={}))
        return HealthReport.model_validate(self.call("GET", "health_check", params={"repair": "false"}))

    def agent_health(self) -> list[AgentHealth]:
        return self.health_check().agents

    def hibernate_idle(self) -> list[str]:
        return [str(a) for a in self.call("POST", "hibernate_idle", body={}).get("hibernated", [])]


def _decode(function: str, resp: requests.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        data = None
    if resp.ok:
        if not isinstance(data, dict):
            raise ApiError(
                function,
                resp.status_code,
                "bad_response",
                "The server answered with something other than JSON.",
            )
        return data
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        error = {}
    retry = resp.headers.get("Retry-After")
    try:
        retry_after = float(retry) if retry else None
    except ValueError:
        retry_after = None
    raise ApiError(
        function,
        resp.status_code,
        str(error.get("code") or f"http_{resp.status_code}"),
        str(error.get("message") or resp.reason or f"HTTP {resp.status_code}"),
        details=[d for d in error.get("details") or [] if isinstance(d, dict)],
        retry_after=retry_after,
    )
