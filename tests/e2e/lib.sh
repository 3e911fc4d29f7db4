# shellcheck shell=bash
# Shared helpers for portmux's end-to-end tests (and scripts/demo.sh).
#
# Source it, then `trap e2e_cleanup EXIT`. Everything a test creates goes
# through these helpers so the trap can undo it: network namespaces
# (make_ns_var), background processes (start_in_ns), XDP attachments
# (register_detach) and one private bpffs instance (see in_ns).
#
# Why a private bpffs: `ip netns exec` unshares the mount namespace and
# mounts a fresh sysfs on /sys, which hides the host's /sys/fs/bpf. Every
# `mount -t bpf` makes a NEW, empty bpffs instance, so mounting bpffs inside
# each `ip netns exec` would lose portmux's pins between two commands
# (status would say "not attached", detach could not find its maps). in_ns
# therefore bind-mounts one instance, created here under $E2E_WORKDIR, onto
# /sys/fs/bpf inside every namespace command: all of a test's portmux
# commands see the same pins, and unmounting it at the end frees them.

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$E2E_LIB_DIR/../.." && pwd)
PORTMUX=${PORTMUX:-$REPO_ROOT/build/loader/portmux}
# The fast client and echo backend of the stream load tests (tests/stream_load).
PORTMUX_STREAM_LOAD=${PORTMUX_STREAM_LOAD:-$REPO_ROOT/build/tests/stream_load/portmux_stream_load}
E2E_NAME=${E2E_NAME:-$(basename "${0%.sh}")}
# Unique per run: names of namespaces and interfaces carry the shell's pid.
# Interface names must stay within 15 characters: keep prefixes short.
E2E_ID=$$
# The whole test must end (and clean up) before ctest's 120 s timeout kills it.
E2E_TIME_LIMIT=${E2E_TIME_LIMIT:-100}

E2E_PASSED=0
E2E_FAILED=0
E2E_NAMESPACES=()
E2E_PIDS=()
E2E_DETACH=()
E2E_WORKDIR=
E2E_BPFFS=
E2E_WATCHDOG=
E2E_FINISHED=

if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
    E2E_RED=$'\e[31m' E2E_GREEN=$'\e[32m' E2E_YELLOW=$'\e[33m' E2E_BOLD=$'\e[1m' E2E_RESET=$'\e[0m'
else
    E2E_RED= E2E_GREEN= E2E_YELLOW= E2E_BOLD= E2E_RESET=
fi

# ---------------------------------------------------------------- reporting

log() { printf '%s[%s]%s %s\n' "$E2E_BOLD" "$E2E_NAME" "$E2E_RESET" "$*"; }
pass() { E2E_PASSED=$((E2E_PASSED + 1)); printf '%sPASS%s %s\n' "$E2E_GREEN" "$E2E_RESET" "$*"; }
fail() { E2E_FAILED=$((E2E_FAILED + 1)); printf '%sFAIL%s %s\n' "$E2E_RED" "$E2E_RESET" "$*"; }
skip() { printf '%sSKIP%s %s\n' "$E2E_YELLOW" "$E2E_RESET" "$*"; }
# A failure the test cannot go on after: report it and exit (the trap cleans up).
die() { fail "$*"; finish; }

# Prints the summary line and exits 0 only when nothing failed.
finish() {
    local total=$((E2E_PASSED + E2E_FAILED))
    E2E_FINISHED=1
    if ((E2E_FAILED == 0 && total > 0)); then
        printf '%s%s: all %d checks passed%s\n' "$E2E_GREEN" "$E2E_NAME" "$total" "$E2E_RESET"
    else
        printf '%s%s: %d of %d checks failed%s\n' "$E2E_RED" "$E2E_NAME" "$E2E_FAILED" "$total" "$E2E_RESET"
    fi
    printf '%d passed, %d failed\n' "$E2E_PASSED" "$E2E_FAILED"
    ((E2E_FAILED == 0 && total > 0)) && exit 0
    exit 1
}

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
    if [[ "$1" == "$2" ]]; then
        pass "$3 ($2)"
    else
        fail "$3: expected '$1', got '$2'"
    fi
}

# assert_ok WHAT CMD...: CMD must exit 0; its output is shown on failure.
assert_ok() {
    local what=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    if ((rc == 0)); then
        pass "$what"
    else
        fail "$what: \`$*\` exited $rc"
        printf '%s\n' "$out" | sed 's/^/    | /'
    fi
    E2E_LAST_OUTPUT=$out
    return "$rc"
}

