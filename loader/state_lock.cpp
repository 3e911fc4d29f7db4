#include "state_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "pins.hpp"
#include "system.hpp"

namespace portmux {
namespace {

// A waiter can get the lock on a pin root that its holder has just removed
// (the last detach): it then starts again on the new one. Each retry means
// another process made progress, so a few are plenty.
constexpr int kMaxAttempts = 100;

struct WouldBlock {};

bool is_current_root(int fd) {
    struct stat held {};
    struct stat current {};
    return fstat(fd, &held) == 0 && lstat(pin_root().c_str(), &current) == 0 &&
           held.st_dev == current.st_dev && held.st_ino == current.st_ino;
}

}  // namespace

StateLock::StateLock(const std::string& action) : StateLock(action, Blocking{true}) {}

std::optional<StateLock> StateLock::try_acquire(const std::string& action) {
    try {
        return StateLock(action, Blocking{false});
    } catch (const WouldBlock&) {
        return std::nullopt;
    }
}

StateLock::StateLock(const std::string& action, Blocking blocking) {
    require_bpf_privileges(action);
    ensure_bpffs();
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
        UniqueFd root = open_pin_root(true);
        int err = 0;
        do {
            err = flock(root.get(), LOCK_EX | (blocking.wait ? 0 : LOCK_NB)) == 0 ? 0 : errno;
        } while (err == EINTR);
        if (err == EWOULDBLOCK && !blocking.wait) {
            throw WouldBlock{};
        }
        if (err != 0) {
            throw std::runtime_error(
                fmt::format("locking {}: {}", pin_root().string(), std::strerror(err)));
        }
        if (is_current_root(root.get())) {
            root_ = std::move(root);
            return;
        }
    }
    throw std::runtime_error(fmt::format(
        "locking {}: it was replaced {} times while waiting for it", pin_root().string(),
        kMaxAttempts));
}

StateLock::~StateLock() {
    if (root_) {
        remove_pin_root_if_empty();  // only while the lock is still held
    }
}

}  // namespace portmux
