#!/usr/bin/env bash
# e2e: TCP conversations and UDP request/response over a veth pair, native
# XDP, with the checksums of both directions verified by the kernels.
#
#   client ns                          balancer ns
#   pxc<pid> 10.201.0.1/30  <-veth->   pxb<pid> 10.201.0.2/30  [portmux, native]
#                                      8080/tcp -> nc -l 8081-8083
#                                      9875/udp -> nc -u -l 9876-9878
#
# A veth hands a CHECKSUM_PARTIAL packet to its peer as is, and the receiving
# kernel then trusts it without looking. With TX checksum offload OFF on the
# sending side the checksum is written in software and the receiver verifies
# it (and counts a mistake in TcpInCsumErrors / UdpInCsumErrors).
#   round 1: tx off on the client veth: the balancer's kernel verifies every
#            request after portmux's XDP program rewrote its destination port;
#   round 2: tx off on the balancer veth too: the client's kernel also
#            verifies every reply. A UDP reply already carries its full
#            checksum when the TC egress program rewrites its source port
#            back to the frontend port (this checks TC's checksum update);
#            a TCP reply is still CHECKSUM_PARTIAL at TC and completed in
#            software after it (this checks TC leaves a partial one right).
# Each round: 6 `nc -N` TCP clients (one line each way, clean close, exit 0,
# answers from 8081, 8082, 8083 in round-robin turn, 2 each), 6 `nc -u`
# clients connected to 10.201.0.2:9875 (each receives its backend's reply,
# which proves the reply's source port is 9875), then 3 requests from an
# unconnected python3 socket whose replies must come from exactly
# 10.201.0.2:9875; each UDP backend answers 3 requests, in round-robin turn.
# After each round: TcpInCsumErrors and UdpInCsumErrors 0 in both
# namespaces, no TCP reset sent and UdpNoPorts unchanged in both, portmux
# stats exact for UDP (9 per round, 3 per backend) and non-zero per TCP
# backend, nothing dropped.
# Finally two controls prove the counters watch these paths: a TCP SYN with a
# wrong checksum sent to the frontend is counted by the balancer (XDP's
# incremental update keeps it wrong), and a UDP datagram with a wrong
# checksum sent from the balancer is counted by the client.
#
# Two rounds of 15 conversations: slow on a busy machine, hence a longer limit.
# e2e-timeout: 240
set -uo pipefail
E2E_TIME_LIMIT=${E2E_TIME_LIMIT:-220}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TCP_FRONTEND=8080
TCP_BACKENDS=(8081 8082 8083)
UDP_FRONTEND=9875
UDP_BACKENDS=(9876 9877 9878)
TCP_CLIENTS=6
UDP_CLIENTS=6
PY_CLIENTS=3    # unconnected python3 requests, after the nc ones
CLIENT_ADDR=10.201.0.1
BALANCER_ADDR=10.201.0.2

e2e_start ip nc ss nstat taskset timeout ethtool python3

CONFIG=$E2E_WORKDIR/config.json
cat >"$CONFIG" <<EOF
{
  "frontends": [
    { "port": $UDP_FRONTEND, "protocol": "udp", "backends": [9876, 9877, 9878] },
    { "port": $TCP_FRONTEND, "protocol": "tcp", "backends": [8081, 8082, 8083] }
  ]
}
EOF

make_ns_var CLIENT pxcli
make_ns_var BALANCER pxbal
C_IF=pxc$E2E_ID
B_IF=pxb$E2E_ID
make_veth_link "$CLIENT" "$C_IF" "$CLIENT_ADDR" "$BALANCER" "$B_IF" "$BALANCER_ADDR"
log "client $CLIENT ($C_IF $CLIENT_ADDR) <-> balancer $BALANCER ($B_IF $BALANCER_ADDR)"

tx_checksum_off "$CLIENT" "$C_IF"

attach_portmux "$BALANCER" "$B_IF" native "$CONFIG"
require_native_xdp "$BALANCER" "$B_IF"
status=$(in_ns "$BALANCER" "$PORTMUX" status "$B_IF" 2>&1)
assert_match "status shows 8080/tcp -> 8081-8083" '8080.*tcp.*8081, 8082, 8083' "$status"
assert_match "status shows 9875/udp -> 9876-9878" '9875.*udp.*9876, 9877, 9878' "$status"

# ARP first (ICMP: no TCP or UDP counter moves).
retry 5 ip netns exec "$CLIENT" ping -c1 -W1 "$BALANCER_ADDR" >/dev/null ||
    die "client cannot reach $BALANCER_ADDR"

