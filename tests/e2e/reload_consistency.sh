#!/usr/bin/env bash
# e2e: reloads that cannot misroute or half-apply (issue 12 item 7), generic
# XDP on a namespace's loopback.
#
# Part 1, reorder reloads under tagged load: frontend 9600/udp routes the
# 1-byte tag at payload offset 0 ("a" -> 9601, "b" -> 9602, "c" -> 9603,
# unknown tags drop). One python3 sender on CPU 0 sends 800,000 datagrams,
# tags a, b, c in turn, as fast as it can, while `portmux reload` cycles
# through the six orders of the backend list (at most 400 reloads). Each
# backend port has its own receiver counting datagrams of its own tag and
# of any other (misrouted). Checks: at least 5 reloads happened during the
# stream, every reload exited 0, misrouted = 0, received + the socket
# buffer drops (UdpRcvbufErrors) = sent, and `stats --json` counts per
# backend exactly the datagrams of its tag (counters follow the backend
# through every reorder), nothing dropped.
#
# Part 2, a failing reload changes nothing: the reload to a config that
# reorders the backends, replaces 9602 by 9604 and changes the tags fails
# at its Nth map write (fault hook PORTMUX_TEST_FAIL_MAP_WRITE, every N in
# turn until the reload gets past its last write: meta, counter bases,
# routes, configs and each `ports` entry of the flip, which rolls back the
# entries already flipped), and with an invalid config: exit 1, `status
# --json`, `stats --json` and `stats` byte-identical before and after. A
# failure after the flip (removing the old routes) says the new config is
# in force. The same from a one-way config: TC egress, attached for the new
# config before the failure, is detached again. Then tagged datagrams still
# reach the old config's backends, and the reload without the fault applies.
#
# Part 3, counters after a replace, under `portmux run --metrics-listen`:
# frontend 9875 -> 9876 9877 9878 round robin, 30 datagrams (10 each); a
# SIGHUP reload to 9876 9879 9878: 9879 shows 0 and 9877's 10 show as
# removed (stats --json removed_backends, stats text "removed backends",
# stats --format prometheus and /metrics backend="removed"); 30 more: 9879
# shows exactly 10; status lists 9879 and not 9877.
#
# Part 4, 65,536 tags -> 65,536 other tags: frontend 9700/udp with 5-byte
# tags "a0000".."affff" (tag i -> 9701 + i % 3) reloaded to "b0000".."bffff"
# (tag i -> 9701 + (i + 1) % 3): the reload succeeds, then 1,025 sampled new
# tags each reach exactly their backend and the old tags drop as unknown_tag.
# e2e-timeout: 150
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
E2E_TIME_LIMIT=140

TOTAL=${RELOAD_CONSISTENCY_DATAGRAMS:-800000}
MAX_RELOADS=400

e2e_start ip ss nstat curl taskset python3

make_ns_var NS pmrc
W=$E2E_WORKDIR
log "namespace $NS, portmux $PORTMUX"
pm() { in_ns "$NS" "$PORTMUX" "$@"; }

# tag_config FILE FRONTEND PORT... : 1-byte tags a, b, c -> 9601, 9602, 9603
# (whatever the order of the backend list), unknown tags drop.
tag_config() {
    local file=$1 frontend=$2 list
    shift 2
    list=$(IFS=,; echo "$*")
    cat >"$file" <<EOF
{ "frontends": [ { "port": $frontend, "protocol": "udp", "backends": [$list],
  "route": { "offset": 0, "length": 1, "unknown": "drop", "tags": [
    { "tag": "a", "backend": 9601 }, { "tag": "b", "backend": 9602 }, { "tag": "c", "backend": 9603 } ] } } ] }
EOF
}

