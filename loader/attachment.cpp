#include "attachment.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "bpf_handles.hpp"
#include "bpf_links.hpp"
#include "library_log.hpp"
#include "maps.hpp"
#include "skeleton.hpp"
#include "system.hpp"
#include "tc_egress.hpp"
#include "xdp_hook.hpp"

namespace portmux {
namespace {

namespace fs = std::filesystem;

constexpr const char* kProgramName = "portmux_xdp";

std::string errno_text(int err) {
    return std::strerror(err < 0 ? -err : err);
}

std::uint32_t pinned_program_id(const fs::path& dir, const char* pin_name = kXdpProgramPin) {
    const UniqueFd fd(bpf_obj_get((dir / pin_name).c_str()));
    return program_id_of(fd.get());
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
        {skeleton.maps.frontend_configs, PORTMUX_CONFIG_BUFFERS * slots},
        {skeleton.maps.counter_bases, slots},
        {skeleton.maps.flows, config.flow_table_size},
        {skeleton.maps.direct_clients, config.flow_table_size},
    };
    for (const auto& [map, entries] : sizes) {
        if (int err = bpf_map__set_max_entries(map, static_cast<__u32>(entries)); err) {
            throw std::runtime_error(fmt::format("sizing map {} to {} entries: {}",
                                                 bpf_map__name(map), entries, errno_text(err)));
        }
    }
}

int attach_in_mode(unsigned ifindex, xdp_attach_mode mode, const Config& config,
                   DataPathObject object, LoadedProgram& loaded) {
    // libxdp loads the object as it attaches it, so each try needs a fresh,
    // unloaded object.
    loaded.program.reset();
    loaded.skeleton = open_skeleton(object);
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

// TEXT, followed by the kernel's own reason when libbpf reported one.
std::string with_kernel_reason(const std::string& text) {
    const std::string reason = last_kernel_message();
    return reason.empty() ? text : fmt::format("{}: {}", text, reason);
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
                                          iface, describe_xdp_hook(ifindex));
        if (find_program_by_name(ifindex, kProgramName) != 0) {
            message += fmt::format(" (a portmux program left by an interrupted attach; "
                                   "`portmux detach {}` removes it)", iface);
        }
        return message;
    }
    return fmt::format("attaching the XDP program to {} in {} mode failed: {}", iface,
                       mode_name(mode), with_kernel_reason(errno_text(err)));
}

