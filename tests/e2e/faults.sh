#!/usr/bin/env bash
# e2e: portmux under faults, in one throwaway namespace (lo and veths).
# e2e-timeout: 170
#
#  1. misuse: attach twice (second exits 1 "already attached", the first
#     still forwards); detach when not attached (exit 1, "not attached");
#     attach/detach/status on a missing interface (exit 1, message names it).
#  2. a veth deleted while attached: status lists it as "pins present but no
#     portmux XDP program" and exits 0, `status IFACE` exits 1 saying the
#     interface is gone, detach exits 0, no pins remain.
#  3. SIGKILL in the middle of attach: with strace, the loader is killed at
#     every step after the program is loaded (mkdirat of the pin directory,
#     each of the 7 pins, each map write), plus at 2 moments chosen by time.
#     After each: status exits 0 or 1 without crashing, detach leaves no XDP
#     program, no TC filter and no pins, status then says "not attached".
#     With an XDP program left and no pins, a new attach is refused naming
#     portmux_xdp. At the end a fresh attach forwards traffic exactly.
#  4. SIGKILL in the middle of reload, at every bpf() call: status --json
#     exits 0 and every frontend is wholly the old or wholly the new one; a
#     new reload then installs the new config.
#  5. bpffs not mounted: portmux mounts it (bpf_fs, mode 1700) and works; the
#     pins die with that mount namespace: a later status (another mount
#     namespace) reports the program and suggests detach, and detach still
#     removes the program and the TC filter by name.
#  6. another XDP program on the interface (ip link xdpgeneric, and
#     xdp-loader): portmux either shares it through libxdp's dispatcher or
#     refuses naming it; the other program stays attached, same id.
#  7. without privileges: as nobody every privileged verb exits 1 naming
#     CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON; root without CAP_BPF/CAP_SYS_ADMIN
#     is told CAP_BPF only, without CAP_NET_ADMIN is told CAP_NET_ADMIN only,
#     without CAP_PERFMON/CAP_SYS_ADMIN is told CAP_PERFMON only (before any
#     verifier log); nothing changes; `portmux check` works as nobody.
set -uo pipefail
E2E_TIME_LIMIT=${E2E_TIME_LIMIT:-160}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONFIG=$REPO_ROOT/examples/udp-roundrobin.json

e2e_start ip tc ss taskset python3 setpriv clang timeout
[[ -r $CONFIG ]] || die "missing config $CONFIG"

make_ns_var NS pmflt
W=$E2E_WORKDIR
chmod 755 "$W"  # so that nobody can read the configs in part 7
cp "$CONFIG" "$W/rr.json"
chmod 644 "$W/rr.json"
V1=pmf$E2E_ID   # deleted while attached
V2=pmg$E2E_ID   # bpffs not mounted
V3=pmh$E2E_ID   # xdp-loader
for v in "$V1" "$V2" "$V3"; do
    make_veth "$NS" "$v"
done
log "namespace $NS, interfaces lo $V1 $V2 $V3"

pm() { in_ns "$NS" "$PORTMUX" "$@"; }
xdp_on() { ip -n "$NS" -d link show "$1" | grep -o 'prog/xdp id [0-9]*' | head -1; }
tc_on() { ip netns exec "$NS" tc filter show dev "$1" egress 2>/dev/null | grep -c 'bpf'; }
pins_of() { ls -A "$E2E_BPFFS/portmux/$1" 2>/dev/null | tr '\n' ' '; }

# clean_after WHAT IFACE: nothing of portmux is left on IFACE.
clean_after() {
    local what=$1 iface=$2 left=
    [[ -n $(xdp_on "$iface") ]] && left+="XDP program ($(xdp_on "$iface")); "
    (($(tc_on "$iface") > 0)) && left+="TC egress filter; "
    [[ -e $E2E_BPFFS/portmux/$iface ]] && left+="pins ($(pins_of "$iface")); "
    if [[ -z $left ]]; then
        pass "$what: nothing left on $iface"
    else
        fail "$what: left on $iface: $left"
    fi
}

start_udp_sink "$NS" "$W/udp.txt" 9876 9877 9878
wait_until 5 all_ports_listening "$NS" udp 9876 9877 9878 || die "UDP sink never listened"
register_detach "$NS" lo
for v in "$V1" "$V2" "$V3"; do register_detach "$NS" "$v"; done

