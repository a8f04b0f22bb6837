"""An agent that tries to read what no agent may read, prints what it got, then serves its port.

Run by the process runtime in place of an agent server (PARADYZE_AGENT_COMMAND). Its character
file names the targets: {"name": ..., "probe": {"label": "path", ...}}.
"""

import json
import socket
import sys
import time
from pathlib import Path


def attempt(path: str) -> str:
    target = Path(path)
    try:
        if target.is_dir():
            return "read: " + ",".join(sorted(p.name for p in target.iterdir()))
        return "read: " + target.read_bytes().decode(errors="replace")[:200]
    except PermissionError:
        return "denied"
    except OSError as exc:
        return f"error: {exc.__class__.__name__}"


def main() -> int:
    character_path, port = sys.argv[1], int(sys.argv[2])
    targets = json.loads(Path(character_path).read_text())["probe"]
    print("PROBE " + json.dumps({label: attempt(path) for label, path in targets.items()}), flush=True)
    with socket.create_server(("127.0.0.1", port)) as server:
        server.settimeout(0.2)
        while True:
            try:
                conn, _ = server.accept()
                conn.close()
            except TimeoutError:
                time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
