#!/usr/bin/env bash
# e2e: ICMP and ICMPv6 errors about balanced datagrams, both directions,
# through a router namespace, IPv4 and IPv6.
#
#   client ns                 router ns                          host ns
#   pic<pid>  <-- MTU 1280 -->  prc<pid> | prh<pid> <-- 1500 -->  pih<pid> [portmux, native]
#   10.201.1.1  fd00:201:1::1   .1.2 / ::2  .2.2 / ::2            10.201.2.1  fd00:201:2::1
#
# portmux (plain `portmux attach`: no liveness to take a dead backend out)
# balances 7000/udp to 7001, where nothing listens, and 7100/udp (flow
# affinity) to 7101 and 7102.
#
# Outbound (TC egress): a connected UDP client of 7000 sends one datagram;
# the host answers with a port unreachable about 7001, which must leave
# quoting 7000 or the client's socket never hears of it. The client must get
# ECONNREFUSED (IPv4 and IPv6) within its 5 s timeout.
#
# Inbound (XDP), path MTU: the backends on 7101 and 7102 have connected UDP
# sockets to the client's port and IP_PMTUDISC_DO; the one the client's
# request reaches (the flow's backend) answers it with a 1,400-byte
# datagram. The router cannot forward it over its 1280-byte far link and
# sends a fragmentation needed / packet too big quoting 7100 (TC egress
# gave the reply the frontend port). portmux must hand it to the kernel
# quoting the backend port, so the backend's socket learns the path MTU: IP_MTU /
# IPV6_MTU must read 1280. Without the translation the kernel finds no socket
# for 7100, and the socket keeps 1500 (checked: the binary without it fails
# all four outcome checks: "timeout" twice, MTU 1500 twice).
#
# Inbound, path MTU of a TCP connection whose flow entry is gone (evicted,
# as issue 12 item 4 is about): 7200/tcp balances to 7201 and 7202. The
# client's route to the host advertises MSS 1460 / 1440 (advmss), so the
# backend sends full 1500-byte segments, which the router cannot forward.
# After the client's first line reached its backend, the script deletes
# every flow entry and zeroes every SYN slot; only then (a file in the
# work directory) does the backend send 14 full segments (14 x its MSS, so
# no segment is small enough to pass the router and draw an ACK, which
# would record the flow again). The router's error quotes 7200; portmux
# finds the backend in the socket table (its connection's socket, not a
# listener) and hands the error over quoting the backend port. The
# backend's socket must read path MTU 1280 and the client get every byte;
# without the translation the segments are lost for good (no MTU probing)
# and the client gets nothing.
#
# The ICMP checksums are verified by the kernels that take the errors:
# Icmp(6)InCsumErrors stay 0 in the client and host namespaces.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C4=10.201.1.1 RC4=10.201.1.2 RH4=10.201.2.2 H4=10.201.2.1
C6=fd00:201:1::1 RC6=fd00:201:1::2 RH6=fd00:201:2::2 H6=fd00:201:2::1
# The TCP client's own addresses, so its flows are its own.
TC4=10.201.1.3 TC6=fd00:201:1::3
REFUSED_FRONTEND=7000
REFUSED_BACKEND=7001
MTU_FRONTEND=7100
MTU_BACKENDS=(7101 7102)
TCP_FRONTEND=7200
TCP_BACKENDS=(7201 7202)
FAR_MTU=1280

e2e_start ip nstat python3 timeout bpftool

make_ns_var CLIENT picli
make_ns_var ROUTER pirtr
make_ns_var HOST pihost
C_IF=pic$E2E_ID RC_IF=prc$E2E_ID RH_IF=prh$E2E_ID H_IF=pih$E2E_ID
make_veth_link "$CLIENT" "$C_IF" "$C4" "$ROUTER" "$RC_IF" "$RC4"
make_veth_link "$HOST" "$H_IF" "$H4" "$ROUTER" "$RH_IF" "$RH4"
ip -n "$CLIENT" link set "$C_IF" mtu "$FAR_MTU" && ip -n "$ROUTER" link set "$RC_IF" mtu "$FAR_MTU" ||
    die "cannot set MTU $FAR_MTU on the client link"
ip -n "$CLIENT" addr add "$C6/64" dev "$C_IF" nodad && ip -n "$ROUTER" addr add "$RC6/64" dev "$RC_IF" nodad &&
    ip -n "$HOST" addr add "$H6/64" dev "$H_IF" nodad && ip -n "$ROUTER" addr add "$RH6/64" dev "$RH_IF" nodad ||
    die "cannot add the IPv6 addresses"
