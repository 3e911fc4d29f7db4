// Changing an attached portmux without detaching it.
#pragma once

#include <cstdint>
#include <string>

#include "config.hpp"

namespace portmux {

// Installs a new, already validated config on IFACE. Every frontend changes
// in one map update; backends drained before stay drained if they remain.
// Throws NotAttached, or std::runtime_error when the config needs what the
// attachment cannot give (a different flow table size, more state slots).
void reload(const std::string& iface, Config config);

// Drains (or undrains) backend PORT in every frontend of IFACE that has it.
// Returns how many frontends changed; throws when no frontend has PORT.
std::size_t set_drained(const std::string& iface, std::uint16_t port, bool drained);

}  // namespace portmux
