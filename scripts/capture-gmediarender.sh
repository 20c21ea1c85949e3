#!/usr/bin/env bash
# Captures real GENA traffic from gmediarender (a UPnP MediaRenderer built on libupnp) for
# the gena tests: SUBSCRIBE / renewal / UNSUBSCRIBE responses and the NOTIFY requests that
# follow a SetVolume and a SetAVTransportURI action.
#
# libupnp ignores loopback, so everything runs inside a private network namespace with a
# veth pair whose BOTH ends live in it (10.203.0.1 = device, 10.203.0.2 = our listener):
# no traffic leaves the namespace. Needs root, gmediarender, curl, python3.
#
# Usage: scripts/capture-gmediarender.sh [OUTPUT_DIR]   (default tests/data/gmediarender)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/tests/data/gmediarender}
# shellcheck source=scripts/netns-lib.sh
. "$(dirname "$0")/netns-lib.sh"
ns=uvg-gena-cap.$$
dev_ip=10.203.0.1
cli_ip=10.203.0.2
dev_port=49494
cb_port=49700
a=uvga$$
b=uvgb$$

netns_begin
in_ns() { ip netns exec "$ns" "$@"; }
netns_add "$ns"
netns_veth "$a" "$ns" "$dev_ip/24" "$b" "$ns" "$cli_ip/24"

# The NOTIFY listener: writes each request (request line, headers, body) to notify-N.http.
cat > "$work/listener.py" <<'PY'
import http.server, sys, os
out, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
count = [0]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_NOTIFY(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n) if n else b""
        raw = self.requestline + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items()) + "\r\n"
        with open(os.path.join(out, "notify-%d.http" % count[0]), "wb") as f:
            f.write(raw.encode("latin-1") + body)
        count[0] += 1
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer((host, port), H).serve_forever()
PY
mkdir -p "$work/notify"
netns_spawn "$ns" python3 "$work/listener.py" "$work/notify" "$cli_ip" "$cb_port"

netns_gmediarender "$ns" "$a" "$dev_ip" "$dev_port" "uvgena capture" \
    11111111-2222-3333-4444-555555555555
base="http://$dev_ip:$dev_port"
in_ns curl -sf -m 2 "$base/description.xml" -o "$work/description.xml"
test -s "$work/description.xml"
event_url() { # service type fragment -> absolute eventSubURL
    python3 - "$work/description.xml" "$1" <<'PY'
import sys, re
d = open(sys.argv[1]).read()
for s in re.findall(r"<service>(.*?)</service>", d, re.S):
    if sys.argv[2] in s:
        print(re.search(r"<eventSubURL>(.*?)</eventSubURL>", s).group(1)); break
PY
}
control_url() {
    python3 - "$work/description.xml" "$1" <<'PY'
import sys, re
d = open(sys.argv[1]).read()
for s in re.findall(r"<service>(.*?)</service>", d, re.S):
    if sys.argv[2] in s:
        print(re.search(r"<controlURL>(.*?)</controlURL>", s).group(1)); break
PY
}
rc_event=$base$(event_url RenderingControl)
avt_event=$base$(event_url AVTransport)
rc_control=$base$(control_url RenderingControl)
avt_control=$base$(control_url AVTransport)

mkdir -p "$out"
cp "$work/description.xml" "$out/description.xml"

subscribe() { # url name
    in_ns curl -s -m 5 -D "$out/$2.response.http" -o /dev/null -X SUBSCRIBE \
        -H "CALLBACK: <http://$cli_ip:$cb_port/$2>" -H 'NT: upnp:event' -H 'TIMEOUT: Second-300' "$1"
    tr -d '\r' < "$out/$2.response.http" | sed -n 's/^[Ss][Ii][Dd]: *//p'
}
rc_sid=$(subscribe "$rc_event" subscribe-rc)
avt_sid=$(subscribe "$avt_event" subscribe-avt)
sleep 1

soap() { # control-url service action args-xml
    in_ns curl -s -m 5 -o /dev/null -X POST "$1" -H 'Content-Type: text/xml; charset="utf-8"' \
        -H "SOAPACTION: \"urn:schemas-upnp-org:service:$2:1#$3\"" --data-binary \
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:$3 xmlns:u=\"urn:schemas-upnp-org:service:$2:1\">$4</u:$3></s:Body></s:Envelope>"
}
soap "$rc_control" RenderingControl SetVolume \
    '<InstanceID>0</InstanceID><Channel>Master</Channel><DesiredVolume>42</DesiredVolume>'
sleep 1
didl='&lt;DIDL-Lite xmlns=&quot;urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/&quot; xmlns:dc=&quot;http://purl.org/dc/elements/1.1/&quot; xmlns:upnp=&quot;urn:schemas-upnp-org:metadata-1-0/upnp/&quot;&gt;&lt;item id=&quot;42&quot; parentID=&quot;0&quot; restricted=&quot;1&quot;&gt;&lt;dc:title&gt;Rock &amp;amp; Roll&lt;/dc:title&gt;&lt;dc:creator&gt;Capture&lt;/dc:creator&gt;&lt;upnp:class&gt;object.item.audioItem.musicTrack&lt;/upnp:class&gt;&lt;res protocolInfo=&quot;http-get:*:audio/mpeg:*&quot; duration=&quot;0:03:21&quot;&gt;http://10.203.0.2:9/none.mp3&lt;/res&gt;&lt;/item&gt;&lt;/DIDL-Lite&gt;'
soap "$avt_control" AVTransport SetAVTransportURI \
    "<InstanceID>0</InstanceID><CurrentURI>http://10.203.0.2:9/none.mp3</CurrentURI><CurrentURIMetaData>$didl</CurrentURIMetaData>"
sleep 2

# Renewal (SID + TIMEOUT only), then UNSUBSCRIBE, then a renewal of the dead SID (412).
in_ns curl -s -m 5 -D "$out/renew-rc.response.http" -o /dev/null -X SUBSCRIBE \
    -H "SID: $rc_sid" -H 'TIMEOUT: Second-600' "$rc_event"
in_ns curl -s -m 5 -D "$out/unsubscribe-rc.response.http" -o /dev/null -X UNSUBSCRIBE \
    -H "SID: $rc_sid" "$rc_event"
in_ns curl -s -m 5 -D "$out/renew-unknown-sid.response.http" -o /dev/null -X SUBSCRIBE \
    -H "SID: $rc_sid" -H 'TIMEOUT: Second-600' "$rc_event"
in_ns curl -s -m 5 -D "$out/subscribe-bad-nt.response.http" -o /dev/null -X SUBSCRIBE \
    -H "CALLBACK: <http://$cli_ip:$cb_port/x>" -H 'NT: upnp:other' "$avt_event"
in_ns curl -s -m 5 -D "$out/unsubscribe-avt.response.http" -o /dev/null -X UNSUBSCRIBE \
    -H "SID: $avt_sid" "$avt_event"
sleep 0.5

cp "$work"/notify/*.http "$out/"
gmediarender --version > "$out/gmediarender-version.txt" 2>&1 || true
echo "captured into $out:"; ls -l "$out"
