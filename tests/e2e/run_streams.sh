#!/usr/bin/env bash
# e2e: `portmux run IFACE --config` hosting the stream router, on a
# namespace's lo (generic XDP).
#
# The run config has a plain TCP frontend 8080 -> 8081 (XDP) and a TCP
# frontend 9000 with `validate` and `route` (the stream router): "MPLX" at
# offset 0, a 3-byte tag at offset 20, aaa -> 5001, bbb -> 5002. Backends
# 5001/5002 are stream_peer.py echo servers that answer "PORT:" first.
#
# Checks: run attaches and logs event=streams_applied ports=9000; status
# lists 8080 but not 9000, and 8080 is served by XDP; each tag reaches its
# backend through run's router; an unknown tag is reset and counted by
# `portmux stats`; a connection spliced before a SIGHUP reload (which swaps
# the tags) keeps its backend and carries data after it, while a new one
# follows the new rules; a reload that removes the frontend closes its
# listener and one that brings it back opens it again; SIGTERM ends run
# with exit 0, the listener gone, nothing pinned (no XDP, no stream
# counters).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PEER=$E2E_LIB_DIR/stream_peer.py

e2e_start ip nc ss python3 timeout

make_ns_var NS pmrs
W=$E2E_WORKDIR
RUNLOG=$W/run.log
CONF=$W/pm.json
log "namespace $NS, portmux $PORTMUX"

