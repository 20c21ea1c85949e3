#!/usr/bin/env bash
# `uvgena watch` against `uvgena serve-demo` over loopback (issue 22): without a terminal, one
# line per changed value; --json --state, one object per change with the whole state; on a
# terminal (a tmux pane: send-keys and capture-pane), the table redrawn in place with the last
# change in reverse video, and Ctrl-C ending it with exit 0. Argument: the uvgena CLI.
set -uo pipefail
cli=$1
work=$(mktemp -d)
tmux_socket="uvgena-watch-test-$$"
demo_pid=
watch_pid=
cleanup() {
    tmux -L "$tmux_socket" kill-server 2>/dev/null
    [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null
    [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in watch.out watch.err pane demo.err; do
        [ -s "$work/$f" ] && { echo "--- $f ---" >&2; cat -v "$work/$f" >&2; }
    done
    exit 1
}
# until TIMEOUT_S COMMAND...: runs COMMAND every 0.1 s until it succeeds (false after TIMEOUT_S).
until_true() {
    local limit=$(($1 * 10)); shift
    for _ in $(seq 1 "$limit"); do "$@" && return 0; sleep 0.1; done
    return 1
}
set_volume() {
    "$cli" call "$rc" SetVolume InstanceID=0 Channel=Master "DesiredVolume=$1" >/dev/null 2>"$work/call.err" ||
        fail "SetVolume $1: $(cat "$work/call.err")"
}

"$cli" serve-demo --interval 0 --duration 120 >"$work/demo.out" 2>"$work/demo.err" &
demo_pid=$!
until_true 10 grep -q '^description:' "$work/demo.out" || fail "serve-demo printed no description URL"
description=$(sed -n 's/^description: *//p' "$work/demo.out")
rc="$description#RenderingControl"

# 1. Lines: the whole state first, then each change.
${UVGENA_TEST_WRAPPER:-} "$cli" watch "$rc" --count 2 --listen-port 0 >"$work/watch.out" 2>"$work/watch.err" &
watch_pid=$!
until_true 20 grep -qx 'RenderingControl Volume\[Master\] = 20' "$work/watch.out" ||
    fail "watch printed no initial state"
set_volume 33
wait "$watch_pid"
status=$?
watch_pid=
[ "$status" = 0 ] || fail "watch --count 2: exit $status"
expected='RenderingControl (whole state)
RenderingControl Mute[Master] = 0
RenderingControl PresetNameList = FactoryDefaults
RenderingControl Volume[Master] = 20
RenderingControl Volume[Master] = 33'
[ "$(cat "$work/watch.out")" = "$expected" ] || fail "watch's lines differ from: $expected"
echo "lines: ok"

# 2. --json --state: the whole state in every object, the change named.
${UVGENA_TEST_WRAPPER:-} "$cli" watch "$rc" --json --state --count 2 --listen-port 0 >"$work/watch.out" 2>"$work/watch.err" &
watch_pid=$!
until_true 20 test -s "$work/watch.out" || fail "watch --json printed nothing"
set_volume 34
wait "$watch_pid"
status=$?
watch_pid=
[ "$status" = 0 ] || fail "watch --json --state --count 2: exit $status"
/usr/bin/python3 - "$work/watch.out" <<'PY' || fail "watch --json --state printed something else"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 2, lines
first, second = lines
assert first["replaced"] and first["state"]["Volume[Master]"] == "33", first
assert not second["replaced"] and second["changed"] == {"Volume[Master]": "34"}, second
assert second["state"] == {"Mute[Master]": "0", "PresetNameList": "FactoryDefaults",
                           "Volume[Master]": "34"}, second
assert all(l["service"] == "RenderingControl" and not l["stale"] for l in lines), lines
PY
echo "json: ok"

# 3. A terminal: tmux, 120 x 30.
command -v tmux >/dev/null || fail "tmux is not installed (scripts/install-deps.sh test)"
pane() { tmux -L "$tmux_socket" capture-pane -p -e -t watch >"$work/pane" 2>/dev/null; }
pane_has() { pane && grep -q -- "$1" "$work/pane"; }
tmux -L "$tmux_socket" new-session -d -s watch -x 120 -y 30 \
    "${UVGENA_TEST_WRAPPER:-} '$cli' watch '$rc' --listen-port 0 2>'$work/watch.err'; echo \$? >'$work/watch.status'; sleep 30" ||
    fail "cannot start tmux"
until_true 20 pane_has 'Volume\[Master\]  34' || fail "the table does not show Volume 34"
set_volume 45
until_true 20 pane_has 'Volume\[Master\]  45' || fail "the table does not show Volume 45"
pane
# In place: one header, one Volume line, no trace of the old value.
[ "$(grep -c 'uvgena watch: 1 service(s)' "$work/pane")" = 1 ] || fail "the table was not redrawn in place"
[ "$(grep -c 'Volume\[Master\]' "$work/pane")" = 1 ] || fail "more than one Volume line"
grep -q 'Volume\[Master\]  34' "$work/pane" && fail "the old volume is still shown"
# The last change in reverse video, and only it.
esc=$(printf '\033')
grep -q "${esc}\[7m  Volume\[Master\]  45" "$work/pane" || fail "the changed line is not highlighted"
[ "$(grep -c "${esc}\[7m" "$work/pane")" = 1 ] || fail "more than the changed line is highlighted"
grep -q '2 change(s)' "$work/pane" || fail "the header does not count the changes"
echo "terminal: ok"
tmux -L "$tmux_socket" send-keys -t watch C-c
until_true 10 test -s "$work/watch.status" || fail "Ctrl-C did not end watch"
[ "$(cat "$work/watch.status")" = 0 ] || fail "watch ended by Ctrl-C: exit $(cat "$work/watch.status")"
echo "Ctrl-C: exit 0"
