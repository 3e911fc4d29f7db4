// bpf_link attachments: XDP where libxdp's dispatcher is not in use, and
// TC egress through tcx on kernels that have it (6.6+).
//
// A program attached through netlink (libxdp's legacy fallback, a clsact
// filter) can be replaced or removed by any other tool without a word:
// `ip link set dev X xdp off`, `tc qdisc del dev X clsact`. A bpf_link owns
// its hook: the kernel refuses those (EBUSY), `bpftool link` lists it with
// its program and interface, and it lasts exactly as long as its pin
// beside the maps (or, before pinning, the fd) holds it. portmux pins both
// links in the interface's pin directory and detaches them in `detach`.
#pragma once

#include <cstdint>
#include <filesystem>

#include <xdp/libxdp.h>

#include "bpf_handles.hpp"

namespace portmux {

inline constexpr const char* kXdpLinkPin = "xdp_link";
inline constexpr const char* kTcLinkPin = "tc_link";

// A link detached (bpf_link_detach) when destroyed unless kept, so an
// attach that fails half-way leaves nothing on the interface.
class AttachedLink {
public:
    AttachedLink() = default;
    explicit AttachedLink(int fd) noexcept : fd_(fd) {}
    AttachedLink(AttachedLink&&) noexcept = default;
    AttachedLink& operator=(AttachedLink&& other) noexcept;
    AttachedLink(const AttachedLink&) = delete;
    AttachedLink& operator=(const AttachedLink&) = delete;
    ~AttachedLink() { detach_unless_kept(); }

    int fd() const noexcept { return fd_.get(); }
    explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
    // Pinned now: closing the fd leaves the link (and the program) in place.
    void keep() noexcept { kept_ = true; }

private:
    void detach_unless_kept() noexcept;
    UniqueFd fd_;
    bool kept_ = false;
};

// Moves PROGRAM_FD (id ID), attached to IFINDEX's XDP hook through netlink
// in MODE, onto a bpf_link in the same mode. Called at attach time, before
// any config is written (the program passes every packet until then), so
// the instant with no program on the hook changes no packet's fate. When
// the kernel refuses the link, the netlink attachment is put back and an
// empty AttachedLink returned. Throws when even that fails.
AttachedLink move_xdp_onto_link(unsigned ifindex, int program_fd, std::uint32_t id,
                                xdp_attach_mode mode);

// Attaches PROGRAM_FD to IFINDEX's TC egress through a tcx link; an empty
// AttachedLink when the kernel has no tcx (before 6.6: the caller then
// uses a clsact filter). Throws on any other failure.
AttachedLink attach_tcx_egress(unsigned ifindex, int program_fd);

// Whether program ID runs on IFINDEX's tcx egress hook.
bool tcx_egress_runs(unsigned ifindex, std::uint32_t id);

// Whether the link pinned at PIN exists and still holds program PROGRAM_ID
// on IFINDEX (false once it was detached, e.g. by `bpftool link detach`).
bool pinned_link_holds(const std::filesystem::path& pin, unsigned ifindex,
                       std::uint32_t program_id);

// Whether the bpffs on /sys/fs/bpf is also mounted in PID 1's mount
// namespace, so that pins there (and the links they hold) outlive this
// command. Not so where `ip netns exec` gave the command a mount namespace
// of its own and portmux mounted a bpffs in it: that bpffs, with every pin,
// goes when the namespace does. False when it cannot be told.
bool bpffs_outlives_this_mount_namespace();

// Detaches the link pinned at PIN from its hook, if there is one; the pin
// stays (removing the pin directory removes it). Throws on failure.
void detach_pinned_link(const std::filesystem::path& pin);

}  // namespace portmux
