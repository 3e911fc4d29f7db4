#!/usr/bin/env bash
# e2e: backend liveness from the kernel's socket table (`portmux run`),
# generic XDP on a namespace's lo.
#
# UDP, 1,000 datagrams/s over three backends (one python3 sink process
# each): the 9002 sink is killed; one second later portmux's counter for
# 9002 stops for good (0 datagrams to the dead port from then on, checked
# over the next 2 s of traffic, and the kernel's UdpNoPorts agrees), and
# the log, status, stats and the metrics say 9002 is down. Restarted, 9002
# is logged up and, one second later, gets its third again (exact counts
# from the data path's per-backend counters, the sinks agree).
# An operator's drain wins: 9001 drained while run is running stays drained
# through run's next liveness writes (a backend going down and up).
# All backends gone: datagrams pass unrewritten, the client gets
# ECONNREFUSED at once, counted as no_backend.
# TCP and address families: 8080 over 8081 (IPv4-only listener) and 8083
# (IPv6-only listener): IPv4 clients all reach 8081, IPv6 clients all
# reach 8083; with 8081 closed, an IPv4 connection to 8080 is refused
# (RST) at once.
# e2e-timeout: 150
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
E2E_TIME_LIMIT=130

e2e_start ip ss nstat taskset timeout python3

make_ns_var NS pmlv
W=$E2E_WORKDIR
RUNLOG=$W/run.log
CONF=$W/pm.json
cat >"$CONF" <<'JSON'
{ "frontends": [
    { "port": 9000, "protocol": "udp", "backends": [ 9001, 9002, 9003 ] },
    { "port": 8080, "protocol": "tcp", "backends": [ 8081, 8083 ] } ] }
JSON
log "namespace $NS"
pm() { in_ns "$NS" "$PORTMUX" "$@"; }
packets() {  # packets FRONTEND BACKEND: the data path's count for one backend
    stats_value "$(pm stats lo --json)" lo "$1" "backend.$2.packets"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

declare -A SINK_PID
start_sink() {  # start_sink PORT [SUFFIX]: one sink process per backend, so one can be killed
    start_udp_sink "$NS" "$W/udp-$1${2:-}.txt" "$1"
    SINK_PID[$1]=${E2E_PIDS[-1]}
}
for port in 9001 9002 9003; do start_sink $port; done
wait_until 5 all_ports_listening "$NS" udp 9001 9002 9003 || die "UDP sinks never listened"
start_tcp_sink "$NS" "$W/tcp4.txt" 8081
start_in_ns "$NS" "$W/tcp6.log" "$E2E_PYTHON" -u -c '
import socket, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 8083)); s.listen(64)
def serve(c):
    with c, c.makefile("rwb") as f:
        for line in f:
            f.write(b"backend-8083 " + line); f.flush()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'
wait_until 5 all_ports_listening "$NS" tcp 8081 8083 || die "TCP sinks never listened"

register_detach "$NS" lo
start_portmux_run "$NS" "$RUNLOG" lo --config "$CONF" --mode generic --metrics-listen 127.0.0.1:9469
wait_for_log 30 "$RUNLOG" 'event=attached' || die "portmux run did not attach: $(cat "$RUNLOG")"
assert_eq 0 "$(log_count "$RUNLOG" 'event=backend_down .*backend=(9001|9002|9003|8081) ipv4=down')" \
    "every backend with an IPv4 socket up for IPv4 at start"
assert_match "8083 (IPv6-only listener) logged down for IPv4 at start" \
    'event=backend_down iface=lo protocol=tcp backend=8083 ipv4=down ipv6=up' "$(cat "$RUNLOG")"
assert_match "status: 8081 down for IPv6 only, 8083 down for IPv4 only" \
    '8080 +tcp +8081 \(down for IPv6\), 8083 \(down for IPv4\)' "$(pm status lo)"

# ----------------------------------------------- TCP, per address family
v4=() v6=()
for i in 1 2 3 4; do
    v4+=("$(tcp_exchange "$NS" 127.0.0.1 8080 "v4-$i")")
    v6+=("$(tcp_exchange "$NS" ::1 8080 "v6-$i")")
