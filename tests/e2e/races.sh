#!/usr/bin/env bash
# e2e: verbs that change state, run at the same time, each take effect whole.
#
# Generic XDP on a namespace's loopback. Two configs A and B differ in every
# frontend but share frontend 9000's backend 9002.
#
# Reload against reload: for ROUNDS rounds, `reload -c A` and `reload -c B`
# start together; both must exit 0 and the installed frontends (from
# `status --json`) must be exactly A's or exactly B's, never a mix.
#
# Drain against reload: for DRAIN_ROUNDS rounds, from an undrained install of
# one config, `drain lo 9002` and `reload -c OTHER` start together; both must
# exit 0, and after both the installed config is OTHER with 9002 drained
# (nothing else drained): neither change is lost, whichever ran first.
#
# The statuses are collected in files and compared in one python3 run at the
# end (a python3 start per round would dominate the run time).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${RACE_ROUNDS:-50}
DRAIN_ROUNDS=${RACE_DRAIN_ROUNDS:-20}

e2e_start ip python3

make_ns_var NS pmrace
W=$E2E_WORKDIR
log "namespace $NS, $ROUNDS reload/reload rounds, $DRAIN_ROUNDS drain/reload rounds"
cat >"$W/A.json" <<'EOF'
{ "frontends": [
    { "port": 9000, "backends": [9001, 9002, 9003] },
    { "port": 9100, "backends": [9101, { "port": 9102, "weight": 3 }] },
    { "port": 9300, "protocol": "tcp", "backends": [9301, 9302] } ] }
EOF
cat >"$W/B.json" <<'EOF'
{ "frontends": [
    { "port": 9000, "backends": [9002, 9004] },
    { "port": 9200, "backends": [9201, 9202, 9203, 9204] },
    { "port": 9300, "protocol": "tcp", "backends": [9303] } ] }
EOF
pm() { in_ns "$NS" "$PORTMUX" "$@"; }

register_detach "$NS" lo
assert_ok "attach lo with config A" pm attach lo --mode generic --config "$W/A.json" || finish

# race OUT_PREFIX CMD1... -- CMD2...: both commands at once; their exit
# statuses go to OUT_PREFIX.rc1 and OUT_PREFIX.rc2, their output to .out1/.out2.
race() {
    local prefix=$1 first=() second=()
    shift
    while [[ $1 != -- ]]; do first+=("$1"); shift; done
    shift
    second=("$@")
    { pm "${first[@]}" >"$prefix.out1" 2>&1; echo $? >"$prefix.rc1"; } &
    local one=$!
    { pm "${second[@]}" >"$prefix.out2" 2>&1; echo $? >"$prefix.rc2"; } &
    local two=$!
    wait "$one" "$two"
}

# ----------------------------------------------------------- reload vs reload
failed_commands=0
for ((round = 1; round <= ROUNDS; round++)); do
    race "$W/r$round" reload lo -c "$W/A.json" -- reload lo -c "$W/B.json"
    if [[ $(cat "$W/r$round.rc1") != 0 || $(cat "$W/r$round.rc2") != 0 ]]; then
        failed_commands=$((failed_commands + 1))
        sed 's/^/    | /' "$W/r$round.out1" "$W/r$round.out2"
    fi
    pm status lo --json >"$W/r$round.status" 2>&1
done
assert_eq 0 "$failed_commands" "rounds where a racing reload exited non-zero"

# ----------------------------------------------------------- drain vs reload
failed_commands=0
for ((round = 1; round <= DRAIN_ROUNDS; round++)); do
    if ((round % 2)); then from=A to=B; else from=B to=A; fi
    pm undrain lo 9002 >/dev/null 2>&1
    pm reload lo -c "$W/$from.json" >/dev/null 2>&1 || die "setting up drain round $round: reload to $from failed"
    race "$W/d$round" drain lo 9002 -- reload lo -c "$W/$to.json"
    if [[ $(cat "$W/d$round.rc1") != 0 || $(cat "$W/d$round.rc2") != 0 ]]; then
        failed_commands=$((failed_commands + 1))
        sed 's/^/    | /' "$W/d$round.out1" "$W/d$round.out2"
    fi
    echo "$to" >"$W/d$round.expected"
    pm status lo --json >"$W/d$round.status" 2>&1
done
assert_eq 0 "$failed_commands" "rounds where the racing drain or reload exited non-zero"

# ------------------------------------------------------------------ verdicts
verdicts=$("$E2E_PYTHON" - "$W" "$ROUNDS" "$DRAIN_ROUNDS" <<'EOF'
import json, sys
work, rounds, drain_rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def from_config(name):
    doc = json.load(open("%s/%s.json" % (work, name)))
    out = set()
    for f in doc["frontends"]:
        backends = tuple((b, 1) if isinstance(b, int) else (b["port"], b.get("weight", 1))
                         for b in f["backends"])
        out.add((f["port"], f.get("protocol", "udp"), backends))
    return out

def installed(path):
    try:
        doc = json.load(open(path))
        frontends = doc["interfaces"][0]["frontends"]
    except Exception as e:
        return None, None
    out, drained = set(), set()
    for f in frontends:
        out.add((f["port"], f["protocol"],
                 tuple((b["port"], b["weight"]) for b in f["backends"])))
        drained |= {(f["port"], b["port"]) for b in f["backends"] if b["drained"]}
    return out, drained

configs = {"A": from_config("A"), "B": from_config("B")}
ended = {"A": 0, "B": 0, "neither": 0}
for r in range(1, rounds + 1):
    got, _ = installed("%s/r%d.status" % (work, r))
    name = next((n for n, c in configs.items() if got == c), "neither")
    ended[name] += 1
print("reload A=%d B=%d neither=%d" % (ended["A"], ended["B"], ended["neither"]))

lost_reload = lost_drain = 0
for r in range(1, drain_rounds + 1):
    want = open("%s/d%d.expected" % (work, r)).read().strip()
    got, drained = installed("%s/d%d.status" % (work, r))
    lost_reload += got != configs[want]
    lost_drain += drained != {(9000, 9002)}
print("drain lost_reload=%d lost_drain=%d" % (lost_reload, lost_drain))
EOF
)
log "$verdicts"
reload_line=$(grep '^reload' <<<"$verdicts")
drain_line=$(grep '^drain' <<<"$verdicts")
assert_match "every racing reload round ended in exactly A or exactly B" 'neither=0$' "$reload_line"
log "rounds ending in A and in B: ${reload_line#reload }"
assert_eq "drain lost_reload=0 lost_drain=0" "$drain_line" \
    "drain racing reload: the reload's config installed and 9002 drained, every round"

assert_ok "detach lo" pm detach lo
finish