# assert_fails WHAT CMD...: CMD must exit non-zero (any code, or the one in
# $E2E_EXPECT_RC when set); its output is kept in $E2E_LAST_OUTPUT.
assert_fails() {
    local what=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    E2E_LAST_OUTPUT=$out
    if ((rc == 0)); then
        fail "$what: \`$*\` succeeded but should have failed"
        printf '%s\n' "$out" | sed 's/^/    | /'
        return 1
    fi
    if [[ -n ${E2E_EXPECT_RC:-} && $rc != "$E2E_EXPECT_RC" ]]; then
        fail "$what: \`$*\` exited $rc, expected $E2E_EXPECT_RC"
        printf '%s\n' "$out" | sed 's/^/    | /'
        return 1
    fi
    pass "$what (exit $rc)"
}

# assert_match WHAT REGEX TEXT: TEXT must match the extended regex.
assert_match() {
    if grep -Eq -- "$2" <<<"$3"; then
        pass "$1"
    else
        fail "$1: no match for /$2/ in:"
        printf '%s\n' "$3" | sed 's/^/    | /'
    fi
}

# assert_no_match WHAT REGEX TEXT
assert_no_match() {
    if grep -Eq -- "$2" <<<"$3"; then
        fail "$1: unexpected match for /$2/ in:"
        printf '%s\n' "$3" | sed 's/^/    | /'
    else
        pass "$1"
    fi
}

# --------------------------------------------------------------- environment

require_root() {
    if ((EUID != 0)); then
        printf 'SKIP %s: needs root (network namespaces, XDP)\n' "$E2E_NAME"
        exit 77
    fi
}

require_portmux() {
    [[ -x $PORTMUX ]] || die "portmux binary not found at $PORTMUX (build it, or set PORTMUX)"
}

require_stream_load() {
    [[ -x $PORTMUX_STREAM_LOAD ]] ||
        die "portmux_stream_load not found at $PORTMUX_STREAM_LOAD (build it, or set PORTMUX_STREAM_LOAD)"
}

require_tools() {
    local tool missing=()
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (run scripts/deps.sh)"
}

# Workdir, private bpffs and watchdog. Call once, after `trap e2e_cleanup EXIT`.
e2e_setup() {
    trap 'exit 143' TERM
    trap 'exit 130' INT
    E2E_WORKDIR=$(mktemp -d "/tmp/portmux-$E2E_NAME.XXXXXX")
    mkdir "$E2E_WORKDIR/bpffs"
    mount -t bpf bpf "$E2E_WORKDIR/bpffs" || die "cannot mount a bpffs instance on $E2E_WORKDIR/bpffs"
    E2E_BPFFS=$E2E_WORKDIR/bpffs
    # Ends the test (through the EXIT trap) if it runs past its time limit.
    (
        trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
        sleep "$E2E_TIME_LIMIT" &
        sleeper=$!
        wait "$sleeper"
        printf 'FAIL %s: still running after %ss, stopping it\n' "$E2E_NAME" "$E2E_TIME_LIMIT"
        kill -TERM $$
        # bash runs the TERM trap only once its foreground command returns:
        # end that command too, or ctest's own timeout kills the script
        # before the trap removes its namespaces.
        pkill -TERM -P $$
    ) &
    E2E_WATCHDOG=$!
}

# e2e_start TOOL...: how a test that runs portmux begins: skips without root,
# arms the cleanup trap, makes the workdir (e2e_setup), and dies unless
# every TOOL and the portmux binary are there.
e2e_start() {
    require_root
    trap e2e_cleanup EXIT
    e2e_setup
    require_tools "$@"
    require_portmux
}

# Undoes everything the helpers created, in reverse dependency order.
e2e_cleanup() {
    local rc=$? entry ns iface pid
    trap - TERM INT
    set +e
    if [[ -z $E2E_FINISHED ]]; then
        # Ended early (a signal, the watchdog, or an unexpected exit): say so.
        fail "$E2E_NAME ended early with exit status $rc"
        printf '%d passed, %d failed\n' "$E2E_PASSED" "$E2E_FAILED"
        ((rc != 0)) || rc=1
    fi
    for entry in "${E2E_DETACH[@]}"; do
        ns=${entry%%/*} iface=${entry#*/}
        if [[ -d $E2E_BPFFS/portmux/$iface ]] || in_ns "$ns" ip link show "$iface" 2>/dev/null | grep -q 'prog/xdp'; then
            in_ns "$ns" "$PORTMUX" detach "$iface" >/dev/null 2>&1
        fi
    done
    for pid in "${E2E_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${E2E_PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    for ns in "${E2E_NAMESPACES[@]}"; do
        # Anything still running inside a namespace this test made is ours.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null
    done
    if [[ -n $E2E_BPFFS ]]; then
        umount "$E2E_BPFFS" 2>/dev/null || umount -l "$E2E_BPFFS" 2>/dev/null
    fi
    if [[ -n $E2E_WORKDIR && -d $E2E_WORKDIR ]]; then
        if [[ -n ${E2E_KEEP_WORKDIR:-} ]]; then
            echo "kept $E2E_WORKDIR"
        else
            rm -rf "$E2E_WORKDIR"
        fi
    fi
    if [[ -n $E2E_WATCHDOG ]]; then
        kill "$E2E_WATCHDOG" 2>/dev/null
        wait "$E2E_WATCHDOG" 2>/dev/null
    fi
    exit "$rc"
}

