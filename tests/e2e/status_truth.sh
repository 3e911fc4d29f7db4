#!/usr/bin/env bash
# e2e: status, reload, drain and detach tell the truth when the attachment
# changed behind portmux's back, and library noise stays out of errors.
#
#  1. Something else removes portmux's program (`bpftool link detach` on the
#     bpf_link that holds it; `ip link set dev lo xdpgeneric off` is refused,
#     see attach_links.sh): `status
#     lo` exits 1 saying so (the table still shows the pins); reload and
#     drain refuse (exit 1) before writing anything; detach exits 0 and
#     leaves no pins.
#  2. Pins in another bpffs: attached from a plain `ip netns exec` (its own
#     bpffs, gone with it): `status lo` exits 1 naming the program (as root)
#     or saying it cannot name it (with only CAP_BPF, CAP_NET_ADMIN,
#     CAP_PERFMON); detach as root removes it.
#  3. A failed native attach (lo has no native XDP): exactly two lines on
#     stderr, the error and the hint to use -v; no libbpf/libxdp lines. With
#     -v the library lines are shown. A native attach the kernel refuses with
#     a reason (a veth with MTU 9000, for a data path that is not frags-aware)
#     has that reason in the error, and again only two lines.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CAPS=+bpf,+net_admin,+perfmon

e2e_start ip setpriv python3 bpftool

make_ns_var NS pmtru
W=$E2E_WORKDIR
chmod 755 "$W"
install -m 755 "$PORTMUX" "$W/portmux"
cat >"$W/a.json" <<'JSON'
{ "frontends": [ { "port": 9875, "backends": [9876, 9877] } ] }
JSON
cat >"$W/b.json" <<'JSON'
{ "frontends": [ { "port": 9875, "backends": [9876, 9878] } ] }
JSON
chmod 644 "$W"/*.json
pm() { in_ns "$NS" "$W/portmux" "$@"; }
pmc() {
    in_ns "$NS" setpriv --reuid=65534 --regid=65534 --clear-groups \
        --inh-caps=-all,$CAPS --ambient-caps=-all,$CAPS --bounding-set=-all,$CAPS "$W/portmux" "$@"
}
xdp_id() { ip -n "$NS" -d link show "$1" | grep -o 'prog/xdp id [0-9]*' | grep -o '[0-9]*$' | head -1; }
register_detach "$NS" lo

# ------------------------------------------------ 1. removed behind its back
log "--- 1. program removed with ip link"
assert_ok "attach lo" pm attach lo --mode generic --config "$W/a.json" || finish
id=$(xdp_id lo)
frontends() { pm status lo --json 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["interfaces"][0]["frontends"])'; }
before=$(frontends)
xdp_link=$(bpftool -j link show | python3 -c '
import json, sys
print(" ".join(str(l["id"]) for l in json.load(sys.stdin) if l.get("prog_id") == int(sys.argv[1])))' "$id")
bpftool link detach id "$xdp_link" || die "cannot detach portmux's XDP link (id $xdp_link) with bpftool"
E2E_EXPECT_RC=1 assert_fails "status lo exits 1 once the program is gone" pm status lo
assert_match "status says the program (id $id) is no longer attached" \
    "error: the XDP program pinned for lo \\(id $id\\) is no longer attached to it" "$E2E_LAST_OUTPUT"
E2E_EXPECT_RC=1 assert_fails "reload refuses" pm reload lo --config "$W/b.json"
assert_match "reload says why" "refusing to change lo: its pinned program \\(id $id\\) is no longer attached" \
    "$E2E_LAST_OUTPUT"
E2E_EXPECT_RC=1 assert_fails "drain refuses" pm drain lo 9877
assert_match "drain says why" "refusing to change lo" "$E2E_LAST_OUTPUT"
assert_eq "$before" "$(frontends)" "the installed frontends are unchanged (status --json)"
assert_ok "detach lo" pm detach lo
assert_eq "" "$(ls -A "$E2E_BPFFS/portmux/lo" 2>/dev/null)" "no pins of lo left"

# ------------------------------------------------ 2. pins in another bpffs
log "--- 2. pins in another bpffs"
# Plain `ip netns exec`: portmux mounts a bpffs of its own there.
assert_ok "attach lo from another mount namespace" \
    ip netns exec "$NS" "$W/portmux" attach lo --mode generic --config "$W/a.json"
id=$(xdp_id lo)
E2E_EXPECT_RC=1 assert_fails "status lo (root) exits 1" pm status lo
assert_match "status names the portmux program whose pins are elsewhere" \
    "lo has a portmux XDP program \\(id $id\\) but its pins are not in this bpffs" "$E2E_LAST_OUTPUT"
E2E_EXPECT_RC=1 assert_fails "status lo (only CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON) exits 1" pmc status lo
assert_match "status says what it cannot tell without CAP_SYS_ADMIN" \
    "lo has an XDP program \\(a program \\(id $id, generic mode.*cannot name without CAP_SYS_ADMIN.*another bpffs" \
    "$E2E_LAST_OUTPUT"
E2E_EXPECT_RC=1 assert_fails "detach lo without CAP_SYS_ADMIN refuses" pmc detach lo
assert_match "detach says it cannot name the program" "cannot name without CAP_SYS_ADMIN" "$E2E_LAST_OUTPUT"
assert_eq "$id" "$(xdp_id lo)" "the program is still there after the refused detach"
assert_ok "detach lo as root (found by name)" pm detach lo
assert_eq "" "$(xdp_id lo)" "no XDP program on lo"

# ------------------------------------------------ 3. library messages
log "--- 3. library messages"
E2E_EXPECT_RC=1 assert_fails "attach lo --mode native fails" pm attach lo --mode native --config "$W/a.json"
out=$E2E_LAST_OUTPUT
assert_no_match "no libbpf/libxdp lines without -v" '^lib(bpf|xdp):' "$out"
assert_match "the error says lo has no native XDP" \
    '^portmux: error: the driver of lo does not support native XDP' "$(head -1 <<<"$out")"
assert_eq 2 "$(wc -l <<<"$out")" "two lines on stderr: the error and the -v hint"
E2E_EXPECT_RC=1 assert_fails "attach lo --mode native -v fails" pm -v attach lo --mode native --config "$W/a.json"
assert_match "with -v the library lines are shown" '^lib(bpf|xdp):' "$E2E_LAST_OUTPUT"
assert_eq "" "$(xdp_id lo)" "nothing attached after the failures"
VETH=pmt$E2E_ID
make_veth "$NS" "$VETH" "${VETH}p" 9000
register_detach "$NS" "$VETH"
rc=0
out=$(pm attach "$VETH" --mode native --config "$W/a.json" 2>&1) || rc=$?
if ((rc == 0)); then
    skip "native attach at MTU 9000 works (a frags-aware data path): no kernel refusal to show"
    assert_ok "detach $VETH" pm detach "$VETH"
else
    log "native attach at MTU 9000: $(head -1 <<<"$out")"
    assert_match "the error ends with the kernel's reason" \
        "^portmux: error: attaching the XDP program to $VETH in native mode failed: .*: .*MTU" \
        "$(head -1 <<<"$out")"
    assert_no_match "no libbpf/libxdp lines" '^lib(bpf|xdp):' "$out"
    assert_eq 2 "$(wc -l <<<"$out")" "two lines on stderr"
fi
finish
