// Counters of the data path, summed over CPUs.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "maps.hpp"
#include "portmux_shared.h"

namespace portmux {

struct BackendStats {
    std::uint16_t port = 0;
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
    // State when read (not counters): drained, and up per address family.
    bool drained = false;
    bool up_v4 = true;
    bool up_v6 = true;
};

struct FrontendStats {
    std::uint16_t port = 0;
    Protocol protocol = Protocol::udp;
    std::uint64_t received = 0;
    std::array<std::uint64_t, PORTMUX_DROP_REASONS> drops{};
    std::vector<BackendStats> backends;
    // Counted at positions no current backend holds: backends a reload
    // removed from the end of the list. Keeps received = forwarded + dropped.
    BackendStats retired;

    std::uint64_t forwarded() const;
    std::uint64_t dropped() const;
};

// Name of a drop reason as shown to users: "too_short", "unknown_tag", ...
std::string_view drop_reason_name(std::size_t reason);

// Reads and sums the per-CPU counters of every installed frontend.
std::vector<FrontendStats> read_stats(const DataPathMaps& maps);

// The same for frontends already read with read_frontends (one walk of the
// frontends map serves both).
std::vector<FrontendStats> read_stats(const DataPathMaps& maps,
                                      const std::vector<InstalledFrontend>& frontends);

std::string stats_table(const std::string& iface, const std::vector<FrontendStats>& stats);
nlohmann::json stats_json(const std::vector<FrontendStats>& stats);

// Counters of several interfaces in the Prometheus text exposition format
// (what node exporter's textfile collector reads).
struct InterfaceStats {
    std::string iface;
    std::vector<FrontendStats> frontends;
};
std::string stats_prometheus(const std::vector<InterfaceStats>& interfaces);

// A Prometheus label value: any byte, with backslash, quote and newline escaped.
std::string prometheus_label_value(std::string_view text);

// A Prometheus counter family: its name and help text.
struct PrometheusCounter {
    const char* name;
    const char* help;
};

// Appends the family's "# HELP" and "# TYPE ... counter" lines to OUT.
void append_counter_header(std::string& out, const PrometheusCounter& counter);

// Rates between two readings `seconds` apart, as a table for --watch.
std::string rates_table(const std::vector<InterfaceStats>& before,
                        const std::vector<InterfaceStats>& after, double seconds);

}  // namespace portmux
