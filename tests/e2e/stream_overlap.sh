#!/usr/bin/env bash
# e2e: a retransmitted segment that overlaps bytes already received reaches
# the backend once.
#
# TCP queues a segment whose head repeats bytes it already received (seq <
# rcv_nxt < end_seq) whole; the sockmap verdict path hands skbs on whole,
# so without the verdict program's cut the backend would get the repeated
# bytes twice (docs/design.md, "Retransmitted overlaps"; before the cut a
# 64 KiB segment arrived twice in about 1 of 10 1 GiB-both-ways transfers
# under load). stream_overlap.py sends such a segment from a raw socket as
# the client of a spliced connection: the last OLD bytes again, then NEW
# bytes.
#
# Checks, for OLD 40 (one cut) and OLD 10000 (several: bpf_skb_adjust_room
# cuts 4,095 bytes a call): the backend gets exactly the NEW bytes after
# the first ones, and `stats` counts each trimmed segment
# (overlaps_trimmed) and every byte once (bytes_to_backend).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OVERLAP=$E2E_LIB_DIR/stream_overlap.py

e2e_start ip python3 timeout

make_ns_var NS pmovl
# The raw segment carries no TCP options: the connection must not use
# timestamps (a per-namespace setting).
ip netns exec "$NS" sysctl -qw net.ipv4.tcp_timestamps=0 || die "cannot turn TCP timestamps off in $NS"
CONFIG=$E2E_WORKDIR/stream.json
cat >"$CONFIG" <<'JSON'
{"frontends": [{"port": 9000, "protocol": "tcp", "backends": [],
  "route": {"offset": 0, "length": 4, "tags": [{"tag": "OVLP", "backend": 5002}]}}]}
JSON
ROUTER_LOG=$E2E_WORKDIR/router.log
serve_streams "$NS" "$CONFIG" "$ROUTER_LOG"

FIRST=$((4 + 20000))
expected_bytes=0
for case in "40 60" "10000 5000"; do
    read -r old new <<<"$case"
    result=$(ip netns exec "$NS" timeout 30 "$E2E_PYTHON" "$OVERLAP" 9000 5002 OVLP "$old" "$new")
    log "overlap $old, new $new: $result"
    assert_eq "True True $new" \
        "$(json_field "$result" first) $(json_field "$result" exact) $(json_field "$result" next_length)" \
        "a segment repeating $old bytes: the backend got the first bytes, then exactly the $new new ones"
    expected_bytes=$((expected_bytes + FIRST + new))
done
stats=$(stream_stats "$NS")
assert_eq 2 "$(stream_stat "$stats" 9000 backend.5002.overlaps_trimmed)" "both overlapping segments trimmed and counted"
assert_eq "$expected_bytes" "$(stream_stat "$stats" 9000 backend.5002.bytes_to_backend)" \
    "every byte to the backend counted once"
assert_eq 2 "$(stream_stat "$stats" 9000 spliced)" "both connections went through the sockmap"

finish
