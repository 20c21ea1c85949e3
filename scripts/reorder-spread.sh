#!/bin/sh
# How far arrival order strays from SEQ order when one SID's NOTIFYs travel on 10 concurrent
# keep-alive connections (SEQ assigned in send order), on loopback and over a veth pair
# between two network namespaces this script creates (and deletes): the figures behind the
# default of SubscribeOptions::reorder_window (issue 18). Needs root (ip netns) and the
# benchmarks built (meson setup build-rel -Dbuildtype=release -Dbench=true).
#
#   scripts/reorder-spread.sh [BUILD_DIR] [SECONDS] [BODY] [RECEIVER]
#                               (build-rel, 2, lastchange, transport; or xml: + tinyxml2)
#
# The receiver is ingest_baseline_RECEIVER --spread (transport: libuv + llhttp, no XML, it
# answers at once, so the spread is the network's and the senders'; xml: + tinyxml2, closer
# to a real receiver's work); the sender notify_loadgen --mode concurrent --slots 10, each
# connection waiting for its answer before its next NOTIFY, as devices do. No netem here
# (the kernel of the CI VM has no sch_netem): the veth adds no delay or jitter of its own.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build-rel}
seconds=${2:-2}
body=${3:-lastchange}
receiver=${4:-transport}
bin="$build/bench"
for p in ingest_baseline_$receiver notify_loadgen; do
    [ -x "$bin/$p" ] || { echo "reorder-spread: $bin/$p not built" >&2; exit 1; }
done
. "$here/netns-lib.sh"
netns_begin
echo "/evt/0 uuid:spread-0" >"$work/targets"

# measure LABEL NS_RECEIVER NS_SENDER IP: one run ("" namespace: this one).
measure() {
    port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000))
    rx_cmd="exec \"$bin/ingest_baseline_transport\" --port $port --targets \"$work/targets\" \
--listen $4 --spread >\"$work/rx.out\""
    if [ -n "$2" ]; then
        netns_spawn "$2" sh -c "$rx_cmd"
    else
        sh -c "$rx_cmd" &
        netns_pid=$!
        netns_pids="$netns_pids $netns_pid"
    fi
    rx=$netns_pid
    sleep 0.3
    ${3:+ip netns exec "$3"} "$bin/notify_loadgen" --port "$port" --host "$4" \
        --targets "$work/targets" --mode concurrent --slots 10 --body "$body" \
        --seconds "$seconds" >"$work/gen.out"
    netns_stop "$rx" >/dev/null 2>&1 || true
    echo "$1: $(cut -d' ' -f1-3 "$work/gen.out")"
    grep '^spread:' "$work/rx.out" || echo "  (no spread line)"
}

measure "loopback (127.0.0.1)" "" "" 127.0.0.1
netns_add uvgena-spread-a uvgena-spread-b
netns_veth uvsp-a uvgena-spread-a 10.231.0.1/24 uvsp-b uvgena-spread-b 10.231.0.2/24
measure "veth between two namespaces (10.231.0.1 -> 10.231.0.2)" uvgena-spread-b \
    uvgena-spread-a 10.231.0.2
