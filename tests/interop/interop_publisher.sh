#!/usr/bin/env bash
# Interop: Debian's libupnp (a control point nobody here wrote) subscribes to uvgena's
# Publisher (`uvgena serve-demo`) and must receive the initial event and the changes in
# order, then unsubscribe cleanly.
#
# libupnp ignores loopback, so both run inside a private network namespace made here, with a
# veth pair whose BOTH ends live in it (no traffic leaves it). Where namespaces cannot be
# made (not root, no ip), the test is skipped loudly (exit 77).
#
# Usage: interop_publisher.sh UVGENA_BINARY LIBUPNP_SUBSCRIBER
set -euo pipefail
uvgena=$1
subscriber=$2
# shellcheck source=scripts/netns-lib.sh
. "$(dirname "$0")/../../scripts/netns-lib.sh"
ns=uvg-pub-interop.$$
dev_ip=10.204.0.1
cp_ip=10.204.0.2
port=49510
a=uvpa$$
b=uvpb$$

netns_begin
if ! netns_add "$ns" 2>"$work/err"; then
    echo "SKIP: cannot create a network namespace (needs root and iproute2: $(cat "$work/err")): libupnp interop not run" >&2
    exit 77
fi
netns_veth "$a" "$ns" "$dev_ip/24" "$b" "$ns" "$cp_ip/24"

netns_spawn "$ns" ${UVGENA_TEST_WRAPPER:-} "$uvgena" serve-demo --host "$dev_ip" --port "$port" \
    --interval 100 >"$work/serve.out" 2>"$work/serve.err"
serve_pid=$netns_pid
for _ in $(seq 1 100); do
    grep -q "RenderingControl:" "$work/serve.out" 2>/dev/null && break
    sleep 0.05
done
event_url=$(awk '/^RenderingControl:/ {print $2}' "$work/serve.out")
test -n "$event_url" || { echo "serve-demo did not start:"; cat "$work/serve.err"; exit 1; }
echo "publisher: $event_url"

# libupnp binds its callback server on the control point's interface ($b, 10.204.0.2).
status=0
# The control point is a peer, not ours: under a sanitizer build, leaks inside libupnp itself
# (UpnpString allocations it never frees) must not fail the test; uvgena's serve-demo keeps
# its leak checking.
ip netns exec "$ns" env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    "$subscriber" "$b" "$event_url" 5 20 >"$work/cp.out" 2>"$work/cp.err" || status=$?
cat "$work/cp.out"
cat "$work/cp.err" >&2
test "$status" = 0 || { echo "libupnp control point failed ($status)"; exit 1; }
grep -q "^SUBSCRIBED uuid:" "$work/cp.out"
for seq in 0 1 2 3 4; do grep -q "^EVENT $seq LastChange=" "$work/cp.out"; done
grep -q "^UNSUBSCRIBED ok" "$work/cp.out"

# Issue 20: 20 more subscriptions, each of which must get its initial event (SEQ 0) first:
# the publisher sends it only after the SUBSCRIBE answer left, so libupnp has stored the SID.
initial=0
for i in $(seq 1 20); do
    if ip netns exec "$ns" env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        "$subscriber" "$b" "$event_url" 1 5 >"$work/cp$i.out" 2>"$work/cp$i.err" &&
        grep -q "^EVENT 0 LastChange=" "$work/cp$i.out"; then
        initial=$((initial + 1))
    else
        cat "$work/cp$i.out" "$work/cp$i.err" >&2
    fi
done
echo "libupnp: $initial of 20 initial events"
test "$initial" = 20 || exit 1

netns_stop "$serve_pid" 60  # its exit status counts: time for valgrind to finish
# 21 subscriptions in all: none was made again behind the control point's back.
grep -q "^served .* 21 subscriptions" "$work/serve.out" || { cat "$work/serve.out"; exit 1; }
echo "libupnp interop with the publisher: ok"
