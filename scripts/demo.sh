#!/usr/bin/env bash
# portmux demo, inside a throwaway network namespace (needs root): 30 UDP
# datagrams to one port, spread round robin over three netcat backends, then
# three TCP conversations through another port, each answered by the next of
# three netcat backends, the answer coming back from the frontend port.
#   PORTMUX=/path/to/portmux  use that binary instead of building build/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT=$PWD

CONFIG=examples/demo.json   # 9875/udp -> 9876-9878 and 8080/tcp -> 8081-8083
FRONTEND=9875
BACKENDS=(9876 9877 9878)
COUNT=30
TCP_FRONTEND=8080
TCP_BACKENDS=(8081 8082 8083)
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

step "starting TCP backends on ${TCP_BACKENDS[*]} (nc -l, each answers one connection)"
for port in "${TCP_BACKENDS[@]}"; do
    ip netns exec "$NS" nc -l "$port" <<<"backend-$port says hello" >"$WORKDIR/tcp-$port.txt" 2>&1 &
    PIDS+=($!)
done
for port in "${TCP_BACKENDS[@]}"; do
    for ((try = 0; try < 50; try++)); do
        ip netns exec "$NS" ss -Htln "sport = :$port" | grep -q . && break
        sleep 0.1
    done
    ((try < 50)) || die "backend on TCP port $port did not start"
done

step "three TCP conversations with 127.0.0.1:$TCP_FRONTEND (nc -N: send a line, read the answer, close)"
# A SYN takes the next backend; every later segment of the connection follows
# it, and the answer comes back from port $TCP_FRONTEND.
tcp_ok=1
answered=()
for i in 1 2 3; do
    answer=$(ip netns exec "$NS" taskset -c 0 timeout 10 nc -N 127.0.0.1 "$TCP_FRONTEND" <<<"hello from client $i") ||
        tcp_ok=0
    printf '    client %d sent "hello from client %d", got: %s\n' "$i" "$i" "${answer:-(nothing)}"
    [[ $answer =~ ^backend-(808[123])\ says\ hello$ ]] || tcp_ok=0
    answered+=("${BASH_REMATCH[1]:-none}")
done
# Round robin: three connections, three different backends.
(($(printf '%s\n' "${answered[@]}" | sort -u | wc -l) == 3)) || tcp_ok=0
for port in "${TCP_BACKENDS[@]}"; do
    printf '    backend %s heard: %s%s%s\n' "$port" "$DIM" "$(head -1 "$WORKDIR/tcp-$port.txt")" "$RESET"
done

step "portmux status"
in_ns "$PORTMUX" status | show

step "portmux stats"
in_ns "$PORTMUX" stats | show

step "portmux detach lo"
in_ns "$PORTMUX" detach lo | show

((received == COUNT && even)) ||
    die "expected $COUNT datagrams split evenly, got $received (see above)"
((tcp_ok)) || die "expected the three TCP clients to be answered by the three backends in turn (see above)"
printf '\n%sOK%s: all %d datagrams arrived, split evenly %d/%d/%d over the three backends;\n' \
    "$GREEN" "$RESET" "$COUNT" $((COUNT / 3)) $((COUNT / 3)) $((COUNT / 3))
printf '    the three TCP clients were answered by %s, %s and %s in turn\n' "${answered[@]}"
