#!/usr/bin/env bash
# e2e: the TC egress program is on the interface only while some frontend
# translates replies (issue 12: it costs every packet that leaves).
#
# On lo (generic) and a veth (native) in a throwaway namespace:
#  - attach with only a one-way UDP frontend ("reply_translation": false):
#    no TC program on egress (no clsact filter, no tcx link, no tc_link pin),
#    and attach and status say why;
#  - reload with a UDP frontend that translates replies: the TC program is
#    attached (a tcx link pinned as tc_link where the kernel has tcx, else a
#    clsact filter), status names its id; on lo a request through the
#    frontend is answered from the frontend port;
#  - reload back to one-way: the TC program is gone again, link, pin and
#    filter; a reload to a TCP frontend (always translated) brings it back;
#  - detach leaves no XDP program, no link, no TC filter and no pins.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_start ip tc bpftool python3 nc

make_ns_var NS pmtcd
W=$E2E_WORKDIR
VETH=pmt$E2E_ID
make_veth "$NS" "$VETH"
cat >"$W/one_way.json" <<'JSON'
{ "frontends": [ { "port": 9875, "backends": [9876], "reply_translation": false } ] }
JSON
cat >"$W/replies.json" <<'JSON'
{ "frontends": [ { "port": 9875, "backends": [9876] } ] }
JSON
cat >"$W/tcp.json" <<'JSON'
{ "frontends": [ { "port": 9875, "backends": [9876], "reply_translation": false },
                 { "port": 8080, "protocol": "tcp", "backends": [8081] } ] }
JSON
pm() { in_ns "$NS" "$PORTMUX" "$@"; }
xdp_id() { ip -n "$NS" -d link show "$1" | grep -o 'prog/xdp id [0-9]*' | grep -o '[0-9]*$' | head -1; }
# tc_prog_id IFACE: id of the TC egress program pinned for IFACE.
tc_prog_id() {
    bpftool -j prog show pinned "$E2E_BPFFS/portmux/$1/tc_program" 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
# link_ids PROG_ID: the ids of the bpf_links (tcx) holding program PROG_ID.
link_ids() { bpftool -j link show | python3 -c '
import json, sys
print(" ".join(str(l["id"]) for l in json.load(sys.stdin) if l.get("prog_id") == int(sys.argv[1])))' "$1"; }
tc_link_pin() { ls "$E2E_BPFFS/portmux/$1/tc_link" 2>/dev/null; }

# no_tc IFACE WHAT: nothing of portmux's on IFACE's egress.
no_tc() {
    local iface=$1 what=$2 tc_id
    tc_id=$(tc_prog_id "$iface")
    assert_match "$what: the TC program stays pinned (id $tc_id)" '^[0-9]+$' "$tc_id"
    assert_eq "" "$(link_ids "${tc_id:-0}")" "$what: no link holds the TC program"
    assert_no_match "$what: no TC filter on $iface" 'bpf' \
        "$(ip netns exec "$NS" tc filter show dev "$iface" egress 2>&1)"
    assert_eq "" "$(tc_link_pin "$iface")" "$what: no tc_link pin"
    assert_ok "$what: status $iface" pm status "$iface"
    assert_match "$what: status says TC egress is not needed" \
        'reply translation not attached: no frontend translates replies' "$E2E_LAST_OUTPUT"
}

# has_tc IFACE WHAT: portmux's TC program, as status names it, runs on IFACE's egress.
has_tc() {
    local iface=$1 what=$2 id
    assert_ok "$what: status $iface" pm status "$iface"
    id=$(sed -n 's/.*TC egress reply translation attached (.*), program id \([0-9]*\).*/\1/p' <<<"$E2E_LAST_OUTPUT")
    assert_eq "$(tc_prog_id "$iface")" "$id" "$what: status names the pinned TC program as attached"
    if grep -q 'attached (tcx link)' <<<"$E2E_LAST_OUTPUT"; then
        assert_match "$what: a tcx link holds program $id" '^[0-9]+$' "$(link_ids "${id:-0}")"
        assert_match "$what: its tcx link is pinned" 'tc_link' "$(tc_link_pin "$iface")"
    else
        assert_match "$what: a clsact filter holds it" 'bpf' \
            "$(ip netns exec "$NS" tc filter show dev "$iface" egress 2>&1)"
    fi
}

mkdir -p "$W/reply"
start_udp_reply_backend "$NS" 9876 1 "$W/reply"
wait_for_udp_port "$NS" 9876 5 || die "backend 9876 did not listen"

check_interface() {
    local iface=$1 mode=$2 id answer tc_id
    log "--- $iface, $mode mode"
    register_detach "$NS" "$iface"
    assert_ok "attach $iface with a one-way frontend" \
        pm attach "$iface" --mode "$mode" --config "$W/one_way.json" || return
    assert_match "attach says no TC egress is needed" 'no TC egress \(no frontend translates replies\)' \
        "$E2E_LAST_OUTPUT"
    id=$(xdp_id "$iface")
    no_tc "$iface" "one-way"

    assert_ok "reload $iface with reply translation" pm reload "$iface" --config "$W/replies.json" || return
    has_tc "$iface" "replies"
    if [[ $iface == lo ]]; then
        answer=$(ip netns exec "$NS" timeout 10 python3 - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(b"ping\n", ("127.0.0.1", 9875))
data, source = s.recvfrom(2048)
print(source[1])
EOF
)
        assert_eq "9875" "$answer" "a request through the frontend is answered from port 9875"
    fi

    assert_ok "reload $iface back to one-way" pm reload "$iface" --config "$W/one_way.json" || return
    no_tc "$iface" "one-way again"
    assert_ok "reload $iface with a TCP frontend" pm reload "$iface" --config "$W/tcp.json" || return
    has_tc "$iface" "TCP"
    assert_ok "reload $iface with the TCP frontend again (nothing to change)" \
        pm reload "$iface" --config "$W/tcp.json" || return
    has_tc "$iface" "TCP again"

    tc_id=$(tc_prog_id "$iface")
    assert_ok "detach $iface" pm detach "$iface"
    assert_eq "" "$(xdp_id "$iface")" "no XDP program on $iface after detach"
    assert_eq "" "$(link_ids "${tc_id:-0}")" "no link of the TC program after detach"
    assert_no_match "no TC filter on $iface after detach" 'bpf' \
        "$(ip netns exec "$NS" tc filter show dev "$iface" egress 2>&1)"
    assert_eq "" "$(ls -A "$E2E_BPFFS/portmux/$iface" 2>/dev/null)" "no pins of $iface left"
}

check_interface lo generic
check_interface "$VETH" native
finish
