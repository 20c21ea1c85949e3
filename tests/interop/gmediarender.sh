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

command -v gmediarender >/dev/null || skip "gmediarender is not installed (scripts/install-deps.sh test)"
command -v ip >/dev/null || skip "iproute2 is not installed"
[ "$(id -u)" -eq 0 ] || skip "needs root to create a network namespace"

ns=uvg-sub-$$-$RANDOM
a=uvsa$$
b=uvsb$$
dev_ip=10.204.0.1
cli_ip=10.204.0.2
port=49494
work=$(mktemp -d)
gmr_pid=""

cleanup() {
    if [ -n "$gmr_pid" ]; then
        kill "$gmr_pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$gmr_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$gmr_pid" 2>/dev/null
        wait "$gmr_pid" 2>/dev/null
    fi
    ip netns del "$ns" 2>/dev/null
    ip link del "$a" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM

ip netns add "$ns" 2>"$work/err" || skip "cannot create a network namespace: $(cat "$work/err")"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 || true
ip link add "$a" type veth peer name "$b" || { echo "cannot create a veth pair" >&2; exit 1; }
ip link set "$a" netns "$ns" && ip link set "$b" netns "$ns" || exit 1
in_ns ip link set lo up
in_ns ip addr add "$dev_ip/24" dev "$a"
in_ns ip addr add "$cli_ip/24" dev "$b"
in_ns ip link set "$a" up
in_ns ip link set "$b" up

# Started with `ip netns exec` directly so that $! is gmediarender itself.
ip netns exec "$ns" gmediarender -I "$a" -p "$port" -f "uvgena interop" \
    -u 11111111-2222-3333-4444-$(printf '%012d' $$) \
    --gstout-audiosink=fakesink --gstout-videosink=fakesink --logfile "$work/gmr.log" \
    >"$work/gmr.out" 2>&1 &
gmr_pid=$!

base="http://$dev_ip:$port"
up=0
for _ in $(seq 1 100); do
    if in_ns curl -sf -m 1 -o /dev/null "$base/description.xml"; then up=1; break; fi
    kill -0 "$gmr_pid" 2>/dev/null || break
    sleep 0.1
done
if [ "$up" -ne 1 ]; then
    echo "gmediarender did not come up; its output:" >&2
    cat "$work/gmr.out" "$work/gmr.log" >&2 2>/dev/null
    exit 1
fi

ip netns exec "$ns" env GMR_BASE="$base" GMR_LISTEN="$cli_ip" ${UVGENA_TEST_WRAPPER:-} "$binary"
status=$?
if [ "$status" -ne 0 ]; then
    echo "--- gmediarender log ---" >&2
    tail -50 "$work/gmr.log" >&2 2>/dev/null
fi
exit $status
