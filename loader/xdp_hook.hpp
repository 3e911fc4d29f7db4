// What is on an interface's XDP hook, found from the interface itself.
//
// The kernel reports the program ids on the hook over netlink
// (bpf_xdp_query), which needs no CAP_SYS_ADMIN. libxdp's own lookup
// (xdp_multiprog__get_from_ifindex) turns ids into fds with
// bpf_prog_get_fd_by_id, which does: without it libxdp sees nothing, and
// portmux used to say "detached" while its program stayed on the interface.
// So portmux finds its program by id from the pin it holds, and looks
// inside libxdp's dispatcher through the dispatcher's own pins.
#pragma once

#include <cstdint>
#include <string>

#include <xdp/libxdp.h>

namespace portmux {

const char* mode_name(xdp_attach_mode mode);
// The XDP_FLAGS_*_MODE flag of MODE for the kernel's attach calls; 0 for
// XDP_MODE_UNSPEC (the kernel then picks).
__u32 xdp_mode_flag(xdp_attach_mode mode);

// The programs on IFINDEX's XDP hook, per mode (0: none). Throws.
struct XdpHookPrograms {
    std::uint32_t native = 0;
    std::uint32_t generic = 0;
    std::uint32_t offload = 0;
};
XdpHookPrograms query_xdp_hook(unsigned ifindex);

// Where program ID is on IFINDEX's hook.
struct XdpPlacement {
    bool found = false;
    xdp_attach_mode mode = XDP_MODE_UNSPEC;
    bool in_dispatcher = false;        // inside libxdp's dispatcher, else on the hook itself
    std::uint32_t hook_program = 0;    // the program on the hook: ID itself or the dispatcher

    const char* attachment() const {
        return in_dispatcher ? "libxdp dispatcher" : "legacy (single program)";
    }
};
XdpPlacement locate_program(unsigned ifindex, std::uint32_t id);

// Id of a program named NAME on IFINDEX's hook (on it, or in libxdp's
// dispatcher), 0 when there is none or it cannot be told: the name of a
// program known only by id can be read only with CAP_SYS_ADMIN.
std::uint32_t find_program_by_name(unsigned ifindex, const std::string& name);

// "none", or what is on the hook, for messages.
std::string describe_xdp_hook(unsigned ifindex);

// Removes the program PROGRAM_FD (whose id is ID) from IFINDEX, wherever
// locate_program() finds it; only that program, never another one that has
// taken its place. Throws std::runtime_error saying why it could not.
void remove_xdp_program(unsigned ifindex, int program_fd, std::uint32_t id);

// The id of the program behind FD, 0 when FD is not a program.
std::uint32_t program_id_of(int fd);

}  // namespace portmux
