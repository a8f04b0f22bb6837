#!/usr/bin/env bash
# Make a Docker Engine answer on this machine: install it from Debian if missing, start dockerd if
# it is not running, wait (bounded) until `docker info` answers. Also installs what the image
# build needs (debootstrap) and a compose CLI. Idempotent; exits non-zero with a reason on failure.
#
# Usage: local_emulator/docker_engine.sh
#   DOCKERD_LOG      where dockerd logs (default /var/log/paradyze-dockerd.log)
#   DOCKERD_WAIT     seconds to wait for the engine to answer (default 60)
set -euo pipefail

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/paradyze-dockerd.log}"
DOCKERD_WAIT="${DOCKERD_WAIT:-60}"

say() { echo "docker_engine: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_update_once() {
    # apt-cache knows nothing reliable before an update on a fresh machine.
    if [ "$apt_updated" -eq 0 ]; then
        say "apt-get update"
        as_root apt-get update -qq || die "apt-get update failed"
        apt_updated=1
    fi
}
apt_install() {
    apt_update_once
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null || die "apt-get install $* failed"
}

engine_answers() { docker info >/dev/null 2>&1; }

# 1. The engine and the client.
if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io
fi

# 2. What docker_images.sh needs: debootstrap for the base image (no registry to pull from here).
if ! command -v debootstrap >/dev/null 2>&1; then
    apt_install debootstrap
fi

# 3. A compose CLI: the v2 plugin when present, else Debian's docker-compose (v1.29 reads the
#    compose spec incl. depends_on conditions). Failing to get one is not fatal for the engine.
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
    apt_update_once
    # Captured first: with pipefail, `grep -q` closing the pipe early would fail the test.
    policy="$(apt-cache policy docker-compose 2>/dev/null || true)"
    if grep -q 'Candidate: [0-9]' <<<"$policy"; then
        apt_install docker-compose
    else
        say "no compose CLI available from apt; docker-compose.yml validation will be skipped"
    fi
fi

# 4. The daemon.
if engine_answers; then
    say "Docker Engine already answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    exit 0
fi

if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is running but does not answer yet; waiting"
else
    # A stale pid file from a killed dockerd makes the next one refuse to start.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        as_root rm -f /var/run/docker.pid
    fi
    say "starting dockerd (log: $DOCKERD_LOG)"
    as_root mkdir -p "$(dirname "$DOCKERD_LOG")"
    # A marker, so the lines shown on failure are this start's and not an older one's.
    echo "=== docker_engine.sh starting dockerd at $(date -u +%FT%TZ)" | as_root tee -a "$DOCKERD_LOG" >/dev/null
    # setsid + nohup: dockerd must outlive this script and the shell that ran it.
    as_root setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
fi

deadline=$((SECONDS + DOCKERD_WAIT))
until engine_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        say "last lines of $DOCKERD_LOG:"
        tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
        die "Docker Engine did not answer within ${DOCKERD_WAIT}s"
    fi
    if ! pgrep -x dockerd >/dev/null 2>&1; then
        say "last lines of $DOCKERD_LOG:"
        sed -n '/^=== docker_engine.sh starting/,$p' "$DOCKERD_LOG" | tail -n 20 >&2 || true
        die "dockerd exited during start-up"
    fi
    sleep 1
done
say "Docker Engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
