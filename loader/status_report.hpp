// Rendering `portmux status` as a table or as JSON.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attachment.hpp"

namespace portmux {

std::string status_table(const std::vector<InterfaceStatus>& interfaces);
nlohmann::json status_json(const std::vector<InterfaceStatus>& interfaces);

}  // namespace portmux
