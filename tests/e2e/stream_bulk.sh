#!/usr/bin/env bash
# e2e: bulk transfers through the stream router's sockmap splice.
# e2e-timeout: 240
#
# One frontend, 9000, routes by a 3-byte tag at offset 20 (aaa -> 5001,
# bbb -> 5002, ccc -> 5003). Backends are stream_peer.py bulk servers.
#
# Checks:
#   - 1 GiB each way at once on one connection: each receiver gets exactly
#     what was sent (size and sha256) and the sender's FIN only after the
#     last byte (the router passes a FIN on only once every redirected byte
#     is in the peer's send queue); the stats count every byte once; the
#     router's rchar grows only by the bytes it copied itself (held under
#     backpressure), which the log reports with the overlaps trimmed.
#   - a client RST in the middle of a transfer reaches the backend as a RST;
#   - a backend RST in the middle of a transfer reaches the client as a RST;
#   - a backend that reads nothing holds the client back: the bytes moved
#     toward it stop growing far below what the client wants to send (the
#     router holds the client's socket: its data stays there and TCP's
#     window stops the client; nothing buffered without bound), and once
#     the backend reads, everything arrives intact.
set -uo pipefail
E2E_TIME_LIMIT=${E2E_TIME_LIMIT:-220}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PEER=$E2E_LIB_DIR/stream_peer.py
GIB=$((1 << 30))

e2e_start ip ss python3 timeout

make_ns_var NS pmbulk
CONFIG=$E2E_WORKDIR/stream.json
printf '{"frontends": [%s]}\n' "$MPLX_FRONTEND" >"$CONFIG"
ROUTER_LOG=$E2E_WORKDIR/router.log
serve_streams "$NS" "$CONFIG" "$ROUTER_LOG"
ROUTER=$E2E_STREAM_ROUTER_PID

# bulk_server PORT NAME ARGS...: a one-connection bulk server, report in NAME.json.
bulk_server() {
    local port=$1 name=$2
    shift 2
    rm -f "$E2E_WORKDIR/$name.ready"
    start_in_ns "$NS" "$E2E_WORKDIR/$name.json" "$E2E_PYTHON" "$PEER" --timeout 60 \
        bulk-server "$port" "$@" --ready "$E2E_WORKDIR/$name.ready"
    BULK_SERVER_PID=$!
    wait_until 10 test -e "$E2E_WORKDIR/$name.ready" || die "bulk server $name did not start"
}
bulk_client() {  # bulk_client TAG BYTES ARGS...
    local tag=$1 bytes=$2
    shift 2
    ip netns exec "$NS" timeout 120 "$E2E_PYTHON" "$PEER" --timeout 60 bulk-client 127.0.0.1 9000 \
        "MPLX0123456789abcdef${tag}!" "$bytes" "$@"
}
field() { json_field "$1" "$2"; }

# ---------------------------------------------------- 1 GiB both ways at once
# The client sends 1 GiB (after its 24 first bytes) while the backend sends
# 1 GiB back, on one connection that stays open while both send; each
# half-closes after its last byte and reads until the other's FIN.
# Until the verdict program cut repeated heads off retransmitted segments
# (sockmap/stream_verdict.bpf.c, docs/design.md "Retransmitted overlaps"),
# a 64 KiB segment arrived twice in about 1 run of 10 under load.
# stat0 STATS FIELD: a counter of frontend 9000, 0 before it exists.
stat0() {
    local value
    value=$(stream_stat "$1" 9000 "$2")
    [[ $value == missing ]] && value=0
    echo "$value"
}
copied() { stat0 "$1" "backend.5003.copied_to_$2"; }
stats_before=$(stream_stats "$NS")
rchar_before=$(proc_io_rchar "$ROUTER")
bulk_server 5003 both "$GIB"
client=$(bulk_client ccc "$GIB")
wait "$BULK_SERVER_PID"
server=$(cat "$E2E_WORKDIR/both.json")
rchar_after=$(proc_io_rchar "$ROUTER")
stats=$(stream_stats "$NS")
log "1 GiB each way at once in $(field "$client" seconds) s"
assert_eq "$(field "$client" sent_sha256) $((GIB + 24))" \
    "$(field "$server" received_sha256) $(field "$server" received)" \
    "client -> backend: 1 GiB and the 24 first bytes, sha256 equal"
