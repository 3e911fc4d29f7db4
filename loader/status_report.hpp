// Rendering `portmux status` as a table or as JSON.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attachment.hpp"
#include "stream_registry.hpp"

namespace portmux {

std::string status_table(const std::vector<InterfaceStatus>& interfaces);
nlohmann::json status_json(const std::vector<InterfaceStatus>& interfaces);

// The TCP frontends served by a running stream router (empty: "").
std::string stream_status_table(const std::vector<StreamFrontendStatus>& frontends);
nlohmann::json stream_status_json(const std::vector<StreamFrontendStatus>& frontends);

}  // namespace portmux
