// `portmux run IFACE --config FILE`: the long-running service.
//
// One thread runs the event loop; it alone changes the data path:
//   - at start it attaches, or adopts an existing attachment on IFACE by
//     reloading it to FILE (no gap: every frontend changes in one map update);
//   - SIGHUP, and any change to FILE (watched through its directory, see
//     config_watch.hpp), reloads; an invalid config is refused and logged and
//     the running one stays;
//   - every liveness interval (250 ms) it reads the kernel's socket table
//     (liveness.hpp) and takes backends without a receiving socket out of
//     the rotation, per address family, and back in when one reappears;
//   - SIGTERM or SIGINT stops it: components stop, the attachment is removed
//     (kept with keep_on_exit, for a successor to adopt), exit status 0.
// Every change to the maps happens under the StateLock the CLI verbs take,
// and is made to what the maps hold at that moment (read, change, write),
// never from a copy kept in memory: a `portmux drain` made meanwhile stays.
//
// The metrics server (metrics_server.hpp), when asked for, runs on its own
// thread and only reads the maps, so no client can delay the loop.
//
// Components: other services that live as long as `run` (the TCP
// first-bytes frontends, for one) plug in as a RunComponent:
//   - apply(config) is called on the loop thread after the attach or
//     adoption and after every successful reload, with the config just
//     installed; an exception is logged (event=component_failed) and the
//     installed config stays;
//   - poll_fd()/on_readable() let a component without its own thread hook
//     a descriptor into the loop (on_readable runs on the loop thread and
//     must not block);
//   - stop() is called once on the way out, before the detach.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attachment.hpp"
#include "config.hpp"

namespace portmux {

class RunComponent {
public:
    virtual ~RunComponent() = default;
    // Short name for the log (event=component_failed component=NAME).
    virtual std::string name() const = 0;
    virtual void apply(const Config& config) = 0;
    virtual int poll_fd() const { return -1; }
    virtual void on_readable() {}
    virtual void stop() = 0;
};

struct RunOptions {
    std::string iface;
    std::filesystem::path config_file;
    AttachMode mode = AttachMode::automatic;
    std::optional<std::string> metrics_listen;  // "ADDR:PORT"; no metrics server when empty
    bool keep_on_exit = false;
    std::chrono::milliseconds liveness_interval{250};
    // After a change in the config's directory, how long to wait for more
    // events before reading the file (an editor's several writes, a
    // ConfigMap's several renames).
    std::chrono::milliseconds settle_time{100};
    std::string version;  // for portmux_build_info
};

// Runs the service until SIGTERM or SIGINT. Returns the exit status: 0
// after a signal, 1 when it could not start (the reason is logged).
int run_service(const RunOptions& options,
                std::vector<std::unique_ptr<RunComponent>> components = {});

}  // namespace portmux
