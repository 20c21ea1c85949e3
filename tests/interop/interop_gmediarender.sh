#!/usr/bin/env bash
# Interop, the other direction: uvgena's subscription client against a libupnp device
# (gmediarender): the initial event and the event of a SetVolume must arrive in order, then
# the unsubscribe must succeed. Runs in a private network namespace made here (libupnp ignores
# loopback); skipped loudly (exit 77) where one cannot be made or gmediarender is missing.
#
# Usage: interop_gmediarender.sh UVGENA_SUBSCRIBER
set -euo pipefail
subscriber=$1
ns=uvg-gmr-interop.$$
dev_ip=10.205.0.1
cp_ip=10.205.0.2
port=49511
a=uvga$$
b=uvgb$$
pids=()
work=$(mktemp -d)

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if ! command -v gmediarender >/dev/null || ! command -v curl >/dev/null; then
    echo "SKIP: gmediarender or curl missing: libupnp device interop not run" >&2
    exit 77
fi
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! ip netns add "$ns" 2>/dev/null; then
    echo "SKIP: cannot create a network namespace (needs root and iproute2): interop not run" >&2
    exit 77
fi
in_ns() { ip netns exec "$ns" "$@"; }
in_ns sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip link add "$a" type veth peer name "$b"
ip link set "$a" netns "$ns"
ip link set "$b" netns "$ns"
in_ns ip link set lo up
in_ns ip addr add "$dev_ip/24" dev "$a"
in_ns ip addr add "$cp_ip/24" dev "$b"
in_ns ip link set "$a" up
in_ns ip link set "$b" up

ip netns exec "$ns" gmediarender -I "$a" -p "$port" -f "uvgena interop" \
    -u 11111111-2222-3333-4444-555555555556 \
    --gstout-audiosink=fakesink --gstout-videosink=fakesink --logfile "$work/gmr.log" &
pids+=($!)
base="http://$dev_ip:$port"
for _ in $(seq 1 100); do
    in_ns curl -sf -m 2 "$base/description.xml" -o "$work/description.xml" && break
    sleep 0.1
done
test -s "$work/description.xml"
path_of() { # service fragment, element -> its URL path from the description
    tr -d '\n' < "$work/description.xml" | grep -o "<service>[^#]*</service>" |
        sed 's#</service>#</service>\n#g' | grep "$1" | grep -o "<$2>[^<]*</$2>" |
        sed "s#<$2>\(.*\)</$2>#\1#" | head -1
}
rc_event=$base$(path_of RenderingControl eventSubURL)
rc_control=$base$(path_of RenderingControl controlURL)
echo "device: $rc_event"

ip netns exec "$ns" ${UVGENA_TEST_WRAPPER:-} "$subscriber" "$rc_event" "$cp_ip" 2 20 >"$work/sub.out" 2>"$work/sub.err" &
sub_pid=$!
pids+=($sub_pid)
for _ in $(seq 1 100); do
    grep -q "^EVENT 0" "$work/sub.out" 2>/dev/null && break
    sleep 0.1
done
in_ns curl -s -m 5 -o /dev/null -X POST "$rc_control" -H 'Content-Type: text/xml; charset="utf-8"' \
    -H 'SOAPACTION: "urn:schemas-upnp-org:service:RenderingControl:1#SetVolume"' --data-binary \
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:SetVolume xmlns:u="urn:schemas-upnp-org:service:RenderingControl:1"><InstanceID>0</InstanceID><Channel>Master</Channel><DesiredVolume>42</DesiredVolume></u:SetVolume></s:Body></s:Envelope>'
status=0
wait "$sub_pid" || status=$?
cat "$work/sub.out"
cat "$work/sub.err" >&2
test "$status" = 0 || { echo "uvgena subscriber failed ($status)"; exit 1; }
grep -q "^SUBSCRIBED uuid:" "$work/sub.out"
grep -q "^EVENT 0 " "$work/sub.out"
grep -q "^EVENT 1 Volume=42" "$work/sub.out"
grep -q "^UNSUBSCRIBED ok" "$work/sub.out"
echo "uvgena client with gmediarender (libupnp): ok"
