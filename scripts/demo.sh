#!/usr/bin/env bash
# portmux demo: 30 UDP datagrams to one port, spread round robin over three
# netcat backends, inside a throwaway network namespace. Needs root.
#   PORTMUX=/path/to/portmux  use that binary instead of building build/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$PWD

CONFIG=examples/udp-roundrobin.json
FRONTEND=9875
BACKENDS=(9876 9877 9878)
COUNT=30
NS=pmdemo-$$

if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
    BOLD=$'\e[1m' DIM=$'\e[2m' GREEN=$'\e[32m' RED=$'\e[31m' CYAN=$'\e[36m' RESET=$'\e[0m'
else
    BOLD='' DIM='' GREEN='' RED='' CYAN='' RESET=''
fi
step() { printf '\n%s==>%s %s%s%s\n' "$CYAN" "$RESET" "$BOLD" "$*" "$RESET"; }
show() { sed "s/^/    /"; }
die() { printf '%sdemo failed:%s %s\n' "$RED" "$RESET" "$*" >&2; exit 1; }

((EUID == 0)) || die "run it as root (it creates a network namespace and attaches XDP)"

if [[ -z ${PORTMUX:-} ]]; then
    step "building portmux (scripts/build.sh)"
    ./scripts/build.sh | tail -1 | show
    PORTMUX=$REPO_ROOT/build/loader/portmux
fi
[[ -x $PORTMUX ]] || die "no portmux binary at $PORTMUX"

WORKDIR=$(mktemp -d /tmp/portmux-demo.XXXXXX)
BPFFS=$WORKDIR/bpffs
PIDS=()

cleanup() {
    local rc=$? pid
    set +e
    step "cleaning up"
    if [[ -d $BPFFS/portmux/lo ]]; then
        in_ns "$PORTMUX" detach lo >/dev/null 2>&1
    fi
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
    mountpoint -q "$BPFFS" && umount "$BPFFS"
    rm -rf "$WORKDIR"
    echo "    namespace $NS deleted, backends stopped"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# `ip netns exec` gives every command a fresh /sys, hiding /sys/fs/bpf, and
# each `mount -t bpf` would be a new, empty bpffs. So the demo mounts one
# bpffs of its own and binds it onto /sys/fs/bpf for every portmux command:
# attach, status and detach all see the same pinned maps.
mkdir "$BPFFS"
mount -t bpf bpf "$BPFFS"
in_ns() { ip netns exec "$NS" sh -c 'mount --bind "$0" /sys/fs/bpf && exec "$@"' "$BPFFS" "$@"; }

step "creating network namespace $NS and bringing lo up"
ip netns add "$NS"
ip -n "$NS" link set lo up

step "starting UDP backends on ${BACKENDS[*]} (nc -k -u -l)"
for port in "${BACKENDS[@]}"; do
    ip netns exec "$NS" nc -k -u -l "$port" >"$WORKDIR/backend-$port.txt" 2>&1 </dev/null &
    PIDS+=($!)
done
for port in "${BACKENDS[@]}"; do
    for ((try = 0; try < 50; try++)); do
        ip netns exec "$NS" ss -Huln "sport = :$port" | grep -q . && break
        sleep 0.1
    done
    ((try < 50)) || die "backend on UDP port $port did not start"
done
ip netns exec "$NS" ss -uln | show

step "portmux attach lo --mode generic --config $CONFIG"
in_ns "$PORTMUX" attach lo --mode generic --config "$CONFIG" | show

step "sending $COUNT datagrams (msg-01..msg-$COUNT) to 127.0.0.1:$FRONTEND from CPU 0"
# One CPU, so portmux's per-CPU round-robin cursor gives an exact split.
# nc -q0 with the payload in a here-string; nc -w0 can quit before sending.
ip netns exec "$NS" taskset -c 0 bash -c '
    for i in $(seq -w 1 "$1"); do
        nc -u -q0 127.0.0.1 "$2" <<<"msg-$i"
    done' send "$COUNT" "$FRONTEND"

files=()
for port in "${BACKENDS[@]}"; do files+=("$WORKDIR/backend-$port.txt"); done
for ((try = 0; try < 100; try++)); do
    (($(cat "${files[@]}" | wc -l) >= COUNT)) && break
    sleep 0.1
done
received=$(cat "${files[@]}" | wc -l)
echo "    $received of $COUNT arrived"

step "who got what"
even=1
for port in "${BACKENDS[@]}"; do
    got=$(wc -l <"$WORKDIR/backend-$port.txt")
    printf '    backend %s got %2d: %s%s%s\n' "$port" "$got" "$DIM" \
        "$(tr '\n' ' ' <"$WORKDIR/backend-$port.txt")" "$RESET"
    ((got == COUNT / ${#BACKENDS[@]})) || even=0
done

step "portmux status"
in_ns "$PORTMUX" status | show

step "portmux detach lo"
in_ns "$PORTMUX" detach lo | show

if ((received == COUNT && even)); then
    printf '\n%sOK%s: all %d datagrams arrived, split evenly %d/%d/%d over the three backends\n' \
        "$GREEN" "$RESET" "$COUNT" $((COUNT / 3)) $((COUNT / 3)) $((COUNT / 3))
else
    die "expected $COUNT datagrams split evenly, got $received (see above)"
fi
