// Ownership of the embedded BPF object (the bpftool-generated skeleton).
#pragma once

#include <memory>

#include "maps.hpp"
#include "portmux.skel.h"

namespace portmux {

struct SkeletonDestroyer {
    void operator()(portmux_bpf* skeleton) const noexcept { portmux_bpf__destroy(skeleton); }
};
using SkeletonPtr = std::unique_ptr<portmux_bpf, SkeletonDestroyer>;

// Opens the embedded object without loading it (libxdp loads it as it
// attaches). Throws std::system_error.
SkeletonPtr open_skeleton();

// The maps write_config() programs, from a loaded skeleton.
DataPathMaps data_path_maps(const portmux_bpf& skeleton);

// Opens and loads it, for running the program without an interface
// (bpf_prog_test_run). Throws std::system_error.
SkeletonPtr open_and_load_skeleton();

}  // namespace portmux
