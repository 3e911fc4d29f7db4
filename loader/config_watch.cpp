#include "config_watch.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

namespace portmux {
namespace {

namespace fs = std::filesystem;

constexpr std::uint32_t kDirectoryEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
                                           IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF |
                                           IN_MOVE_SELF | IN_ONLYDIR;

fs::path directory_of(const fs::path& file) {
    const fs::path parent = file.parent_path();
    return parent.empty() ? fs::path(".") : parent;
}

}  // namespace

ConfigWatch::ConfigWatch(fs::path file)
    : file_(fs::absolute(std::move(file))),
      inotify_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    if (!inotify_) {
        throw std::system_error(errno, std::generic_category(), "creating an inotify instance");
    }
    const fs::path dir = directory_of(file_);
    const int wd = inotify_add_watch(inotify_.get(), dir.c_str(), kDirectoryEvents);
    if (wd < 0) {
        throw std::system_error(errno, std::generic_category(),
                                fmt::format("watching {} for config changes", dir.string()));
    }
    watches_.insert({wd, dir});
    refresh();
}

std::set<fs::path> ConfigWatch::wanted_directories() const {
    std::set<fs::path> dirs{directory_of(file_)};
    std::error_code err;
    const fs::path target = fs::canonical(file_, err);
    if (!err) {
        dirs.insert(directory_of(target));
    }
    return dirs;
}

void ConfigWatch::refresh() {
    const std::set<fs::path> wanted = wanted_directories();
    // Drop watches on directories no longer wanted (an old ConfigMap
    // timestamp directory), add the missing ones.
    for (auto it = watches_.begin(); it != watches_.end();) {
        if (!wanted.contains(it->second)) {
            inotify_rm_watch(inotify_.get(), it->first);
            it = watches_.erase(it);
        } else {
            ++it;
        }
    }
    for (const fs::path& dir : wanted) {
        const bool watched = std::any_of(watches_.begin(), watches_.end(),
                                         [&](const auto& w) { return w.second == dir; });
        if (watched) {
            continue;
        }
        const int wd = inotify_add_watch(inotify_.get(), dir.c_str(), kDirectoryEvents);
        if (wd >= 0) {
            watches_.insert({wd, dir});
        }
        // A directory that cannot be watched now is tried again next time.
    }
}

bool ConfigWatch::consume_events() {
    alignas(inotify_event) char buffer[16384];
    bool any = false;
    for (;;) {
        const ssize_t length = read(inotify_.get(), buffer, sizeof buffer);
        if (length < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;  // EAGAIN: drained
        }
        if (length == 0) {
            break;
        }
        for (ssize_t offset = 0; offset < length;) {
            const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
            offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
            if (event->mask & IN_IGNORED) {
                // The directory went away (or the watch was removed): forget it.
                for (auto it = watches_.begin(); it != watches_.end(); ++it) {
                    if (it->first == event->wd) {
                        watches_.erase(it);
                        break;
                    }
                }
            }
            any = true;
        }
    }
    if (any) {
        refresh();
    }
    return any;
}

std::optional<std::string> read_whole_file(const fs::path& file, std::string& error) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        error = fmt::format("cannot read {}: {}", file.string(), std::strerror(errno));
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        error = fmt::format("cannot read {}: {}", file.string(), std::strerror(errno));
        return std::nullopt;
    }
    return text.str();
}

}  // namespace portmux
