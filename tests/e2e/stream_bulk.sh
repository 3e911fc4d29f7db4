#!/usr/bin/env bash
# e2e: bulk transfers through the stream router's sockmap splice.
# e2e-timeout: 240
#
# One frontend, 9000, routes by a 3-byte tag at offset 20 (aaa -> 5001,
# bbb -> 5002, ccc -> 5003). Backends are stream_peer.py bulk servers.
#
# Checks:
#   - 1 GiB client -> backend, then 1 GiB backend -> client: the receiver
#     gets exactly what was sent (size and sha256) and the sender's FIN only
#     after the last byte (the router passes a FIN on only once every
#     redirected byte is in the peer's send queue); the stats count every
#     byte, and the log says how many the router copied itself (bytes it
#     held under backpressure: a Python reader is slower than its writer).
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

require_root
trap e2e_cleanup EXIT
e2e_setup
require_tools ip ss python3 timeout
require_portmux

make_ns_var NS pmbulk
CONFIG=$E2E_WORKDIR/stream.json
cat >"$CONFIG" <<'JSON'
{"frontends": [{"port": 9000, "protocol": "tcp", "backends": [],
  "validate": {"min_length": 24, "match": [{"offset": 0, "value": "MPLX"}]},
  "route": {"offset": 20, "length": 3, "tags": [
    {"tag": "aaa", "backend": 5001}, {"tag": "bbb", "backend": 5002}, {"tag": "ccc", "backend": 5003}]}}]}
JSON
ROUTER_LOG=$E2E_WORKDIR/router.log
start_stream_router "$NS" "$CONFIG" "$ROUTER_LOG"
ROUTER=$E2E_STREAM_ROUTER_PID
wait_for_stream_router "$ROUTER_LOG" || die "the stream router did not start: $(cat "$ROUTER_LOG")"

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

# ---------------------------------------------------- 1 GiB, one way at a time
# Concurrent 1 GiB both ways duplicated a 64 KiB skb in about 1 of 10 runs
# on kernel 6.18, with the router's backpressure disabled too (it never
# holds, never copies): see docs/design.md. Until that is understood, each
# direction is checked on its own, where 0 of 30 runs went wrong.
EMPTY_SHA=$(printf '' | sha256sum | cut -d' ' -f1)
# bulk_one_way TAG PORT UP DOWN: the client sends UP bytes (after its 24
# first bytes), the backend DOWN; reports in ONE_WAY_CLIENT and
# ONE_WAY_SERVER. The client half-closes last: a client that half-closes
# before the router splices it is served by splice(2) instead.
bulk_one_way() {
    local tag=$1 port=$2 up=$3 down=$4 name=oneway-$2
    bulk_server "$port" "$name" "$down"
    local client_report
    client_report=$(bulk_client "$tag" "$up" --fin-last)
    wait "$BULK_SERVER_PID"
    ONE_WAY_CLIENT=$client_report
    ONE_WAY_SERVER=$(cat "$E2E_WORKDIR/$name.json")
}
copied() { stream_stat "$(stream_stats "$NS")" 9000 "backend.$1.copied_to_$2"; }

spliced_before=$(stream_stat "$(stream_stats "$NS")" 9000 spliced)
bulk_one_way aaa 5001 "$GIB" 0
client=$ONE_WAY_CLIENT server=$ONE_WAY_SERVER
log "1 GiB client -> backend in $(field "$client" seconds) s"
assert_eq $((GIB + 24)) "$(field "$server" received)" "backend received 1 GiB and the 24 first bytes"
assert_eq "$(field "$client" sent_sha256)" "$(field "$server" received_sha256)" \
    "client -> backend: sha256 equal"
assert_eq "0 $EMPTY_SHA" "$(field "$client" received) $(field "$client" received_sha256)" \
    "the client received nothing: the backend sent nothing"
assert_eq eof "$(field "$client" ended)" "the client got the backend's FIN"
assert_eq eof "$(field "$server" ended)" "the backend got the client's FIN after the last byte"
stats=$(stream_stats "$NS")
assert_eq $((GIB + 24)) "$(stream_stat "$stats" 9000 backend.5001.bytes_to_backend)" \
    "every byte to the backend counted (the verdict program's and any the router copied)"
log "of them the router copied $(copied 5001 backend) itself (held under backpressure)"

bulk_one_way bbb 5002 0 "$GIB"
client=$ONE_WAY_CLIENT server=$ONE_WAY_SERVER
log "1 GiB backend -> client in $(field "$client" seconds) s"
assert_eq "$GIB" "$(field "$client" received)" "client received 1 GiB"
assert_eq "$(field "$server" sent_sha256)" "$(field "$client" received_sha256)" \
    "backend -> client: sha256 equal"
assert_eq eof "$(field "$client" ended)" "the client got the backend's FIN after the last byte"
assert_eq 24 "$(field "$server" received)" "the backend received the 24 first bytes only"
stats=$(stream_stats "$NS")
assert_eq "$GIB" "$(stream_stat "$stats" 9000 backend.5002.bytes_to_client)" \
    "every byte to the client counted (the verdict program's and any the router copied)"
log "of them the router copied $(copied 5002 client) itself (held under backpressure)"
assert_eq $((spliced_before + 2)) "$(stream_stat "$stats" 9000 spliced)" \
    "both went through the sockmap (not the splice(2) fallback)"

if [[ ${STREAM_BULK_BOTH_WAYS:-0} == 1 ]]; then
    # The known problem in docs/design.md: 1 GiB both ways at once.
    bulk_server 5003 both "$GIB"
    client=$(bulk_client ccc "$GIB")
    wait "$BULK_SERVER_PID"
    server=$(cat "$E2E_WORKDIR/both.json")
    assert_eq "$(field "$client" sent_sha256) $((GIB + 24))" \
        "$(field "$server" received_sha256) $(field "$server" received)" \
        "both ways at once: client -> backend intact"
    assert_eq "$(field "$server" sent_sha256) $GIB" \
        "$(field "$client" received_sha256) $(field "$client" received)" \
        "both ways at once: backend -> client intact"
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
bytes_before=$(stream_stat "$(stream_stats "$NS")" 9000 backend.5001.bytes_to_backend)
bulk_client aaa "$WANT" >"$E2E_WORKDIR/slow-client.json" &
slow_client=$!
moved() { echo $(($(stream_stat "$(stream_stats "$NS")" 9000 backend.5001.bytes_to_backend) - bytes_before)); }
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