# ---------------------------------------------------------------- namespaces

# make_ns_var VAR PREFIX: creates namespace PREFIX-<pid> with lo up and
# stores its name in VAR (no subshell, so the trap knows about it).
make_ns_var() {
    local var=$1 name="$2-$E2E_ID"
    ip netns add "$name" || die "cannot create network namespace $name"
    E2E_NAMESPACES+=("$name")
    ip -n "$name" link set lo up || die "cannot bring lo up in $name"
    printf -v "$var" '%s' "$name"
}

# in_ns NS CMD...: runs CMD inside NS with the test's bpffs on /sys/fs/bpf.
in_ns() {
    local ns=$1
    shift
    ip netns exec "$ns" sh -c 'mount --bind "$0" /sys/fs/bpf && exec "$@"' "$E2E_BPFFS" "$@"
}

# start_in_ns NS OUTFILE CMD...: CMD in the background inside NS, stdout and
# stderr to OUTFILE, stdin from /dev/null; the trap kills it.
start_in_ns() {
    local ns=$1 out=$2
    shift 2
    ip netns exec "$ns" "$@" >"$out" 2>&1 </dev/null &
    E2E_PIDS+=($!)
}

# start_udp_backend NS PORT OUTFILE: a netcat that hears every client.
start_udp_backend() {
    start_in_ns "$1" "$3" nc -k -u -l "$2"
}

# register_detach NS IFACE: the trap detaches portmux from IFACE if still there.
register_detach() {
    E2E_DETACH+=("$1/$2")
}

# attach_portmux NS IFACE MODE CONFIG: `portmux attach` in NS (the trap
# detaches it), its output logged, and it must name MODE (generic or
# native). Ends the test when the attach fails: nothing after it can run.
attach_portmux() {
    local ns=$1 iface=$2 mode=$3 config=$4
    register_detach "$ns" "$iface"
    assert_ok "portmux attach $iface --mode $mode" \
        in_ns "$ns" "$PORTMUX" attach "$iface" --mode "$mode" --config "$config" || finish
    log "$E2E_LAST_OUTPUT"
    assert_match "attach reports $mode mode" "$mode mode" "$E2E_LAST_OUTPUT"
}

# require_native_xdp NS IFACE: the kernel shows a native XDP program on
# IFACE (prog/xdp, not xdpgeneric), as `ip -d link` reports it.
require_native_xdp() {
    local link
    link=$(ip -n "$1" -d link show "$2")
    assert_match "kernel shows a native XDP program on $2" '(^|[[:space:]])xdp([[:space:]]|$)' "$link"
    assert_no_match "$2 is not attached in generic mode" 'xdpgeneric' "$link"
}

# make_veth NS NAME [PEER] [MTU]: a veth pair NAME <-> PEER (default NAMEp)
# inside NS, both up, at MTU when given. Interface names stay within 15
# characters: keep NAME short (a prefix and $E2E_ID).
make_veth() {
    local ns=$1 name=$2 peer=${3:-$2p} mtu=${4:-}
    local -a size=()
    [[ -n $mtu ]] && size=(mtu "$mtu")
    ip -n "$ns" link add "$name" "${size[@]}" type veth peer name "$peer" "${size[@]}" ||
        die "cannot create veth pair $name/$peer in $ns"
    ip -n "$ns" link set "$name" up && ip -n "$ns" link set "$peer" up ||
        die "cannot bring veth pair $name/$peer up in $ns"
}

# make_veth_link NS_A IF_A ADDR_A NS_B IF_B ADDR_B: a veth pair joining two
# namespaces, IF_A in NS_A with ADDR_A/30 and IF_B in NS_B with ADDR_B/30,
# both up.
make_veth_link() {
    local ns_a=$1 if_a=$2 addr_a=$3 ns_b=$4 if_b=$5 addr_b=$6
    ip link add "$if_a" netns "$ns_a" type veth peer name "$if_b" netns "$ns_b" ||
        die "cannot create veth pair $if_a/$if_b"
    ip -n "$ns_a" addr add "$addr_a/30" dev "$if_a" && ip -n "$ns_b" addr add "$addr_b/30" dev "$if_b" &&
        ip -n "$ns_a" link set "$if_a" up && ip -n "$ns_b" link set "$if_b" up ||
        die "cannot configure veth pair $if_a/$if_b"
}

