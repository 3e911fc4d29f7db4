#!/usr/bin/env bash
# e2e: the JSON side of the CLI.
#
#  - `check --json` prints {"valid": true, ...} for a good file and
#    {"error": {"path", "reason", ...}} (exit 1) for a bad one;
#  - `status --json`, `stats --json` print {"error": ...} on stdout (exit 1)
#    when portmux is not attached;
#  - round trip: a config using every feature is attached; the output of
#    `status lo --json` passes `check`, and `reload lo -c` of it exits 0 and
#    leaves `status --json` identical (drained backends stay drained); a
#    reload from the status of another config installs that config.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_start ip python3

make_ns_var NS pmjson
W=$E2E_WORKDIR
pm() { in_ns "$NS" "$PORTMUX" "$@"; }
field() { python3 -c 'import json, sys; d = json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d[int(k)] if k.isdigit() else d[k]
print(d)' "$1"; }

cat >"$W/rich.json" <<'JSON'
{ "flow_table_size": 4096,
  "frontends": [
    { "port": 9875, "backends": [9876, { "port": 9877, "weight": 3 }] },
    { "port": 9885, "affinity": "flow", "flow_idle_timeout": 7, "reply_translation": false,
      "backends": [9886, 9887] },
    { "port": 8080, "protocol": "tcp", "backends": [8081, 8082] },
    { "port": 7000, "validate": { "min_length": 23, "max_length": 512,
                                  "match": [ { "offset": 0, "value": "PM" } ] },
      "route": { "offset": 20, "length": 3, "unknown": "drop",
                 "tags": [ { "tag": "600", "backend": 5001 }, { "tag": "601", "backend": 5002 } ] },
      "backends": [] } ] }
JSON
cat >"$W/bad.json" <<'JSON'
{ "frontends": [ { "port": 9875, "backends": [9876, 9876] } ] }
JSON

assert_ok "check --json of a good file" "$PORTMUX" check --json "$W/rich.json"
assert_eq "True 4" "$(field valid <<<"$E2E_LAST_OUTPUT") $(field frontends <<<"$E2E_LAST_OUTPUT")" \
    "check --json says valid, 4 frontends"
out=$("$PORTMUX" check --json "$W/bad.json" 2>/dev/null); rc=$?
assert_eq 1 "$rc" "check --json of a bad file exits 1"
assert_eq "frontends[0].backends[1]" "$(field error.path <<<"$out")" "the error's JSON path"
assert_match "the error's reason" '^duplicate backend 9876' "$(field error.reason <<<"$out")"
out=$(pm status lo --json 2>/dev/null); rc=$?
assert_eq 1 "$rc" "status lo --json when not attached exits 1"
assert_eq "portmux is not attached to lo" "$(field error.message <<<"$out")" "status --json error"
out=$(pm stats lo --json 2>/dev/null); rc=$?
assert_eq 1 "$rc" "stats lo --json when not attached exits 1"
assert_eq "portmux is not attached to lo" "$(field error.message <<<"$out")" "stats --json error"

register_detach "$NS" lo
assert_ok "attach lo with the rich config" pm attach lo --mode generic --config "$W/rich.json" || finish
assert_ok "drain 9877" pm drain lo 9877
pm status lo --json >"$W/status.json" || fail "status lo --json failed"
assert_eq 4096 "$(field interfaces.0.flow_table_size <"$W/status.json")" "status --json has flow_table_size"
assert_ok "check accepts the output of status --json" "$PORTMUX" check "$W/status.json"
assert_match "check counts its frontends and backends" 'valid, 4 frontend\(s\), 8 backend\(s\)' "$E2E_LAST_OUTPUT"
assert_ok "reload lo -c status.json" pm reload lo --config "$W/status.json"
pm status lo --json >"$W/status2.json"
assert_eq "$(cat "$W/status.json")" "$(cat "$W/status2.json")" \
    "status --json is identical after reloading its own output (9877 still drained)"

cat >"$W/small.json" <<'JSON'
{ "flow_table_size": 4096, "frontends": [ { "port": 9875, "backends": [9876, 9878] } ] }
JSON
assert_ok "reload lo to a smaller config" pm reload lo --config "$W/small.json"
assert_ok "reload lo back from the saved status" pm reload lo --config "$W/status.json"
pm status lo --json >"$W/status3.json"
# 9877 was not in the small config, so its drain did not survive it.
python3 -c 'import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for d in (a, b):
    for f in d["interfaces"][0]["frontends"]:
        for x in f["backends"]: x.pop("drained", None)
print("same" if a["interfaces"][0]["frontends"] == b["interfaces"][0]["frontends"] else "different")' \
    "$W/status.json" "$W/status3.json" >"$W/cmp.txt"
assert_eq same "$(cat "$W/cmp.txt")" "the saved status restores every frontend"
assert_ok "detach lo" pm detach lo
finish
