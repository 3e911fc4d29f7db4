#!/usr/bin/env bash
# e2e: the stream router's half-closed and speak-first cases, on a
# namespace's loopback (`portmux serve-streams`, no XDP).
#
# The router asks no TCP_INFO of a backend before it inserts it in the
# sockhash: the kernel refuses a socket that is not ESTABLISHED, and a
# backend that already closed its side (CLOSE_WAIT) then goes to the
# splice(2) fallback; one whose connect() still goes on gets the first bytes
# and the insertion once it is writable (EPOLLOUT). A client that already
# sent its FIN is still checked before any insertion. And a backend that
# speaks first may send before the client is in the sockhash: the verdict
# program passes those bytes and the
# router forwards them before it lets the program redirect again. Which of
# these paths a backend's first bytes take depends on microseconds, so each
# case runs several times and every run must give exactly the right bytes.
#
# Frontend: the mplex case (MPLX_FRONTEND in lib.sh). Backends are
# stream_peer.py echo servers: 5001 greets "HELLO" then echoes, 5002 sends
# "BYE" and half-closes at once, 5003 echoes after "5003:". A second
# frontend, 9001, routes "SLOW" to 5004, a backend whose accept queue is
# full until the kernel has dropped the router's SYN.
#
# Checks: 10 connections one after another to 5001 each get exactly the
# greeting then their echo, and a FIN after theirs; 10 to 5002 each get
# exactly "BYE" and the backend's FIN before their own; 3 clients sending
# their request and FIN in one segment are served through the fallback
# (exact echo, then FIN) and counted as fallback; stats count every
# connection as spliced, fallback or unspliced and none refused, and the
# bytes to each backend and back exactly; a connection whose backend SYN
# was dropped (the router's connect() pending until its retransmission,
# 1 s) gets exactly its echo, then the echo of a second flight that splices
# it, and a FIN; the router is back at its idle descriptors.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PEER=$E2E_LIB_DIR/stream_peer.py
RUNS=10
GREETING=HELLO
GOODBYE=BYE

e2e_start ip ss python3 timeout
make_ns_var NS pmshc
CONFIG=$E2E_WORKDIR/stream.json
SLOW_FRONTEND='{"port": 9001, "protocol": "tcp", "backends": [],
  "route": {"offset": 0, "length": 4, "tags": [{"tag": "SLOW", "backend": 5004}]}}'
printf '{"frontends": [%s, %s]}\n' "$MPLX_FRONTEND" "$SLOW_FRONTEND" >"$CONFIG"

start_in_ns "$NS" "$E2E_WORKDIR/echo-5001.log" "$E2E_PYTHON" "$PEER" echo-server 5001 --greet "$GREETING"
start_in_ns "$NS" "$E2E_WORKDIR/echo-5002.log" "$E2E_PYTHON" "$PEER" echo-server 5002 --greet "$GOODBYE" --greet-fin
start_in_ns "$NS" "$E2E_WORKDIR/echo-5003.log" "$E2E_PYTHON" "$PEER" echo-server 5003 --label
wait_until 10 all_ports_listening "$NS" tcp 5001 5002 5003 || die "the backends never all started listening"

ROUTER_LOG=$E2E_WORKDIR/router.log
serve_streams "$NS" "$CONFIG" "$ROUTER_LOG"
ROUTER=$E2E_STREAM_ROUTER_PID
router_fds() { ls "/proc/$ROUTER/fd" | wc -l; }
router_fds_are() { (($(router_fds) == $1)); }
fds_idle=$(router_fds)

sequential() {  # sequential TAG ARGS...: RUNS connections one after another to 9000
    ip netns exec "$NS" timeout 60 "$E2E_PYTHON" "$PEER" --timeout 8 sequential 127.0.0.1 9000 "$RUNS" \
        "$(mplex_request "$1")" "${@:2}"
}

# ------------------------------------------------------ speaking first
out=$(sequential aaa --greeting "$GREETING")
assert_eq "$RUNS" "$(json_field "$out" ok)" \
    "backend speaking first: $RUNS connections each got exactly its greeting, then their echo, then a FIN"
out=$(sequential bbb --greeting "$GOODBYE" --greet-fin)
assert_eq "$RUNS" "$(json_field "$out" ok)" \
    "backend greeting and half-closing at once: $RUNS connections each got exactly its bytes and its FIN first"

