#!/usr/bin/env bash
# e2e: the systemd unit would work. PID 1 here is not systemd, so the unit
# cannot be started; instead:
#   - the unit says what `portmux run` needs: Type=notify, ExecStart runs
#     `portmux run %i --config .../%i.json`, ExecReload sends SIGHUP, it is
#     bound to the interface's device, and `systemd-analyze security`
#     rates it at most 3.0;
#   - `portmux run` runs under setpriv with exactly the unit's capability
#     set (bounding, inheritable and ambient) and does its whole job there:
#     attach, READY=1, liveness, a file reload, SIGHUP, /metrics, SIGTERM
#     detach;
#   - that run, traced with strace -f, makes only system calls the unit's
#     SystemCallFilter= admits, opens only socket families its
#     RestrictAddressFamilies= admits, and writes only under its
#     ReadWritePaths= (unit_sandbox_check.py).
# e2e-timeout: 150
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
E2E_TIME_LIMIT=130

UNIT_IN=$REPO_ROOT/scripts/systemd/portmux@.service.in

e2e_start ip setpriv strace systemd-analyze curl python3

W=$E2E_WORKDIR
make_ns_var NS pmsd
log "namespace $NS, unit $UNIT_IN"

# ------------------------------------------------------------ the unit file
setting() { sed -n "s/^$1=//p" "$UNIT_IN"; }
assert_eq notify "$(setting Type)" "Type=notify"
assert_match "ExecStart runs portmux run %i with /etc/portmux/%i.json" \
    '^@PORTMUX_SBIN@/portmux run %i --config @PORTMUX_SYSCONF@/portmux/%i\.json' "$(setting ExecStart)"
assert_eq '/bin/kill -HUP $MAINPID' "$(setting ExecReload)" "ExecReload sends SIGHUP"
assert_eq sys-subsystem-net-devices-%i.device "$(setting BindsTo)" "BindsTo the interface's device unit"
assert_eq strict "$(setting ProtectSystem)" "ProtectSystem=strict"
assert_eq /sys/fs/bpf "$(setting ReadWritePaths)" "ReadWritePaths=/sys/fs/bpf"
assert_eq yes "$(setting NoNewPrivileges)" "NoNewPrivileges=yes"
caps=$(setting CapabilityBoundingSet)
assert_eq "$caps" "$(setting AmbientCapabilities)" "ambient capabilities = bounding set"
assert_no_match "no CAP_SYS_ADMIN" 'CAP_SYS_ADMIN' "$caps"

sed -e 's#@PORTMUX_SBIN@#/usr/sbin#g' -e 's#@PORTMUX_SYSCONF@#/etc#g' "$UNIT_IN" >"$W/portmux@.service"
security=$(systemd-analyze security --offline=true --no-pager "$W/portmux@.service" 2>&1)
score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' <<<"$security")
log "systemd-analyze security: exposure $score"
if [[ -n $score ]] && awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }'; then
    pass "systemd-analyze security exposure $score <= 3.0"
else
    fail "systemd-analyze security exposure '$score' (want <= 3.0)"
    printf '%s\n' "$security" | tail -25 | sed 's/^/    | /'
fi

# ------------------------------- portmux run with exactly the unit's caps
# "CAP_BPF CAP_NET_ADMIN" -> "+bpf,+net_admin" for setpriv.
setpriv_caps=-all
for cap in $caps; do
    cap=${cap#CAP_}
    setpriv_caps+=",+${cap,,}"
done
log "setpriv capability set: $setpriv_caps"

SINK=$W/udp.txt
RUNLOG=$W/run.log
NOTIFY=$W/notify.txt
NOTIFY_NAME=portmux-sd-$E2E_ID
CONF=$W/pm.json
printf '{ "frontends": [ { "port": 9000, "protocol": "udp", "backends": [ 9001, 9002 ] } ] }\n' >"$CONF"
start_udp_sink "$NS" "$SINK" 9001 9002
wait_until 5 all_ports_listening "$NS" udp 9001 9002 || die "UDP sink never listened"
start_notify_listener "$NS" "$NOTIFY_NAME" "$NOTIFY"

register_detach "$NS" lo
NOTIFY_SOCKET=@$NOTIFY_NAME ip netns exec "$NS" sh -c 'mount --bind "$0" /sys/fs/bpf && exec "$@"' "$E2E_BPFFS" \
    strace -f -qq -o "$W/trace.txt" \
    setpriv --bounding-set="$setpriv_caps" --inh-caps="$setpriv_caps" --ambient-caps="$setpriv_caps" \
    "$PORTMUX" run lo --config "$CONF" --mode generic --metrics-listen 127.0.0.1:9469 \
    >"$RUNLOG" 2>&1 </dev/null &
RUN_PID=$!
E2E_PIDS+=("$RUN_PID")
wait_for_log 60 "$NOTIFY" '^READY=1' || die "no READY=1 under the unit's capabilities; log: $(cat "$RUNLOG")"
pass "READY=1 with exactly $caps"
assert_match "status sees the attachment" '9000 +udp +9001 \(down for IPv6\), 9002' "$(in_ns "$NS" "$PORTMUX" status lo)"
sent=$(send_udp_seq "$NS" 127.0.0.1 9000 1 20)
wait_for_lines 20 10 "$SINK" || fail "only $(line_count "$SINK") of $sent datagrams arrived"
assert_eq "9001 9002 " "$(ports_of "$SINK" 1)" "traffic reaches both backends"

printf '{ "frontends": [ { "port": 9000, "protocol": "udp", "backends": [ 9002 ] } ] }\n' >"$CONF.tmp"
mv -f "$CONF.tmp" "$CONF"
wait_for_log 10 "$RUNLOG" 'event=reloaded .*trigger=file' || fail "no reload of the changed file"
# strace's pid is RUN_PID; portmux is its child (after setpriv's exec).
PM_PID=$(pgrep -P "$RUN_PID" | head -1)
[[ -n $PM_PID ]] || die "cannot find portmux under strace"
kill -HUP "$PM_PID"
wait_for_log 10 "$RUNLOG" 'event=reloaded .*trigger=signal' || fail "no reload after SIGHUP"
metrics=$(ip netns exec "$NS" curl -sf --max-time 5 http://127.0.0.1:9469/metrics)
assert_match "/metrics answers under the unit's capabilities" '^portmux_attached\{iface="lo",mode="generic"' "$metrics"
sleep 1  # a few liveness rounds in the trace
kill -TERM "$PM_PID"
rc=0
wait "$RUN_PID" || rc=$?
assert_eq 0 "$rc" "exit status after SIGTERM (through strace)"
assert_match "detached on SIGTERM" 'event=detached iface=lo' "$(cat "$RUNLOG")"
assert_no_match "no XDP program left on lo" 'prog/xdp' "$(ip -n "$NS" -d link show lo)"

# --------------------------------------------- the trace against the unit
systemd-analyze syscall-filter --no-pager >"$W/groups.txt" 2>/dev/null || die "systemd-analyze syscall-filter failed"
if "$E2E_PYTHON" "$REPO_ROOT/tests/e2e/unit_sandbox_check.py" "$UNIT_IN" "$W/trace.txt" "$W/groups.txt" >"$W/check.txt"; then
    pass "the unit's SystemCallFilter, RestrictAddressFamilies and ReadWritePaths admit the traced run"
else
    fail "the unit's sandbox would refuse what portmux run did:"
    grep FAIL "$W/check.txt" | sed 's/^/    | /'
fi
log "$(grep -c "^ok" "$W/check.txt") sandbox checks ok"
finish
