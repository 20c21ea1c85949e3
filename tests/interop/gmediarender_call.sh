#!/usr/bin/env bash
# Issue 22: `uvgena call` against a real device (gmediarender, on libupnp). SetVolume 33
# succeeds, the event a `uvgena subscribe` prints shows Volume(Master) 33, and GetVolume
# answers 33; a wrong argument name is refused before sending (gmediarender, which dies of a
# SetVolume without DesiredVolume, is still alive after it); a volume outside the SCPD's range
# is refused too; an action the device lacks, sent with --no-check, is the device's SOAP
# fault: exit 1 with its errorCode and errorDescription (gmediarender logs "Unknown action"
# and answers 501 Action Failed, where UDA would say 401 Invalid Action: we show what it says).
# Runs in a private network namespace made here (veth pair with both ends inside: libupnp
# ignores loopback); everything started here is stopped by PID and the namespace deleted.
# Argument: the uvgena CLI. Exit 77 (meson: skipped) only where namespaces cannot be made.
set -uo pipefail
cli=$1
skip() { echo "SKIPPED: gmediarender call test: $*" >&2; echo "*** NOT RUN: $* ***"; exit 77; }
fail() { echo "FAIL: $*" >&2; show; exit 1; }

# shellcheck source=scripts/netns-lib.sh
. "$(dirname "$0")/../../scripts/netns-lib.sh"
command -v gmediarender >/dev/null || skip "gmediarender is not installed (scripts/install-deps.sh test)"

ns=uvg-call-$$-$RANDOM
a=uvca$$
b=uvcb$$
dev_ip=10.206.0.1
cli_ip=10.206.0.2
port=49496
netns_begin
netns_add "$ns" 2>"$work/err" || skip "cannot create a network namespace (needs root and iproute2): $(cat "$work/err")"
netns_veth "$a" "$ns" "$dev_ip/24" "$b" "$ns" "$cli_ip/24" || fail "cannot create a veth pair"

show() {
    echo "--- last call: exit $status, stdout ---" >&2; cat "$work/call.out" >&2 2>/dev/null
    echo "--- last call: stderr ---" >&2; cat "$work/call.err" >&2 2>/dev/null
    echo "--- subscribe stdout ---" >&2; cut -c1-300 "$work/events.json" >&2 2>/dev/null
    echo "--- subscribe stderr ---" >&2; cat "$work/sub.err" >&2 2>/dev/null
    echo "--- gmediarender log ---" >&2; tail -20 "$work/gmr.log" >&2 2>/dev/null
}

status=0
call() {  # call ARGS...: runs `uvgena call` in the namespace; sets $status
    ip netns exec "$ns" ${UVGENA_TEST_WRAPPER:-} "$cli" call "$@" >"$work/call.out" 2>"$work/call.err"
    status=$?
}

# The Volume(Master) of the last event printed by the subscriber ("" if none yet).
last_volume() {
    /usr/bin/python3 - "$work/events.json" <<'PY'
import json, sys
volume = ""
for raw in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        e = json.loads(raw)
    except ValueError:
        continue  # a line being written
    v = e.get("last_change", {}).get("0", {}).get("Volume", {}).get("Master")
    if v is not None:
        volume = v
print(volume)
PY
}

netns_gmediarender "$ns" "$a" "$dev_ip" "$port" "uvgena call" \
    "11111111-2222-3333-6666-$(printf '%012d' $$)" || exit 1
gmr_pid=$netns_pid
rc="http://$dev_ip:$port/description.xml#RenderingControl"

netns_spawn "$ns" ${UVGENA_TEST_WRAPPER:-} "$cli" subscribe "$rc" --json --duration 30 \
    --listen-host "$cli_ip" --listen-port 0 >"$work/events.json" 2>"$work/sub.err"
for _ in $(seq 1 100); do [ -s "$work/events.json" ] && break; sleep 0.1; done
[ -s "$work/events.json" ] || fail "no initial event from gmediarender"

call "$rc" SetVolume InstanceID=0 Channel=Master DesiredVolume=33
[ "$status" = 0 ] || fail "SetVolume 33: exit $status"
[ ! -s "$work/call.out" ] || fail "SetVolume printed out arguments it has none of"
for _ in $(seq 1 100); do [ "$(last_volume)" = 33 ] && break; sleep 0.1; done
[ "$(last_volume)" = 33 ] || fail "the subscriber's last Volume is '$(last_volume)', not 33"
echo "SetVolume 33: exit 0, and the event shows Volume(Master) 33"

call "$rc" GetVolume InstanceID=0 Channel=Master --json
[ "$status" = 0 ] || fail "GetVolume: exit $status"
[ "$(cat "$work/call.out")" = '{"CurrentVolume":"33"}' ] || fail "GetVolume printed $(cat "$work/call.out")"
echo "GetVolume --json: $(cat "$work/call.out")"

call "$rc" SetVolume InstanceID=0 Channel=Master Volume=20
[ "$status" = 2 ] || fail "a wrong argument name: exit $status, not 2"
grep -q "refused before sending" "$work/call.err" || fail "a wrong argument name: not refused before sending"
kill -0 "$gmr_pid" 2>/dev/null || fail "gmediarender died"
echo "wrong argument name: exit 2, $(cat "$work/call.err")"

call "$rc" SetVolume InstanceID=0 Channel=Master DesiredVolume=200
[ "$status" = 2 ] || fail "volume 200: exit $status, not 2"
grep -q "allowedValueRange" "$work/call.err" || fail "volume 200: not refused by its range"
echo "out-of-range volume: exit 2, $(cat "$work/call.err")"

call "$rc" SetLoudness InstanceID=0 Channel=Master DesiredLoudness=1 --no-check --json
[ "$status" = 1 ] || fail "an action gmediarender lacks: exit $status, not 1"
fault=$(cat "$work/call.err")
case "$fault" in
    "uvgena: 501 Action Failed") ;;
    *) fail "an action gmediarender lacks: '$fault', not its 501 fault" ;;
esac
/usr/bin/python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e == {"code": 501, "description": "Action Failed"}, e' \
    "$work/call.out" || fail "the fault's JSON: $(cat "$work/call.out")"
echo "the device's fault: exit 1, $fault, $(cat "$work/call.out")"

call "$rc" GetVolume InstanceID=0 Channel=Master
[ "$status" = 0 ] && [ "$(cat "$work/call.out")" = "CurrentVolume=33" ] ||
    fail "GetVolume after the refused calls: exit $status, $(cat "$work/call.out")"
kill -0 "$gmr_pid" 2>/dev/null || fail "gmediarender died"
echo "the volume is still 33: nothing refused reached the device"
