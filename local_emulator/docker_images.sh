#!/usr/bin/env bash
# Build the local images without a registry: a minimal Debian base made with debootstrap and
# `docker import`ed, then on top of it the reference agent image and the ElizaOS agent image (the
# pinned server local_emulator/elizaos.sh installed, copied in). Each build is skipped when its
# image is present and current (each agent image carries a hash of its inputs as a label).
#
# Usage: local_emulator/docker_images.sh [--force] [--with-stack]
#   --force         rebuild everything
#   --with-stack    also build the compose stack's postgres, platform, functions and console images
#   DEBIAN_MIRROR   override the mirror (default: the one apt on this machine uses)
#   PARADYZE_REFERENCE_IMAGE   the reference agent's tag (default paradyze/reference-agent:latest)
#   PARADYZE_ELIZAOS_IMAGE     the ElizaOS agent's tag (default paradyze/elizaos:1.7.2)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_IMAGE="paradyze/base:bookworm"
AGENT_IMAGE="${PARADYZE_REFERENCE_IMAGE:-paradyze/reference-agent:latest}"
ELIZAOS_VERSION="1.7.2"  # the version local_emulator/elizaos.sh pins
ELIZAOS_IMAGE="${PARADYZE_ELIZAOS_IMAGE:-paradyze/elizaos:$ELIZAOS_VERSION}"
SUITE="bookworm"
# python3 rather than python3-minimal: the agent needs http.server, json and urllib, which
# python3-minimal lacks. ca-certificates lets images built on this base use HTTPS mirrors.
BASE_PACKAGES="python3,ca-certificates"
FORCE=0
WITH_STACK=0
rootfs=""

for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        --with-stack) WITH_STACK=1 ;;
        *) echo "usage: $0 [--force] [--with-stack]" >&2; exit 2 ;;
    esac
done

