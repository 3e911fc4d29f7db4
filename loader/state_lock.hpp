// The one lock every portmux verb that changes state holds while it works.
//
// Verbs read what is installed and write it back (reload keeps drained
// backends, drain rewrites the installed config); two of them at once
// would interleave their map writes and leave a config neither asked for.
// bpffs holds no regular files, so the lock is flock(LOCK_EX) on an fd of
// the pin root directory itself, /sys/fs/bpf/portmux (checked as pins.hpp
// describes before it is used).
//
// Usage:
//     const portmux::StateLock lock("portmux reload");  // blocks until held
//     portmux::reload(lock, iface, config);             // read, modify, write
//     // released when `lock` goes out of scope
//
// Hold one StateLock for the whole read-modify-write, and never take a second
// one in the same process while holding the first (flock on two fds of the
// same directory would wait for itself). The functions that change state
// (attach, detach, reload, set_drained) take a `const StateLock&` to show
// that their caller holds it. A long-running process (`portmux run`) takes it
// around each of its own changes, not for its whole life, so that the CLI
// verbs can still get in.
#pragma once

#include <optional>
#include <string>

#include "bpf_handles.hpp"

namespace portmux {

class StateLock {
public:
    // Checks the privileges ACTION (e.g. "portmux reload") needs, mounts
    // bpffs when it is missing, creates the pin root when it is missing
    // (mode 0700, checked), then waits until no other portmux process holds
    // the lock. Throws std::runtime_error (UntrustedPins for a pin root that
    // is not portmux's own).
    explicit StateLock(const std::string& action);

    // Like the constructor, but returns std::nullopt at once when another
    // process holds the lock.
    static std::optional<StateLock> try_acquire(const std::string& action);

    StateLock(StateLock&&) noexcept = default;
    StateLock& operator=(StateLock&&) noexcept = default;
    StateLock(const StateLock&) = delete;
    StateLock& operator=(const StateLock&) = delete;

    // Releases the lock; first removes the pin root when nothing is pinned
    // in it any more (no interface attached).
    ~StateLock();

    // The checked pin root, for openat() and the functions of pins.hpp.
    int root_fd() const noexcept { return root_.get(); }

private:
    struct Blocking {
        bool wait;
    };
    StateLock(const std::string& action, Blocking blocking);

    UniqueFd root_;
};

}  // namespace portmux
