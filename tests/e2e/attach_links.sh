#!/usr/bin/env bash
# e2e: portmux's attachments can be seen and cannot be removed unseen.
#
# Where libxdp's dispatcher is unavailable (here it always is: EPERM), the
# XDP program is held by a pinned bpf_link, and on kernels with tcx (6.6+)
# the TC egress program by a pinned tcx link. For lo (generic) and a veth
# (native) in a throwaway namespace:
#  - attach and status say so; `bpftool link` lists both links with
#    portmux's program ids;
#  - `ip link set dev IFACE xdpgeneric|xdpdrv off` and installing another
#    XDP program with ip are refused, and portmux's program stays;
#  - deleting the clsact qdisc does not touch the tcx program;
#  - traffic still goes through portmux (lo: 6 datagrams split 2/2/2);
#  - `bpftool link detach` (the visible way) removes it, and status exits 1;
#  - detach leaves no XDP program, no link, no TC program, no pins.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_start ip tc bpftool clang

make_ns_var NS pmlnk
W=$E2E_WORKDIR
VETH=pml$E2E_ID
ip -n "$NS" link add "$VETH" type veth peer name "${VETH}p" || die "cannot create veth $VETH"
ip -n "$NS" link set "$VETH" up
ip -n "$NS" link set "${VETH}p" up
cat >"$W/rr.json" <<'JSON'
{ "frontends": [ { "port": 9875, "backends": [9876, 9877, 9878] } ] }
JSON
cat >"$W/pass.c" <<'EOF'
struct xdp_md { unsigned int data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex; };
__attribute__((section("xdp"), used)) int other_pass(struct xdp_md *ctx) { return 2; /* XDP_PASS */ }
__attribute__((section("license"), used)) char _license[] = "GPL";
EOF
clang -O2 -g -target bpf -c "$W/pass.c" -o "$W/pass.o" || die "cannot build the XDP_PASS object"
pm() { in_ns "$NS" "$PORTMUX" "$@"; }
xdp_id() { ip -n "$NS" -d link show "$1" | grep -o 'prog/xdp id [0-9]*' | grep -o '[0-9]*$' | head -1; }
# link_ids PROG_ID: the ids of the bpf_links holding program PROG_ID.
link_ids() { bpftool -j link show | python3 -c '
import json, sys
print(" ".join(str(l["id"]) for l in json.load(sys.stdin) if l.get("prog_id") == int(sys.argv[1])))' "$1"; }
tcx_supported() { # the kernel has tcx when portmux attached TC egress through it
    grep -q 'TC egress through a tcx link' <<<"$1"
}

start_udp_sink "$NS" "$W/udp.txt" 9876 9877 9878
wait_until 5 all_ports_listening "$NS" udp 9876 9877 9878 || die "UDP sink never listened"

check_interface() {
    local iface=$1 mode=$2 flag=$3 out id tc_id xdp_link tc_link split
    log "--- $iface, $mode mode"
    register_detach "$NS" "$iface"
    assert_ok "attach $iface --mode $mode" pm attach "$iface" --mode "$mode" --config "$W/rr.json" || return
    out=$E2E_LAST_OUTPUT
    assert_match "attach says bpf_link" "$mode mode, bpf_link attachment" "$out"
    id=$(xdp_id "$iface")
    assert_ok "status $iface" pm status "$iface"
    assert_match "status says bpf_link for program $id" "XDP attached, $mode mode, bpf_link attachment, program id $id" \
        "$E2E_LAST_OUTPUT"
    tc_id=$(sed -n 's/.*TC egress reply translation attached (.*), program id \([0-9]*\).*/\1/p' <<<"$E2E_LAST_OUTPUT")
    xdp_link=$(link_ids "$id")
    assert_match "bpftool link lists the XDP link of program $id (link $xdp_link)" '^[0-9]+$' "$xdp_link"
    if tcx_supported "$out"; then
        assert_match "status says the TC program is on a tcx link" 'reply translation attached \(tcx link\)' \
            "$E2E_LAST_OUTPUT"
        tc_link=$(link_ids "$tc_id")
        assert_match "bpftool link lists the tcx link of program $tc_id (link $tc_link)" '^[0-9]+$' "$tc_link"
        ip netns exec "$NS" tc qdisc del dev "$iface" clsact 2>/dev/null
        assert_match "the TC program survives a deleted clsact qdisc" '\(tcx link\), program id '"$tc_id" \
            "$(pm status "$iface")"
    else
        skip "this kernel has no tcx (6.6+): TC egress through a clsact filter"
    fi

    assert_fails "ip link set dev $iface $flag off is refused" ip -n "$NS" link set dev "$iface" "$flag" off
    assert_match "... because a bpf_link holds the hook" 'BPF XDP link' "$E2E_LAST_OUTPUT"
    assert_fails "ip link cannot put another XDP program in its place" \
        ip -n "$NS" link set dev "$iface" "$flag" obj "$W/pass.o" sec xdp
    assert_eq "$id" "$(xdp_id "$iface")" "portmux's program is still on $iface"
    if [[ $iface == lo ]]; then
        : >"$W/udp.txt"
        send_udp_seq "$NS" 127.0.0.1 9875 1 6 >/dev/null
        wait_for_lines 6 5 "$W/udp.txt" || true
        split=$(awk '{ print $1 }' "$W/udp.txt" | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
        assert_eq "9876:2 9877:2 9878:2 " "$split" "6 datagrams still go through portmux, split 2/2/2"
    fi

    # The one way to take it off without portmux is visible and explicit.
    assert_ok "bpftool link detach id $xdp_link" bpftool link detach id "$xdp_link"
    E2E_EXPECT_RC=1 assert_fails "status $iface exits 1 once the link was detached" pm status "$iface"
    assert_ok "detach $iface" pm detach "$iface"
    assert_eq "" "$(xdp_id "$iface")" "no XDP program on $iface after detach"
    assert_eq "" "$(link_ids "$id")$( [[ -n $tc_id ]] && link_ids "$tc_id")" "no bpf_link of portmux's programs left"
    assert_no_match "no TC filter on $iface" 'bpf' "$(ip netns exec "$NS" tc filter show dev "$iface" egress 2>&1)"
    assert_eq "" "$(ls -A "$E2E_BPFFS/portmux/$iface" 2>/dev/null)" "no pins of $iface left"

    # A plain attach and detach, links and all, leaves nothing either.
    assert_ok "attach $iface again" pm attach "$iface" --mode "$mode" --config "$W/rr.json" || return
    id=$(xdp_id "$iface")
    tc_id=$(pm status "$iface" | sed -n 's/.*reply translation attached (.*), program id \([0-9]*\).*/\1/p')
    assert_ok "detach $iface" pm detach "$iface"
    assert_eq "" "$(xdp_id "$iface")$(link_ids "$id")$(link_ids "${tc_id:-0}")" \
        "after detach: no XDP program and no links on $iface"
    assert_eq "" "$(ls -A "$E2E_BPFFS/portmux/$iface" 2>/dev/null)" "no pins of $iface left"
}

check_interface lo generic xdpgeneric
check_interface "$VETH" native xdpdrv
finish