# tx_checksum_off NS IF: TX checksum offload off on IF, so that what it sends
# carries full checksums the receiver verifies (veth otherwise sends partial
# ones); dies when ethtool cannot, and checks that it is off.
tx_checksum_off() {
    ip netns exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1 ||
        die "cannot turn TX checksum offload off on $2"
    # Checked, not trusted: with offload still on, the checksum checks of
    # the test would prove nothing.
    assert_match "$2 TX checksum offload is off" '^tx-checksumming: off' \
        "$(ip netns exec "$1" ethtool -k "$2")"
}

# ------------------------------------------------------------------- waiting

# retry TRIES CMD...: runs CMD up to TRIES times until it succeeds.
retry() {
    local tries=$1
    shift
    while ((tries-- > 1)); do
        "$@" && return 0
    done
    "$@"
}

# wait_until SECONDS CMD...: polls CMD every 0.1 s until it succeeds; fails
# (returns 1) after SECONDS.
wait_until() {
    local seconds=$1 tries
    shift
    tries=$((seconds * 10))
    while ((tries-- > 0)); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}

udp_port_listening() {
    ip netns exec "$1" ss -Huln "sport = :$2" 2>/dev/null | grep -q .
}

# wait_for_udp_port NS PORT [SECONDS]: until something listens on UDP PORT in NS.
wait_for_udp_port() {
    wait_until "${3:-5}" udp_port_listening "$1" "$2"
}

# line_count FILE...: total lines in the files (0 when none exist yet).
line_count() {
    cat "$@" 2>/dev/null | wc -l
}

lines_at_least() {
    local want=$1
    shift
    (($(line_count "$@") >= want))
}

# wait_for_lines COUNT SECONDS FILE...: until the files hold COUNT lines.
wait_for_lines() {
    local want=$1 seconds=$2
    shift 2
    wait_until "$seconds" lines_at_least "$want" "$@"
}

# --------------------------------------------------------------- counters

# udp_counter NS NAME: a kernel SNMP counter (e.g. UdpInCsumErrors) in NS.
udp_counter() {
    local value
    value=$(ip netns exec "$1" nstat -asz "$2" 2>/dev/null | awk -v n="$2" '$1 == n { print $2 }')
    echo "${value:-0}"
}

# ------------------------------------------------------------------ traffic

# send_datagrams NS ADDR PORT FIRST LAST: one `nc -u` per datagram, payloads
# msg-FIRST..msg-LAST (three digits, newline-terminated), all from CPU 0 so
# the per-CPU round-robin cursor is a single one.
#
# `-q0` with the payload already in stdin (a here-string), NOT `-w0`: with
# -w0 netcat polls with a zero timeout and exits without sending anything
# when the payload is not in its stdin pipe yet, which happens under load
# (seen here: 299 of 300 sent while the machine was busy).
send_datagrams() {
    ip netns exec "$1" taskset -c 0 bash -c '
        for ((i = $3; i <= $4; i++)); do
            nc -u -q0 "$1" "$2" <<<"$(printf "msg-%03d" "$i")"
        done' send "$2" "$3" "$4" "$5"
}

# expected_messages FIRST LAST: the payload lines send_datagrams sends, sorted.
expected_messages() {
    local i
    for ((i = $1; i <= $2; i++)); do printf 'msg-%03d\n' "$i"; done | sort
}

# ------------------------------------------------- TCP and request/response
# (helpers for tcp_loopback, udp_request_response, veth_native_bidirectional
# and udp_tag_routing)

tcp_port_listening() {
    ip netns exec "$1" ss -Htln "sport = :$2" 2>/dev/null | grep -q .
}

# wait_for_tcp_port NS PORT [SECONDS]: until something listens on TCP PORT in NS.
wait_for_tcp_port() {
    wait_until "${3:-5}" tcp_port_listening "$1" "$2"
}

# snmp_counter NS NAME: any nstat counter (TcpInCsumErrors, TcpOutRsts...) in NS.
snmp_counter() {
    udp_counter "$@"
}

