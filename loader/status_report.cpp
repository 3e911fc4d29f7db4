#include "status_report.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace portmux {
namespace {

std::string backend_label(const Backend& backend) {
    std::string label = std::to_string(backend.port);
    if (backend.weight == 0) {
        label += " (route only)";
    } else if (backend.weight != 1) {
        label += fmt::format(" (weight {})", backend.weight);
    }
    if (backend.drained) {
        label += " (drained)";
    }
    // Liveness as `portmux run` last measured it from the socket table.
    if (!backend.up_v4 && !backend.up_v6) {
        label += " (down)";
    } else if (!backend.up_v4) {
        label += " (down for IPv4)";
    } else if (!backend.up_v6) {
        label += " (down for IPv6)";
    }
    return label;
}

std::string backends_label(const Frontend& frontend) {
    std::vector<std::string> labels;
    for (const Backend& backend : frontend.backends) {
        labels.push_back(backend_label(backend));
    }
    return fmt::format("{}", fmt::join(labels, ", "));
}

std::string bytes_label(const std::vector<std::uint8_t>& bytes) {
    const bool printable = std::all_of(bytes.begin(), bytes.end(),
                                       [](std::uint8_t b) { return b >= 0x20 && b < 0x7f; });
    if (printable) {
        return fmt::format("\"{}\"", std::string(bytes.begin(), bytes.end()));
    }
    return fmt::format("0x{:02x}", fmt::join(bytes, ""));
}

// One line per policy beyond plain round robin.
std::vector<std::string> policy_lines(const Frontend& frontend) {
    std::vector<std::string> lines;
    if (frontend.affinity == Affinity::client) {
        lines.push_back(
            fmt::format("affinity: client address, idle timeout {} s", frontend.flow_idle_seconds));
    } else if (frontend.protocol == Protocol::tcp) {
        lines.push_back("affinity: connection (flow table)");
    } else if (frontend.affinity == Affinity::flow) {
        lines.push_back(
            fmt::format("affinity: flow, idle timeout {} s", frontend.flow_idle_seconds));
    }
    if (frontend.validate) {
        std::string line = fmt::format("validate: payload {}..{} bytes",
                                       frontend.validate->min_payload,
                                       frontend.validate->max_payload);
        for (const ByteMatch& match : frontend.validate->matches) {
            line += fmt::format(", bytes {} at offset {}", bytes_label(match.value), match.offset);
        }
        lines.push_back(line);
    }
    if (frontend.route) {
        std::vector<std::string> tags;
        for (const RouteTag& tag : frontend.route->tags) {
            tags.push_back(fmt::format("{} -> {}", bytes_label(tag.tag), tag.backend_port));
        }
        lines.push_back(fmt::format("route: {} byte tag at offset {}: {}; unknown tags: {}",
                                    frontend.route->length, frontend.route->offset,
                                    fmt::join(tags, ", "),
                                    frontend.route->unknown == UnknownTagAction::drop
                                        ? "drop"
                                        : "round robin"));
    }
    return lines;
}

nlohmann::json frontend_json(const Frontend& frontend) {
    nlohmann::json backends = nlohmann::json::array();
    for (const Backend& backend : frontend.backends) {
        backends.push_back({{"port", backend.port},
                            {"weight", backend.weight},
                            {"drained", backend.drained},
                            {"up", {{"ipv4", backend.up_v4}, {"ipv6", backend.up_v6}}}});
    }
    nlohmann::json out{{"port", frontend.port},
                       {"protocol", to_string(frontend.protocol)},
                       {"affinity", frontend.affinity == Affinity::client ? "client"
                                    : frontend.protocol == Protocol::tcp   ? "connection"
                                    : frontend.affinity == Affinity::flow  ? "flow"
                                                                           : "packet"},
                       {"backends", std::move(backends)}};
    if (frontend.affinity != Affinity::packet) {
        out["flow_idle_timeout"] = frontend.flow_idle_seconds;
    }
    if (frontend.protocol == Protocol::udp) {
        out["reply_translation"] = frontend.reply_translation;
    }
    if (frontend.validate) {
        nlohmann::json matches = nlohmann::json::array();
        for (const ByteMatch& match : frontend.validate->matches) {
            matches.push_back({{"offset", match.offset},
                               {"hex", fmt::format("{:02x}", fmt::join(match.value, ""))},
                               {"mask", fmt::format("{:02x}", fmt::join(match.mask, ""))}});
        }
        out["validate"] = {{"min_length", frontend.validate->min_payload},
                           {"max_length", frontend.validate->max_payload},
                           {"match", std::move(matches)}};
    }
    if (frontend.route) {
        nlohmann::json tags = nlohmann::json::array();
        for (const RouteTag& tag : frontend.route->tags) {
            tags.push_back({{"hex", fmt::format("{:02x}", fmt::join(tag.tag, ""))},
                            {"backend", tag.backend_port}});
        }
        out["route"] = {{"offset", frontend.route->offset},
                        {"length", frontend.route->length},
                        {"unknown", frontend.route->unknown == UnknownTagAction::drop
                                        ? "drop"
                                        : "round-robin"},
                        {"tags", std::move(tags)}};
    }
    return out;
}

}  // namespace

