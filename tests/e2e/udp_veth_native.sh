#!/usr/bin/env bash
# e2e: native XDP on a veth, with checksums verified by the receiving kernel.
#
#   client ns                         balancer ns
#   pmc<pid> 10.200.0.1/30  <-veth->  pmb<pid> 10.200.0.2/30  [portmux, native]
#   tx checksum offload OFF            nc backends 9876-9878
#
# With TX checksum offload off the client's kernel writes a full UDP checksum
# and the packet reaches the balancer as CHECKSUM_NONE, so after portmux
# rewrites the destination port the balancer's kernel verifies the checksum
# and counts any mistake in UdpInCsumErrors. The addresses exist only inside
# the two namespaces this test creates.
#
# Checks: the attachment is really native; 300 datagrams arrive, each once,
# spread over the three backends; UdpInDatagrams grows by exactly 300;
# UdpInCsumErrors is 0 before and after. Then (with python3): a datagram
# sent with checksum 0 (allowed over IPv4) is delivered without a checksum
# error, and a control datagram with a deliberately wrong checksum IS
# counted, proving the counter watches this path.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=300
FRONTEND=9875
BACKENDS=(9876 9877 9878)
CONFIG=$REPO_ROOT/examples/udp-roundrobin.json
CLIENT_ADDR=10.200.0.1
BALANCER_ADDR=10.200.0.2

e2e_start ip nc ss nstat taskset ethtool
[[ -r $CONFIG ]] || die "missing config $CONFIG"

make_ns_var CLIENT pmcli
make_ns_var BALANCER pmbal
C_IF=pmc$E2E_ID
B_IF=pmb$E2E_ID
make_veth_link "$CLIENT" "$C_IF" "$CLIENT_ADDR" "$BALANCER" "$B_IF" "$BALANCER_ADDR"
log "client $CLIENT ($C_IF $CLIENT_ADDR) <-> balancer $BALANCER ($B_IF $BALANCER_ADDR)"

tx_checksum_off "$CLIENT" "$C_IF"

for port in "${BACKENDS[@]}"; do
    start_udp_backend "$BALANCER" "$port" "$E2E_WORKDIR/backend-$port.txt"
done
for port in "${BACKENDS[@]}"; do
    wait_for_udp_port "$BALANCER" "$port" 5 || die "backend on UDP $port never started listening"
done
pass "three backends listening on ${BACKENDS[*]}"

attach_portmux "$BALANCER" "$B_IF" native "$CONFIG"
status=$(in_ns "$BALANCER" "$PORTMUX" status "$B_IF" 2>&1)
assert_match "portmux status says native" 'native mode' "$status"
require_native_xdp "$BALANCER" "$B_IF"

# Resolve ARP first (ICMP, so no UDP counter moves) and take the baseline.
retry 5 ip netns exec "$CLIENT" ping -c1 -W1 "$BALANCER_ADDR" >/dev/null ||
    die "client cannot reach $BALANCER_ADDR"
csum_before=$(udp_counter "$BALANCER" UdpInCsumErrors)
in_before=$(udp_counter "$BALANCER" UdpInDatagrams)
noport_before=$(udp_counter "$BALANCER" UdpNoPorts)
out_before=$(udp_counter "$CLIENT" UdpOutDatagrams)
assert_eq 0 "$csum_before" "UdpInCsumErrors in the balancer namespace before sending"

send_datagrams "$CLIENT" "$BALANCER_ADDR" "$FRONTEND" 1 "$N"
files=()
for port in "${BACKENDS[@]}"; do files+=("$E2E_WORKDIR/backend-$port.txt"); done
if ! wait_for_lines "$N" 20 "${files[@]}"; then
    fail "only $(line_count "${files[@]}") of $N datagrams arrived within 20 s"
fi
sleep 0.5  # grace period: catch late duplicates
assert_eq "$N" $(($(udp_counter "$CLIENT" UdpOutDatagrams) - out_before)) \
    "UdpOutDatagrams increase in the client namespace"

