// Writing a Config into the data path's maps and reading it back.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <vector>

#include "config.hpp"
#include "portmux_shared.h"

namespace portmux {

// File descriptors of the maps that carry a config (owned elsewhere).
struct DataPathMaps {
    int frontend_configs = -1;  // ARRAY slot * 2 + buffer -> portmux_frontend
    int frontend_state = -1;    // PERCPU_ARRAY slot -> portmux_frontend_state
    int routes = -1;            // HASH portmux_route_key -> portmux_route_target
    int ports = -1;             // ARRAY (protocol, port) -> portmux_port
    int meta = -1;              // ARRAY 0 -> portmux_meta; skipped when -1
    // ARRAY slot -> portmux_counter_bases (loader only); when -1 counts are
    // read from zero and a reused counter slot is not rebased.
    int counter_bases = -1;
    // ARRAY 0 -> portmux_port_bits (the object's ".data.port_bits"): a bit
    // per `ports` entry that is not zero. Required: the data path passes a
    // packet whose port's bit is clear without looking at its entry.
    int port_bits = -1;
};

// Pins made by a portmux with another map layout (PORTMUX_LAYOUT_VERSION).
class LayoutMismatch : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Name of the pinned `meta` map inside an interface's pin directory.
inline constexpr const char* kMetaPin = "meta";

// Throws LayoutMismatch unless the `meta` map (fd) says PORTMUX_LAYOUT_VERSION.
// `where` names the attachment in the message.
void check_layout_version(int meta_fd, const std::string& where);

// The same for the pins in PIN_DIR (an interface's directory): a missing
// `meta` pin means pins of a portmux from before layout versions.
void check_layout_version(const std::filesystem::path& pin_dir);

// Which backends take new packets of one address family.
enum class AddressFamily { v4, v6 };

// The round-robin order for backends with these weights: each backend
// appears `weight` times, spread out (smooth weighted round robin), and
// weight 0 or drained never. The weights must sum to at most PORTMUX_RR_SLOTS.
std::vector<std::uint8_t> round_robin_order(const std::vector<Backend>& backends);

// The same, also leaving out backends down for `family`.
std::vector<std::uint8_t> round_robin_order(const std::vector<Backend>& backends, AddressFamily family);

// The map value for one frontend of a validated config, stored at
// CONFIG_INDEX of frontend_configs; backends[i] counts into counter slot
// COUNTER_SLOTS[i] (by position when empty).
portmux_frontend encode_frontend(const Frontend& frontend, std::uint32_t slot,
                                 std::uint32_t config_index = 0,
                                 std::span<const std::uint8_t> counter_slots = {});

// The entries of the ports array a config sets: index -> value. A
// frontend's entry points at CONFIG_INDICES[i] (its config's index in
// `frontend_configs`; 0 where not given); a backend's names the frontend
// port its replies show, unless its frontend translates no replies.
std::map<std::uint32_t, portmux_port> port_entries(const Config& config,
                                                   std::span<const std::uint32_t> config_indices = {});

// The `port_bits` value for these `ports` entries: a bit for each entry whose
// flags are not zero.
portmux_port_bits port_bits_of(const std::map<std::uint32_t, portmux_port>& entries);

// Whether some frontend of CONFIG (its XDP frontends) has replies translated:
// every TCP frontend, and UDP ones unless "reply_translation" is false. Only
// then is the TC egress program attached; it would otherwise cost every
// packet leaving the interface for nothing.
bool translates_replies(const Config& config);

// Installs every frontend of `config` (which must already be validated):
// a frontend that stays keeps its state slot (cursor and counters), a new
// one gets a free slot with zeroed state; a backend that stays keeps its
// counter slot, a new one starts at 0 (loader/reload_plan.hpp). Each
// frontend's config and its routes (keyed by the config's index) are
// written into the buffer of its slot no reader uses (after
// wait_for_bpf_readers(), grace_period.hpp, when something was installed),
// then its `ports` entry is flipped to it in one write; after another grace
// period the old buffers' routes go. `port_bits` gains the bits of the new
// entries before any entry is written and loses those of cleared entries
// only once the new config is in force. A failure before the flip is complete
// rolls back: flipped entries are flipped back and the new routes removed,
// so the maps serve the old config exactly. Throws std::system_error naming
// the map on failure; CleanupDeferred when only the cleanup after the flip
// failed.
//
// Fault hook for tests: with PORTMUX_TEST_FAIL_MAP_WRITE=N in the
// environment, the Nth map write or delete of the reload fails with EIO.
void write_config(const DataPathMaps& maps, const Config& config);

// Thrown by write_config() when the new config is in force and only freeing
// what the old one left (its routes, the bits of cleared ports) failed. The
// change succeeded: callers report it as done, with this as a warning, and
// the next write retries the cleanup (stale routes are found by config index).
class CleanupDeferred : public std::system_error {
public:
    using std::system_error::system_error;
};

// A frontend as the maps hold it, with its slot.
struct InstalledFrontend {
    Frontend frontend;
    std::uint32_t slot = 0;
    std::vector<std::uint8_t> counter_slots;  // by backend position
};

// The config the data path uses for frontend PORT/PROTOCOL (through its
// `ports` entry), or nullopt when no such frontend is installed.
std::optional<portmux_frontend> installed_config(const DataPathMaps& maps, Protocol protocol,
                                                 std::uint16_t port);

// The frontends currently in the maps, sorted by (protocol, port).
std::vector<InstalledFrontend> read_frontends(const DataPathMaps& maps);

}  // namespace portmux
