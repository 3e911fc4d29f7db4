#!/usr/bin/env bash
# e2e: `portmux stats --format prometheus` follows the Prometheus text
# exposition format and reports the same numbers as `stats --json`.
#
# portmux on two interfaces of a throwaway namespace: lo (generic) and a veth
# whose name holds a double quote and a backslash (p"\<pid>, legal for Linux),
# so label values must be escaped. The config has 9875/udp (payload 6..64
# bytes, round robin over 9876, 9877) and 9875/tcp (8081, 8082): same port,
# two protocols, so series differ only by their protocol label.
#
# Traffic on lo: seq-1..seq-40 (seq-1..seq-9 are 5 bytes: too_short), one
# 100-byte datagram (too_long), two TCP exchanges. Expected: received 41,
# forwarded 31, too_short 9, too_long 1 on 9875/udp.
#
# The python3 checker enforces, for every line: a sample's metric has its
# HELP and TYPE lines before it, each at most once, and its samples are
# contiguous; counter names end in _total; names match
# [a-zA-Z_:][a-zA-Z0-9_:]* and start with portmux_; label names match
# [a-zA-Z_][a-zA-Z0-9_]* and do not start with __; label values are quoted
# with only \\ \" \n escapes; no series twice; values are non-negative
# integers; every sample has iface, frontend and protocol labels, forwarded
# ones a backend, dropped ones a reason; the text ends with a newline. Then
# every JSON counter (received, per backend packets and bytes, drops by
# reason, for every interface and frontend) equals its sample, and there is
# no sample without a JSON counter.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_start ip ss taskset timeout python3

make_ns_var NS pmprom
VETH='p"\'$E2E_ID
PEER=pmp$E2E_ID
make_veth "$NS" "$VETH" "$PEER"
log "namespace $NS, interfaces lo and $VETH"
W=$E2E_WORKDIR
cat >"$W/config.json" <<'EOF'
{
  "frontends": [
    { "port": 9875, "protocol": "udp", "validate": { "min_length": 6, "max_length": 64 },
      "backends": [9876, 9877] },
    { "port": 9875, "protocol": "tcp", "backends": [8081, 8082] }
  ]
}
EOF
pm() { in_ns "$NS" "$PORTMUX" "$@"; }

start_udp_sink "$NS" "$W/udp.txt" 9876 9877
start_tcp_sink "$NS" "$W/tcp.txt" 8081 8082
wait_until 5 all_ports_listening "$NS" udp 9876 9877 || die "UDP sink never listened"
wait_until 5 all_ports_listening "$NS" tcp 8081 8082 || die "TCP sink never listened"

register_detach "$NS" lo
register_detach "$NS" "$VETH"
assert_ok "attach lo --mode generic" pm attach lo --mode generic --config "$W/config.json" || finish
assert_ok "attach $VETH --mode native" pm attach "$VETH" --mode native --config "$W/config.json" || finish

sent=$(send_udp_seq "$NS" 127.0.0.1 9875 1 40)
assert_eq 40 "$sent" "datagrams sent"
ip netns exec "$NS" "$E2E_PYTHON" -c '
import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"L" * 100, ("127.0.0.1", 9875))'
for i in 1 2; do
    assert_match "TCP exchange $i" '^backend-808[12] tcp-'"$i"'$' "$(tcp_exchange "$NS" 127.0.0.1 9875 "tcp-$i")"
done
wait_for_lines 31 10 "$W/udp.txt" || fail "only $(line_count "$W/udp.txt") of 31 datagrams arrived"

prom=$(pm stats --format prometheus) || fail "stats --format prometheus exited non-zero"
json=$(pm stats --json) || fail "stats --json exited non-zero"
printf '%s' "$prom" >"$W/prom.txt"
pm stats --format prometheus >"$W/prom-raw.txt"  # with its trailing newline, as printed
printf '%s\n' "$json" >"$W/stats.json"
log "$(wc -l <"$W/prom-raw.txt") lines of Prometheus text"

cat >"$W/check.py" <<'EOF'
import json, re, sys

text = open(sys.argv[1]).read()
doc = json.load(open(sys.argv[2]))
problems = []
def bad(lineno, why, line):
    problems.append("line %d: %s: %r" % (lineno, why, line))

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*$")
help_seen, type_seen, types = {}, {}, {}
samples = {}
finished = set()   # metrics whose block of samples has ended
current = None

