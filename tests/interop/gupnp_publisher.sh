#!/usr/bin/env bash
# Interop (issue 20): a GUPnP 1.6 control point (PyGObject: ControlPoint discovery over SSDP,
# ServiceProxy.add_notify + set_subscribed) subscribes COUNT times to `uvgena serve-demo
# --ssdp`. Every initial event (SEQ 0) must reach its notify callback, and none may be
# resubscribed: GUPnP throws away a NOTIFY that arrives before it stored the SID (it did with
# the initial event sent ~50 us after the SUBSCRIBE answer: 1 of 16 arrived), then sees SEQ 1
# as a gap and resubscribes.
#
# Both run in a private network namespace made here, with a veth pair whose two ends live in
# it (SSDP multicast needs a real link; no packet leaves the namespace). Skipped (exit 77)
# where namespaces cannot be made or PyGObject with GUPnP 1.6 is missing.
#
# Usage: gupnp_publisher.sh UVGENA_BINARY [COUNT] [EXTRA serve-demo ARGS...]
#   e.g. gupnp_publisher.sh build/src/cli/uvgena 20 --initial-event-delay 0   (the old race)
set -euo pipefail
uvgena=$1
count=${2:-20}
shift 2 || shift $#
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/netns-lib.sh
. "$here/../../scripts/netns-lib.sh"
python=/usr/bin/python3
if ! "$python" -c 'import gi; gi.require_version("GUPnP", "1.6"); from gi.repository import GUPnP' 2>/dev/null; then
    echo "SKIP: python3-gi with gir1.2-gupnp-1.6 is not installed: GUPnP interop not run" >&2
    exit 77
fi
ns=uvg-gupnp.$$
dev_ip=10.205.0.1
cp_ip=10.205.0.2
port=49520
a=uvga$$
b=uvgb$$

netns_begin
if ! netns_add "$ns" 2>"$work/err"; then
    echo "SKIP: cannot create a network namespace (needs root and iproute2: $(cat "$work/err")): GUPnP interop not run" >&2
    exit 77
fi
netns_veth "$a" "$ns" "$dev_ip/24" "$b" "$ns" "$cp_ip/24"
# The SSDP multicast of both ends goes over the veth pair.
ip netns exec "$ns" ip route add 239.0.0.0/8 dev "$b"

# A change every 300 ms: a lost initial event shows as a resubscription at the next one.
netns_spawn "$ns" ${UVGENA_TEST_WRAPPER:-} "$uvgena" serve-demo --host "$dev_ip" --port "$port" \
    --interval 300 --ssdp --ssdp-response-delay 100 "$@" >"$work/serve.out" 2>"$work/serve.err"
serve_pid=$netns_pid
for _ in $(seq 1 100); do
    grep -q "RenderingControl:" "$work/serve.out" 2>/dev/null && break
    sleep 0.05
done
grep -q "RenderingControl:" "$work/serve.out" || { echo "serve-demo did not start:"; cat "$work/serve.err"; exit 1; }

status=0
ip netns exec "$ns" "$python" "$here/gupnp_subscriber.py" "$b" "$count" 3 \
    >"$work/cp.out" 2>"$work/cp.err" || status=$?
cat "$work/cp.out"
grep -v "^$" "$work/cp.err" >&2 || true

netns_stop "$serve_pid" 60 || true
cat "$work/serve.out"
subscriptions=$(sed -n 's/^served .* \([0-9][0-9]*\) subscriptions.*/\1/p' "$work/serve.out")
echo "serve-demo counted $subscriptions subscriptions for $count subscribers"
test "$status" = 0 || { echo "GUPnP control point: not every initial event arrived once ($status)"; exit 1; }
test "$subscriptions" = "$count" || { echo "GUPnP resubscribed"; exit 1; }
echo "GUPnP interop with the publisher: $count of $count initial events, no resubscription"
