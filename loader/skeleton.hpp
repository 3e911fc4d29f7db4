// Ownership of the embedded BPF objects (bpftool-generated skeletons).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "maps.hpp"
#include "portmux.skel.h"

namespace portmux {

struct SkeletonDestroyer {
    void operator()(portmux_bpf* skeleton) const noexcept { portmux_bpf__destroy(skeleton); }
};
using SkeletonPtr = std::unique_ptr<portmux_bpf, SkeletonDestroyer>;

// The two builds of the data path (xdp/CMakeLists.txt). Both have the same
// maps and programs, so both open into a portmux_bpf skeleton.
enum class DataPathObject {
    standard,  // kernels from 5.15: payload bytes from the frame's linear part
    frags,     // SEC("xdp.frags"), bpf_xdp_load_bytes (5.18): jumbo frames
};

const char* to_string(DataPathObject object);

// The ELF bytes of an embedded object.
std::span<const std::uint8_t> object_bytes(DataPathObject object);

// Frames up to this MTU fit the page a driver gives XDP; above it only a
// frags-aware program can attach natively.
inline constexpr unsigned kLargestSinglePageMtu = 3498;

// The MTU of IFACE; throws std::runtime_error naming the interface.
unsigned interface_mtu(const std::string& iface);

// The object for an interface with this MTU: the standard one unless the
// MTU needs frags. Probes the kernel for every helper the chosen object
// calls; throws std::runtime_error with one line naming the missing helper
// and the kernel that has it.
DataPathObject choose_data_path_object(unsigned mtu, const std::string& iface);

// Opens an embedded object without loading it (libxdp loads it as it
// attaches). Throws std::system_error.
SkeletonPtr open_skeleton(DataPathObject object = DataPathObject::standard);

// The maps write_config() programs, from a loaded skeleton.
DataPathMaps data_path_maps(const portmux_bpf& skeleton);

// Opens and loads it, for running the program without an interface
// (bpf_prog_test_run). Throws std::system_error.
SkeletonPtr open_and_load_skeleton(DataPathObject object = DataPathObject::standard);

}  // namespace portmux
