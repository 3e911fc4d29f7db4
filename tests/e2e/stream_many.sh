#!/usr/bin/env bash
# e2e: the stream router under many connections, on a namespace's loopback.
# e2e-timeout: 600
#
# One frontend, 9000, routes by a 3-byte tag at offset 20 (aaa -> 5001,
# bbb -> 5002, ccc -> 5003). Client and backends are portmux_stream_load
# (tests/stream_load): the backends echo, each client connection sends its
# 24-byte header and reads its echo, then bytes unique to it and reads
# exactly those back (a second flight: the router copied the first echo
# and splices the connection now), half-closes and reads the backend's FIN.
#
# Checks:
#   - the router's sockmap self-test (sockmap_probe.hpp) passes on this kernel;
#   - 100,000 connections one after another all get exactly their bytes
#     back; the router's open descriptors, sampled every 10,000
#     connections, never exceed idle + 2 (the one connection in flight) and
#     are back at idle afterwards; its resident memory grows by at most
#     1 MiB between the 10,000th and the 100,000th connection (a leaked
#     Connection would be hundreds of bytes each: tens of MB); all 100,000
#     were spliced by sockmap and none fell back (the sockhash holds 65,536
#     sockets: entries that were not removed would make later insertions
#     fail), and each backend got its third, counted by the router and by
#     the backends;
#   - 1,000 connections open at once, each with 64 KiB of its own bytes:
#     while all of them hold, the router has exactly idle + 2,000
#     descriptors; then every one gets exactly its bytes and a FIN, all
#     1,000 were spliced (the second half of their bytes is a second
#     flight), and the router is back at idle.
# The client has its own time limit, far above the ~15 s the 100,000 take
# on an idle machine (183 s measured at load 8-10), so a loaded machine passes too.
set -uo pipefail
E2E_TIME_LIMIT=${E2E_TIME_LIMIT:-560}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SEQUENTIAL=100000
CONCURRENT=1000

e2e_start ip ss python3 timeout
require_stream_load

make_ns_var NS pmmany
CONFIG=$E2E_WORKDIR/stream.json
printf '{"frontends": [%s]}\n' "$MPLX_FRONTEND" >"$CONFIG"

ECHO_OUT=$E2E_WORKDIR/echo.json
start_in_ns "$NS" "$ECHO_OUT" "$PORTMUX_STREAM_LOAD" echo-server --ready "$E2E_WORKDIR/echo.ready" \
    5001 5002 5003
ECHO_PID=$!
wait_until 10 test -e "$E2E_WORKDIR/echo.ready" || die "the echo backends did not start: $(cat "$ECHO_OUT")"

ROUTER_LOG=$E2E_WORKDIR/router.log
serve_streams "$NS" "$CONFIG" "$ROUTER_LOG"
ROUTER=$E2E_STREAM_ROUTER_PID
fds_idle=$(ls "/proc/$ROUTER/fd" | wc -l)
log "router pid $ROUTER, $fds_idle descriptors idle"
assert_no_match "the router's sockmap self-test passed (no line about it)" 'sockmap_self_test' "$(cat "$ROUTER_LOG")"

# per_port COUNT TAG_INDEX: how many of COUNT connections carry tag TAG_INDEX
# (connection I of each run carries tag I % 3).
per_port() { echo $(($1 / 3 + ($1 % 3 > $2))); }
router_fds() { ls "/proc/$ROUTER/fd" | wc -l; }
router_fds_are() { (($(router_fds) == $1)); }

# ------------------------------------------------------ 100,000 one by one
out=$(ip netns exec "$NS" "$PORTMUX_STREAM_LOAD" sequential 127.0.0.1 9000 "$SEQUENTIAL" "${MPLX_HEADERS[@]}" \
    --payload 64 --watch-pid "$ROUTER" --samples 10 --time-limit 480)
