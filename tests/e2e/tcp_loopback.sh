#!/usr/bin/env bash
# e2e: TCP round robin on a namespace's loopback, generic XDP.
#
# Three `nc -l` TCP backends on 8081-8083, each serving two connections in
# turn and answering each with the line "backend-PORT"; portmux on lo with
# examples/tcp-roundrobin.json (8080/tcp). Six `nc -N` clients, one after
# another and all on CPU 0, dial 127.0.0.1:8080 and send "hello-I".
#
# Checks: every client exits 0 and reads exactly one line, the id of a
# backend; the backends answer in round-robin order (clients I and I+3 reach
# the same backend, the first three reach three different ones), so each
# backend serves exactly two; each backend received exactly the lines of the
# clients it answered (data went both ways over one connection) and exited
# 0; `portmux stats --json` counts packets and bytes for every backend,
# forwarded == received, nothing dropped; TcpInCsumErrors stays 0, no TCP
# reset was sent and no connection attempt failed. (On lo the kernel trusts
# checksums without verifying them, so the 0 proves little here; the
# checksums are proven in veth_native_bidirectional.sh.)
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENTS=6
FRONTEND=8080
BACKENDS=(8081 8082 8083)
CONFIG=$REPO_ROOT/examples/tcp-roundrobin.json

e2e_start ip nc ss nstat taskset timeout python3
[[ -r $CONFIG ]] || die "missing config $CONFIG"

make_ns_var NS pmtcp
log "namespace $NS, portmux $PORTMUX"

PER_BACKEND=$((CLIENTS / ${#BACKENDS[@]}))
for port in "${BACKENDS[@]}"; do
    start_tcp_reply_backend "$NS" "$port" "$PER_BACKEND" "$E2E_WORKDIR"
done
wait_until 5 all_ports_listening "$NS" tcp "${BACKENDS[@]}" ||
    die "the TCP backends on ${BACKENDS[*]} never all started listening"
pass "three TCP backends listening on ${BACKENDS[*]}"

attach_portmux "$NS" lo generic "$CONFIG"
status=$(in_ns "$NS" "$PORTMUX" status lo 2>&1)
assert_match "status shows frontend 8080/tcp with its three backends" \
    '8080.*tcp.*8081, 8082, 8083' "$status"

csum_before=$(snmp_counter "$NS" TcpInCsumErrors)
rsts_before=$(snmp_counter "$NS" TcpOutRsts)
fails_before=$(snmp_counter "$NS" TcpAttemptFails)
assert_eq 0 "$csum_before" "TcpInCsumErrors before the connections"

answers=()
for ((i = 1; i <= CLIENTS; i++)); do
    # A backend's next `nc -l` starts only after its previous connection ended.
    wait_until 5 reply_backends_ready "$NS" "$E2E_WORKDIR" tcp "$PER_BACKEND" "${BACKENDS[@]}" ||
        fail "before client $i: a backend is not listening again"
    rc=0
    reply=$(ip netns exec "$NS" taskset -c 0 timeout 10 nc -N 127.0.0.1 "$FRONTEND" <<<"hello-$i") || rc=$?
    assert_eq 0 "$rc" "client $i: nc -N 127.0.0.1:$FRONTEND exit status"
    assert_match "client $i got one backend's id as the whole answer" \
        '^backend-(8081|8082|8083)$' "$reply"
    answers+=("${reply#backend-}")
done
log "backends answering clients 1..$CLIENTS: ${answers[*]}"

# Round robin: a cycle of the three backends, repeated; each backend heard
# exactly the lines of the clients it answered.
require_round_robin_answers "TCP clients" "$PER_BACKEND" "${BACKENDS[*]}" "${answers[@]}"
require_backends_heard "TCP clients" "$E2E_WORKDIR" tcp hello "$PER_BACKEND" "${BACKENDS[*]}" "${answers[@]}"

stats_raw=$(in_ns "$NS" "$PORTMUX" stats lo --json 2>&1)
stats=$(stats_flat "$stats_raw")
received=$(stats_value "$stats" lo "$FRONTEND" received)
forwarded=$(stats_value "$stats" lo "$FRONTEND" forwarded)
assert_eq 0 "$(stats_value "$stats" lo "$FRONTEND" dropped)" "portmux stats: segments dropped"
assert_eq "$received" "$forwarded" "portmux stats: forwarded equals received"
sum=0
for port in "${BACKENDS[@]}"; do
    packets=$(stats_value "$stats" lo "$FRONTEND" "backend.$port.packets")
    bytes=$(stats_value "$stats" lo "$FRONTEND" "backend.$port.bytes")
    if [[ $packets =~ ^[0-9]+$ ]] && ((packets > 0)) && [[ $bytes =~ ^[0-9]+$ ]] && ((bytes > 0)); then
        pass "portmux stats: backend $port has $packets packets, $bytes bytes"
        sum=$((sum + packets))
    else
        fail "portmux stats: backend $port has packets '$packets', bytes '$bytes'"
        printf '%s\n' "$stats_raw" | sed 's/^/    | /'
    fi
done
assert_eq "$forwarded" "$sum" "portmux stats: per-backend packets add up to forwarded"

assert_eq 0 "$(snmp_counter "$NS" TcpInCsumErrors)" "TcpInCsumErrors after $CLIENTS connections"
rsts_after=$(snmp_counter "$NS" TcpOutRsts)
assert_eq "$rsts_before" "$rsts_after" "no TCP reset sent (TcpOutRsts unchanged)"
if [[ $rsts_after != "$rsts_before" ]]; then
    # Evidence for the reset's cause: retransmissions, aborts, time-wait and
    # out-of-window counters, and the sockets still around.
    log "namespace TCP counters: $(ip netns exec "$NS" nstat -az 2>/dev/null |
        awk '$1 ~ /^Tcp/ && $2 != 0 { printf "%s=%s ", $1, $2 }')"
    log "sockets: $(ip netns exec "$NS" ss -Htan 2>/dev/null | tr -s ' ' | tr '\n' ';')"
fi
assert_eq "$fails_before" "$(snmp_counter "$NS" TcpAttemptFails)" "no failed connection attempt (TcpAttemptFails unchanged)"

assert_ok "portmux detach lo" in_ns "$NS" "$PORTMUX" detach lo
finish
