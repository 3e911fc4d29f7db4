#!/usr/bin/env bash
# e2e: a short soak, generic XDP on a namespace's loopback.
#
# Config S1: 9875/udp -> 9876,9877 and 8080/tcp -> 8081,8082; S2 adds 9878
# and 8083 at the end. At the same time:
#   - one python3 sender on CPU 0: 20000 numbered datagrams at 2500/s;
#   - 50 TCP connections one after another, each exchanging one line;
#   - `portmux stats --watch 0.1 --count 40`, a long-running loader;
#   - 5 reloads alternating S2/S1, one every second (ending on S2, so that
#     every backend that ever got traffic is in the config at the end).
# Then: every reload exited 0; every datagram arrived exactly once; each
# TCP client got its own line back from a backend of the config; for both
# frontends received = forwarded + dropped, dropped = the sum of the drops by
# reason (= 0 here); for 9876 and 9877 (in every config) stats' packets equal
# what the sink got; 9878, removed and added again by the reloads, counts from
# 0 each time it comes back, its earlier datagrams counted as removed
# backends: its packets plus removed_backends equal what the sink got on 9878;
# the TCP sink's connections add up to 50; no socket buffer overflowed.
# Memory: max RSS (/usr/bin/time -f %M) of the first and last 5 of 20
# `status` and of 20 `reload` runs differ by at most 1 MiB, and the
# long-running `stats --watch` with 40 refreshes peaks within 1 MiB of one
# with 2.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=20000
RATE=2500
TCP_CONNECTIONS=50
RELOADS=5

e2e_start ip ss taskset timeout python3

make_ns_var NS pmsoak
log "namespace $NS, portmux $PORTMUX"
W=$E2E_WORKDIR
cat >"$W/s1.json" <<'EOF'
{ "frontends": [ { "port": 9875, "protocol": "udp", "backends": [9876, 9877] },
                 { "port": 8080, "protocol": "tcp", "backends": [8081, 8082] } ] }
EOF
cat >"$W/s2.json" <<'EOF'
{ "frontends": [ { "port": 9875, "protocol": "udp", "backends": [9876, 9877, 9878] },
                 { "port": 8080, "protocol": "tcp", "backends": [8081, 8082, 8083] } ] }
EOF
pm() { in_ns "$NS" "$PORTMUX" "$@"; }

start_udp_sink "$NS" "$W/udp.txt" 9876 9877 9878
start_tcp_sink "$NS" "$W/tcp.txt" 8081 8082 8083
wait_until 5 all_ports_listening "$NS" udp 9876 9877 9878 || die "UDP sink never listened"
wait_until 5 all_ports_listening "$NS" tcp 8081 8082 8083 || die "TCP sink never listened"
register_detach "$NS" lo
assert_ok "attach lo --mode generic with s1.json" pm attach lo --mode generic --config "$W/s1.json" || finish

TIME=/usr/bin/time
[[ -x $TIME ]] || TIME=

# ------------------------------------------------------------------- load
send_udp_seq "$NS" 127.0.0.1 9875 1 "$N" "$RATE" >"$W/sender.out" 2>&1 &
sender=$!
E2E_PIDS+=("$sender")
ip netns exec "$NS" taskset -c 1 "$E2E_PYTHON" -c '
import socket, sys, time
for i in range(1, int(sys.argv[1]) + 1):
    time.sleep(0.12)  # spread the connections over the reloads
    try:
        with socket.create_connection(("127.0.0.1", 8080), timeout=5) as s:
            s.sendall(b"conn-%d\n" % i)
            print(s.makefile().readline().strip(), flush=True)
    except OSError as e:
        print("error conn-%d %s" % (i, e), flush=True)
