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
# On Cloud Run the agent's key, model keys and secrets come as one JSON object from the agent's own
# Secret Manager secret (never in the service's spec): each becomes a variable of the environment.
if [ -n "${PARADYZE_AGENT_ENV:-}" ]; then
    # (bun's own error would quote the input: it exits 2 saying nothing of the values instead)
    exports="$(bun -e '
        try {
            const values = JSON.parse(process.env.PARADYZE_AGENT_ENV);
            if (typeof values !== "object" || values === null || Array.isArray(values)) process.exit(2);
            for (const [name, value] of Object.entries(values)) {
                if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || typeof value !== "string") process.exit(2);
                console.log(`export ${name}=${"\x27" + value.replaceAll("\x27", "\x27\\\x27\x27") + "\x27"}`);
            }
        } catch { process.exit(2); }')" || {
        echo "paradyze-elizaos: PARADYZE_AGENT_ENV is not a JSON object of names and string values" >&2
        exit 2
    }
    eval "$exports"
    unset PARADYZE_AGENT_ENV exports
fi
# Cloud Run names the port in PORT; the docker runtime sets SERVER_PORT (and PORT) itself.
port="${PORT:-${SERVER_PORT:-3000}}"
export SERVER_PORT="$port"
exec bun /opt/elizaos/app/node_modules/@elizaos/cli/dist/index.js start --character "$character" --port "$port"
