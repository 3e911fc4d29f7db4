// Pure decisions of a reload that keep counters and routes consistent:
// which per-CPU counter slot each backend counts into, what the loader
// records when it hands a slot to a new backend, and how stats turn the
// raw per-slot sums into per-backend and removed counts. No map access
// here: maps.cpp and stats.cpp apply these, the unit tests check them.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "portmux_shared.h"

namespace portmux {

// A backend of the config readers use now, with the counter slot it counts into.
struct BackendCounterSlot {
    std::uint16_t port = 0;
    std::uint8_t slot = 0;
};

struct CounterSlotPlan {
    // Counter slot of each backend of the new config, by position.
    std::vector<std::uint8_t> slots;
    // Slots handed to a backend the live config does not have: the loader
    // rebases them (rebase_counter_slot) before the new config is visible.
    std::vector<std::uint8_t> taken;
};

// Counter slots for a frontend's new backend list (PORTS, by position).
// A backend the live config has keeps its slot, wherever it moves; a new
// backend takes the lowest slot neither the live config nor another
// backend of the new one uses. With at most PORTMUX_MAX_BACKENDS backends
// in each config, PORTMUX_COUNTER_SLOTS (twice that) always suffice: the
// live config's slots stay untouched while readers may still use them.
// LIVE is empty for a frontend new to the maps (slots 0, 1, ... by position).
CounterSlotPlan assign_counter_slots(std::span<const BackendCounterSlot> live,
                                     std::span<const std::uint16_t> ports);

// Counts summed over CPUs, one per counter slot.
using SlotCounts = std::array<portmux_backend_counters, PORTMUX_COUNTER_SLOTS>;

// Hands counter slot SLOT to a new backend: what it counted since its last
// rebase (for a backend since removed) moves to bases.removed, and its
// base becomes its current count, so the new backend starts at 0. Only
// for a slot no config readers can reach references (after a grace
// period): nothing counts into it meanwhile.
void rebase_counter_slot(portmux_counter_bases& bases, const SlotCounts& counts, std::uint8_t slot);

struct BackendCounts {
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
};

struct FrontendCounts {
    std::vector<BackendCounts> backends;  // by position, as SLOTS lists them
    BackendCounts removed;                // backends no longer in the config
};

// What stats shows: each backend's count since its slot was last rebased,
// and as removed, bases.removed plus whatever slots no backend of the
// config uses counted since their rebase. Their sum is every forwarded
// packet, so received = forwarded + dropped stays exact across reloads.
FrontendCounts frontend_counts(const SlotCounts& counts, const portmux_counter_bases& bases,
                               std::span<const std::uint8_t> slots);

// Config indexes (slot * PORTMUX_CONFIG_BUFFERS + buffer) whose routes are
// stale: route keys of every buffer no `ports` entry points at. Readers
// that could still see such a buffer are gone after a grace period; then
// its routes can go, before the buffer is written again.
std::vector<portmux_route_key> stale_routes(std::span<const portmux_route_key> keys,
                                            std::span<const std::uint32_t> live_configs);

}  // namespace portmux
