#include "attachment.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "bpf_handles.hpp"
#include "maps.hpp"
#include "skeleton.hpp"
#include "system.hpp"
#include "tc_egress.hpp"

namespace portmux {
namespace {

namespace fs = std::filesystem;

constexpr const char* kProgramName = "portmux_xdp";

std::string errno_text(int err) {
    return std::strerror(err < 0 ? -err : err);
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

const char* attachment_name(const xdp_multiprog* multiprog) {
    return xdp_multiprog__is_legacy(multiprog) ? "legacy (single program)" : "libxdp dispatcher";
}

XdpMultiprogPtr programs_on(unsigned ifindex) {
    xdp_multiprog* multiprog = xdp_multiprog__get_from_ifindex(static_cast<int>(ifindex));
    if (libxdp_get_error(multiprog)) {
        return nullptr;
    }
    return XdpMultiprogPtr(multiprog);
}

// Our program among those on the interface: by id when known, else by name.
xdp_program* find_program(const xdp_multiprog* multiprog, std::uint32_t id) {
    auto matches = [id](const xdp_program* program) {
        return program && (id ? xdp_program__id(program) == id
                              : std::strcmp(xdp_program__name(program), kProgramName) == 0);
    };
    if (xdp_multiprog__is_legacy(multiprog)) {
        xdp_program* main = xdp_multiprog__main_prog(multiprog);
        return matches(main) ? main : nullptr;
    }
    for (xdp_program* program = xdp_multiprog__next_prog(nullptr, multiprog); program;
         program = xdp_multiprog__next_prog(program, multiprog)) {
        if (matches(program)) {
            return program;
        }
    }
    return nullptr;
}

std::string describe_programs(unsigned ifindex) {
    XdpMultiprogPtr multiprog = programs_on(ifindex);
    if (!multiprog) {
        return "none";
    }
    if (xdp_multiprog__is_legacy(multiprog.get())) {
        const xdp_program* main = xdp_multiprog__main_prog(multiprog.get());
        return main ? fmt::format("{} (id {}, attached without libxdp's dispatcher)",
                                  xdp_program__name(main), xdp_program__id(main))
                    : "none";
    }
    return fmt::format("a libxdp dispatcher with {} program(s)",
                       xdp_multiprog__program_count(multiprog.get()));
}

std::uint32_t pinned_program_id(const fs::path& dir, const char* pin_name = kXdpProgramPin) {
    UniqueFd fd(bpf_obj_get((dir / pin_name).c_str()));
    if (!fd) {
        return 0;
    }
    bpf_prog_info info{};
    __u32 length = sizeof info;
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) {
        return 0;
    }
    return info.id;
}


// The program and the object it came from, closed program first.
struct LoadedProgram {
    SkeletonPtr skeleton;
    XdpProgramPtr program;
};

void size_maps(portmux_bpf& skeleton, const Config& config) {
    const auto slots = std::max<std::size_t>(PORTMUX_DEFAULT_STATE_SLOTS, config.frontends.size());
    const std::pair<bpf_map*, std::size_t> sizes[] = {
        {skeleton.maps.frontend_state, slots},
        {skeleton.maps.flows, config.flow_table_size},
        {skeleton.maps.replies, config.flow_table_size},
    };
    for (const auto& [map, entries] : sizes) {
        if (int err = bpf_map__set_max_entries(map, static_cast<__u32>(entries)); err) {
            throw std::runtime_error(fmt::format("sizing map {} to {} entries: {}",
                                                 bpf_map__name(map), entries, errno_text(err)));
        }
    }
}

int attach_in_mode(unsigned ifindex, xdp_attach_mode mode, const Config& config,
                   LoadedProgram& loaded) {
    // libxdp loads the object as it attaches it, so each try needs a fresh,
    // unloaded object.
    loaded.program.reset();
    loaded.skeleton = open_skeleton();
    size_maps(*loaded.skeleton, config);
    xdp_program_opts opts{};
    opts.sz = sizeof opts;
    opts.obj = loaded.skeleton->obj;
    opts.prog_name = kProgramName;
    xdp_program* program = xdp_program__create(&opts);
    if (long err = libxdp_get_error(program)) {
        throw std::runtime_error(
            fmt::format("preparing the XDP program: {}", errno_text(static_cast<int>(err))));
    }
    loaded.program.reset(program);
    return xdp_program__attach(program, static_cast<int>(ifindex), mode, 0);
}

std::string attach_failure(const std::string& iface, unsigned ifindex, xdp_attach_mode mode,
                           int err) {
    if (err == -EOPNOTSUPP && mode == XDP_MODE_NATIVE) {
        return fmt::format(
            "the driver of {} does not support native XDP; use --mode generic or --mode auto",
            iface);
    }
    if (err == -EEXIST || err == -EBUSY) {
        std::string message = fmt::format("{} already has an XDP program that libxdp cannot share: {}",
                                          iface, describe_programs(ifindex));
        if (XdpMultiprogPtr multiprog = programs_on(ifindex);
            multiprog && find_program(multiprog.get(), 0)) {
            message += fmt::format(" (a portmux program left by an interrupted attach; "
                                   "`portmux detach {}` removes it)", iface);
        }
        return message;
    }
    return fmt::format("attaching the XDP program to {} in {} mode failed: {}", iface,
                       mode_name(mode), errno_text(err));
}

// Undoes a partial attach unless dismissed.
class AttachRollback {
public:
    AttachRollback(std::string iface, unsigned ifindex, xdp_attach_mode mode, int root_fd)
        : iface_(std::move(iface)), ifindex_(ifindex), mode_(mode), root_fd_(root_fd) {}
    AttachRollback(const AttachRollback&) = delete;
    AttachRollback& operator=(const AttachRollback&) = delete;
    ~AttachRollback() {
        if (program_) {
            try {
                detach_tc_egress(ifindex_);
            } catch (const std::exception&) {
                // Best effort: the error that triggered the rollback matters more.
            }
            xdp_program__detach(program_, static_cast<int>(ifindex_), mode_, 0);
            if (pins_made_) {
                try {
                    remove_interface_pins(root_fd_, iface_);
                } catch (const std::exception&) {
                    // Best effort, as above.
                }
            }
        }
    }
    void arm(xdp_program* program) { program_ = program; }
    void pins_made() { pins_made_ = true; }
    void dismiss() { program_ = nullptr; }

private:
    std::string iface_;
    unsigned ifindex_;
    xdp_attach_mode mode_;
    int root_fd_;
    xdp_program* program_ = nullptr;
    bool pins_made_ = false;
};

void pin(int fd, const fs::path& path) {
    if (bpf_obj_pin(fd, path.c_str()) != 0) {
        throw std::runtime_error(fmt::format("pinning {}: {}", path.string(), errno_text(errno)));
    }
}

}  // namespace

AttachOutcome attach(const StateLock& lock, const std::string& iface, const Config& config,
                     AttachMode mode) {
    require_interface_name(iface);
    const unsigned ifindex = interface_index(iface);
    if (open_interface_directory(lock.root_fd(), iface)) {
        throw std::runtime_error(fmt::format(
            "portmux is already attached to {} (pins in {}); detach it first", iface,
            pin_directory(iface).string()));
    }

    LoadedProgram loaded;
    AttachOutcome outcome;
    xdp_attach_mode xdp_mode = mode == AttachMode::generic ? XDP_MODE_SKB : XDP_MODE_NATIVE;
    int err = attach_in_mode(ifindex, xdp_mode, config, loaded);
    if (err && mode == AttachMode::automatic && err != -EEXIST && err != -EBUSY) {
        outcome.fallback_note = fmt::format("native XDP failed on {} ({}), fell back to generic",
                                            iface, errno_text(err));
        xdp_mode = XDP_MODE_SKB;
        err = attach_in_mode(ifindex, xdp_mode, config, loaded);
    }
    if (err) {
        throw std::runtime_error(attach_failure(iface, ifindex, xdp_mode, err));
    }

    AttachRollback rollback(iface, ifindex, xdp_mode, lock.root_fd());
    rollback.arm(loaded.program.get());

    const portmux_bpf& skeleton = *loaded.skeleton;
    attach_tc_egress(ifindex, bpf_program__fd(skeleton.progs.portmux_tc_egress));

    const UniqueFd dir_fd = create_interface_directory(lock.root_fd(), iface);
    rollback.pins_made();
    const fs::path dir = pin_directory(iface);
    pin(xdp_program__fd(loaded.program.get()), dir / kXdpProgramPin);
    pin(bpf_program__fd(skeleton.progs.portmux_tc_egress), dir / kTcProgramPin);
    for (const PinnedMapEntry& entry : kPinnedMaps) {
        const bpf_map* map = bpf_object__find_map_by_name(skeleton.obj, entry.name);
        if (!map) {
            throw std::runtime_error(
                fmt::format("the BPF object has no map named {} to pin", entry.name));
        }
        pin(bpf_map__fd(map), dir / entry.name);
    }

    write_config(data_path_maps(skeleton), config);

    outcome.mode = mode_name(xdp_mode);
    outcome.program_id = xdp_program__id(loaded.program.get());
    XdpMultiprogPtr multiprog = programs_on(ifindex);
    outcome.attachment = multiprog ? attachment_name(multiprog.get()) : "unknown";
    rollback.dismiss();
    return outcome;
}

void detach(const StateLock& lock, const std::string& iface) {
    require_interface_name(iface);
    const fs::path dir = pin_directory(iface);
    const bool pinned = static_cast<bool>(open_interface_directory(lock.root_fd(), iface));
    const unsigned ifindex = if_nametoindex(iface.c_str());

    XdpMultiprogPtr multiprog = ifindex ? programs_on(ifindex) : nullptr;
    xdp_program* program =
        multiprog ? find_program(multiprog.get(), pinned ? pinned_program_id(dir) : 0) : nullptr;
    if (!pinned && !program) {
        throw NotAttached(ifindex ? fmt::format("portmux is not attached to {}", iface)
                                  : fmt::format("no such interface: {}", iface));
    }
    if (ifindex) {
        detach_tc_egress(ifindex);
    }
    if (program) {
        const int err = xdp_program__detach(program, static_cast<int>(ifindex),
                                            xdp_multiprog__attach_mode(multiprog.get()), 0);
        if (err) {
            throw std::runtime_error(
                fmt::format("detaching the XDP program from {}: {}", iface, errno_text(err)));
        }
    }
    remove_interface_pins(lock.root_fd(), iface);
}

std::uint32_t program_on_interface(const std::string& iface) {
    const unsigned ifindex = if_nametoindex(iface.c_str());
    XdpMultiprogPtr multiprog = ifindex ? programs_on(ifindex) : nullptr;
    const xdp_program* program = multiprog ? find_program(multiprog.get(), 0) : nullptr;
    return program ? xdp_program__id(program) : 0;
}

std::vector<std::string> attached_interfaces() {
    return pinned_interfaces();
}

std::optional<InterfaceStatus> query_status(const std::string& iface) {
    const fs::path dir = pin_directory(iface);
    const UniqueFd root = open_pin_root(false);
    if (!root || !open_interface_directory(root.get(), iface)) {
        return std::nullopt;
    }
    InterfaceStatus status;
    status.iface = iface;
    status.program_id = pinned_program_id(dir);

    const unsigned ifindex = if_nametoindex(iface.c_str());
    if (XdpMultiprogPtr multiprog = ifindex ? programs_on(ifindex) : nullptr) {
        if (find_program(multiprog.get(), status.program_id)) {
            status.program_attached = true;
            status.mode = mode_name(xdp_multiprog__attach_mode(multiprog.get()));
            status.attachment = attachment_name(multiprog.get());
        }
    }

    if (ifindex) {
        status.tc_program_id = tc_egress_program_id(ifindex);
        status.tc_attached = status.tc_program_id != 0 &&
                             status.tc_program_id == pinned_program_id(dir, kTcProgramPin);
    }

    try {
        const PinnedMaps maps = open_pinned_maps(iface);
        for (InstalledFrontend& installed : read_frontends(maps.data_path())) {
            status.frontends.push_back(std::move(installed.frontend));
        }
    } catch (const std::runtime_error&) {
        // An attach interrupted before it pinned everything.
        status.incomplete = "some of its pins are missing";
    }
    return status;
}

}  // namespace portmux
