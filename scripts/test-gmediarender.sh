#!/usr/bin/env bash
# Real-device test: gmediarender (a UPnP MediaRenderer on libupnp, written by nobody here)
# in a private network namespace, uvgena in a second one, joined by a veth pair
# (10.204.0.1 = device, 10.204.0.2 = uvgena): no packet leaves the two namespaces. libupnp
# ignores loopback, hence the veth pair.
#
# Runs, inside the namespace:
#   1. the doctest program test_ssdp_device: discover() -> fetch_description() -> subscribe
#      -> the first NOTIFY -> unsubscribe, against the device;
#   2. the CLI: `uvgena discover --json`, `uvgena describe`, and its error exits.
#
# Usage: scripts/test-gmediarender.sh BUILD_ROOT
# Exits 77 (skipped, loudly) without root, ip, unshare or gmediarender.
set -euo pipefail

build=${1:?usage: $0 BUILD_ROOT}
skip() { echo "SKIPPED: $*" >&2; exit 77; }
# shellcheck source=scripts/netns-lib.sh
. "$(dirname "$0")/netns-lib.sh"
command -v gmediarender >/dev/null || skip "no gmediarender (apt-get install gmediarender)"

ns=uvg-cli.$$
dev_ns=uvg-dev.$$
dev_ip=10.204.0.1
cli_ip=10.204.0.2
dev_port=49495
udn_uuid=5e3a1c2b-0d4f-4e6a-9b8c-7d6e5f4a3b2c
a=uvdd$$
b=uvdc$$
failures=0

netns_begin
netns_add "$ns" || skip "the real-device test needs root and iproute2 (network namespaces)"
netns_add "$dev_ns"
# IPv4 only ("all" sets the default too, so the veth ends moved in later have no IPv6).
for n in "$ns" "$dev_ns"; do ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
netns_veth "$a" "$dev_ns" "$dev_ip/24" "$b" "$ns" "$cli_ip/24"
in_ns() { ip netns exec "$ns" "$@"; }
netns_gmediarender "$dev_ns" "$a" "$dev_ip" "$dev_port" "uvgena device test" "$udn_uuid"
location=http://$dev_ip:$dev_port/description.xml

# The test programs refuse to run unless they are in a namespace other than this one.
export UVGENA_OUTER_NETNS
UVGENA_OUTER_NETNS=$(readlink /proc/self/ns/net)
export UVGENA_DEVICE_IF=$b UVGENA_DEVICE_UDN=uuid:$udn_uuid UVGENA_DEVICE_LOCATION=$location

check() { # description, command...
    local what=$1
    shift
    if "$@"; then
        echo "ok: $what"
    else
        echo "FAILED: $what" >&2
        failures=$((failures + 1))
    fi
}

check "library: discover, describe, subscribe against gmediarender" \
    in_ns ${UVGENA_TEST_WRAPPER:-} "$build/tests/ssdp/test_ssdp_device"

uvgena=$build/src/cli/uvgena
if [ -x "$uvgena" ]; then
    in_ns "$uvgena" discover --interface "$b" --timeout 2 --json >"$work/discover.json" || true
    check "cli: discover --json lists gmediarender with its RenderingControl event URL" \
        python3 - "$work/discover.json" "uuid:$udn_uuid" "$location" <<'PY'
import json, sys
devices = json.load(open(sys.argv[1]))
dev = [d for d in devices if sys.argv[2] in d["udns"]]
assert dev, devices
d = dev[0]
assert d["location"] == sys.argv[3], d
assert d["description"]["friendly_name"] == "uvgena device test", d
names = [s["name"] for s in d["description"]["services"]]
assert "RenderingControl" in names and "AVTransport" in names, names
rc = [s for s in d["description"]["services"] if s["name"] == "RenderingControl"][0]
assert rc["event_sub_url"].startswith("http://10.204.0.1:"), rc
PY
    in_ns "$uvgena" discover --interface "$b" --timeout 2 >"$work/discover.txt" || true
    check "cli: discover prints a table with the device and its services" \
        grep -q "uvgena device test" "$work/discover.txt"
    check "cli: the table names each service's event URL" \
        grep -q "event     http://$dev_ip:$dev_port/" "$work/discover.txt"

    check "cli: describe prints the device tree" \
        sh -c "ip netns exec $ns $uvgena describe $location | grep -q 'service RenderingControl'"
    check "cli: describe --json is JSON with the services" \
        sh -c "ip netns exec $ns $uvgena describe --json $location | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"device\"][\"services\"]'"

    set +e
    in_ns "$uvgena" describe "http://$dev_ip:1/none.xml" >/dev/null 2>"$work/err1"
    rc1=$?
    in_ns "$uvgena" describe "no url" >/dev/null 2>"$work/err2"
    rc2=$?
    in_ns "$uvgena" discover --interface nosuch0 --timeout 1 >/dev/null 2>"$work/err3"
    rc3=$?
    set -e
    check "cli: an unreachable device exits 1 with one line on stderr" \
        sh -c "[ $rc1 -eq 1 ] && [ \$(wc -l <$work/err1) -eq 1 ] && grep -q 'connection refused' $work/err1"
    check "cli: a bad URL is a usage error (2) with one line on stderr" \
        sh -c "[ $rc2 -eq 2 ] && [ \$(wc -l <$work/err2) -eq 1 ]"
    check "cli: an unknown interface exits 1 naming it" \
        sh -c "[ $rc3 -eq 1 ] && grep -q nosuch0 $work/err3"
else
    echo "SKIPPED: CLI checks ($uvgena not built)" >&2
fi

if [ "$failures" -ne 0 ]; then
    echo "--- gmediarender log" >&2
    tail -n 30 "$work/gmr.log" >&2 || true
    exit 1
fi