' "$TCP_CONNECTIONS" >"$W/tcp-clients.txt" 2>&1 &
clients=$!
E2E_PIDS+=("$clients")
if [[ -n $TIME ]]; then
    in_ns "$NS" "$TIME" -f 'RSS %M' -o "$W/watch-long.rss" "$PORTMUX" stats lo --watch 0.1 --count 40 \
        >/dev/null 2>"$W/watch-long.err" &
    watcher=$!
    E2E_PIDS+=("$watcher")
fi

reload_fail=0
for ((r = 1; r <= RELOADS; r++)); do
    sleep 1  # spacing of the reloads while the load runs, not a readiness wait
    if ((r % 2 == 1)); then cfg=s2; else cfg=s1; fi
    rc=0
    out=$(pm reload lo --config "$W/$cfg.json" 2>&1) || rc=$?
    ((rc == 0)) || { reload_fail=$((reload_fail + 1)); printf '    | reload %d: exit %d: %s\n' "$r" "$rc" "$out"; }
done
assert_eq 0 "$reload_fail" "reloads during the load that exited non-zero (of $RELOADS)"
wait "$sender"
assert_eq "$N" "$(cat "$W/sender.out")" "UDP datagrams sent"
wait "$clients"
[[ -n $TIME ]] && wait "$watcher"
wait_for_lines "$N" 15 "$W/udp.txt" || fail "only $(line_count "$W/udp.txt") of $N datagrams arrived"
sleep 0.5  # grace period: catch late duplicates
log "$(pm status lo | sed -n '4,5p' | tr -s ' ' | tr '\n' ';')"

# ------------------------------------------------------------------ UDP
assert_eq "$N" "$(line_count "$W/udp.txt")" "datagrams received by the sink"
assert_eq "$N" "$(awk '{ print $2 }' "$W/udp.txt" | sort -u | wc -l)" "distinct datagrams received"
assert_eq 0 "$(udp_counter "$NS" UdpRcvbufErrors)" "no datagram dropped by a full socket buffer"

