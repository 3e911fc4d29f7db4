#include "pins.hpp"

#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

namespace portmux {
namespace {

namespace fs = std::filesystem;

constexpr const char* kBpffsMount = "/sys/fs/bpf";
constexpr const char* kPinRootName = "portmux";

std::string errno_text(int err) {
    return std::strerror(err < 0 ? -err : err);
}

bool on_bpffs(int fd) {
    struct statfs info {};
    return fstatfs(fd, &info) == 0 && static_cast<unsigned long>(info.f_type) == BPF_FS_MAGIC;
}

std::string link_target(const fs::path& path) {
    std::error_code err;
    const fs::path target = fs::read_symlink(path, err);
    return err ? std::string("?") : target.string();
}

// Why portmux refuses PATH, and the fix; `removal` is the command that
// clears what is there.
UntrustedPins untrusted(const fs::path& path, const std::string& why) {
    return UntrustedPins(fmt::format(
        "refusing to use {}: {}; another user may have made it to capture portmux's pins: "
        "check what it holds, remove it (rm -r {}) and run the command again",
        path.string(), why, path.string()));
}

// Opens NAME under DIR_FD as a directory without following a link, and
// checks that it is one portmux can trust. Empty when it does not exist.
UniqueFd open_checked_directory(int dir_fd, const char* name, const fs::path& path) {
    UniqueFd fd(openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        const int err = errno;
        if (err == ENOENT) {
            return {};
        }
        struct stat link {};
        if (fstatat(dir_fd, name, &link, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISLNK(link.st_mode)) {
                throw untrusted(path, fmt::format("it is a symbolic link (to {}), not a directory",
                                                  link_target(path)));
            }
            if (!S_ISDIR(link.st_mode)) {
                throw untrusted(path, "it is not a directory");
            }
        }
        throw std::runtime_error(fmt::format("opening {}: {}", path.string(), errno_text(err)));
    }
    struct stat info {};
    if (fstat(fd.get(), &info) != 0) {
        throw std::runtime_error(fmt::format("reading {}: {}", path.string(), errno_text(errno)));
    }
    if (!on_bpffs(fd.get())) {
        throw untrusted(path, "it is not on bpffs (something is mounted over it)");
    }
    if (info.st_uid != 0 && info.st_uid != geteuid()) {
        throw untrusted(path, fmt::format("it is owned by uid {}, not by root", info.st_uid));
    }
    if ((info.st_mode & 07777) != 0700) {
        throw untrusted(path, fmt::format("its mode is {:04o}, not 0700, so others could change "
                                          "what is in it",
                                          info.st_mode & 07777));
    }
    return fd;
}

// The bpffs mount: it may be 1777 (a fresh bpffs is), but then only with the
// sticky bit, which keeps other users from renaming portmux's directory away.
UniqueFd open_bpffs() {
    UniqueFd fd(open(kBpffsMount, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
        throw std::runtime_error(fmt::format("opening {}: {}", kBpffsMount, errno_text(errno)));
    }
    struct stat info {};
    if (fstat(fd.get(), &info) != 0 || !on_bpffs(fd.get())) {
        throw std::runtime_error(fmt::format(
            "{} is not a bpffs mount; mount it with `mount -t bpf bpf {}`", kBpffsMount, kBpffsMount));
    }
    if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (info.st_mode & S_ISVTX) == 0) {
        throw UntrustedPins(fmt::format(
            "refusing to use {}: its mode is {:04o}, writable by other users without the sticky "
            "bit, so they could replace portmux's directory; fix it with `chmod +t {}`",
            kBpffsMount, info.st_mode & 07777, kBpffsMount));
    }
    return fd;
}

UniqueFd make_checked_directory(int parent_fd, const char* name, const fs::path& path) {
    if (mkdirat(parent_fd, name, 0700) != 0 && errno != EEXIST) {
        throw std::runtime_error(fmt::format("creating {}: {}", path.string(), errno_text(errno)));
    }
    // Checked as any other: if someone else made it first, this refuses it.
    UniqueFd fd = open_checked_directory(parent_fd, name, path);
    if (!fd) {
        throw std::runtime_error(
            fmt::format("creating {}: it disappeared as it was made", path.string()));
    }
    return fd;
}

struct DirCloser {
    void operator()(DIR* dir) const noexcept { closedir(dir); }
};

// The names in directory DIR_FD, without "." and "..".
std::vector<std::string> directory_entries(int dir_fd, const fs::path& path) {
    const int copy = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
        throw std::runtime_error(fmt::format("reading {}: {}", path.string(), errno_text(errno)));
    }
    std::unique_ptr<DIR, DirCloser> dir(fdopendir(copy));
    if (!dir) {
        close(copy);
        throw std::runtime_error(fmt::format("reading {}: {}", path.string(), errno_text(errno)));
    }
    rewinddir(dir.get());
    std::vector<std::string> names;
    while (const dirent* entry = readdir(dir.get())) {
        const std::string_view name = entry->d_name;
        if (name != "." && name != "..") {
            names.emplace_back(name);
        }
    }
    return names;
}

}  // namespace