done
assert_eq "backend-8081 v4-1 backend-8081 v4-2 backend-8081 v4-3 backend-8081 v4-4" "${v4[*]}" \
    "IPv4 connections all reach the IPv4 listener 8081"
assert_eq "backend-8083 v6-1 backend-8083 v6-2 backend-8083 v6-3 backend-8083 v6-4" "${v6[*]}" \
    "IPv6 connections all reach the IPv6 listener 8083"

# --------------------------------------------------- kill a UDP backend
# The sender runs until told to stop (at most 60 s): a fixed count ran out
# before the shares window on a slow machine.
N=60000
send_udp_seq "$NS" 127.0.0.1 9000 1 "$N" 1000 "$W/stop-sender" >"$W/sent.txt" &
SENDER=$!
wait_until 10 lines_at_least 1500 "$W/udp-9001.txt" "$W/udp-9002.txt" "$W/udp-9003.txt" ||
    die "traffic did not start"
noports_before=$(udp_counter "$NS" UdpNoPorts)
kill "${SINK_PID[9002]}"
killed_at=$(now_ms)
wait_until 5 process_gone "${SINK_PID[9002]}" || die "the 9002 sink did not exit"
# When did portmux stop counting 9002? Poll its counter until 1 s after the kill.
last=$(packets 9000 9002) last_change=$killed_at
while (($(now_ms) < killed_at + 1000)); do
    value=$(packets 9000 9002)
    [[ $value != "$last" ]] && last=$value last_change=$(now_ms)
    sleep 0.05
done
at_window=$(packets 9000 9002)
[[ $at_window != "$last" ]] && last_change=$(now_ms)
wait_for_log 2 "$RUNLOG" 'event=backend_down iface=lo protocol=udp backend=9002 ipv4=down' ||
    fail "no backend_down logged for 9002"
logged=$(grep -m1 'backend=9002 ipv4=down' "$RUNLOG")
log "9002 killed; its counter last moved $((last_change - killed_at)) ms later (at most; 50 ms polls)"
noports_window=$(udp_counter "$NS" UdpNoPorts)
sleep 2   # 2,000 more datagrams
assert_eq "$at_window" "$(packets 9000 9002)" "0 datagrams forwarded to the dead 9002 from 1 s after the kill on"
assert_eq "$noports_window" "$(udp_counter "$NS" UdpNoPorts)" "0 datagrams hit the closed port (UdpNoPorts) after the window"
log "datagrams lost to the closed port inside the window: $((noports_window - noports_before))"
assert_match "status says 9002 is down" '9000 +udp +9001 \(down for IPv6\), 9002 \(down\), 9003' "$(pm status lo)"
assert_match "stats says 9002 is down" 'backend 9002 .*\(down\)' "$(pm stats lo)"
assert_match "metrics say 9002 is down" \
    'portmux_backend_up\{iface="lo",frontend="9000",protocol="udp",backend="9002",family="ipv4"\} 0' \
    "$(ip netns exec "$NS" curl -s --max-time 5 http://127.0.0.1:9469/metrics)"

# ------------------------------------------------------- restart it
start_sink 9002 -restarted
wait_until 5 udp_port_listening "$NS" 9002 || die "the new 9002 sink never listened"
wait_for_log 2 "$RUNLOG" 'event=backend_up iface=lo protocol=udp backend=9002 ipv4=up' ||
    fail "no backend_up logged for 9002"
sleep 1   # the window
# The shares over the next 1,500 datagrams (however long they take).
forwarded_since() {  # forwarded_since STATS_FLAT: datagrams to 9001-9003 since then
    local now port sum=0
    now=$(stats_flat "$(pm stats lo --json)")
    for port in 9001 9002 9003; do
        sum=$((sum + $(stats_value "$now" lo 9000 backend.$port.packets) - $(stats_value "$1" lo 9000 backend.$port.packets)))
    done
    echo "$sum"
}
enough_traffic() { (($(forwarded_since "$before") >= 1500)); }
before=$(stats_flat "$(pm stats lo --json)")
wait_until 15 enough_traffic || true
after=$(stats_flat "$(pm stats lo --json)")
total=0
declare -A share
for port in 9001 9002 9003; do
    share[$port]=$(($(stats_value "$after" lo 9000 backend.$port.packets) - $(stats_value "$before" lo 9000 backend.$port.packets)))
    total=$((total + share[$port]))
