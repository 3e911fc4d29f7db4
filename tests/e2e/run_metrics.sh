#!/usr/bin/env bash
# e2e: `portmux run --metrics-listen`: /metrics over HTTP on a namespace's lo.
#
#   - scraped with curl during traffic: 200, the exposition content type,
#     every family the service adds, counters that only grow, and at the end
#     exact counts (forwarded = datagrams sent, per backend as delivered);
#   - while 1,000 idle connections, 100 garbage senders and 100 slow
#     (byte-a-second) requests are open: scrapes still answer, a SIGHUP
#     reload and a backend's liveness change are still logged within the
#     liveness window, and the service survives them all;
#   - other paths answer 404, other methods 405;
#   - `stats --format prometheus --output FILE` replaces FILE atomically
#     (the same text as stdout, mode 0644, no temporary file left).
# e2e-timeout: 150
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
E2E_TIME_LIMIT=130

PORT=9469

e2e_start ip ss curl taskset python3

make_ns_var NS pmmt
W=$E2E_WORKDIR
SINK=$W/udp.txt
RUNLOG=$W/run.log
CONF=$W/pm.json
printf '{ "frontends": [ { "port": 9000, "protocol": "udp", "backends": [ 9001, 9002, 9003 ] } ] }\n' >"$CONF"
log "namespace $NS"

scrape() {  # scrape [CURL OPTIONS...]: the body of /metrics
    ip netns exec "$NS" curl -sS --max-time 5 "$@" "http://127.0.0.1:$PORT/metrics"
}
metric() {  # metric TEXT NAME{LABELS}: the value of one sample
    awk -v key="$2" 'substr($0, 1, length(key) + 1) == key " " { print $NF; found = 1 }
        END { if (!found) print "missing" }' <<<"$1"
}
LABELS='iface="lo",frontend="9000",protocol="udp"'

start_udp_sink "$NS" "$SINK" 9001 9002 9003
wait_until 5 all_ports_listening "$NS" udp 9001 9002 9003 || die "UDP sink never listened"
register_detach "$NS" lo
start_portmux_run "$NS" "$RUNLOG" lo --config "$CONF" --mode generic --metrics-listen "127.0.0.1:$PORT"
wait_for_log 30 "$RUNLOG" 'event=attached' || die "portmux run did not attach: $(cat "$RUNLOG")"
assert_match "log: metrics_listening on 127.0.0.1:$PORT" "event=metrics_listening iface=lo address=127.0.0.1:$PORT" "$(cat "$RUNLOG")"

# ------------------------------------------------------ during traffic
headers=$(ip netns exec "$NS" curl -sS --max-time 5 -D - -o /dev/null "http://127.0.0.1:$PORT/metrics")
assert_match "200 OK" '^HTTP/1\.[01] 200' "$headers"
assert_match "exposition format 0.0.4" '^Content-Type: text/plain; version=0\.0\.4' "$headers"

N=3000
send_udp_seq "$NS" 127.0.0.1 9000 1 "$N" 1000 >"$W/sent.txt" &
SENDER=$!
previous=0 scrapes=0 grew=1
for ((i = 0; i < 20; i++)); do
    body=$(scrape) || { fail "scrape $i failed during traffic"; break; }
    scrapes=$((scrapes + 1))
    received=$(metric "$body" "portmux_received_packets_total{$LABELS}")
    [[ $received =~ ^[0-9]+$ ]] && ((received >= previous)) || grew=0
    previous=$received
    sleep 0.1
done
wait "$SENDER"
assert_eq 20 "$scrapes" "scrapes answered during traffic"
assert_eq 1 "$grew" "portmux_received_packets_total only grew across scrapes (last $previous)"
assert_eq "$N" "$(cat "$W/sent.txt")" "datagrams sent"
wait_for_lines "$N" 15 "$SINK" || fail "only $(line_count "$SINK") of $N datagrams arrived"

body=$(scrape)
for family in portmux_received_packets_total portmux_forwarded_packets_total portmux_forwarded_bytes_total \
    portmux_dropped_packets_total portmux_attached portmux_backend_up portmux_backend_drained \
    portmux_backend_weight portmux_table_entries portmux_table_capacity portmux_reloads_total \
    portmux_reload_failures_total portmux_last_reload_successful \
    portmux_last_reload_success_timestamp_seconds portmux_build_info; do
    assert_match "family $family has HELP, TYPE and a sample" \
        "# TYPE $family (counter|gauge)"$'\n'"$family\\{" "$(grep -A1 "^# TYPE $family " <<<"$body")"
done
assert_eq "$N" "$(metric "$body" "portmux_received_packets_total{$LABELS}")" "received = sent"
for backend in 9001 9002 9003; do
    assert_eq "$(awk -v p=$backend '$1 == p' "$SINK" | wc -l)" \
        "$(metric "$body" "portmux_forwarded_packets_total{$LABELS,backend=\"$backend\"}")" \
        "forwarded to $backend = datagrams the sink got there"
    assert_eq 1 "$(metric "$body" "portmux_backend_up{$LABELS,backend=\"$backend\",family=\"ipv4\"}")" "$backend up for IPv4"
    assert_eq 0 "$(metric "$body" "portmux_backend_up{$LABELS,backend=\"$backend\",family=\"ipv6\"}")" \
        "$backend down for IPv6 (the sink binds 0.0.0.0 only)"
