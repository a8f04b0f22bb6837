#!/usr/bin/env bash
# One command on a fresh machine: set up everything the tests need, then run them all.
# Arguments go to pytest (e.g. -k wake, -m "not docker").
set -euo pipefail
cd "$(dirname "$0")/.."
local_emulator/setup.sh --tests
status=0
.venv/bin/python -m pytest "$@" || status=$?
# pytest's 5 means no test ran: that is a failure for us, never a pass.
exit "$status"
