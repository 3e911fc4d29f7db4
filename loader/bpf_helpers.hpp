// Which BPF helpers an embedded BPF object calls, which kernel introduced
// each, and whether the running kernel has them (probed, not guessed from
// the version: distribution kernels carry backports).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace portmux {

struct HelperInfo {
    std::uint32_t id;          // enum bpf_func_id
    const char* name;          // bpf_... as in the kernel's documentation
    int major, minor;          // the mainline kernel that introduced it
};

// The table of helpers portmux knows; nullptr for an id not in it.
const HelperInfo* helper_info(std::uint32_t id);

// A helper call found in an object, with the program type of its section.
struct HelperCall {
    std::uint32_t helper;      // enum bpf_func_id
    std::uint32_t prog_type;   // enum bpf_prog_type of the calling section
    std::string section;
};

// Every distinct (helper, section) an ELF BPF object calls: BPF_CALL
// instructions with src_reg 0 in its executable sections. Throws
// std::runtime_error when the bytes are not a 64-bit little-endian ELF.
std::vector<HelperCall> helper_calls(std::span<const std::uint8_t> elf);

// The first helper the object calls that this kernel lacks (probed with
// libbpf_probe_bpf_helper), or nullopt. Needs CAP_BPF to probe.
std::optional<HelperCall> first_missing_helper(std::span<const std::uint8_t> elf);

// One line: "this kernel lacks BPF helper bpf_x (Linux M.N or a kernel with
// it backported), needed by <purpose>".
std::string missing_helper_message(const HelperCall& call, std::string_view purpose);

}  // namespace portmux
