#include "stats.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <numeric>
#include <system_error>

#include <fmt/format.h>

namespace portmux {

std::uint64_t FrontendStats::forwarded() const {
    return std::accumulate(backends.begin(), backends.end(), std::uint64_t{0},
                           [](std::uint64_t sum, const BackendStats& b) { return sum + b.packets; });
}

std::uint64_t FrontendStats::dropped() const {
    return std::accumulate(drops.begin(), drops.end(), std::uint64_t{0});
}

std::string_view drop_reason_name(std::size_t reason) {
    static constexpr std::array<std::string_view, PORTMUX_DROP_REASONS> names{
        "too_short", "too_long", "magic_mismatch", "unknown_tag", "no_backend"};
    return reason < names.size() ? names[reason] : "unknown";
}

std::vector<FrontendStats> read_stats(const DataPathMaps& maps) {
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) {
        throw std::system_error(-cpus, std::generic_category(), "counting possible CPUs");
    }
    std::vector<portmux_frontend_state> per_cpu(static_cast<std::size_t>(cpus));
    std::vector<FrontendStats> all;
    for (const InstalledFrontend& installed : read_frontends(maps)) {
        const std::uint32_t slot = installed.slot;
        if (bpf_map_lookup_elem(maps.frontend_state, &slot, per_cpu.data()) != 0) {
            throw std::system_error(errno, std::generic_category(),
                                    fmt::format("reading counters of frontend slot {}", slot));
        }
        FrontendStats stats;
        stats.port = installed.frontend.port;
        stats.protocol = installed.frontend.protocol;
        for (const Backend& backend : installed.frontend.backends) {
            stats.backends.push_back({backend.port, 0, 0});
        }
        for (const portmux_frontend_state& cpu : per_cpu) {
            stats.received += cpu.received;
            for (std::size_t r = 0; r < stats.drops.size(); ++r) {
                stats.drops[r] += cpu.drops[r];
            }
            for (std::size_t b = 0; b < stats.backends.size(); ++b) {
                stats.backends[b].packets += cpu.backends[b].packets;
                stats.backends[b].bytes += cpu.backends[b].bytes;
            }
        }
        all.push_back(std::move(stats));
    }
    return all;
}

std::string stats_table(const std::string& iface, const std::vector<FrontendStats>& stats) {
    std::string out = fmt::format("{}:\n", iface);
    for (const FrontendStats& frontend : stats) {
        out += fmt::format("  frontend {}/{}: received {}, forwarded {}, dropped {}\n",
                           frontend.port, to_string(frontend.protocol), frontend.received,
                           frontend.forwarded(), frontend.dropped());
        for (const BackendStats& backend : frontend.backends) {
            out += fmt::format("    backend {:<6} {:>12} packets {:>14} bytes\n", backend.port,
                               backend.packets, backend.bytes);
        }
        for (std::size_t r = 0; r < frontend.drops.size(); ++r) {
            if (frontend.drops[r]) {
                out += fmt::format("    dropped {:<15} {:>8} packets\n", drop_reason_name(r),
                                   frontend.drops[r]);
            }
        }
    }
    return out;
}

nlohmann::json stats_json(const std::vector<FrontendStats>& stats) {
    nlohmann::json list = nlohmann::json::array();
    for (const FrontendStats& frontend : stats) {
        nlohmann::json backends = nlohmann::json::array();
        for (const BackendStats& backend : frontend.backends) {
            backends.push_back(
                {{"port", backend.port}, {"packets", backend.packets}, {"bytes", backend.bytes}});
        }
        nlohmann::json drops = nlohmann::json::object();
        for (std::size_t r = 0; r < frontend.drops.size(); ++r) {
            drops[std::string(drop_reason_name(r))] = frontend.drops[r];
        }
        list.push_back({{"port", frontend.port},
                        {"protocol", to_string(frontend.protocol)},
                        {"received", frontend.received},
                        {"forwarded", frontend.forwarded()},
                        {"dropped", frontend.dropped()},
                        {"drops", std::move(drops)},
                        {"backends", std::move(backends)}});
    }
    return list;
}

}  // namespace portmux
