#!/usr/bin/env bash
# e2e: the stream router's splice(2) fallback, and the line `portmux run`
# logs when the sockmap self-test fails, on a namespace's lo (generic XDP).
#
# PORTMUX_TEST_SOCKMAP_PROBE=fail (sockmap_probe.hpp) makes the router's
# self-test count as failed, as on a kernel without the sockmap FIN fix
# (before Linux 6.4): the router then relays every connection with
# splice(2) through a pipe per direction. Without the hook a connection
# reaches the fallback only when its client's FIN races the insertion.
# Frontend: the mplex case (MPLX_FRONTEND in lib.sh); backends are
# stream_peer.py bulk servers, for IPv4 clients on 127.0.0.1, for IPv6
# ones on ::1.
#
# Checks: the log has exactly one line about the self-test, and it is
# exactly the logfmt line naming the kernel and the feature, the reason and
# relay=splice; 1 MiB each way at once on one connection, IPv4 then IPv6:
# each receiver gets exactly what was sent (size and sha256) and then the
# sender's FIN; stats count both connections as fallback (none spliced)
# and every byte each way as copied by the router; run closes every socket
# and pipe it opened for them; SIGTERM ends run with exit 0.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PEER=$E2E_LIB_DIR/stream_peer.py
MIB=$((1 << 20))

e2e_start ip ss python3 timeout uname
make_ns_var NS pmsfb
W=$E2E_WORKDIR
RUNLOG=$W/run.log
CONF=$W/pm.json
printf '{"frontends": [%s]}\n' "$MPLX_FRONTEND" >"$CONF"

register_detach "$NS" lo
PORTMUX_TEST_SOCKMAP_PROBE=fail start_portmux_run "$NS" "$RUNLOG" lo --config "$CONF" --mode generic
wait_for_log 30 "$RUNLOG" '^level=info event=streams_applied ports=9000 ' ||
    die "run did not start the stream router: $(cat "$RUNLOG")"
pass "run serves the stream frontend: $(grep -m1 event=streams_applied "$RUNLOG")"

# ------------------------------------------------------------ the log line
feature='"sockmap sk_skb stream verdict FIN handling (Linux 6.4)"'
reason='"failure injected by PORTMUX_TEST_SOCKMAP_PROBE"'
assert_eq 1 "$(log_count "$RUNLOG" sockmap)" "one line about the sockmap self-test"
assert_eq "level=warning event=sockmap_self_test_failed kernel=$(uname -r) feature=$feature reason=$reason relay=splice" \
    "$(grep sockmap "$RUNLOG")" "the line names the kernel, the feature, the reason and relay=splice (logfmt)"

# ------------------------------------------------------------ 1 MiB each way
# both_ways HOST TAG PORT WHAT: one connection from HOST to 9000, routed by
# TAG to the bulk server on HOST PORT, 1 MiB each way at once, both sides
# half-closing after their last byte.
both_ways() {
    local host=$1 tag=$2 port=$3 what=$4 server client
    rm -f "$W/server-$port.ready"
    start_in_ns "$NS" "$W/server-$port.json" "$E2E_PYTHON" "$PEER" --timeout 30 \
        bulk-server "$port" "$MIB" --host "$host" --ready "$W/server-$port.ready"
    wait_until 10 test -e "$W/server-$port.ready" || die "bulk server $port did not start"
    client=$(ip netns exec "$NS" timeout 60 "$E2E_PYTHON" "$PEER" --timeout 30 bulk-client \
        "$host" 9000 "MPLX0123456789abcdef$tag!" "$MIB")
    wait_until 30 grep -qs sent_sha256 "$W/server-$port.json" || fail "$what: the bulk server never reported"
    server=$(cat "$W/server-$port.json")
    assert_eq "$(json_field "$client" sent) $(json_field "$client" sent_sha256) eof" \
        "$(json_field "$server" received) $(json_field "$server" received_sha256) $(json_field "$server" ended)" \
        "$what: the backend got exactly the client's $((MIB + 24)) bytes (sha256), then its FIN"
    assert_eq "$MIB $(json_field "$server" sent_sha256) eof" \
        "$(json_field "$client" received) $(json_field "$client" received_sha256) $(json_field "$client" ended)" \
        "$what: the client got exactly the backend's $MIB bytes (sha256), then its FIN"
}
fds_idle=$(ls "/proc/$RUN_PID/fd" | wc -l)
both_ways 127.0.0.1 aaa 5001 "IPv4 through the splice(2) fallback"
both_ways ::1 bbb 5002 "IPv6 through the splice(2) fallback"

# --------------------------------------------------------------- counters
stats=$(stream_stats "$NS")
assert_eq "2 0 2" \
    "$(stream_stat "$stats" 9000 accepted spliced fallback)" \
    "stats: 2 accepted, none spliced, both through the fallback"
for port in 5001 5002; do
    counted=
    for field in connections bytes_to_backend copied_to_backend bytes_to_client copied_to_client; do
        counted+="$(stream_stat "$stats" 9000 "backend.$port.$field") "
    done
    assert_eq "1 $((MIB + 24)) $((MIB + 24)) $MIB $MIB " "$counted" \
        "stats: backend $port, 1 connection, every byte each way copied by the router"
done
run_fds() { ls "/proc/$RUN_PID/fd" | wc -l; }
run_idle() { (($(run_fds) == fds_idle)); }
wait_until 5 run_idle
assert_eq "$fds_idle" "$(run_fds)" "run closed every socket and pipe of both connections"

# ----------------------------------------------------------------- SIGTERM
kill -TERM "$RUN_PID"
rc=0
wait "$RUN_PID" || rc=$?
assert_eq 0 "$rc" "run exits 0 after SIGTERM"
assert_eq 0 "$(log_count "$RUNLOG" '^level=error')" "no error logged"
finish