def parse_labels(s, lineno, line):
    """s starts after '{'; returns (labels, rest after '}')."""
    labels, i = [], 0
    while True:
        if s[i:i + 1] == "}":
            return labels, s[i + 1:]
        m = re.match(r"([^=]*)=\"", s[i:])
        if not m:
            raise ValueError("malformed label list")
        name = m.group(1)
        if not LABEL.match(name) or name.startswith("__"):
            bad(lineno, "bad label name %r" % name, line)
        i += m.end()
        value = ""
        while True:
            if i >= len(s):
                raise ValueError("unterminated label value")
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ValueError("invalid escape \\%s" % nxt)
                value += {"\\": "\\", '"': '"', "n": "\n"}[nxt]
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ValueError("raw newline in a label value")
            else:
                value += c
                i += 1
        labels.append((name, value))
        if s[i:i + 1] == ",":
            i += 1
        elif s[i:i + 1] != "}":
            raise ValueError("expected , or } after a label value")

if not text.endswith("\n"):
    problems.append("the text does not end with a newline")
for lineno, line in enumerate(text.split("\n")[:-1], 1):
    if line == "":
        bad(lineno, "empty line", line)
        continue
    if line.startswith("#"):
        parts = line.split(" ", 3)
        if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
            kind, name = parts[1], parts[2]
            if not NAME.match(name):
                bad(lineno, "bad metric name in %s" % kind, line)
            seen = help_seen if kind == "HELP" else type_seen
            if name in seen:
                bad(lineno, "second %s for %s" % (kind, name), line)
            seen[name] = lineno
            if name in samples:
                bad(lineno, "%s after samples of %s" % (kind, name), line)
            if kind == "TYPE":
                t = parts[3] if len(parts) > 3 else ""
                if t not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    bad(lineno, "unknown type %r" % t, line)
                types[name] = t
            elif len(parts) < 4 or not parts[3].strip():
                bad(lineno, "empty HELP text", line)
        continue
    m = re.match(r"([^{ ]+)(\{?)", line)
    name = m.group(1)
    if not NAME.match(name):
        bad(lineno, "bad metric name %r" % name, line)
    if not name.startswith("portmux_"):
        bad(lineno, "metric name without the portmux_ prefix", line)
    rest = line[m.end():]
    labels = []
    try:
        if m.group(2):
            labels, rest = parse_labels(rest, lineno, line)
    except (ValueError, IndexError) as e:
        bad(lineno, str(e), line)
        continue
    fields = rest.split(" ")
    if len(fields) not in (2, 3) or fields[0] != "":
        bad(lineno, "expected ' VALUE [TIMESTAMP]' after the labels", line)
        continue
    value = fields[1]
    try:
        float(value)
    except ValueError:
        bad(lineno, "value %r is not a number" % value, line)
        continue
    if name not in help_seen:
        bad(lineno, "sample before (or without) a HELP line", line)
    if name not in type_seen:
        bad(lineno, "sample before (or without) a TYPE line", line)
    if types.get(name) == "counter":
        if not name.endswith("_total"):
            bad(lineno, "counter name does not end in _total", line)
        if not re.match(r"[0-9]+$", value):
            bad(lineno, "counter value %r is not a non-negative integer" % value, line)
    if name != current:
        if name in finished:
            bad(lineno, "samples of %s are not contiguous" % name, line)
        if current is not None:
            finished.add(current)
        current = name
    names = [n for n, _ in labels]
    if len(set(names)) != len(names):
        bad(lineno, "a label repeated", line)
    d = dict(labels)
    for need in ("iface", "frontend", "protocol"):
        if need not in d:
            bad(lineno, "no %s label" % need, line)
    if name.startswith("portmux_forwarded_") and "backend" not in d:
        bad(lineno, "no backend label", line)
    if name.startswith("portmux_dropped_") and "reason" not in d:
        bad(lineno, "no reason label", line)
    key = (name, tuple(sorted(labels)))
    if key in samples:
        bad(lineno, "duplicate series", line)
    samples[key] = int(value) if re.match(r"[0-9]+$", value) else float(value)

for name in set(help_seen) | set(type_seen):
    if name not in help_seen or name not in type_seen:
        problems.append("%s has only one of HELP and TYPE" % name)

# The same numbers as the JSON.
expected = {}
for iface in doc["interfaces"]:
    for f in iface["frontends"]:
        base = (("frontend", str(f["port"])), ("iface", iface["interface"]), ("protocol", f["protocol"]))
        def k(name, extra=()):
            return (name, tuple(sorted(base + tuple(extra))))
        expected[k("portmux_received_packets_total")] = f["received"]
        for b in f["backends"]:
            expected[k("portmux_forwarded_packets_total", [("backend", str(b["port"]))])] = b["packets"]
            expected[k("portmux_forwarded_bytes_total", [("backend", str(b["port"]))])] = b["bytes"]
        for reason, count in f["drops"].items():
            expected[k("portmux_dropped_packets_total", [("reason", reason)])] = count
