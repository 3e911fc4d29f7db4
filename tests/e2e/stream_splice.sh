#!/usr/bin/env bash
# e2e: TCP frontends routed by their first bytes (the stream router and its
# sockmap verdict program), on a namespace's loopback.
#
# Echo backends on 5001-5003 answer "PORT:" then echo what they get. The
# stream router (`portmux serve-streams`) serves:
#   9000  the mplex case: "MPLX" at offset 0, a 3-byte tag at offset 20
#         (aaa -> 5001, bbb -> 5002, ccc -> 5003), at least 24 bytes, 1 s
#         for the first bytes;
#   9100  round robin to 5009, where nothing listens;
#   9200  5001 with a PROXY protocol v2 header.
# portmux's XDP program is attached to the same lo with the same config,
# which also has a plain TCP frontend 8080 -> 8081: XDP balances 8080 and
# must leave 9000-9200 to the router.
#
# Checks: status lists 8080 and none of the stream frontends, and 8080 still
# works through XDP; each tag reaches its backend, whose echo (its first
# reply) the router copies back, and the client's FIN after it and the
# backend's FIN reach the other side: three connections that end unspliced,
# with the replies counted as copied; a tag sent 1 byte per
# segment with TCP_NODELAY is routed right; a request and FIN sent at once
# (`nc -N`) is served through the splice(2) fallback and counted; an unknown
# tag, a bad magic, a client that sends nothing, a client that ends too
# early and a backend that is down each get a RST, counted by reason; the
# PROXY header carries the client's address and the frontend port; a
# connection spliced before a reload keeps its backend and carries data
# after it, while a new one follows the new rules; the router's backend
# socket uses reno when the namespace's default is BBR (set here where the
# kernel allows it), the default otherwise; every counter matches
# the connections made; the router closes every socket it opened.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PEER=$E2E_LIB_DIR/stream_peer.py

e2e_start ip nc ss python3 timeout

make_ns_var NS pmstream
log "namespace $NS, portmux $PORTMUX"

write_config() {  # write_config FILE AAA_PORT BBB_PORT
    cat >"$1" <<EOF
{"frontends": [
  {"port": 9000, "protocol": "tcp", "backends": [], "first_data_timeout": 1,
   "validate": {"min_length": 24, "match": [{"offset": 0, "value": "MPLX"}]},
   "route": {"offset": 20, "length": 3, "tags": [
     {"tag": "aaa", "backend": $2}, {"tag": "bbb", "backend": $3}, {"tag": "ccc", "backend": 5003}]}},
  {"port": 9100, "protocol": "tcp", "backends": [5009], "validate": {"min_length": 1}},
  {"port": 9200, "protocol": "tcp", "backends": [5001], "proxy_protocol": "v2"},
  {"port": 8080, "protocol": "tcp", "backends": [8081]}]}
EOF
}
CONFIG=$E2E_WORKDIR/stream.json
write_config "$CONFIG" 5001 5002

for port in 5001 5002 5003; do
    start_in_ns "$NS" "$E2E_WORKDIR/echo-$port.log" "$E2E_PYTHON" "$PEER" echo-server "$port" --label
done
start_tcp_reply_backend "$NS" 8081 1 "$E2E_WORKDIR"
wait_until 10 all_ports_listening "$NS" tcp 5001 5002 5003 8081 ||
    die "the backends never all started listening"

register_detach "$NS" lo
assert_ok "portmux attach lo (XDP) with the stream frontends in its config" \
    in_ns "$NS" "$PORTMUX" attach lo --mode generic --config "$CONFIG" || finish
status=$(in_ns "$NS" "$PORTMUX" status lo 2>&1)
assert_match "status shows the plain TCP frontend 8080" '8080.*tcp' "$status"
assert_no_match "XDP leaves the stream frontends alone (not installed)" '(9000|9100|9200)' "$status"

# The router reads the namespace's default congestion control when it
# starts: with BBR (where the kernel allows it) its backend sockets must use
# reno, which does not pace; with anything else they keep the default.
if ip netns exec "$NS" sysctl -qw net.ipv4.tcp_congestion_control=bbr 2>/dev/null; then
    want_backend_cc=reno
