// The ports array: what each (protocol, port) is to portmux. Traffic to a
// port whose entry is zero passes untouched by its clear bit in port_bits;
// reloads set and clear entries, and their bits, with the frontends.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cstdint>
#include <vector>

#include "fixtures.hpp"
#include "maps.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

std::uint8_t port_flags(std::uint16_t port, Protocol protocol) {
    const std::uint32_t index = port + (protocol == Protocol::tcp ? PORTMUX_TCP_PORT_BASE : 0);
    portmux_port entry{};
    REQUIRE(bpf_map_lookup_elem(data_path().maps().ports, &index, &entry) == 0);
    return entry.flags;
}

}  // namespace

TEST_CASE("ports: port_entries flags frontends and backends per protocol", "[ports]") {
    const Config config = config_of({make_frontend(9875, Protocol::udp, {9876, 9877}),
                                     make_frontend(8080, Protocol::tcp, {8081, 9876})});
    const auto entries = port_entries(config);
    REQUIRE(entries.size() == 6);
    CHECK(entries.at(9875).flags == PORTMUX_PORT_FRONTEND);
    CHECK(entries.at(9876).flags == PORTMUX_PORT_BACKEND);
    CHECK(entries.at(9877).flags == PORTMUX_PORT_BACKEND);
    CHECK(entries.at(PORTMUX_TCP_PORT_BASE + 8080).flags == PORTMUX_PORT_FRONTEND);
    CHECK(entries.at(PORTMUX_TCP_PORT_BASE + 8081).flags == PORTMUX_PORT_BACKEND);
    CHECK(entries.at(PORTMUX_TCP_PORT_BASE + 9876).flags == PORTMUX_PORT_BACKEND);
    // A backend's entry names the frontend port its replies show.
    CHECK(entries.at(9876).reply_port == htons(9875));
    CHECK(entries.at(PORTMUX_TCP_PORT_BASE + 9876).reply_port == htons(8080));
    // A frontend's entry points at the config index it is given.
    const std::uint32_t indices[] = {7, 12};
    const auto indexed = port_entries(config, indices);
    CHECK(indexed.at(9875).config == 7);
    CHECK(indexed.at(PORTMUX_TCP_PORT_BASE + 8080).config == 12);
    // One-way frontends translate no replies: their backends name no port.
    Frontend one_way = make_frontend(514, Protocol::udp, {5140});
    one_way.reply_translation = false;
    CHECK(port_entries(config_of({one_way})).at(5140).reply_port == 0);
}

TEST_CASE("ports: a reload sets the new config's entries and zeroes the old ones", "[ports]") {
    data_path().configure(config_of({make_frontend(9875, Protocol::udp, {9876, 9877}),
                                     make_frontend(8080, Protocol::tcp, {8081})}));
    CHECK(port_flags(9875, Protocol::udp) == PORTMUX_PORT_FRONTEND);
    CHECK(port_flags(9877, Protocol::udp) == PORTMUX_PORT_BACKEND);
    CHECK(port_flags(9875, Protocol::tcp) == 0);  // per protocol
    CHECK(port_flags(8080, Protocol::tcp) == PORTMUX_PORT_FRONTEND);
    CHECK(data_path().port_bits_set() ==
          std::vector<std::uint32_t>{9875, 9876, 9877, PORTMUX_TCP_PORT_BASE + 8080, PORTMUX_TCP_PORT_BASE + 8081});

    // 8080 leaves, 9877 stops being a backend, 5300 arrives.
    data_path().reload(config_of({make_frontend(9875, Protocol::udp, {9876}),
                                  make_frontend(5300, Protocol::udp, {5301})}));
    CHECK(port_flags(8080, Protocol::tcp) == 0);
    CHECK(port_flags(8081, Protocol::tcp) == 0);
    CHECK(port_flags(9877, Protocol::udp) == 0);
    CHECK(port_flags(9876, Protocol::udp) == PORTMUX_PORT_BACKEND);
    CHECK(port_flags(5300, Protocol::udp) == PORTMUX_PORT_FRONTEND);
    CHECK(port_flags(5301, Protocol::udp) == PORTMUX_PORT_BACKEND);
    // port_bits has a bit for exactly the flagged entries: those of 8080/tcp,
    // 8081/tcp and 9877 went with their entries once the reload was in force.
    CHECK(data_path().port_bits_set() == std::vector<std::uint32_t>{5300, 5301, 9875, 9876});
    // The removed TCP frontend's traffic is no longer touched; the new one is balanced.
    require_passes_unchanged(ipv4_client().tcp(40000, 8080).tcp_flags(kTcpSyn).build());
    require_rewritten_to(ipv4_client().udp(kClientPort, 5300).payload(counting_payload(4)).build(), 5301);
}

TEST_CASE("ports: a frontend entry flagged before its frontend exists passes the packet", "[ports]") {
    configure_standard_frontend();
    // As for a moment inside a reload: the flag with an index whose config is another frontend's.
    const std::uint32_t index = 7777;
    const portmux_port flagged{PORTMUX_PORT_FRONTEND, 0, 0, 0};
    data_path().write_port_entry(index, flagged);
    require_passes_unchanged(ipv4_client().udp(kClientPort, 7777).payload(counting_payload(4)).build());
    data_path().write_port_entry(index, portmux_port{});
}

TEST_CASE("ports: TC egress is needed only by a frontend that translates replies", "[ports]") {
    Frontend one_way = make_frontend(9875, Protocol::udp, {9876});
    one_way.reply_translation = false;
    CHECK_FALSE(translates_replies(config_of({one_way})));
    CHECK_FALSE(translates_replies(Config{}));
    CHECK(translates_replies(config_of({one_way, make_frontend(5300, Protocol::udp, {5301})})));
    CHECK(translates_replies(config_of({one_way, make_frontend(8080, Protocol::tcp, {8081})})));
}
