#include "xdp_hook.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "bpf_handles.hpp"

namespace portmux {
namespace {

// libxdp's dispatcher has at most this many component programs
// (MAX_DISPATCHER_ACTIONS).
constexpr int kDispatcherSlots = 10;

std::string errno_text(int err) {
    return std::strerror(err < 0 ? -err : err);
}

struct ProgramInfo {
    std::uint32_t id = 0;
    std::string name;
};

ProgramInfo info_of(int fd) {
    bpf_prog_info info{};
    __u32 length = sizeof info;
    if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &length) != 0) {
        return {};
    }
    return {info.id, info.name};
}

// Where libxdp pins a dispatcher's parts (its get_bpffs_dir()).
std::filesystem::path libxdp_pin_dir() {
    const char* dir = std::getenv("LIBXDP_BPFFS");
    return dir && *dir ? dir : "/sys/fs/bpf/xdp";
}

// The programs in libxdp's dispatcher DISPATCHER_ID on IFINDEX, read from the
// pins libxdp keeps for it (prog0-prog, prog1-prog...). Empty when
// DISPATCHER_ID is not a libxdp dispatcher.
std::vector<ProgramInfo> dispatcher_programs(unsigned ifindex, std::uint32_t dispatcher_id) {
    const std::filesystem::path dir =
        libxdp_pin_dir() / fmt::format("dispatch-{}-{}", ifindex, dispatcher_id);
    std::vector<ProgramInfo> programs;
    for (int slot = 0; slot < kDispatcherSlots; ++slot) {
        UniqueFd fd(bpf_obj_get((dir / fmt::format("prog{}-prog", slot)).c_str()));
        if (!fd) {
            break;
        }
        programs.push_back(info_of(fd.get()));
    }
    return programs;
}

// The hook's programs with their modes, native first.
std::vector<std::pair<xdp_attach_mode, std::uint32_t>> hook_entries(unsigned ifindex) {
    const XdpHookPrograms hook = query_xdp_hook(ifindex);
    std::vector<std::pair<xdp_attach_mode, std::uint32_t>> entries;
    if (hook.native) entries.emplace_back(XDP_MODE_NATIVE, hook.native);
    if (hook.generic) entries.emplace_back(XDP_MODE_SKB, hook.generic);
    if (hook.offload) entries.emplace_back(XDP_MODE_HW, hook.offload);
    return entries;
}

}  // namespace

__u32 xdp_mode_flag(xdp_attach_mode mode) {
    switch (mode) {
    case XDP_MODE_NATIVE:
        return XDP_FLAGS_DRV_MODE;
    case XDP_MODE_SKB:
        return XDP_FLAGS_SKB_MODE;
    case XDP_MODE_HW:
        return XDP_FLAGS_HW_MODE;
    default:
        return 0;
    }
}

const char* mode_name(xdp_attach_mode mode) {
    switch (mode) {
    case XDP_MODE_NATIVE:
        return "native";
    case XDP_MODE_SKB:
        return "generic";
    case XDP_MODE_HW:
        return "offload";
    default:
        return "unknown";
    }
}

XdpHookPrograms query_xdp_hook(unsigned ifindex) {
    bpf_xdp_query_opts opts{};
    opts.sz = sizeof opts;
    if (int err = bpf_xdp_query(static_cast<int>(ifindex), 0, &opts); err) {
        throw std::runtime_error(fmt::format("reading the XDP programs of interface index {}: {}",
                                             ifindex, errno_text(err)));
    }
    return {opts.drv_prog_id, opts.skb_prog_id, opts.hw_prog_id};
}

XdpPlacement locate_program(unsigned ifindex, std::uint32_t id) {
    if (id == 0) {
        return {};
    }
    for (const auto& [mode, hook_id] : hook_entries(ifindex)) {
        if (hook_id == id) {
            return {true, mode, false, hook_id};
        }
        for (const ProgramInfo& program : dispatcher_programs(ifindex, hook_id)) {
            if (program.id == id) {
                return {true, mode, true, hook_id};
            }
        }
    }
    return {};
}

