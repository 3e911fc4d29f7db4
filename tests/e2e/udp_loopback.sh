#!/usr/bin/env bash
# e2e: UDP round robin on a namespace's loopback, generic XDP.
#
# Three `nc -k -u -l` backends on 9876-9878, portmux on lo with the example
# config, 60 datagrams to 127.0.0.1:9875 from CPU 0. Expect an exact
# 20/20/20 split, every datagram delivered exactly once, and each backend
# holding every third message (round robin, not just an even count).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=60
FRONTEND=9875
BACKENDS=(9876 9877 9878)
CONFIG=$REPO_ROOT/examples/udp-roundrobin.json

e2e_start ip nc ss nstat taskset
[[ -r $CONFIG ]] || die "missing config $CONFIG"

make_ns_var NS pmlo
log "namespace $NS, portmux $PORTMUX"

for port in "${BACKENDS[@]}"; do
    start_udp_backend "$NS" "$port" "$E2E_WORKDIR/backend-$port.txt"
done
for port in "${BACKENDS[@]}"; do
    wait_for_udp_port "$NS" "$port" 5 || die "backend on UDP $port never started listening"
done
pass "three backends listening on ${BACKENDS[*]}"

attach_portmux "$NS" lo generic "$CONFIG"

status=$(in_ns "$NS" "$PORTMUX" status lo 2>&1)
assert_match "status shows frontend 9875 with its three backends" \
    '9875.*udp.*9876, 9877, 9878' "$status"

no_ports_before=$(udp_counter "$NS" UdpNoPorts)
send_datagrams "$NS" 127.0.0.1 "$FRONTEND" 1 "$N"
files=()
for port in "${BACKENDS[@]}"; do files+=("$E2E_WORKDIR/backend-$port.txt"); done
if ! wait_for_lines "$N" 10 "${files[@]}"; then
    fail "only $(line_count "${files[@]}") of $N datagrams arrived within 10 s"
fi
# Grace period to catch duplicates that arrive after the last expected one.
sleep 0.5

total=$(line_count "${files[@]}")
assert_eq "$N" "$total" "datagrams delivered in total"
for port in "${BACKENDS[@]}"; do
    assert_eq $((N / 3)) "$(line_count "$E2E_WORKDIR/backend-$port.txt")" "datagrams on backend $port"
done

duplicates=$(cat "${files[@]}" | sort | uniq -d | tr '\n' ' ')
assert_eq "" "$duplicates" "no datagram delivered twice"
if diff <(expected_messages 1 "$N") <(cat "${files[@]}" | sort -u) >"$E2E_WORKDIR/diff.txt"; then
    pass "delivered set is exactly msg-001..msg-$(printf %03d "$N")"
else
    fail "delivered set differs from what was sent (< missing, > unexpected):"
    sed 's/^/    | /' "$E2E_WORKDIR/diff.txt" | head -20
fi

# Round robin: one backend sees every third message, in order.
for port in "${BACKENDS[@]}"; do
    residues=$(sed -n 's/^msg-0*\([0-9][0-9]*\)$/\1/p' "$E2E_WORKDIR/backend-$port.txt" |
        awk '{ print $1 % 3 }' | sort -u | tr '\n' ' ')
    if [[ $residues =~ ^[012]\ $ ]]; then
        pass "backend $port got every third message (residue ${residues% })"
    else
        fail "backend $port is not a round-robin share: residues mod 3 are '$residues'"
        sed 's/^/    | /' "$E2E_WORKDIR/backend-$port.txt" | head -10
    fi
done
assert_eq "$no_ports_before" "$(udp_counter "$NS" UdpNoPorts)" \
    "no datagram reached the frontend port itself (UdpNoPorts unchanged)"

assert_ok "portmux detach lo" in_ns "$NS" "$PORTMUX" detach lo
finish