assert_eq "$(field "$server" sent_sha256) $GIB" \
    "$(field "$client" received_sha256) $(field "$client" received)" \
    "backend -> client: 1 GiB, sha256 equal"
assert_eq "eof eof" "$(field "$server" ended) $(field "$client" ended)" \
    "each side got the other's FIN after the last byte"
delta() { echo $(($(stat0 "$stats" "$1") - $(stat0 "$stats_before" "$1"))); }
assert_eq "$((GIB + 24)) $GIB" "$(delta backend.5003.bytes_to_backend) $(delta backend.5003.bytes_to_client)" \
    "every byte counted once each way (the verdict program's and any the router copied)"
assert_eq 1 "$(delta spliced)" "the connection went through the sockmap (not the splice(2) fallback)"
copied_up=$(($(copied "$stats" backend) - $(copied "$stats_before" backend)))
copied_down=$(($(copied "$stats" client) - $(copied "$stats_before" client)))
log "the router copied $copied_up + $copied_down of the 2 GiB itself (held under backpressure);" \
    "its rchar grew by $((rchar_after - rchar_before)); overlaps trimmed: $(delta backend.5003.overlaps_trimmed)"
if ((rchar_after - rchar_before <= copied_up + copied_down + (1 << 20))); then
    pass "the router read only the bytes it held back itself (rchar +$((rchar_after - rchar_before)))"
else
    fail "the router read $((rchar_after - rchar_before)) bytes, more than the $((copied_up + copied_down)) it copied"
fi

# ------------------------------------------------------------------- resets
MIB=$((1 << 20))
bulk_server 5002 client-rst $((256 * MIB))
client=$(bulk_client bbb $((256 * MIB)) --reset-after $((16 * MIB)))
wait "$BULK_SERVER_PID"
server=$(cat "$E2E_WORKDIR/client-rst.json")
assert_eq "reset sent" "$(field "$client" ended)" "the client reset its connection after 16 MiB"
# The RST is reported once: to the backend's reading or its sending thread.
assert_match "the client's RST reached the backend" 'reset|Connection reset by peer' \
    "$(field "$server" ended) $(field "$server" send)"

bulk_server 5003 backend-rst $((256 * MIB)) --reset-after $((16 * MIB))
client=$(bulk_client ccc $((256 * MIB)))
wait "$BULK_SERVER_PID"
assert_match "the backend's RST reached the client" 'reset|Connection reset by peer' \
    "$(field "$client" ended) $(field "$client" send)"

# ------------------------------------------------------------- backpressure
WANT=$((512 * MIB))
bulk_server 5001 slow 0 --read-when "$E2E_WORKDIR/read-now"
bytes_before=$(stat0 "$(stream_stats "$NS")" backend.5001.bytes_to_backend)
bulk_client aaa "$WANT" >"$E2E_WORKDIR/slow-client.json" &
slow_client=$!
moved() { echo $(($(stat0 "$(stream_stats "$NS")" backend.5001.bytes_to_backend) - bytes_before)); }
# Until the moved bytes hold still for a second (the client is blocked).
stalled() {
    local first second
    first=$(moved)
    sleep 1
    second=$(moved)
    ((second == first && second > 0))
}
wait_until 30 stalled
held=$(moved)
log "with the backend not reading, the verdict program moved $held of $WANT bytes, then stopped"
if ((held < 64 * MIB)); then
    pass "a backend that reads nothing holds the client back ($held bytes moved, bound 64 MiB)"
else
    fail "the router moved $held bytes toward a backend that reads nothing: no backpressure"
fi
touch "$E2E_WORKDIR/read-now"
wait "$slow_client"
wait "$BULK_SERVER_PID"
client=$(cat "$E2E_WORKDIR/slow-client.json")
server=$(cat "$E2E_WORKDIR/slow.json")
assert_eq "$(field "$client" sent_sha256)" "$(field "$server" received_sha256)" \
    "after the slow backend started reading, all $WANT bytes arrived intact"

finish