# "route" quoted: tests/deps_check.py would take it for net-tools' route(8).
ip -n "$CLIENT" "route" add default via "$RC4" && ip -6 -n "$CLIENT" "route" add default via "$RC6" &&
    ip -n "$HOST" "route" add default via "$RH4" && ip -6 -n "$HOST" "route" add default via "$RH6" ||
    die "cannot add the routes through the router"
# The client's own link has MTU 1280, so by default it would advertise an
# MSS that fits it: advertise what fits the host's link instead.
ip -n "$CLIENT" "route" add "$H4/32" via "$RC4" advmss 1460 && ip -6 -n "$CLIENT" "route" add "$H6/128" via "$RC6" advmss 1440 ||
    die "cannot add the client's advmss routes to the host"
ip netns exec "$ROUTER" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 ||
    die "cannot turn forwarding on in the router"
log "client $CLIENT <-> router $ROUTER (far link MTU $FAR_MTU) <-> host $HOST ($H_IF)"

CONFIG=$E2E_WORKDIR/icmp.json
cat >"$CONFIG" <<EOF
{
  "frontends": [
    { "port": $REFUSED_FRONTEND, "protocol": "udp", "backends": [$REFUSED_BACKEND] },
    { "port": $MTU_FRONTEND, "protocol": "udp", "affinity": "flow",
      "backends": [${MTU_BACKENDS[0]}, ${MTU_BACKENDS[1]}] },
    { "port": $TCP_FRONTEND, "protocol": "tcp", "backends": [${TCP_BACKENDS[0]}, ${TCP_BACKENDS[1]}] }
  ]
}
EOF
register_detach "$HOST" "$H_IF"
assert_ok "portmux attach $H_IF --mode native" \
    in_ns "$HOST" "$PORTMUX" attach "$H_IF" --mode native --config "$CONFIG" || finish

for addr in "$H4" "$H6"; do
    retry 10 ip netns exec "$CLIENT" ping -c1 -W1 "$addr" >/dev/null ||
        die "the client cannot reach $addr through the router"
done
pass "the client reaches the host through the router, IPv4 and IPv6"

for ns in "$CLIENT" "$HOST"; do
    for counter in IcmpInCsumErrors Icmp6InCsumErrors; do
        assert_eq 0 "$(snmp_counter "$ns" "$counter")" "$counter in $ns before"
    done
done

# ------------------------------------------------ outbound: ECONNREFUSED
refused() {
    ip netns exec "$CLIENT" timeout 10 "$E2E_PYTHON" - "$1" "$REFUSED_FRONTEND" <<'EOF'
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.connect((addr, port))
s.send(b"hello")
try:
    s.recv(100)
    print("answered")
except ConnectionRefusedError:
    print("ECONNREFUSED")
except socket.timeout:
    print("timeout")
EOF
}
assert_eq ECONNREFUSED "$(refused "$H4")" "connected IPv4 UDP client of $H4:$REFUSED_FRONTEND (backend $REFUSED_BACKEND has no socket)"
assert_eq ECONNREFUSED "$(refused "$H6")" "connected IPv6 UDP client of [$H6]:$REFUSED_FRONTEND (backend $REFUSED_BACKEND has no socket)"

# ------------------------------------------------ inbound: path MTU
# The backends: connected sockets on 7101 and 7102 to the client's port
# CLIENT_PORT. The one the request reaches answers with 1,400 bytes, DF, until
# its path MTU drops below 1500 (or 40 tries, 0.1 s apart), then prints
# "PORT MTU" (IP_MTU / IPV6_MTU: the socket's path MTU).
CLIENT_PORT=41000
mtu_backend() {
    ip netns exec "$HOST" timeout 20 "$E2E_PYTHON" - "$1" "$2" "$CLIENT_PORT" "${MTU_BACKENDS[@]}" <<'EOF'
import select, socket, sys, time
local, client, client_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
v6 = ":" in local
# <linux/in.h>, <linux/in6.h>: not in python3's socket module.
IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU = 10, 2, 14
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO, IPV6_MTU = 23, 2, 24
socks = {}
for port in map(int, sys.argv[4:]):
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((local, port))
    s.connect((client, client_port))
    if v6:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
    else:
        s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    socks[s] = port
print("ready", flush=True)
ready, _, _ = select.select(list(socks), [], [], 10)
if not ready:
    print("no request")
    sys.exit(1)
s = ready[0]
s.recv(100)
def mtu():
    return s.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU) if v6 else s.getsockopt(socket.IPPROTO_IP, IP_MTU)