counters() {   # NS: the counters this test compares, one line
    local name out=
    for name in TcpInCsumErrors UdpInCsumErrors TcpOutRsts UdpNoPorts; do
        out+="$name=$(snmp_counter "$1" "$name") "
    done
    echo "${out% }"
}
zero_counters="TcpInCsumErrors=0 UdpInCsumErrors=0 TcpOutRsts=0 UdpNoPorts=0"

UDP_TOTAL=0
run_round() {
    local round=$1 dir=$E2E_WORKDIR/round$1 i rc reply port stats tcp_answers=() udp_answers=()
    local per_tcp=$((TCP_CLIENTS / 3)) per_udp=$(((UDP_CLIENTS + PY_CLIENTS) / 3))
    log "--- round $round: $(ip netns exec "$CLIENT" ethtool -k "$C_IF" | grep '^tx-checksumming') on $C_IF," \
        "$(ip netns exec "$BALANCER" ethtool -k "$B_IF" | grep '^tx-checksumming') on $B_IF"
    mkdir "$dir"
    for port in "${TCP_BACKENDS[@]}"; do start_tcp_reply_backend "$BALANCER" "$port" "$per_tcp" "$dir"; done
    for port in "${UDP_BACKENDS[@]}"; do start_udp_reply_backend "$BALANCER" "$port" "$per_udp" "$dir"; done
    wait_until 5 all_ports_listening "$BALANCER" tcp "${TCP_BACKENDS[@]}" &&
        wait_until 5 all_ports_listening "$BALANCER" udp "${UDP_BACKENDS[@]}" ||
        die "round $round: the backends never all started listening"

    local client_before balancer_before
    client_before=$(counters "$CLIENT")
    balancer_before=$(counters "$BALANCER")

    for ((i = 1; i <= TCP_CLIENTS; i++)); do
        wait_until 5 reply_backends_ready "$BALANCER" "$dir" tcp "$per_tcp" "${TCP_BACKENDS[@]}" ||
            fail "round $round, TCP client $i: a backend is not listening again"
        rc=0
        reply=$(ip netns exec "$CLIENT" taskset -c 0 timeout 10 \
            nc -N "$BALANCER_ADDR" "$TCP_FRONTEND" <<<"hello-$round-$i") || rc=$?
        if ((rc == 0)) && [[ $reply =~ ^backend-(8081|8082|8083)$ ]]; then
            pass "round $round, TCP client $i: exit 0, answer $reply"
        else
            fail "round $round, TCP client $i: exit $rc, answer '$reply'"
        fi
        tcp_answers+=("${reply#backend-}")
    done
    require_round_robin_answers "round $round, TCP clients" "$per_tcp" "${TCP_BACKENDS[*]}" "${tcp_answers[@]}"
    require_backends_heard "round $round, TCP clients" "$dir" tcp "hello-$round" "$per_tcp" \
        "${TCP_BACKENDS[*]}" "${tcp_answers[@]}"

    for ((i = 1; i <= UDP_CLIENTS + PY_CLIENTS; i++)); do
        wait_until 5 reply_backends_ready "$BALANCER" "$dir" udp "$per_udp" "${UDP_BACKENDS[@]}" ||
            fail "round $round, UDP request $i: a backend is not listening again"
        rc=0
        if ((i <= UDP_CLIENTS)); then
            reply=$(ip netns exec "$CLIENT" taskset -c 0 timeout 10 \
                nc -u -W1 -w3 "$BALANCER_ADDR" "$UDP_FRONTEND" <<<"request-$round-$i") || rc=$?
            if ((rc == 0)) && [[ $reply =~ ^reply-from-(9876|9877|9878)$ ]]; then
                pass "round $round, UDP request $i: connected nc -u got $reply"
            else
                fail "round $round, UDP request $i: exit $rc, reply '$reply'"
            fi
        else
            reply=$(ip netns exec "$CLIENT" taskset -c 0 timeout 10 "$E2E_PYTHON" - \
                "$BALANCER_ADDR" "$UDP_FRONTEND" "request-$round-$i" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(sys.argv[3].encode() + b"\n", (sys.argv[1], int(sys.argv[2])))
data, (host, port) = s.recvfrom(2048)
print(f"{host}:{port} {data.decode().strip()}")
EOF
            ) || rc=$?
            assert_eq 0 "$rc" "round $round, UDP request $i (unconnected python3 socket): exit status"
            assert_match "round $round, UDP request $i (unconnected): reply from $BALANCER_ADDR:$UDP_FRONTEND" \
                "^${BALANCER_ADDR//./\\.}:$UDP_FRONTEND reply-from-(9876|9877|9878)\$" "$reply"
        fi
        udp_answers+=("${reply##*reply-from-}")
    done
    require_round_robin_answers "round $round, UDP requests" "$per_udp" "${UDP_BACKENDS[*]}" "${udp_answers[@]}"
    require_backends_heard "round $round, UDP requests" "$dir" udp "request-$round" "$per_udp" \
        "${UDP_BACKENDS[*]}" "${udp_answers[@]}"

    assert_eq "$client_before" "$(counters "$CLIENT")" \
        "round $round: client counters unchanged"
    assert_eq "$balancer_before" "$(counters "$BALANCER")" \
        "round $round: balancer counters unchanged"

    UDP_TOTAL=$((UDP_TOTAL + UDP_CLIENTS + PY_CLIENTS))
    stats=$(stats_flat "$(in_ns "$BALANCER" "$PORTMUX" stats "$B_IF" --json 2>&1)")
    assert_eq "$UDP_TOTAL $UDP_TOTAL 0" \
        "$(stats_value "$stats" "$B_IF" "$UDP_FRONTEND" received) $(stats_value "$stats" "$B_IF" "$UDP_FRONTEND" forwarded) $(stats_value "$stats" "$B_IF" "$UDP_FRONTEND" dropped)" \
        "round $round: stats 9875/udp received, forwarded, dropped so far"
    for port in "${UDP_BACKENDS[@]}"; do
        assert_eq $((UDP_TOTAL / 3)) "$(stats_value "$stats" "$B_IF" "$UDP_FRONTEND" "backend.$port.packets")" \
            "round $round: stats 9875/udp packets to backend $port so far"
    done
    local tcp_received tcp_forwarded packets
    tcp_received=$(stats_value "$stats" "$B_IF" "$TCP_FRONTEND" received)
    tcp_forwarded=$(stats_value "$stats" "$B_IF" "$TCP_FRONTEND" forwarded)
    assert_eq "$tcp_received 0" "$tcp_forwarded $(stats_value "$stats" "$B_IF" "$TCP_FRONTEND" dropped)" \
        "round $round: stats 8080/tcp forwarded all it received ($tcp_received), dropped 0"
    for port in "${TCP_BACKENDS[@]}"; do
        packets=$(stats_value "$stats" "$B_IF" "$TCP_FRONTEND" "backend.$port.packets")
        if [[ $packets =~ ^[0-9]+$ ]] && ((packets > 0)); then
            pass "round $round: stats 8080/tcp backend $port has $packets packets"
        else
            fail "round $round: stats 8080/tcp backend $port has packets '$packets'"
        fi
    done
}