stats=$(pm stats lo --json)
balance=$("$E2E_PYTHON" -c '
import json, sys
for i in json.load(sys.stdin)["interfaces"]:
    for f in i["frontends"]:
        fw = sum(b["packets"] for b in f["backends"]) + f["removed_backends"]["packets"]
        print("%d/%s %d %d %d %d %d" % (f["port"], f["protocol"], f["received"], f["forwarded"],
              fw, f["dropped"], sum(f["drops"].values())))
' <<<"$stats")
while read -r name received forwarded backend_sum dropped reasons; do
    assert_eq "$received" $((forwarded + dropped)) "$name: received = forwarded + dropped ($forwarded + $dropped)"
    assert_eq "$forwarded" "$backend_sum" "$name: forwarded = sum of per-backend packets"
    assert_eq "$dropped" "$reasons" "$name: dropped = sum of drops by reason"
    assert_eq 0 "$dropped" "$name: nothing dropped"
done <<<"$balance"
assert_eq "$N" "$(stats_value "$stats" lo 9875 received)" "9875/udp received"
for port in 9876 9877; do
    assert_eq "$(awk -v p="$port" '$1 == p' "$W/udp.txt" | wc -l)" "$(stats_value "$stats" lo 9875 "backend.$port.packets")" \
        "9875/udp backend $port: stats packets = datagrams the sink got on $port"
done
removed=$("$E2E_PYTHON" -c '
import json, sys
f = next(f for i in json.load(sys.stdin)["interfaces"] for f in i["frontends"] if f["port"] == 9875)
print(f["removed_backends"]["packets"])' <<<"$stats")
log "9875/udp backend 9878: $(stats_value "$stats" lo 9875 backend.9878.packets) since it was last added, $removed counted as removed"
assert_eq "$(awk '$1 == 9878' "$W/udp.txt" | wc -l)" "$(($(stats_value "$stats" lo 9875 backend.9878.packets) + removed))" \
    "9875/udp backend 9878 (removed and added again): stats packets + removed_backends = datagrams the sink got on 9878"

# ------------------------------------------------------------------ TCP
assert_eq 0 "$(grep -c '^error' "$W/tcp-clients.txt")" "TCP clients that failed"
good=$(awk '$1 ~ /^backend-808[123]$/ && $2 == "conn-" NR' "$W/tcp-clients.txt" | wc -l)
assert_eq "$TCP_CONNECTIONS" "$good" "TCP clients answered with their own line by a backend"
assert_eq "$TCP_CONNECTIONS" "$(awk '{ print $1 " " $2 }' "$W/tcp.txt" | sort -u | wc -l)" \
    "connections the TCP sink served"
log "TCP connections per backend: $(awk '{ print $1 }' "$W/tcp.txt" | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')"

# ---------------------------------------------------------------- memory
if [[ -n $TIME ]]; then
    rss_runs() {  # rss_runs FILE CMD...: 20 runs, max RSS (KiB) of each appended to FILE
        local i
        for ((i = 0; i < 20; i++)); do
            in_ns "$NS" "$TIME" -f '%M' -a -o "$1" "${@:2}" >/dev/null 2>&1
        done
    }
    compare_rss() {  # compare_rss WHAT FILE
        local first last
        first=$(head -5 "$2" | sort -n | tail -1)
        last=$(tail -5 "$2" | sort -n | tail -1)
        if [[ $first =~ ^[0-9]+$ && $last =~ ^[0-9]+$ ]] && ((last <= first + 1024)); then
            pass "$1: max RSS $first KiB in the first 5 runs, $last KiB in the last 5"
        else
            fail "$1: max RSS grew from '$first' KiB to '$last' KiB over 20 runs"
        fi
    }
    rss_runs "$W/status.rss" "$PORTMUX" status
    compare_rss "portmux status" "$W/status.rss"
    : >"$W/reload.rss"
    for ((i = 0; i < 20; i++)); do
        cfg=s$((i % 2 + 1))
        in_ns "$NS" "$TIME" -f '%M' -a -o "$W/reload.rss" "$PORTMUX" reload lo --config "$W/$cfg.json" >/dev/null 2>&1 ||
            fail "reload $i exited non-zero"
    done
    compare_rss "portmux reload" "$W/reload.rss"
    in_ns "$NS" "$TIME" -f 'RSS %M' -o "$W/watch-short.rss" "$PORTMUX" stats lo --watch 0.1 --count 2 >/dev/null 2>&1
    short=$(awk '/^RSS/ { print $2 }' "$W/watch-short.rss")
    long=$(awk '/^RSS/ { print $2 }' "$W/watch-long.rss")
    if [[ $short =~ ^[0-9]+$ && $long =~ ^[0-9]+$ ]] && ((long <= short + 1024)); then
        pass "stats --watch: max RSS $long KiB after 40 refreshes under load, $short KiB after 2"
    else
        fail "stats --watch: max RSS '$long' KiB after 40 refreshes, '$short' KiB after 2"
        sed 's/^/    | /' "$W/watch-long.err" | head -5
    fi
else
    skip "memory checks: /usr/bin/time is missing (add the package time to scripts/deps.sh)"
fi

# A reload that removes a backend keeps its packets in "forwarded" (as
# removed_backends), so the frontend still balances.
assert_ok "reload to s1.json (removes 9878 and 8083)" pm reload lo --config "$W/s1.json"
stats=$(pm stats lo --json)
received=$(stats_value "$stats" lo 9875 received)
forwarded=$(stats_value "$stats" lo 9875 forwarded)
dropped=$(stats_value "$stats" lo 9875 dropped)
if [[ $received == $((forwarded + dropped)) ]]; then
    pass "after removing 9878: 9875/udp still balances ($received = $forwarded + $dropped)"
else
    fail "after a reload removed backend 9878, 9875/udp no longer balances: received $received, forwarded $forwarded, dropped $dropped (the removed backend's packets vanish from forwarded)"
fi

assert_ok "portmux detach lo" pm detach lo
finish
