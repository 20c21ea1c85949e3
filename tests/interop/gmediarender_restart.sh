#!/usr/bin/env bash
# Issue 19: `uvgena subscribe <location>#RenderingControl --auto-renew` keeps running while a
# real device (gmediarender, on libupnp) is stopped and started again with the same address,
# port and UDN (it forgets every SID), subscribes again, and prints a volume change made after
# the restart; it then runs to its --duration and exits 0.
# Runs in a private network namespace made here (veth pair with both ends inside: libupnp
# ignores loopback); everything started here is stopped by PID and the namespace deleted.
# Argument: the uvgena CLI. Exit 77 (meson: skipped) only where namespaces cannot be made.
set -uo pipefail
cli=$1
skip() { echo "SKIPPED: gmediarender restart test: $*" >&2; echo "*** NOT RUN: $* ***"; exit 77; }
fail() { echo "FAIL: $*" >&2; show; exit 1; }

# shellcheck source=scripts/netns-lib.sh
. "$(dirname "$0")/../../scripts/netns-lib.sh"
command -v gmediarender >/dev/null || skip "gmediarender is not installed (scripts/install-deps.sh test)"

ns=uvg-rst-$$-$RANDOM
a=uvra$$
b=uvrb$$
dev_ip=10.205.0.1
cli_ip=10.205.0.2
port=49495
udn="11111111-2222-3333-5555-$(printf '%012d' $$)"
duration=30
netns_begin
netns_add "$ns" 2>"$work/err" || skip "cannot create a network namespace (needs root and iproute2): $(cat "$work/err")"
netns_veth "$a" "$ns" "$dev_ip/24" "$b" "$ns" "$cli_ip/24" || fail "cannot create a veth pair"

show() {
    echo "--- uvgena stdout ---" >&2; cut -c1-300 "$work/out.json" >&2 2>/dev/null
    echo "--- uvgena stderr ---" >&2; cat "$work/cli.err" >&2 2>/dev/null
    echo "--- gmediarender log ---" >&2; tail -20 "$work/gmr.log" >&2 2>/dev/null
}

# Lines of the CLI's JSON output, counted or searched with the system Python (json module).
events() {
    /usr/bin/python3 - "$work/out.json" "$@" <<'EOF'
import json, sys
path, query = sys.argv[1], sys.argv[2]
lines = []
for raw in open(path, encoding="utf-8", errors="replace"):
    try:
        lines.append(json.loads(raw))
    except ValueError:
        pass  # a line being written
if query == "count":
    print(len(lines))
elif query == "resubscribed":
    print(sum(1 for e in lines if e.get("resubscribed")))
elif query == "volume_after_resubscribe":
    want = sys.argv[3]
    seen = False
    hit = 0
    for e in lines:
        seen = seen or bool(e.get("resubscribed"))
        volume = e.get("last_change", {}).get("0", {}).get("Volume", {}).get("Master")
        if seen and volume == want:
            hit = 1
    print(hit)
EOF
}

wait_for() {  # wait_for SECONDS QUERY [ARG]: until events QUERY [ARG] prints a non-zero number
    local limit=$(($1 * 10)); shift
    for _ in $(seq 1 "$limit"); do
        [ "$(events "$@")" != "0" ] && return 0
        sleep 0.1
    done
    return 1
}

soap_set_volume() {
    ip netns exec "$ns" curl -sf -m 3 -o /dev/null \
        -H 'Content-Type: text/xml; charset="utf-8"' \
        -H 'SOAPACTION: "urn:schemas-upnp-org:service:RenderingControl:1#SetVolume"' \
        --data "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:SetVolume xmlns:u=\"urn:schemas-upnp-org:service:RenderingControl:1\"><InstanceID>0</InstanceID><Channel>Master</Channel><DesiredVolume>$1</DesiredVolume></u:SetVolume></s:Body></s:Envelope>" \
        "http://$dev_ip:$port/upnp/control/rendercontrol1"
}

netns_gmediarender "$ns" "$a" "$dev_ip" "$port" "uvgena restart" "$udn" || exit 1
gmr_pid=$netns_pid

# The CLI, 10 s grants (renewal at 8.5 s: a 412 would bring it back even without SSDP).
netns_spawn "$ns" ${UVGENA_TEST_WRAPPER:-} "$cli" subscribe \
    "http://$dev_ip:$port/description.xml#RenderingControl" --json --auto-renew --timeout 10 \
    --duration "$duration" --listen-host "$cli_ip" --listen-port 0 -v \
    >"$work/out.json" 2>"$work/cli.err"
cli_pid=$netns_pid
start=$(date +%s)

wait_for 15 count || fail "no initial event from gmediarender"

# Restart: same address, port and UDN; gmediarender forgets every subscription.
netns_stop "$gmr_pid" 5 || true
sleep 1
netns_gmediarender "$ns" "$a" "$dev_ip" "$port" "uvgena restart" "$udn" || fail "gmediarender did not come back"
restarted=$(date +%s)

wait_for 25 resubscribed || fail "no event flagged resubscribed within 25 s of the restart"
echo "resubscribed $(( $(date +%s) - restarted )) s after the restart"
kill -0 "$cli_pid" 2>/dev/null || fail "the CLI exited after the restart"

# A change made after the restart reaches the CLI (asked again if gmediarender's own start-up
# volume report overrides it).
ok=0
for volume in 37 38 39; do
    soap_set_volume "$volume" || { sleep 1; continue; }
    if wait_for 5 volume_after_resubscribe "$volume"; then ok=1; break; fi
done
[ "$ok" = 1 ] || fail "no Volume change after the restart was printed"
echo "volume change after the restart printed"

# The CLI runs to its --duration and exits 0.
left=$(( duration + 15 - ($(date +%s) - start) ))
for _ in $(seq 1 $(( left * 10 ))); do kill -0 "$cli_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$cli_pid" 2>/dev/null && fail "the CLI did not exit after --duration $duration"
status=0
netns_stop "$cli_pid" 1 || status=$?
[ "$status" = 0 ] || fail "the CLI exited $status"
grep -q "SID" "$work/cli.err" || fail "-v did not log the subscription"
grep -iE "lost|resubscri|byebye|is back" "$work/cli.err" | head -4
echo "ok: $(events count) events; the CLI ran to --duration and exited 0"
