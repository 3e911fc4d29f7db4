// Changing an attached portmux without detaching it.
#pragma once

#include <cstdint>
#include <string>

#include "config.hpp"
#include "liveness.hpp"
#include "state_lock.hpp"

namespace portmux {

// Installs a new, already validated config on IFACE. Every frontend changes
// in one map update; backends drained before stay drained if they remain,
// and keep their liveness (up_v4/up_v6, kept by `portmux run`); new
// backends take the liveness CONFIG gives them.
// Throws NotAttached, or std::runtime_error when the config needs what the
// attachment cannot give (a different flow table size, more state slots).
// The caller holds LOCK for the whole call (it reads, then writes).
void reload(const StateLock& lock, const std::string& iface, Config config);

// Drains (or undrains) backend PORT in every frontend of IFACE that has it.
// Returns how many frontends changed; throws when no frontend has PORT.
// The caller holds LOCK.
std::size_t set_drained(const StateLock& lock, const std::string& iface, std::uint16_t port,
                        bool drained);

// Sets the liveness of IFACE's backends to what TABLE says, on the config
// the maps hold now (drains and everything else stay as they are); writes
// only when something changes. Returns how many backends changed. The
// caller holds LOCK.
std::size_t set_liveness(const StateLock& lock, const std::string& iface,
                         const LivenessTable& table);

}  // namespace portmux
