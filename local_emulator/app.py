"""One WSGI app serving every function at /<function_name>, each made by functions-framework itself."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import functions_framework
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Request, Response

from paradyze import telemetry

SOURCE = Path(__file__).resolve().parents[1] / "functions" / "main.py"

FUNCTIONS = (
    "create_agent", "get_agent", "list_agents", "hibernate_agent", "wake_agent", "delete_agent", "send_message",
    "update_character", "character_versions", "agent_events", "agent_logs", "update_policy", "agent_messages",
    "backup_agents", "list_backups", "backup_contents", "restore_backup", "health_check", "hibernate_idle",
    "sync_schedules", "release_version", "rollback", "list_releases", "run_experiment", "get_experiment",
    "list_experiments",
)


def build_app() -> DispatcherMiddleware:
    mounts = {f"/{name}": functions_framework.create_app(name, str(SOURCE)) for name in FUNCTIONS}
    spec = functions_framework.create_app("openapi_spec", str(SOURCE))
    mounts["/openapi.json"] = spec
    mounts["/openapi"] = spec
    mounts["/metrics"] = telemetry.prometheus_wsgi_app()  # Prometheus scrapes every function's metrics here
    app = _Dispatcher(DispatcherMiddleware(_index, mounts))
    gc.freeze()  # as main.py does: the apps live as long as the process, and the collector leaves them be
    return app


class _Dispatcher:
    """Serves /name as the function's root, where Cloud Functions serves it, with no redirect to /name/."""

    def __init__(self, app: DispatcherMiddleware) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.count("/") == 1 and path != "/":
            environ["PATH_INFO"] = path + "/"
        return self.app(environ, start_response)


@Request.application
def _index(request: Request) -> Response:
    if request.path not in ("/", ""):
        body = {"error": {"code": "not_found", "message": f"no function at {request.path}",
                          "details": [{"loc": ["path"], "msg": "see / for the list"}]}}
        return Response(json.dumps(body), status=404, mimetype="application/json")
    base = request.host_url.rstrip("/")
    return Response(json.dumps({"functions": {n: f"{base}/{n}" for n in FUNCTIONS},
                                "openapi": f"{base}/openapi.json"}), mimetype="application/json")
