#!/usr/bin/env bash
# The one test command: installs what the tests need beyond cargo, then runs them.
# Used by the README and by CI (.ci/run), on a clean machine as on a developer's.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real servers the integration tests load, the browser that screenshots the HTML
# report, network-namespace tools for the netns tests, man to render `loadmux man`,
# the TLS clients that check the TLS servers (curl, openssl s_client, python3's
# ssl), and clang for the cross-platform checks (Debian packages; docs/testing.md
# says which test needs which).
PACKAGES=(redis-server redis-tools nginx-light memcached python3-websockets websocketd curl openssl python3 chromium nftables iproute2 man-db clang)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
        echo "scripts/test.sh: need root (or sudo) to install: ${missing[*]}" >&2
        exit 2
    fi
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    echo "scripts/test.sh: installing ${missing[*]}" >&2
    # Keep the packages' own system services from starting: the tests start their
    # own servers on free loopback ports. policy-rc.d exiting 101 forbids starts.
    policy=/usr/sbin/policy-rc.d
    had_policy=0; [ -e "$policy" ] && had_policy=1
    if [ "$had_policy" -eq 0 ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod +x "$policy"
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ "$had_policy" -eq 0 ] && $SUDO rm -f "$policy"
fi

# It must build where its users work (docs/tuning.md, "Other platforms"). rustup
# fetches the standard library of each target; a failure stops the script (set -e).
# C code is compiled for the target by two dependencies: criterion's alloca (a
# dev-dependency) and ring (TLS). For FreeBSD, gcc compiles both (cargo check never
# links). For macOS, only clang can target Mach-O; -ffreestanding keeps it away from
# the host's glibc headers, which is enough for alloca, but ring needs the macOS
# SDK's headers, so the Apple checks leave TLS out (--no-default-features).
CROSS_TARGETS=(x86_64-unknown-freebsd x86_64-apple-darwin aarch64-apple-darwin)
rustup target add "${CROSS_TARGETS[@]}"
for target in "${CROSS_TARGETS[@]}"; do
    var=${target//-/_}
    case "$target" in
        *-apple-darwin) env_cc=("CC_$var=clang" "CFLAGS_$var=-ffreestanding"); features=(--no-default-features) ;;
        *) env_cc=(); features=() ;;
    esac
    echo "scripts/test.sh: cargo check --all-targets --target $target ${features[*]}" >&2
    env "${env_cc[@]}" cargo check --all-targets "${features[@]}" --features fault-injection --target "$target"
done

# Integration tests open up to ~20000 sockets; ask for the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# CI=true: a test whose prerequisite is missing fails instead of skipping
# (tests/common/prereq.rs). The fault-injection feature compiles the LOADMUX_FAULT
# hook that tests/thread_panic.rs needs; release builds never have it.
export CI="${CI:-true}"
cargo test --all-targets --features fault-injection "$@"
# --all-targets leaves out doc tests: the lib.rs example runs here.
cargo test --doc
