#!/usr/bin/env bash
# e2e: portmux works with exactly CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, as a
# non-root user, and leaves nothing behind.
#
# Every portmux command runs as uid/gid 65534 under setpriv with only those
# three capabilities in its effective, permitted, inheritable, ambient and
# bounding sets (checked: CapEff is exactly bits 12, 38 and 39). In a
# throwaway namespace, on lo (generic) and a veth (native):
#   attach; status exits 0 and shows the program id the kernel reports for
#   the link; 6 datagrams to the frontend are counted by stats and arrive 2/2/2;
#   reload to another config shows in status; drain shows in status; detach
#   exits 0 and then there is no XDP program on the link (this is what failed
#   before: libxdp needs CAP_SYS_ADMIN to find the program, so detach said
#   "detached" and left it), no TC filter, no pins, and the pin root is gone.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CAPS=+bpf,+net_admin,+perfmon
# CAP_NET_ADMIN (12), CAP_PERFMON (38), CAP_BPF (39)
EXPECTED_CAPEFF=000000c000001000

e2e_start ip tc setpriv python3 ss

make_ns_var NS pmcap
W=$E2E_WORKDIR
# The unprivileged user reads the configs and runs a copy of the binary here.
chmod 755 "$W"
install -m 755 "$PORTMUX" "$W/portmux"
cat >"$W/a.json" <<'JSON'
{ "frontends": [ { "port": 9875, "backends": [9876, 9877, 9878] } ] }
JSON
cat >"$W/b.json" <<'JSON'
{ "frontends": [ { "port": 9875, "backends": [9876, 9877, 9878] },
                 { "port": 9885, "backends": [9886] } ] }
JSON
chmod 644 "$W"/*.json
VETH=pmc$E2E_ID
make_veth "$NS" "$VETH"
log "namespace $NS, interfaces lo and $VETH, capabilities $CAPS as uid 65534"

as_user() {
    in_ns "$NS" setpriv --reuid=65534 --regid=65534 --clear-groups \
        --inh-caps=-all,$CAPS --ambient-caps=-all,$CAPS --bounding-set=-all,$CAPS "$@"
}
pmc() { as_user "$W/portmux" "$@"; }
xdp_id() { ip -n "$NS" -d link show "$1" | grep -o 'prog/xdp id [0-9]*' | grep -o '[0-9]*$' | head -1; }

capeff=$(as_user awk '/^CapEff/ { print $2 }' /proc/self/status)
assert_eq "$EXPECTED_CAPEFF" "$capeff" "the commands run with exactly CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON"
assert_eq 65534 "$(as_user id -u)" "the commands run as uid 65534"

start_udp_sink "$NS" "$W/udp.txt" 9876 9877 9878
wait_until 5 all_ports_listening "$NS" udp 9876 9877 9878 || die "UDP sink never listened"

check_interface() {
    local iface=$1 mode=$2 id out split
    log "--- $iface, $mode mode"
    register_detach "$NS" "$iface"
    assert_ok "attach $iface --mode $mode" pmc attach "$iface" --mode "$mode" --config "$W/a.json" || return
    id=$(xdp_id "$iface")
    assert_ok "status $iface" pmc status "$iface"
    assert_match "status shows the program the kernel has on $iface (id $id)" \
        "$iface: XDP attached, $mode mode, bpf_link attachment, program id $id" \
        "$E2E_LAST_OUTPUT"
    if [[ $iface == lo ]]; then
        : >"$W/udp.txt"
        send_udp_seq "$NS" 127.0.0.1 9875 1 6 >/dev/null
        wait_for_lines 6 5 "$W/udp.txt" || true
        split=$(awk '{ print $1 }' "$W/udp.txt" | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
        assert_eq "9876:2 9877:2 9878:2 " "$split" "6 datagrams through portmux split 2/2/2"
        assert_ok "stats $iface --json" pmc stats "$iface" --json
        assert_eq 6 "$(stats_value "$E2E_LAST_OUTPUT" "$iface" 9875 forwarded)" "stats counts 6 forwarded"
    else
        assert_ok "stats $iface" pmc stats "$iface"
    fi
    assert_ok "reload $iface to b.json" pmc reload "$iface" --config "$W/b.json"
    assert_match "status shows the reloaded config" '9885 +udp +9886' "$(pmc status "$iface")"
    assert_ok "drain $iface 9877" pmc drain "$iface" 9877
    assert_match "status shows 9877 drained" '9877 \(drained\)' "$(pmc status "$iface")"
    assert_ok "detach $iface" pmc detach "$iface"
    assert_eq "" "$(xdp_id "$iface")" "no XDP program on $iface after detach"
    assert_no_match "no TC egress filter on $iface after detach" 'bpf' \
        "$(ip netns exec "$NS" tc filter show dev "$iface" egress 2>&1)"
    if [[ -e $E2E_BPFFS/portmux/$iface ]]; then
        fail "pins of $iface left: $(ls -A "$E2E_BPFFS/portmux/$iface" | tr '\n' ' ')"
    else
        pass "no pins of $iface left"
    fi
    E2E_EXPECT_RC=1 assert_fails "status $iface after detach" pmc status "$iface"
}

check_interface lo generic
check_interface "$VETH" native
if [[ -e $E2E_BPFFS/portmux ]]; then
    fail "the pin root is left: $(ls -A "$E2E_BPFFS/portmux" | tr '\n' ' ')"
else
    pass "the pin root /sys/fs/bpf/portmux is gone"
fi
finish
