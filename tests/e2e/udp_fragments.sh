#!/usr/bin/env bash
# e2e: fragmented datagrams through validate + route frontends, native XDP on
# a veth, at MTU 1500 and 576 (IPv4) and 1500 and 1280 (IPv6).
#
#   client ns                            host ns
#   pfc<pid> 10.202.0.1 fd00:202::1 <-veth-> pfh<pid> 10.202.0.2 fd00:202::2 [portmux]
#
# Frontend 7000/udp: payload window 23..4000, the 3-byte tag at offset 20
# picks 5001 ("600"), 5002 ("601") or 5003 ("602"). Frontend 7010/udp: the
# same window, its tag at offset 1000 ("600" -> 5011, "601" -> 5012). The
# client sends 3,000-byte datagrams, which its kernel fragments: portmux sees
# the first fragment (UDP header, window length 3000, the tag), rewrites its
# port, and the host's kernel reassembles the datagram for the backend. The
# later fragments pass untouched.
#
# Per MTU and family: 6 datagrams to 7000 (two per tag) and 2 to 7010 (one
# per tag), each payload "SEQ-TAG..." made unique by its sequence number.
# Checks: each 7000 datagram reaches its tag's backend whole (3,000 bytes,
# exactly the bytes sent); a 7010 datagram reaches its backend when the
# first fragment holds offset 1000 (IPv4 at 1500: 1,472 payload bytes; IPv6
# at 1500 and 1280) and is dropped as beyond_first_fragment when it does not
# (IPv4 at 576: 544 payload bytes); portmux stats count exactly that;
# UdpInCsumErrors stays 0 (the reassembled datagram's checksum is verified).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C4=10.202.0.1 H4=10.202.0.2
C6=fd00:202::1 H6=fd00:202::2
SIZE=3000

e2e_start ip nstat python3 timeout

make_ns_var CLIENT pfcli
make_ns_var HOST pfhost
C_IF=pfc$E2E_ID H_IF=pfh$E2E_ID
make_veth_link "$CLIENT" "$C_IF" "$C4" "$HOST" "$H_IF" "$H4"
ip -n "$CLIENT" addr add "$C6/64" dev "$C_IF" nodad && ip -n "$HOST" addr add "$H6/64" dev "$H_IF" nodad ||
    die "cannot add the IPv6 addresses"

CONFIG=$E2E_WORKDIR/fragments.json
cat >"$CONFIG" <<'EOF'
{
  "frontends": [
    { "port": 7000, "protocol": "udp",
      "validate": { "min_length": 23, "max_length": 4000 },
      "route": { "offset": 20, "length": 3, "unknown": "drop",
                 "tags": [ { "tag": "600", "backend": 5001 }, { "tag": "601", "backend": 5002 },
                           { "tag": "602", "backend": 5003 } ] },
      "backends": [] },
    { "port": 7010, "protocol": "udp",
      "validate": { "min_length": 1003, "max_length": 4000 },
      "route": { "offset": 1000, "length": 3, "unknown": "drop",
                 "tags": [ { "tag": "600", "backend": 5011 }, { "tag": "601", "backend": 5012 } ] },
      "backends": [] }
  ]
}
EOF
BACKENDS=(5001 5002 5003 5011 5012)

# The sink: every backend port, both families; each datagram becomes the
# line "PORT LENGTH SEQ OK|BAD" (OK: exactly the bytes the sender made).
SINK_OUT=$E2E_WORKDIR/sink.txt
# (A file, not a here-document: start_in_ns gives the command /dev/null as stdin.)
cat >"$E2E_WORKDIR/sink.py" <<'EOF'
import selectors, signal, socket, sys
out = open(sys.argv[1], "a", buffering=1)
size = int(sys.argv[2])
def expected(seq, tag_offset, tag):
    body = bytearray((b"%06d-" % seq) * (size // 7 + 1))[:size]
    body[tag_offset:tag_offset + 3] = tag
    return bytes(body)
sel = selectors.DefaultSelector()
for port in map(int, sys.argv[3:]):
    for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, port))
        sel.register(s, selectors.EVENT_READ, port)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    for key, _ in sel.select():
        data = key.fileobj.recv(65535)
        seq = int(data[:6]) if data[:6].isdigit() else -1
        offset = 20 if key.data < 5010 else 1000
        ok = len(data) == size and data == expected(seq, offset, data[offset:offset + 3])
        out.write("%d %d %d %s\n" % (key.data, len(data), seq, "OK" if ok else "BAD"))
EOF
start_in_ns "$HOST" "$E2E_WORKDIR/sink.log" "$E2E_PYTHON" -u "$E2E_WORKDIR/sink.py" "$SINK_OUT" "$SIZE" "${BACKENDS[@]}"
wait_until 10 all_ports_listening "$HOST" udp "${BACKENDS[@]}" || die "the sink never listened on ${BACKENDS[*]}"

