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
# The ICMP checksums are verified by the kernels that take the errors:
# Icmp(6)InCsumErrors stay 0 in the client and host namespaces.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

C4=10.201.1.1 RC4=10.201.1.2 RH4=10.201.2.2 H4=10.201.2.1
C6=fd00:201:1::1 RC6=fd00:201:1::2 RH6=fd00:201:2::2 H6=fd00:201:2::1
REFUSED_FRONTEND=7000
REFUSED_BACKEND=7001
MTU_FRONTEND=7100
MTU_BACKENDS=(7101 7102)
FAR_MTU=1280

require_root
trap e2e_cleanup EXIT
e2e_setup
require_tools ip nstat python3 timeout
require_portmux

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
ip netns exec "$ROUTER" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 ||
    die "cannot turn forwarding on in the router"
log "client $CLIENT <-> router $ROUTER (far link MTU $FAR_MTU) <-> host $HOST ($H_IF)"

CONFIG=$E2E_WORKDIR/icmp.json
cat >"$CONFIG" <<EOF
{
  "frontends": [
    { "port": $REFUSED_FRONTEND, "protocol": "udp", "backends": [$REFUSED_BACKEND] },
    { "port": $MTU_FRONTEND, "protocol": "udp", "affinity": "flow",
      "backends": [${MTU_BACKENDS[0]}, ${MTU_BACKENDS[1]}] }
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

for ns in "$CLIENT" "$HOST"; do
    for counter in IcmpInCsumErrors Icmp6InCsumErrors; do
        assert_eq 0 "$(snmp_counter "$ns" "$counter")" "$counter in $ns after"
    done
done
finish
