#!/usr/bin/env bash
# e2e: IPv6 clients of TCP frontends served by `portmux run`'s stream
# router, on a namespace's lo (generic XDP).
#
# The router listens dual stack ([::], IPV6_V6ONLY off) and dials a
# client's backend on this host in the client's family: ::1 for IPv6
# clients. The backends here listen on ::1 only (stream_peer.py echo
# servers answering "PORT:" first), so nothing reaches them over IPv4.
# lo also carries fd00:5a::1 and fd00:5a::2, so that a client and the
# address it dials differ.
#
# Frontends: 9000, the mplex case (MPLX_FRONTEND in lib.sh: "MPLX" at
# offset 0, a 3-byte tag at offset 20, aaa -> 5001, bbb -> 5002,
# ccc -> 5003); 9200 -> 5001 with a PROXY protocol v2 header.
#
# Checks: run logs streams_applied for both and listens on both families;
# over IPv6 each tag reaches its backend and exactly its bytes come back,
# then the backend's FIN; a tag sent 1 byte per segment is routed right; a
# request and its FIN in one segment is served through the splice(2)
# fallback; an unknown tag is reset; the backend behind 9200 gets the PROXY
# v2 header of the IPv6 client (TCP6, fd00:5a::2 and its port ->
# fd00:5a::1 port 9200) byte for byte, then the data; stats count every
# connection by how it went and the bytes each way; SIGTERM ends run with
# exit 0 and no error logged.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PEER=$E2E_LIB_DIR/stream_peer.py

e2e_start ip ss python3 timeout
make_ns_var NS pmsv6
W=$E2E_WORKDIR
RUNLOG=$W/run.log
CONF=$W/pm.json
CLIENT_ADDRESS=fd00:5a::2
DIALLED_ADDRESS=fd00:5a::1
for address in "$CLIENT_ADDRESS" "$DIALLED_ADDRESS"; do
    ip -n "$NS" addr add "$address/128" dev lo nodad || die "cannot add $address to lo in $NS"
done
printf '{"frontends": [%s,\n  {"port": 9200, "protocol": "tcp", "backends": [5001], "proxy_protocol": "v2"}]}\n' \
    "$MPLX_FRONTEND" >"$CONF"

for port in 5001 5002 5003; do
    start_in_ns "$NS" "$W/echo-$port.log" "$E2E_PYTHON" "$PEER" echo-server "$port" --label --host ::1
done
wait_until 10 all_ports_listening "$NS" tcp 5001 5002 5003 || die "the backends never all started listening"

register_detach "$NS" lo
start_portmux_run "$NS" "$RUNLOG" lo --config "$CONF" --mode generic
wait_for_log 30 "$RUNLOG" '^level=info event=streams_applied ports="9000 9200" ' ||
    die "run did not start the stream router: $(cat "$RUNLOG")"
pass "run serves the stream frontends: $(grep -m1 event=streams_applied "$RUNLOG")"
assert_match "9000 has one listener, on both families ([::], IPV6_V6ONLY off: ss shows *)" \
    '^LISTEN +[0-9]+ +[0-9]+ +\*:9000 ' "$(ip netns exec "$NS" ss -Htln 'sport = :9000')"

client() {  # client ARGS...: one stream_peer.py client in the namespace
    ip netns exec "$NS" timeout 20 "$E2E_PYTHON" "$PEER" --timeout 8 send "$@"
}