for _ in range(40):
    if mtu() < 1500:
        break
    try:
        s.send(b"x" * 1400)
    except OSError:
        pass  # EMSGSIZE once the error arrived
    time.sleep(0.1)
print(socks[s], mtu())
EOF
}

for family in 4 6; do
    if [[ $family == 4 ]]; then local_addr=$H4 client_addr=$C4; else local_addr=$H6 client_addr=$C6; fi
    out=$E2E_WORKDIR/mtu-$family.txt
    mtu_backend "$local_addr" "$client_addr" >"$out" 2>&1 &
    backend_pid=$!
    E2E_PIDS+=("$backend_pid")
    wait_until 10 grep -q '^ready' "$out" || die "IPv$family MTU backend never got ready: $(cat "$out")"
    # One request from the client's port; the reply never comes through.
    ip netns exec "$CLIENT" "$E2E_PYTHON" - "$local_addr" "$MTU_FRONTEND" "$CLIENT_PORT" <<'EOF' ||
import socket, sys
addr, port, own = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("::" if ":" in addr else "0.0.0.0", own))
s.sendto(b"request", (addr, port))
EOF
        fail "IPv$family client could not send its request"
    wait "$backend_pid"
    result=$(tail -n1 "$out")
    # Either backend may take the flow (the round-robin cursor is per CPU).
    assert_match "IPv$family: the socket of the backend that replied learned path MTU $FAR_MTU ($result)" \
        "^(${MTU_BACKENDS[0]}|${MTU_BACKENDS[1]}) $FAR_MTU\$" "$result"
done

# ------------------------------------------------ inbound: path MTU, TCP, flow state gone
PINS=$E2E_BPFFS/portmux/$H_IF
# The host learned path MTU 1280 towards the client above, and an IPv4
# connection from TC4 started with it (MSS 1228, no error needed): forget it.
ip netns exec "$HOST" ip route flush cache && ip netns exec "$HOST" ip -6 route flush cache ||
    die "cannot flush the host's route caches"
# Added only now: with them earlier, the UDP client above could send from them.
ip -n "$CLIENT" addr add "$TC4/24" dev "$C_IF" && ip -n "$CLIENT" addr add "$TC6/64" dev "$C_IF" nodad ||
    die "cannot add the TCP client's addresses"
# Deletes every flow entry and zeroes every SYN slot; prints what is left
# ("FLOWS SLOTS", both 0 when done).
forget_tcp_state() {
    local key flows slots
    bpftool -j map dump pinned "$PINS/flows" | "$E2E_PYTHON" -c '
import json, sys
for entry in json.load(sys.stdin):
    print(" ".join(entry["key"]))' | while read -r key; do
        # shellcheck disable=SC2086 # one word per key byte
        [[ -z $key ]] || bpftool map delete pinned "$PINS/flows" key hex $key
    done
    bpftool -j map dump pinned "$PINS/syn_slots" | "$E2E_PYTHON" -c '
import json, sys
for entry in json.load(sys.stdin):
    if any(int(b, 16) for b in entry["value"]):
        print(" ".join(entry["key"]))' | while read -r key; do
        # shellcheck disable=SC2086 # one word per key byte
        [[ -z $key ]] || bpftool map update pinned "$PINS/syn_slots" key hex $key value hex 0 0 0 0 0 0 0 0
    done
    flows=$(bpftool -j map dump pinned "$PINS/flows" | "$E2E_PYTHON" -c 'import json, sys; print(len(json.load(sys.stdin)))')
    slots=$(bpftool -j map dump pinned "$PINS/syn_slots" | "$E2E_PYTHON" -c '
import json, sys; print(sum(1 for e in json.load(sys.stdin) if any(int(b, 16) for b in e["value"])))')
    echo "$flows $slots"
}

# The backends: listeners on 7201 and 7202. The one the connection reaches
# prints "accepted PORT MSS" once the client's first line arrived, waits for
# the file $2 (at most 15 s), sends 14 x its MSS, prints "sent N" once they
# are acknowledged (or 15 s passed), closes, and prints "PORT MTU" (IP_MTU
# / IPV6_MTU of the connection's socket).
tcp_mtu_backend() {
    ip netns exec "$HOST" timeout 40 "$E2E_PYTHON" - "$1" "$2" "${TCP_BACKENDS[@]}" <<'EOF'
import fcntl, os, select, socket, struct, sys, termios, time
local, go = sys.argv[1], sys.argv[2]
v6 = ":" in local
IP_MTU, IPV6_MTU = 14, 24  # <linux/in.h>, <linux/in6.h>
listeners = {}
for port in map(int, sys.argv[3:]):
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((local, port))
    s.listen(4)
    listeners[s] = port
print("ready", flush=True)
ready, _, _ = select.select(list(listeners), [], [], 15)
if not ready:
    print("no connection")
    sys.exit(1)
conn, _ = ready[0].accept()
port = listeners[ready[0]]
conn.settimeout(15)
conn.recv(100)
print("accepted", port, conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG), flush=True)
deadline = time.monotonic() + 15
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.05)
size = 14 * conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
conn.sendall(b"y" * size)
# The FIN only once every byte is acknowledged (at most 15 s): sent at
# once, it would pass the router and draw an ACK.
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    if struct.unpack("i", fcntl.ioctl(conn, termios.TIOCOUTQ, b"\0" * 4))[0] == 0:
        break
    time.sleep(0.05)
