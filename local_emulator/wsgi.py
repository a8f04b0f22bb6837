"""The emulator's WSGI app for a multi-process server: `gunicorn local_emulator.wsgi:app`.

Each worker process loads every function once and opens its own database pool on first use.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))

from local_emulator.app import build_app  # noqa: E402

app = build_app()