# start_tag_receiver PORT TAG OUTFILE: counts datagrams on PORT whose first
# byte is TAG and those whose first byte is not; on the datagram "END!" it
# writes "OK BAD" to OUTFILE and exits. The socket FIFO makes "END!" the
# last thing read: everything sent before it was read or dropped.
start_tag_receiver() {
    start_in_ns "$NS" "$3.log" "$E2E_PYTHON" -c '
import socket, sys, os
port, tag, out = int(sys.argv[1]), ord(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE (root)
s.bind(("127.0.0.1", port))
buf = bytearray(2048)
ok = bad = 0
while True:
    n = s.recv_into(buf)
    if n == 4 and buf[:4] == b"END!":
        break
    if n and buf[0] == tag:
        ok += 1
    else:
        bad += 1
tmp = out + ".tmp"
with open(tmp, "w") as f:
    f.write("%d %d\n" % (ok, bad))
os.rename(tmp, out)
' "$1" "$2" "$3"
}

# end_receivers PORT=FILE...: sends "END!" to each receiver until its result
# file exists (the marker itself may be dropped by a full buffer); bounded.
end_receivers() {
    local pair port file tries
    for pair in "$@"; do
        port=${pair%%=*} file=${pair#*=}
        for ((tries = 0; tries < 100; tries++)); do
            [[ -s $file ]] && break
            ip netns exec "$NS" "$E2E_PYTHON" -c '
import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"END!", ("127.0.0.1", int(sys.argv[1])))' "$port"
            wait_until 1 test -s "$file"
        done
        [[ -s $file ]] || die "the receiver on $port never reported"
    done
}

frontend_json() {  # frontend_json PORT FIELD...: a field of frontend PORT in stats --json
    pm stats lo --json | "$E2E_PYTHON" -c '
import json, sys
f = next(f for i in json.load(sys.stdin)["interfaces"] for f in i["frontends"] if f["port"] == int(sys.argv[1]))
for key in sys.argv[2:]:
    f = f[int(key)] if isinstance(f, list) else f[key]
print(json.dumps(f, sort_keys=True))' "$@"
}

backend_packets() {  # backend_packets FRONTEND BACKEND
    pm stats lo --json | "$E2E_PYTHON" -c '
import json, sys
f = next(f for i in json.load(sys.stdin)["interfaces"] for f in i["frontends"] if f["port"] == int(sys.argv[1]))
print(next((b["packets"] for b in f["backends"] if b["port"] == int(sys.argv[2])), "missing"))' "$1" "$2"
}

# ---------------------------------------------- part 1: reorders under load
log "--- part 1: $TOTAL tagged datagrams while reloads reorder the backends"
ORDERS=("9601 9602 9603" "9602 9603 9601" "9603 9601 9602" "9603 9602 9601" "9601 9603 9602" "9602 9601 9603")
for i in "${!ORDERS[@]}"; do
    # shellcheck disable=SC2086
    tag_config "$W/order$i.json" 9600 ${ORDERS[$i]}
done
start_tag_receiver 9601 a "$W/r9601"
start_tag_receiver 9602 b "$W/r9602"
start_tag_receiver 9603 c "$W/r9603"
wait_until 5 all_ports_listening "$NS" udp 9601 9602 9603 || die "the receivers never listened"
register_detach "$NS" lo
assert_ok "attach lo --mode generic, backends in order 0" \
    pm attach lo --mode generic --config "$W/order0.json" || finish

ip netns exec "$NS" nstat -n >/dev/null 2>&1  # reset nstat's history: the next read is a delta
ip netns exec "$NS" taskset -c 0 "$E2E_PYTHON" -c '
import socket, sys
total = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payloads = [b"a-tagged", b"b-tagged", b"c-tagged"]
dest = ("127.0.0.1", 9600)
sendto = s.sendto
for i in range(total):
    sendto(payloads[i % 3], dest)
print(total)
' "$TOTAL" >"$W/sender.out" 2>&1 &
SENDER=$!
E2E_PIDS+=("$SENDER")
reloads=0 reload_failures=0
while kill -0 "$SENDER" 2>/dev/null && ((reloads < MAX_RELOADS)); do
    order=$(((reloads + 1) % ${#ORDERS[@]}))
    if ! pm reload lo --config "$W/order$order.json" >"$W/reload.out" 2>&1; then
        reload_failures=$((reload_failures + 1))
        sed 's/^/    | /' "$W/reload.out"
    fi
    reloads=$((reloads + 1))
done
wait "$SENDER"
sent=$(cat "$W/sender.out")
log "sender sent $sent datagrams during $reloads reloads"
assert_eq "$TOTAL" "$sent" "datagrams sent"
assert_eq 0 "$reload_failures" "reloads that failed"
((reloads >= 5)) && pass "$reloads reorder reloads during the stream (>= 5)" ||
    fail "only $reloads reloads during the stream"
end_receivers 9601="$W/r9601" 9602="$W/r9602" 9603="$W/r9603"
received=0 misrouted=0
for port in 9601 9602 9603; do
    read -r ok bad <"$W/r$port"
    log "  backend $port: $ok of its tag, $bad misrouted"
    received=$((received + ok + bad)) misrouted=$((misrouted + bad))
done
rcvbuf_errors=$(ip netns exec "$NS" nstat -az UdpRcvbufErrors | awk '$1 == "UdpRcvbufErrors" { print $2 }')
log "received $received, socket buffer drops ${rcvbuf_errors:-?}"
assert_eq 0 "$misrouted" "datagrams that reached a backend other than their tag's"
assert_eq "$TOTAL" "$((received + ${rcvbuf_errors:-0}))" "received + socket buffer drops = sent"
per_tag=$((TOTAL / 3))
for port in 9601 9602 9603; do
    extra=$(( (port - 9601) < TOTAL % 3 ? 1 : 0 ))
    assert_eq "$((per_tag + extra))" "$(backend_packets 9600 "$port")" \
        "stats: backend $port counted exactly the datagrams of its tag"
done
assert_eq "$TOTAL" "$(frontend_json 9600 received)" "stats: received = sent"
assert_eq 0 "$(frontend_json 9600 dropped)" "stats: nothing dropped"
assert_eq 0 "$(frontend_json 9600 removed_backends packets)" "stats: nothing counted as removed"
assert_ok "detach lo" pm detach lo

# ------------------------------------------- part 2: failing reloads
log "--- part 2: reloads that fail change nothing"
tag_config "$W/p2-old.json" 9600 9601 9602 9603
cat >"$W/p2-new.json" <<EOF
{ "frontends": [ { "port": 9600, "protocol": "udp", "backends": [9603, 9604, 9601],
  "route": { "offset": 0, "length": 1, "unknown": "drop", "tags": [
    { "tag": "a", "backend": 9603 }, { "tag": "b", "backend": 9604 }, { "tag": "c", "backend": 9601 },
    { "tag": "d", "backend": 9601 } ] } },
  { "port": 9610, "protocol": "udp", "backends": [9611] } ] }
EOF
printf '{ "frontends": [ { "port": 9600, "protocol": "udp", "backends": [9601, 0] } ] }\n' >"$W/p2-bad.json"
assert_ok "attach lo with the old config" pm attach lo --mode generic --config "$W/p2-old.json" || finish
# Tagged datagrams to the old config's backends: their receivers are gone,
# so only stats tell where they went.
send_tags() {
    ip netns exec "$NS" "$E2E_PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for tag in sys.argv[1:]:
    s.sendto(tag.encode() + b"-x", ("127.0.0.1", 9600))' "$@"
}
send_tags a b b c c c
snapshot() { pm status --json 2>&1; pm stats lo --json 2>&1; pm stats lo 2>&1; }
check_unchanged() {  # check_unchanged WHAT BEFORE
    local after
    after=$(snapshot)
    if [[ $2 == "$after" ]]; then
        pass "$1: status --json, stats --json and stats identical after the failure"
    else
        fail "$1: the failed reload changed status or stats"
        diff <(printf '%s\n' "$2") <(printf '%s\n' "$after") | sed 's/^/    | /'
    fi
}
before=$(snapshot)
E2E_EXPECT_RC=1 assert_fails "reload with an invalid config is refused" pm reload lo --config "$W/p2-bad.json"
check_unchanged "invalid config" "$before"
# Every map write of the reload in turn, until the reload gets past its
# last one. A failure after the flip (removing the old buffer's routes)
# is a success with a warning: the new config is in force (exit 0, so a
# caller does not retry it); the old one is then reloaded.
before_flip=0 after_flip=0 nth=1
for ((nth = 1; nth <= 60; nth++)); do
    before=$(snapshot)
    rc=0
    out=$(PORTMUX_TEST_FAIL_MAP_WRITE=$nth pm reload lo --config "$W/p2-new.json" 2>&1) || rc=$?
    if [[ $out == *"in force"* ]]; then
        after_flip=$((after_flip + 1))
        assert_eq 0 "$rc" "reload failing at map write $nth, after the flip, exits 0"
        assert_match "write $nth: one warning line says the new config is in force" \
            '^portmux: warning: the new config is in force, but its cleanup failed' "$out"
        assert_match "write $nth: the new config's frontend 9610 is installed" '9610' "$(pm status lo 2>&1)"
        pm reload lo --config "$W/p2-old.json" >/dev/null 2>&1 || fail "reloading the old config after write $nth"
        continue
    fi
    ((rc == 0)) && break
    before_flip=$((before_flip + 1))
    log "  write $nth: $(head -1 <<<"$out")"
    assert_eq 1 "$rc" "reload failing at map write $nth exits 1"
    check_unchanged "map write $nth" "$before"
done
log "$before_flip writes fail before the flip, $after_flip after it; write $nth is past the last"
((before_flip >= 10)) && pass "$before_flip failure points before the flip checked (>= 10)" ||
    fail "only $before_flip failure points before the flip"
((after_flip >= 1)) && pass "$after_flip failure points after the flip say the new config is in force" ||
    fail "no failure point after the flip"
pm reload lo --config "$W/p2-old.json" >/dev/null 2>&1 || fail "reloading the old config"
# From a one-way config (no reply translation: TC egress off) the failing
# reload turns TC egress on for the new config first; it must go off again.
sed 's/"protocol": "udp",/"protocol": "udp", "reply_translation": false,/' "$W/p2-old.json" >"$W/p2-oneway.json"
assert_ok "reload to the one-way config" pm reload lo --config "$W/p2-oneway.json"
before=$(snapshot)
assert_match "one-way: status says TC egress is not attached" 'TC egress reply translation not attached' "$(pm status lo)"
E2E_EXPECT_RC=1 PORTMUX_TEST_FAIL_MAP_WRITE=4 assert_fails "reload from the one-way config failing at a route write" \
    pm reload lo --config "$W/p2-new.json"
check_unchanged "one-way config, route write" "$before"
assert_ok "back to the old config" pm reload lo --config "$W/p2-old.json"
# (The reloads back to the old config after a failure past the flip gave
# 9602, removed and added again, a fresh counter: compare deltas.)
c1=$(backend_packets 9600 9601) c2=$(backend_packets 9600 9602) c3=$(backend_packets 9600 9603)
send_tags a b b c c c
assert_eq "$((c1 + 1)) $((c2 + 2)) $((c3 + 3))" \
    "$(backend_packets 9600 9601) $(backend_packets 9600 9602) $(backend_packets 9600 9603)" \
    "the old config still routes a -> 9601, b -> 9602, c -> 9603"
c1=$(backend_packets 9600 9601) c2=$(backend_packets 9600 9602) c3=$(backend_packets 9600 9603)
removed=$(frontend_json 9600 removed_backends packets)
assert_ok "the same reload without the fault applies" pm reload lo --config "$W/p2-new.json"
send_tags a b c d
# 9601 and 9603 stay (reordered) and keep their counts; 9604 is new.
assert_eq "$((c3 + 1))" "$(backend_packets 9600 9603)" "new config: a -> 9603, which keeps its count"
assert_eq 1 "$(backend_packets 9600 9604)" "new config: b -> 9604, new, from 0"
assert_eq "$((c1 + 2))" "$(backend_packets 9600 9601)" "new config: c and d -> 9601, which keeps its count"
assert_eq "$((removed + c2))" "$(frontend_json 9600 removed_backends packets)" "9602's counts moved to removed"
assert_ok "detach lo" pm detach lo

# ------------------------------------ part 3: counters after a replace (run)
log "--- part 3: counters after replacing 9877 by 9879, under portmux run"
METRICS_PORT=9479
CONF=$W/run.json
printf '{ "frontends": [ { "port": 9875, "protocol": "udp", "backends": [ 9876, 9877, 9878 ] } ] }\n' >"$CONF"
start_udp_sink "$NS" "$W/p3-sink.txt" 9876 9877 9878 9879
wait_until 5 all_ports_listening "$NS" udp 9876 9877 9878 9879 || die "the p3 sink never listened"
start_portmux_run "$NS" "$W/run.log" lo --config "$CONF" --mode generic --metrics-listen "127.0.0.1:$METRICS_PORT"
wait_for_log 30 "$W/run.log" 'event=attached' || die "portmux run did not attach: $(cat "$W/run.log")"
sent=$(send_udp_seq "$NS" 127.0.0.1 9875 1 30)
wait_for_lines 30 10 "$W/p3-sink.txt" || fail "the first 30 datagrams did not all arrive"
for port in 9876 9877 9878; do
    assert_eq 10 "$(backend_packets 9875 "$port")" "before: $port forwarded 10"
done
printf '{ "frontends": [ { "port": 9875, "protocol": "udp", "backends": [ 9876, 9879, 9878 ] } ] }\n' >"$CONF"
reloads=$(log_count "$W/run.log" 'event=reloaded')
kill -HUP "$RUN_PID"
wait_for_log 10 "$W/run.log" 'event=reloaded' $((reloads + 1)) || fail "the SIGHUP reload was not logged"
assert_eq 0 "$(backend_packets 9875 9879)" "after the replace: 9879 starts at 0"
assert_eq 10 "$(frontend_json 9875 removed_backends packets)" "after the replace: 9877's 10 show as removed"
send_udp_seq "$NS" 127.0.0.1 9875 31 60 >/dev/null
wait_for_lines 60 10 "$W/p3-sink.txt" || fail "the next 30 datagrams did not all arrive"
assert_eq 20 "$(backend_packets 9875 9876)" "9876 kept its counts: 20"
assert_eq 10 "$(backend_packets 9875 9879)" "9879 counted exactly its own 10"
assert_eq 20 "$(backend_packets 9875 9878)" "9878 kept its counts: 20"
assert_eq 10 "$(frontend_json 9875 removed_backends packets)" "removed stays 10"
assert_eq 60 "$(frontend_json 9875 forwarded)" "forwarded = 60 = 20 + 10 + 20 + 10 removed"
assert_eq 10 "$(grep -c '^9879 ' "$W/p3-sink.txt")" "9879 received exactly 10"
text=$(pm stats lo)
assert_match "stats text: 9879 with 10 packets" 'backend 9879 +10 packets' "$text"
assert_match "stats text: removed backends 10 packets" 'removed backends +10 packets' "$text"
prom=$(pm stats lo --format prometheus)
assert_match "prometheus: 9879 counts 10" 'portmux_forwarded_packets_total\{[^}]*frontend="9875"[^}]*backend="9879"\} 10$' "$prom"
assert_match "prometheus: removed counts 10" 'portmux_forwarded_packets_total\{[^}]*frontend="9875"[^}]*backend="removed"\} 10$' "$prom"
body=$(ip netns exec "$NS" curl -sS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics")
assert_match "/metrics: 9879 counts 10" 'portmux_forwarded_packets_total\{[^}]*frontend="9875"[^}]*backend="9879"\} 10$' "$body"
assert_match "/metrics: removed counts 10" 'portmux_forwarded_packets_total\{[^}]*frontend="9875"[^}]*backend="removed"\} 10$' "$body"
assert_no_match "/metrics: 9877 is gone" 'backend="9877"' "$body"
status=$(pm status lo)
assert_match "status lists 9879" '9879' "$status"
assert_no_match "status no longer lists 9877" '9877' "$status"
kill -TERM "$RUN_PID"
wait_until 10 process_gone "$RUN_PID" || fail "portmux run did not stop on SIGTERM"

# ----------------------------------------- part 4: 65,536 tags -> 65,536 others
log "--- part 4: a 65,536-tag config reloaded to another 65,536-tag config"
big_config() {  # big_config FILE LETTER SHIFT
    "$E2E_PYTHON" -c '
import json, sys
letter, shift = sys.argv[2], int(sys.argv[3])
tags = [{"tag": "%s%04x" % (letter, i), "backend": 9701 + (i + shift) % 3} for i in range(65536)]
json.dump({"frontends": [{"port": 9700, "protocol": "udp", "backends": [9701, 9702, 9703],
           "route": {"offset": 0, "length": 5, "unknown": "drop", "tags": tags}}]}, open(sys.argv[1], "w"))
' "$1" "$2" "$3"
}
big_config "$W/big-a.json" a 0
big_config "$W/big-b.json" b 1
SINK4=$W/p4-sink.txt
start_udp_sink "$NS" "$SINK4" 9701 9702 9703
wait_until 5 all_ports_listening "$NS" udp 9701 9702 9703 || die "the p4 sink never listened"
assert_ok "attach with 65,536 tags a0000..affff" pm attach lo --mode generic --config "$W/big-a.json" || finish
assert_ok "reload to 65,536 other tags b0000..bffff" pm reload lo --config "$W/big-b.json"
# Every 64th tag and the last, new and old.
ip netns exec "$NS" "$E2E_PYTHON" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in list(range(0, 65536, 64)) + [65535]:
    s.sendto(b"b%04x" % i, ("127.0.0.1", 9700))
    s.sendto(b"a%04x" % i, ("127.0.0.1", 9700))
'
wait_for_lines 1025 10 "$SINK4" || fail "not all 1,025 new-tag datagrams arrived"
wrong=$("$E2E_PYTHON" -c '
import sys
wrong = 0
for line in open(sys.argv[1]):
    port, tag = line.split()
    i = int(tag[1:], 16)
    if tag[0] != "b" or int(port) != 9701 + (i + 1) % 3:
        wrong += 1
print(wrong)' "$SINK4")
assert_eq 0 "$wrong" "new tags each reached their backend, no old tag arrived"
assert_eq 1025 "$(wc -l <"$SINK4")" "exactly 1,025 datagrams delivered"
assert_eq 1025 "$(frontend_json 9700 drops unknown_tag)" "the 1,025 old tags dropped as unknown_tag"
status_tags=$(pm status lo --json | "$E2E_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
def walk(o):
    if isinstance(o, dict):
        if "tags" in o and isinstance(o["tags"], list): yield o["tags"]
        for v in o.values(): yield from walk(v)
    elif isinstance(o, list):
        for v in o: yield from walk(v)
tags = [t for ts in walk(d) for t in ts]
print(len(tags), sum(1 for t in tags if str(t.get("tag", t.get("hex", ""))).startswith(("b", "62"))))')
assert_eq "65536 65536" "$status_tags" "status --json: 65,536 tags, all of the new config"
assert_ok "detach lo" pm detach lo

finish
