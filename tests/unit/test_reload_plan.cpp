// Counter slots and routes across reloads (loader/reload_plan.hpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <set>

#include "reload_plan.hpp"

using portmux::assign_counter_slots;
using portmux::BackendCounterSlot;
using portmux::frontend_counts;
using portmux::rebase_counter_slot;
using portmux::SlotCounts;
using portmux::stale_routes;

namespace {

std::vector<BackendCounterSlot> live_of(const std::vector<std::uint16_t>& ports,
                                        const std::vector<std::uint8_t>& slots) {
    std::vector<BackendCounterSlot> live;
    for (std::size_t i = 0; i < ports.size(); ++i) {
        live.push_back({ports[i], slots[i]});
    }
    return live;
}

}  // namespace

TEST_CASE("counter slots: a new frontend counts by position", "[pure][reload]") {
    const std::vector<std::uint16_t> ports{9876, 9877, 9878};
    const auto plan = assign_counter_slots({}, ports);
    CHECK(plan.slots == std::vector<std::uint8_t>{0, 1, 2});
    CHECK(plan.taken == std::vector<std::uint8_t>{0, 1, 2});
}

TEST_CASE("counter slots: a reorder keeps every backend's slot and takes none", "[pure][reload]") {
    const auto live = live_of({9876, 9877, 9878}, {0, 1, 2});
    const std::vector<std::uint16_t> reordered{9878, 9876, 9877};
    const auto plan = assign_counter_slots(live, reordered);
    CHECK(plan.slots == std::vector<std::uint8_t>{2, 0, 1});
    CHECK(plan.taken.empty());
}

TEST_CASE("counter slots: a replaced backend gets a slot the live config does not use", "[pure][reload]") {
    // 9877 replaced by 9879 at the same position: 9879 must not count into
    // 9877's slot 1, which readers of the live config still increment.
    const auto live = live_of({9876, 9877, 9878}, {0, 1, 2});
    const std::vector<std::uint16_t> replaced{9876, 9879, 9878};
    const auto plan = assign_counter_slots(live, replaced);
    CHECK(plan.slots == std::vector<std::uint8_t>{0, 3, 2});
    CHECK(plan.taken == std::vector<std::uint8_t>{3});
    // The next reload back to 9877: slot 1 is free again (nothing live names it).
    const std::vector<std::uint16_t> original{9876, 9877, 9878};
    const auto back = assign_counter_slots(live_of(replaced, plan.slots), original);
    CHECK(back.slots == std::vector<std::uint8_t>{0, 1, 2});
    CHECK(back.taken == std::vector<std::uint8_t>{1});
}

TEST_CASE("counter slots: 64 backends all replaced by 64 others fit in the 128 slots", "[pure][reload]") {
    std::vector<std::uint16_t> first(PORTMUX_MAX_BACKENDS);
    std::iota(first.begin(), first.end(), std::uint16_t{10000});
    std::vector<std::uint8_t> first_slots(PORTMUX_MAX_BACKENDS);
    std::iota(first_slots.begin(), first_slots.end(), std::uint8_t{0});
    std::vector<std::uint16_t> second(PORTMUX_MAX_BACKENDS);
    std::iota(second.begin(), second.end(), std::uint16_t{20000});
    // Half stay (reordered), half are new, then all new: never a live slot.
    for (const auto& next : {std::vector<std::uint16_t>(first.rbegin(), first.rbegin() + 32), second}) {
        std::vector<std::uint16_t> wanted = next;
        if (wanted.size() < PORTMUX_MAX_BACKENDS) {
            wanted.insert(wanted.end(), second.begin(), second.begin() + 32);
        }
        const auto plan = assign_counter_slots(live_of(first, first_slots), wanted);
        REQUIRE(plan.slots.size() == wanted.size());
        const std::set<std::uint8_t> distinct(plan.slots.begin(), plan.slots.end());
        CHECK(distinct.size() == wanted.size());
        for (std::size_t i = 0; i < wanted.size(); ++i) {
            CHECK(plan.slots[i] < PORTMUX_COUNTER_SLOTS);
            const auto kept = std::find(first.begin(), first.end(), wanted[i]);
            if (kept != first.end()) {
                CHECK(plan.slots[i] == first_slots[kept - first.begin()]);
            } else {
                CHECK(std::find(first_slots.begin(), first_slots.end(), plan.slots[i]) == first_slots.end());
            }
        }
        first = wanted;
        first_slots = plan.slots;
    }
}

