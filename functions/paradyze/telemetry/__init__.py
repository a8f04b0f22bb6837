"""Telemetry: structured logs, metrics and traces with OpenTelemetry; what the rest of the platform calls.

Each hook elsewhere is one line calling a name from here, so the modules that do the work stay
free of telemetry:
- http.py: instrument() around each function, bind() and bind_inputs() once the caller and agent are known
- messaging.py: message_done() after a send to the agent; carry() to keep the request's trace in the wake thread
- instances.py: transitioned() after each committed status change; traced() around starts and stops
- agent_client.py: outgoing_headers() (X-Request-Id, traceparent) and a span on every call
- db.py: traced_cm() on transaction(); sweeps.py and health.py: sweep(); health.py: fleet.observe()
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from .context import bind, bind_inputs, carry, outgoing_headers
from .hooks import instrument, message_done, sweep, transitioned
from .setup import flush, prometheus_wsgi_app, setup
from .tracing import span, traced, traced_cm

__all__ = ["bind", "bind_inputs", "carry", "flush", "instrument", "message_done", "outgoing_headers",
           "prometheus_wsgi_app", "setup", "span", "SpanKind", "sweep", "traced", "traced_cm", "transitioned"]
