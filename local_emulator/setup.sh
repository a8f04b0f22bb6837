#!/usr/bin/env bash
# Set up what Paradyze needs on a fresh Debian machine: a virtualenv with requirements.txt
# (reinstalled only when the file changes). With --tests, also what the test suite needs: Debian's
# chromium for the browser test, a running Docker Engine and the locally built agent images (the
# reference agent, and the ElizaOS server from the install elizaos.sh made just before).
# Idempotent; safe to run before every start.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*" >&2; }
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing requirements.txt"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.txt
    echo "$want" >"$stamp"
fi

# The agent server Paradyze hosts: the pinned real ElizaOS (bun and npm packages, about 700 MB, once).
local_emulator/elizaos.sh >/dev/null

if [ "${1:-}" = "--tests" ]; then
    if ! command -v chromium >/dev/null 2>&1; then
        say "installing chromium (browser test of the console)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            chromium fonts-dejavu-core fonts-noto-color-emoji >/dev/null
    fi
    # Docker is needed by the docker-marked tests; when it cannot be had they skip and say why.
    if local_emulator/docker_engine.sh; then
        local_emulator/docker_images.sh || say "WARNING: the agent images could not be built; docker tests will skip"
    else
        say "WARNING: no Docker Engine; docker-marked tests will skip"
    fi
fi
