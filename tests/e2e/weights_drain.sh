#!/usr/bin/env bash
# e2e: weighted round robin and drain/undrain, generic XDP on a namespace's
# loopback.
#
# One config: 9875/udp over {9876 weight 3, 9877 weight 1}, and 8080/tcp
# over 8081, 8082. A python3 sink records UDP datagrams (port, seq), a
# python3 TCP server answers every line with "backend-PORT LINE".
#
# Weights: 40 datagrams from CPU 0 split exactly 30/10 over the 10 full
# rounds, in the smooth order 9876 9876 9877 9876 (the 3rd of every 4 goes
# to 9877), and stats count 30 and 10. status shows "(weight 3)".
# UDP drain: with 9877 drained, 8 more datagrams all go to 9876.
# TCP drain: a client opens a connection and exchanges a line (backend X);
# X is drained (status says so); 6 new connections all reach the other
# backend; the open connection's second line is still answered by X on the
# same connection; draining again changes nothing, a port that is no backend
# is refused; after undrain 4 new connections alternate over both backends.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UDP_FRONTEND=9875
TCP_FRONTEND=8080
TCP_BACKENDS=(8081 8082)
N=40

e2e_start ip ss taskset timeout python3

make_ns_var NS pmwd
log "namespace $NS, portmux $PORTMUX"
W=$E2E_WORKDIR
SINK=$W/udp.txt
TCPLOG=$W/tcp.txt
cat >"$W/config.json" <<EOF
{
  "frontends": [
    { "port": $UDP_FRONTEND, "protocol": "udp",
      "backends": [ { "port": 9876, "weight": 3 }, { "port": 9877, "weight": 1 } ] },
    { "port": $TCP_FRONTEND, "protocol": "tcp", "backends": [ ${TCP_BACKENDS[0]}, ${TCP_BACKENDS[1]} ] }
  ]
}
EOF
pm() { in_ns "$NS" "$PORTMUX" "$@"; }

assert_ok "portmux check accepts weight objects" "$PORTMUX" check "$W/config.json" || finish
start_udp_sink "$NS" "$SINK" 9876 9877
start_tcp_sink "$NS" "$TCPLOG" "${TCP_BACKENDS[@]}"
wait_until 5 all_ports_listening "$NS" udp 9876 9877 || die "UDP sink never listened"
wait_until 5 all_ports_listening "$NS" tcp "${TCP_BACKENDS[@]}" || die "TCP sink never listened"
pass "sinks listening on udp 9876 9877 and tcp ${TCP_BACKENDS[*]}"

register_detach "$NS" lo
assert_ok "attach lo --mode generic" pm attach lo --mode generic --config "$W/config.json" || finish
assert_match "status shows the weight" "$UDP_FRONTEND .*9876 \\(weight 3\\), 9877" "$(pm status lo)"

# ------------------------------------------------------------------ weights
sent=$(send_udp_seq "$NS" 127.0.0.1 "$UDP_FRONTEND" 1 "$N")
assert_eq "$N" "$sent" "datagrams sent"
wait_for_lines "$N" 10 "$SINK" || fail "only $(line_count "$SINK") of $N datagrams arrived"
sleep 0.3  # grace period: catch late duplicates
assert_eq 30 "$(awk '$1 == 9876' "$SINK" | wc -l)" "weight 3: datagrams on 9876"
assert_eq 10 "$(awk '$1 == 9877' "$SINK" | wc -l)" "weight 1: datagrams on 9877"
assert_eq "$N" "$(awk '{ print $2 }' "$SINK" | sort -u | wc -l)" "distinct datagrams delivered"
pattern=$(awk '{ n = substr($2, 5) + 0; print ((n - 1) % 4 == 2 ? 9877 : 9876) == $1 ? "ok" : "bad " $0 }' "$SINK" | sort -u | tr '\n' ' ')
assert_eq "ok " "$pattern" "smooth order: every 3rd of 4 datagrams (and only those) went to 9877"
stats=$(pm stats lo --json)
assert_eq 30 "$(stats_value "$stats" lo "$UDP_FRONTEND" backend.9876.packets)" "stats: 9876 packets"
assert_eq 10 "$(stats_value "$stats" lo "$UDP_FRONTEND" backend.9877.packets)" "stats: 9877 packets"
assert_eq "$N" "$(stats_value "$stats" lo "$UDP_FRONTEND" received)" "stats: received on $UDP_FRONTEND"

# ---------------------------------------------------------------- UDP drain
assert_ok "drain 9877" pm drain lo 9877
assert_match "drain reports one frontend changed" 'drained backend 9877 on lo \(1 frontend\(s\) changed\)' \
    "$E2E_LAST_OUTPUT"
sent=$(send_udp_seq "$NS" 127.0.0.1 "$UDP_FRONTEND" 41 48)
wait_for_lines 48 10 "$SINK" || fail "only $(line_count "$SINK") of 48 datagrams arrived"
sleep 0.3
assert_eq "9876:8 " "$(awk '{ n = substr($2, 5) + 0 } n > 40 { print $1 }' "$SINK" | sort | uniq -c |
    awk '{ printf "%s:%s ", $2, $1 }')" "with 9877 drained, 8 datagrams all went to 9876"
