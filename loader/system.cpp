#include "system.hpp"

#include <linux/capability.h>
#include <net/if.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

namespace portmux {
namespace {

constexpr const char* kBpffsRoot = "/sys/fs/bpf";

}  // namespace

bool has_capability(int capability) {
    __user_cap_header_struct header{};
    header.version = _LINUX_CAPABILITY_VERSION_3;
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &header, data) != 0) {
        throw std::runtime_error(fmt::format("cannot read this process's capabilities: {}",
                                             std::strerror(errno)));
    }
    return (data[capability / 32].effective & (1u << (capability % 32))) != 0;
}

void require_bpf_privileges(const std::string& action) {
    // The kernel lets CAP_SYS_ADMIN stand in for CAP_BPF and CAP_PERFMON
    // (bpf_capable(), perfmon_capable()). CAP_PERFMON is what lets the
    // verifier accept the data path's pointer arithmetic; without it the load
    // fails with a long verifier log.
    const bool sys_admin = has_capability(CAP_SYS_ADMIN);
    std::vector<const char*> missing;
    if (!sys_admin && !has_capability(CAP_BPF)) {
        missing.push_back("CAP_BPF");
    }
    if (!has_capability(CAP_NET_ADMIN)) {
        missing.push_back("CAP_NET_ADMIN");
    }
    if (!sys_admin && !has_capability(CAP_PERFMON)) {
        missing.push_back("CAP_PERFMON");
    }
    if (!missing.empty()) {
        throw std::runtime_error(fmt::format(
            "{} needs root, or the capabilities CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON "
            "(missing: {})",
            action, fmt::join(missing, ", ")));
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

void write_file_atomically(const std::filesystem::path& file, std::string_view text) {
    const std::filesystem::path dir = file.parent_path().empty() ? "." : file.parent_path();
    std::string temp = (dir / ("." + file.filename().string() + ".XXXXXX")).string();
    const int fd = mkstemp(temp.data());
    if (fd < 0) {
        throw std::system_error(errno, std::generic_category(),
                                fmt::format("creating a temporary file beside {}", file.string()));
    }
    bool renamed = false;
    auto fail = [&](const std::string& what) {
        const int err = errno;
        close(fd);
        if (!renamed) {
            unlink(temp.c_str());
        }
        throw std::system_error(err, std::generic_category(), what);
    };
    // mkstemp makes 0600; a metrics file is for other readers too.
    if (fchmod(fd, 0644) != 0) {
        fail(fmt::format("setting the mode of {}", temp));
    }
    for (std::size_t written = 0; written < text.size();) {
        const ssize_t n = write(fd, text.data() + written, text.size() - written);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail(fmt::format("writing {}", temp));
        }
        written += static_cast<std::size_t>(n);
    }
    if (fsync(fd) != 0) {
        fail(fmt::format("writing {}", temp));
    }
    if (rename(temp.c_str(), file.c_str()) != 0) {
        fail(fmt::format("replacing {}", file.string()));
    }
    renamed = true;
    close(fd);
}

}  // namespace portmux
