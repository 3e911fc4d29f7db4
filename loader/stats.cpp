#include "stats.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <numeric>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "reload_plan.hpp"

namespace portmux {

std::uint64_t FrontendStats::forwarded() const {
    return std::accumulate(backends.begin(), backends.end(), retired.packets,
                           [](std::uint64_t sum, const BackendStats& b) { return sum + b.packets; });
}

std::uint64_t FrontendStats::dropped() const {
    return std::accumulate(drops.begin(), drops.end(), std::uint64_t{0});
}

std::string_view drop_reason_name(std::size_t reason) {
    static constexpr std::array<std::string_view, PORTMUX_DROP_REASONS> names{
        "too_short", "too_long", "magic_mismatch", "unknown_tag", "no_backend", "beyond_first_fragment"};
    return reason < names.size() ? names[reason] : "unknown";
}

std::vector<FrontendStats> read_stats(const DataPathMaps& maps) {
    return read_stats(maps, read_frontends(maps));
}

std::vector<FrontendStats> read_stats(const DataPathMaps& maps,
                                      const std::vector<InstalledFrontend>& frontends) {
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) {
        throw std::system_error(-cpus, std::generic_category(), "counting possible CPUs");
    }
    std::vector<portmux_frontend_state> per_cpu(static_cast<std::size_t>(cpus));
    std::vector<FrontendStats> all;
    for (const InstalledFrontend& installed : frontends) {
        const std::uint32_t slot = installed.slot;
        if (bpf_map_lookup_elem(maps.frontend_state, &slot, per_cpu.data()) != 0) {
            throw std::system_error(errno, std::generic_category(),
                                    fmt::format("reading counters of frontend slot {}", slot));
        }
        FrontendStats stats;
        stats.port = installed.frontend.port;
        stats.protocol = installed.frontend.protocol;
        for (const Backend& backend : installed.frontend.backends) {
            stats.backends.push_back(
                {backend.port, 0, 0, backend.drained, backend.up_v4, backend.up_v6});
        }
        SlotCounts counts{};
        for (const portmux_frontend_state& cpu : per_cpu) {
            stats.received += cpu.received;
            for (std::size_t r = 0; r < stats.drops.size(); ++r) {
                stats.drops[r] += cpu.drops[r];
            }
            for (std::size_t c = 0; c < PORTMUX_COUNTER_SLOTS; ++c) {
                counts[c].packets += cpu.backends[c].packets;
                counts[c].bytes += cpu.backends[c].bytes;
            }
        }
        portmux_counter_bases bases{};
        if (maps.counter_bases >= 0 && bpf_map_lookup_elem(maps.counter_bases, &slot, &bases) != 0) {
            throw std::system_error(errno, std::generic_category(),
                                    fmt::format("reading the counter bases of frontend slot {}", slot));
        }
        std::vector<std::uint8_t> slots = installed.counter_slots;
        for (std::size_t b = slots.size(); b < stats.backends.size(); ++b) {
            slots.push_back(static_cast<std::uint8_t>(b));  // by position
        }
        slots.resize(stats.backends.size());
        const FrontendCounts shown = frontend_counts(counts, bases, slots);
        for (std::size_t b = 0; b < stats.backends.size(); ++b) {
            stats.backends[b].packets = shown.backends[b].packets;
            stats.backends[b].bytes = shown.backends[b].bytes;
        }
        stats.retired.packets = shown.removed.packets;
        stats.retired.bytes = shown.removed.bytes;
        all.push_back(std::move(stats));
    }
    return all;
}

namespace {

// "  (drained, down)" and the like; empty for a backend taking traffic.
std::string backend_state(const BackendStats& backend) {
    std::vector<std::string> notes;
    if (backend.drained) {
        notes.emplace_back("drained");
    }
    if (!backend.up_v4 && !backend.up_v6) {
        notes.emplace_back("down");
    } else if (!backend.up_v4) {
        notes.emplace_back("down for IPv4");
    } else if (!backend.up_v6) {
        notes.emplace_back("down for IPv6");
    }
    return notes.empty() ? "" : fmt::format("  ({})", fmt::join(notes, ", "));
}

}  // namespace

std::string stats_table(const std::string& iface, const std::vector<FrontendStats>& stats) {
    std::string out = fmt::format("{}:\n", iface);
    for (const FrontendStats& frontend : stats) {
        out += fmt::format("  frontend {}/{}: received {}, forwarded {}, dropped {}\n",
                           frontend.port, to_string(frontend.protocol), frontend.received,
                           frontend.forwarded(), frontend.dropped());
        for (const BackendStats& backend : frontend.backends) {
            out += fmt::format("    backend {:<6} {:>12} packets {:>14} bytes{}\n", backend.port,
                               backend.packets, backend.bytes, backend_state(backend));
        }
        if (frontend.retired.packets) {
            out += fmt::format("    {:<14} {:>12} packets {:>14} bytes\n", "removed backends",
                               frontend.retired.packets, frontend.retired.bytes);
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
            backends.push_back({{"port", backend.port},
                                {"packets", backend.packets},
                                {"bytes", backend.bytes},
                                {"drained", backend.drained},
                                {"up", {{"ipv4", backend.up_v4}, {"ipv6", backend.up_v6}}}});
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
                        {"removed_backends",
                         {{"packets", frontend.retired.packets}, {"bytes", frontend.retired.bytes}}},
                        {"backends", std::move(backends)}});
    }
    return list;
}

// Label values may hold any byte; the format escapes backslash, quote and newline.
std::string prometheus_label_value(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

void append_counter_header(std::string& out, const PrometheusCounter& counter) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", counter.name, counter.help, counter.name);
}

