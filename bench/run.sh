#!/usr/bin/env bash
# portmux benchmarks (GitHub issue 6): per-packet cost with BPF_PROG_TEST_RUN,
# scaling, and live UDP/TCP traffic through portmux and the alternatives.
# Writes docs/benchmarks.md and docs/benchmarks.png.
#
#   sudo bench/run.sh [--quick] [--no-install] [--reps N]
#
# Needs root (BPF, network namespaces). Installs what it lacks with apt-get
# (nftables, nginx-light + libnginx-mod-stream, gnuplot-nox, jq, python3).
# Bounded: about 6 minutes on 2 cores (--quick: about 1.5). Traffic only
# goes to addresses inside two network namespaces it creates (and removes on
# exit, as it removes everything else it set up).
#
# Environment: BUILD (build directory, default /tmp/portmux-bench-build),
# OUT_MD / OUT_PNG (default docs/benchmarks.md, docs/benchmarks.png).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-/tmp/portmux-bench-build}
OUT_MD=${OUT_MD:-$ROOT/docs/benchmarks.md}
OUT_PNG=${OUT_PNG:-$ROOT/docs/benchmarks.png}
QUICK=0
INSTALL=1
REPS=
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    --no-install) INSTALL=0 ;;
    --reps) REPS=$2; shift ;;
    *) echo "usage: $0 [--quick] [--no-install] [--reps N]" >&2; exit 2 ;;
  esac
  shift
done

if [[ $(id -u) -ne 0 ]]; then
  echo "bench/run.sh needs root (BPF programs, network namespaces)" >&2
  exit 1
fi

START_TS=$(date +%s)
log() { printf '[%4ds] %s\n' $(( $(date +%s) - START_TS )) "$*" >&2; }

# Workload sizes. A trial ends at its packet count or its time limit.
if [[ $QUICK -eq 1 ]]; then
  UDP_COUNT=300000; UDP_SECONDS=1; TCP_CONNS=500; TCP_RR=3000; TCP_SECONDS=1
  PROG_ARGS=(--runs 3 --repeat 1000000 --single-shots 20000 --flows 200000 --quick)
  REPS=${REPS:-1}
else
  REPS=${REPS:-3}
  UDP_COUNT=1000000; UDP_SECONDS=1.5; TCP_CONNS=2000; TCP_RR=20000; TCP_SECONDS=2
  PROG_ARGS=(--runs 5 --repeat 1000000 --single-shots 50000 --flows 1000000)
fi
SIZES=(64 512)                   # UDP payload bytes
FRONT=9875
BACKENDS=(9876 9877 9878)
BACKEND_LIST=$(IFS=,; echo "${BACKENDS[*]}")
# The benchmarking range (RFC 2544), only ever configured inside our namespaces.
CLI_ADDR=198.18.0.1
LB_ADDR=198.18.0.2

# ------------------------------------------------------------------ install
need_pkgs=()
command -v nft >/dev/null || need_pkgs+=(nftables)
command -v nginx >/dev/null || need_pkgs+=(nginx-light)
[[ -e /usr/lib/nginx/modules/ngx_stream_module.so ]] || need_pkgs+=(libnginx-mod-stream)
command -v gnuplot >/dev/null || need_pkgs+=(gnuplot-nox)
command -v jq >/dev/null || need_pkgs+=(jq)
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v cmake >/dev/null || need_pkgs+=(cmake)
command -v ninja >/dev/null || need_pkgs+=(ninja-build)
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
  if [[ $INSTALL -eq 1 ]]; then
    log "installing ${need_pkgs[*]}"
    apt-get update -qq
    # Installing nginx must not leave a system nginx running: policy-rc.d says no.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.portmux-bench
    chmod +x /usr/sbin/policy-rc.d.portmux-bench
    had_policy=0; [[ -e /usr/sbin/policy-rc.d ]] && had_policy=1
    [[ $had_policy -eq 0 ]] && cp /usr/sbin/policy-rc.d.portmux-bench /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
    [[ $had_policy -eq 0 ]] && rm -f /usr/sbin/policy-rc.d
    rm -f /usr/sbin/policy-rc.d.portmux-bench
  else
    log "missing ${need_pkgs[*]} (--no-install given); the systems needing them are skipped"
  fi
fi

