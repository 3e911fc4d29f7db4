#!/usr/bin/env bash
# `portmux run` /metrics cost (issue 10): scrape time with 1,000 frontends x
# 3 backends, and the service's memory over 10,000 scrapes.
#
#   sudo bench/run_metrics.sh [--reps N] [--scrapes N]
#
# In a throwaway network namespace (removed on exit, with everything else):
# attaches with `portmux run lo --mode generic --metrics-listen` and a config
# of 1,000 UDP frontends (20000-20999) over 3 backends each, bound by a sink
# so that they are up. Then:
#   - REPS repetitions (default 5) of 50 scrapes on fresh connections:
#     median and max wall time per repetition (curl's time_total);
#   - SCRAPES scrapes (default 10,000) from one python3 client, fresh
#     connection each, with portmux's VmRSS sampled every 1,000.
# Prints a Markdown report (also written to $OUT, default
# bench/run_metrics_results.md). Needs root; PORTMUX overrides the binary.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORTMUX=${PORTMUX:-$ROOT/build/loader/portmux}
OUT=${OUT:-$ROOT/bench/run_metrics_results.md}
REPS=5
SCRAPES=10000
while [[ $# -gt 0 ]]; do
  case $1 in
    --reps) REPS=$2; shift ;;
    --scrapes) SCRAPES=$2; shift ;;
    *) echo "usage: $0 [--reps N] [--scrapes N]" >&2; exit 2 ;;
  esac
  shift
done
[[ $(id -u) -eq 0 ]] || { echo "bench/run_metrics.sh needs root" >&2; exit 1; }
[[ -x $PORTMUX ]] || { echo "no portmux binary at $PORTMUX" >&2; exit 1; }

NS=pmbm-$$
W=$(mktemp -d /tmp/portmux-bench-metrics.XXXXXX)
PIDS=()
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid"; done
  ip netns del "$NS" 2>/dev/null
  umount "$W/bpffs" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
mkdir "$W/bpffs"
mount -t bpf bpf "$W/bpffs"

python3 - "$W/config.json" <<'PY'
import json, sys
frontends = [{"port": 20000 + i, "protocol": "udp", "backends": [30001, 30002, 30003]}
             for i in range(1000)]
json.dump({"frontends": frontends}, open(sys.argv[1], "w"))
PY
ip netns exec "$NS" python3 -c '
import socket, time
socks = []
for port in (30001, 30002, 30003):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port)); socks.append(s)
time.sleep(100000)' &
PIDS+=($!)
ip netns exec "$NS" sh -c 'mount --bind "$0" /sys/fs/bpf && exec "$@"' "$W/bpffs" \
  "$PORTMUX" run lo --config "$W/config.json" --mode generic --metrics-listen 127.0.0.1:9469 \
  >"$W/run.log" 2>&1 &
RUN=$!
PIDS+=("$RUN")
for _ in $(seq 600); do
  grep -q 'event=attached' "$W/run.log" && break
  kill -0 "$RUN" || { cat "$W/run.log"; exit 1; }
  sleep 0.1
done
grep -q 'event=attached' "$W/run.log" || { echo "portmux run did not attach" >&2; cat "$W/run.log"; exit 1; }
sleep 1
lines=$(ip netns exec "$NS" curl -sf http://127.0.0.1:9469/metrics | grep -vc '^#')
bytes=$(ip netns exec "$NS" curl -sf http://127.0.0.1:9469/metrics | wc -c)

{
echo "# portmux run /metrics: 1,000 frontends x 3 backends"
echo
echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, kernel $(uname -r), by bench/run_metrics.sh."
echo "One scrape: $lines samples, $bytes bytes."
echo
echo "## Scrape time (50 scrapes per repetition, a fresh connection each)"
echo
echo "First byte: the request sent until the first byte of the answer (the"
echo "snapshot and rendering); total: until the last of the $bytes bytes arrived."
echo
echo "| repetition | median first byte ms | median total ms | max total ms |"
echo "|---|---|---|---|"
for rep in $(seq "$REPS"); do
  for _ in $(seq 50); do
    ip netns exec "$NS" curl -s -o /dev/null -w '%{time_starttransfer} %{time_total}\n' http://127.0.0.1:9469/metrics
  done >"$W/times.txt"
  python3 - "$rep" "$W/times.txt" <<'PY'
import statistics, sys
rows = [tuple(map(float, line.split())) for line in open(sys.argv[2])]
first = statistics.median(r[0] for r in rows) * 1000
total = sorted(r[1] for r in rows)
print("| %s | %.1f | %.1f | %.1f |" % (sys.argv[1], first, statistics.median(total) * 1000, total[-1] * 1000))
PY
done
echo
echo "## Memory over $SCRAPES scrapes (VmRSS of portmux run)"
echo
echo "| scrapes | VmRSS kB |"
echo "|---|---|"
ip netns exec "$NS" python3 - "$RUN" "$SCRAPES" <<'PY'
import http.client, sys
pid, total = int(sys.argv[1]), int(sys.argv[2])
def rss():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
print("| 0 | %d |" % rss())
for i in range(1, total + 1):
    c = http.client.HTTPConnection("127.0.0.1", 9469, timeout=10)
    c.request("GET", "/metrics")
    r = c.getresponse(); r.read(); c.close()
    assert r.status == 200, r.status
    if i % 1000 == 0:
        print("| %d | %d |" % (i, rss()), flush=True)
PY
} | tee "$OUT"