done
log "shares after the window: 9001 ${share[9001]}, 9002 ${share[9002]}, 9003 ${share[9003]}"
((total >= 1500)) || fail "too little traffic to judge the shares ($total in 15 s)"
for port in 9001 9002 9003; do
    ((share[$port] * 3 >= total - 3 && share[$port] * 3 <= total + 3)) &&
        pass "$port got its third again (${share[$port]} of $total)" ||
        fail "$port got ${share[$port]} of $total, not a third"
done
touch "$W/stop-sender"
wait "$SENDER"
sent=$(cat "$W/sent.txt")
assert_eq "$sent" "$(stats_value "$(pm stats lo --json)" lo 9000 received)" \
    "every datagram sent reached the data path (received)"
wait_until 10 lines_at_least $(($(packets 9000 9002) - at_window)) "$W/udp-9002-restarted.txt" || true
assert_eq "$(($(packets 9000 9002) - at_window))" "$(line_count "$W/udp-9002-restarted.txt")" \
    "the new 9002 sink got every datagram counted for 9002 since the restart"

# ------------------------------------------------------- drain still wins
assert_ok "drain 9001 while run is running" pm drain lo 9001
kill "${SINK_PID[9003]}"
wait_for_log 3 "$RUNLOG" 'event=backend_down iface=lo protocol=udp backend=9003 ipv4=down' ||
    fail "no backend_down for 9003"
start_sink 9003 -restarted
wait_for_log 3 "$RUNLOG" 'event=backend_up iface=lo protocol=udp backend=9003 ipv4=up' ||
    fail "no backend_up for 9003"
sleep 1
assert_match "9001 still drained after run's liveness writes" '9001 \(drained\)' "$(pm status lo)"
b1=$(packets 9000 9001)
send_udp_seq "$NS" 127.0.0.1 9000 10001 10030 >/dev/null
sleep 0.3
assert_eq "$b1" "$(packets 9000 9001)" "no datagram to the drained 9001"
assert_ok "undrain 9001" pm undrain lo 9001

# ----------------------------------------------------- every backend gone
for port in 9001 9002 9003; do kill "${SINK_PID[$port]}"; done
for port in 9001 9002 9003; do wait_until 5 process_gone "${SINK_PID[$port]}"; done
wait_for_log 3 "$RUNLOG" 'backend=9001 ipv4=down' || fail "9001 not logged down"
sleep 1
no_backend_before=$(stats_value "$(pm stats lo --json)" lo 9000 drops.no_backend)
refused=$(ip netns exec "$NS" timeout 10 "$E2E_PYTHON" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", 9000)); s.settimeout(3)
s.send(b"anyone?")
try:
    s.recv(100); print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
')
assert_eq refused "$refused" "with every backend down the client gets ECONNREFUSED at once"
assert_eq $((no_backend_before + 1)) "$(stats_value "$(pm stats lo --json)" lo 9000 drops.no_backend)" \
    "counted as no_backend"

# ----------------------------------------------- TCP: refused when all down
kill "$(ip netns pids "$NS" | while read -r p; do
    grep -q socketserver "/proc/$p/cmdline" 2>/dev/null && echo "$p"; done | head -1)" 2>/dev/null
wait_until 5 bash -c "! ip netns exec $NS ss -Htln 'sport = :8081' | grep -q ." || fail "8081 still listening"
wait_for_log 3 "$RUNLOG" 'protocol=tcp backend=8081 ipv4=down' || fail "8081 not logged down"
sleep 0.5
tcp=$(ip netns exec "$NS" timeout 10 "$E2E_PYTHON" -c '
import socket
try:
    socket.create_connection(("127.0.0.1", 8080), timeout=3); print("connected")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
')
assert_eq refused "$tcp" "IPv4 connection to 8080 with no IPv4 listener left: refused (RST) at once"

kill -TERM "$RUN_PID"
rc=0
wait "$RUN_PID" || rc=$?
assert_eq 0 "$rc" "exit status after SIGTERM"
finish