for key, value in sorted(expected.items()):
    if key not in samples:
        problems.append("no sample for JSON counter %s %s = %s" % (key[0], dict(key[1]), value))
    elif samples[key] != value:
        problems.append("%s %s: prometheus %s, JSON %s" % (key[0], dict(key[1]), samples[key], value))
for key in samples:
    if key not in expected:
        problems.append("sample %s %s has no JSON counter" % (key[0], dict(key[1])))

print("%d samples, %d metrics, %d JSON counters" % (len(samples), len(types), len(expected)))
for p in problems:
    print("PROBLEM " + p)
sys.exit(1 if problems else 0)
EOF

if result=$("$E2E_PYTHON" "$W/check.py" "$W/prom-raw.txt" "$W/stats.json" 2>&1); then
    pass "Prometheus text passes every format rule and equals stats --json ($result)"
else
    fail "Prometheus text breaks the format or disagrees with stats --json:"
    printf '%s\n' "$result" | sed 's/^/    | /'
    sed 's/^/    > /' "$W/prom-raw.txt"
fi
# The checker's own sanity: a broken text must be caught.
{ sed -n '1,3p' "$W/prom-raw.txt"; sed -n 3p "$W/prom-raw.txt"; } >"$W/dup.txt"
if grep -q 'duplicate series' <<<"$("$E2E_PYTHON" "$W/check.py" "$W/dup.txt" "$W/stats.json")"; then
    pass "control: the checker rejects a duplicated series"
else
    fail "control: the checker accepted a duplicated series"
fi
printf 'portmux_x_total{iface="a\\q"} 1\n' >"$W/esc.txt"
if grep -q 'invalid escape' <<<"$("$E2E_PYTHON" "$W/check.py" "$W/esc.txt" "$W/stats.json")"; then
    pass "control: the checker rejects an invalid escape"
else
    fail "control: the checker accepted an invalid escape"
fi

# The numbers the traffic must have produced, in the Prometheus text itself.
sample() { grep -F -- "$1" "$W/prom-raw.txt" | awk '{ print $NF }'; }
lo_udp='iface="lo",frontend="9875",protocol="udp"'
assert_eq 41 "$(sample "portmux_received_packets_total{$lo_udp}")" "lo 9875/udp received"
assert_eq 9 "$(sample "portmux_dropped_packets_total{$lo_udp,reason=\"too_short\"}")" "lo 9875/udp too_short"
assert_eq 1 "$(sample "portmux_dropped_packets_total{$lo_udp,reason=\"too_long\"}")" "lo 9875/udp too_long"
fw=$(grep -F "portmux_forwarded_packets_total{$lo_udp," "$W/prom-raw.txt" | awk '{ s += $NF } END { print s }')
assert_eq 31 "$fw" "lo 9875/udp forwarded over both backends"
assert_eq 31 "$(line_count "$W/udp.txt")" "datagrams the UDP sink received"
tcp=$(grep -F 'portmux_received_packets_total{iface="lo",frontend="9875",protocol="tcp"}' "$W/prom-raw.txt" | awk '{ print $NF }')
if [[ $tcp =~ ^[0-9]+$ ]] && ((tcp > 0)); then
    pass "lo 9875/tcp received $tcp segments"
else
    fail "lo 9875/tcp received '$tcp'"
fi
esc_iface=${VETH//\\/\\\\}
esc_iface=${esc_iface//\"/\\\"}
assert_eq 0 "$(sample "portmux_received_packets_total{iface=\"$esc_iface\",frontend=\"9875\",protocol=\"udp\"}")" \
    "$VETH (escaped as $esc_iface) 9875/udp received"
assert_eq 4 "$(grep -c '^portmux_received_packets_total{' "$W/prom-raw.txt")" \
    "received series: 2 frontends on each of 2 interfaces"
lo_only=$(pm stats lo --format prometheus)
assert_eq 2 "$(grep -c '^portmux_received_packets_total{iface="lo",' <<<"$lo_only")" \
    "stats lo --format prometheus: the 2 frontends of lo"
assert_no_match "stats lo --format prometheus: nothing of $VETH" 'iface="p' "$lo_only"

assert_ok "portmux detach lo" pm detach lo
assert_ok "portmux detach $VETH" pm detach "$VETH"
finish
