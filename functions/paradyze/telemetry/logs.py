"""Log lines as Cloud Logging reads them: one JSON object per line, with trace, labels and nothing secret.

Cloud Run and Cloud Functions parse a JSON line on stderr into a LogEntry: `severity`, `message`,
`logging.googleapis.com/trace` (projects/<project>/traces/<trace id>), `.../spanId` and
`.../labels`. Locally `PARADYZE_LOG_FORMAT=text` prints plain lines instead, and
`python -m paradyze.telemetry.pretty` turns JSON lines back into readable ones.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from . import context

TRACE_KEY = "logging.googleapis.com/trace"
SPAN_KEY = "logging.googleapis.com/spanId"
LABELS_KEY = "logging.googleapis.com/labels"

SEVERITY = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARNING", logging.ERROR: "ERROR",
            logging.CRITICAL: "CRITICAL"}

# Secrets are kept out where they are handled (AgentSpec's repr, the vault); this is the last net,
# for a token or key that a third party's exception message echoes.
_SECRETS = re.compile(
    r"(?:eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # a JWT
    r"|(?:sk|pk|rk)-[A-Za-z0-9_-]{12,}"  # provider API keys
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{12,}"  # an Authorization header
    r"|(?i:(?:api[_-]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,})"
)


def redact(text: str) -> str:
    return _SECRETS.sub("[redacted]", text)


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record, in Cloud Logging's structured-logging fields."""

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        entry: dict[str, Any] = {
            "severity": SEVERITY.get(record.levelno, "DEFAULT"),
            "message": redact(message),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry[TRACE_KEY] = f"projects/{self.project}/traces/{span.trace_id:032x}"
            entry[SPAN_KEY] = f"{span.span_id:016x}"
            entry["logging.googleapis.com/trace_sampled"] = span.trace_flags.sampled
        labels = {k: v for k, v in vars(context.current()).items() if v}
        if labels:
            entry[LABELS_KEY] = labels
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Plain lines for a person at a terminal, with the request id and agent when there are some."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        labels = context.current()
        tag = " ".join(f"{k}={v}" for k, v in (("req", labels.request_id[:8]), ("agent", labels.agent_id)) if v)
        line = redact(super().format(record))
        return f"{line} [{tag}]" if tag else line


def install(log_format: str, project: str) -> None:
    """Give the platform's handler (paradyze.logs.configure_logging) the chosen formatter."""
    formatter: logging.Formatter = CloudLoggingFormatter(project) if log_format == "json" else TextFormatter()
    for handler in logging.getLogger().handlers:
        if getattr(handler, "paradyze", False):
            handler.setFormatter(formatter)