namespace {

constexpr PrometheusCounter kReceived{"portmux_received_packets_total",
                                      "Packets addressed to a frontend."};
constexpr PrometheusCounter kForwarded{"portmux_forwarded_packets_total",
                                       "Packets sent to a backend."};
constexpr PrometheusCounter kForwardedBytes{"portmux_forwarded_bytes_total",
                                            "Bytes (whole frames) sent to a backend."};
constexpr PrometheusCounter kDropped{"portmux_dropped_packets_total",
                                     "Packets dropped at XDP, by reason."};

std::string frontend_labels(const std::string& iface, const FrontendStats& frontend) {
    return fmt::format("iface=\"{}\",frontend=\"{}\",protocol=\"{}\"", prometheus_label_value(iface),
                       frontend.port, to_string(frontend.protocol));
}

const FrontendStats* find_frontend(const std::vector<InterfaceStats>& all, const std::string& iface,
                                   const FrontendStats& like) {
    for (const InterfaceStats& entry : all) {
        if (entry.iface != iface) {
            continue;
        }
        for (const FrontendStats& frontend : entry.frontends) {
            if (frontend.port == like.port && frontend.protocol == like.protocol) {
                return &frontend;
            }
        }
    }
    return nullptr;
}

double rate(std::uint64_t before, std::uint64_t after, double seconds) {
    return after >= before && seconds > 0 ? static_cast<double>(after - before) / seconds : 0.0;
}

std::string human(double value, const char* unit) {
    static constexpr const char* prefixes[] = {"", "k", "M", "G", "T"};
    std::size_t i = 0;
    while (value >= 1000.0 && i + 1 < std::size(prefixes)) {
        value /= 1000.0;
        ++i;
    }
    return fmt::format("{:.1f} {}{}", value, prefixes[i], unit);
}

}  // namespace

std::string stats_prometheus(const std::vector<InterfaceStats>& interfaces) {
    std::string out;
    append_counter_header(out, kReceived);
    for (const InterfaceStats& entry : interfaces) {
        for (const FrontendStats& frontend : entry.frontends) {
            out += fmt::format("{}{{{}}} {}\n", kReceived.name, frontend_labels(entry.iface, frontend),
                               frontend.received);
        }
    }
    for (const PrometheusCounter* metric : {&kForwarded, &kForwardedBytes}) {
        append_counter_header(out, *metric);
        for (const InterfaceStats& entry : interfaces) {
            for (const FrontendStats& frontend : entry.frontends) {
                for (const BackendStats& backend : frontend.backends) {
                    out += fmt::format("{}{{{},backend=\"{}\"}} {}\n", metric->name,
                                       frontend_labels(entry.iface, frontend), backend.port,
                                       metric == &kForwarded ? backend.packets : backend.bytes);
                }
                // Traffic of backends a reload removed keeps the totals whole.
                if (frontend.retired.packets) {
                    out += fmt::format("{}{{{},backend=\"removed\"}} {}\n", metric->name,
                                       frontend_labels(entry.iface, frontend),
                                       metric == &kForwarded ? frontend.retired.packets
                                                             : frontend.retired.bytes);
                }
            }
        }
    }
    append_counter_header(out, kDropped);
    for (const InterfaceStats& entry : interfaces) {
        for (const FrontendStats& frontend : entry.frontends) {
            for (std::size_t r = 0; r < frontend.drops.size(); ++r) {
                out += fmt::format("{}{{{},reason=\"{}\"}} {}\n", kDropped.name,
                                   frontend_labels(entry.iface, frontend), drop_reason_name(r),
                                   frontend.drops[r]);
            }
        }
    }
    return out;
}

std::string rates_table(const std::vector<InterfaceStats>& before,
                        const std::vector<InterfaceStats>& after, double seconds) {
    std::string out = fmt::format("{:<10} {:<16} {:<10} {:>14} {:>14} {:>12}\n", "IFACE",
                                  "FRONTEND", "BACKEND", "PACKETS/S", "BITS/S", "DROPS/S");
    for (const InterfaceStats& entry : after) {
        for (const FrontendStats& frontend : entry.frontends) {
            const FrontendStats* earlier = find_frontend(before, entry.iface, frontend);
            const FrontendStats zero;
            const FrontendStats& old = earlier ? *earlier : zero;
            const std::string name = fmt::format("{}/{}", frontend.port, to_string(frontend.protocol));
            out += fmt::format("{:<10} {:<16} {:<10} {:>14} {:>14} {:>12}\n", entry.iface, name, "all",
                               human(rate(old.forwarded(), frontend.forwarded(), seconds), "p/s"),
                               "",
                               human(rate(old.dropped(), frontend.dropped(), seconds), "p/s"));
            for (std::size_t b = 0; b < frontend.backends.size(); ++b) {
                const BackendStats& now = frontend.backends[b];
                const bool same = b < old.backends.size() && old.backends[b].port == now.port;
                const BackendStats prev = same ? old.backends[b] : BackendStats{now.port, 0, 0};
                out += fmt::format("{:<10} {:<16} {:<10} {:>14} {:>14} {:>12}\n", "", "", now.port,
                                   human(rate(prev.packets, now.packets, seconds), "p/s"),
                                   human(8 * rate(prev.bytes, now.bytes, seconds), "b/s"), "");
            }
            for (std::size_t r = 0; r < frontend.drops.size(); ++r) {
                const double per_second = rate(old.drops[r], frontend.drops[r], seconds);
                if (per_second > 0) {
                    out += fmt::format("{:<10} {:<16} {:<10} {:>14} {:>14} {:>12}\n", "", "",
                                       drop_reason_name(r), "", "", human(per_second, "p/s"));
                }
            }
        }
    }
    return out;
}

}  // namespace portmux