# start_tcp_reply_backend NS PORT CONNECTIONS DIR: a TCP backend that serves
# CONNECTIONS connections one after another with `nc -l`, each answered with
# the line "backend-PORT". What connection I sent goes to DIR/tcp-PORT-I.txt,
# followed by a line "exit N" with nc's exit status. Between two connections
# the port is briefly closed: wait_for_tcp_port before each client.
start_tcp_reply_backend() {
    start_in_ns "$1" "$4/tcp-$2.log" bash -c '
        for ((i = 1; i <= $2; i++)); do
            nc -l "$1" <<<"backend-$1" >"$3/tcp-$1-$i.txt" 2>&1
            echo "exit $?" >>"$3/tcp-$1-$i.txt"
        done' backend "$2" "$3" "$4"
}

# start_udp_reply_backend NS PORT REQUESTS DIR: a UDP backend that answers
# REQUESTS requests one after another, each with the datagram "reply-from-PORT"
# (`nc -u -l -W1`: it connects to the first client, sends its stdin, and
# stops after one datagram). Request I goes to DIR/udp-PORT-I.txt, then
# "exit N". Between two requests the port is briefly closed: wait_for_udp_port.
start_udp_reply_backend() {
    start_in_ns "$1" "$4/udp-$2.log" bash -c '
        for ((i = 1; i <= $2; i++)); do
            nc -u -l -W1 "$1" <<<"reply-from-$1" >"$3/udp-$1-$i.txt" 2>&1
            echo "exit $?" >>"$3/udp-$1-$i.txt"
        done' backend "$2" "$3" "$4"
}

# The reply backends above serve their requests one after another; these
# three judge a round of requests through a round-robin frontend to them.
# Request I carries the line "LINE-I"; ANSWER I is the port of the backend
# that answered it; each backend of PORTS serves PER_BACKEND requests, its
# files in DIR (PROTO-PORT-C.txt). WHAT starts every message ("TCP clients").

# reply_backends_ready NS DIR tcp|udp PER_BACKEND PORT...: every backend
# either listens for its next request or has served them all.
reply_backends_ready() {
    local ns=$1 dir=$2 proto=$3 per_backend=$4 port
    shift 4
    for port in "$@"; do
        grep -qs '^exit ' "$dir/$proto-$port-$per_backend.txt" ||
            "${proto}_port_listening" "$ns" "$port" || return 1
    done
}

