#!/usr/bin/env bash
# Captures gmediarender's service descriptions (SCPDs) and a few real SOAP exchanges for the
# control tests: a GetVolume response, a SetVolume response, and the answers to a SetVolume
# with an out-of-range volume, with a wrong argument name and to an unknown action.
#
# libupnp ignores loopback, so everything runs inside a private network namespace with a
# veth pair whose BOTH ends live in it (10.205.0.1 = device, 10.205.0.2 = us): no traffic
# leaves the namespace. Needs root, gmediarender and curl.
#
# Usage: scripts/capture-gmediarender-scpd.sh [OUTPUT_DIR]   (default tests/data/gmediarender/control)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/tests/data/gmediarender/control}
# shellcheck source=scripts/netns-lib.sh
. "$(dirname "$0")/netns-lib.sh"
ns=uvg-scpd-cap.$$
dev_ip=10.205.0.1
cli_ip=10.205.0.2
dev_port=49494
a=uvca$$
b=uvcb$$

netns_begin
in_ns() { ip netns exec "$ns" "$@"; }
netns_add "$ns"
netns_veth "$a" "$ns" "$dev_ip/24" "$b" "$ns" "$cli_ip/24"
netns_gmediarender "$ns" "$a" "$dev_ip" "$dev_port" "uvgena capture" \
    11111111-2222-3333-4444-555555555556
base="http://$dev_ip:$dev_port"
mkdir -p "$out"
for scpd in rendercontrolSCPD rendertransportSCPD renderconnmgrSCPD; do
    in_ns curl -sf -m 2 "$base/upnp/$scpd.xml" -o "$out/$scpd.xml"
done

soap() { # output-name control-path service action args-xml
    status=0
    rm -f "$work/head" "$work/body"
    in_ns curl -s -m 5 -D "$work/head" -o "$work/body" -X POST "$base$2" \
        -H 'Content-Type: text/xml; charset="utf-8"' \
        -H "SOAPACTION: \"urn:schemas-upnp-org:service:$3:1#$4\"" --data-binary \
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:$4 xmlns:u=\"urn:schemas-upnp-org:service:$3:1\">$5</u:$4></s:Body></s:Envelope>" ||
        status=$?
    if [ "$status" -eq 0 ]; then cat "$work/head" "$work/body" > "$out/$1.response.http"; fi
    return "$status"
}
rc=/upnp/control/rendercontrol1
soap set-volume "$rc" RenderingControl SetVolume \
    '<InstanceID>0</InstanceID><Channel>Master</Channel><DesiredVolume>33</DesiredVolume>'
soap get-volume "$rc" RenderingControl GetVolume '<InstanceID>0</InstanceID><Channel>Master</Channel>'
soap set-volume-out-of-range "$rc" RenderingControl SetVolume \
    '<InstanceID>0</InstanceID><Channel>Master</Channel><DesiredVolume>200</DesiredVolume>'
soap get-volume-after-out-of-range "$rc" RenderingControl GetVolume \
    '<InstanceID>0</InstanceID><Channel>Master</Channel>'
soap unknown-action "$rc" RenderingControl NoSuchAction '<InstanceID>0</InstanceID>'
# Last: gmediarender 0.0.9 dies (SIGSEGV) on a SetVolume without DesiredVolume, so nothing
# answers after it. The test suite proves uvgena refuses such a call before sending it.
soap set-volume-wrong-name "$rc" RenderingControl SetVolume \
    '<InstanceID>0</InstanceID><Channel>Master</Channel><Volume>20</Volume>' || true
sleep 0.5
if kill -0 "$netns_pid" 2>/dev/null; then
    echo "gmediarender survived the wrong name" > "$out/set-volume-wrong-name.txt"
else
    echo "gmediarender died on the wrong name: no answer" > "$out/set-volume-wrong-name.txt"
fi
gmediarender --version > "$out/gmediarender-version.txt" 2>&1 || true
echo "captured into $out:"; ls -l "$out"
