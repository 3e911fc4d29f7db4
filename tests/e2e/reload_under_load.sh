#!/usr/bin/env bash
# e2e: `portmux reload` while a UDP stream flows, generic XDP on a
# namespace's loopback.
#
# Frontend 9875/udp; config A sends it to 9876,9877 and config B to
# 9878,9879. One python3 sink listens on all four ports and records
# (port, sequence number) for every datagram; one python3 sender on CPU 0
# sends numbered datagrams "seq-N".
#
# Part 1, reloads at known points: 8 phases of 250 datagrams; before each
# phase the config alternates (A, B, A, ...) and the sender waits until the
# previous phase has fully arrived. Every datagram of a phase must reach a
# backend of that phase's config, 125 on each, and the per-backend counters
# of `portmux stats --json` must grow by exactly those 125 (the ports shown
# being the config in force). Between two phases, two invalid configs (a
# backend port 0, rejected by the parser; a different flow_table_size,
# rejected by reload itself) exit 1 and change nothing: `status --json` is
# byte-identical and the next datagrams still go to the same backends.
#
# Part 2, reloads during the stream: 4000 datagrams paced at 1000/s while
# reload alternates A/B as fast as it can (bounded: at most 60 reloads, one
# more invalid one in the middle). Every reload exits 0 (the invalid one 1);
# every datagram arrives exactly once, at a port of A or B; the sequence
# switches between A and B at most once per successful reload and at least
# once; round robin carries on across the swaps (positions alternate
# strictly in sequence order, the per-CPU cursor is never reset).
#
# Both parts: frontend received == forwarded == datagrams sent, nothing
# dropped, the sink's total equals stats' forwarded total.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FRONTEND=9875
A=(9876 9877)
B=(9878 9879)
PHASES=8
PER_PHASE=250
STREAM=4000
RATE=1000
MAX_RELOADS=60

e2e_start ip ss taskset python3

make_ns_var NS pmrl
log "namespace $NS, portmux $PORTMUX"
W=$E2E_WORKDIR
SINK=$W/sink.txt

config() {  # config FILE PORT...
    local file=$1 list
    shift
    list=$(IFS=,; echo "$*")
    printf '{ "frontends": [ { "port": %d, "protocol": "udp", "backends": [%s] } ] }\n' \
        "$FRONTEND" "$list" >"$file"
}
config "$W/a.json" "${A[@]}"
config "$W/b.json" "${B[@]}"
config "$W/bad-port0.json" "${A[0]}" 0
printf '{ "flow_table_size": 2048, "frontends": [ { "port": %d, "backends": [%s] } ] }\n' \
    "$FRONTEND" "${B[0]}" >"$W/bad-flowtable.json"

pm() { in_ns "$NS" "$PORTMUX" "$@"; }

start_udp_sink "$NS" "$SINK" "${A[@]}" "${B[@]}"
wait_until 5 all_ports_listening "$NS" udp "${A[@]}" "${B[@]}" ||
    die "the UDP sink never listened on ${A[*]} ${B[*]}"
pass "sink listening on ${A[*]} ${B[*]}"

register_detach "$NS" lo
assert_ok "attach lo --mode generic with config A" \
    pm attach lo --mode generic --config "$W/a.json" || finish

# position_counts [totals]: the per-backend packet counters of 9875, in
# config order, as "PORT:PACKETS PORT:PACKETS"; with "totals": received,
# forwarded and dropped instead.
position_counts() {
    pm stats lo --json | "$E2E_PYTHON" -c '
import json, sys
f = next(f for i in json.load(sys.stdin)["interfaces"] for f in i["frontends"] if f["port"] == int(sys.argv[1]))
if sys.argv[2:] == ["totals"]:
    print(f["received"], f["forwarded"], f["dropped"])
else:
    print(" ".join("%d:%d" % (b["port"], b["packets"]) for b in f["backends"]))
' "$FRONTEND" "$@"
}

