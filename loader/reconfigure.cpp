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

// Runtime state outlives a reload for every backend that remains: an
// operator's drain, and the liveness `portmux run` measured (a CLI reload
// does not know it). New backends are undrained and keep the liveness the
// new config gives them.
void keep_runtime_state(Config& config, const Config& installed) {
    std::map<std::tuple<Protocol, std::uint16_t, std::uint16_t>, const Backend*> before;
    for (const Frontend& frontend : installed.frontends) {
        for (const Backend& backend : frontend.backends) {
            before[{frontend.protocol, frontend.port, backend.port}] = &backend;
        }
    }
    for (Frontend& frontend : config.frontends) {
        for (Backend& backend : frontend.backends) {
            auto it = before.find({frontend.protocol, frontend.port, backend.port});
            backend.drained = it != before.end() && it->second->drained;
            if (it != before.end()) {
                backend.up_v4 = it->second->up_v4;
                backend.up_v6 = it->second->up_v6;
            }
        }
    }
}

}  // namespace

void reload(const StateLock& lock, const std::string& iface, Config config) {
    config = xdp_frontends(config);  // stream frontends are the stream router's
    const PinnedMaps maps = open_pinned_maps(iface);
    require_live_attachment(iface, maps);
    const Config installed = installed_config(maps);
    if (config.flow_table_size != installed.flow_table_size) {
        throw std::runtime_error(fmt::format(
            "flow_table_size is {} on {} and {} in the new config; the table cannot be resized "
            "in place (detach and attach to change it)",
            installed.flow_table_size, iface, config.flow_table_size));
    }
    keep_runtime_state(config, installed);
    // TC egress runs only while some frontend translates replies: on before
    // the frontends that need it are written, off after the last one left.
    // A failed write_config() leaves the old config in force; so does this,
    // for TC egress: turned on only for the new config, it goes off again.
    const bool tc_needed = translates_replies(config);
    const bool tc_was_needed = translates_replies(installed);
    if (tc_needed) {
        set_tc_egress(lock, iface, true);
    }
    try {
        write_config(maps.data_path(), config);
    } catch (const CleanupDeferred&) {
        // The new config is in force: TC egress follows it as on success.
        if (!tc_needed) {
            set_tc_egress(lock, iface, false);
        }
        throw;
    } catch (...) {
        if (tc_needed && !tc_was_needed) {
            try {
                set_tc_egress(lock, iface, false);
            } catch (const std::exception&) {
                // The reload's own error is the one to report.
            }
        }
        throw;
    }
    if (!tc_needed) {
        set_tc_egress(lock, iface, false);
    }
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

std::size_t set_liveness(const StateLock& /*lock*/, const std::string& iface,
                         const LivenessTable& table) {
    const PinnedMaps maps = open_pinned_maps(iface);
    Config config = installed_config(maps);
    const std::size_t changed = apply_liveness(config, table);
    if (changed) {
        write_config(maps.data_path(), config);
    }
    return changed;
}

}  // namespace portmux
