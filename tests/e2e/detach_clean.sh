#!/usr/bin/env bash
# e2e: attach and detach leave nothing behind, and misuse fails clearly.
#
# For lo (generic mode) and a veth (native mode) in a throwaway namespace:
# attach; a second attach fails non-zero without disturbing the first;
# detach; then no XDP program on the link, no portmux TC filter, no pins
# under /sys/fs/bpf/portmux/IFACE, status says not attached (exit 1), a
# second detach exits 1; and a fresh attach works again.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONFIG=$REPO_ROOT/examples/udp-roundrobin.json

e2e_start ip tc
[[ -r $CONFIG ]] || die "missing config $CONFIG"

make_ns_var NS pmdet
VETH=pmv$E2E_ID
make_veth "$NS" "$VETH"
log "namespace $NS, interfaces lo and $VETH"

pm() { in_ns "$NS" "$PORTMUX" "$@"; }

check_interface() {
    local iface=$1 mode=$2 link status prog_id
    log "--- $iface, $mode mode"
    register_detach "$NS" "$iface"
    assert_ok "attach $iface --mode $mode" pm attach "$iface" --mode "$mode" --config "$CONFIG" ||
        return
    assert_match "attach reports $mode mode" "$mode mode" "$E2E_LAST_OUTPUT"
    prog_id=$(sed -n 's/.*program id \([0-9][0-9]*\).*/\1/p' <<<"$E2E_LAST_OUTPUT" | head -1)
    link=$(ip -n "$NS" -d link show "$iface")
    assert_match "$iface has an XDP program after attach" 'prog/xdp' "$link"
    assert_ok "pins exist in /sys/fs/bpf/portmux/$iface" in_ns "$NS" test -d "/sys/fs/bpf/portmux/$iface"
    assert_ok "status $iface succeeds while attached" pm status "$iface"

    assert_fails "second attach to $iface fails" \
        pm attach "$iface" --mode "$mode" --config "$CONFIG"
    assert_match "second attach says it is already attached" 'already attached' "$E2E_LAST_OUTPUT"
    status=$(pm status "$iface" 2>&1)
    assert_match "first attachment intact after the failed second one (program id $prog_id)" \
        "program id ${prog_id:-unknown}" "$status"

    assert_ok "detach $iface" pm detach "$iface"
    link=$(ip -n "$NS" -d link show "$iface")
    assert_no_match "no XDP on $iface after detach (ip -d link show)" \
        'prog/xdp|xdpgeneric|xdpdrv|(^|[[:space:]])xdp[[:space:]]' "$link"
    assert_no_match "no portmux TC egress filter on $iface after detach" 'portmux' \
        "$(ip netns exec "$NS" tc filter show dev "$iface" egress 2>&1)"
    if in_ns "$NS" test -e "/sys/fs/bpf/portmux/$iface"; then
        fail "/sys/fs/bpf/portmux/$iface still exists after detach"
    else
        pass "/sys/fs/bpf/portmux/$iface removed"
    fi

    E2E_EXPECT_RC=1 assert_fails "status $iface exits 1 after detach" pm status "$iface"
    assert_match "status says not attached" 'not attached' "$E2E_LAST_OUTPUT"
    E2E_EXPECT_RC=1 assert_fails "second detach of $iface exits 1" pm detach "$iface"
    assert_match "second detach says not attached" 'not attached' "$E2E_LAST_OUTPUT"

    assert_ok "attach $iface again after a clean detach" \
        pm attach "$iface" --mode "$mode" --config "$CONFIG" &&
        assert_ok "detach $iface again" pm detach "$iface"
    assert_no_match "no XDP on $iface at the end" 'prog/xdp' "$(ip -n "$NS" -d link show "$iface")"
}

check_interface lo generic
check_interface "$VETH" native

if in_ns "$NS" test -e /sys/fs/bpf/portmux; then
    fail "/sys/fs/bpf/portmux still exists with nothing attached: $(in_ns "$NS" ls -A /sys/fs/bpf/portmux | tr '\n' ' ')"
else
    pass "/sys/fs/bpf/portmux removed once nothing is attached"
fi
E2E_EXPECT_RC=1 assert_fails "detach of a missing interface exits 1" pm detach "nosuch$E2E_ID"
finish
