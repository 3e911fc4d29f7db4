#!/usr/bin/env bash
# Installs the Debian packages portmux needs to build and test. Idempotent:
# checks each package with dpkg-query and prints nothing when all are there.
#   deps.sh                    build, tests (unit, packet, e2e, package), demo
#   deps.sh --bench            also what bench/run.sh compares portmux against
#   deps.sh --list [--bench]   print the package names, install nothing
# Every command tests/, scripts/ and bench/ call must come from a package
# listed here (or from the base system): tests/deps_check.py checks it.
set -euo pipefail

PACKAGES=(
    # toolchain and build
    build-essential cmake ninja-build pkg-config git
    # BPF: compiler, skeleton generator, libraries, kernel UAPI headers
    clang llvm bpftool libbpf-dev libxdp-dev xdp-tools linux-libc-dev
    # C++ libraries
    libfmt-dev catch2 nlohmann-json3-dev libcli11-dev
    # portmux run: the /metrics HTTP server
    libmicrohttpd-dev
    # end-to-end tests and the demo
    iproute2 iputils-ping netcat-openbsd ethtool util-linux procps python3 time strace
    # e2e: spoofed SYN flood (tcp_syn_flood), iperf3 through a frontend
    hping3 iperf3
    # package checks: lintian on the .deb, systemd-analyze verify on the unit
    lintian systemd file man-db
    # portmux run tests: scraping /metrics, parsing the Kubernetes manifests
    curl python3-yaml
    # bench_smoke (bench/run.sh --smoke) reads its trials' JSON with jq
    jq
)
BENCH_PACKAGES=(
    nftables conntrack nginx-light libnginx-mod-stream
)

list=0 bench=0
for arg; do
    case $arg in
        --list) list=1 ;;
        --bench) bench=1 ;;
        *) echo "usage: $0 [--list] [--bench]" >&2; exit 2 ;;
    esac
done
if ((list)); then
    if ((bench)); then printf '%s\n' "${BENCH_PACKAGES[@]}"; else printf '%s\n' "${PACKAGES[@]}"; fi
    exit 0
fi
((bench)) && PACKAGES+=("${BENCH_PACKAGES[@]}")

missing=()
for package in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$package")
done
((${#missing[@]} == 0)) && exit 0

if ((EUID != 0)); then
    echo "deps.sh: missing packages: ${missing[*]}" >&2
    echo "deps.sh: run as root, or: apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Installing a service (nginx, for the benchmarks) must not start it here:
# a policy-rc.d that says no, removed afterwards if it was ours.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq </dev/null
apt-get install -y -qq -o Dpkg::Use-Pty=0 "${missing[@]}" </dev/null >/dev/null
echo "deps.sh: done"
