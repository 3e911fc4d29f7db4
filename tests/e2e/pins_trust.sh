#!/usr/bin/env bash
# e2e: root's portmux refuses pin directories another user could control,
# and never changes anything outside bpffs.
#
# The test's private bpffs is fresh, so its root is mode 1777 as on a real
# machine. A non-root user (uid 65534, via setpriv) plants:
#   1. a directory /sys/fs/bpf/portmux;
#   2. a symlink /sys/fs/bpf/portmux -> a canary directory in /tmp.
# For each, root's attach, reload, drain, detach and status exit 1 with a
# message saying what is wrong and `rm -r /sys/fs/bpf/portmux`; nothing is
# attached to lo; the canary directory and its file are unchanged.
#   3. root made the directory, but mode 0755: refused the same way.
#   4. a symlink to the canary planted inside portmux's own interface
#      directory (as an older portmux's recursive removal would follow):
#      detach removes the link, not the canary's contents.
# After the plant is removed, attach and detach work.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root
trap 'rm -rf "${CANARY:-}"; e2e_cleanup' EXIT
e2e_setup
require_tools ip setpriv
require_portmux

make_ns_var NS pmtrust
W=$E2E_WORKDIR
CONFIG=$REPO_ROOT/examples/udp-roundrobin.json
CANARY=$(mktemp -d /tmp/portmux-canary.XXXXXX)
echo "keep me" >"$CANARY/file"
mkdir "$CANARY/lo"
echo "keep me too" >"$CANARY/lo/frontends"
chmod -R a+rwX "$CANARY"  # the planting user may point at it; root's portmux must not touch it
# Names, sizes, modes and contents of everything in the canary, as one line.
canary_state() { (cd "$CANARY" && find . -printf '%p %s %m\n' | sort && cat file lo/frontends) | md5sum; }
CANARY_BEFORE=$(canary_state)

pm() { in_ns "$NS" "$PORTMUX" "$@"; }
as_user() { in_ns "$NS" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
xdp_on() { ip -n "$NS" -d link show lo | grep -o 'prog/xdp id [0-9]*'; }
register_detach "$NS" lo

assert_eq 1777 "$(in_ns "$NS" stat -c %a /sys/fs/bpf)" "the fresh bpffs root is mode 1777"

# refused WHAT REASON_REGEX: every verb refuses, nothing attached, canary intact.
refused() {
    local what=$1 reason=$2 verb
    for verb in "attach lo --mode generic --config $CONFIG" "reload lo --config $CONFIG" \
        "drain lo 9876" "detach lo" "status lo" "status"; do
        # shellcheck disable=SC2086
        E2E_EXPECT_RC=1 assert_fails "$what: portmux $verb refuses" pm $verb
        assert_match "$what: $verb says why and how to fix it" \
            "refusing to use /sys/fs/bpf/portmux: $reason.*rm -r /sys/fs/bpf/portmux" "$E2E_LAST_OUTPUT"
    done
    assert_eq "" "$(xdp_on)" "$what: nothing attached to lo"
    assert_eq "$CANARY_BEFORE" "$(canary_state)" "$what: the canary directory is unchanged"
}

log "--- 1. a directory planted by uid 65534"
as_user mkdir -m 0700 /sys/fs/bpf/portmux || die "uid 65534 cannot create /sys/fs/bpf/portmux"
refused "planted directory" "it is owned by uid 65534, not by root"
assert_eq "" "$(in_ns "$NS" ls -A /sys/fs/bpf/portmux)" "planted directory: still empty (no pins put there)"
in_ns "$NS" rm -r /sys/fs/bpf/portmux

log "--- 2. a symlink planted by uid 65534"
as_user ln -s "$CANARY" /sys/fs/bpf/portmux || die "uid 65534 cannot create the symlink"
refused "planted symlink" "it is a symbolic link \\(to $CANARY\\), not a directory"
in_ns "$NS" rm /sys/fs/bpf/portmux

log "--- 3. a root-owned directory with mode 0755"
in_ns "$NS" mkdir -m 0755 /sys/fs/bpf/portmux
refused "mode 0755" "its mode is 0755, not 0700"
in_ns "$NS" rm -r /sys/fs/bpf/portmux

log "--- 4. a symlink inside portmux's own directory"
assert_ok "attach lo" pm attach lo --mode generic --config "$CONFIG" || finish
in_ns "$NS" ln -s "$CANARY" /sys/fs/bpf/portmux/lo/planted || fail "cannot plant the link"
assert_ok "detach lo" pm detach lo
assert_eq "" "$(xdp_on)" "nothing attached to lo after detach"
assert_eq "$CANARY_BEFORE" "$(canary_state)" "the canary directory is unchanged"
if in_ns "$NS" test -e /sys/fs/bpf/portmux; then
    fail "/sys/fs/bpf/portmux left: $(in_ns "$NS" ls -AR /sys/fs/bpf/portmux | tr '\n' ' ')"
else
    pass "the pin root is gone"
fi

log "--- after the plants are gone"
assert_ok "attach lo" pm attach lo --mode generic --config "$CONFIG"
assert_eq 700 "$(in_ns "$NS" stat -c %a /sys/fs/bpf/portmux)" "portmux made its root with mode 0700"
assert_ok "detach lo" pm detach lo
finish
