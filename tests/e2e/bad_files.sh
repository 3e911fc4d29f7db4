#!/usr/bin/env bash
# e2e: hostile config files end promptly with one clear line and change
# nothing.
#
# `check`, `attach` and `reload` given a FIFO with no writer, /dev/zero, a
# sparse file over the 16 MiB cap and 100,000 levels of nesting: each exits 1
# within 10 s (timeout(1) would exit 124) with "portmux: error: FILE: ..." naming
# the problem; attach leaves nothing attached and reload leaves the installed
# config as it was.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_start ip timeout python3

make_ns_var NS pmbad
W=$E2E_WORKDIR
GOOD=$REPO_ROOT/examples/udp-roundrobin.json
mkfifo "$W/fifo.json"
truncate -s $((16 * 1024 * 1024 + 1)) "$W/big.json"
python3 -c 'import sys; sys.stdout.write("[" * 100000 + "]" * 100000)' >"$W/deep.json"

pm() { in_ns "$NS" timeout 10 "$PORTMUX" "$@"; }
xdp_on() { ip -n "$NS" -d link show lo | grep -o 'prog/xdp id [0-9]*'; }
register_detach "$NS" lo

declare -A REASON=(
    ["$W/fifo.json"]="cannot read config file: it is a FIFO, not a regular file"
    [/dev/zero]="cannot read config file: it is a character device, not a regular file"
    ["$W/big.json"]="cannot read config file: larger than 16777216 bytes"
    ["$W/deep.json"]="(\\[0\\]){32}: nested deeper than 32 levels"
)
for file in "$W/fifo.json" /dev/zero "$W/big.json" "$W/deep.json"; do
    name=${file##*/}
    E2E_EXPECT_RC=1 assert_fails "check $name exits 1 promptly" pm check "$file"
    assert_match "check $name says why" "^portmux: error: $file: ${REASON[$file]}" "$E2E_LAST_OUTPUT"
    E2E_EXPECT_RC=1 assert_fails "attach with $name exits 1 promptly" pm attach lo --mode generic --config "$file"
    assert_eq "" "$(xdp_on)" "nothing attached after attach with $name"
done

assert_ok "attach lo with a good config" pm attach lo --mode generic --config "$GOOD" || finish
frontends() { pm status lo --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["interfaces"][0]["frontends"])'; }
before=$(frontends)
for file in "$W/fifo.json" /dev/zero "$W/big.json" "$W/deep.json"; do
    name=${file##*/}
    E2E_EXPECT_RC=1 assert_fails "reload with $name exits 1 promptly" pm reload lo --config "$file"
    assert_match "reload with $name says why" "^portmux: error: $file: ${REASON[$file]}" "$E2E_LAST_OUTPUT"
done
assert_eq "$before" "$(frontends)" "the installed frontends are unchanged"
assert_ok "detach lo" pm detach lo
finish