register_detach "$HOST" "$H_IF"
assert_ok "portmux attach $H_IF --mode native" \
    in_ns "$HOST" "$PORTMUX" attach "$H_IF" --mode native --config "$CONFIG" || finish

# send ADDR PORT TAG_OFFSET SEQ:TAG...: 3,000-byte datagrams, fragments allowed.
send() {
    ip netns exec "$CLIENT" "$E2E_PYTHON" - "$SIZE" "$@" <<'EOF'
import socket, sys
size, addr, port, offset = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
v6 = ":" in addr
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if not v6:
    s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: fragment
for item in sys.argv[5:]:
    seq, tag = item.split(":")
    body = bytearray((b"%06d-" % int(seq)) * (size // 7 + 1))[:size]
    body[offset:offset + 3] = tag.encode()
    s.sendto(bytes(body), (addr, port))
EOF
}

csum_before=$(udp_counter "$HOST" UdpInCsumErrors)
seq=0
expected_lines=0
beyond_expected=0
# IPv6 first: an MTU below 1280 takes IPv6 off the interface, addresses and all.
for round in "6 1500" "6 1280" "4 1500" "4 576"; do
    read -r family mtu <<<"$round"
    ip -n "$CLIENT" link set "$C_IF" mtu "$mtu" && ip -n "$HOST" link set "$H_IF" mtu "$mtu" ||
        die "cannot set MTU $mtu"
    if [[ $family == 4 ]]; then addr=$H4; else addr=$H6; fi
    retry 10 ip netns exec "$CLIENT" ping -c1 -W1 "$addr" >/dev/null || die "the client cannot reach $addr"
    # Payload bytes of a first fragment: (MTU - IP header - fragment header) rounded down to 8, minus UDP.
    if [[ $family == 4 ]]; then first=$(((mtu - 20) / 8 * 8 - 8)); else first=$(((mtu - 48) / 8 * 8 - 8)); fi
    items7000=() items7010=() want=()
    for tag in 600 601 602 600 601 602; do
        seq=$((seq + 1))
        items7000+=("$seq:$tag")
        want+=("$((5001 + tag - 600)) $SIZE $seq OK")
    done
    beyond=0
    for tag in 600 601; do
        seq=$((seq + 1))
        items7010+=("$seq:$tag")
        if ((1003 <= first)); then
            want+=("$((5011 + tag - 600)) $SIZE $seq OK")
        else
            beyond=$((beyond + 1))
        fi
    done
    log "IPv$family, MTU $mtu: first fragments carry $first payload bytes"
    send "$addr" 7000 20 "${items7000[@]}" || fail "IPv$family MTU $mtu: sending to 7000 failed"
    send "$addr" 7010 1000 "${items7010[@]}" || fail "IPv$family MTU $mtu: sending to 7010 failed"
    expected_lines=$((expected_lines + ${#want[@]}))
    beyond_expected=$((beyond_expected + beyond))
    wait_for_lines "$expected_lines" 10 "$SINK_OUT" || fail "IPv$family MTU $mtu: only $(line_count "$SINK_OUT") of $expected_lines datagrams arrived"
    for line in "${want[@]}"; do
        read -r port _ s _ <<<"$line"
        assert_eq "$line" "$(awk -v s="$s" '$3 == s' "$SINK_OUT")" "IPv$family MTU $mtu: datagram $s at its tag's backend, whole"
    done
    stats=$(stats_flat "$(in_ns "$HOST" "$PORTMUX" stats --json)")
    assert_eq "$beyond_expected" "$(stats_value "$stats" "$H_IF" 7010 drops.beyond_first_fragment)" \
        "IPv$family MTU $mtu: 7010 drops.beyond_first_fragment so far"
done

# Nothing else arrived: no datagram twice, none at another backend.
assert_eq "$expected_lines" "$(line_count "$SINK_OUT")" "datagrams the backends received in all"
assert_eq 0 "$(grep -vc ' OK$' "$SINK_OUT")" "datagrams that arrived damaged or cut"
stats=$(stats_flat "$(in_ns "$HOST" "$PORTMUX" stats --json)")
assert_eq 24 "$(stats_value "$stats" "$H_IF" 7000 forwarded)" "7000 forwarded (first fragments)"
assert_eq 0 "$(stats_value "$stats" "$H_IF" 7000 dropped)" "7000 dropped"
assert_eq $((8 - beyond_expected)) "$(stats_value "$stats" "$H_IF" 7010 forwarded)" "7010 forwarded"
assert_eq "$beyond_expected" "$(stats_value "$stats" "$H_IF" 7010 dropped)" "7010 dropped, all beyond_first_fragment"
assert_eq 2 "$beyond_expected" "7010 datagrams whose tag no first fragment held (IPv4 at 576)"
assert_eq "$csum_before" "$(udp_counter "$HOST" UdpInCsumErrors)" "UdpInCsumErrors in the host namespace"
finish