assert_ok "undrain 9877" pm undrain lo 9877

# ---------------------------------------------------------------- TCP drain
# The long-lived client: line keep-1, then waits for $W/go, then keep-2.
ip netns exec "$NS" taskset -c 0 timeout 30 "$E2E_PYTHON" -c '
import os, socket, sys, time
out = open(sys.argv[2] + "/keep.txt", "a", buffering=1)
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    f = s.makefile()
    s.sendall(b"keep-1\n")
    out.write(f.readline())
    deadline = time.monotonic() + 20
    while not os.path.exists(sys.argv[2] + "/go") and time.monotonic() < deadline:
        time.sleep(0.05)
    s.sendall(b"keep-2\n")
    out.write(f.readline())
' "$TCP_FRONTEND" "$W" >"$W/keep.log" 2>&1 &
E2E_PIDS+=($!)
keeper=$!
wait_for_lines 1 10 "$W/keep.txt" || die "the long-lived connection got no first answer"
first=$(head -1 "$W/keep.txt")
assert_match "long-lived connection: first answer from a backend" '^backend-808[12] keep-1$' "$first"
X=${first#backend-} X=${X%% *}
if [[ $X == "${TCP_BACKENDS[0]}" ]]; then Y=${TCP_BACKENDS[1]}; else Y=${TCP_BACKENDS[0]}; fi
log "long-lived connection on backend $X; draining it"

assert_ok "drain $X" pm drain lo "$X"
assert_match "drain $X reports one frontend changed" "drained backend $X on lo \\(1 frontend\\(s\\) changed\\)" \
    "$E2E_LAST_OUTPUT"
assert_match "status marks $X drained" "$TCP_FRONTEND .*tcp .*$X \\(drained\\)" "$(pm status lo)"
assert_eq true "$(pm status --json | "$E2E_PYTHON" -c '
import json, sys
f = next(f for f in json.load(sys.stdin)["interfaces"][0]["frontends"] if f["port"] == int(sys.argv[1]))
print(str(next(b for b in f["backends"] if b["port"] == int(sys.argv[2]))["drained"]).lower())' "$TCP_FRONTEND" "$X")" \
    "status --json: backend $X drained"
assert_ok "drain $X again" pm drain lo "$X"
assert_match "draining again changes nothing" '\(0 frontend\(s\) changed\)' "$E2E_LAST_OUTPUT"
E2E_EXPECT_RC=1 assert_fails "drain of a port that is no backend" pm drain lo 8099
assert_match "message: not a backend" 'port 8099 is not a backend of any frontend on lo' "$E2E_LAST_OUTPUT"

answers=()
for ((i = 1; i <= 6; i++)); do
    answers+=("$(tcp_exchange "$NS" 127.0.0.1 "$TCP_FRONTEND" "new-$i")")
done
expected=$(for ((i = 1; i <= 6; i++)); do printf 'backend-%s new-%d ' "$Y" "$i"; done)
assert_eq "$expected" "$(printf '%s ' "${answers[@]}")" "while $X is drained, 6 new connections all reach $Y"

touch "$W/go"
wait_for_lines 2 10 "$W/keep.txt" || fail "the long-lived connection got no second answer"
assert_eq "backend-$X keep-2" "$(sed -n 2p "$W/keep.txt")" \
    "the open connection still works on drained backend $X"
wait "$keeper"
assert_eq 0 "$?" "the long-lived client exited 0"
assert_eq "$X 1 keep-1|$X 1 keep-2|" "$(grep keep "$TCPLOG" | tr '\n' '|')" \
    "backend $X heard keep-1 and keep-2 on its one connection"

assert_ok "undrain $X" pm undrain lo "$X"
assert_no_match "status no longer marks $X drained" 'drained' "$(pm status lo)"
answers=()
for ((i = 1; i <= 4; i++)); do
    reply=$(tcp_exchange "$NS" 127.0.0.1 "$TCP_FRONTEND" "after-$i")
    reply=${reply#backend-}
    answers+=("${reply%% *}")
done
log "after undrain: ${answers[*]}"
assert_eq 2 "$(printf '%s\n' "${answers[@]}" | grep -cx "$X")" "after undrain: connections on $X"
assert_eq 2 "$(printf '%s\n' "${answers[@]}" | grep -cx "$Y")" "after undrain: connections on $Y"
if [[ ${answers[0]} != "${answers[1]}" && ${answers[0]} == "${answers[2]}" && ${answers[1]} == "${answers[3]}" ]]; then
    pass "after undrain: connections alternate"
else
    fail "after undrain: connections do not alternate: ${answers[*]}"
fi

stats=$(pm stats lo --json)
assert_eq 0 "$(stats_value "$stats" lo "$TCP_FRONTEND" dropped)" "stats: TCP segments dropped"
assert_eq "$(stats_value "$stats" lo "$TCP_FRONTEND" received)" "$(stats_value "$stats" lo "$TCP_FRONTEND" forwarded)" \
    "stats: TCP forwarded equals received"
assert_ok "portmux detach lo" pm detach lo
finish
