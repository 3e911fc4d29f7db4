#!/usr/bin/env bash
# e2e: TCP connections keep their backends through a spoofed SYN flood and
# through the loss of their flow entries (xdp/tcp_affinity.h).
# e2e-timeout: 150
#
# Two namespaces joined by a veth pair: the host (10.77.0.1, portmux on its
# veth in generic mode, flow_table_size 1024, frontend 8080/tcp over three
# python echo backends 8081-8083 that prefix each answer with their port)
# and a client side (10.77.0.2). 50 client connections each send one line a
# second and expect it back from one and the same backend.
#
# 1. A 3 s flood of SYNs from random spoofed sources (hping3 --flood, the
#    highest rate this machine makes) at the frontend, while the 50 talk:
#    all 50 survive; their flow entries are untouched (SYNs write SYN slots,
#    never the flow table). Meanwhile new connections are opened one after
#    another, through portmux and, for comparison, to a backend port
#    directly (no portmux involved): what they see is logged and each must
#    connect and get its echo.
# 2. Every flow entry deleted by hand (bpftool on the pinned map), with the
#    50 connections' SYN slots long overwritten by the flood: each segment
#    finds its backend in the kernel's socket table, so all 50 survive again
#    and their entries come back.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

E2E_TIME_LIMIT=140
FRONTEND=8080
BACKENDS=(8081 8082 8083)
CONNECTIONS=50
PEER=$E2E_LIB_DIR/tcp_affinity_peer.py

e2e_start ip ss hping3 bpftool timeout python3

make_ns_var HOST pmfh
make_ns_var CLIENT pmfc
make_veth_link "$HOST" "fh$E2E_ID" 10.77.0.1 "$CLIENT" "fc$E2E_ID" 10.77.0.2
IFACE=fh$E2E_ID
# SYN-ACKs to spoofed sources leave towards the client side, which drops them.
ip netns exec "$HOST" ip route add default via 10.77.0.2 || die "cannot add a default route in $HOST"
ip netns exec "$CLIENT" ip route add default via 10.77.0.1 || die "cannot add a default route in $CLIENT"

start_in_ns "$HOST" "$E2E_WORKDIR/servers.log" "$E2E_PYTHON" "$PEER" servers "${BACKENDS[@]}"
wait_until 10 all_ports_listening "$HOST" tcp "${BACKENDS[@]}" || die "the echo backends never listened"

cat >"$E2E_WORKDIR/config.json" <<EOF
{ "flow_table_size": 1024,
  "frontends": [ { "port": $FRONTEND, "protocol": "tcp", "backends": [8081, 8082, 8083] } ] }
EOF
register_detach "$HOST" "$IFACE"
assert_ok "portmux attach $IFACE --mode generic (flow_table_size 1024)" \
    in_ns "$HOST" "$PORTMUX" attach "$IFACE" --mode generic --config "$E2E_WORKDIR/config.json" || finish
PINS=$E2E_BPFFS/portmux/$IFACE