# write_config AAA_PORT BBB_PORT [no-streams]: the run config, written by
# rename so run never reads half a file.
write_config() {
    local streams=
    [[ ${3:-} == no-streams ]] || streams='
  {"port": 9000, "protocol": "tcp", "backends": [],
   "validate": {"min_length": 24, "match": [{"offset": 0, "value": "MPLX"}]},
   "route": {"offset": 20, "length": 3, "tags": [
     {"tag": "aaa", "backend": '$1'}, {"tag": "bbb", "backend": '$2'}]}},
  {"port": 9100, "protocol": "tcp", "backends": [5001, 5002], "validate": {"min_length": 1}},'
    printf '{"frontends": [%s\n  {"port": 8080, "protocol": "tcp", "backends": [8081]}]}\n' \
        "$streams" >"$CONF.tmp"
    mv -f "$CONF.tmp" "$CONF"
}
client() {  # client ARGS...: one stream_peer.py client in the namespace
    ip netns exec "$NS" timeout 20 "$E2E_PYTHON" "$PEER" --timeout 8 send "$@"
}
routed_to() {  # routed_to TAG PORT WHAT: a TAG request is echoed by PORT
    local req want out
    req=$(mplex_request "$1")
    want="$2:$req"
    out=$(client 127.0.0.1 9000 "$req" --fin-after ${#want})
    assert_eq "$want" "$(json_field "$out" received_head)" "$3"
}

for port in 5001 5002; do
    start_in_ns "$NS" "$W/echo-$port.log" "$E2E_PYTHON" "$PEER" echo-server "$port" --label
done
start_tcp_reply_backend "$NS" 8081 1 "$W"
wait_until 10 all_ports_listening "$NS" tcp 5001 5002 8081 || die "the backends never all started listening"

write_config 5001 5002
register_detach "$NS" lo
start_portmux_run "$NS" "$RUNLOG" lo --config "$CONF" --mode generic
wait_for_log 30 "$RUNLOG" '^level=info event=streams_applied ports="9000 9100" ' ||
    die "run did not start the stream router: $(cat "$RUNLOG")"
pass "run attached and serves the stream frontend: $(grep -m1 event=attached "$RUNLOG")"
assert_eq 1 "$(log_count "$RUNLOG" '^level=info event=attached iface=lo mode=generic')" "log: one event=attached"
status=$(in_ns "$NS" "$PORTMUX" status lo 2>&1)
assert_match "status lists the XDP frontend 8080" '8080 +tcp' "$status"
assert_no_match "XDP leaves the stream frontend 9000 alone" '9000 +tcp' "$status"
reply=$(ip netns exec "$NS" timeout 5 nc -N 127.0.0.1 8080 <<<"hello-xdp" 2>&1)
assert_eq "backend-8081" "$reply" "plain TCP frontend 8080 balanced by XDP beside the router"

# ------------------------------------------------------------- routing
routed_to aaa 5001 "run's router: tag aaa reaches 5001, echo spliced back"
routed_to bbb 5002 "run's router: tag bbb reaches 5002"
out=$(client 127.0.0.1 9000 "$(mplex_request zzz)")
assert_eq reset "$(json_field "$out" ended)" "unknown tag: connection reset"

# ------------------------------------------------- SIGHUP with a spliced one
req=$(mplex_request aaa)
want="5001:${req}after-reload"
start_two_part_client "$NS" 9000 "$req" after-reload ${#want} 60 old
old_client=$TWO_PART_CLIENT_PID
wait_until 10 test -e "$W/old.first-reply" || fail "the long-lived client got no first reply"
write_config 5002 5001
# The file change may reload run before the signal does: either way two
# more streams_applied lines come, the last one with the swapped tags.
kill -HUP "$RUN_PID"
wait_for_log 10 "$RUNLOG" 'event=reloaded .*trigger=signal' || fail "no reload after SIGHUP"
wait_for_log 10 "$RUNLOG" '^level=info event=streams_applied ports="9000 9100" ' 2 ||
    fail "the router did not take the reloaded rules"
touch "$W/old.go"
wait "$old_client"
out=$(cat "$W/old.json")
assert_eq "$want" "$(json_field "$out" received_head)" \
    "connection spliced before the reload carries data after it, still to 5001"
assert_eq eof "$(json_field "$out" ended)" "and ends with the backend's FIN"
routed_to aaa 5002 "a new connection follows the reloaded rules: aaa -> 5002"
routed_to bbb 5001 "and bbb -> 5001"

# ------------------------------------------ frontend removed, then back
stream_listening() { tcp_port_listening "$NS" 9000; }
stream_not_listening() { ! tcp_port_listening "$NS" 9000; }
applied=$(log_count "$RUNLOG" 'event=streams_applied')
write_config 5001 5002 no-streams
wait_for_log 10 "$RUNLOG" 'event=streams_applied ports="" ' || fail "no streams_applied after removing 9000"
wait_until 5 stream_not_listening
assert_no_match "frontend removed by a reload: nothing listens on 9000" . \
    "$(ip netns exec "$NS" ss -Htln 'sport = :9000')"
write_config 5001 5002
wait_for_log 10 "$RUNLOG" 'event=streams_applied ports="9000 9100" ' $((applied + 1)) ||
    fail "no streams_applied after bringing 9000 back"
assert_ok "frontend back: 9000 listens again" stream_listening
routed_to aaa 5001 "frontend back: aaa -> 5001"

# --------------------------------------------------------------- counters
stats=$(stream_stats "$NS")
# aaa, bbb, zzz, the long-lived aaa, aaa and bbb after the reload, aaa
# after the frontend came back.
assert_eq 7 "$(stream_stat "$stats" 9000 accepted)" "stats: 9000 accepted 7 (counters kept across reloads)"
assert_eq 1 "$(stream_stat "$stats" 9000 refused.unknown_tag)" "stats: 1 refused as unknown_tag"
# The long-lived client spliced at its second flight; the five others sent
# one request, got one reply and half-closed: unspliced.
assert_eq "1 5" "$(stream_stat "$stats" 9000 spliced unspliced)" "stats: 1 spliced, 5 unspliced"

# ------------------------------------------------------ status and drain
status=$(in_ns "$NS" "$PORTMUX" status lo 2>&1)
assert_match "status lists the stream frontend 9000 with its tag targets" \
    '^  9000 +stream +5001, 5002$' "$status"
assert_match "status lists the stream frontend 9100 with its backends" '^  9100 +stream +5001, 5002$' "$status"
assert_match "status says how 9000 decides" 'validate, route; first_data_timeout 5 s' "$status"
json=$(in_ns "$NS" "$PORTMUX" status lo --json 2>&1)
assert_eq "9000 9100" "$("$E2E_PYTHON" -c 'import json, sys; print(*[f["port"] for f in json.load(sys.stdin)["streams"]])' <<<"$json")" \
    "status --json lists the stream frontends"
printf '%s\n' "$json" >"$W/status.json"
assert_ok "status --json is still accepted as a config" "$PORTMUX" check "$W/status.json"

# rr_ports N: the backends of N connections to 9100, in order.
rr_ports() {
    local i out
    for ((i = 0; i < $1; i++)); do
        out=$(client 127.0.0.1 9100 "x$i" --fin-after 7)
        out=$(json_field "$out" received_head)
        printf '%s ' "${out%%:*}"
    done
}
# A connection spliced before the drain: the first to 9100, so to 5001.
start_two_part_client "$NS" 9100 held after-drain 20 60 held
held_client=$TWO_PART_CLIENT_PID
wait_until 10 test -e "$W/held.first-reply" || fail "the held connection got no first reply"
assert_ok "portmux drain lo 5001 (a backend of the stream router only)" in_ns "$NS" "$PORTMUX" drain lo 5001
assert_match "drain changed both stream frontends" 'drained backend 5001 on lo \(2 frontend\(s\) changed\)' "$E2E_LAST_OUTPUT"
assert_match "status marks 5001 drained" '^  9100 +stream +5001 \(drained\), 5002$' "$(in_ns "$NS" "$PORTMUX" status lo 2>&1)"
assert_eq "5002 5002 5002 5002 " "$(rr_ports 4)" "drained: new round-robin connections avoid 5001"
out=$(client 127.0.0.1 9000 "$(mplex_request aaa)")
assert_eq reset "$(json_field "$out" ended)" "drained: a tag routed to 5001 is refused (reset)"
touch "$W/held.go"
wait "$held_client"
out=$(cat "$W/held.json")
assert_eq "5001:heldafter-drain" "$(json_field "$out" received_head)" \
    "a connection spliced to 5001 before the drain carries data after it"
applied=$(log_count "$RUNLOG" 'event=streams_applied')   # counted before the signal
kill -HUP "$RUN_PID"
wait_for_log 10 "$RUNLOG" 'event=streams_applied' $((applied + 1)) || fail "no streams_applied after SIGHUP"
assert_eq "5002 5002 " "$(rr_ports 2)" "the drain is kept across a reload"
assert_ok "portmux undrain lo 5001" in_ns "$NS" "$PORTMUX" undrain lo 5001
assert_eq "5001 5002 " "$(echo $(rr_ports 2 | tr ' ' '\n' | sort) '')" "undrained: 5001 takes connections again"
assert_eq 1 "$(stream_stat "$(stream_stats "$NS")" 9000 refused.backend_refused)" \
    "stats: the drained tag counted as backend_refused"
E2E_EXPECT_RC=1 assert_fails "drain of a port no frontend has fails" in_ns "$NS" "$PORTMUX" drain lo 5999
assert_match "...naming it" 'port 5999 is not a backend of any frontend on lo' "$E2E_LAST_OUTPUT"

# ----------------------------------------------------------------- SIGTERM
kill -TERM "$RUN_PID"
rc=0
wait "$RUN_PID" || rc=$?
assert_eq 0 "$rc" "run exits 0 after SIGTERM"
assert_no_match "nothing listens on 9000 after run stopped" . "$(ip netns exec "$NS" ss -Htln 'sport = :9000')"
assert_no_match "no XDP program left on lo" 'prog/xdp' "$(ip -n "$NS" -d link show lo)"
assert_eq "" "$(ls -A "$E2E_BPFFS" | grep -v -e '\.debug$' -e '^xdp$')" \
    "no pins left in bpffs (neither portmux nor portmux-stream)"
assert_eq 0 "$(log_count "$RUNLOG" '^level=error')" "no error logged"
finish