# ------------------------------------------------------ part 1: known points
log "--- part 1: $PHASES phases of $PER_PHASE datagrams, a reload before each"
seq_next=1
prev_counts=$(position_counts)
for ((phase = 0; phase < PHASES; phase++)); do
    if ((phase % 2 == 0)); then name=A cur=("${A[@]}"); else name=B cur=("${B[@]}"); fi
    if ((phase > 0)); then
        rc=0
        out=$(pm reload lo --config "$W/${name,,}.json" 2>&1) || rc=$?
        assert_eq 0 "$rc" "phase $phase: reload to config $name exit status"
        ((rc == 0)) || printf '%s\n' "$out" | sed 's/^/    | /'
        # Counters of the old config's positions, read right after the swap.
        prev_counts=$(position_counts)
    fi
    if ((phase == 3)); then
        before=$(pm status --json 2>&1)
        for bad in bad-port0 bad-flowtable; do
            E2E_EXPECT_RC=1 assert_fails "phase $phase: reload with $bad.json is refused" \
                pm reload lo --config "$W/$bad.json"
            log "  $(head -1 <<<"$E2E_LAST_OUTPUT")"
            if [[ "$before" == "$(pm status --json 2>&1)" ]]; then
                pass "phase $phase: status --json identical after the refused $bad.json"
            else
                fail "phase $phase: status --json changed after the refused $bad.json"
                diff <(printf '%s\n' "$before") <(pm status --json 2>&1) | sed 's/^/    | /'
            fi
        done
        assert_match "port 0 message names the element" 'backends\[1\].*got 0' \
            "$(pm reload lo --config "$W/bad-port0.json" 2>&1)"
        assert_match "flow_table_size message names both sizes" 'flow_table_size is 65536.*2048' \
            "$(pm reload lo --config "$W/bad-flowtable.json" 2>&1)"
    fi
    first=$seq_next last=$((seq_next + PER_PHASE - 1))
    sent=$(send_udp_seq "$NS" 127.0.0.1 "$FRONTEND" "$first" "$last")
    assert_eq "$PER_PHASE" "$sent" "phase $phase: datagrams sent"
    wait_for_lines "$last" 10 "$SINK" || fail "phase $phase: only $(line_count "$SINK") of $last datagrams arrived"
    seq_next=$((last + 1))
    # Where seq-FIRST..seq-LAST went.
    got=$(awk -v f="$first" -v l="$last" '{ n = substr($2, 5) + 0 } n >= f && n <= l { c[$1]++ }
        END { for (p in c) print p ":" c[p] }' "$SINK" | sort | tr '\n' ' ')
    assert_eq "${cur[0]}:$((PER_PHASE / 2)) ${cur[1]}:$((PER_PHASE / 2)) " "$got" \
        "phase $phase (config $name): seq-$first..seq-$last split over ${cur[*]}"
    counts=$(position_counts)
    deltas=$("$E2E_PYTHON" -c '
import sys
before = [int(x.split(":")[1]) for x in sys.argv[1].split()]
after = [x.split(":") for x in sys.argv[2].split()]
print(" ".join("%s:%d" % (p, int(n) - b) for (p, n), b in zip(after, before)))
' "$prev_counts" "$counts")
    assert_eq "${cur[0]}:$((PER_PHASE / 2)) ${cur[1]}:$((PER_PHASE / 2))" "$deltas" \
        "phase $phase: stats per-backend packets grew by exactly the phase's split"
    prev_counts=$counts
done

# -------------------------------------------------- part 2: during the stream
log "--- part 2: $STREAM datagrams at $RATE/s, reloads alternating as fast as they run"
assert_ok "reload to config A before the stream" pm reload lo --config "$W/a.json"
s_first=$seq_next s_last=$((seq_next + STREAM - 1))
send_udp_seq "$NS" 127.0.0.1 "$FRONTEND" "$s_first" "$s_last" "$RATE" >"$W/sender.out" 2>&1 &
sender=$!
E2E_PIDS+=("$sender")
# One shell inside the namespace runs the whole loop (an `ip netns exec` per
# reload would cost 0.1 s each). Each reload's exit status goes to a file:
# "N ok|bad RC".
in_ns "$NS" bash -c '
    sender=$1 max=$2 pm=$3 dir=$4
    for ((n = 0; n < max; n++)); do
        kill -0 "$sender" 2>/dev/null || break
        if ((n == 4)); then
            "$pm" reload lo --config "$dir/bad-port0.json" >/dev/null 2>&1
            echo "$n bad $?"
        fi
        if ((n % 2 == 0)); then cfg=b; else cfg=a; fi
        "$pm" reload lo --config "$dir/$cfg.json" >"$dir/reload-$n.out" 2>&1
        echo "$n ok $?"
        sleep 0.02  # pacing of the reload loop, not a readiness wait
    done' loop "$sender" "$MAX_RELOADS" "$PORTMUX" "$W" >"$W/reloads.txt"
reloads=$(awk '$2 == "ok"' "$W/reloads.txt" | wc -l)
reload_fail=$(awk '$2 == "ok" && $3 != 0' "$W/reloads.txt" | wc -l)
bad_rc=$(awk '$2 == "bad" { print $3 }' "$W/reloads.txt")
wait "$sender"
assert_eq "$STREAM" "$(cat "$W/sender.out")" "part 2: datagrams sent"
log "part 2: $reloads reloads while the stream ran"
assert_eq 0 "$reload_fail" "part 2: reloads that exited non-zero"
assert_eq 1 "$bad_rc" "part 2: the invalid reload in the middle exited 1"
total=$((PHASES * PER_PHASE + STREAM))
wait_for_lines "$total" 10 "$SINK" || fail "part 2: only $(line_count "$SINK") of $total datagrams arrived"
sleep 0.5  # grace period: catch late duplicates

# Analysis of part 2 in sequence order.
analysis=$("$E2E_PYTHON" - "$SINK" "$s_first" "$s_last" "${A[*]}" "${B[*]}" <<'EOF'
import sys
path, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
a, b = [int(p) for p in sys.argv[4].split()], [int(p) for p in sys.argv[5].split()]
where = {}
dups = 0
for line in open(path):
    port, payload = line.split()
    n = int(payload[4:])
    if first <= n <= last:
        if n in where:
            dups += 1
        where[n] = int(port)
missing = [n for n in range(first, last + 1) if n not in where]
stray = sorted({p for p in where.values() if p not in a + b})
order = [where[n] for n in range(first, last + 1) if n in where]
sets = ["A" if p in a else "B" for p in order]
switches = sum(1 for x, y in zip(sets, sets[1:]) if x != y)
pos = [(a + b).index(p) % 2 for p in order]
breaks = sum(1 for x, y in zip(pos, pos[1:]) if x == y)
print(len(where), dups, len(missing), " ".join(map(str, stray)) or "-", switches, breaks,
      " ".join("%d:%d" % (p, order.count(p)) for p in a + b))
EOF
)
read -r got dups missing stray switches breaks split <<<"$analysis"
log "part 2: split $split, $switches switches between A and B"
assert_eq "$STREAM" "$got" "part 2: distinct datagrams delivered"
assert_eq 0 "$dups" "part 2: datagrams delivered twice"
assert_eq 0 "$missing" "part 2: datagrams lost"
assert_eq - "$stray" "part 2: datagrams at a port of neither A nor B"
if ((switches >= 1 && switches <= reloads)); then
    pass "part 2: the stream switched between A and B $switches times (at least 1, at most $reloads reloads)"
else
    fail "part 2: the stream switched between A and B $switches times with $reloads reloads"
fi
assert_eq 0 "$breaks" "part 2: consecutive datagrams that hit the same position (round robin broken by a swap)"

# ------------------------------------------------------------- both parts
read -r received forwarded dropped < <(position_counts totals)
assert_eq "$total" "$received" "stats: received on $FRONTEND"
assert_eq "$total" "$forwarded" "stats: forwarded from $FRONTEND"
assert_eq 0 "$dropped" "stats: dropped on $FRONTEND"
assert_eq "$total" "$(line_count "$SINK")" "sink: datagrams received in total"
dups=$(awk '{ print $2 }' "$SINK" | sort | uniq -d | wc -l)
assert_eq 0 "$dups" "sink: no datagram delivered twice over both parts"
assert_eq 0 "$(udp_counter "$NS" UdpRcvbufErrors)" "no datagram dropped by a full socket buffer"

# Per-backend counters over the whole run. They are kept by position in the
# frontend's backend list (the loader never rewrites the data path's per-CPU
# counters, which would race with it), so after A and B swapped many times a
# position holds what every port there received: compare totals.
stats_forwarded=$(pm stats lo --json | "$E2E_PYTHON" -c '
import json, sys
f = next(f for i in json.load(sys.stdin)["interfaces"] for f in i["frontends"] if f["port"] == int(sys.argv[1]))
print(sum(b["packets"] for b in f["backends"]) + f["removed_backends"]["packets"])' "$FRONTEND")
assert_eq "$(wc -l < "$SINK")" "$stats_forwarded" \
    "stats: per-position packets account for every datagram the sinks got"

assert_ok "portmux detach lo" pm detach lo
finish
