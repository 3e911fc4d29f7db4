#!/usr/bin/env bash
# Installs missing packages, builds, and runs every test (unit, packet and
# the end-to-end ones, which need root) with ctest. Extra arguments go to
# ctest, e.g. `./scripts/test.sh -L e2e` or `-R udp_loopback`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/build.sh

# Loading BPF programs works without bpffs, but portmux pins its maps there.
if [[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) != bpf_fs ]] && ((EUID == 0)); then
    mount -t bpf bpf /sys/fs/bpf
fi

ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure "$@"
