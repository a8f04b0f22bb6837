#!/usr/bin/env bash
# Install the pinned ElizaOS 1.x server once, into a folder the project owns, and print that folder.
#
# What is pinned: bun (from npm, its binary ships inside the registry package) and the packages in
# local_emulator/elizaos/package.json, resolved exactly as bun.lock says: @elizaos/cli, the bootstrap
# and sql plugins, and the openai, anthropic and openrouter model plugins. Agents run this server
# from their own working directory with auto-install off, so nothing is ever installed at run time.
#
# Idempotent: skipped when the folder holds exactly these pins. Where: $PARADYZE_ELIZAOS_HOME, else
# /opt/paradyze/elizaos-<version> as root (readable by the unprivileged agent users), else
# ~/.cache/paradyze/elizaos-<version>.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PINS="$ROOT/local_emulator/elizaos"
BUN_VERSION="1.4.4"
VERSION="1.7.2"

say() { echo "elizaos: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

if [ -n "${PARADYZE_ELIZAOS_HOME:-}" ]; then
    HOME_DIR="$PARADYZE_ELIZAOS_HOME"
elif [ "$(id -u)" -eq 0 ]; then
    HOME_DIR="/opt/paradyze/elizaos-$VERSION"
else
    HOME_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/paradyze/elizaos-$VERSION"
fi

want="$(cat "$PINS/package.json" "$PINS/bun.lock" | sha256sum | cut -c1-16)-bun$BUN_VERSION"
if [ "$(cat "$HOME_DIR/.pins" 2>/dev/null)" = "$want" ] && [ -x "$HOME_DIR/bun/node_modules/.bin/bun" ]; then
    echo "$HOME_DIR"
    exit 0
fi

command -v npm >/dev/null 2>&1 || die "npm is missing (Debian: apt-get install npm)"
started=$SECONDS
mkdir -p "$HOME_DIR/bun" "$HOME_DIR/app"
rm -f "$HOME_DIR/.pins"
say "installing bun $BUN_VERSION into $HOME_DIR/bun"
(cd "$HOME_DIR/bun" && [ -f package.json ] || echo '{"private": true}' >"$HOME_DIR/bun/package.json")
npm install --prefix "$HOME_DIR/bun" --no-audit --no-fund --silent "bun@$BUN_VERSION" >/dev/null \
    || die "npm install bun@$BUN_VERSION failed"
BUN="$HOME_DIR/bun/node_modules/.bin/bun"
"$BUN" --version >/dev/null || die "bun does not run"

say "installing @elizaos/cli $VERSION and its plugins into $HOME_DIR/app (bun install --frozen-lockfile)"
cp "$PINS/package.json" "$PINS/bun.lock" "$HOME_DIR/app/"
# Postinstall scripts stay blocked (bun's default for untrusted packages): one of them is broken.
(cd "$HOME_DIR/app" && "$BUN" install --frozen-lockfile --silent) || die "bun install failed"
# Agents run as unprivileged users: they need to read and run this, never to write it.
chmod -R a+rX,go-w "$HOME_DIR"
echo "$want" >"$HOME_DIR/.pins"
say "ready in $((SECONDS - started))s: $(du -sh "$HOME_DIR" | cut -f1) in $HOME_DIR"
echo "$HOME_DIR"