# ------------------------------------------------------------------ build
log "building portmux and the benchmarks in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DPORTMUX_BUILD_TESTS=OFF -DPORTMUX_BUILD_BENCH=ON >/dev/null
ninja -C "$BUILD" portmux portmux_prog_bench portmux_loadgen >/dev/null
PORTMUX=$BUILD/loader/portmux
PROG_BENCH=$BUILD/bench/portmux_prog_bench
LOADGEN=$BUILD/bench/portmux_loadgen

# ------------------------------------------------------------------ cleanup
WORK=$(mktemp -d /tmp/portmux-bench.XXXXXX)
ID=$$
NS_CLI=pmxb-cli-$ID
NS_LB=pmxb-lb-$ID
VETH_CLI=pmxc$ID
VETH_LB=pmxl$ID
NGINX_PID=
MNT_PID=
OLD_BPF_STATS=
BG_PIDS=()
PORT=

# (Background jobs call ip netns exec directly, so $! is the process itself,
# which execs in place, and not a subshell that a kill would miss.)
in_lb() { ip netns exec "$NS_LB" "$@"; }
in_cli() { ip netns exec "$NS_CLI" "$@"; }
# portmux and libxdp pin under /sys/fs/bpf by interface name and index, and
# `lo` has the same name and index in every namespace: they run in a mount
# namespace of ours with a private bpffs, so nothing collides with another
# user of this machine, and everything pinned goes away with it.
in_bpffs() { nsenter --target "$MNT_PID" --mount --net="/run/netns/$NS_LB" "$@"; }
portmux_lb() { in_bpffs "$PORTMUX" "$@"; }