// Undoes a partial attach unless dismissed.
class AttachRollback {
public:
    AttachRollback(std::string iface, unsigned ifindex, int root_fd)
        : iface_(std::move(iface)), ifindex_(ifindex), root_fd_(root_fd) {}
    AttachRollback(const AttachRollback&) = delete;
    AttachRollback& operator=(const AttachRollback&) = delete;
    ~AttachRollback() {
        if (program_) {
            try {
                detach_tc_egress(ifindex_);
            } catch (const std::exception&) {
                // Best effort: the error that triggered the rollback matters more.
            }
            try {
                remove_xdp_program(ifindex_, xdp_program__fd(program_), xdp_program__id(program_));
            } catch (const std::exception&) {
                // Best effort, as above.
            }
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
    int root_fd_;
    xdp_program* program_ = nullptr;
    bool pins_made_ = false;
};

void pin(int fd, const fs::path& path) {
    if (bpf_obj_pin(fd, path.c_str()) != 0) {
        throw std::runtime_error(fmt::format("pinning {}: {}", path.string(), errno_text(errno)));
    }
}

// The bpf_links an attach made (empty where it used netlink instead).
struct AttachedLinks {
    AttachedLink xdp;
    AttachedLink tc;
};

// TC egress goes through tcx where the kernel has it, else a clsact filter;
// not tcx when the bpffs holding the pins ends with this command's mount
// namespace (a plain `ip netns exec`): the link would go with it. Returns
// the tcx link, empty when a clsact filter was attached instead.
AttachedLink attach_tc_program(unsigned ifindex, int tc_program_fd, bool pins_outlive_command) {
    AttachedLink link;
    if (pins_outlive_command) {
        link = attach_tcx_egress(ifindex, tc_program_fd);
    }
    if (!link) {
        attach_tc_egress(ifindex, tc_program_fd);
    }
    return link;
}

// Where libxdp attached the program alone (its legacy fallback, taken when
// its dispatcher cannot be used), a bpf_link takes the netlink attachment's
// place: nothing can then replace or remove the program unseen; not when the
// pins end with this command's mount namespace, as above. TC egress only when
// some frontend translates replies (TC_NEEDED).
AttachedLinks attach_through_links(unsigned ifindex, xdp_program* program, xdp_attach_mode mode,
                                   int tc_program_fd, bool tc_needed) {
    AttachedLinks links;
    const bool pins_outlive_command = bpffs_outlives_this_mount_namespace();
    const std::uint32_t id = xdp_program__id(program);
    if (pins_outlive_command && !locate_program(ifindex, id).in_dispatcher) {
        links.xdp = move_xdp_onto_link(ifindex, xdp_program__fd(program), id, mode);
    }
    if (tc_needed) {
        links.tc = attach_tc_program(ifindex, tc_program_fd, pins_outlive_command);
    }
    return links;
}

void pin_links(const AttachedLinks& links, const fs::path& dir) {
    if (links.xdp) {
        pin(links.xdp.fd(), dir / kXdpLinkPin);
    }
    if (links.tc) {
        pin(links.tc.fd(), dir / kTcLinkPin);
    }
}

}  // namespace

AttachOutcome attach(const StateLock& lock, const std::string& iface, const Config& requested,
                     AttachMode mode) {
    // TCP frontends routed by their first bytes belong to the stream
    // router: XDP must leave their packets alone.
    const Config config = xdp_frontends(requested);
    require_interface_name(iface);
    const unsigned ifindex = interface_index(iface);
    if (open_interface_directory(lock.root_fd(), iface)) {
        throw std::runtime_error(fmt::format(
            "portmux is already attached to {} (pins in {}); detach it first", iface,
            pin_directory(iface).string()));
    }

    // The default object unless the MTU needs frags; a kernel without a
    // helper the chosen object calls is named in one line here.
    const DataPathObject object = choose_data_path_object(interface_mtu(iface), iface);
    LoadedProgram loaded;
    AttachOutcome outcome;
    outcome.object = to_string(object);
    xdp_attach_mode xdp_mode = mode == AttachMode::generic ? XDP_MODE_SKB : XDP_MODE_NATIVE;
    int err = attach_in_mode(ifindex, xdp_mode, config, object, loaded);
    if (err && mode == AttachMode::automatic && err != -EEXIST && err != -EBUSY) {
        outcome.fallback_note = fmt::format("native XDP failed on {} ({}), fell back to generic",
                                            iface, with_kernel_reason(errno_text(err)));
        take_library_log();
        xdp_mode = XDP_MODE_SKB;
        err = attach_in_mode(ifindex, xdp_mode, config, object, loaded);
    }
    if (err) {
        throw std::runtime_error(attach_failure(iface, ifindex, xdp_mode, err));
    }

    AttachRollback rollback(iface, ifindex, lock.root_fd());
    rollback.arm(loaded.program.get());

    const portmux_bpf& skeleton = *loaded.skeleton;
    // Declared after the rollback: on failure they detach first.
    const bool tc_needed = translates_replies(config);
    AttachedLinks links = attach_through_links(ifindex, loaded.program.get(), xdp_mode,
                                               bpf_program__fd(skeleton.progs.portmux_tc_egress),
                                               tc_needed);

    const UniqueFd dir_fd = create_interface_directory(lock.root_fd(), iface);
    rollback.pins_made();
    const fs::path dir = pin_directory(iface);
    pin(xdp_program__fd(loaded.program.get()), dir / kXdpProgramPin);
    pin(bpf_program__fd(skeleton.progs.portmux_tc_egress), dir / kTcProgramPin);
    pin_links(links, dir);
    for (const PinnedMapEntry& entry : kPinnedMaps) {
        const char* object_name = entry.object_name ? entry.object_name : entry.name;
        const bpf_map* map = bpf_object__find_map_by_name(skeleton.obj, object_name);
        if (!map) {
            throw std::runtime_error(
                fmt::format("the BPF object has no map named {} to pin", object_name));
        }
        pin(bpf_map__fd(map), dir / entry.name);
    }

    write_config(data_path_maps(skeleton), config);

    outcome.mode = mode_name(xdp_mode);
    outcome.program_id = xdp_program__id(loaded.program.get());
    outcome.attachment = links.xdp ? "bpf_link" : locate_program(ifindex, outcome.program_id).attachment();
    outcome.tc_attachment = !tc_needed ? "" : links.tc ? "tcx link" : "clsact filter";
    links.xdp.keep();
    links.tc.keep();
    rollback.dismiss();
    return outcome;
}

void detach(const StateLock& lock, const std::string& iface) {
    require_interface_name(iface);
    const fs::path dir = pin_directory(iface);
    const bool pinned = static_cast<bool>(open_interface_directory(lock.root_fd(), iface));
    const unsigned ifindex = if_nametoindex(iface.c_str());

    // Our program: the one pinned, else (pins lost, e.g. a killed attach)
    // one named portmux_xdp on the interface.
    UniqueFd program_fd(pinned ? bpf_obj_get((dir / kXdpProgramPin).c_str()) : -1);
    std::uint32_t id = program_id_of(program_fd.get());
    if (id == 0 && ifindex) {
        id = find_program_by_name(ifindex, kProgramName);
        program_fd.reset(id ? bpf_prog_get_fd_by_id(id) : -1);
    }
    if (!pinned && id == 0) {
        if (!ifindex) {
            throw NotAttached(fmt::format("no such interface: {}", iface));
        }
        const XdpHookPrograms hook = query_xdp_hook(ifindex);
        if ((hook.native || hook.generic) && !has_capability(CAP_SYS_ADMIN)) {
            throw NotAttached(fmt::format(
                "portmux is not attached to {}: no pins in {}; {} has an XDP program ({}) that "
                "portmux cannot name without CAP_SYS_ADMIN: if it is portmux's, attached from "
                "another mount namespace, detach it from there or as root",
                iface, dir.string(), iface, describe_xdp_hook(ifindex)));
        }
        throw NotAttached(fmt::format("portmux is not attached to {}", iface));
    }
    if (pinned) {
        // A link holds its hook against netlink removal: detach it first.
        detach_pinned_link(dir / kTcLinkPin);
        detach_pinned_link(dir / kXdpLinkPin);
    }
    if (ifindex) {
        detach_tc_egress(ifindex);
    }
    if (ifindex && id) {
        remove_xdp_program(ifindex, program_fd.get(), id);
        if (locate_program(ifindex, id).found) {
            throw std::runtime_error(fmt::format(
                "the XDP program (id {}) is still attached to {} after removing it; its pins "
                "are kept in {}",
                id, iface, dir.string()));
        }
    }
    remove_interface_pins(lock.root_fd(), iface);
}

void set_tc_egress(const StateLock& lock, const std::string& iface, bool needed) {
    const fs::path dir = pin_directory(iface);
    const UniqueFd dir_fd = open_interface_directory(lock.root_fd(), iface);
    if (!dir_fd) {
        throw NotAttached(fmt::format("portmux is not attached to {}", iface));
    }
    const unsigned ifindex = if_nametoindex(iface.c_str());
    if (ifindex == 0) {
        throw std::runtime_error(fmt::format("no such interface: {}", iface));
    }
    const UniqueFd program(bpf_obj_get((dir / kTcProgramPin).c_str()));
    const std::uint32_t program_id = program_id_of(program.get());
    const bool on_link = program_id != 0 && pinned_link_holds(dir / kTcLinkPin, ifindex, program_id);
    const bool on_filter = program_id != 0 && tc_egress_program_id(ifindex) == program_id;
    if (needed) {
        if (on_link || on_filter) {
            return;
        }
        if (!program) {
            throw std::runtime_error(fmt::format(
                "cannot attach the TC egress program of {}: its pin {} cannot be opened ({}); "
                "detach and attach again",
                iface, (dir / kTcProgramPin).string(), errno_text(errno)));
        }
        AttachedLink link = attach_tc_program(ifindex, program.get(),
                                              bpffs_outlives_this_mount_namespace());
        if (link) {
            // A link detached earlier may have left its pin: replace it.
            if (unlinkat(dir_fd.get(), kTcLinkPin, 0) != 0 && errno != ENOENT) {
                throw std::runtime_error(fmt::format("removing the stale pin {}: {}",
                                                     (dir / kTcLinkPin).string(), errno_text(errno)));
            }
            pin(link.fd(), dir / kTcLinkPin);
            link.keep();
        }
        return;
    }
    // Not needed: neither a link (pinned or not) nor portmux's filter stays.
    detach_pinned_link(dir / kTcLinkPin);
    if (unlinkat(dir_fd.get(), kTcLinkPin, 0) != 0 && errno != ENOENT) {
        throw std::runtime_error(fmt::format("removing the pin {}: {}", (dir / kTcLinkPin).string(),
                                             errno_text(errno)));
    }
    detach_tc_egress(ifindex);
}

namespace {

// The ids of the maps program PROGRAM_FD uses.
std::vector<std::uint32_t> program_map_ids(int program_fd, const std::string& iface) {
    std::vector<__u32> ids(64);
    bpf_prog_info info{};
    info.nr_map_ids = static_cast<__u32>(ids.size());
    info.map_ids = reinterpret_cast<__u64>(ids.data());
    __u32 length = sizeof info;
    if (bpf_obj_get_info_by_fd(program_fd, &info, &length) != 0) {
        throw std::runtime_error(fmt::format("reading the pinned programs of {}: {}", iface,
                                             errno_text(errno)));
    }
    ids.resize(std::min<std::size_t>(info.nr_map_ids, ids.size()));
    return {ids.begin(), ids.end()};
}

}  // namespace

void require_live_attachment(const std::string& iface, const PinnedMaps& maps) {
    const fs::path dir = pin_directory(iface);
    const UniqueFd program(bpf_obj_get((dir / kXdpProgramPin).c_str()));
    if (!program) {
        throw std::runtime_error(fmt::format(
            "refusing to change {}: its program pin {} cannot be opened ({}); `portmux detach {}` "
            "cleans up an interrupted attach",
            iface, (dir / kXdpProgramPin).string(), errno_text(errno), iface));
    }
    // The maps pinned beside the programs must be the programs' own.
    const std::vector<std::uint32_t> own_maps = program_map_ids(program.get(), iface);
    std::vector<std::uint32_t> all_maps = own_maps;
    const UniqueFd tc_program(bpf_obj_get((dir / kTcProgramPin).c_str()));
    if (tc_program) {
        const std::vector<std::uint32_t> tc_maps = program_map_ids(tc_program.get(), iface);
        all_maps.insert(all_maps.end(), tc_maps.begin(), tc_maps.end());
    }
    const std::uint32_t program_id = program_id_of(program.get());
    for (const PinnedMapEntry& entry : kPinnedMaps) {
        if (!entry.used_by_programs) {
            continue;  // the loader's own (meta), checked by open_pinned_maps
        }
        bpf_map_info map_info{};
        __u32 map_length = sizeof map_info;
        if (bpf_obj_get_info_by_fd((maps.*entry.fd).get(), &map_info, &map_length) != 0 ||
            std::find(all_maps.begin(), all_maps.end(), map_info.id) == all_maps.end()) {
            throw std::runtime_error(fmt::format(
                "refusing to change {}: the pinned map {} is not one of its pinned programs' "
                "maps (XDP program id {})",
                iface, (dir / entry.name).string(), program_id));
        }
    }
    const unsigned ifindex = if_nametoindex(iface.c_str());
    if (ifindex == 0) {
        throw std::runtime_error(fmt::format(
            "refusing to change {}: the interface no longer exists; `portmux detach {}` removes "
            "its pins",
            iface, iface));
    }
    if (!locate_program(ifindex, program_id).found) {
        throw std::runtime_error(fmt::format(
            "refusing to change {}: its pinned program (id {}) is no longer attached to it "
            "(something else removed it, e.g. `ip link set dev {} xdp off`; on the hook: {}). "
            "`portmux detach {}` removes the pins; attach again to restore it",
            iface, program_id, iface, describe_xdp_hook(ifindex), iface));
    }
}

std::uint32_t program_on_interface(const std::string& iface) {
    const unsigned ifindex = if_nametoindex(iface.c_str());
    return ifindex ? find_program_by_name(ifindex, kProgramName) : 0;
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
    status.interface_exists = ifindex != 0;
    if (ifindex) {
        const XdpPlacement placement = locate_program(ifindex, status.program_id);
        if (placement.found) {
            status.program_attached = true;
            status.mode = mode_name(placement.mode);
            status.attachment = pinned_link_holds(dir / kXdpLinkPin, ifindex, status.program_id)
                                    ? "bpf_link"
                                    : placement.attachment();
        }
    }

    if (ifindex) {
        const std::uint32_t pinned_tc = pinned_program_id(dir, kTcProgramPin);
        if (pinned_link_holds(dir / kTcLinkPin, ifindex, pinned_tc) &&
            tcx_egress_runs(ifindex, pinned_tc)) {
            status.tc_program_id = pinned_tc;
            status.tc_attachment = "tcx link";
        } else {
            status.tc_program_id = tc_egress_program_id(ifindex);
            status.tc_attachment = "clsact filter";
        }
        status.tc_attached = status.tc_program_id != 0 && status.tc_program_id == pinned_tc;
    }

    try {
        const PinnedMaps maps = open_pinned_maps(iface);
        for (InstalledFrontend& installed : read_frontends(maps.data_path())) {
            status.frontends.push_back(std::move(installed.frontend));
        }
        Config installed;
        installed.frontends = status.frontends;
        status.tc_needed = translates_replies(installed);
        bpf_map_info flows{};
        __u32 length = sizeof flows;
        if (bpf_obj_get_info_by_fd(maps.flows.get(), &flows, &length) == 0) {
            status.flow_table_size = flows.max_entries;
        }
    } catch (const LayoutMismatch& mismatch) {
        status.incomplete = mismatch.what();
    } catch (const std::runtime_error&) {
        // An attach interrupted before it pinned everything.
        status.incomplete = "some of its pins are missing";
    }
    return status;
}

}  // namespace portmux
