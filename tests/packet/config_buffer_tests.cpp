// Frontend configs in two buffers per slot (frontend_configs), reached by
// the index in the frontend's `ports` entry: a reload writes the buffer no
// reader uses and flips the index; a config reached through an index that
// names another frontend is not used; the grace-period wait the loader
// takes before reusing a buffer.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <chrono>
#include <cstdint>

#include "fixtures.hpp"
#include "grace_period.hpp"
#include "maps.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

std::uint32_t port_index_of(std::uint16_t port, Protocol protocol) {
    return port + (protocol == Protocol::tcp ? PORTMUX_TCP_PORT_BASE : 0);
}

portmux_port port_entry(std::uint16_t port, Protocol protocol = Protocol::udp) {
    const std::uint32_t index = port_index_of(port, protocol);
    portmux_port entry{};
    REQUIRE(bpf_map_lookup_elem(data_path().maps().ports, &index, &entry) == 0);
    return entry;
}

void set_port_entry(std::uint16_t port, const portmux_port& entry, Protocol protocol = Protocol::udp) {
    data_path().write_port_entry(port_index_of(port, protocol), entry);
}

portmux_frontend config_at(std::uint32_t index) {
    portmux_frontend value{};
    REQUIRE(bpf_map_lookup_elem(data_path().maps().frontend_configs, &index, &value) == 0);
    return value;
}

Frame datagram_to(std::uint16_t port) {
    return ipv4_client().udp(kClientPort, port).payload(counting_payload(8)).build();
}

}  // namespace

TEST_CASE("config buffers: a reload writes the other buffer of the slot, then flips the index",
          "[config-buffers]") {
    data_path().configure(udp_config({{9875, {9876}}}));
    const portmux_port first = port_entry(9875);
    REQUIRE(first.flags == PORTMUX_PORT_FRONTEND);
    const std::uint32_t slot = first.config / PORTMUX_CONFIG_BUFFERS;
    require_rewritten_to(datagram_to(9875), 9876);

    data_path().reload(udp_config({{9875, {9877}}}));
    const portmux_port second = port_entry(9875);
    CHECK(second.config / PORTMUX_CONFIG_BUFFERS == slot);  // same slot: cursor and counters stay
    CHECK(second.config != first.config);
    require_rewritten_to(datagram_to(9875), 9877);
    // The old buffer still holds the whole old config: a reader that read
    // the index just before the flip uses it, complete, until it is done.
    CHECK(config_at(first.config).backends[0] == htons(9876));
    CHECK(config_at(second.config).backends[0] == htons(9877));
    set_port_entry(9875, first);
    require_rewritten_to(datagram_to(9875), 9876);
    set_port_entry(9875, second);

    // The next reload writes the first buffer again (after the grace period).
    data_path().reload(udp_config({{9875, {9878}}}));
    CHECK(port_entry(9875).config == first.config);
    require_rewritten_to(datagram_to(9875), 9878);
    CHECK(read_frontends(data_path().maps()).size() == 1);
    CHECK(read_frontends(data_path().maps()).front().frontend.backends.front().port == 9878);
}

TEST_CASE("config buffers: an index naming another frontend's config passes the packet",
          "[config-buffers]") {
    data_path().configure(udp_config({{9875, {9876}}, {5300, {5301}}}));
    const portmux_port own = port_entry(9875);
    const portmux_port other = port_entry(5300);

    // As a reader could see an entry a reload rewrites in place (or one left
    // pointing at a buffer since reused): the index of 5300's config.
    portmux_port torn = own;
    torn.config = other.config;
    set_port_entry(9875, torn);
    require_passes_unchanged(datagram_to(9875));
    // A buffer never written records no frontend at all.
    torn.config = PORTMUX_CONFIG_BUFFERS * PORTMUX_DEFAULT_STATE_SLOTS - 1;
    const portmux_frontend empty{};
    REQUIRE(bpf_map_update_elem(data_path().maps().frontend_configs, &torn.config, &empty, BPF_ANY) == 0);
    set_port_entry(9875, torn);
    require_passes_unchanged(datagram_to(9875));
    // Beyond the array: the lookup fails.
    torn.config = 0xffffffffu;
    set_port_entry(9875, torn);
    require_passes_unchanged(datagram_to(9875));
    // The same protocol is part of the check: a TCP segment to 5300 does not
    // take 5300/udp's config.
    portmux_port tcp_alias = other;
    set_port_entry(5300, tcp_alias, Protocol::tcp);
    require_passes_unchanged(ipv4_client().tcp(40000, 5300).tcp_flags(kTcpSyn).build());
    set_port_entry(5300, portmux_port{}, Protocol::tcp);

    set_port_entry(9875, own);
    require_rewritten_to(datagram_to(9875), 9876);
    CHECK(data_path().stats(9875).received == 1);  // the passed ones were not counted
}

TEST_CASE("config buffers: a new frontend does not take a slot freed by the same reload",
          "[config-buffers]") {
    data_path().configure(udp_config({{9875, {9876}}}));
    const portmux_port leaving = port_entry(9875);
    // 9875 leaves and 5300 arrives in the same reload: readers of 9875
    // count into its slot's state until the flip and a grace period, so
    // 5300 takes another free slot (and starts at 0); the buffer 9875's
    // entry pointed at until the end of the reload is left alone.
    data_path().reload(udp_config({{5300, {5301}}}));
    const portmux_port arrived = port_entry(5300);
    CHECK(arrived.config / PORTMUX_CONFIG_BUFFERS != leaving.config / PORTMUX_CONFIG_BUFFERS);
    CHECK(arrived.config != leaving.config);
    CHECK(data_path().stats(5300).received == 0);
    CHECK(config_at(leaving.config).port == htons(9875));
    CHECK(port_entry(9875).flags == 0);
    require_passes_unchanged(datagram_to(9875));
    require_rewritten_to(datagram_to(5300), 5301);
    REQUIRE(read_frontends(data_path().maps()).size() == 1);
    CHECK(read_frontends(data_path().maps()).front().frontend.port == 5300);
}

TEST_CASE("config buffers: many reloads in a row keep serving the newest config", "[config-buffers]") {
    data_path().configure(udp_config({{9875, {9876}}, {5300, {5301}}}));
    for (std::uint16_t round = 0; round < 6; ++round) {
        const std::uint16_t backend = static_cast<std::uint16_t>(9876 + round % 3);
        data_path().reload(udp_config({{9875, {backend}}, {5300, {5301}}}));
        require_rewritten_to(datagram_to(9875), backend);
        require_rewritten_to(datagram_to(5300), 5301);
    }
}

TEST_CASE("grace period: wait_for_bpf_readers returns, again and again", "[config-buffers]") {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i) {
        wait_for_bpf_readers();
    }
    // No timing assertion (speed targets live in bench/); it must not hang.
    const auto elapsed = std::chrono::steady_clock::now() - start;
    INFO("3 waits took " << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms");
    SUCCEED();
}
