#!/bin/sh
# Runs a command inside a private network namespace that only it can see, so that tests may
# send multicast (SSDP, multicast eventing) without a single packet reaching a real network.
# Inside: loopback up, multicast enabled on it, and the multicast routes on it.
#
# The namespace belongs to the command's process (unshare -n): when it exits, the namespace
# and everything in it are gone, even if the test crashed. Exits 77 (meson's "skipped") with a
# loud message when namespaces cannot be made (not root, no unshare).
#
# With --veth6, the namespace also gets a veth pair joining two of its own interfaces,
# uvg6a (fd75:7667::1/64) and uvg6b (fd75:7667::2/64), IPv6 only with duplicate address
# detection off, because Linux does not loop IPv6 multicast over `lo`: a test sends from one
# end and receives on the other. UVGENA_VETH6="uvg6a uvg6b" tells the test their names.
#
# Usage: scripts/in-netns.sh [--veth6] PROGRAM [ARGS...]
set -eu
if [ "${UVGENA_IN_NETNS:-}" = "1" ]; then
    # Never configure (or run in) the namespace we were started from.
    if [ -z "${UVGENA_OUTER_NETNS:-}" ] ||
       [ "$(readlink /proc/self/ns/net)" = "$UVGENA_OUTER_NETNS" ]; then
        echo "in-netns.sh: not inside a private network namespace; refusing" >&2
        exit 1
    fi
    ip link set lo up
    ip link set lo multicast on
    ip route add 224.0.0.0/4 dev lo
    ip -6 route add ff00::/8 dev lo table local 2>/dev/null || true
    if [ "${1:-}" = "--veth6" ]; then
        shift
        # shellcheck source=scripts/netns-lib.sh
        . "$(dirname "$0")/netns-lib.sh"
        sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
        if ! netns_veth uvg6a "" fd75:7667::1/64 uvg6b "" fd75:7667::2/64; then
            echo "SKIPPED: cannot create a veth pair in the namespace (no veth support)" >&2
            exit 77
        fi
        UVGENA_VETH6="uvg6a uvg6b"
        export UVGENA_VETH6
    fi
    # UVGENA_TEST_WRAPPER: e.g. valgrind, set by scripts/valgrind-test.sh.
    exec ${UVGENA_TEST_WRAPPER:-} "$@"
fi
if ! unshare -n true 2>/dev/null; then
    echo "SKIPPED: cannot create a network namespace (needs root and unshare);" \
         "multicast tests never run outside one" >&2
    exit 77
fi
UVGENA_OUTER_NETNS=$(readlink /proc/self/ns/net)
export UVGENA_OUTER_NETNS
UVGENA_IN_NETNS=1 exec unshare -n "$0" "$@"
