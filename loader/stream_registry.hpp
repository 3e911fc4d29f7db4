// What the stream router serves, shared with other portmux processes
// through two pinned maps beside its counters (default_stream_pin_directory):
//   stream_frontends  port -> portmux_stream_frontend: the frontends it
//                     listens on and their backends (read by `status`);
//   stream_drained    array by port -> 1 when drained (written by `drain`
//                     and `undrain`, read by the router, which maps it into
//                     its memory: no syscall per decision).
// Both are made by the router in user space; no BPF program uses them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <vector>

#include "bpf_handles.hpp"
#include "config.hpp"

namespace portmux {

// One stream frontend as `portmux status` shows it.
struct StreamFrontendStatus {
    std::uint16_t port = 0;
    bool routed = false;
    bool validated = false;
    bool proxy_v2 = false;
    std::uint16_t first_data_timeout = 0;
    std::vector<std::pair<std::uint16_t, bool>> backends;  // port, drained
};

class StreamRegistry {
public:
    // Creates both maps; pins them in PIN_DIR when it is not empty (an
    // existing pin, left by a router that was killed, is replaced).
    // Throws std::runtime_error.
    explicit StreamRegistry(const std::filesystem::path& pin_dir);
    ~StreamRegistry();
    StreamRegistry(const StreamRegistry&) = delete;
    StreamRegistry& operator=(const StreamRegistry&) = delete;

    // Makes `stream_frontends` hold exactly FRONTENDS.
    void publish(const std::vector<Frontend>& frontends);

    bool drained(std::uint16_t port) const;

    // Removes the pins (the maps live on while this object does).
    void unpin();

private:
    std::filesystem::path pin_dir_;
    bool pinned_ = false;
    UniqueFd frontends_;
    UniqueFd drained_;
    const volatile std::uint8_t* drained_memory_ = nullptr;  // 8 bytes per port
    std::vector<std::uint16_t> published_;
};

// The frontends a running router published at DIR; empty when none runs.
std::vector<StreamFrontendStatus> read_pinned_stream_frontends(const std::filesystem::path& dir);

struct StreamDrainResult {
    std::size_t found = 0;    // stream frontends that have PORT as a backend
    std::size_t changed = 0;  // of those, whose drain state this changed
};

// Drains or undrains PORT for the router at DIR: new connections are no
// longer sent there (spliced ones carry on). Nothing happens, and found is
// 0, when no router runs or none of its frontends has PORT as a backend.
StreamDrainResult set_stream_drained(const std::filesystem::path& dir, std::uint16_t port,
                                     bool drained);

}  // namespace portmux
