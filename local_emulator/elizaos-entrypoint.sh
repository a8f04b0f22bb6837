#!/bin/sh
# Start the pinned ElizaOS server on the agent's character. Cloud Run cannot mount a file, so the
# character may come base64-encoded in CHARACTER_JSON; it is written to CHARACTER_PATH first.
set -eu
character="${CHARACTER_PATH:-/agent/character.json}"
if [ -n "${CHARACTER_JSON:-}" ]; then
    umask 077
    printf '%s' "$CHARACTER_JSON" | base64 -d >"$character" || {
        echo "paradyze-elizaos: CHARACTER_JSON is not base64" >&2
        exit 2
    }
    unset CHARACTER_JSON
fi
# Cloud Run names the port in PORT; the docker runtime sets SERVER_PORT (and PORT) itself.
port="${PORT:-${SERVER_PORT:-3000}}"
export SERVER_PORT="$port"
exec bun /opt/elizaos/app/node_modules/@elizaos/cli/dist/index.js start --character "$character" --port "$port"