# ------------------------------------------------------------ routing
for entry in aaa:5001 bbb:5002 ccc:5003; do
    tag=${entry%%:*} port=${entry#*:}
    req=$(mplex_request "$tag")
    want="$port:$req"
    out=$(client ::1 9000 "$req" --fin-after ${#want})
    assert_eq "$want" "$(json_field "$out" received_head)" "IPv6 client, tag $tag: routed to [::1]:$port, exact echo back"
    assert_eq "${#want} eof" "$(json_field "$out" received) $(json_field "$out" ended)" \
        "tag $tag: exactly ${#want} bytes, then the backend's FIN"
done
req=$(mplex_request bbb)
want="5002:$req"
out=$(client "$DIALLED_ADDRESS" 9000 "$req" --source "$CLIENT_ADDRESS" --per-byte --gap 0.01 --fin-after ${#want})
assert_eq "$want" "$(json_field "$out" received_head)" "IPv6 tag split 1 byte per segment (TCP_NODELAY) routed to 5002"
req=$(mplex_request ccc)
out=$(client ::1 9000 "$req" --with-fin)
assert_eq "5003:$req eof" "$(json_field "$out" received_head) $(json_field "$out" ended)" \
    "IPv6 request and FIN in one segment: served (splice(2) fallback), then FIN"
out=$(client ::1 9000 "$(mplex_request zzz)")
assert_eq reset "$(json_field "$out" ended)" "IPv6 client, unknown tag: connection reset"

# ---------------------------------------------------------------- PROXY v2
out=$(client "$DIALLED_ADDRESS" 9200 "proxied" --source "$CLIENT_ADDRESS" --fin-after 64)
check=$("$E2E_PYTHON" - "$out" "$CLIENT_ADDRESS" "$DIALLED_ADDRESS" <<'PY'
import json, socket, struct, sys
report, source, destination = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
got = report["received_head"].encode("latin-1")
# What the backend received, echoed after its label: the header, then the data.
want = (b"5001:" + b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x21\x00\x24"
        + socket.inet_pton(socket.AF_INET6, source) + socket.inet_pton(socket.AF_INET6, destination)
        + struct.pack("!HH", report["local_port"], 9200) + b"proxied")
print("exact" if got == want and report["local"] == source else "got %r, want %r" % (got, want))
PY
)
assert_eq exact "$check" "PROXY v2 header: TCP6, $CLIENT_ADDRESS and its port -> $DIALLED_ADDRESS 9200, byte for byte, then the data"
assert_eq eof "$(json_field "$out" ended)" "PROXY v2 connection: the backend's FIN reached the client"

# --------------------------------------------------------------- counters
stats=$(stream_stats "$NS")
# 9000: aaa, bbb and ccc (one request, one reply) unspliced; the per-byte
# bbb spliced or unspliced (by whether its 25th byte came after the
# router's first read); ccc with its FIN through the fallback; zzz refused.
for entry in accepted:6 fallback:1 refused.unknown_tag:1 \
    backend.5001.connections:1 backend.5002.connections:2 backend.5003.connections:2; do
    assert_eq "${entry#*:}" "$(stream_stat "$stats" 9000 "${entry%%:*}")" "stats: 9000 ${entry%%:*} ${entry#*:}"
done
assert_match "stats: 9000 per-byte bbb spliced or not, the other three unspliced" '^(0 4|1 3)$' \
    "$(stream_stat "$stats" 9000 spliced unspliced)"
aaa=$(mplex_request aaa) ccc=$(mplex_request ccc)
assert_eq "${#aaa} $((5 + ${#aaa}))" \
    "$(stream_stat "$stats" 9000 backend.5001.bytes_to_backend backend.5001.bytes_to_client)" \
    "stats: the bytes of the aaa connection each way"
# Every request was written to its backend by the router (copied), and
# both echoes came back through it: the first reply of the unspliced one,
# and the fallback's.
assert_eq "$((2 * ${#ccc})) $((2 * ${#ccc})) $((2 * (5 + ${#ccc})))" \
    "$(stream_stat "$stats" 9000 backend.5003.bytes_to_backend backend.5003.copied_to_backend backend.5003.copied_to_client)" \
    "stats: both ccc requests reached 5003 and both echoes came back, copied by the router"
# 9200 needs no bytes to decide: the router connects and writes the header
# at once, with what the client had sent by then (all or nothing of
# "proxied"); "proxied" alone later is a second flight, which splices.
read -r accepted spliced unspliced fallback to_client <<<"$(stream_stat "$stats" 9200 accepted spliced unspliced fallback backend.5001.bytes_to_client)"
assert_eq "1 1 0 $((5 + 52 + 7))" "$accepted $((spliced + unspliced)) $fallback $to_client" \
    "stats: 9200 accepted the PROXY connection, served it ($spliced spliced, $unspliced unspliced); its echo counted back"

# ----------------------------------------------------------------- SIGTERM
kill -TERM "$RUN_PID"
rc=0
wait "$RUN_PID" || rc=$?
assert_eq 0 "$rc" "run exits 0 after SIGTERM"
assert_no_match "nothing listens on 9000 after run stopped" . "$(ip netns exec "$NS" ss -Htln 'sport = :9000')"
assert_eq 0 "$(log_count "$RUNLOG" '^level=(error|warning)')" "no error or warning logged"
finish
