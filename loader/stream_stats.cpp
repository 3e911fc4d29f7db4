#include "stream_stats.hpp"

#include <fmt/format.h>

#include "first_bytes.hpp"
#include "stats.hpp"

namespace portmux {
namespace {

constexpr PrometheusCounter kAccepted{
    "portmux_stream_accepted_connections_total", "TCP connections accepted on a stream frontend."};
constexpr PrometheusCounter kRouted{
    "portmux_stream_routed_connections_total",
    "Connections handed to a backend."};
constexpr PrometheusCounter kServed{
    "portmux_stream_served_connections_total",
    "Routed connections by how they were relayed: spliced (sockmap), fallback (splice(2)), or "
    "unspliced (ended in the first exchange, whose reply the router copied)."};
constexpr PrometheusCounter kRefused{
    "portmux_stream_refused_connections_total",
    "Connections closed (RST) without a backend, by reason."};
constexpr PrometheusCounter kBytes{
    "portmux_stream_bytes_total", "Bytes relayed between client and backend, by direction."};
constexpr PrometheusCounter kCopied{
    "portmux_stream_copied_bytes_total",
    "Of those, bytes the router copied itself (splice(2) fallback, or held under backpressure), "
    "by direction."};

}  // namespace

std::string stream_stats_table(const std::vector<StreamFrontendStats>& frontends) {
    if (frontends.empty()) {
        return {};
    }
    std::string out = "stream frontends (TCP, routed by first bytes):\n";
    for (const StreamFrontendStats& frontend : frontends) {
        std::string refused;
        std::uint64_t refused_total = 0;
        for (std::size_t reason = 0; reason < PORTMUX_REFUSAL_REASONS; ++reason) {
            refused_total += frontend.refused[reason];
            if (frontend.refused[reason] != 0) {
                refused += fmt::format("{}{} {}", refused.empty() ? " (" : ", ",
                                       refusal_name(reason), frontend.refused[reason]);
            }
        }
        out += fmt::format(
            "  frontend {}/tcp: accepted {}, spliced {}, fallback {}, unspliced {}, refused {}{}\n",
            frontend.port, frontend.accepted, frontend.spliced, frontend.fallback,
            frontend.unspliced, refused_total, refused.empty() ? "" : refused + ")");
        for (const StreamBackendStats& backend : frontend.backends) {
            out += fmt::format("    backend {:<6} {:>10} connections {:>10} refused {:>16} bytes in "
                               "{:>16} bytes out\n",
                               backend.port, backend.routed, backend.refused,
                               backend.bytes_to_backend, backend.bytes_to_client);
        }
    }
    return out;
}

nlohmann::json stream_stats_json(const std::vector<StreamFrontendStats>& frontends) {
    nlohmann::json list = nlohmann::json::array();
    for (const StreamFrontendStats& frontend : frontends) {
        nlohmann::json refused = nlohmann::json::object();
        for (std::size_t reason = 0; reason < PORTMUX_REFUSAL_REASONS; ++reason) {
            refused[std::string(refusal_name(reason))] = frontend.refused[reason];
        }
        nlohmann::json backends = nlohmann::json::array();
        for (const StreamBackendStats& backend : frontend.backends) {
            backends.push_back({{"port", backend.port},
                                {"connections", backend.routed},
                                {"refused", backend.refused},
                                {"bytes_to_backend", backend.bytes_to_backend},
                                {"bytes_to_client", backend.bytes_to_client},
                                {"copied_to_backend", backend.copied_to_backend},
                                {"copied_to_client", backend.copied_to_client},
                                {"overlaps_trimmed", backend.overlaps_trimmed}});
        }
        list.push_back({{"port", frontend.port},
                        {"protocol", "tcp"},
                        {"accepted", frontend.accepted},
                        {"spliced", frontend.spliced},
                        {"fallback", frontend.fallback},
                        {"unspliced", frontend.unspliced},
                        {"refused", std::move(refused)},
                        {"backends", std::move(backends)}});
    }
    return list;
}

std::string stream_stats_prometheus(const std::vector<StreamFrontendStats>& frontends) {
    if (frontends.empty()) {
        return {};
    }
    std::string out;
    append_counter_header(out, kAccepted);
    for (const StreamFrontendStats& frontend : frontends) {
        out += fmt::format("{}{{frontend=\"{}\"}} {}\n", kAccepted.name, frontend.port,
                           frontend.accepted);
    }
    append_counter_header(out, kRouted);
    for (const StreamFrontendStats& frontend : frontends) {
        for (const StreamBackendStats& backend : frontend.backends) {
            out += fmt::format("{}{{frontend=\"{}\",backend=\"{}\"}} {}\n", kRouted.name,
                               frontend.port, backend.port, backend.routed);
        }
    }
    append_counter_header(out, kServed);
    for (const StreamFrontendStats& frontend : frontends) {
        for (const auto& [how, count] : {std::pair{"spliced", frontend.spliced},
                                         std::pair{"fallback", frontend.fallback},
                                         std::pair{"unspliced", frontend.unspliced}}) {
            out += fmt::format("{}{{frontend=\"{}\",how=\"{}\"}} {}\n", kServed.name,
                               frontend.port, how, count);
        }
    }
    append_counter_header(out, kRefused);
    for (const StreamFrontendStats& frontend : frontends) {
        for (std::size_t reason = 0; reason < PORTMUX_REFUSAL_REASONS; ++reason) {
            out += fmt::format("{}{{frontend=\"{}\",reason=\"{}\"}} {}\n", kRefused.name,
                               frontend.port, refusal_name(reason), frontend.refused[reason]);
        }
    }
    // One counter per backend and direction, picked from StreamBackendStats.
    const auto by_direction = [&](const PrometheusCounter& metric, std::uint64_t StreamBackendStats::*to_backend,
                                  std::uint64_t StreamBackendStats::*to_client) {
        append_counter_header(out, metric);
        for (const StreamFrontendStats& frontend : frontends) {
            for (const StreamBackendStats& backend : frontend.backends) {
                for (const auto& [direction, count] :
                     {std::pair{"to_backend", backend.*to_backend},
                      std::pair{"to_client", backend.*to_client}}) {
                    out += fmt::format("{}{{frontend=\"{}\",backend=\"{}\",direction=\"{}\"}} {}\n",
                                       metric.name, frontend.port, backend.port, direction, count);
                }
            }
        }
    };
    by_direction(kBytes, &StreamBackendStats::bytes_to_backend, &StreamBackendStats::bytes_to_client);
    by_direction(kCopied, &StreamBackendStats::copied_to_backend,
                 &StreamBackendStats::copied_to_client);
    return out;
}

}  // namespace portmux