# check_forwarding WHAT FIRST: 6 datagrams seq-FIRST.. arrive, 2 per backend.
check_forwarding() {
    local what=$1 first=$2 before split
    before=$(line_count "$W/udp.txt")
    send_udp_seq "$NS" 127.0.0.1 9875 "$first" $((first + 5)) >/dev/null
    wait_for_lines $((before + 6)) 5 "$W/udp.txt" || true
    split=$(tail -n +$((before + 1)) "$W/udp.txt" | awk '{ print $1 }' | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
    assert_eq "9876:2 9877:2 9878:2 " "$split" "$what: 6 datagrams split 2/2/2"
}

# ------------------------------------------------------------------ 1. misuse
log "--- 1. misuse"
E2E_EXPECT_RC=1 assert_fails "detach lo when not attached" pm detach lo
assert_match "detach says not attached" '^portmux: error: portmux is not attached to lo$' "$E2E_LAST_OUTPUT"
E2E_EXPECT_RC=1 assert_fails "attach to a missing interface" pm attach "nosuch$E2E_ID" --config "$W/rr.json"
assert_match "attach names the missing interface" "no such interface: nosuch$E2E_ID" "$E2E_LAST_OUTPUT"
E2E_EXPECT_RC=1 assert_fails "detach of a missing interface" pm detach "nosuch$E2E_ID"
assert_match "detach names the missing interface" "no such interface: nosuch$E2E_ID" "$E2E_LAST_OUTPUT"
E2E_EXPECT_RC=1 assert_fails "status of a missing interface" pm status "nosuch$E2E_ID"
assert_ok "attach lo" pm attach lo --mode generic --config "$W/rr.json" || finish
first_id=$(xdp_on lo)
E2E_EXPECT_RC=1 assert_fails "second attach to lo" pm attach lo --mode generic --config "$W/rr.json"
assert_match "second attach says already attached, detach first" 'already attached to lo.*detach it first' "$E2E_LAST_OUTPUT"
assert_eq "$first_id" "$(xdp_on lo)" "the first attachment's program is still on lo"
check_forwarding "after the refused second attach" 1
assert_ok "detach lo" pm detach lo
clean_after "detach" lo

# ------------------------------------------------------ 2. veth deleted
log "--- 2. veth deleted while attached"
assert_ok "attach $V1 native" pm attach "$V1" --mode native --config "$W/rr.json"
ip -n "$NS" link del "$V1" || fail "cannot delete $V1"
assert_ok "status (all interfaces) after $V1 was deleted" pm status
assert_match "status says pins without a program and suggests detach" \
    "$V1: pins present but no portmux XDP program .*portmux detach $V1" "$E2E_LAST_OUTPUT"
E2E_EXPECT_RC=1 assert_fails "status $V1 exits 1: its attachment is gone" pm status "$V1"
assert_match "status $V1 says the interface no longer exists" "$V1 no longer exists" "$E2E_LAST_OUTPUT"
assert_ok "detach $V1 (deleted)" pm detach "$V1"
assert_eq "" "$(pins_of "$V1")" "no pins of $V1 after detach"
assert_ok "status after" pm status
assert_match "status: nothing attached" 'not attached to any interface' "$E2E_LAST_OUTPUT"

# --------------------------------------------------- 3. SIGKILL during attach
log "--- 3. SIGKILL during attach"
# after_kill WHAT: status survives, detach cleans, status says not attached.
after_kill() {
    local what=$1 rc=0 out
    out=$(pm status lo 2>&1) || rc=$?
    if ((rc > 1)); then
        fail "$what: status lo exited $rc: $out"
    elif grep -q 'opening pinned map' <<<"$out"; then
        fail "$what: status lo gives a raw error for a half-made attachment instead of suggesting detach: $out"
    else
        pass "$what: status lo exits $rc: $(head -1 <<<"$out")"
    fi
    rc=0
    out=$(pm detach lo 2>&1) || rc=$?
    if ((rc == 0)) || grep -q 'not attached to lo' <<<"$out"; then
        pass "$what: detach lo exits $rc"
    else
        fail "$what: detach lo exited $rc: $out"
    fi
    clean_after "$what, after detach" lo
    E2E_EXPECT_RC=1 assert_fails "$what: status lo after detach" pm status lo
}

if command -v strace >/dev/null 2>&1; then
    # A dry run lists the loader's bpf() and mkdirat() calls in order (the
    # pin directories are made with mkdirat under a checked directory fd).
    dry_run=$(in_ns "$NS" strace -f -qq -o "$W/attach.trace" -e trace=bpf,mkdirat \
        "$PORTMUX" attach lo --mode generic --config "$W/rr.json" 2>&1) ||
        fail "dry run of attach under strace failed"
    # A program held by a bpf_link (where libxdp's dispatcher is unavailable)
    # leaves with the killed process until its link is pinned; one attached
    # through netlink stays behind, without pins, when killed at mkdirat.
    if grep -q 'bpf_link attachment' <<<"$dry_run"; then orphans_expected=0; else orphans_expected=1; fi
    pm detach lo >/dev/null 2>&1
    points=$(awk '
        / bpf\(/ { nb++ }
        / mkdirat\(/ { nm++ }
        / mkdirat\([0-9]+, "lo"/ { print "mkdirat " nm; pinning = 1 }
        / bpf\(BPF_OBJ_PIN/ { print "bpf " nb }
        pinning && / bpf\(BPF_MAP_UPDATE_ELEM/ { print "bpf " nb }' "$W/attach.trace")
    log "kill points: $(tr '\n' ',' <<<"$points")"
    (($(wc -l <<<"$points") >= 9)) || fail "the dry run shows fewer steps than expected: $points"
    left_xdp_no_pins=0
    while read -r call n; do
        [[ -n $call ]] || continue
        rc=0
        in_ns "$NS" strace -f -qq -o /dev/null -e trace="$call" -e inject="$call:signal=KILL:when=$n" \
            "$PORTMUX" attach lo --mode generic --config "$W/rr.json" >/dev/null 2>&1 || rc=$?
        state="xdp=[$(xdp_on lo)] tc=$(tc_on lo) pins=[$(pins_of lo)]"
        if ((rc == 0)); then
            fail "attach killed at $call #$n: it exited 0 (not killed)"
        else
            pass "attach killed at $call #$n (exit $rc): $state"
        fi
        if [[ $call == mkdirat && -n $(xdp_on lo) && -z $(pins_of lo) ]]; then
            left_xdp_no_pins=1
            E2E_EXPECT_RC=1 assert_fails "killed at $call #$n: attach again over the orphan program" \
                pm attach lo --mode generic --config "$W/rr.json"
            assert_match "the refusal names portmux_xdp" 'portmux_xdp' "$E2E_LAST_OUTPUT"
            if grep -q 'portmux detach' <<<"$E2E_LAST_OUTPUT"; then
                pass "the refusal suggests portmux detach"
            else
                fail "attach over an orphan portmux_xdp (killed attach) refuses without suggesting \`portmux detach lo\`: $(tail -1 <<<"$E2E_LAST_OUTPUT")"
            fi
            rc=0
            out=$(pm status lo 2>&1) || rc=$?
            if grep -q 'portmux_xdp\|detach' <<<"$out"; then
                pass "status reports the orphan program"
            else
                fail "status lo says '$out' (exit $rc) while portmux_xdp is attached to lo without pins"
            fi
        fi
        after_kill "attach killed at $call #$n"
    done <<<"$points"
    assert_eq "$orphans_expected" "$left_xdp_no_pins" \
        "kill points at mkdirat that left an XDP program without pins ($(grep -o '[a-z_ ]*attachment' <<<"$dry_run"))"
else
    skip "strace not installed: the deterministic kill points (add strace to scripts/deps.sh)"
fi
# Kills at moments chosen by time, across the attach's duration.
start=$(date +%s%N)
pm attach lo --mode generic --config "$W/rr.json" >/dev/null 2>&1
ms=$((($(date +%s%N) - start) / 1000000))
pm detach lo >/dev/null 2>&1
for pct in 50 95; do
    delay=$(printf '%d.%03d' $((ms * pct / 100 / 1000)) $((ms * pct / 100 % 1000)))
    rc=0
    in_ns "$NS" timeout -s KILL "$delay" "$PORTMUX" attach lo --mode generic --config "$W/rr.json" \
        >/dev/null 2>&1 || rc=$?
    log "attach killed after ${delay}s (attach takes ${ms} ms): exit $rc, xdp=[$(xdp_on lo)] pins=[$(pins_of lo)]"
    after_kill "attach killed after ${delay}s"
done
assert_ok "fresh attach after all the kills" pm attach lo --mode generic --config "$W/rr.json"
check_forwarding "fresh attach" 100
assert_ok "detach lo" pm detach lo

# --------------------------------------------------- 4. SIGKILL during reload
log "--- 4. SIGKILL during reload"
two() {  # two FILE A1 A2 B1 B2: 9875/udp -> A1,A2 and 9885/udp -> B1,B2
    printf '{ "frontends": [ { "port": 9875, "backends": [%d, %d] }, { "port": 9885, "backends": [%d, %d] } ] }\n' \
        "$2" "$3" "$4" "$5" >"$1"
}
two "$W/r1.json" 9876 9877 9886 9887
two "$W/r2.json" 9878 9879 9888 9889
frontends_of() {  # the backends of each frontend in status --json, "9875:9876,9877 9885:..."
    pm status lo --json | "$E2E_PYTHON" -c '
import json, sys
fs = json.load(sys.stdin)["interfaces"][0]["frontends"]
print(" ".join("%d:%s" % (f["port"], ",".join(str(b["port"]) for b in f["backends"])) for f in fs))'
}
R1="9875:9876,9877 9885:9886,9887"
R2="9875:9878,9879 9885:9888,9889"
assert_ok "attach lo with r1.json" pm attach lo --mode generic --config "$W/r1.json" || finish
if command -v strace >/dev/null 2>&1; then
    in_ns "$NS" strace -f -qq -o "$W/reload.trace" -e trace=bpf "$PORTMUX" reload lo --config "$W/r2.json" \
        >/dev/null 2>&1 || fail "dry run of reload under strace failed"
    calls=$(grep -c ' bpf(' "$W/reload.trace")
    log "reload makes $calls bpf() calls; killing it at each"
    # One shell in the namespace runs every kill (an `ip netns exec` costs
    # 0.1 s): per kill point "N RC STATE STATS_RC".
    in_ns "$NS" bash -c '
        P=$1 W=$2 calls=$3 py=$4
        for ((n = 1; n <= calls; n++)); do
            "$P" reload lo --config "$W/r1.json" >/dev/null 2>&1 || { echo "$n reset-failed - -"; continue; }
            strace -f -qq -o /dev/null -e trace=bpf -e inject="bpf:signal=KILL:when=$n" \
                "$P" reload lo --config "$W/r2.json" >/dev/null 2>&1
            rc=$?
            state=$("$P" status lo --json 2>/dev/null | "$py" -c "
import json, sys
fs = json.load(sys.stdin)[\"interfaces\"][0][\"frontends\"]
print(\"/\".join(\"%d:%s\" % (f[\"port\"], \",\".join(str(b[\"port\"]) for b in f[\"backends\"])) for f in fs))")
            "$P" stats lo >/dev/null 2>&1
            echo "$n $rc ${state:-none} $?"
        done' kills "$PORTMUX" "$W" "$calls" "$E2E_PYTHON" >"$W/reload-kills.txt" 2>"$W/reload-kills.err"
    bad=0 mixed=0 old=0 new=0
    while read -r n rc state stats_rc; do
        a=${state%%/*} b=${state#*/}
        if [[ $rc == 0 || $stats_rc != 0 ]]; then
            fail "reload killed at bpf #$n: reload exit $rc (must be killed), stats exit $stats_rc"
            bad=$((bad + 1))
        elif [[ $a != "${R1%% *}" && $a != "${R2%% *}" || $b != "${R1#* }" && $b != "${R2#* }" ]]; then
            fail "reload killed at bpf #$n: a frontend is neither old nor new: $state"
            bad=$((bad + 1))
        elif [[ $state == "${R1/ //}" ]]; then old=$((old + 1))
        elif [[ $state == "${R2/ //}" ]]; then new=$((new + 1))
        else mixed=$((mixed + 1))
        fi
    done <"$W/reload-kills.txt"
    assert_eq "$calls" "$(wc -l <"$W/reload-kills.txt")" "reload kill points tried"
    assert_eq 0 "$bad" "reload killed at each of $calls bpf() calls: states that are not old/new per frontend"
    log "after the kills: $old wholly old, $new wholly new, $mixed with one frontend swapped (each frontend swaps in one map update)"
    ((old > 0 && new > 0)) && pass "kills before the swap keep the old config, kills after it keep the new" ||
        fail "expected both old ($old) and new ($new) outcomes across the kill points"
else
    skip "strace not installed: reload kill points"
fi
assert_ok "reload to r2.json after the kills" pm reload lo --config "$W/r2.json"
assert_eq "$R2" "$(frontends_of)" "status shows r2.json"
assert_ok "detach lo" pm detach lo
clean_after "detach after the reload kills" lo

# ----------------------------------------------------- 5. bpffs not mounted
log "--- 5. bpffs not mounted"
# Plain `ip netns exec` (not in_ns): a fresh sysfs, no bpffs on /sys/fs/bpf.
out=$(ip netns exec "$NS" sh -c '
    P=$1 V=$2 C=$3
    echo "before $(stat -f -c %T /sys/fs/bpf)"
    "$P" attach "$V" --mode native --config "$C" >/dev/null || echo "attach failed $?"
    echo "after $(stat -f -c %T /sys/fs/bpf) $(stat -c %a /sys/fs/bpf)"
    "$P" status "$V" >/dev/null || echo "status failed $?"
    "$P" detach "$V" >/dev/null || echo "detach failed $?"
    "$P" attach "$V" --mode native --config "$C" >/dev/null || echo "second attach failed $?"
' sh "$PORTMUX" "$V2" "$W/rr.json" 2>&1)
assert_eq "before sysfs|after bpf_fs 1700|" "$(tr '\n' '|' <<<"$out")" \
    "portmux mounted bpffs itself (mode 1700: 700 plus the sticky bit bpffs always sets) and attach, status, detach worked in that mount namespace"
# That bpffs died with its mount namespace, taking the pins along.
assert_match "the program attached there is still on $V2" 'prog/xdp' "$(ip -n "$NS" -d link show "$V2")"
out=$(ip netns exec "$NS" "$PORTMUX" status "$V2" 2>&1)
log "status $V2 with the pins gone: $out"
assert_match "status $V2 reports the program whose pins are gone and suggests detach" \
    "portmux XDP program .*portmux detach $V2" "$out"
assert_ok "detach $V2 without its pins (found by name)" ip netns exec "$NS" "$PORTMUX" detach "$V2"
clean_after "detach without pins" "$V2"

# ------------------------------------------------ 6. another XDP program
log "--- 6. another XDP program on the interface"
cat >"$W/pass.c" <<'EOF'
struct xdp_md { unsigned int data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex; };
__attribute__((section("xdp"), used)) int other_pass(struct xdp_md *ctx) { return 2; /* XDP_PASS */ }
__attribute__((section("license"), used)) char _license[] = "GPL";
EOF
clang -O2 -g -target bpf -c "$W/pass.c" -o "$W/pass.o" || die "cannot build the XDP_PASS object"
# other_program_case WHAT IFACE MODE: the other program is on IFACE already.
other_program_case() {
    local what=$1 iface=$2 mode=$3 id rc=0 out
    id=$(xdp_on "$iface")
    [[ -n $id ]] || { fail "$what: the other program is not on $iface"; return; }
    out=$(pm attach "$iface" --mode "$mode" --config "$W/rr.json" 2>&1) || rc=$?
    if ((rc == 0)); then
        pass "$what: portmux shares $iface with it: $(tail -1 <<<"$out")"
        assert_match "$what: through libxdp's dispatcher" 'dispatcher' "$out"
        assert_ok "$what: detach portmux" pm detach "$iface"
    else
        assert_eq 1 "$rc" "$what: portmux refuses, exit status"
        assert_match "$what: the refusal names the other program" "other_pass \\(id ${id#prog/xdp id }" "$out"
        assert_eq "" "$(pins_of "$iface")" "$what: no pins after the refusal"
    fi
    assert_eq "$id" "$(xdp_on "$iface")" "$what: the other program is untouched"
    assert_eq 0 "$(tc_on "$iface")" "$what: no TC filter left by portmux"
}
ip -n "$NS" link set dev lo xdpgeneric obj "$W/pass.o" sec xdp || die "cannot load pass.o on lo"
other_program_case "ip link xdpgeneric on lo" lo generic
other_program_case "ip link xdpgeneric on lo, --mode auto" lo auto
ip -n "$NS" link set dev lo xdpgeneric off
if command -v xdp-loader >/dev/null 2>&1; then
    in_ns "$NS" xdp-loader load -m native "$V3" "$W/pass.o" >/dev/null 2>&1 || fail "xdp-loader load failed"
    other_program_case "xdp-loader on $V3" "$V3" native
    in_ns "$NS" xdp-loader unload -a "$V3" >/dev/null 2>&1
else
    skip "xdp-loader not installed"
fi

# ------------------------------------------------------- 7. no privileges
log "--- 7. without privileges"
assert_ok "attach lo (as root)" pm attach lo --mode generic --config "$W/rr.json"
before=$(pm status --json)
nobody() { in_ns "$NS" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
if nobody test -x "$PORTMUX"; then
    for verb in "attach lo --config $W/rr.json" "detach lo" "reload lo --config $W/rr.json" \
        "drain lo 9876" "undrain lo 9876" "status" "stats"; do
        # shellcheck disable=SC2086
        E2E_EXPECT_RC=1 assert_fails "as nobody: portmux $verb" nobody "$PORTMUX" $verb
        assert_match "as nobody: $verb names the three capabilities" \
            "portmux ${verb%% *} needs root, or the capabilities CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON \\(missing: CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON\\)" \
            "$E2E_LAST_OUTPUT"
    done
    assert_ok "as nobody: portmux check works" nobody "$PORTMUX" check "$W/rr.json"
    assert_match "check says valid" 'valid, 1 frontend\(s\), 3 backend\(s\)' "$E2E_LAST_OUTPUT"
else
    skip "nobody cannot execute $PORTMUX (its directory is not world-readable)"
fi
E2E_EXPECT_RC=1 assert_fails "root without CAP_BPF and CAP_SYS_ADMIN: detach" \
    in_ns "$NS" setpriv --inh-caps=-bpf,-sys_admin --bounding-set=-bpf,-sys_admin "$PORTMUX" detach lo
assert_match "message names CAP_BPF only" '\(missing: CAP_BPF\)$' "$E2E_LAST_OUTPUT"
E2E_EXPECT_RC=1 assert_fails "root without CAP_NET_ADMIN: reload" \
    in_ns "$NS" setpriv --inh-caps=-net_admin --bounding-set=-net_admin "$PORTMUX" reload lo --config "$W/rr.json"
assert_match "message names CAP_NET_ADMIN only" '\(missing: CAP_NET_ADMIN\)$' "$E2E_LAST_OUTPUT"
E2E_EXPECT_RC=1 assert_fails "root without CAP_PERFMON and CAP_SYS_ADMIN: attach" \
    in_ns "$NS" setpriv --inh-caps=-perfmon,-sys_admin --bounding-set=-perfmon,-sys_admin "$PORTMUX" attach "$V3" --config "$W/rr.json"
assert_match "message names CAP_PERFMON only, no verifier log" '^portmux: error: portmux attach needs root, or the capabilities CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON \(missing: CAP_PERFMON\)$' "$E2E_LAST_OUTPUT"
if [[ "$before" == "$(pm status --json)" ]]; then
    pass "the unprivileged attempts changed nothing (status --json identical)"
else
    fail "status --json changed after the unprivileged attempts"
fi
check_forwarding "after the unprivileged attempts" 200
assert_ok "detach lo" pm detach lo
for iface in lo "$V2" "$V3"; do clean_after "the end" "$iface"; done
if [[ -e $E2E_BPFFS/portmux ]]; then
    fail "/sys/fs/bpf/portmux still exists: $(ls -A "$E2E_BPFFS/portmux" | tr '\n' ' ')"
else
    pass "/sys/fs/bpf/portmux removed"
fi
finish
