"""Read JSON log lines (stdin or files) and print them as plain lines: `python -m paradyze.telemetry.pretty`."""

from __future__ import annotations

import fileinput
import json

from .logs import LABELS_KEY, TRACE_KEY


def pretty(line: str) -> str:
    try:
        entry = json.loads(line)
    except ValueError:
        return line.rstrip("\n")
    if not isinstance(entry, dict) or "severity" not in entry:
        return line.rstrip("\n")
    labels = entry.get(LABELS_KEY) or {}
    tags = [f"{k}={v}" for k, v in labels.items()]
    if entry.get(TRACE_KEY):
        tags.append(f"trace={str(entry[TRACE_KEY]).rsplit('/', 1)[-1][:12]}")
    when = str(entry.get("time", ""))[11:23]
    head = f"{when} {entry['severity']:<7} {entry.get('logger', '')}: {entry.get('message', '')}"
    return f"{head}  [{' '.join(tags)}]" if tags else head


def main() -> None:
    for line in fileinput.input():
        print(pretty(line), flush=True)


if __name__ == "__main__":
    main()
