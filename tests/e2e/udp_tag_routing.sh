#!/usr/bin/env bash
# e2e: payload tag routing and payload validation on a namespace's loopback,
# generic XDP, with exact per-backend deliveries and drop counters.
#
# Part 1, examples/udp-tag-routing.json: frontend 7000/udp, payload length
# window 23..512, the 3-byte tag at payload offset 20 picks the backend
# ("600" -> 5001, "601" -> 5002, "602" -> 5003), unknown tags dropped.
# `nc -k -u -l` backends on 5001-5003. Sent from CPU 0 (one `nc -u` each,
# payload + newline):
#   5 x tag 600 (24 bytes), 5 x tag 601, 5 x tag 602, and 1 x tag 601 of
#   exactly 512 bytes (the window's upper edge)         -> delivered
#   2 too short: 6 bytes, and 22 bytes (one below the window)
#   2 too long: 513 bytes (one above) and 1400 bytes, both with tag 600
#   3 unknown tags: "699", "603", "abc"                  -> dropped
# and last, with no newline, 1 x tag 602 of exactly 23 bytes (the window's
# lower edge, ending with the tag) -> delivered, it ends 5003's output.
# Checks: each backend holds exactly the lines with its tag (5, 6, 5 + the
# 23-byte one), no malformed datagram reached any backend, and `portmux stats
# --json` says received 24, forwarded 17, dropped 7 = too_short 2 + too_long 2 +
# unknown_tag 3, magic_mismatch 0, no_backend 0, exact packets and bytes
# (frame = 42 + payload bytes) per backend.
#
# Part 2, examples/udp-validate-magic.json: 9875/udp -> 9876-9878 round
# robin, payloads of 8..1024 bytes starting with "PMUX". Sent: 6 good ones,
# 3 with a wrong magic ("XMUX", "pmux", magic at offset 1), 1 too short
# ("PMUX12", 7 bytes), 1 too long (1025 bytes). Checks: the 6 good ones
# delivered, 2 per backend, nothing else; stats: forwarded 6,
# magic_mismatch 3, too_short 1, too_long 1, unknown_tag 0.
# Both parts: UdpNoPorts unchanged (a dropped datagram was dropped, not passed
# on to the frontend port where nothing listens), UdpInCsumErrors 0.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TAG_CONFIG=$REPO_ROOT/examples/udp-tag-routing.json
MAGIC_CONFIG=$REPO_ROOT/examples/udp-validate-magic.json
TAG_FRONTEND=7000
TAG_BACKENDS=(5001 5002 5003)
MAGIC_FRONTEND=9875
MAGIC_BACKENDS=(9876 9877 9878)

e2e_start ip nc ss nstat taskset python3
[[ -r $TAG_CONFIG ]] || die "missing config $TAG_CONFIG"
[[ -r $MAGIC_CONFIG ]] || die "missing config $MAGIC_CONFIG"

make_ns_var NS pmtag
log "namespace $NS, portmux $PORTMUX"

# send_lines PORT LINE...: one datagram per LINE (LINE + newline), CPU 0.
send_lines() {
    local port=$1
    shift
    ip netns exec "$NS" taskset -c 0 bash -c '
        port=$1
        shift
        for line in "$@"; do
            nc -u -q0 127.0.0.1 "$port" <<<"$line"
        done' send "$port" "$@"
}

