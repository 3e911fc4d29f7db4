#!/usr/bin/env bash
# e2e: iperf3 through a TCP frontend of three iperf3 servers, which works only
# when its control and data connections meet on one server: "affinity":
# "client" (every connection of a client address to one backend).
#
# One namespace, portmux on its lo (generic XDP), frontend 5200/tcp over
# iperf3 servers on 5201-5203. Checks: without client affinity a test fails
# (its connections are spread over the servers); with it, three 2-second
# tests from 127.0.0.1 all succeed with bytes moved and are all served by
# one server, and a test from another address (127.0.0.2) succeeds too.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FRONTEND=5200
BACKENDS=(5201 5202 5203)

e2e_start ip ss iperf3 timeout taskset python3

make_ns_var NS pmip
for port in "${BACKENDS[@]}"; do
    start_in_ns "$NS" "$E2E_WORKDIR/server-$port.log" iperf3 -s -p "$port" --forceflush
done
wait_until 10 all_ports_listening "$NS" tcp "${BACKENDS[@]}" || die "the iperf3 servers never listened"
pass "three iperf3 servers listening on ${BACKENDS[*]}"

write_config() {
    cat >"$E2E_WORKDIR/config.json" <<EOF
{ "frontends": [ { "port": $FRONTEND, "protocol": "tcp", $1 "backends": [5201, 5202, 5203] } ] }
EOF
}

# run_iperf3 NAME [BIND_ADDRESS]: a 2 s test through the frontend; the JSON
# report goes to $E2E_WORKDIR/NAME.json. Returns iperf3's exit status. The
# client runs on CPU 0: on lo its SYNs are balanced on the sending CPU, and
# round robin is per CPU, so a client that moved between its control and
# data connections could meet the same server by chance without affinity.
run_iperf3() {
    local name=$1 bind=${2:-}
    local -a from=()
    [[ -n $bind ]] && from=(-B "$bind")
    ip netns exec "$NS" taskset -c 0 timeout 20 iperf3 -c 127.0.0.1 -p "$FRONTEND" "${from[@]}" -t 2 -J \
        >"$E2E_WORKDIR/$name.json" 2>&1
}

received_bytes() {
    "$E2E_PYTHON" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"]))' \
        "$E2E_WORKDIR/$1.json" 2>/dev/null || echo 0
}

# Tests each server has accepted so far (iperf3 -s logs one line per test).
accepted() {
    grep -c "Accepted connection from" "$E2E_WORKDIR/server-$1.log" 2>/dev/null
}

register_detach "$NS" lo

# Without client affinity: connections are balanced one by one.
write_config ""
assert_ok "portmux attach lo --mode generic (plain TCP frontend)" \
    in_ns "$NS" "$PORTMUX" attach lo --mode generic --config "$E2E_WORKDIR/config.json" || finish
rc=0
run_iperf3 plain || rc=$?
if ((rc != 0)); then
    pass "without client affinity iperf3 fails (exit $rc): its connections reach different servers"
else
    fail "without client affinity iperf3 succeeded: the test no longer shows what affinity fixes"
fi
assert_ok "portmux detach lo" in_ns "$NS" "$PORTMUX" detach lo
# The servers finish the broken test on their own; wait until all listen again.
wait_until 20 all_ports_listening "$NS" tcp "${BACKENDS[@]}" || die "the iperf3 servers did not recover"
before=()
for port in "${BACKENDS[@]}"; do before+=("$(accepted "$port")"); done

write_config '"affinity": "client", "flow_idle_timeout": 60,'
assert_ok "portmux attach lo --mode generic (\"affinity\": \"client\")" \
    in_ns "$NS" "$PORTMUX" attach lo --mode generic --config "$E2E_WORKDIR/config.json" || finish
status=$(in_ns "$NS" "$PORTMUX" status lo 2>&1)
assert_match "status shows the client affinity" 'affinity: client address, idle timeout 60 s' "$status"

for i in 1 2 3; do
    rc=0
    run_iperf3 "client-$i" || rc=$?
    assert_eq 0 "$rc" "iperf3 test $i from 127.0.0.1 through $FRONTEND: exit status"
    bytes=$(received_bytes "client-$i")
    if ((bytes > 0)); then
        pass "iperf3 test $i moved $bytes bytes"
    else
        fail "iperf3 test $i moved no bytes"
        sed 's/^/    | /' "$E2E_WORKDIR/client-$i.json" | tail -5
    fi
done
served=()
for idx in 0 1 2; do
    served+=($(($(accepted "${BACKENDS[idx]}") - before[idx])))
done
log "tests accepted by 5201, 5202, 5203 with client affinity: ${served[*]}"
assert_eq "3 0 0" "${served[*]}" "all three tests from 127.0.0.1 served by the first server"

rc=0
run_iperf3 other 127.0.0.2 || rc=$?
assert_eq 0 "$rc" "iperf3 from 127.0.0.2: exit status"
# Round-robin cursors are per CPU, so which server is not fixed; that one
# server took the whole test is.
total=0
for idx in 0 1 2; do total=$((total + $(accepted "${BACKENDS[idx]}") - before[idx])); done
assert_eq 4 "$total" "tests accepted by the three servers after the one from 127.0.0.2 (each test accepted once)"

assert_ok "portmux detach lo" in_ns "$NS" "$PORTMUX" detach lo
finish
