// Writing a Config into the data path's maps and reading it back.
#pragma once

#include <cstdint>
#include <vector>

#include "config.hpp"

namespace portmux {

// File descriptors of the maps that carry a config (owned elsewhere).
struct DataPathMaps {
    int frontends_fd = -1;   // BPF_MAP_TYPE_HASH portmux_frontend_key -> portmux_backend_set
    int rr_cursors_fd = -1;  // BPF_MAP_TYPE_PERCPU_ARRAY u32 -> u32
};

// Installs every frontend of `config` (which must already be validated),
// giving frontend i the cursor slot i, and removes frontends the config no
// longer names. Throws std::system_error naming the map on failure.
void write_config(const DataPathMaps& maps, const Config& config);

// The frontends currently in the map, sorted by (protocol, port).
std::vector<Frontend> read_frontends(int frontends_fd);

}  // namespace portmux
