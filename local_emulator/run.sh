#!/usr/bin/env bash
# One command on a fresh machine: set up, then run the local emulator (database, functions,
# scheduler and console). Arguments go to `python -m local_emulator` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
local_emulator/setup.sh
exec .venv/bin/python -m local_emulator "$@"
