#!/usr/bin/env bash
# e2e: bulk transfers through the stream router's sockmap splice.
# e2e-timeout: 240
#
# One frontend, 9000, routes by a 3-byte tag at offset 20 (aaa -> 5001,
# bbb -> 5002, ccc -> 5003). Backends are stream_peer.py bulk servers.
#
# Checks:
#   - 1 GiB each way at once: both ends receive exactly what the other sent
#     (sizes and sha256), both see the other's FIN only after the last byte
#     (the router passes a FIN on only once every redirected byte is in the
#     peer's send queue), and the router's own read bytes (/proc/PID/io
#     rchar) do not grow: no byte of the stream went through user space
#     (the first bytes are only peeked). The client keeps the connection
#     open while it sends. The verdict program counted every byte.
#   - a client RST in the middle of a transfer reaches the backend as a RST;
#   - a backend RST in the middle of a transfer reaches the client as a RST;
#   - a backend that reads nothing holds the client back: the bytes the
#     verdict program has moved stop growing far below what the client
#     wants to send (backpressure, nothing buffered without bound), and
#     once the backend reads, everything arrives intact.
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

# ------------------------------------------------------------ 1 GiB each way
bulk_server 5001 gib "$GIB"
rchar_before=$(proc_io_rchar "$ROUTER")
client=$(bulk_client aaa "$GIB")
wait "$BULK_SERVER_PID"
server=$(cat "$E2E_WORKDIR/gib.json")
rchar_after=$(proc_io_rchar "$ROUTER")
log "1 GiB each way in $(field "$client" seconds) s"
assert_eq $((GIB + 24)) "$(field "$server" received)" "backend received 1 GiB and the 24 first bytes"
assert_eq "$(field "$client" sent_sha256)" "$(field "$server" received_sha256)" \
    "client -> backend: sha256 equal"
assert_eq "$GIB" "$(field "$client" received)" "client received 1 GiB"
assert_eq "$(field "$server" sent_sha256)" "$(field "$client" received_sha256)" \
    "backend -> client: sha256 equal"
assert_eq eof "$(field "$client" ended)" "the client got the backend's FIN after the last byte"
assert_eq eof "$(field "$server" ended)" "the backend got the client's FIN after the last byte"
rchar_growth=$((rchar_after - rchar_before))
if ((rchar_growth < 65536)); then
    pass "the router read $rchar_growth bytes itself while 2 GiB went through (rchar)"
else
    fail "the router read $rchar_growth bytes itself (rchar): stream bytes went through user space"
fi
stats=$(stream_stats "$NS")
assert_eq $((GIB + 24)) "$(stream_stat "$stats" 9000 backend.5001.bytes_to_backend)" \
    "the verdict program counted every byte to the backend"
assert_eq "$GIB" "$(stream_stat "$stats" 9000 backend.5001.bytes_to_client)" \
    "every byte to the client counted (the verdict program's, and splice(2)'s for a tail)"

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