print("sent", size, flush=True)
try:
    mtu = conn.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU) if v6 else conn.getsockopt(socket.IPPROTO_IP, IP_MTU)
    conn.shutdown(socket.SHUT_WR)
    conn.recv(100)
except OSError as e:
    mtu = e.strerror  # the client gave up and reset the connection
print(port, mtu)
EOF
}

# The client: connects to the frontend from address $2, sends a line, prints "received N"
# at the backend's FIN, or after 20 s without a byte.
tcp_mtu_client() {
    ip netns exec "$CLIENT" timeout 40 "$E2E_PYTHON" - "$1" "$TCP_FRONTEND" "$2" <<'EOF'
import socket, sys
addr, port, own = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((addr, port), timeout=20, source_address=(own, 0))
s.sendall(b"hello\n")
got = 0
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += len(chunk)
except socket.timeout:
    pass
print("received", got)
s.close()
EOF
}

for family in 4 6; do
    if [[ $family == 4 ]]; then local_addr=$H4 client_addr=$TC4; else local_addr=$H6 client_addr=$TC6; fi
    server_out=$E2E_WORKDIR/tcp-mtu-server-$family.txt
    client_out=$E2E_WORKDIR/tcp-mtu-client-$family.txt
    go_file=$E2E_WORKDIR/tcp-mtu-go-$family
    : >"$server_out"
    tcp_mtu_backend "$local_addr" "$go_file" >"$server_out" 2>&1 &
    server_pid=$!
    E2E_PIDS+=("$server_pid")
    wait_until 10 grep -q '^ready' "$server_out" || die "IPv$family TCP MTU backend never got ready: $(cat "$server_out")"
    tcp_mtu_client "$local_addr" "$client_addr" >"$client_out" 2>&1 &
    client_pid=$!
    E2E_PIDS+=("$client_pid")
    wait_until 10 grep -q '^accepted' "$server_out" ||
        die "IPv$family: the TCP connection never reached a backend: $(cat "$server_out" "$client_out")"
    start_mss=$(grep -m1 '^accepted' "$server_out" | cut -d' ' -f3)
    # A segment of 1,280 bytes holds 1,228 (IPv4) or 1,208 (IPv6) bytes with timestamps.
    if [[ $start_mss -gt 1228 ]]; then
        pass "IPv$family: the connection starts with MSS $start_mss, too big for the far link"
    else
        fail "IPv$family: the connection starts with MSS ${start_mss:-?}: no path MTU error will be needed"
    fi
    assert_eq "0 0" "$(forget_tcp_state)" "IPv$family: flow entries and SYN slots left after deleting them all"
    touch "$go_file"
    wait "$client_pid"
    wait "$server_pid"
    sent=$(grep -m1 '^sent ' "$server_out" | cut -d' ' -f2)
    log "IPv$family: the backend sent ${sent:-?} bytes"
    assert_eq "received ${sent:-?}" "$(tail -n1 "$client_out")" \
        "IPv$family: the client got every byte its backend sent after the path MTU error"
    result=$(tail -n1 "$server_out")
    assert_match "IPv$family: the backend's TCP socket learned path MTU $FAR_MTU with its flow state gone ($result)" \
        "^(${TCP_BACKENDS[0]}|${TCP_BACKENDS[1]}) $FAR_MTU\$" "$result"
done

for ns in "$CLIENT" "$HOST"; do
    for counter in IcmpInCsumErrors Icmp6InCsumErrors; do
        assert_eq 0 "$(snmp_counter "$ns" "$counter")" "$counter in $ns after"
    done
done
finish