assert_eq "$zero_counters" "$(counters "$CLIENT")" "client counters at the start"
assert_eq "$zero_counters" "$(counters "$BALANCER")" "balancer counters at the start"

run_round 1

tx_checksum_off "$BALANCER" "$B_IF"
run_round 2

assert_eq "$zero_counters" "$(counters "$CLIENT")" "client counters at the end"
assert_eq "$zero_counters" "$(counters "$BALANCER")" "balancer counters at the end"

# Controls: raw packets with deliberately wrong checksums must be counted.
log "--- controls: wrong checksums are counted on these paths"
ip netns exec "$CLIENT" "$E2E_PYTHON" - "$CLIENT_ADDR" "$BALANCER_ADDR" "$TCP_FRONTEND" <<'EOF'
import socket, struct, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
# A bare SYN, checksum deliberately wrong (0x1234).
header = struct.pack("!HHIIBBHHH", 40001, port, 1000, 0, 5 << 4, 0x02, 65535, 0x1234, 0)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
s.sendto(header, (dst, 0))
EOF
if wait_until 5 test "$(snmp_counter "$BALANCER" TcpInCsumErrors)" = 1; then
    pass "control: a TCP SYN with a wrong checksum through the frontend is counted (balancer TcpInCsumErrors 1)"
else
    fail "control: balancer TcpInCsumErrors is $(snmp_counter "$BALANCER" TcpInCsumErrors), expected 1"
fi
ip netns exec "$BALANCER" "$E2E_PYTHON" - "$CLIENT_ADDR" <<'EOF'
import socket, struct, sys
payload = b"bad-checksum\n"
header = struct.pack("!HHHH", 40002, 40003, 8 + len(payload), 0x1234)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
s.sendto(header + payload, (sys.argv[1], 0))
EOF
if wait_until 5 test "$(snmp_counter "$CLIENT" UdpInCsumErrors)" = 1; then
    pass "control: a UDP datagram with a wrong checksum from the balancer is counted (client UdpInCsumErrors 1)"
else
    fail "control: client UdpInCsumErrors is $(snmp_counter "$CLIENT" UdpInCsumErrors), expected 1"
fi

assert_ok "portmux detach $B_IF" in_ns "$BALANCER" "$PORTMUX" detach "$B_IF"
finish