cleanup() {
  set +e
  for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  [[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null
  [[ -s $WORK/nginx.pid ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null
  if [[ -e /run/netns/$NS_LB && -n $MNT_PID ]]; then
    portmux_lb detach "$VETH_LB" >/dev/null 2>&1
    portmux_lb detach lo >/dev/null 2>&1
    in_bpffs bpftool net detach xdpdrv dev "$VETH_LB" >/dev/null 2>&1
    in_bpffs bpftool net detach xdpgeneric dev lo >/dev/null 2>&1
  fi
  [[ -n $MNT_PID ]] && kill "$MNT_PID" 2>/dev/null
  [[ -n $OLD_BPF_STATS ]] && sysctl -qw kernel.bpf_stats_enabled="$OLD_BPF_STATS"
  ip netns del "$NS_CLI" 2>/dev/null
  ip netns del "$NS_LB" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ machine
{
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "os: $(. /etc/os-release; echo "$PRETTY_NAME")"
  echo "clang: $(clang --version | head -1)"
  echo "libbpf: $(pkg-config --modversion libbpf), libxdp: $(pkg-config --modversion libxdp)"
  echo "nginx: $(nginx -v 2>&1 | sed 's/.*nginx\///')"
  echo "nft: $(nft --version)"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$WORK/machine.txt"

# ------------------------------------------------------------------ part 1
log "per-packet cost (BPF_PROG_TEST_RUN): ${PROG_ARGS[*]}"
if [[ -n ${PROG_JSON:-} ]]; then  # development: reuse an earlier result
  cp "$PROG_JSON" "$WORK/prog.json"
else
  "$PROG_BENCH" "${PROG_ARGS[@]}" --json "$WORK/prog.json" 2> "$WORK/prog.log" || {
    cat "$WORK/prog.log" >&2; exit 1; }
fi
PORTMUX_PROG_ID=$(jq -r '.portmux.program.id' "$WORK/prog.json")

# ------------------------------------------------------------------ part 2
log "network namespaces $NS_CLI, $NS_LB (veth $VETH_CLI <-> $VETH_LB)"
ip netns add "$NS_CLI"
ip netns add "$NS_LB"
ip link add "$VETH_CLI" netns "$NS_CLI" type veth peer name "$VETH_LB" netns "$NS_LB"
in_cli ip addr add "$CLI_ADDR/30" dev "$VETH_CLI"
in_lb ip addr add "$LB_ADDR/30" dev "$VETH_LB"
unshare --mount --propagation private sleep 3600 &
MNT_PID=$!
for _ in $(seq 50); do
  [[ $(readlink "/proc/$MNT_PID/ns/mnt") != "$(readlink /proc/self/ns/mnt)" ]] && break
  sleep 0.02
done
nsenter --target "$MNT_PID" --mount mount -t bpf bpf /sys/fs/bpf
# The reference programs, for the "XDP_PASS attached" system (the cost of
# having any XDP program on the path, without portmux's work).
in_bpffs bpftool prog loadall "$BUILD/bench/baseline.bpf.o" /sys/fs/bpf/pmxb_base type xdp
in_cli ip link set lo up
in_lb ip link set lo up
in_cli ip link set "$VETH_CLI" up
in_lb ip link set "$VETH_LB" up
# No ICMP "port unreachable" storms or rate limits between the two ends.
in_lb sysctl -qw net.ipv4.icmp_ratelimit=0 >/dev/null 2>&1 || true
for _ in $(seq 50); do in_cli ping -c1 -W1 "$LB_ADDR" >/dev/null 2>&1 && break; sleep 0.1; done

IPVS_NOTE="IPVS: not measured: this kernel has no IPVS (no /proc/net/ip_vs, CONFIG_IP_VS unset) and cannot load modules."
[[ -e /proc/net/ip_vs ]] && IPVS_NOTE="IPVS: present on this kernel but not benchmarked by this script."

# TCP through portmux only when its config accepts TCP frontends.
cat > "$WORK/tcp-check.json" <<EOF
{"frontends": [{"port": $FRONT, "protocol": "tcp", "backends": [$BACKEND_LIST]}]}
EOF
PORTMUX_TCP=0
if TCP_CHECK=$("$PORTMUX" check "$WORK/tcp-check.json" 2>&1); then
  PORTMUX_TCP=1
fi
echo "$TCP_CHECK" > "$WORK/tcp-check.txt"
cat > "$WORK/portmux.json" <<EOF
{"frontends": [
  {"port": $FRONT, "protocol": "udp", "backends": [$BACKEND_LIST]}$( [[ $PORTMUX_TCP -eq 1 ]] && echo ",
  {\"port\": $FRONT, \"protocol\": \"tcp\", \"backends\": [$BACKEND_LIST]}")
]}
EOF

write_nft() {  # $1: hook (prerouting for traffic from the veth, output for local)
  cat > "$WORK/nft.conf" <<EOF
table ip pmxbench {
  chain lb {
    type nat hook $1 priority -100; policy accept;
    udp dport $FRONT dnat to :numgen inc mod 3 map { 0 : ${BACKENDS[0]}, 1 : ${BACKENDS[1]}, 2 : ${BACKENDS[2]} }
    tcp dport $FRONT dnat to :numgen inc mod 3 map { 0 : ${BACKENDS[0]}, 1 : ${BACKENDS[1]}, 2 : ${BACKENDS[2]} }
  }
}
EOF
}

cat > "$WORK/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 2;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log error;
events { worker_connections 8192; }
stream {
  upstream udp_backends {
    server 127.0.0.1:${BACKENDS[0]}; server 127.0.0.1:${BACKENDS[1]}; server 127.0.0.1:${BACKENDS[2]};
  }
  upstream tcp_backends {
    server 127.0.0.1:${BACKENDS[0]}; server 127.0.0.1:${BACKENDS[1]}; server 127.0.0.1:${BACKENDS[2]};
  }
  # Every datagram is its own session (proxy_requests 1), so round robin
  # applies per datagram as it does in portmux; no replies are expected.
  server { listen $FRONT udp reuseport; proxy_pass udp_backends; proxy_requests 1; proxy_responses 0; proxy_timeout 2s; }
  server { listen $FRONT reuseport; proxy_pass tcp_backends; }
}
EOF

have_system() {
  case $1 in
    nft) command -v nft >/dev/null ;;
    nginx) command -v nginx >/dev/null && [[ -e /usr/lib/nginx/modules/ngx_stream_module.so ]] ;;
    *) true ;;
  esac
}

# Sets up system $1 on path $2 (veth or lo); sets PORT, the port clients dial.
setup_system() {
  local system=$1 path=$2 iface mode
  if [[ $path == veth ]]; then iface=$VETH_LB; mode=native; else iface=lo; mode=generic; fi
  PORT=$FRONT
  case $system in
    direct) PORT=${BACKENDS[0]} ;;
    xdp_pass)
      PORT=${BACKENDS[0]}
      in_bpffs bpftool net attach "$([[ $path == veth ]] && echo xdpdrv || echo xdpgeneric)" \
        pinned /sys/fs/bpf/pmxb_base/bench_pass dev "$iface" ;;
    portmux)
      portmux_lb attach "$iface" -c "$WORK/portmux.json" -m "$mode" >> "$WORK/attach.txt" ;;
    nft)
      write_nft "$([[ $path == veth ]] && echo prerouting || echo output)"
      in_lb nft -f "$WORK/nft.conf" ;;
    nginx)
      ip netns exec "$NS_LB" nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/nginx-error.log" \
            > "$WORK/nginx.out" 2>&1 &
      NGINX_PID=$!
      for _ in $(seq 50); do
        in_lb ss -Hlun "sport = :$FRONT" 2>/dev/null | grep -q . && break
        sleep 0.1
      done ;;
  esac
}