std::uint32_t find_program_by_name(unsigned ifindex, const std::string& name) {
    for (const auto& [mode, hook_id] : hook_entries(ifindex)) {
        UniqueFd fd(bpf_prog_get_fd_by_id(hook_id));  // EPERM without CAP_SYS_ADMIN
        if (info_of(fd.get()).name == name) {
            return hook_id;
        }
        for (const ProgramInfo& program : dispatcher_programs(ifindex, hook_id)) {
            if (program.name == name) {
                return program.id;
            }
        }
    }
    return 0;
}

std::string describe_xdp_hook(unsigned ifindex) {
    std::vector<std::string> parts;
    for (const auto& [mode, hook_id] : hook_entries(ifindex)) {
        const std::vector<ProgramInfo> inside = dispatcher_programs(ifindex, hook_id);
        if (!inside.empty()) {
            parts.push_back(fmt::format("a libxdp dispatcher (id {}, {} mode) with {} program(s)",
                                        hook_id, mode_name(mode), inside.size()));
            continue;
        }
        UniqueFd fd(bpf_prog_get_fd_by_id(hook_id));
        const std::string name = info_of(fd.get()).name;
        parts.push_back(fmt::format("{} (id {}, {} mode, attached without libxdp's dispatcher)",
                                    name.empty() ? "a program" : name, hook_id, mode_name(mode)));
    }
    return parts.empty() ? "none" : fmt::format("{}", fmt::join(parts, "; "));
}

void remove_xdp_program(unsigned ifindex, int program_fd, std::uint32_t id) {
    const XdpPlacement placement = locate_program(ifindex, id);
    if (!placement.found) {
        return;
    }
    if (!placement.in_dispatcher) {
        // Only if it is still the program there (XDP_FLAGS_REPLACE with the
        // expected fd): never removes a program that replaced ours.
        bpf_xdp_attach_opts opts{};
        opts.sz = sizeof opts;
        opts.old_prog_fd = program_fd;
        const __u32 flags = XDP_FLAGS_REPLACE | xdp_mode_flag(placement.mode);
        if (int err = bpf_xdp_detach(static_cast<int>(ifindex), flags, &opts); err) {
            throw std::runtime_error(fmt::format("removing XDP program id {} ({} mode): {}", id,
                                                 mode_name(placement.mode), errno_text(err)));
        }
        return;
    }
    // In a dispatcher, libxdp rebuilds it without our program; it looks the
    // dispatcher up by id, which needs CAP_SYS_ADMIN.
    xdp_multiprog* found = xdp_multiprog__get_from_ifindex(static_cast<int>(ifindex));
    if (long err = libxdp_get_error(found)) {
        throw std::runtime_error(fmt::format(
            "removing XDP program id {} from libxdp's dispatcher (id {}): libxdp cannot read the "
            "dispatcher ({}){}",
            id, placement.hook_program, errno_text(static_cast<int>(err)),
            err == -EPERM ? "; libxdp needs CAP_SYS_ADMIN for that" : ""));
    }
    const XdpMultiprogPtr multiprog(found);
    for (xdp_program* program = xdp_multiprog__next_prog(nullptr, multiprog.get()); program;
         program = xdp_multiprog__next_prog(program, multiprog.get())) {
        if (xdp_program__id(program) == id) {
            if (int err = xdp_program__detach(program, static_cast<int>(ifindex),
                                              xdp_multiprog__attach_mode(multiprog.get()), 0);
                err) {
                throw std::runtime_error(fmt::format(
                    "removing XDP program id {} from libxdp's dispatcher: {}", id, errno_text(err)));
            }
            return;
        }
    }
}

std::uint32_t program_id_of(int fd) {
    return info_of(fd).id;
}

}  // namespace portmux
