#include "reconfigure.hpp"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>

#include "attachment.hpp"
#include "maps.hpp"

namespace portmux {
namespace {

std::uint32_t max_entries(int map_fd, const char* name) {
    bpf_map_info info{};
    __u32 length = sizeof info;
    if (bpf_obj_get_info_by_fd(map_fd, &info, &length) != 0) {
        throw std::runtime_error(
            fmt::format("reading the size of the {} map: {}", name, std::strerror(errno)));
    }
    return info.max_entries;
}

Config installed_config(const PinnedMaps& maps) {
    Config config;
    config.flow_table_size = max_entries(maps.flows.get(), "flows");
    for (InstalledFrontend& installed : read_frontends(maps.data_path())) {
        config.frontends.push_back(std::move(installed.frontend));
    }
    return config;
}

// An operator's drain, and the liveness `portmux run` found, outlive a
// reload for every backend that remains; a new backend starts undrained
// and up until run says otherwise.
void keep_drained(Config& config, const Config& installed) {
    std::map<std::tuple<Protocol, std::uint16_t, std::uint16_t>, const Backend*> known;
    for (const Frontend& frontend : installed.frontends) {
        for (const Backend& backend : frontend.backends) {
            known[{frontend.protocol, frontend.port, backend.port}] = &backend;
        }
    }
    for (Frontend& frontend : config.frontends) {
        for (Backend& backend : frontend.backends) {
            const auto it = known.find({frontend.protocol, frontend.port, backend.port});
            backend.drained = it != known.end() && it->second->drained;
            backend.up_v4 = it == known.end() || it->second->up_v4;
            backend.up_v6 = it == known.end() || it->second->up_v6;
        }
    }
}

}  // namespace

void reload(const StateLock& /*lock*/, const std::string& iface, Config config) {
    const PinnedMaps maps = open_pinned_maps(iface);
    require_live_attachment(iface, maps);
    const Config installed = installed_config(maps);
    if (config.flow_table_size != installed.flow_table_size) {
        throw std::runtime_error(fmt::format(
            "flow_table_size is {} on {} and {} in the new config; the table cannot be resized "
            "in place (detach and attach to change it)",
            installed.flow_table_size, iface, config.flow_table_size));
    }
    keep_drained(config, installed);
    write_config(maps.data_path(), config);
}

std::size_t set_drained(const StateLock& /*lock*/, const std::string& iface, std::uint16_t port,
                        bool drained) {
    const PinnedMaps maps = open_pinned_maps(iface);
    require_live_attachment(iface, maps);
    Config config = installed_config(maps);
    std::size_t found = 0;
    std::size_t changed = 0;
    for (Frontend& frontend : config.frontends) {
        for (Backend& backend : frontend.backends) {
            if (backend.port == port) {
                ++found;
                changed += backend.drained != drained;
                backend.drained = drained;
            }
        }
    }
    if (found == 0) {
        throw std::runtime_error(
            fmt::format("port {} is not a backend of any frontend on {}", port, iface));
    }
    write_config(maps.data_path(), config);
    return changed;
}

}  // namespace portmux