# ----------------------------------------------- half-closed client
req=$(mplex_request ccc)
for run in 1 2 3; do
    out=$(ip netns exec "$NS" timeout 20 "$E2E_PYTHON" "$PEER" --timeout 8 send 127.0.0.1 9000 "$req" --with-fin)
    assert_eq "5003:$req eof" "$(json_field "$out" received_head) $(json_field "$out" ended)" \
        "request and FIN in one segment ($run/3): exact echo, then FIN"
done

# ------------------------------------------------- backend still connecting
# The router's connect() returns EINPROGRESS and its first send() EAGAIN:
# the sockets' insertion waits for the backend's EPOLLOUT.
LATE_READY=$E2E_WORKDIR/late.ready
start_in_ns "$NS" "$E2E_WORKDIR/late-5004.log" "$E2E_PYTHON" "$PEER" --timeout 10 \
    late-accept-server 5004 --ready "$LATE_READY"
wait_until 10 test -e "$LATE_READY" || die "the late-accepting backend never started"
slow_req="SLOW request to a backend still connecting"
slow_more=", and a second flight once the echo came"
# The second part goes once the first reply is there: the router copied
# that reply and splices the connection at this second flight.
out=$(ip netns exec "$NS" timeout 30 "$E2E_PYTHON" "$PEER" --timeout 15 send 127.0.0.1 9001 "$slow_req" \
    --first-reply-file "$E2E_WORKDIR/slow.first" --second "$slow_more" --second-when "$E2E_WORKDIR/slow.first" \
    --fin-after $((${#slow_req} + ${#slow_more})))
assert_eq "$slow_req$slow_more eof" "$(json_field "$out" received_head) $(json_field "$out" ended)" \
    "backend SYN dropped, connect() pending: exact echo of both flights, then FIN"
assert_eq True "$(json_field "$(head -1 "$E2E_WORKDIR/late-5004.log")" syn_dropped)" \
    "the router's SYN to 5004 was dropped (its connect() was pending)"
stats=$(stream_stats "$NS")
slow_total=$((${#slow_req} + ${#slow_more}))
assert_eq "1 1 0 $slow_total $slow_total ${#slow_req} ${#slow_req}" \
    "$(stream_stat "$stats" 9001 accepted spliced fallback backend.5004.bytes_to_backend backend.5004.bytes_to_client backend.5004.copied_to_backend backend.5004.copied_to_client)" \
    "9001: the connection spliced at its second flight, its bytes counted once each way, the first flight each way copied by the router"

# --------------------------------------------------------------- counters
stats=$(stream_stats "$NS")
total=$((2 * RUNS + 3))
read -r spliced fallback unspliced <<<"$(stream_stat "$stats" 9000 spliced fallback unspliced)"
assert_eq "$total $total" "$(stream_stat "$stats" 9000 accepted) $((spliced + fallback + unspliced))" \
    "all $total accepted and served: $spliced spliced, $fallback through the fallback, $unspliced unspliced"
((fallback >= 3)) && pass "the 3 half-closed clients went through the fallback ($fallback in all)" ||
    fail "the 3 half-closed clients went through the fallback: only $fallback did"
for reason in too_short timeout magic_mismatch unknown_tag backend_refused; do
    assert_eq 0 "$(stream_stat "$stats" 9000 "refused.$reason")" "none refused as $reason"
done
aaa=$(mplex_request aaa) bbb=$(mplex_request bbb)
assert_eq "$((RUNS * ${#aaa})) $((RUNS * (${#GREETING} + ${#aaa})))" \
    "$(stream_stat "$stats" 9000 backend.5001.bytes_to_backend backend.5001.bytes_to_client)" \
    "5001: every request counted once to the backend, every greeting and echo once back"
assert_eq "$((RUNS * ${#bbb})) $((RUNS * ${#GOODBYE}))" \
    "$(stream_stat "$stats" 9000 backend.5002.bytes_to_backend backend.5002.bytes_to_client)" \
    "5002: every request counted once to the backend, every goodbye once back"
assert_eq "$((3 * ${#req})) $((3 * (5 + ${#req})))" \
    "$(stream_stat "$stats" 9000 backend.5003.copied_to_backend backend.5003.copied_to_client)" \
    "5003: the half-closed clients' bytes each way copied by the fallback"

wait_until 5 router_fds_are "$fds_idle"
assert_eq "$fds_idle" "$(router_fds)" "router back at its idle descriptors"
finish
