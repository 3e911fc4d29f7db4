#!/usr/bin/env bash
# Installs the Debian packages portmux needs to build and test. Idempotent:
# checks each package with dpkg-query and prints nothing when all are there.
set -euo pipefail

PACKAGES=(
    # toolchain and build
    build-essential cmake ninja-build pkg-config
    # BPF: compiler, skeleton generator, libraries, kernel UAPI headers
    clang llvm bpftool libbpf-dev libxdp-dev xdp-tools linux-libc-dev
    # C++ libraries
    libfmt-dev catch2 nlohmann-json3-dev libcli11-dev
    # end-to-end tests and the demo
    iproute2 netcat-openbsd ethtool util-linux procps python3 time strace
)

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
apt-get update -qq </dev/null
apt-get install -y -qq -o Dpkg::Use-Pty=0 "${missing[@]}" </dev/null >/dev/null
echo "deps.sh: done"
