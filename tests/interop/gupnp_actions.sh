#!/usr/bin/env bash
# Interop (issue 22, part 2): a GUPnP 1.6 control point (PyGObject, gupnp_actions.py) calls
# the SOAP actions of `uvgena serve-demo --ssdp`, answered by the Publisher's action handlers:
# values read back, UPnP error codes of faults as GUPnP reports them, DIDL-Lite in an argument.
#
# Both run in a private network namespace made here, with a veth pair whose two ends live in
# it (SSDP multicast needs a real link; no packet leaves the namespace). Skipped (exit 77)
# where namespaces cannot be made or PyGObject with GUPnP 1.6 is missing.
#
# Usage: gupnp_actions.sh UVGENA_BINARY
set -euo pipefail
uvgena=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/netns-lib.sh
. "$here/../../scripts/netns-lib.sh"
python=/usr/bin/python3
if ! "$python" -c 'import gi; gi.require_version("GUPnP", "1.6"); from gi.repository import GUPnP' 2>/dev/null; then
    echo "SKIP: python3-gi with gir1.2-gupnp-1.6 is not installed: GUPnP interop not run" >&2
    exit 77
fi
ns=uvg-gupnpa.$$
dev_ip=10.206.0.1
cp_ip=10.206.0.2
port=49530
a=uvgaa$$
b=uvgab$$

netns_begin
if ! netns_add "$ns" 2>"$work/err"; then
    echo "SKIP: cannot create a network namespace (needs root and iproute2: $(cat "$work/err")): GUPnP interop not run" >&2
    exit 77
fi
netns_veth "$a" "$ns" "$dev_ip/24" "$b" "$ns" "$cp_ip/24"
ip netns exec "$ns" ip route add 239.0.0.0/8 dev "$b"

# No simulated changes (--interval 0): the values read back are the ones the calls set.
netns_spawn "$ns" ${UVGENA_TEST_WRAPPER:-} "$uvgena" serve-demo --host "$dev_ip" --port "$port" \
    --interval 0 --ssdp --ssdp-response-delay 100 >"$work/serve.out" 2>"$work/serve.err"
serve_pid=$netns_pid
for _ in $(seq 1 100); do
    grep -q "RenderingControl:" "$work/serve.out" 2>/dev/null && break
    sleep 0.05
done
grep -q "RenderingControl:" "$work/serve.out" || { echo "serve-demo did not start:"; cat "$work/serve.err"; exit 1; }

status=0
ip netns exec "$ns" "$python" "$here/gupnp_actions.py" "$b" 10 \
    >"$work/cp.out" 2>"$work/cp.err" || status=$?
cat "$work/cp.out"
grep -v "^$" "$work/cp.err" >&2 || true
netns_stop "$serve_pid" 60 || true
test "$status" = 0 || { echo "GUPnP control point: an action call went wrong ($status)"; cat "$work/serve.err"; exit 1; }
echo "GUPnP interop with the publisher's action handlers: every check passed"