# tagged ID TAG [FILL]: a 20-byte prefix naming ID, the tag at offset 20,
# then FILL more bytes ("x"). With the newline: 24 + FILL payload bytes.
tagged() {
    local prefix filler=
    printf -v prefix '%-20.20s' "$1"
    prefix=${prefix// /.}
    (($# > 2)) && printf -v filler '%*s' "$3" '' && filler=${filler// /x}
    printf '%s%s%s' "$prefix" "$2" "$filler"
}

# sorted_lines FILE...: the delivered lines, sorted (one datagram per line).
sorted_lines() { cat "$@" 2>/dev/null | sort; }

stats_json() { stats_flat "$(in_ns "$NS" "$PORTMUX" stats lo --json 2>&1)"; }

noports_before=$(udp_counter "$NS" UdpNoPorts)
assert_eq 0 "$(udp_counter "$NS" UdpInCsumErrors)" "UdpInCsumErrors at the start"

# ------------------------------------------------------------ tag routing
log "--- part 1: tag routing, $TAG_CONFIG"
for port in "${TAG_BACKENDS[@]}"; do
    start_udp_backend "$NS" "$port" "$E2E_WORKDIR/tag-$port.txt"
done
wait_until 5 all_ports_listening "$NS" udp "${TAG_BACKENDS[@]}" ||
    die "the backends on ${TAG_BACKENDS[*]} never all started listening"
pass "three backends listening on ${TAG_BACKENDS[*]}"

register_detach "$NS" lo
assert_ok "portmux attach lo --mode generic (tag routing)" \
    in_ns "$NS" "$PORTMUX" attach lo --mode generic --config "$TAG_CONFIG" || finish
log "$E2E_LAST_OUTPUT"

declare -A want=()   # backend port -> expected delivered lines
good=()
for tag_port in 600:5001 601:5002 602:5003; do
    tag=${tag_port%:*} port=${tag_port#*:}
    for i in 1 2 3 4 5; do
        line=$(tagged "tag-$tag-req-$i" "$tag")
        good+=("$line")
        want[$port]+="$line"$'\n'
    done
done
edge=$(tagged "tag-601-512-bytes" 601 488)   # 20 + 3 + 488 + newline = 512
good+=("$edge")
want[5002]+="$edge"$'\n'
bad=(
    "short"                                  # 6 bytes: too_short
    "$(tagged "tag-short-22" 6)"             # 20 + 1 + newline = 22: too_short
    "$(tagged "tag-600-513-bytes" 600 489)"  # 513 bytes: too_long
    "$(tagged "tag-600-1400-bytes" 600 1376)" # 1400 bytes: too_long
    "$(tagged "tag-unknown-699" 699)"        # unknown_tag
    "$(tagged "tag-unknown-603" 603)"        # unknown_tag
    "$(tagged "tag-unknown-abc" abc)"        # unknown_tag
)
assert_eq "24 512 6 22 513 1400 24" \
    "$(for line in "${good[0]}" "$edge" "${bad[@]:0:5}"; do printf '%s\n' "$line" | wc -c; done | tr '\n' ' ' | sed 's/ $//')" \
    "payload sizes as intended (valid, upper edge, 2 too short, 2 too long, unknown)"

# Interleaved: good and bad datagrams alternate on the wire.
sequence=()
for ((i = 0; i < ${#good[@]}; i++)); do
    sequence+=("${good[i]}")
    ((i < ${#bad[@]})) && sequence+=("${bad[i]}")
done
send_lines "$TAG_FRONTEND" "${sequence[@]}"

files=()
for port in "${TAG_BACKENDS[@]}"; do files+=("$E2E_WORKDIR/tag-$port.txt"); done
wait_for_lines "${#good[@]}" 10 "${files[@]}" ||
    fail "only $(line_count "${files[@]}") of ${#good[@]} valid datagrams arrived within 10 s"
# The lower edge: 23 bytes, the tag its last 3, no newline (so nothing can
# follow it in 5003's output). A pipe, not a here-string, to leave out the
# newline; nc -q0 waits for the pipe's data or end, it cannot miss them.
edge23=$(tagged "tag-602-23-bytes" 602)
ip netns exec "$NS" taskset -c 0 bash -c 'printf %s "$1" | nc -u -q0 127.0.0.1 "$2"' \
    send "$edge23" "$TAG_FRONTEND"
want[5003]+="$edge23"$'\n'
ends_with_edge() { [[ $(tail -c 23 "$E2E_WORKDIR/tag-5003.txt") == "$edge23" ]]; }
wait_until 5 ends_with_edge ||
    fail "the 23-byte datagram (window's lower edge) never reached backend 5003"
# Grace period: a malformed datagram wrongly delivered would arrive by now.
sleep 0.5
# wc -l counts newlines: the 23-byte datagram, last and without one, adds none.
assert_eq "${#good[@]}" "$(line_count "${files[@]}")" "newline-terminated datagrams delivered in total (valid ones only)"
for port in "${TAG_BACKENDS[@]}"; do
    expected=$(printf '%s' "${want[$port]}" | sort)
    if [[ $(sorted_lines "$E2E_WORKDIR/tag-$port.txt") == "$expected" ]]; then
        pass "backend $port got exactly its $(wc -l <<<"$expected") tagged datagrams"
    else
        fail "backend $port did not get exactly its tagged datagrams (< expected, > got):"
        diff <(printf '%s\n' "$expected") <(sorted_lines "$E2E_WORKDIR/tag-$port.txt") |
            cut -c1-80 | sed 's/^/    | /' | head -20
    fi
done

stats=$(stats_json)
tv() { stats_value "$stats" lo "$TAG_FRONTEND" "$1"; }
assert_eq 24 "$(tv received)" "stats 7000: received"
assert_eq 17 "$(tv forwarded)" "stats 7000: forwarded"
assert_eq 7 "$(tv dropped)" "stats 7000: dropped"
assert_eq 2 "$(tv drops.too_short)" "stats 7000: drops too_short"
assert_eq 2 "$(tv drops.too_long)" "stats 7000: drops too_long"
assert_eq 3 "$(tv drops.unknown_tag)" "stats 7000: drops unknown_tag"
assert_eq 0 "$(tv drops.magic_mismatch)" "stats 7000: drops magic_mismatch"
assert_eq 0 "$(tv drops.no_backend)" "stats 7000: drops no_backend"
# Bytes are whole frames: 14 (Ethernet) + 20 (IPv4) + 8 (UDP) + payload.
assert_eq "5 330" "$(tv backend.5001.packets) $(tv backend.5001.bytes)" "stats 7000: backend 5001 packets and bytes"
assert_eq "6 884" "$(tv backend.5002.packets) $(tv backend.5002.bytes)" "stats 7000: backend 5002 packets and bytes"
assert_eq "6 395" "$(tv backend.5003.packets) $(tv backend.5003.bytes)" "stats 7000: backend 5003 packets and bytes"

assert_ok "portmux detach lo (tag routing)" in_ns "$NS" "$PORTMUX" detach lo

# ---------------------------------------------------------- magic validation
log "--- part 2: payload validation, $MAGIC_CONFIG"
for port in "${MAGIC_BACKENDS[@]}"; do
    start_udp_backend "$NS" "$port" "$E2E_WORKDIR/magic-$port.txt"
done
wait_until 5 all_ports_listening "$NS" udp "${MAGIC_BACKENDS[@]}" ||
    die "the backends on ${MAGIC_BACKENDS[*]} never all started listening"
pass "three backends listening on ${MAGIC_BACKENDS[*]}"

assert_ok "portmux attach lo --mode generic (magic validation)" \
    in_ns "$NS" "$PORTMUX" attach lo --mode generic --config "$MAGIC_CONFIG" || finish

good=(PMUX-good-1 PMUX-good-2 PMUX-good-3 PMUX-good-4 PMUX-good-5 PMUX-good-6)
printf -v long '%-1024s' "PMUX-too-long-1025-bytes"   # 1024 + newline = 1025
bad=(XMUX-bad-magic pmux-lowercase xPMUX-offset-1 PMUX12 "${long// /x}")
send_lines "$MAGIC_FRONTEND" "${good[0]}" "${bad[0]}" "${good[1]}" "${bad[1]}" "${good[2]}" \
    "${bad[2]}" "${good[3]}" "${bad[3]}" "${good[4]}" "${bad[4]}" "${good[5]}"

files=()
for port in "${MAGIC_BACKENDS[@]}"; do files+=("$E2E_WORKDIR/magic-$port.txt"); done
wait_for_lines "${#good[@]}" 10 "${files[@]}" ||
    fail "only $(line_count "${files[@]}") of ${#good[@]} good datagrams arrived within 10 s"
sleep 0.5
assert_eq "${good[*]}" "$(sorted_lines "${files[@]}" | tr '\n' ' ' | sed 's/ $//')" \
    "exactly the six good datagrams were delivered"
for port in "${MAGIC_BACKENDS[@]}"; do
    assert_eq 2 "$(line_count "$E2E_WORKDIR/magic-$port.txt")" "good datagrams on backend $port (round robin)"
done

stats=$(stats_json)
mv_() { stats_value "$stats" lo "$MAGIC_FRONTEND" "$1"; }
assert_eq 11 "$(mv_ received)" "stats 9875: received"
assert_eq 6 "$(mv_ forwarded)" "stats 9875: forwarded"
assert_eq 5 "$(mv_ dropped)" "stats 9875: dropped"
assert_eq 3 "$(mv_ drops.magic_mismatch)" "stats 9875: drops magic_mismatch"
assert_eq 1 "$(mv_ drops.too_short)" "stats 9875: drops too_short"
assert_eq 1 "$(mv_ drops.too_long)" "stats 9875: drops too_long"
assert_eq 0 "$(mv_ drops.unknown_tag)" "stats 9875: drops unknown_tag"
for port in "${MAGIC_BACKENDS[@]}"; do
    assert_eq 2 "$(mv_ "backend.$port.packets")" "stats 9875: packets to backend $port"
done

assert_eq "$noports_before" "$(udp_counter "$NS" UdpNoPorts)" \
    "UdpNoPorts unchanged: no dropped datagram reached a frontend port"
assert_eq 0 "$(udp_counter "$NS" UdpInCsumErrors)" "UdpInCsumErrors at the end"

assert_ok "portmux detach lo (magic validation)" in_ns "$NS" "$PORTMUX" detach lo
finish
