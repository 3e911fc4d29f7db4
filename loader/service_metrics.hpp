// What `portmux run` serves on /metrics: everything `portmux stats --format
// prometheus` prints, plus the service's own state (attachment, liveness,
// drains, weights, table fill, reloads, build). Rendering is a pure
// function of a snapshot, so it is unit-tested without root; taking the
// snapshot reads the pinned maps.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "attachment.hpp"
#include "liveness.hpp"
#include "maps.hpp"
#include "stats.hpp"

namespace portmux {

// How full an LRU table is. Entries are counted by walking the table, so
// they are sampled (see TableFillSampler), never counted per scrape.
struct TableFill {
    std::uint64_t entries = 0;
    std::uint64_t capacity = 0;
};

// The service's own counters, kept by the run loop.
struct ServiceCounters {
    std::uint64_t reloads = 0;         // successful reloads since start (attach excluded)
    std::uint64_t reload_failures = 0; // refused configs and failed installs
    double last_reload_success = 0;    // Unix time of the last successful load, attach included
    bool last_reload_ok = true;
};

struct MetricsSnapshot {
    std::string iface;
    std::string version;
    bool attached = false;
    std::string mode;        // "native", "generic"
    std::string attachment;  // "legacy (single program)", ...
    std::vector<InstalledFrontend> frontends;  // as installed: weights, drains, liveness
    std::vector<FrontendStats> stats;
    std::optional<TableFill> flows;
    std::optional<TableFill> direct_clients;
    ServiceCounters counters;
};

// The Prometheus text exposition (format 0.0.4) of a snapshot.
std::string render_metrics(const MetricsSnapshot& snapshot);

// Number of entries in a BPF hash map: a batched walk (a few syscalls for
// 64k entries), falling back to walking keys one by one.
std::uint64_t count_map_entries(int map_fd);

// Table fill of the flows and direct_clients maps, recounted at most once per
// interval however often it is asked for. Thread-safe.
class TableFillSampler {
public:
    explicit TableFillSampler(std::chrono::steady_clock::duration interval);
    // The cached figures, recounted first when older than the interval.
    std::pair<TableFill, TableFill> sample(const PinnedMaps& maps);

private:
    std::chrono::steady_clock::duration interval_;
    std::mutex mutex_;
    std::optional<std::chrono::steady_clock::time_point> taken_;
    TableFill flows_;
    TableFill direct_clients_;
};

}  // namespace portmux