TEST_CASE("counter slots: more than 64 backends is refused", "[pure][reload]") {
    const std::vector<std::uint16_t> too_many(PORTMUX_MAX_BACKENDS + 1, 1);
    CHECK_THROWS_AS(assign_counter_slots({}, too_many), std::invalid_argument);
}

TEST_CASE("counters: a replaced backend starts at 0, the removed one's counts show as removed", "[pure][reload]") {
    SlotCounts counts{};
    portmux_counter_bases bases{};
    counts[0] = {10, 1000};
    counts[1] = {20, 2000};  // 9877
    counts[2] = {30, 3000};
    // 9877 (slot 1) replaced by 9879 (slot 3): while both configs are
    // around, slot 1 is unreferenced by the new one and shows as removed.
    rebase_counter_slot(bases, counts, 3);
    auto shown = frontend_counts(counts, bases, std::vector<std::uint8_t>{0, 3, 2});
    CHECK(shown.backends[1].packets == 0);
    CHECK(shown.removed.packets == 20);
    CHECK(shown.removed.bytes == 2000);
    counts[3] = {5, 500};
    counts[1].packets += 2;  // readers of the old config, before the grace period ended
    counts[1].bytes += 200;
    shown = frontend_counts(counts, bases, std::vector<std::uint8_t>{0, 3, 2});
    CHECK(shown.backends[0].packets == 10);
    CHECK(shown.backends[1].packets == 5);
    CHECK(shown.backends[2].packets == 30);
    CHECK(shown.removed.packets == 22);
    CHECK(shown.removed.bytes == 2200);
    // Slot 1 handed to yet another backend: its 22 move to bases.removed,
    // the new backend counts from 0, and the removed total stays 22.
    rebase_counter_slot(bases, counts, 1);
    CHECK(bases.removed.packets == 22);
    shown = frontend_counts(counts, bases, std::vector<std::uint8_t>{0, 1, 2, 3});
    CHECK(shown.backends[1].packets == 0);
    CHECK(shown.removed.packets == 22);
    counts[1].packets += 7;
    shown = frontend_counts(counts, bases, std::vector<std::uint8_t>{0, 1, 2, 3});
    CHECK(shown.backends[1].packets == 7);
    CHECK(shown.removed.packets == 22);
    // Every forwarded packet is shown exactly once.
    std::uint64_t total = 0;
    for (const auto& c : counts) total += c.packets;
    std::uint64_t shown_total = shown.removed.packets;
    for (const auto& b : shown.backends) shown_total += b.packets;
    CHECK(shown_total == total);
}

TEST_CASE("counters: rebasing an unused slot changes no total", "[pure][reload]") {
    SlotCounts counts{};
    portmux_counter_bases bases{};
    counts[5] = {4, 40};
    const std::vector<std::uint8_t> slots{0, 1};
    const auto before = frontend_counts(counts, bases, slots);
    rebase_counter_slot(bases, counts, 5);
    const auto after = frontend_counts(counts, bases, slots);
    CHECK(before.removed.packets == after.removed.packets);
    CHECK(before.removed.bytes == after.removed.bytes);
}

TEST_CASE("routes: those of buffers no ports entry points at are stale", "[pure][reload]") {
    std::vector<portmux_route_key> keys(4);
    keys[0].config = 6;  // slot 3, buffer 0: live before the flip
    keys[1].config = 7;  // slot 3, buffer 1: live after it
    keys[2].config = 7;
    keys[3].config = 9;  // a removed frontend
    keys[2].tag[15] = 1;
    const std::vector<std::uint32_t> after_flip{7};
    const auto stale = stale_routes(keys, after_flip);
    REQUIRE(stale.size() == 2);
    CHECK(stale[0].config == 6);
    CHECK(stale[1].config == 9);
    CHECK(stale_routes(keys, std::vector<std::uint32_t>{6, 7, 9}).empty());
}