log "sequential: ${out:0:400}"
assert_eq "$SEQUENTIAL" "$(json_field "$out" ok)" "$SEQUENTIAL sequential connections got exactly their bytes and a FIN"
assert_eq 0 "$(json_field "$out" failed)" "no sequential connection failed"
read -r samples max_fds first_rss last_rss < <("$E2E_PYTHON" -c '
import json, sys
s = json.loads(sys.argv[1])["samples"]
print(len(s), max(x[1] for x in s), s[0][2], s[-1][2])' "$out")
log "router samples: $samples, most descriptors $max_fds, VmRSS $first_rss kB at 10% -> $last_rss kB at 100%"
assert_eq 10 "$samples" "the router was sampled every $((SEQUENTIAL / 10)) connections"
((max_fds <= fds_idle + 2)) && pass "router descriptors stayed flat (at most $max_fds, idle $fds_idle)" ||
    fail "router descriptors grew: $max_fds sampled, $fds_idle idle"
wait_until 5 router_fds_are "$fds_idle"
assert_eq "$fds_idle" "$(router_fds)" "router back at its idle descriptors after $SEQUENTIAL connections"
((last_rss - first_rss <= 1024)) &&
    pass "router memory flat: VmRSS $first_rss -> $last_rss kB over $((SEQUENTIAL * 9 / 10)) connections" ||
    fail "router memory grew: VmRSS $first_rss -> $last_rss kB"

stats=$(stream_stats "$NS")
assert_eq "$SEQUENTIAL" "$(stream_stat "$stats" 9000 accepted)" "router accepted $SEQUENTIAL"
assert_eq "$SEQUENTIAL" "$(stream_stat "$stats" 9000 spliced)" "all $SEQUENTIAL spliced by sockmap"
assert_eq 0 "$(stream_stat "$stats" 9000 fallback)" "none fell back to splice(2): the sockhash entries were freed"
assert_eq "$(per_port $SEQUENTIAL 0) $(per_port $SEQUENTIAL 1) $(per_port $SEQUENTIAL 2)" \
    "$(stream_stat "$stats" 9000 backend.5001.connections backend.5002.connections backend.5003.connections)" \
    "routed by tag: 5001 5002 5003 got their thirds"

# ------------------------------------------------------- 1,000 at once
rm -f "$E2E_WORKDIR/hold" "$E2E_WORKDIR/release"
ip netns exec "$NS" "$PORTMUX_STREAM_LOAD" concurrent 127.0.0.1 9000 "$CONCURRENT" "${MPLX_HEADERS[@]}" \
    --payload 65536 --hold-file "$E2E_WORKDIR/hold" --release-file "$E2E_WORKDIR/release" \
    --time-limit 120 >"$E2E_WORKDIR/concurrent.json" 2>&1 &
concurrent_pid=$!
E2E_PIDS+=("$concurrent_pid")
wait_until 120 test -e "$E2E_WORKDIR/hold" || fail "the $CONCURRENT connections never all got their first echo"
assert_eq $((fds_idle + 2 * CONCURRENT)) "$(router_fds)" \
    "$CONCURRENT connections open at once: the router holds 2 descriptors each"
touch "$E2E_WORKDIR/release"
wait "$concurrent_pid"
out=$(cat "$E2E_WORKDIR/concurrent.json")
log "concurrent: ${out:0:400}"
assert_eq "$CONCURRENT" "$(json_field "$out" ok)" "$CONCURRENT concurrent connections got exactly their 64 KiB and a FIN"
assert_eq "$((SEQUENTIAL + CONCURRENT)) 0 0" "$(stream_stat "$(stream_stats "$NS")" 9000 spliced fallback unspliced)" \
    "all $CONCURRENT spliced (at their second half, if not before), none fell back"
wait_until 5 router_fds_are "$fds_idle"
assert_eq "$fds_idle" "$(router_fds)" "router back at its idle descriptors"

# ------------------------------------------------------------- backends
kill -TERM "$ECHO_PID"
wait "$ECHO_PID"
echo_report=$(cat "$ECHO_OUT")
assert_eq "$(($(per_port $SEQUENTIAL 0) + $(per_port $CONCURRENT 0))) $(($(per_port $SEQUENTIAL 1) + $(per_port $CONCURRENT 1))) $(($(per_port $SEQUENTIAL 2) + $(per_port $CONCURRENT 2)))" "$("$E2E_PYTHON" -c '
import json, sys
c = json.loads(sys.argv[1])["connections"]
print(c.get("5001", 0), c.get("5002", 0), c.get("5003", 0))' "$echo_report")" \
    "the backends accepted exactly the routed connections"
assert_eq 0 "$(stream_stat "$(stream_stats "$NS")" 9000 refused.backend_refused)" "no backend refusal"

finish