done
assert_eq 1 "$(metric "$body" 'portmux_attached{iface="lo",mode="generic",attachment="bpf_link"}')" "portmux_attached"
assert_eq 65536 "$(metric "$body" 'portmux_table_capacity{iface="lo",table="flows"}')" "flow table capacity"

assert_match "other paths: 404" '^404$' "$(ip netns exec "$NS" curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/nope")"
assert_match "POST: 405" '^405$' "$(ip netns exec "$NS" curl -s -o /dev/null -w '%{http_code}' -X POST -d x "http://127.0.0.1:$PORT/metrics")"

# ----------------------- 1,000 idle, 100 garbage and 100 slow connections
ip netns exec "$NS" "$E2E_PYTHON" -u -c '
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
port, ready = int(sys.argv[1]), sys.argv[2]
idle, garbage, slow = [], [], []
for i in range(1000):
    idle.append(socket.create_connection(("127.0.0.1", port)))
for i in range(100):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(bytes(range(256)) * 4)
    garbage.append(s)
for i in range(100):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /metr")
    slow.append(s)
open(ready, "w").write("open\n")
deadline = time.monotonic() + 40
while time.monotonic() < deadline:
    for s in slow:
        try:
            s.send(b"i")
        except OSError:
            pass
    time.sleep(1)
' "$PORT" "$W/clients.ready" >"$W/clients.log" 2>&1 &
CLIENTS=$!
E2E_PIDS+=("$CLIENTS")
wait_until 30 test -s "$W/clients.ready" || die "could not open the 1,200 connections: $(cat "$W/clients.log")"
open=$(ip netns exec "$NS" ss -Htn state established "sport = :$PORT" | wc -l)
log "connections to :$PORT held by the server: $open"
((open >= 1000)) && pass "at least 1,000 connections open at once ($open)" || fail "only $open connections open"

start=$(date +%s%N)
body=$(scrape) && pass "scrape answers with 1,200 other connections open" || fail "scrape failed with the connections open"
log "scrape time with the connections open: $(( ($(date +%s%N) - start) / 1000000 )) ms"
assert_eq "$N" "$(metric "$body" "portmux_received_packets_total{$LABELS}")" "and its content is right"

reloads=$(log_count "$RUNLOG" 'event=reloaded')
kill -HUP "$RUN_PID"
wait_for_log 2 "$RUNLOG" 'event=reloaded .*trigger=signal' $((reloads + 1)) &&
    pass "SIGHUP reload logged within 2 s while the connections are open" ||
    fail "SIGHUP reload not logged within 2 s"

# A backend that goes away is noticed within the liveness window.
ip netns exec "$NS" "$E2E_PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9004))
s2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s2.bind(("0.0.0.0", 9005))
' || true
printf '{ "frontends": [ { "port": 9000, "protocol": "udp", "backends": [ 9001, 9002, 9003, 9004 ] } ] }\n' >"$CONF.tmp"
mv -f "$CONF.tmp" "$CONF"
wait_for_log 3 "$RUNLOG" 'event=backend_down iface=lo protocol=udp backend=9004 ipv4=down' &&
    pass "a backend with no socket (9004) is logged down within 3 s of the file change" ||
    fail "9004 not logged down"
body=$(scrape)
assert_eq 0 "$(metric "$body" "portmux_backend_up{$LABELS,backend=\"9004\",family=\"ipv4\"}")" "metrics: 9004 down"
assert_eq 2 "$(metric "$body" 'portmux_reloads_total{iface="lo"}')" "metrics: two reloads (SIGHUP, file)"

kill "$CLIENTS" 2>/dev/null
wait "$CLIENTS" 2>/dev/null
kill -0 "$RUN_PID" 2>/dev/null && pass "portmux run survived the connections" || fail "portmux run died"
body=$(scrape) && pass "scrape answers after the connections closed" || fail "scrape failed after the connections closed"

# ---------------------------------------- stats --output writes atomically
mkdir "$W/textfile"
assert_ok "stats --format prometheus --output FILE" \
    in_ns "$NS" "$PORTMUX" stats lo --format prometheus --output "$W/textfile/portmux.prom"
stdout=$(in_ns "$NS" "$PORTMUX" stats lo --format prometheus)
assert_eq "$stdout" "$(cat "$W/textfile/portmux.prom")" "the file holds what stdout shows"
assert_eq 644 "$(stat -c %a "$W/textfile/portmux.prom")" "mode 0644 (node_exporter reads it)"
assert_eq "portmux.prom" "$(ls -A "$W/textfile")" "no temporary file left beside it"

kill -TERM "$RUN_PID"
rc=0
wait "$RUN_PID" || rc=$?
assert_eq 0 "$rc" "exit status after SIGTERM"
finish
