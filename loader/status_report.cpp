#include "status_report.hpp"

#include <fmt/format.h>

namespace portmux {

std::string status_table(const std::vector<InterfaceStatus>& interfaces) {
    if (interfaces.empty()) {
        return "portmux is not attached to any interface\n";
    }
    std::string out;
    for (const InterfaceStatus& status : interfaces) {
        if (status.program_attached) {
            out += fmt::format("{}: attached, {} mode, {} attachment, program id {}\n",
                               status.iface, status.mode, status.attachment, status.program_id);
        } else {
            out += fmt::format(
                "{}: pins present but no portmux program on the interface (run `portmux detach "
                "{}`)\n",
                status.iface, status.iface);
        }
        out += fmt::format("  {:<10} {:<6} {}\n", "FRONTEND", "PROTO", "BACKENDS");
        for (const Frontend& frontend : status.frontends) {
            out += fmt::format("  {:<10} {:<6} {}\n", frontend.port, to_string(frontend.protocol),
                               fmt::join(frontend.backends, ", "));
        }
    }
    return out;
}

nlohmann::json status_json(const std::vector<InterfaceStatus>& interfaces) {
    nlohmann::json list = nlohmann::json::array();
    for (const InterfaceStatus& status : interfaces) {
        nlohmann::json frontends = nlohmann::json::array();
        for (const Frontend& frontend : status.frontends) {
            frontends.push_back({{"port", frontend.port},
                                 {"protocol", to_string(frontend.protocol)},
                                 {"backends", frontend.backends}});
        }
        list.push_back({{"interface", status.iface},
                        {"attached", status.program_attached},
                        {"mode", status.mode},
                        {"attachment", status.attachment},
                        {"program_id", status.program_id},
                        {"frontends", std::move(frontends)}});
    }
    return {{"interfaces", std::move(list)}};
}

}  // namespace portmux