# require_round_robin_answers WHAT PER_BACKEND "PORTS" ANSWER...: the first N
# answers (N ports) come from N different backends and every later one from
# the backend N requests before, so each backend answered PER_BACKEND.
require_round_robin_answers() {
    local what=$1 per_backend=$2 i port
    local -a ports
    read -ra ports <<<"$3"
    shift 3
    local -a answers=("$@")
    local n=${#ports[@]}
    assert_eq "$n" "$(printf '%s\n' "${answers[@]:0:n}" | sort -u | wc -l)" \
        "$what: the first $n reached $n different backends"
    for ((i = n; i < ${#answers[@]}; i++)); do
        assert_eq "${answers[i - n]}" "${answers[i]}" \
            "$what: number $((i + 1)) reached the same backend as number $((i - n + 1))"
    done
    for port in "${ports[@]}"; do
        assert_eq "$per_backend" "$(printf '%s\n' "${answers[@]}" | grep -cx "$port")" \
            "$what: answered by backend $port"
    done
}

# require_backends_heard WHAT DIR tcp|udp LINE PER_BACKEND "PORTS" ANSWER...:
# each backend heard exactly the lines of the requests it answered, in order,
# and each of its nc runs exited 0.
require_backends_heard() {
    local what=$1 dir=$2 proto=$3 line=$4 per_backend=$5 i c port expected heard
    local -a ports
    read -ra ports <<<"$6"
    shift 6
    local -a answers=("$@")
    for port in "${ports[@]}"; do
        wait_until 5 grep -q '^exit ' "$dir/$proto-$port-$per_backend.txt" ||
            fail "$what: backend $port's last nc never exited"
        expected=
        for ((i = 1; i <= ${#answers[@]}; i++)); do
            [[ ${answers[i - 1]} == "$port" ]] && expected+="$line-$i | exit 0 | "
        done
        heard=$(for ((c = 1; c <= per_backend; c++)); do cat "$dir/$proto-$port-$c.txt" 2>/dev/null; done |
            sed 's/$/ | /' | tr -d '\n')
        assert_eq "$expected" "$heard" "$what: backend $port heard exactly the lines it answered, each nc exiting 0"
    done
}

# all_ports_listening NS tcp|udp PORT...: every PORT has a listener in NS.
all_ports_listening() {
    local ns=$1 proto=$2 port
    shift 2
    for port in "$@"; do
        "${proto}_port_listening" "$ns" "$port" || return 1
    done
}

# stats_flat JSON: `portmux stats --json` as lines "IFACE PORT FIELD VALUE",
# FIELD one of received, forwarded, dropped, drops.REASON,
# backend.PORT.packets, backend.PORT.bytes. One python3 run per document:
# a pyenv shim can take seconds to start on a busy machine (see E2E_PYTHON).
stats_flat() {
    "${E2E_PYTHON:-python3}" -c '
import json, sys
for i in json.load(sys.stdin)["interfaces"]:
    for f in i["frontends"]:
        pre = "%s %d " % (i["interface"], f["port"])
        for key in ("received", "forwarded", "dropped"):
            print(pre + key, f[key])
        for reason, count in f["drops"].items():
            print(pre + "drops." + reason, count)
        for b in f["backends"]:
            print(pre + "backend.%d.packets" % b["port"], b["packets"])
            print(pre + "backend.%d.bytes" % b["port"], b["bytes"])
' <<<"$1" 2>/dev/null
}

# stats_value STATS IFACE FRONTEND_PORT FIELD: one number out of STATS, the
# output of `portmux stats --json` or of stats_flat (faster when asking for
# many values). Prints "missing" when there is no such value.
stats_value() {
    local flat=$1
    [[ $flat == [{[]* ]] && flat=$(stats_flat "$flat")
    awk -v i="$2" -v p="$3" -v f="$4" '
        $1 == i && $2 == p && $3 == f { print $4; found = 1; exit }
        END { if (!found) print "missing" }' <<<"$flat"
}

# ------------------------------------------- python3 sinks, senders, known bugs
# (helpers for reload_under_load, weights_drain, prometheus_format, faults
# and soak_short)

# The python3 these helpers run: the system one when there is one (a pyenv
# shim first in PATH costs about 2 s per start, a lot for a test that
# starts it dozens of times). E2E_PYTHON overrides.
E2E_PYTHON=${E2E_PYTHON:-$(if [[ -x /usr/bin/python3 ]]; then echo /usr/bin/python3; else command -v python3; fi)}

# xfail WHAT: a check that fails because of a known, reported portmux bug.
# Printed, not counted as a failure; set E2E_STRICT=1 to count it.
xfail() {
    if [[ -n ${E2E_STRICT:-} ]]; then
        fail "$* (known bug)"
    else
        printf '%sXFAIL%s %s\n' "$E2E_YELLOW" "$E2E_RESET" "$*"
    fi
}

# start_udp_sink NS OUTFILE PORT...: one python3 process listening on every
# UDP PORT (all addresses); each datagram becomes the line "PORT PAYLOAD" in
# OUTFILE, written as it arrives. Receive buffers are forced to 16 MiB so a
# burst of thousands of datagrams is not dropped by a slow reader.
start_udp_sink() {
    local ns=$1 out=$2
    shift 2
    start_in_ns "$ns" "$out.log" "$E2E_PYTHON" -u -c '
import selectors, signal, socket, sys
out = open(sys.argv[1], "a", buffering=1)
sel = selectors.DefaultSelector()
for port in sys.argv[2:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (root)
    s.bind(("0.0.0.0", int(port)))
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, int(port))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    for key, _ in sel.select():
        while True:
            try:
                data = key.fileobj.recv(65535)
            except BlockingIOError:
                break
            out.write("%d %s\n" % (key.data, data.decode(errors="replace").strip()))
' "$out" "$@"
}

# send_udp_seq NS ADDR PORT FIRST LAST [PER_SECOND [STOP_FILE]]: from CPU 0,
# one socket sends the datagrams "seq-FIRST".."seq-LAST" in order, paced at
# PER_SECOND when given (0 or absent: as fast as possible), stopping early
# once STOP_FILE exists (checked between datagrams). Prints how many it sent.
send_udp_seq() {
    ip netns exec "$1" taskset -c 0 "$E2E_PYTHON" -c '
import os, socket, sys, time
addr, port, first, last, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
stop_file = sys.argv[6]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic()
sent = 0
for i in range(first, last + 1):
    if stop_file and os.path.exists(stop_file):
        break
    if rate > 0:
        delay = start + sent / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    s.sendto(b"seq-%d" % i, (addr, port))
    sent += 1
print(sent)
' "$2" "$3" "$4" "$5" "${6:-0}" "${7:-}"
}

# start_tcp_sink NS OUTFILE PORT...: a threaded python3 TCP server on every
# PORT. Each line a client sends is logged as "PORT CONN LINE" (CONN counts
# the connections of that port from 1) and answered with "backend-PORT LINE".
start_tcp_sink() {
    local ns=$1 out=$2
    shift 2
    start_in_ns "$ns" "$out.log" "$E2E_PYTHON" -u -c '
import signal, socketserver, sys, threading
out = open(sys.argv[1], "a", buffering=1)
lock = threading.Lock()
counts = {}
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        port = self.server.server_address[1]
        with lock:
            counts[port] = counts.get(port, 0) + 1
            conn = counts[port]
        for raw in self.rfile:
            line = raw.decode(errors="replace").strip()
            with lock:
                out.write("%d %d %s\n" % (port, conn, line))
            self.wfile.write(b"backend-%d %s\n" % (port, line.encode()))
            self.wfile.flush()
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
servers = [Server(("0.0.0.0", int(p)), Handler) for p in sys.argv[2:]]
for server in servers:
    threading.Thread(target=server.serve_forever, daemon=True).start()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
threading.Event().wait()
' "$out" "$@"
}

# tcp_exchange NS ADDR PORT LINE: from CPU 0, one connection that sends LINE,
# prints the one-line answer and closes. Exit status non-zero on any error.
tcp_exchange() {
    ip netns exec "$1" taskset -c 0 timeout 10 "$E2E_PYTHON" -c '
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
    s.sendall(sys.argv[3].encode() + b"\n")
    print(s.makefile().readline().strip())
' "$2" "$3" "$4"
}

# ------------------------------------------------------------- portmux run
# (helpers for the run_* tests)

# start_portmux_run NS LOGFILE ARGS...: `portmux run ARGS` in the background
# inside NS with the test's bpffs, stdout and stderr to LOGFILE. Its pid
# (portmux's own: ip netns exec and sh exec it) is in RUN_PID; the trap
# kills it. Not through in_ns: a backgrounded function would be a subshell,
# and signals sent to RUN_PID would hit that shell instead of portmux.
start_portmux_run() {
    local ns=$1 out=$2
    shift 2
    ip netns exec "$ns" sh -c 'mount --bind "$0" /sys/fs/bpf && exec "$@"' "$E2E_BPFFS" \
        "$PORTMUX" run "$@" >"$out" 2>&1 </dev/null &
    RUN_PID=$!
    E2E_PIDS+=("$RUN_PID")
}

# log_count FILE REGEX: how many lines of FILE match REGEX.
log_count() {
    grep -Ec -- "$2" "$1" 2>/dev/null || true
}

log_count_at_least() {
    (($(log_count "$1" "$2") >= $3))
}

# wait_for_log SECONDS FILE REGEX [COUNT]: until FILE has COUNT (default 1)
# lines matching REGEX.
wait_for_log() {
    wait_until "$1" log_count_at_least "$2" "$3" "${4:-1}"
}

# process_gone PID: true once PID has exited (reaped or not).
process_gone() {
    ! kill -0 "$1" 2>/dev/null || [[ $(ps -o stat= -p "$1" 2>/dev/null) == Z* ]]
}

# start_notify_listener NS NAME OUTFILE: a python3 datagram socket on the
# abstract AF_UNIX address @NAME (what systemd's NOTIFY_SOCKET names); each
# message is appended to OUTFILE, its lines joined by '|'.
start_notify_listener() {
    start_in_ns "$1" "$3.log" "$E2E_PYTHON" -u -c '
import signal, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + sys.argv[1])
out = open(sys.argv[2], "a", buffering=1)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    out.write(s.recv(4096).decode(errors="replace").replace("\n", "|") + "\n")
' "$2" "$3"
}

# ports_of SINKFILE FROM: the sorted, unique backend ports of the sink's lines
# whose payload is seq-N with N >= FROM, space-separated.
ports_of() {
    awk -v from="$2" '{ n = substr($2, 5) + 0; if (n >= from) print $1 }' "$1" | sort -u | tr '\n' ' '
}

# ------------------------------------------------- stream router (stream_*.sh)

# start_stream_router NS CONFIG OUTFILE: `portmux serve-streams` (the stream
# router alone, no XDP) in the background inside NS, with the test's bpffs
# on /sys/fs/bpf where it pins its counters. E2E_STREAM_ROUTER_PID is the
# portmux process itself (ip netns exec and sh exec into it), for /proc.
start_stream_router() {
    local ns=$1 config=$2 out=$3
    ip netns exec "$ns" sh -c 'mount --bind "$0" /sys/fs/bpf && exec "$@"' "$E2E_BPFFS" \
        "$PORTMUX" serve-streams --config "$config" >"$out" 2>&1 </dev/null &
    E2E_PIDS+=($!)
    E2E_STREAM_ROUTER_PID=$!
}

# wait_for_stream_router OUTFILE [SECONDS]: until the router says it serves.
wait_for_stream_router() {
    wait_until "${2:-5}" grep -qs '^serving stream frontends' "$1"
}

# serve_streams NS CONFIG OUTFILE: start_stream_router, then dies unless it
# serves within 5 s.
serve_streams() {
    start_stream_router "$@"
    wait_for_stream_router "$3" || die "the stream router did not start: $(cat "$3")"
}

# The mplex case as a stream frontend: port 9000, "MPLX" at offset 0, a
# 3-byte tag at offset 20 (aaa -> 5001, bbb -> 5002, ccc -> 5003), at least
# 24 bytes. MPLX_HEADERS are the 24 first bytes of each tag's requests.
MPLX_FRONTEND='{"port": 9000, "protocol": "tcp", "backends": [],
  "validate": {"min_length": 24, "match": [{"offset": 0, "value": "MPLX"}]},
  "route": {"offset": 20, "length": 3, "tags": [
    {"tag": "aaa", "backend": 5001}, {"tag": "bbb", "backend": 5002}, {"tag": "ccc", "backend": 5003}]}}'
MPLX_HEADERS=(MPLX0123456789abcdefaaa! MPLX0123456789abcdefbbb! MPLX0123456789abcdefccc!)

# start_two_part_client NS PORT FIRST SECOND WANT SECONDS NAME: a
# stream_peer.py client in the background inside NS that sends FIRST to
# 127.0.0.1:PORT, creates $E2E_WORKDIR/NAME.first-reply at the first reply,
# sends SECOND once $E2E_WORKDIR/NAME.go exists, half-closes once WANT bytes
# came back and reads to the end; gives up after SECONDS. Its report goes to
# $E2E_WORKDIR/NAME.json, its pid to TWO_PART_CLIENT_PID (the trap kills it).
# For a connection that must outlive a reload or a drain.
start_two_part_client() {
    local ns=$1 port=$2 first=$3 second=$4 want=$5 seconds=$6 base=$E2E_WORKDIR/$7
    ip netns exec "$ns" timeout $((seconds + 30)) "$E2E_PYTHON" "$E2E_LIB_DIR/stream_peer.py" \
        --timeout "$seconds" send 127.0.0.1 "$port" "$first" --first-reply-file "$base.first-reply" \
        --second "$second" --second-when "$base.go" --fin-after "$want" >"$base.json" 2>&1 &
    TWO_PART_CLIENT_PID=$!
    E2E_PIDS+=("$TWO_PART_CLIENT_PID")
}

# mplex_request TAG [MAGIC]: a mplex request, its 24-byte header then a body.
mplex_request() {
    printf '%s0123456789abcdef%s!body-%s' "${2:-MPLX}" "$1" "$1"
}

# stream_stats NS: the stream part of `portmux stats --json` as lines
# "FRONTEND FIELD VALUE", FIELD one of accepted, spliced, fallback, unspliced,
# refused.REASON, backend.PORT.{connections,refused,bytes_to_backend,bytes_to_client,
# copied_to_backend,copied_to_client,overlaps_trimmed}.
stream_stats() {
    in_ns "$1" "$PORTMUX" stats --json 2>/dev/null | "$E2E_PYTHON" -c '
import json, sys
for f in json.load(sys.stdin).get("streams", []):
    p = f["port"]
    for key in ("accepted", "spliced", "fallback", "unspliced"):
        print(p, key, f[key])
    for reason, count in f["refused"].items():
        print(p, "refused." + reason, count)
    for b in f["backends"]:
        for key in ("connections", "refused", "bytes_to_backend", "bytes_to_client",
                    "copied_to_backend", "copied_to_client", "overlaps_trimmed"):
            print(p, "backend.%d.%s" % (b["port"], key), b[key])
'
}

# stream_stat STATS FRONTEND FIELD...: values of stream_stats output, space
# separated in the order asked ("missing" for a field it lacks).
stream_stat() {
    local stats=$1 port=$2 field values=()
    shift 2
    for field; do
        values+=("$(awk -v p="$port" -v f="$field" '$1 == p && $2 == f { print $3; found = 1; exit }
            END { if (!found) print "missing" }' <<<"$stats")")
    done
    echo "${values[*]}"
}

# json_field JSON KEY: one top-level value of a JSON object line.
json_field() {
    "$E2E_PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2], "missing"))' "$1" "$2"
}

# proc_io_rchar PID: bytes the process has read (read(2), recv(2) and kin).
proc_io_rchar() {
    awk '$1 == "rchar:" { print $2 }' "/proc/$1/io"
}