flow_entries() {
    bpftool -j map dump pinned "$PINS/flows" 2>/dev/null | "$E2E_PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

# run_clients PHASE SECONDS_BEFORE_ACTION ACTION...: the 50 connections talk,
# ACTION runs once they are all connected and have talked a while, then they
# talk 3 s more and stop. Leaves the result in $E2E_WORKDIR/PHASE/result.json.
run_clients() {
    local phase=$1 dir=$E2E_WORKDIR/$1
    shift
    mkdir -p "$dir"
    ip netns exec "$CLIENT" "$E2E_PYTHON" "$PEER" clients 10.77.0.1 "$FRONTEND" "$CONNECTIONS" "$dir" \
        >"$dir/clients.log" 2>&1 </dev/null &
    local clients_pid=$!
    E2E_PIDS+=("$clients_pid")
    if ! wait_until 20 test -s "$dir/ready"; then
        fail "$phase: the $CONNECTIONS connections were not all made"
        touch "$dir/stop"
        return 1
    fi
    assert_eq "$CONNECTIONS" "$(cat "$dir/ready")" "$phase: connections made through portmux"
    sleep 2  # two messages each before the action
    "$@"
    sleep 3  # three more after it
    touch "$dir/stop"
    wait "$clients_pid"
    [[ -s $dir/result.json ]] || { fail "$phase: the clients wrote no result"; cat "$dir/clients.log"; return 1; }
}

result_value() {
    "$E2E_PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r[sys.argv[2]])' "$E2E_WORKDIR/$1/result.json" "$2"
}

# The connections of PHASE that did not survive, a few of them, on stdout.
show_failed() {
    "$E2E_PYTHON" -c '
import json, sys
r = json.load(open(sys.argv[1]))
for s in r["failed"][:5]:
    print("    | connection %d: sent %d, echoed %d, backends %s, error %s" % (
        s["index"], s["sent"], s["echoed"], s["backends"], s["error"]))' "$E2E_WORKDIR/$1/result.json"
}

# ---------------------------------------------------------------- the flood

flood() {
    local before after
    before=$(stats_value "$(in_ns "$HOST" "$PORTMUX" stats "$IFACE" --json)" "$IFACE" "$FRONTEND" received)
    FLOWS_BEFORE_FLOOD=$(flow_entries)
    # New connections while it lasts: through portmux, and to 8081 directly.
    ip netns exec "$CLIENT" "$E2E_PYTHON" "$PEER" probe 10.77.0.1 "$FRONTEND" 6 10 >"$E2E_WORKDIR/probe-frontend.json" 2>&1 &
    local probe_frontend=$!
    ip netns exec "$CLIENT" "$E2E_PYTHON" "$PEER" probe 10.77.0.1 8081 6 10 >"$E2E_WORKDIR/probe-direct.json" 2>&1 &
    local probe_direct=$!
    E2E_PIDS+=("$probe_frontend" "$probe_direct")
    ip netns exec "$CLIENT" timeout 3 hping3 --flood --rand-source -S -p "$FRONTEND" -q 10.77.0.1 \
        >"$E2E_WORKDIR/hping3.log" 2>&1
    after=$(stats_value "$(in_ns "$HOST" "$PORTMUX" stats "$IFACE" --json)" "$IFACE" "$FRONTEND" received)
    FLOOD_SEGMENTS=$((after - before))
    wait "$probe_frontend" "$probe_direct"
    FLOWS_AFTER_FLOOD=$(flow_entries)
}

run_clients flood flood
log "flood: $FLOOD_SEGMENTS segments reached the frontend in 3 s ($((FLOOD_SEGMENTS / 3)) per second), $(grep -Eo '[0-9]+ packets transmitted' "$E2E_WORKDIR/hping3.log" || echo '? packets') sent by hping3"
# However busy the machine, the flood must outnumber the table many times.
if ((FLOOD_SEGMENTS > 10 * 1024)); then
    pass "the flood reached the frontend ($FLOOD_SEGMENTS segments, $((FLOOD_SEGMENTS / 1024)) x flow_table_size)"
else
    fail "the flood was too weak to prove anything: $FLOOD_SEGMENTS segments"
fi
assert_eq "$CONNECTIONS" "$(result_value flood survived)" "connections that kept talking to one backend through the flood"
[[ $(result_value flood survived) == "$CONNECTIONS" ]] || show_failed flood
for path in frontend direct; do
    summary=$(cat "$E2E_WORKDIR/probe-$path.json")
    log "new connections during the flood, $path: $summary"
    connected=$("$E2E_PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["connected"])' "$summary" 2>/dev/null)
    assert_eq 6 "$connected" "new connections during the flood ($path) that connected and got their echo"
    [[ $path == frontend ]] && NEW_THROUGH_PORTMUX=${connected:-0}
done
# The SYNs of the flood added nothing; only the new connections that completed.
assert_eq "$((FLOWS_BEFORE_FLOOD + NEW_THROUGH_PORTMUX))" "$FLOWS_AFTER_FLOOD" \
    "flow entries after the flood: the $FLOWS_BEFORE_FLOOD before plus those of the new connections, as SYNs never enter the table"

# ---------------------------------------------------- flow entries deleted

delete_flows() {
    local keys deleted=0 key
    keys=$(bpftool -j map dump pinned "$PINS/flows" | "$E2E_PYTHON" -c '
import json, sys
for entry in json.load(sys.stdin):
    print(" ".join(entry["key"]))')
    while read -r key; do
        [[ -n $key ]] || continue
        # shellcheck disable=SC2086 # one word per key byte
        bpftool map delete pinned "$PINS/flows" key hex $key && deleted=$((deleted + 1))
    done <<<"$keys"
    DELETED_FLOWS=$deleted
    FLOWS_LEFT=$(flow_entries)
}

# A fresh flood first, so that no SYN slot of the new 50 connections is left.
overwrite_slots() {
    ip netns exec "$CLIENT" timeout 2 hping3 --flood --rand-source -S -p "$FRONTEND" -q 10.77.0.1 \
        >/dev/null 2>&1
    delete_flows
}
run_clients deleted overwrite_slots
log "deleted $DELETED_FLOWS flow entries by hand ($FLOWS_LEFT left right after)"
if ((DELETED_FLOWS >= CONNECTIONS && FLOWS_LEFT < CONNECTIONS)); then
    pass "the flow entries of the connections were deleted ($DELETED_FLOWS)"
else
    fail "deleting the flow entries: $DELETED_FLOWS deleted, $FLOWS_LEFT left"
fi
assert_eq "$CONNECTIONS" "$(result_value deleted survived)" "connections that kept talking to one backend with their flow entries deleted"
[[ $(result_value deleted survived) == "$CONNECTIONS" ]] || show_failed deleted
back=$(flow_entries)
if ((back >= CONNECTIONS)); then
    pass "the connections were recorded again from the socket table ($back flow entries)"
else
    fail "flow entries after the connections talked again: $back"
fi

stats=$(stats_flat "$(in_ns "$HOST" "$PORTMUX" stats "$IFACE" --json)")
assert_eq 0 "$(stats_value "$stats" "$IFACE" "$FRONTEND" dropped)" "portmux stats: segments dropped"
assert_ok "portmux detach $IFACE" in_ns "$HOST" "$PORTMUX" detach "$IFACE"
finish
