#include "bpf_links.hpp"

#include <bpf/bpf.h>
#include <linux/if_link.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "xdp_hook.hpp"

namespace portmux {
namespace {

// BPF_TCX_EGRESS (kernel 6.6) is newer than the UAPI headers portmux builds
// with; libbpf 1.1's bpf_link_create passes the attach type through.
constexpr auto kAttachTcxEgress = static_cast<bpf_attach_type>(47);

std::string errno_text(int err) {
    return std::strerror(err < 0 ? -err : err);
}

}  // namespace

AttachedLink& AttachedLink::operator=(AttachedLink&& other) noexcept {
    if (this != &other) {
        detach_unless_kept();
        fd_ = std::move(other.fd_);
        kept_ = std::exchange(other.kept_, false);
    }
    return *this;
}

void AttachedLink::detach_unless_kept() noexcept {
    if (fd_ && !kept_) {
        (void)bpf_link_detach(fd_.get());  // best effort: closing the fd detaches it too
    }
    fd_.reset();
}

AttachedLink move_xdp_onto_link(unsigned ifindex, int program_fd, std::uint32_t id,
                                xdp_attach_mode mode) {
    remove_xdp_program(ifindex, program_fd, id);
    bpf_link_create_opts opts{};
    opts.sz = sizeof opts;
    opts.flags = xdp_mode_flag(mode);
    const int link = bpf_link_create(program_fd, static_cast<int>(ifindex), BPF_XDP, &opts);
    if (link >= 0) {
        return AttachedLink(link);
    }
    const int link_error = link;
    if (int err = bpf_xdp_attach(static_cast<int>(ifindex), program_fd,
                                 XDP_FLAGS_UPDATE_IF_NOEXIST | xdp_mode_flag(mode), nullptr);
        err) {
        throw std::runtime_error(fmt::format(
            "the kernel refused an XDP bpf_link ({}) and putting the program back through "
            "netlink failed too ({})",
            errno_text(link_error), errno_text(err)));
    }
    return {};
}

AttachedLink attach_tcx_egress(unsigned ifindex, int program_fd) {
    const int link = bpf_link_create(program_fd, static_cast<int>(ifindex), kAttachTcxEgress, nullptr);
    if (link >= 0) {
        return AttachedLink(link);
    }
    // A kernel without tcx does not know the attach type.
    if (link == -EINVAL || link == -EOPNOTSUPP) {
        return {};
    }
    throw std::runtime_error(
        fmt::format("attaching the TC egress program through tcx: {}", errno_text(link)));
}

bool tcx_egress_runs(unsigned ifindex, std::uint32_t id) {
    if (id == 0) {
        return false;
    }
    std::array<__u32, 64> ids{};
    __u32 count = ids.size();
    __u32 flags = 0;
    // BPF_PROG_QUERY reads the tcx ifindex from the slot that holds target_fd.
    if (bpf_prog_query(static_cast<int>(ifindex), kAttachTcxEgress, 0, &flags, ids.data(),
                       &count) != 0) {
        return false;
    }
    for (__u32 i = 0; i < count && i < ids.size(); ++i) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

bool pinned_link_holds(const std::filesystem::path& pin, unsigned ifindex,
                       std::uint32_t program_id) {
    const UniqueFd link(bpf_obj_get(pin.c_str()));
    if (!link) {
        return false;
    }
    bpf_link_info info{};
    __u32 length = sizeof info;
    if (bpf_obj_get_info_by_fd(link.get(), &info, &length) != 0) {
        return false;
    }
    // XDP and tcx links both report their interface in the first word of the
    // type-specific part (xdp.ifindex, tcx.ifindex); 0 once detached.
    return info.prog_id == program_id && info.xdp.ifindex == ifindex;
}

bool bpffs_outlives_this_mount_namespace() {
    struct stat here {};
    if (stat("/sys/fs/bpf", &here) != 0) {
        return false;
    }
    // mountinfo: ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ... - FSTYPE SOURCE ...
    std::ifstream mounts("/proc/1/mountinfo");
    for (std::string line; std::getline(mounts, line);) {
        const auto separator = line.find(" - ");
        if (separator == std::string::npos || line.compare(separator + 3, 4, "bpf ") != 0) {
            continue;
        }
        std::istringstream fields(line);
        std::string id, parent, device;
        fields >> id >> parent >> device;
        unsigned major_number = 0, minor_number = 0;
        if (std::sscanf(device.c_str(), "%u:%u", &major_number, &minor_number) == 2 &&
            makedev(major_number, minor_number) == here.st_dev) {
            return true;
        }
    }
    return false;
}

void detach_pinned_link(const std::filesystem::path& pin) {
    const UniqueFd link(bpf_obj_get(pin.c_str()));
    if (!link) {
        return;
    }
    if (bpf_link_detach(link.get()) != 0 && errno != ENOLINK) {
        throw std::runtime_error(fmt::format("detaching the link pinned at {}: {}", pin.string(),
                                             errno_text(errno)));
    }
}

}  // namespace portmux
