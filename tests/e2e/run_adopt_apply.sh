#!/usr/bin/env bash
# e2e: `portmux apply` and adoption by `portmux run`, generic XDP on a
# namespace's lo.
#
# apply: the first attaches ("attached", exit 0), the second reloads the same
# config ("reloaded", exit 0) and leaves status exactly as it was; a new
# config applies; an invalid one exits 1 and changes nothing.
# Adoption with no loss: at 1,000 datagrams/s, `portmux run` starts on the
# interface apply attached, adopts it (event=adopted, same program id) and
# reloads it to its own config; every datagram sent arrives. With
# --keep-on-exit, SIGTERM exits 0 and leaves the attachment serving
# (traffic still arrives); a second run adopts it again; its SIGTERM
# detaches.
# e2e-timeout: 150
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
E2E_TIME_LIMIT=130

e2e_start ip ss taskset python3

make_ns_var NS pmad
W=$E2E_WORKDIR
SINK=$W/udp.txt
config() {  # config FILE BACKEND...
    local file=$1 list
    shift
    list=$(printf '%s, ' "$@")
    printf '{ "frontends": [ { "port": 9000, "protocol": "udp", "backends": [ %s ] } ] }\n' "${list%, }" >"$file"
}
config "$W/a.json" 9001 9002
config "$W/b.json" 9001 9002 9003
printf '{ "frontends": [ { "port": 9000, "protocol": "udp", "backends": [ 9001 ], "surprise": 1 } ] }\n' >"$W/bad.json"
pm() { in_ns "$NS" "$PORTMUX" "$@"; }
program_id() { pm status lo | sed -n 's/.*program id \([0-9][0-9]*\).*/\1/p' | head -1; }

start_udp_sink "$NS" "$SINK" 9001 9002 9003
wait_until 5 all_ports_listening "$NS" udp 9001 9002 9003 || die "UDP sink never listened"
register_detach "$NS" lo

# ------------------------------------------------------------------ apply
assert_ok "apply (not attached yet)" pm apply lo --config "$W/a.json" --mode generic
assert_match "the first apply attaches" '^attached to lo: generic mode' "$E2E_LAST_OUTPUT"
first=$(pm status lo --json)
id=$(program_id)
assert_ok "apply again, same config" pm apply lo --config "$W/a.json" --mode generic
assert_match "the second apply reloads" '^reloaded lo: 1 frontend' "$E2E_LAST_OUTPUT"
assert_eq "$first" "$(pm status lo --json)" "status identical after the second apply"
E2E_EXPECT_RC=1 assert_fails "apply an invalid config" pm apply lo --config "$W/bad.json"
assert_match "the error names the JSON path" 'frontends\[0\]\.surprise' "$E2E_LAST_OUTPUT"
assert_eq "$first" "$(pm status lo --json)" "the invalid config changed nothing"
E2E_EXPECT_RC=2 assert_fails "apply without --config is a usage error" pm apply lo

# -------------------------------------------- adoption under traffic
N=6000
send_udp_seq "$NS" 127.0.0.1 9000 1 "$N" 1000 >"$W/sent.txt" &
SENDER=$!
wait_until 10 lines_at_least 500 "$SINK" || die "traffic did not start"
start_portmux_run "$NS" "$W/run1.log" lo --config "$W/b.json" --keep-on-exit
FIRST_RUN=$RUN_PID
wait_for_log 30 "$W/run1.log" 'event=adopted' || die "run did not adopt: $(cat "$W/run1.log")"
pass "run logged event=adopted"
assert_eq "$id" "$(program_id)" "the same program serves (id $id): adopted, not re-attached"
wait_until 10 lines_at_least 4000 "$SINK" || fail "traffic stalled after the adoption"
assert_match "datagrams reach 9003 (run's config) after the adoption" '^9003 ' "$(tail -50 "$SINK")"

# --keep-on-exit: SIGTERM leaves the attachment serving.
kill -TERM "$FIRST_RUN"
rc=0
wait "$FIRST_RUN" || rc=$?
assert_eq 0 "$rc" "run --keep-on-exit: exit status after SIGTERM"
assert_match "it logged that it kept the attachment" 'event=stopped iface=lo attachment="kept \(--keep-on-exit\)"' "$(cat "$W/run1.log")"
assert_eq "$id" "$(program_id)" "the program is still attached"
start_portmux_run "$NS" "$W/run2.log" lo --config "$W/b.json"
wait_for_log 30 "$W/run2.log" 'event=adopted' || die "the second run did not adopt: $(cat "$W/run2.log")"
pass "a second run adopted the kept attachment"
wait "$SENDER"
assert_eq "$N" "$(cat "$W/sent.txt")" "datagrams sent"
wait_for_lines "$N" 15 "$SINK" || true
assert_eq "$N" "$(line_count "$SINK")" "every datagram arrived across two adoptions and a kept exit"
assert_eq "$N" "$(awk '{ print $2 }' "$SINK" | sort -u | wc -l)" "each exactly once"

kill -TERM "$RUN_PID"
rc=0
wait "$RUN_PID" || rc=$?
assert_eq 0 "$rc" "the second run: exit status after SIGTERM"
assert_match "and it detached" 'event=detached iface=lo' "$(cat "$W/run2.log")"
assert_no_match "no XDP program left on lo" 'prog/xdp' "$(ip -n "$NS" -d link show lo)"
finish
