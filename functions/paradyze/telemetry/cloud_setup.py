"""Create or update the platform's Cloud Monitoring setup from the files in monitoring/: metric
descriptors, alert policies and the dashboard. The deploy tool calls apply() once per deploy.

Idempotent: descriptors are created (the API accepts an identical one again), alert policies are
matched by displayName and patched, the dashboard has a fixed name and is patched with its etag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .google_api import session

API = "https://monitoring.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/monitoring"]
MONITORING_DIR = Path(__file__).resolve().parents[3] / "monitoring"


class MonitoringSetupError(RuntimeError):
    """The Monitoring API refused a file; the message names the file and says what the API said."""


@dataclass
class Applied:
    descriptors: int = 0
    created: list[str] = field(default_factory=list)  # alert policies and dashboards, by displayName
    updated: list[str] = field(default_factory=list)


def apply(project: str, *, instance: str = "default", notification_channels: tuple[str, ...] = (),
          endpoint: str | None = None, http: requests.Session | None = None,
          directory: Path = MONITORING_DIR) -> Applied:
    """Make the project's descriptors, alert policies and dashboard match directory.

    notification_channels: channel names (projects/<p>/notificationChannels/<id>) every policy
    notifies. endpoint: another API root (a local fake). Raises MonitoringSetupError.
    """
    api = _Api(f"{(endpoint or API).rstrip('/')}", http or session(endpoint, SCOPES))
    done = Applied()
    for descriptor in _load(directory / "metric_descriptors.json")["metricDescriptors"]:
        api.call("POST", f"/v3/projects/{project}/metricDescriptors", descriptor, what=descriptor["type"])
        done.descriptors += 1
    existing = {p["displayName"]: p["name"] for p in api.list_policies(project)}
    for path in sorted((directory / "alert_policies").glob("*.json")):
        policy = {**_load(path), "notificationChannels": list(notification_channels)}
        name = existing.get(policy["displayName"])
        if name:
            api.call("PATCH", f"/v3/{name}", policy, what=path.name)
            done.updated.append(policy["displayName"])
        else:
            api.call("POST", f"/v3/projects/{project}/alertPolicies", policy, what=path.name)
            done.created.append(policy["displayName"])
    dashboard = _load(directory / "dashboard.json")
    name = f"projects/{project}/dashboards/paradyze-{instance}"
    current = api.get(f"/v1/{name}")
    if current is None:
        api.call("POST", f"/v1/projects/{project}/dashboards", {**dashboard, "name": name}, what="dashboard.json")
        done.created.append(dashboard["displayName"])
    else:
        api.call("PATCH", f"/v1/{name}", {**dashboard, "name": name, "etag": current.get("etag", "")},
                 what="dashboard.json")
        done.updated.append(dashboard["displayName"])
    return done


class _Api:
    def __init__(self, root: str, http: requests.Session) -> None:
        self.root, self.http = root, http

    def call(self, method: str, path: str, body: dict[str, Any], *, what: str) -> dict[str, Any]:
        response = self.http.request(method, self.root + path, json=body, timeout=30)
        if not response.ok:
            raise MonitoringSetupError(f"{what}: {method} {path} answered {response.status_code}:"
                                       f" {_message(response)}")
        answer: dict[str, Any] = response.json()
        return answer

    def get(self, path: str) -> dict[str, Any] | None:
        response = self.http.get(self.root + path, timeout=30)
        if response.status_code == 404:
            return None
        if not response.ok:
            raise MonitoringSetupError(f"GET {path} answered {response.status_code}: {_message(response)}")
        found: dict[str, Any] = response.json()
        return found

    def list_policies(self, project: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token = ""
        while True:
            page = self.get(f"/v3/projects/{project}/alertPolicies?pageSize=500&pageToken={token}") or {}
            out.extend(page.get("alertPolicies", []))
            token = page.get("nextPageToken", "")
            if not token:
                return out


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _message(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:300]