say() { echo "docker_images: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

docker info >/dev/null 2>&1 || die "Docker Engine not answering; run local_emulator/docker_engine.sh"

image_present() { docker image inspect "$1" >/dev/null 2>&1; }
image_label() { docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }
# An image built from these very inputs (its source-hash label) needs no rebuild, unless --force.
image_current() {
    local image="$1" hash="$2"
    if [ "$FORCE" -eq 0 ] && image_present "$image" \
        && [ "$(image_label "$image" paradyze.source-hash)" = "$hash" ]; then
        say "$image present and current ($(image_size "$image")); skipping"
        return 0
    fi
    return 1
}
image_size() { docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f MB", $1/1000/1000}'; }

# The mirror apt already uses here: deb822 .sources first, then one-line lists.
debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri="$(awk -v suite="$SUITE" '
            /^URIs:/ { uris = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
            /^$/ { if (found && uris != "") exit; found = 0; uris = "" }
            END { if (found && uris != "") print uris }' "$f")"
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri="$(awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' "$f")"
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
    die "no Debian $SUITE mirror found in /etc/apt/sources.list*; set DEBIAN_MIRROR"
}

build_base() {
    if [ "$FORCE" -eq 0 ] && image_present "$BASE_IMAGE"; then
        say "$BASE_IMAGE present ($(image_size "$BASE_IMAGE")); skipping"
        return
    fi
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing; run local_emulator/docker_engine.sh"
    local mirror started
    mirror="$(debian_mirror)"
    rootfs="$(mktemp -d /tmp/paradyze-rootfs.XXXXXX)"
    # The rootfs holds root-owned device nodes; clean it up whatever happens.
    trap 'rm -rf "$rootfs"' EXIT
    started=$SECONDS
    say "debootstrap $SUITE from $mirror into $rootfs (packages: $BASE_PACKAGES)"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$mirror" \
        >"$rootfs.log" 2>&1 || { tail -n 30 "$rootfs.log" >&2; die "debootstrap failed (log: $rootfs.log)"; }

    # Images built FROM this base run apt against the same mirror. When that mirror is a dated
    # snapshot its Release files have expired, so carry over the host's setting for that.
    printf 'deb %s %s main\n' "$mirror" "$SUITE" >"$rootfs/etc/apt/sources.list"
    if apt-config dump 2>/dev/null | grep -q 'Acquire::Check-Valid-Until "false"'; then
        echo 'Acquire::Check-Valid-Until "false";' >"$rootfs/etc/apt/apt.conf.d/99paradyze-snapshot"
    fi
    # Keep the image small: no package cache, lists, docs or man pages.
    printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
        >"$rootfs/etc/dpkg/dpkg.cfg.d/99paradyze-nodoc"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
        "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old

    tar -C "$rootfs" --numeric-owner -c . | docker import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
    say "built $BASE_IMAGE in $((SECONDS - started))s ($(image_size "$BASE_IMAGE"))"
}

build_agent() {
    local dockerfile="$ROOT/local_emulator/Dockerfile" agent="$ROOT/local_emulator/reference_agent.py"
    local persona="$ROOT/local_emulator/reference_persona.py"
    [ -f "$agent" ] || die "$agent is missing"
    [ -f "$persona" ] || die "$persona is missing"
    local hash started
    hash="$(cat "$dockerfile" "$agent" "$persona" | sha256sum | cut -c1-16)"
    if image_current "$AGENT_IMAGE" "$hash"; then return; fi
    started=$SECONDS
    say "building $AGENT_IMAGE (sources $hash)"
    docker build --quiet --force-rm \
        --build-arg BASE_IMAGE="$BASE_IMAGE" \
        --label paradyze.source-hash="$hash" \
        -t "$AGENT_IMAGE" -f "$dockerfile" "$ROOT" >/dev/null
    say "built $AGENT_IMAGE in $((SECONDS - started))s ($(image_size "$AGENT_IMAGE"))"
}

# The ElizaOS image's context is a tar stream: its Dockerfile and entrypoint from here, and the app/
# folder of the install (bun is in its node_modules), without source maps, type declarations and
# bun's second name (bunx), which nothing at run time reads: about 180 MB less in every image.
build_elizaos() {
    local dockerfile="$ROOT/local_emulator/Dockerfile.elizaos"
    local entrypoint="$ROOT/local_emulator/elizaos-entrypoint.sh"
    local install hash started
    install="$("$ROOT/local_emulator/elizaos.sh")" || die "the pinned ElizaOS is not installed (local_emulator/elizaos.sh failed)"
    [ -f "$install/.pins" ] || die "$install/.pins is missing; rerun local_emulator/elizaos.sh"
    # The install's .pins names its package.json, bun.lock and bun version: with this file and
    # the entrypoint, that is every input of the image.
    hash="$(cat "$dockerfile" "$entrypoint" "$install/.pins" | sha256sum | cut -c1-16)"
    if image_current "$ELIZAOS_IMAGE" "$hash"; then return; fi
    started=$SECONDS
    say "building $ELIZAOS_IMAGE from $install (inputs $hash)"
    tar -c --owner=0 --group=0 \
        --exclude='*.map' --exclude='*.d.ts' --exclude='*.d.mts' --exclude='*.d.cts' --exclude='bunx.exe' \
        --transform='s,^Dockerfile.elizaos$,Dockerfile,' \
        -C "$ROOT/local_emulator" Dockerfile.elizaos elizaos-entrypoint.sh \
        -C "$install" app \
        | docker build --quiet --force-rm \
            --build-arg BASE_IMAGE="$BASE_IMAGE" \
            --label paradyze.source-hash="$hash" \
            --label paradyze.elizaos-version="$ELIZAOS_VERSION" \
            -t "$ELIZAOS_IMAGE" - >/dev/null \
        || die "building $ELIZAOS_IMAGE failed"
    say "built $ELIZAOS_IMAGE in $((SECONDS - started))s ($(image_size "$ELIZAOS_IMAGE"))"
}

# The compose stack's own images. No skip here: Docker's layer cache makes an unchanged rebuild
# take seconds, and a skipped one would run stale code. Their Dockerfiles run apt and pip, so
# they build on the host network (the same registries the host reaches).
build_stack_image() {
    local tag="$1" dockerfile="$2" context="$3" started
    started=$SECONDS
    say "building $tag"
    docker build --quiet --force-rm --network host \
        --build-arg BASE_IMAGE="$BASE_IMAGE" \
        -t "$tag" -f "$ROOT/$dockerfile" "$ROOT/$context" >/dev/null
    say "built $tag in $((SECONDS - started))s ($(image_size "$tag"))"
}

# The platform image installs its requirements from these wheels, downloaded by the host's pip:
# it reaches the package index however this machine is set up to (mirror, proxy, CA).
download_wheels() {
    local pip="$ROOT/.venv/bin/pip" wheels="$ROOT/local_emulator/docker/.wheels" started=$SECONDS want cache
    [ -x "$pip" ] || pip="python3 -m pip"
    # One download per requirements.txt, kept outside the checkout (CI clones afresh each run), then
    # copied with their timestamps: the same files every time, so Docker's layer cache holds.
    want="$(sha256sum "$ROOT/requirements.txt" | cut -c1-16)"
    cache="${PARADYZE_WHEELS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/paradyze/wheels}/$want"
    if [ "$FORCE" -eq 1 ] || [ ! -f "$cache/.complete" ]; then
        say "downloading wheels for requirements.txt into $cache"
        rm -rf "$cache" && mkdir -p "$cache"
        $pip download --quiet --only-binary=:all: -r "$ROOT/requirements.txt" -d "$cache" 2>/dev/null \
            || die "pip download failed; run: $pip download --only-binary=:all: -r requirements.txt -d $cache"
        touch "$cache/.complete"
        say "wheels downloaded in $((SECONDS - started))s ($(du -sh "$cache" | cut -f1))"
    fi
    rm -rf "$wheels" && mkdir -p "$wheels"
    cp -p "$cache"/*.whl "$wheels"/
    say "wheels for requirements.txt ready in $wheels ($(du -sh "$wheels" | cut -f1))"
}

build_base
build_agent
build_elizaos
if [ "$WITH_STACK" -eq 1 ]; then
    download_wheels
    build_stack_image paradyze/postgres:15 local_emulator/docker/postgres.Dockerfile local_emulator/docker
    build_stack_image paradyze/platform:latest local_emulator/docker/platform.Dockerfile .
    # The deployable units, as Cloud Build builds them: the platform image (one function per
    # FUNCTION_TARGET) and the console on its own.
    build_stack_image paradyze/functions:latest deploy/functions.Dockerfile .
    build_stack_image paradyze/console:latest deploy/console.Dockerfile .
fi
