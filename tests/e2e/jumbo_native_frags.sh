#!/usr/bin/env bash
# e2e: native XDP on a veth with MTU 9000 (issue 13.5). Frames larger than a
# page need a frags-aware program (xdp.frags): attach must pick portmux's
# frags-aware object on its own and attach natively, and jumbo datagrams
# must be judged and routed by their payload and arrive whole.
#
#   client ns                          balancer ns
#   pjc<pid> 10.201.0.1/30 mtu 9000 <-veth-> pjb<pid> 10.201.0.2/30 mtu 9000
#                                      python3 sink on 5001-5003
#
# Frontend 7000: validate 8000..8500 bytes and "JUMB" at offset 1400, route
# by the 3 bytes at offset 20 (600 -> 5001, 601 -> 5002, 602 -> 5003,
# unknown dropped). Sent: 8100-byte datagrams, 10 per tag, plus 5 with an
# unknown tag and 5 without the magic. Checks: each sink port gets exactly
# its 10, each whole (8100 bytes); stats count 5 unknown_tag and 5
# magic_mismatch; the kernel shows native (not generic) XDP.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENT_ADDR=10.201.0.1
BALANCER_ADDR=10.201.0.2
SIZE=8100

e2e_start ip ping

make_ns_var CLIENT pjcli
make_ns_var BALANCER pjbal
C_IF=pjc$E2E_ID
B_IF=pjb$E2E_ID
ip link add "$C_IF" netns "$CLIENT" type veth peer name "$B_IF" netns "$BALANCER" ||
    die "cannot create veth pair $C_IF/$B_IF"
ip -n "$CLIENT" addr add "$CLIENT_ADDR/30" dev "$C_IF"
ip -n "$BALANCER" addr add "$BALANCER_ADDR/30" dev "$B_IF"
ip -n "$CLIENT" link set "$C_IF" mtu 9000 up
ip -n "$BALANCER" link set "$B_IF" mtu 9000 up

CONFIG=$E2E_WORKDIR/jumbo.json
cat >"$CONFIG" <<'JSON'
{
  "frontends": [
    {
      "port": 7000,
      "protocol": "udp",
      "validate": {
        "min_length": 8000,
        "max_length": 8500,
        "match": [ { "offset": 1400, "value": "JUMB" } ]
      },
      "route": {
        "offset": 20,
        "length": 3,
        "unknown": "drop",
        "tags": [
          { "tag": "600", "backend": 5001 },
          { "tag": "601", "backend": 5002 },
          { "tag": "602", "backend": 5003 }
        ]
      },
      "backends": []
    }
  ]
}
JSON

# Each datagram is logged as "PORT PAYLOAD".
start_udp_sink "$BALANCER" "$E2E_WORKDIR/sink.txt" 5001 5002 5003
for port in 5001 5002 5003; do
    wait_for_udp_port "$BALANCER" "$port" 5 || die "sink on UDP $port never started listening"
done

attach_portmux "$BALANCER" "$B_IF" native "$CONFIG"
assert_match "attach chose the frags-aware data path" 'frags-aware' "$E2E_LAST_OUTPUT"
require_native_xdp "$BALANCER" "$B_IF"
assert_match "$B_IF's MTU is 9000" 'mtu 9000' "$(ip -n "$BALANCER" link show "$B_IF")"

retry 5 ip netns exec "$CLIENT" ping -c1 -W1 "$BALANCER_ADDR" >/dev/null ||
    die "client cannot reach $BALANCER_ADDR"

ip netns exec "$CLIENT" "$E2E_PYTHON" -c '
import socket, sys
addr, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO: never fragment
def datagram(tag, magic=b"JUMB"):
    body = bytearray(b"x" * size)
    body[20:23] = tag
    body[1400:1404] = magic
    return bytes(body)
for tag in (b"600", b"601", b"602"):
    for _ in range(10):
        s.sendto(datagram(tag), (addr, 7000))
for _ in range(5):
    s.sendto(datagram(b"999"), (addr, 7000))
for _ in range(5):
    s.sendto(datagram(b"600", b"NOPE"), (addr, 7000))
' "$BALANCER_ADDR" "$SIZE" || die "sending jumbo datagrams failed"

received_all() {
    [[ $(stats_value "$(in_ns "$BALANCER" "$PORTMUX" stats "$B_IF" --json 2>/dev/null)" "$B_IF" 7000 received) == 40 ]]
}
wait_until 10 received_all || fail "stats never counted 40 datagrams received"
wait_for_lines 30 5 "$E2E_WORKDIR/sink.txt" || true
for port in 5001 5002 5003; do
    # Whole, and its own tag's: "600" at offset 20 on 5001, and so on.
    tag=$((600 + port - 5001))
    assert_eq 10 "$(awk -v p="$port" -v n="$SIZE" -v t="$tag" \
        '$1 == p && length($2) == n && substr($2, 21, 3) == t' "$E2E_WORKDIR/sink.txt" | wc -l)" \
        "port $port got its 10 whole $SIZE-byte datagrams, tagged $tag"
done
assert_eq 30 "$(line_count "$E2E_WORKDIR/sink.txt")" "nothing else reached the sinks"
stats=$(in_ns "$BALANCER" "$PORTMUX" stats "$B_IF" --json 2>&1)
assert_eq 5 "$(stats_value "$stats" "$B_IF" 7000 drops.unknown_tag)" "stats: 5 unknown_tag"
assert_eq 5 "$(stats_value "$stats" "$B_IF" 7000 drops.magic_mismatch)" "stats: 5 magic_mismatch"
assert_eq 40 "$(stats_value "$stats" "$B_IF" 7000 received)" "stats: 40 received"

assert_ok "portmux detach $B_IF" in_ns "$BALANCER" "$PORTMUX" detach "$B_IF"
finish
