#include "system.hpp"

#include <linux/capability.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

namespace portmux {
namespace {

constexpr const char* kBpffsRoot = "/sys/fs/bpf";

bool has_effective_capability(const __user_cap_data_struct (&data)[2], int capability) {
    return (data[capability / 32].effective & (1u << (capability % 32))) != 0;
}

}  // namespace

void require_bpf_privileges(const std::string& action) {
    __user_cap_header_struct header{};
    header.version = _LINUX_CAPABILITY_VERSION_3;
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &header, data) != 0) {
        throw std::runtime_error(fmt::format("cannot read this process's capabilities: {}",
                                             std::strerror(errno)));
    }
    std::vector<const char*> missing;
    if (!has_effective_capability(data, CAP_BPF) && !has_effective_capability(data, CAP_SYS_ADMIN)) {
        missing.push_back("CAP_BPF");
    }
    if (!has_effective_capability(data, CAP_NET_ADMIN)) {
        missing.push_back("CAP_NET_ADMIN");
    }
    if (!missing.empty()) {
        throw std::runtime_error(fmt::format(
            "{} needs root, or the capabilities CAP_BPF and CAP_NET_ADMIN (missing: {})", action,
            fmt::join(missing, ", ")));
    }
}

void ensure_bpffs() {
    struct statfs fs {};
    if (statfs(kBpffsRoot, &fs) == 0 && static_cast<unsigned long>(fs.f_type) == BPF_FS_MAGIC) {
        return;
    }
    if (mount("bpf", kBpffsRoot, "bpf", 0, "mode=0700") != 0) {
        throw std::runtime_error(fmt::format(
            "bpffs is not mounted on {} and mounting it failed ({}); mount it with "
            "`mount -t bpf bpf {}`",
            kBpffsRoot, std::strerror(errno), kBpffsRoot));
    }
}

unsigned interface_index(const std::string& iface) {
    const unsigned index = if_nametoindex(iface.c_str());
    if (index == 0) {
        throw std::runtime_error(fmt::format("no such interface: {}", iface));
    }
    return index;
}

}  // namespace portmux