teardown_system() {
  local system=$1 path=$2
  case $system in
    xdp_pass)
      in_bpffs bpftool net detach "$([[ $path == veth ]] && echo xdpdrv || echo xdpgeneric)" \
        dev "$([[ $path == veth ]] && echo "$VETH_LB" || echo lo)" ;;
    portmux) portmux_lb detach "$([[ $path == veth ]] && echo "$VETH_LB" || echo lo)" >/dev/null ;;
    nft) in_lb nft delete table ip pmxbench; in_lb conntrack -F >/dev/null 2>&1 || true ;;
    nginx)
      kill "$NGINX_PID" 2>/dev/null || true
      wait "$NGINX_PID" 2>/dev/null || true
      NGINX_PID= ;;
  esac
}

cpu_busy_jiffies() {  # all CPUs: user nice system irq softirq steal
  awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}
HZ=$(getconf CLK_TCK)

udp_trial() {  # path system size rep port
  local path=$1 system=$2 size=$3 rep=$4 port=$5 dst ready=$WORK/ready.$RANDOM
  [[ $path == veth ]] && dst=$LB_ADDR || dst=127.0.0.1
  ip netns exec "$NS_LB" "$LOADGEN" udp-sink --ports "$BACKEND_LIST" --idle-ms 300 --seconds 10 --ready "$ready" \
        --cpu 1 > "$WORK/sink.json" &
  local sink=$!
  for _ in $(seq 100); do [[ -e $ready ]] && break; sleep 0.02; done
  local c0 c1 sender t0 t1
  c0=$(cpu_busy_jiffies)
  t0=$(date +%s.%N)
  if [[ $path == veth ]]; then
    sender=$(in_cli "$LOADGEN" udp-send --dst "$dst" --port "$port" --size "$size" \
             --count "$UDP_COUNT" --seconds "$UDP_SECONDS" --cpu 0)
  else
    sender=$(in_lb "$LOADGEN" udp-send --dst "$dst" --port "$port" --size "$size" \
             --count "$UDP_COUNT" --seconds "$UDP_SECONDS" --cpu 0)
  fi
  wait "$sink" || true
  c1=$(cpu_busy_jiffies)
  t1=$(date +%s.%N)
  jq -c --arg path "$path" --arg system "$system" --argjson size "$size" --argjson rep "$rep" \
        --argjson sender "$sender" --argjson cpu "$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN {printf "%.2f", (b - a) / hz}')" \
        --argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" \
        --argjson cpus "$(nproc)" \
        '{kind: "udp", path: $path, system: $system, size: $size, rep: $rep, sender: $sender,
          sink: ., cpu_s: $cpu, wall_s: $wall, cpus: $cpus}' "$WORK/sink.json" >> "$WORK/live.jsonl"
  tail -1 "$WORK/live.jsonl" | jq -r '"    \(.size) B: sent \(.sender.sent) at \(.sender.send_pps)/s, delivered \(.sink.received) at \(.sink.delivered_pps)/s \(.sink.per_port), cpu \(.cpu_s) s"' >&2
  rm -f "$ready"
}

tcp_trial() {  # system rep port
  local system=$1 rep=$2 port=$3 ready=$WORK/ready.$RANDOM
  ip netns exec "$NS_LB" "$LOADGEN" tcp-serve --ports "$BACKEND_LIST" --seconds 30 --ready "$ready" --cpu 1 \
        > "$WORK/tcpserve.json" &
  local server=$!
  BG_PIDS+=("$server")
  for _ in $(seq 100); do [[ -e $ready ]] && break; sleep 0.02; done
  local c0 c1 conn rr
  c0=$(cpu_busy_jiffies)
  conn=$(in_cli "$LOADGEN" tcp-client --dst "$LB_ADDR" --port "$port" --mode connect \
         --count "$TCP_CONNS" --seconds "$TCP_SECONDS" --cpu 0 || true)
  rr=$(in_cli "$LOADGEN" tcp-client --dst "$LB_ADDR" --port "$port" --mode rr --conns 6 \
       --count "$TCP_RR" --seconds "$TCP_SECONDS" --cpu 0 || true)
  c1=$(cpu_busy_jiffies)
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  BG_PIDS=()
  [[ -n $conn ]] || conn='{"completed": 0, "failures": -1}'
  [[ -n $rr ]] || rr='{"completed": 0, "failures": -1}'
  jq -c --arg system "$system" --argjson rep "$rep" --argjson conn "$conn" --argjson rr "$rr" \
        --argjson cpu "$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN {printf "%.2f", (b - a) / hz}')" \
        '{kind: "tcp", path: "veth", system: $system, rep: $rep, connect: $conn, rr: $rr,
          server: ., cpu_s: $cpu}' "$WORK/tcpserve.json" >> "$WORK/live.jsonl"
  tail -1 "$WORK/live.jsonl" | jq -r '"    connect: \(.connect.per_s)/s p50 \(.connect.p50_us) us; rr: \(.rr.per_s)/s p50 \(.rr.p50_us) p99 \(.rr.p99_us) us; failures \(.connect.failures)/\(.rr.failures)"' >&2
  rm -f "$ready"
}

