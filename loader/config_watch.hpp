// Noticing that a config file may have changed, whatever way it was
// replaced: written in place, renamed over by an editor, or swapped in by a
// Kubernetes ConfigMap update (FILE -> ..data/FILE, and `..data` a symlink
// renamed over to a new timestamped directory). A watch on the file itself
// would follow the old inode and miss the last two, so this watches the
// directories instead: the one FILE is in and, when FILE is a symlink, the
// one its target resolves into. Any event there is only a hint; the caller
// compares the file's content to what it last loaded.
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>

#include "bpf_handles.hpp"

namespace portmux {

class ConfigWatch {
public:
    // Throws std::system_error when inotify cannot be set up on FILE's directory.
    explicit ConfigWatch(std::filesystem::path file);

    // A descriptor that is readable when events are waiting.
    int fd() const noexcept { return inotify_.get(); }

    // Reads every waiting event; true when any may concern the file. Also
    // re-aims the watches when FILE's symlink target moved to another
    // directory, or a watched directory was removed and has come back.
    bool consume_events();

    // Re-adds watches lost with their directory; cheap, call it now and then.
    void refresh();

    const std::filesystem::path& file() const noexcept { return file_; }

private:
    std::set<std::filesystem::path> wanted_directories() const;

    std::filesystem::path file_;
    UniqueFd inotify_;
    std::set<std::pair<int, std::filesystem::path>> watches_;  // (wd, directory)
};

// The whole content of FILE, or std::nullopt with ERROR set when it cannot
// be read (a missing file in the middle of a swap is a normal case).
std::optional<std::string> read_whole_file(const std::filesystem::path& file, std::string& error);

}  // namespace portmux