fs::path pin_root() {
    return fs::path(kBpffsMount) / kPinRootName;
}

fs::path pin_directory(const std::string& iface) {
    return pin_root() / iface;
}

void require_interface_name(const std::string& iface) {
    // The kernel's own rules (dev_valid_name): 1 to 15 bytes, not "." or
    // "..", no '/', ':' or whitespace.
    const bool valid = !iface.empty() && iface.size() < 16 && iface != "." && iface != ".." &&
                       std::none_of(iface.begin(), iface.end(), [](char c) {
                           return c == '/' || c == ':' || c == '\0' ||
                                  static_cast<unsigned char>(c) <= ' ';
                       });
    if (!valid) {
        throw std::runtime_error(fmt::format("not a valid interface name: \"{}\"", iface));
    }
}

UniqueFd open_pin_root(bool create) {
    const UniqueFd bpffs = open_bpffs();
    return create ? make_checked_directory(bpffs.get(), kPinRootName, pin_root())
                  : open_checked_directory(bpffs.get(), kPinRootName, pin_root());
}

UniqueFd open_interface_directory(int root_fd, const std::string& iface) {
    require_interface_name(iface);
    return open_checked_directory(root_fd, iface.c_str(), pin_directory(iface));
}

UniqueFd create_interface_directory(int root_fd, const std::string& iface) {
    require_interface_name(iface);
    if (mkdirat(root_fd, iface.c_str(), 0700) != 0) {
        throw std::runtime_error(
            fmt::format("creating {}: {}", pin_directory(iface).string(), errno_text(errno)));
    }
    return open_checked_directory(root_fd, iface.c_str(), pin_directory(iface));
}

void remove_interface_pins(int root_fd, const std::string& iface) {
    const fs::path path = pin_directory(iface);
    const UniqueFd dir = open_interface_directory(root_fd, iface);
    if (!dir) {
        return;
    }
    // Pins are files; unlinkat never follows a link, and a directory (which
    // portmux never makes here) is only removed when empty.
    for (const std::string& name : directory_entries(dir.get(), path)) {
        struct stat info {};
        const bool is_dir = fstatat(dir.get(), name.c_str(), &info, AT_SYMLINK_NOFOLLOW) == 0 &&
                            S_ISDIR(info.st_mode);
        if (unlinkat(dir.get(), name.c_str(), is_dir ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT) {
            throw std::runtime_error(
                fmt::format("removing {}: {}", (path / name).string(), errno_text(errno)));
        }
    }
    if (unlinkat(root_fd, iface.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
        throw std::runtime_error(fmt::format("removing {}: {}", path.string(), errno_text(errno)));
    }
}

void remove_pin_root_if_empty() {
    UniqueFd bpffs(open(kBpffsMount, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (bpffs && on_bpffs(bpffs.get())) {
        // Fails (ENOTEMPTY) while any interface is left; a symlink or file
        // in its place is not a directory and is left alone.
        (void)unlinkat(bpffs.get(), kPinRootName, AT_REMOVEDIR);
    }
}

PinnedMaps open_pinned_maps(const std::string& iface) {
    const UniqueFd root = open_pin_root(false);
    const UniqueFd dir = root ? open_interface_directory(root.get(), iface) : UniqueFd();
    if (!dir) {
        throw NotAttached(fmt::format("portmux is not attached to {}", iface));
    }
    const fs::path path = pin_directory(iface);
    // Before any other pin is read: another layout would be misread.
    check_layout_version(path);
    PinnedMaps maps;
    for (const PinnedMapEntry& entry : kPinnedMaps) {
        UniqueFd fd(bpf_obj_get((path / entry.name).c_str()));
        if (!fd) {
            throw std::runtime_error(fmt::format("opening pinned map {}: {}",
                                                 (path / entry.name).string(), errno_text(errno)));
        }
        maps.*entry.fd = std::move(fd);
    }
    return maps;
}

std::vector<std::string> pinned_interfaces() {
    const UniqueFd root = open_pin_root(false);
    if (!root) {
        return {};
    }
    std::vector<std::string> names;
    for (std::string& name : directory_entries(root.get(), pin_root())) {
        struct stat info {};
        if (fstatat(root.get(), name.c_str(), &info, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(info.st_mode)) {
            names.push_back(std::move(name));
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace portmux
