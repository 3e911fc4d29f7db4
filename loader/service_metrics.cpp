#include "service_metrics.hpp"

#include <bpf/bpf.h>

#include <cerrno>
#include <iterator>
#include <system_error>
#include <vector>

#include <fmt/format.h>

namespace portmux {
namespace {

using Out = std::back_insert_iterator<std::string>;

void family_header(Out out, const char* name, const char* type, const char* help) {
    fmt::format_to(out, "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string render_metrics(const MetricsSnapshot& snapshot) {
    std::string text;
    text.reserve(4096 + snapshot.frontends.size() * 1024);
    text += stats_prometheus({{snapshot.iface, snapshot.stats}});
    Out out(text);
    const std::string iface = prometheus_label_value(snapshot.iface);

    family_header(out, "portmux_attached", "gauge",
                  "1 when portmux's program is attached to the interface.");
    fmt::format_to(out, "portmux_attached{{iface=\"{}\",mode=\"{}\",attachment=\"{}\"}} {}\n", iface,
                   prometheus_label_value(snapshot.mode),
                   prometheus_label_value(snapshot.attachment), snapshot.attached ? 1 : 0);

    // Per-backend state, labelled like the traffic counters of stats_prometheus.
    auto backend_labels = [&](const Frontend& frontend, const Backend& backend) {
        return fmt::format("iface=\"{}\",frontend=\"{}\",protocol=\"{}\",backend=\"{}\"", iface,
                           frontend.port, to_string(frontend.protocol), backend.port);
    };
    family_header(out, "portmux_backend_up", "gauge",
                  "1 when a socket on the host can receive the backend's traffic of this address "
                  "family (liveness from the kernel's socket table).");
    for (const InstalledFrontend& installed : snapshot.frontends) {
        for (const Backend& backend : installed.frontend.backends) {
            const std::string labels = backend_labels(installed.frontend, backend);
            fmt::format_to(out, "portmux_backend_up{{{},family=\"ipv4\"}} {}\n", labels,
                           backend.up_v4 ? 1 : 0);
            fmt::format_to(out, "portmux_backend_up{{{},family=\"ipv6\"}} {}\n", labels,
                           backend.up_v6 ? 1 : 0);
        }
    }
    family_header(out, "portmux_backend_drained", "gauge",
                  "1 when an operator drained the backend (portmux drain).");
    for (const InstalledFrontend& installed : snapshot.frontends) {
        for (const Backend& backend : installed.frontend.backends) {
            fmt::format_to(out, "portmux_backend_drained{{{}}} {}\n",
                           backend_labels(installed.frontend, backend), backend.drained ? 1 : 0);
        }
    }
    family_header(out, "portmux_backend_weight", "gauge",
                  "Configured round-robin weight of the backend (0: reached by route tags only).");
    for (const InstalledFrontend& installed : snapshot.frontends) {
        for (const Backend& backend : installed.frontend.backends) {
            fmt::format_to(out, "portmux_backend_weight{{{}}} {}\n",
                           backend_labels(installed.frontend, backend), backend.weight);
        }
    }

    const std::pair<const char*, const std::optional<TableFill>*> tables[] = {
        {"flows", &snapshot.flows}, {"direct_clients", &snapshot.direct_clients}};
    family_header(out, "portmux_table_entries", "gauge",
                  "Entries in the flow-affinity (flows) and direct-client (direct_clients) tables, "
                  "sampled every few seconds.");
    for (const auto& [name, fill] : tables) {
        if (*fill) {
            fmt::format_to(out, "portmux_table_entries{{iface=\"{}\",table=\"{}\"}} {}\n", iface,
                           name, (*fill)->entries);
        }
    }
    family_header(out, "portmux_table_capacity", "gauge",
                  "Capacity of the flows and direct_clients tables; the oldest entries are evicted when "
                  "full.");
    for (const auto& [name, fill] : tables) {
        if (*fill) {
            fmt::format_to(out, "portmux_table_capacity{{iface=\"{}\",table=\"{}\"}} {}\n", iface,
                           name, (*fill)->capacity);
        }
    }

    const ServiceCounters& counters = snapshot.counters;
    family_header(out, "portmux_reloads_total", "counter",
                  "Configs installed by reloads (SIGHUP or a changed file) since the service "
                  "started.");
    fmt::format_to(out, "portmux_reloads_total{{iface=\"{}\"}} {}\n", iface, counters.reloads);
    family_header(out, "portmux_reload_failures_total", "counter",
                  "Reloads refused (invalid config) or failed (install error); the running config "
                  "was kept.");
    fmt::format_to(out, "portmux_reload_failures_total{{iface=\"{}\"}} {}\n", iface,
                   counters.reload_failures);
    family_header(out, "portmux_last_reload_successful", "gauge",
                  "0 when the last reload was refused or failed.");
    fmt::format_to(out, "portmux_last_reload_successful{{iface=\"{}\"}} {}\n", iface,
                   counters.last_reload_ok ? 1 : 0);
    family_header(out, "portmux_last_reload_success_timestamp_seconds", "gauge",
                  "Unix time of the last config installed (attach, adoption or reload).");
    fmt::format_to(out, "portmux_last_reload_success_timestamp_seconds{{iface=\"{}\"}} {:.3f}\n",
                   iface, counters.last_reload_success);

    family_header(out, "portmux_build_info", "gauge", "The portmux version serving the metrics.");
    fmt::format_to(out, "portmux_build_info{{version=\"{}\"}} 1\n",
                   prometheus_label_value(snapshot.version));
    return text;
}

std::uint64_t count_map_entries(int map_fd) {
    bpf_map_info info{};
    __u32 info_length = sizeof info;
    if (bpf_obj_get_info_by_fd(map_fd, &info, &info_length) != 0) {
        throw std::system_error(errno, std::generic_category(), "reading a map's layout");
    }
    // Batched lookup: keys and values in chunks. A hash bucket larger than
    // the chunk fails with ENOSPC; the chunk here is far beyond any bucket.
    constexpr __u32 kChunk = 4096;
    std::vector<std::uint8_t> keys(static_cast<std::size_t>(info.key_size) * kChunk);
    std::vector<std::uint8_t> values(static_cast<std::size_t>(info.value_size) * kChunk);
    std::uint64_t batch_token = 0;
    std::uint64_t count = 0;
    bool first = true;
    for (;;) {
        __u32 got = kChunk;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        const int err = bpf_map_lookup_batch(map_fd, first ? nullptr : &batch_token, &batch_token,
                                             keys.data(), values.data(), &got, &opts);
        const int error = err ? errno : 0;
        if (err && error != ENOENT) {
            if (first && (error == EINVAL || error == ENOTSUP || error == EOPNOTSUPP)) {
                break;  // no batch support: walk the keys below
            }
            throw std::system_error(error, std::generic_category(), "counting map entries");
        }
        count += got;
        first = false;
        if (error == ENOENT) {
            return count;  // the walk reached the end
        }
    }
    count = 0;
    std::vector<std::uint8_t> key(info.key_size);
    std::vector<std::uint8_t> next(info.key_size);
    const void* previous = nullptr;
    while (bpf_map_get_next_key(map_fd, previous, next.data()) == 0) {
        ++count;
        key.swap(next);
        previous = key.data();
    }
    return count;
}

TableFillSampler::TableFillSampler(std::chrono::steady_clock::duration interval)
    : interval_(interval) {}

std::pair<TableFill, TableFill> TableFillSampler::sample(const PinnedMaps& maps) {
    const std::lock_guard guard(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (!taken_ || now - *taken_ >= interval_) {
        auto fill = [](int fd) {
            bpf_map_info info{};
            __u32 length = sizeof info;
            TableFill result;
            if (bpf_obj_get_info_by_fd(fd, &info, &length) == 0) {
                result.capacity = info.max_entries;
            }
            result.entries = count_map_entries(fd);
            return result;
        };
        flows_ = fill(maps.flows.get());
        direct_clients_ = fill(maps.direct_clients.get());
        taken_ = now;
    }
    return {flows_, direct_clients_};
}

}  // namespace portmux
