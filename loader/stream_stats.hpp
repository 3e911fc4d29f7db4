// The stream router's counters as `portmux stats` and /metrics show them.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stream_router.hpp"

namespace portmux {

std::string stream_stats_table(const std::vector<StreamFrontendStats>& frontends);
nlohmann::json stream_stats_json(const std::vector<StreamFrontendStats>& frontends);
// Prometheus text format, metric names starting portmux_stream_.
std::string stream_stats_prometheus(const std::vector<StreamFrontendStats>& frontends);

}  // namespace portmux