else
    want_backend_cc=$(ip netns exec "$NS" sysctl -n net.ipv4.tcp_congestion_control)
fi
ROUTER_LOG=$E2E_WORKDIR/router.log
serve_streams "$NS" "$CONFIG" "$ROUTER_LOG"
ROUTER=$E2E_STREAM_ROUTER_PID
pass "stream router serving: $(head -1 "$ROUTER_LOG")"
fds_idle=$(ls "/proc/$ROUTER/fd" | wc -l)

client() {  # client ARGS...: one stream_peer.py client in the namespace
    ip netns exec "$NS" timeout 20 "$E2E_PYTHON" "$PEER" --timeout 8 send "$@"
}

# ------------------------------------------------------------ XDP still there
reply=$(ip netns exec "$NS" timeout 5 nc -N 127.0.0.1 8080 <<<"hello-xdp" 2>&1)
assert_eq "backend-8081" "$reply" "plain TCP frontend 8080 balanced by XDP"

# ------------------------------------------------------------------ routing
for entry in aaa:5001 bbb:5002 ccc:5003; do
    tag=${entry%%:*} port=${entry#*:}
    req=$(mplex_request "$tag")
    want="$port:$req"
    out=$(client 127.0.0.1 9000 "$req" --fin-after ${#want})
    assert_eq "$want" "$(json_field "$out" received_head)" "tag $tag routed to $port, echo copied back"
    assert_eq eof "$(json_field "$out" ended)" "tag $tag: the backend's FIN reached the client"
done
stats=$(stream_stats "$NS")
assert_eq "3 0 0" "$(stream_stat "$stats" 9000 unspliced spliced fallback)" \
    "one request and one reply each: all three ended unspliced"
for entry in aaa:5001 bbb:5002 ccc:5003; do
    tag=${entry%%:*} port=${entry#*:} req=$(mplex_request "${entry%%:*}")
    reply_length=$((${#port} + 1 + ${#req}))
    assert_eq "${#req} $reply_length ${#req} $reply_length" \
        "$(stream_stat "$stats" 9000 backend.$port.bytes_to_backend backend.$port.bytes_to_client backend.$port.copied_to_backend backend.$port.copied_to_client)" \
        "$tag: request and reply counted once each way, both copied by the router"
done

req=$(mplex_request bbb)
want="5002:$req"
out=$(client 127.0.0.1 9000 "$req" --per-byte --gap 0.01 --fin-after ${#want})
assert_eq "$want" "$(json_field "$out" received_head)" \
    "tag split 1 byte per segment (TCP_NODELAY) still routed to 5002"

# -------------------------------------------------------------- fallback
req=$(mplex_request ccc)
out=$(client 127.0.0.1 9000 "$req" --with-fin)
assert_eq "5003:$req" "$(json_field "$out" received_head)" \
    "request and FIN in one segment: served"
assert_eq 1 "$(stream_stat "$(stream_stats "$NS")" 9000 fallback)" \
    "request and FIN in one segment: went through the splice(2) fallback, counted"
# nc -N sends its FIN a moment after the request: through the fallback if
# it came before the reply, unspliced if after; either way it is served.
reply=$(printf '%s' "$req" | ip netns exec "$NS" timeout 5 nc -N 127.0.0.1 9000 2>&1)
assert_eq "5003:$req" "$reply" "request then FIN from nc -N served"

# ------------------------------------------------------------- refusals
out=$(client 127.0.0.1 9000 "$(mplex_request zzz)")
assert_eq reset "$(json_field "$out" ended)" "unknown tag: connection reset"
out=$(client 127.0.0.1 9000 "$(mplex_request aaa XPLX)")
assert_eq reset "$(json_field "$out" ended)" "bad magic: connection reset"
out=$(client 127.0.0.1 9000 "")
assert_eq reset "$(json_field "$out" ended)" "silent client: reset after first_data_timeout"
# 9000 defers accept (TCP_DEFER_ACCEPT): the kernel holds a silent client's
# handshake for 1 s before the router sees it, and the router counts that
# second in: reset at first_data_timeout (1 s), not a second later.
lasted=$(json_field "$out" lasted_s)
if awk -v s="$lasted" 'BEGIN { exit !(s >= 0.95 && s < 1.9) }'; then
    pass "silent client: reset ${lasted} s after its connect (first_data_timeout 1 s)"
else
    fail "silent client: reset ${lasted} s after its connect, want first_data_timeout (1 s)"
fi
out=$(client 127.0.0.1 9000 "MPLX012345" --fin)
assert_eq reset "$(json_field "$out" ended)" "client ending before 24 bytes: reset"
out=$(ip netns exec "$NS" timeout 20 "$E2E_PYTHON" "$PEER" --timeout 3 send 127.0.0.1 9100 "x")
assert_eq reset "$(json_field "$out" ended)" \
    "backend down: the client is reset at once (its 3 s read timeout never ran out)"

# ---------------------------------------------------------------- PROXY v2
out=$(client 127.0.0.1 9200 "proxied" --fin-after 40)
"$E2E_PYTHON" - "$out" <<'PY' && pass "PROXY v2 header: TCP4, 127.0.0.1 -> 127.0.0.1:9200, then the data" || fail "PROXY v2 header wrong: $out"
import json, socket, struct, sys
head = json.loads(sys.argv[1])["received_head"].encode("latin-1")
assert head.startswith(b"5001:"), head
header = head[5:]
assert header[:12] == b"\r\n\r\n\x00\r\nQUIT\n", header
assert header[12:16] == b"\x21\x11\x00\x0c", header[12:16]
src, dst = socket.inet_ntoa(header[16:20]), socket.inet_ntoa(header[20:24])
sport, dport = struct.unpack("!HH", header[24:28])
assert (src, dst, dport) == ("127.0.0.1", "127.0.0.1", 9200), (src, dst, sport, dport)
assert header[28:] == b"proxied", header[28:]
PY

# ------------------------------------------------------------------ reload
req=$(mplex_request aaa)
want="5001:${req}after-reload"
start_two_part_client "$NS" 9000 "$req" after-reload ${#want} 10 old
old_client=$TWO_PART_CLIENT_PID
wait_until 5 test -e "$E2E_WORKDIR/old.first-reply" || fail "the long-lived client got no first reply"
# Its backend socket, the router's only socket toward 5001 (ss -O: one line
# per socket, the congestion control before "wscale").
backend_cc=$(ip netns exec "$NS" ss -tniHO state established '( dport = :5001 )' |
    grep -oE ' [a-z0-9_]+ wscale:' | awk '{print $1}')
assert_eq "$want_backend_cc" "$backend_cc" \
    "the router's backend socket uses $want_backend_cc (namespace default $(ip netns exec "$NS" sysctl -n net.ipv4.tcp_congestion_control))"
# Both of the router's sockets of that connection have TCP_NODELAY: the
# client's from the listener, the backend's set on it. Without it, a
# response written in two parts waits for the client's delayed ACK (40 ms
# and more). Read from a copy of each descriptor (pidfd_getfd), which `ss
# -p` names: the router's socket toward 5001 and the one it accepted on 9000.
router_sockets=$( { ip netns exec "$NS" ss -tnpH state established '( dport = :5001 )';
                    ip netns exec "$NS" ss -tnpH state established '( sport = :9000 )'; } |
    grep -oE 'pid=[0-9]+,fd=[0-9]+' | sort -u)
nodelay=$("$E2E_PYTHON" - $router_sockets <<'PY' 2>&1
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_getfd = 438
for arg in sys.argv[1:]:
    pid, fd = (int(part.split("=")[1]) for part in arg.split(","))
    pidfd = os.pidfd_open(pid)
    copy = libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
    if copy < 0:
        sys.exit(f"pidfd_getfd of fd {fd} of {pid}: {os.strerror(ctypes.get_errno())}")
    sock = socket.socket(fileno=copy)
    print(f"fd{fd}={sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)}", end=" ")
    sock.detach()
    os.close(copy)
    os.close(pidfd)
PY
)
assert_match "the router's two sockets of a spliced connection have TCP_NODELAY: $nodelay" \
    '^fd[0-9]+=1 fd[0-9]+=1 $' "$nodelay"
write_config "$CONFIG" 5002 5001
kill -HUP "$ROUTER"
wait_until 5 grep -q '^reloaded' "$ROUTER_LOG" || fail "the router did not reload: $(cat "$ROUTER_LOG")"
touch "$E2E_WORKDIR/old.go"
wait "$old_client"
out=$(cat "$E2E_WORKDIR/old.json")
assert_eq "$want" "$(json_field "$out" received_head)" \
    "connection spliced before the reload carries data after it, still to 5001"
req=$(mplex_request aaa)
want="5002:$req"
out=$(client 127.0.0.1 9000 "$req" --fin-after ${#want})
assert_eq "$want" "$(json_field "$out" received_head)" "a new connection follows the new rules (aaa -> 5002)"

# --------------------------------------------------------------- counters
stats=$(stream_stats "$NS")
# 9000: aaa bbb ccc and the new aaa unspliced; reload's old aaa spliced
# (its second flight); per-byte bbb spliced if the router read its first
# 24 bytes before the 25th came, else unspliced; request+FIN through the
# fallback; nc -N either way; zzz, bad magic, silent, short refused.
assert_eq 12 "$(stream_stat "$stats" 9000 accepted)" "9000 accepted 12 connections"
read -r spliced fallback unspliced <<<"$(stream_stat "$stats" 9000 spliced fallback unspliced)"
assert_eq 8 "$((spliced + fallback + unspliced))" \
    "9000 served 8: spliced $spliced, fallback $fallback, unspliced $unspliced"
assert_match "old aaa spliced, per-byte bbb and nc -N either way" \
    '^(1|2) (1|2) (4|5|6)$' "$spliced $fallback $unspliced"
for reason in unknown_tag magic_mismatch timeout too_short; do
    assert_eq 1 "$(stream_stat "$stats" 9000 "refused.$reason")" "9000 refused 1 as $reason"
done
assert_eq 0 "$(stream_stat "$stats" 9000 refused.backend_refused)" "9000 refused none as backend_refused"
assert_eq 2 "$(stream_stat "$stats" 9000 backend.5001.connections)" "5001 got 2 connections (aaa, old aaa)"
assert_eq 3 "$(stream_stat "$stats" 9000 backend.5002.connections)" "5002 got 3 (bbb, per-byte bbb, new aaa)"
assert_eq 3 "$(stream_stat "$stats" 9000 backend.5003.connections)" "5003 got 3 (ccc, request+FIN, nc -N)"
assert_eq 1 "$(stream_stat "$stats" 9100 refused.backend_refused)" "9100 refused 1 as backend_refused"
assert_eq 1 "$(stream_stat "$stats" 9100 backend.5009.refused)" "backend 5009 counted the refusal"
# Bytes relayed to 5001: both aaa requests (written by the router) and
# "after-reload" (by the verdict program).
req=$(mplex_request aaa)
assert_eq $((2 * ${#req} + 12)) "$(stream_stat "$stats" 9000 backend.5001.bytes_to_backend)" \
    "bytes to 5001 counted by the verdict program: both aaa requests and after-reload"
prom=$(in_ns "$NS" "$PORTMUX" stats --format prometheus 2>&1)
assert_match "prometheus: accepted connections per stream frontend" \
    '^portmux_stream_accepted_connections_total\{frontend="9000"\} 12$' "$prom"
assert_match "prometheus: refusals by reason" \
    'portmux_stream_refused_connections_total\{frontend="9000",reason="unknown_tag"\} 1' "$prom"
for how in spliced fallback unspliced; do
    assert_match "prometheus: connections served by how ($how), as in stats" \
        "^portmux_stream_served_connections_total\\{frontend=\"9000\",how=\"$how\"\\} ${!how}\$" "$prom"
done

router_idle() { (($(ls "/proc/$ROUTER/fd" | wc -l) == fds_idle)); }
wait_until 5 router_idle
assert_eq "$fds_idle" "$(ls "/proc/$ROUTER/fd" | wc -l)" "the router closed every socket it opened"
kill -TERM "$ROUTER"
wait_until 5 grep -q '^stopped' "$ROUTER_LOG"
assert_eq "" "$(ls "$E2E_BPFFS" | grep stream)" "the router unpinned its counters on exit"

finish
