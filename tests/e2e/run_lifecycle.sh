#!/usr/bin/env bash
# e2e: `portmux run` as a service on a namespace's lo (generic XDP).
#
# Start: it attaches, logs event=attached, and sends READY=1 to an abstract
# NOTIFY_SOCKET (@name, like systemd's). Datagrams to 9000 reach 9001/9002.
# Reloads, each checked by where the next datagrams go:
#   - an editor's rename-over of the config file (9000 -> 9003),
#   - an invalid config renamed over: refused, logged with the JSON path,
#     the running config kept (still 9003),
#   - SIGHUP with the file unchanged: reloaded (trigger=signal),
#   - the file replaced by a Kubernetes-ConfigMap layout (pm.json ->
#     ..data/pm.json, ..data -> ..v1), then the ..data symlink swapped to
#     ..v2 the way the kubelet does it (9000 -> 9002).
# Stop: SIGTERM ends it with exit status 0 and event=detached, and nothing
# is left: no XDP program, no TC filter, no pins.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_start ip tc ss taskset python3

make_ns_var NS pmrl
W=$E2E_WORKDIR
SINK=$W/udp.txt
RUNLOG=$W/run.log
NOTIFY=$W/notify.txt
NOTIFY_NAME=portmux-e2e-$E2E_ID
mkdir "$W/etc"
CONF=$W/etc/pm.json
log "namespace $NS, portmux $PORTMUX"

config() {  # config BACKEND...: 9000/udp over the backends
    local list
    list=$(printf '%s, ' "$@")
    printf '{ "frontends": [ { "port": 9000, "protocol": "udp", "backends": [ %s ] } ] }\n' "${list%, }"
}
# replace_by_rename TEXT: write a temporary file, rename it over pm.json.
replace_by_rename() {
    printf '%s\n' "$1" >"$W/etc/.pm.json.tmp"
    mv -f "$W/etc/.pm.json.tmp" "$CONF"
}
# send_and_check WHAT FIRST LAST EXPECTED_PORTS: datagrams seq-FIRST..LAST go
# exactly to EXPECTED_PORTS (a sorted, space-terminated list).
send_and_check() {
    local what=$1 first=$2 last=$3 want=$4 count
    count=$((last - first + 1))
    send_udp_seq "$NS" 127.0.0.1 9000 "$first" "$last" >/dev/null
    wait_for_lines "$last" 10 "$SINK" || fail "$what: only $(line_count "$SINK") of $last datagrams arrived"
    assert_eq "$want" "$(ports_of "$SINK" "$first")" "$what: seq-$first..$last went to"
    assert_eq "$count" "$(awk -v f="$first" 'substr($2, 5) + 0 >= f' "$SINK" | wc -l)" "$what: datagrams delivered"
}

start_udp_sink "$NS" "$SINK" 9001 9002 9003
wait_until 5 all_ports_listening "$NS" udp 9001 9002 9003 || die "UDP sink never listened"
start_notify_listener "$NS" "$NOTIFY_NAME" "$NOTIFY"
config 9001 9002 >"$CONF"

register_detach "$NS" lo
NOTIFY_SOCKET=@$NOTIFY_NAME start_portmux_run "$NS" "$RUNLOG" lo --config "$CONF" --mode generic
wait_for_log 30 "$NOTIFY" '^READY=1' || die "no READY=1 on NOTIFY_SOCKET; log: $(cat "$RUNLOG")"
pass "READY=1 sent to the abstract NOTIFY_SOCKET @$NOTIFY_NAME"
assert_eq 1 "$(log_count "$RUNLOG" '^level=info event=attached iface=lo mode=generic')" "log: one event=attached line"
assert_match "status: attached" '9000 +udp +9001 \(down for IPv6\), 9002 \(down for IPv6\)' "$(in_ns "$NS" "$PORTMUX" status lo)"
send_and_check "initial config" 1 10 "9001 9002 "

# --------------------------------------------------------- rename-over
replace_by_rename "$(config 9003)"
wait_for_log 10 "$RUNLOG" 'event=reloaded .*trigger=file' || fail "no reload after the rename-over"
send_and_check "after the rename-over" 11 20 "9003 "

# ------------------------------------------------------- invalid config
replace_by_rename '{ "frontends": [ { "port": 9000, "protocol": "udp", "backends": [ 70000 ] } ] }'
wait_for_log 10 "$RUNLOG" 'event=config_refused' || fail "no event=config_refused for an invalid config"
assert_match "the refusal names the file and the JSON path" \
    "level=error event=config_refused iface=lo trigger=file config=$CONF reason=\"$CONF: frontends\\[0\\]\\.backends\\[0\\]" \
    "$(grep config_refused "$RUNLOG")"
send_and_check "after the refused config (old one kept)" 21 30 "9003 "
assert_eq 1 "$(log_count "$RUNLOG" 'event=reloaded')" "the invalid config caused no reload"

# ---------------------------------------------------------------- SIGHUP
replace_by_rename "$(config 9003)"   # valid again (same as the running one)
wait_for_log 10 "$RUNLOG" 'event=reloaded' 2 || fail "no reload of the repaired config"
kill -HUP "$RUN_PID"
wait_for_log 10 "$RUNLOG" 'event=reloaded .*trigger=signal' || fail "no reload after SIGHUP"
wait_for_log 5 "$NOTIFY" '^RELOADING=1' || fail "no RELOADING=1 notification"
send_and_check "after SIGHUP" 31 40 "9003 "

# ---------------------------------------- ConfigMap layout and ..data swap
mkdir "$W/etc/..v1"
config 9001 >"$W/etc/..v1/pm.json"
ln -s ..v1 "$W/etc/..data"
ln -s ..data/pm.json "$W/etc/.pm.json.link"
mv -Tf "$W/etc/.pm.json.link" "$CONF"   # pm.json becomes the ConfigMap's symlink
wait_for_log 10 "$RUNLOG" 'event=reloaded .*trigger=file' 3 || fail "no reload when pm.json became a symlink"
send_and_check "ConfigMap layout, ..data -> ..v1" 41 50 "9001 "
mkdir "$W/etc/..v2"
config 9002 >"$W/etc/..v2/pm.json"
ln -s ..v2 "$W/etc/..data_tmp"
mv -Tf "$W/etc/..data_tmp" "$W/etc/..data"   # the kubelet's atomic swap
rm -rf "$W/etc/..v1"
wait_for_log 10 "$RUNLOG" 'event=reloaded .*trigger=file' 4 || fail "no reload after the ..data symlink swap"
send_and_check "after the ..data swap to ..v2" 51 60 "9002 "

# ----------------------------------------------------------------- SIGTERM
kill -TERM "$RUN_PID"
rc=0
wait "$RUN_PID" || rc=$?
assert_eq 0 "$rc" "exit status after SIGTERM"
assert_match "log: event=detached" '^level=info event=detached iface=lo' "$(cat "$RUNLOG")"
assert_no_match "no XDP program left on lo" 'prog/xdp' "$(ip -n "$NS" -d link show lo)"
assert_no_match "no TC egress filter left on lo" 'bpf' "$(ip netns exec "$NS" tc filter show dev lo egress 2>&1)"
assert_eq "" "$(ls -A "$E2E_BPFFS" | grep -v -e '\.debug$' -e '^xdp$')" "no portmux pins left in bpffs"
assert_eq 1 "$(log_count "$RUNLOG" '^level=error')" "one error logged: the refused config"
finish
