# shellcheck shell=sh
# Sourced by the scripts that join network namespaces with a veth pair (tests/interop/*.sh,
# scripts/*gmediarender.sh, scripts/in-netns.sh --veth6); no packet leaves them. Once
# netns_begin ran, netns_cleanup stops what netns_spawn started (by PID) and deletes the
# namespaces on exit, even on failure. Our own programs run as `ip netns exec "$ns"
# ${UVGENA_TEST_WRAPPER:-} PROGRAM` (valgrind runs set the wrapper). Names hold no spaces.
netns_names="" netns_links="" netns_pids="" work=""

# Makes the scratch directory $work; netns_cleanup on exit and on INT/TERM.
netns_begin() {
    work=$(mktemp -d)
    trap netns_cleanup EXIT
    trap 'exit 1' INT TERM
}

# Creates named namespaces, each with lo up and IPv6 duplicate-address detection off (addresses
# usable at once); false, with ip's message on stderr, if it cannot (needs root and iproute2).
netns_add() {
    for _ns in "$@"; do
        ip netns add "$_ns" || return 1
        netns_names="$netns_names $_ns"
        ip netns exec "$_ns" ip link set lo up || return 1
        ip netns exec "$_ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
            net.ipv6.conf.default.accept_dad=0 || true
    done
}

# netns_veth A NS_A ADDR_A B NS_B ADDR_B: a veth pair A <-> B; each end moves to its namespace
# ("": stays in this one), gets its address (CIDR; IPv6 without DAD) and goes up.
netns_veth() {
    ip link add "$1" type veth peer name "$4" || return 1
    netns_links="$netns_links $1"
    netns_veth_end "$1" "$2" "$3" && netns_veth_end "$4" "$5" "$6"
}
netns_veth_end() {
    if [ -n "$2" ]; then ip link set "$1" netns "$2" || return 1; fi
    case $3 in *:*) _nodad=nodad ;; *) _nodad="" ;; esac
    ${2:+ip netns exec "$2"} ip addr add "$3" dev "$1" $_nodad &&
        ${2:+ip netns exec "$2"} ip link set "$1" up
}

# Starts a command in the background in namespace $1 (with `ip netns exec` directly, so that
# the PID, in $netns_pid, is the command's own).
netns_spawn() {
    _ns=$1
    shift
    ip netns exec "$_ns" "$@" &
    netns_pid=$!
    netns_pids="$netns_pids $netns_pid"
}

# netns_gmediarender NS IFACE IP PORT NAME UUID: starts gmediarender (a UPnP MediaRenderer on
# libupnp, which ignores loopback) in NS on IFACE and PORT, with the UDN uuid:UUID, its output in
# $work/gmr.out and $work/gmr.log, and waits (30 s at most) until its description answers at
# IP. False, with its output on stderr, if it does not come up. Its first start on a fresh
# machine builds GStreamer's plugin registry first (2.3 s here with a warm disk; longer on a
# cold one), the later ones take 0.3 s.
netns_gmediarender() {
    netns_spawn "$1" gmediarender -I "$2" -p "$4" -f "$5" -u "$6" \
        --gstout-audiosink=fakesink --gstout-videosink=fakesink --logfile "$work/gmr.log" \
        >"$work/gmr.out" 2>&1
    # Ready means both: its description answers, and it printed "Ready for rendering." (its
    # HTTP server is up before its services have made their event collectors: an action taken
    # in between changes state without an event).
    for _ in $(seq 1 300); do
        if grep -q "Ready for rendering" "$work/gmr.out" 2>/dev/null &&
            ip netns exec "$1" curl -sf -m 1 -o /dev/null "http://$3:$4/description.xml"; then
            return
        fi
        kill -0 "$netns_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "gmediarender did not come up; its output:" >&2
    cat "$work/gmr.out" "$work/gmr.log" >&2
    return 1
}

# Stops the process $1 started by netns_spawn (TERM, then KILL after $2 seconds, default 5);
# returns its exit status.
netns_stop() {
    kill "$1" 2>/dev/null || true
    for _ in $(seq 1 $((${2:-5} * 10))); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$1" 2>/dev/null || true
    _rest=""
    for _pid in $netns_pids; do [ "$_pid" = "$1" ] || _rest="$_rest $_pid"; done
    netns_pids=$_rest  # never signalled again: its PID may be reused
    _status=0
    wait "$1" 2>/dev/null || _status=$?
    return "$_status"
}

# Stops every process started here, deletes the namespaces (with their links), any link left
# in this namespace, and $work.
netns_cleanup() {
    for _pid in $netns_pids; do netns_stop "$_pid" || true; done
    for _ns in $netns_names; do ip netns del "$_ns" 2>/dev/null || true; done
    for _link in $netns_links; do ip link del "$_link" 2>/dev/null || true; done
    if [ -n "$work" ]; then rm -rf "$work"; fi
}