: > "$WORK/live.jsonl"
SYSTEMS=(direct xdp_pass portmux nft nginx)
for rep in $(seq "$REPS"); do
  for path in veth lo; do
    for system in "${SYSTEMS[@]}"; do
      have_system "$system" || continue
      log "UDP rep $rep/$REPS: $system over $path"
      setup_system "$system" "$path"
      for size in "${SIZES[@]}"; do
        udp_trial "$path" "$system" "$size" "$rep" "$PORT"
      done
      teardown_system "$system" "$path"
    done
  done
  for system in "${SYSTEMS[@]}"; do
    have_system "$system" || continue
    [[ $system == portmux && $PORTMUX_TCP -eq 0 ]] && continue
    log "TCP rep $rep/$REPS: $system over veth"
    setup_system "$system" veth
    tcp_trial "$system" "$rep" "$PORT"
    teardown_system "$system" veth
  done
done

# Live per-packet cost of the XDP program itself, from the kernel's BPF
# run-time statistics, over one more portmux UDP trial on each path.
for path in veth lo; do
  log "portmux run-time statistics over $path"
  setup_system portmux "$path"
  pin_dir=/sys/fs/bpf/portmux/$([[ $path == veth ]] && echo "$VETH_LB" || echo lo)
  prog_id=$(in_bpffs bpftool -j prog show pinned "$pin_dir/xdp_program" | jq '.id')
  if [[ $path == veth ]]; then  # needs hardware counters; the error is reported otherwise
    timeout 10 bpftool prog profile id "$prog_id" duration 2 cycles instructions \
      > "$WORK/profile.txt" 2>&1 &
    PROFILE_PID=$!
  fi
  OLD_BPF_STATS=$(sysctl -n kernel.bpf_stats_enabled)
  sysctl -qw kernel.bpf_stats_enabled=1
  udp_trial "$path" portmux_stats 64 0 "$PORT"
  sysctl -qw kernel.bpf_stats_enabled="$OLD_BPF_STATS"
  OLD_BPF_STATS=
  bpftool -j prog show id "$prog_id" | jq -c --arg path "$path" \
      '{kind: "runtime", path: $path, run_cnt: .run_cnt, run_time_ns: .run_time_ns,
        xlated: .bytes_xlated, jited: .bytes_jited}' >> "$WORK/live.jsonl"
  [[ $path == veth ]] && { wait "$PROFILE_PID" || true; }
  teardown_system portmux "$path"
done

END_TS=$(date +%s)
echo "$IPVS_NOTE" > "$WORK/ipvs.txt"
# Everything the report reads, kept so it can be regenerated:
#   python3 bench/report.py --work $BUILD/bench/results --md ... --png ... (same options)
mkdir -p "$BUILD/bench/results"
cp "$WORK"/*.json "$WORK"/*.jsonl "$WORK"/*.txt "$BUILD/bench/results/" 2>/dev/null || true
log "writing $OUT_MD and $OUT_PNG"
python3 "$ROOT/bench/report.py" --work "$BUILD/bench/results" --md "$OUT_MD" --png "$OUT_PNG" \
        --seconds $(( END_TS - START_TS )) --quick "$QUICK" --reps "$REPS" \
        --udp-count "$UDP_COUNT" --udp-seconds "$UDP_SECONDS" --tcp-conns "$TCP_CONNS" \
        --tcp-rr "$TCP_RR" --tcp-seconds "$TCP_SECONDS" --portmux-tcp "$PORTMUX_TCP"
log "done in $(( END_TS - START_TS )) s (raw results in $BUILD/bench/results)"
