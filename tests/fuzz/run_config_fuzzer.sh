#!/bin/sh
# Builds the libFuzzer target on the config parser with clang++ and runs it:
# first every file of tests/fuzz/config_corpus once (a regular run), then
# fuzzing for PORTMUX_CONFIG_FUZZ_SECONDS (default 60) from that corpus.
#
#   run_config_fuzzer.sh SOURCE_DIR WORK_DIR [CLANGXX]
#
# WORK_DIR (in the build tree) receives the binary, the growing corpus and any
# crash-*/leak-*/timeout-*/oom-* artifact. The binary is rebuilt only when a
# source is newer. Without PORTMUX_CONFIG_FUZZ_SECONDS, fuzzing is shortened
# when the build was slow so the whole test stays within ~160 s (ctest
# TIMEOUT 180). Exit 0: nothing found; 1: a finding or a build failure; 77:
# clang++ has no libFuzzer runtime (ctest reports the test as skipped).
set -eu

source_dir=$1
work_dir=$2
clangxx=${3:-clang++}
corpus=$source_dir/tests/fuzz/config_corpus
started=$(date +%s)

mkdir -p "$work_dir/corpus" "$work_dir/artifacts"
binary=$work_dir/config_fuzzer
sources="$source_dir/tests/fuzz/config_fuzzer.cpp $source_dir/loader/config_json.cpp $source_dir/loader/config_rules.cpp $source_dir/loader/stream_frontends.cpp"
headers="$source_dir/loader/config.hpp $source_dir/loader/config_json.hpp $source_dir/common/portmux_shared.h"

# libFuzzer present? (Debian: libclang-rt-NN-dev)
probe=$work_dir/probe.cpp
printf '%s\n' '#include <cstdint>' '#include <cstddef>' \
    'extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }' > "$probe"
if ! "$clangxx" -fsanitize=fuzzer "$probe" -o "$work_dir/probe" 2>/dev/null; then
    echo "run_config_fuzzer: $clangxx cannot link -fsanitize=fuzzer (install libclang-rt-dev); skipping"
    exit 77
fi

stale=no
[ -x "$binary" ] || stale=yes
for file in $sources $headers "$0"; do
    [ "$file" -nt "$binary" ] && stale=yes
done
if [ $stale = yes ]; then
    echo "run_config_fuzzer: building $binary with $clangxx"
    cflags="-std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
            -fno-sanitize-recover=all -I$source_dir/common -I$source_dir/loader
            $(pkg-config --cflags fmt 2>/dev/null || true)"
    # The translation units in parallel: nlohmann and fmt are slow to
    # compile under the sanitizers.
    # shellcheck disable=SC2086
    "$clangxx" $cflags -c "$source_dir/tests/fuzz/config_fuzzer.cpp" -o "$work_dir/config_fuzzer.o" &
    target=$!
    # shellcheck disable=SC2086
    "$clangxx" $cflags -c "$source_dir/loader/config_json.cpp" -o "$work_dir/config_json.o" &
    json=$!
    # shellcheck disable=SC2086
    "$clangxx" $cflags -c "$source_dir/loader/config_rules.cpp" -o "$work_dir/config_rules.o"
    # config_rules.cpp asks stream_frontend() which TCP frontends are the stream router's.
    # shellcheck disable=SC2086
    "$clangxx" $cflags -c "$source_dir/loader/stream_frontends.cpp" -o "$work_dir/stream_frontends.o"
    wait $target
    wait $json
    # shellcheck disable=SC2086
    "$clangxx" -fsanitize=fuzzer,address,undefined "$work_dir/config_fuzzer.o" \
        "$work_dir/config_json.o" "$work_dir/config_rules.o" "$work_dir/stream_frontends.o" \
        $(pkg-config --libs fmt 2>/dev/null || echo -lfmt) -o "$binary.new"
    mv "$binary.new" "$binary"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "run_config_fuzzer: replaying the $(ls "$corpus" | wc -l) files of $corpus"
"$binary" -artifact_prefix="$work_dir/artifacts/" "$corpus"/*

if [ -n "${PORTMUX_CONFIG_FUZZ_SECONDS:-}" ]; then
    seconds=$PORTMUX_CONFIG_FUZZ_SECONDS
else
    seconds=60
    left=$((160 - ($(date +%s) - started)))
    if [ "$left" -lt "$seconds" ]; then
        seconds=$((left > 10 ? left : 10))
        echo "run_config_fuzzer: the build took long; fuzzing only ${seconds} s to stay within the ctest timeout"
    fi
fi
echo "run_config_fuzzer: fuzzing for ${seconds} s (artifacts: $work_dir/artifacts)"
"$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 -dict="$source_dir/tests/fuzz/config.dict" \
    -artifact_prefix="$work_dir/artifacts/" "$work_dir/corpus" "$corpus"
