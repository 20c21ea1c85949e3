#!/usr/bin/env bash
# The examples set_volume (coroutine) and set_volume_blocking (BackgroundLoop) against
# `uvgena serve-demo` over loopback: each sets a volume, sees the event that confirms it and
# exits 0; GetVolume then answers the last one; a volume outside the SCPD's range is exit 1.
# print_volume (a StateMirror) and print_volume_blocking (a BlockingStateMirror) print the
# volume at once and after each change.
# Arguments: the uvgena CLI, set_volume, set_volume_blocking, print_volume,
# print_volume_blocking.
set -uo pipefail
cli=$1
coroutine=$2
blocking=$3
print_volume=$4
print_volume_blocking=$5
work=$(mktemp -d)
demo_pid=
printer_pid=
blocking_printer_pid=
cleanup() {
    [ -n "$printer_pid" ] && kill "$printer_pid" 2>/dev/null && wait "$printer_pid" 2>/dev/null
    [ -n "$blocking_printer_pid" ] && kill "$blocking_printer_pid" 2>/dev/null &&
        wait "$blocking_printer_pid" 2>/dev/null
    [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- last output ---" >&2; cat "$work/out" "$work/err" >&2 2>/dev/null
    exit 1
}

"$cli" serve-demo --interval 0 --duration 60 >"$work/demo.out" 2>"$work/demo.err" &
demo_pid=$!
for _ in $(seq 1 100); do grep -q '^description:' "$work/demo.out" 2>/dev/null && break; sleep 0.1; done
description=$(sed -n 's/^description: *//p' "$work/demo.out")
[ -n "$description" ] || fail "serve-demo printed no description URL"
rc="$description#RenderingControl"
rc_events=$(sed -n 's/^RenderingControl: *//p' "$work/demo.out")

# print_volume from the start: the demo's volume (20) at once, from the initial event.
${UVGENA_TEST_WRAPPER:-} "$print_volume" "$rc_events" >"$work/volumes" 2>"$work/volumes.err" &
printer_pid=$!
${UVGENA_TEST_WRAPPER:-} "$print_volume_blocking" "$rc_events" >"$work/bvolumes" 2>"$work/bvolumes.err" &
blocking_printer_pid=$!
seen() {  # seen VOLUME [FILE]: print_volume printed "Volume VOLUME" within 10 s
    local file=${2:-$work/volumes}
    for _ in $(seq 1 100); do grep -qx "Volume $1" "$file" && return 0; sleep 0.1; done
    return 1
}
seen 20 || fail "print_volume did not print the initial volume: $(cat "$work/volumes" "$work/volumes.err")"
seen 20 "$work/bvolumes" ||
    fail "print_volume_blocking did not print the initial volume: $(cat "$work/bvolumes" "$work/bvolumes.err")"

${UVGENA_TEST_WRAPPER:-} "$coroutine" "$rc" 33 >"$work/out" 2>"$work/err" || fail "set_volume 33: exit $?"
grep -q '^volume 33 confirmed by event SEQ [1-9][0-9]* after [0-9]* ms$' "$work/out" || fail "set_volume 33 printed $(cat "$work/out")"
echo "coroutine: $(cat "$work/out")"

${UVGENA_TEST_WRAPPER:-} "$blocking" "$rc" 44 >"$work/out" 2>"$work/err" || fail "set_volume_blocking 44: exit $?"
grep -q '^volume 44 confirmed by event SEQ [1-9][0-9]* after [0-9]* ms$' "$work/out" || fail "set_volume_blocking 44 printed $(cat "$work/out")"
echo "blocking: $(cat "$work/out")"

"$cli" call "$rc" GetVolume InstanceID=0 Channel=Master >"$work/out" 2>"$work/err" || fail "GetVolume: exit $?"
[ "$(cat "$work/out")" = "CurrentVolume=44" ] || fail "GetVolume printed $(cat "$work/out")"

# Already at 44: said at once, from the initial event.
"$blocking" "$rc" 44 >"$work/out" 2>"$work/err" || fail "set_volume_blocking 44 again: exit $?"
[ "$(cat "$work/out")" = "volume 44 already" ] || fail "set_volume_blocking 44 again printed $(cat "$work/out")"

# Out of the SCPD's range: refused before sending, exit 1 with the reason, in both styles.
for example in "$coroutine" "$blocking"; do
    "$example" "$rc" 200 >"$work/out" 2>"$work/err"
    status=$?
    [ "$status" = 1 ] || fail "$(basename "$example") 200: exit $status, not 1"
    grep -q "allowedValueRange" "$work/err" || fail "$(basename "$example") 200: $(cat "$work/err")"
done
echo "volume 200 refused by both: $(cat "$work/err")"

# print_volume saw each change, in order, and nothing else.
seen 44 || fail "print_volume did not print 44: $(cat "$work/volumes" "$work/volumes.err")"
[ "$(tr '\n' ' ' <"$work/volumes")" = "Volume 20 Volume 33 Volume 44 " ] ||
    fail "print_volume printed: $(cat "$work/volumes")"
echo "print_volume: $(tr '\n' ' ' <"$work/volumes")"
seen 44 "$work/bvolumes" ||
    fail "print_volume_blocking did not print 44: $(cat "$work/bvolumes" "$work/bvolumes.err")"
[ "$(tr '\n' ' ' <"$work/bvolumes")" = "Volume 20 Volume 33 Volume 44 " ] ||
    fail "print_volume_blocking printed: $(cat "$work/bvolumes")"
echo "print_volume_blocking: $(tr '\n' ' ' <"$work/bvolumes")"
