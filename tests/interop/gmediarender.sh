#!/usr/bin/env bash
# Runs the gmediarender interop test (argument: the doctest binary) inside a private network
# namespace made here: libupnp ignores loopback, so the namespace gets a veth pair whose BOTH
# ends live in it (10.204.0.1 = gmediarender, 10.204.0.2 = uvgena's listener); no traffic
# leaves it. IPv6 duplicate-address detection is off there so that addresses are usable at
# once. Everything started here is stopped by PID and the namespace deleted, even on failure.
# Exit 77 (meson: skipped) with a loud message only where namespaces cannot be made.
set -uo pipefail
binary=$1
skip() { echo "SKIPPED: gmediarender interop test: $*" >&2; echo "*** gmediarender interop NOT RUN: $* ***"; exit 77; }

# shellcheck source=scripts/netns-lib.sh
. "$(dirname "$0")/../../scripts/netns-lib.sh"
command -v gmediarender >/dev/null || skip "gmediarender is not installed (scripts/install-deps.sh test)"

ns=uvg-sub-$$-$RANDOM
a=uvsa$$
b=uvsb$$
dev_ip=10.204.0.1
cli_ip=10.204.0.2
port=49494
netns_begin
netns_add "$ns" 2>"$work/err" || skip "cannot create a network namespace (needs root and iproute2): $(cat "$work/err")"
netns_veth "$a" "$ns" "$dev_ip/24" "$b" "$ns" "$cli_ip/24" || { echo "cannot create a veth pair" >&2; exit 1; }
netns_gmediarender "$ns" "$a" "$dev_ip" "$port" "uvgena interop" \
    "11111111-2222-3333-4444-$(printf '%012d' $$)" || exit 1

base="http://$dev_ip:$port"
ip netns exec "$ns" env GMR_BASE="$base" GMR_LISTEN="$cli_ip" ${UVGENA_TEST_WRAPPER:-} "$binary"
status=$?
if [ "$status" -ne 0 ]; then
    echo "--- gmediarender log ---" >&2
    tail -50 "$work/gmr.log" >&2 2>/dev/null
fi
exit $status
