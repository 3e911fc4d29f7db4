#!/usr/bin/env bash
# Installs missing packages, configures and builds portmux into build/
# (RelWithDebInfo unless BUILD_TYPE says otherwise), prints the binary.
#   BUILD_DIR=...  another build directory (default: build)
#   BUILD_TYPE=... CMake build type for a new build directory
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/deps.sh

BUILD_DIR=${BUILD_DIR:-build}
# Installed (and packaged) under /usr with the config in /etc/portmux, where
# the systemd unit looks; `cpack --config $BUILD_DIR/CPackConfig.cmake` makes the .deb.
configure=(cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"
           -DCMAKE_INSTALL_PREFIX=/usr)
# A build directory keeps the generator it was made with; a new one gets Ninja.
[[ -f $BUILD_DIR/CMakeCache.txt ]] || configure+=(-G Ninja)
"${configure[@]}" >/dev/null
cmake --build "$BUILD_DIR" --parallel

binary=$(realpath "$BUILD_DIR/loader/portmux")
[[ -x $binary ]] || { echo "build.sh: $binary was not built" >&2; exit 1; }
echo "portmux: $binary"
