#include "reload_plan.hpp"

#include <algorithm>
#include <bitset>
#include <map>
#include <set>
#include <stdexcept>

namespace portmux {

CounterSlotPlan assign_counter_slots(std::span<const BackendCounterSlot> live,
                                     std::span<const std::uint16_t> ports) {
    if (live.size() > PORTMUX_MAX_BACKENDS || ports.size() > PORTMUX_MAX_BACKENDS) {
        throw std::invalid_argument("more than PORTMUX_MAX_BACKENDS backends");
    }
    std::map<std::uint16_t, std::uint8_t> slot_of_port;
    std::bitset<PORTMUX_COUNTER_SLOTS> used;
    for (const BackendCounterSlot& backend : live) {
        if (backend.slot >= PORTMUX_COUNTER_SLOTS) {
            continue;  // not written by this loader: no slot to keep
        }
        slot_of_port.emplace(backend.port, backend.slot);
        used.set(backend.slot);
    }
    CounterSlotPlan plan;
    plan.slots.reserve(ports.size());
    std::set<std::uint16_t> placed;
    std::size_t next_free = 0;
    for (const std::uint16_t port : ports) {
        const auto kept = slot_of_port.find(port);
        if (kept != slot_of_port.end() && placed.insert(port).second) {
            plan.slots.push_back(kept->second);
            continue;
        }
        while (used.test(next_free)) {
            ++next_free;  // at most 64 live + 63 new slots are used: always < 128
        }
        used.set(next_free);
        plan.slots.push_back(static_cast<std::uint8_t>(next_free));
        plan.taken.push_back(static_cast<std::uint8_t>(next_free));
    }
    return plan;
}

void rebase_counter_slot(portmux_counter_bases& bases, const SlotCounts& counts, std::uint8_t slot) {
    const std::size_t s = slot % PORTMUX_COUNTER_SLOTS;
    bases.removed.packets += counts[s].packets - bases.base[s].packets;
    bases.removed.bytes += counts[s].bytes - bases.base[s].bytes;
    bases.base[s] = counts[s];
}

FrontendCounts frontend_counts(const SlotCounts& counts, const portmux_counter_bases& bases,
                               std::span<const std::uint8_t> slots) {
    FrontendCounts result;
    std::bitset<PORTMUX_COUNTER_SLOTS> shown;
    for (const std::uint8_t slot : slots) {
        const std::size_t s = slot % PORTMUX_COUNTER_SLOTS;
        result.backends.push_back({counts[s].packets - bases.base[s].packets,
                                   counts[s].bytes - bases.base[s].bytes});
        shown.set(s);
    }
    result.removed = {bases.removed.packets, bases.removed.bytes};
    for (std::size_t s = 0; s < PORTMUX_COUNTER_SLOTS; ++s) {
        if (!shown.test(s)) {
            result.removed.packets += counts[s].packets - bases.base[s].packets;
            result.removed.bytes += counts[s].bytes - bases.base[s].bytes;
        }
    }
    return result;
}

std::vector<portmux_route_key> stale_routes(std::span<const portmux_route_key> keys,
                                            std::span<const std::uint32_t> live_configs) {
    const std::set<std::uint32_t> live(live_configs.begin(), live_configs.end());
    std::vector<portmux_route_key> stale;
    std::copy_if(keys.begin(), keys.end(), std::back_inserter(stale),
                 [&](const portmux_route_key& key) { return !live.contains(key.config); });
    return stale;
}

}  // namespace portmux