total=$(line_count "${files[@]}")
assert_eq "$N" "$total" "datagrams delivered in total across the three backends"
if ((total != N)); then
    log "diagnostics: veth counters (client, then balancer)"
    ip netns exec "$CLIENT" ethtool -S "$C_IF" 2>&1 | grep -v ': 0$' | sed 's/^/    | /'
    ip -n "$CLIENT" -s link show "$C_IF" | sed 's/^/    | /'
    ip netns exec "$BALANCER" ethtool -S "$B_IF" 2>&1 | grep -v ': 0$' | sed 's/^/    | /'
    ip -n "$BALANCER" -s link show "$B_IF" | sed 's/^/    | /'
    ip netns exec "$BALANCER" nstat -asz | grep -v ' 0 ' | sed 's/^/    | /'
fi
split=()
for port in "${BACKENDS[@]}"; do
    count=$(line_count "$E2E_WORKDIR/backend-$port.txt")
    split+=("$port:$count")
    if ((count > 0)); then
        pass "backend $port received $count"
    else
        fail "backend $port received nothing"
    fi
done
log "split ${split[*]}"
duplicates=$(cat "${files[@]}" | sort | uniq -d | tr '\n' ' ')
assert_eq "" "$duplicates" "no datagram delivered twice"
if diff <(expected_messages 1 "$N") <(cat "${files[@]}" | sort -u) >"$E2E_WORKDIR/diff.txt"; then
    pass "delivered set is exactly msg-001..msg-$N"
else
    fail "delivered set differs from what was sent (< missing, > unexpected):"
    sed 's/^/    | /' "$E2E_WORKDIR/diff.txt" | head -20
fi

csum_after=$(udp_counter "$BALANCER" UdpInCsumErrors)
in_after=$(udp_counter "$BALANCER" UdpInDatagrams)
assert_eq 0 "$csum_after" "UdpInCsumErrors in the balancer namespace after $N datagrams"
assert_eq "$N" $((in_after - in_before)) "UdpInDatagrams increase in the balancer namespace"
assert_eq "$noport_before" "$(udp_counter "$BALANCER" UdpNoPorts)" \
    "no datagram reached the frontend port itself (UdpNoPorts unchanged)"

stats=$(in_ns "$BALANCER" "$PORTMUX" stats "$B_IF" 2>&1)
assert_match "portmux stats counts $N received and forwarded" \
    "received $N, forwarded $N, dropped 0" "$stats"

# Optional raw-checksum checks: python3 sets SO_NO_CHECK and writes raw UDP.
if command -v python3 >/dev/null 2>&1; then
    # A datagram with UDP checksum 0 ("none", legal over IPv4): portmux must
    # keep it 0, not patch it into a wrong non-zero checksum.
    ip netns exec "$CLIENT" python3 - "$BALANCER_ADDR" "$FRONTEND" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK: send with checksum 0
s.sendto(b"zero-checksum\n", (sys.argv[1], int(sys.argv[2])))
EOF
    if wait_until 5 grep -qx zero-checksum "${files[@]}"; then
        pass "datagram with UDP checksum 0 delivered"
    else
        fail "datagram with UDP checksum 0 never reached a backend"
    fi
    assert_eq 0 "$(udp_counter "$BALANCER" UdpInCsumErrors)" \
        "UdpInCsumErrors still 0 after the zero-checksum datagram"

    # Control: a wrong checksum through the same path must be counted.
    ip netns exec "$CLIENT" python3 - "$BALANCER_ADDR" "$FRONTEND" <<'EOF'
import socket, struct, sys
payload = b"bad-checksum\n"
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
header = struct.pack("!HHHH", 40000, int(sys.argv[2]), 8 + len(payload), 0x1234)
s.sendto(header + payload, (sys.argv[1], 0))
EOF
    if wait_until 5 test "$(udp_counter "$BALANCER" UdpInCsumErrors)" = 1; then
        pass "control: a deliberately wrong checksum is counted (UdpInCsumErrors 1)"
    else
        fail "control: UdpInCsumErrors is $(udp_counter "$BALANCER" UdpInCsumErrors) after a bad datagram, expected 1 (is the kernel verifying checksums on this path?)"
    fi
    if grep -qx bad-checksum "${files[@]}"; then
        fail "control: the bad-checksum datagram was delivered to a backend"
    else
        pass "control: the bad-checksum datagram was not delivered"
    fi
else
    skip "zero-checksum and bad-checksum checks (no python3)"
fi

assert_ok "portmux detach $B_IF" in_ns "$BALANCER" "$PORTMUX" detach "$B_IF"
finish