std::string status_table(const std::vector<InterfaceStatus>& interfaces) {
    if (interfaces.empty()) {
        return "portmux is not attached to any interface\n";
    }
    std::string out;
    for (const InterfaceStatus& status : interfaces) {
        if (status.program_attached) {
            out += fmt::format("{}: XDP attached, {} mode, {} attachment, program id {}\n",
                               status.iface, status.mode, status.attachment, status.program_id);
        } else {
            out += fmt::format(
                "{}: pins present but no portmux XDP program on the interface (run `portmux "
                "detach {}`)\n",
                status.iface, status.iface);
        }
        out += status.tc_attached
                   ? fmt::format("  TC egress reply translation attached ({}), program id {}\n",
                                 status.tc_attachment, status.tc_program_id)
               : status.tc_needed || !status.incomplete.empty()
                   ? std::string("  TC egress reply translation NOT attached\n")
                   : std::string("  TC egress reply translation not attached: no frontend "
                                 "translates replies\n");
        if (!status.incomplete.empty()) {
            out += fmt::format("  incomplete attachment ({}); run `portmux detach {}`\n",
                               status.incomplete, status.iface);
            continue;
        }
        out += fmt::format("  {:<10} {:<6} {}\n", "FRONTEND", "PROTO", "BACKENDS");
        for (const Frontend& frontend : status.frontends) {
            out += fmt::format("  {:<10} {:<6} {}\n", frontend.port, to_string(frontend.protocol),
                               backends_label(frontend));
            for (const std::string& line : policy_lines(frontend)) {
                out += fmt::format("  {:<17} {}\n", "", line);
            }
        }
    }
    return out;
}

nlohmann::json status_json(const std::vector<InterfaceStatus>& interfaces) {
    nlohmann::json list = nlohmann::json::array();
    for (const InterfaceStatus& status : interfaces) {
        nlohmann::json frontends = nlohmann::json::array();
        for (const Frontend& frontend : status.frontends) {
            frontends.push_back(frontend_json(frontend));
        }
        list.push_back({{"interface", status.iface},
                        {"attached", status.program_attached},
                        {"mode", status.mode},
                        {"attachment", status.attachment},
                        {"program_id", status.program_id},
                        {"tc_attached", status.tc_attached},
                        {"tc_needed", status.tc_needed},
                        {"tc_program_id", status.tc_program_id},
                        {"incomplete", status.incomplete},
                        {"frontends", std::move(frontends)}});
        if (status.flow_table_size != 0) {
            list.back()["flow_table_size"] = status.flow_table_size;
        }
    }
    return {{"interfaces", std::move(list)}};
}

namespace {

std::string stream_rules_label(const StreamFrontendStatus& frontend) {
    std::vector<std::string> rules;
    if (frontend.validated) {
        rules.push_back("validate");
    }
    if (frontend.routed) {
        rules.push_back("route");
    }
    if (frontend.proxy_v2) {
        rules.push_back("PROXY v2");
    }
    return fmt::format("{}; first_data_timeout {} s", fmt::join(rules, ", "),
                       frontend.first_data_timeout);
}

}  // namespace

std::string stream_status_table(const std::vector<StreamFrontendStatus>& frontends) {
    if (frontends.empty()) {
        return {};
    }
    std::string out = "stream router (TCP frontends routed by their first bytes, all addresses):\n";
    out += fmt::format("  {:<10} {:<6} {}\n", "FRONTEND", "PROTO", "BACKENDS");
    for (const StreamFrontendStatus& frontend : frontends) {
        std::vector<std::string> backends;
        for (const auto& [port, drained] : frontend.backends) {
            backends.push_back(drained ? fmt::format("{} (drained)", port) : std::to_string(port));
        }
        out += fmt::format("  {:<10} {:<6} {}\n", frontend.port, "stream", fmt::join(backends, ", "));
        out += fmt::format("  {:<17} {}\n", "", stream_rules_label(frontend));
    }
    return out;
}

nlohmann::json stream_status_json(const std::vector<StreamFrontendStatus>& frontends) {
    nlohmann::json out = nlohmann::json::array();
    for (const StreamFrontendStatus& frontend : frontends) {
        nlohmann::json backends = nlohmann::json::array();
        for (const auto& [port, drained] : frontend.backends) {
            backends.push_back({{"port", port}, {"drained", drained}});
        }
        out.push_back({{"port", frontend.port},
                       {"protocol", "tcp"},
                       {"validate", frontend.validated},
                       {"route", frontend.routed},
                       {"proxy_protocol", frontend.proxy_v2 ? "v2" : ""},
                       {"first_data_timeout", frontend.first_data_timeout},
                       {"backends", std::move(backends)}});
    }
    return out;
}

}  // namespace portmux
