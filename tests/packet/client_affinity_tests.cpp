// "affinity": "client": every datagram and every connection of one client
// address goes to one backend while the address is active; its entry in the
// flow table has client port 0 and idles out after flow_idle_seconds. Reply
// entries stay per client port, so replies are translated as usual.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstdint>
#include <vector>

#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

Frontend client_frontend(Protocol protocol) {
    Frontend frontend = make_frontend(kFlowFrontendPort, protocol, kFlowBackendPorts);
    frontend.affinity = Affinity::client;
    frontend.flow_idle_seconds = 60;
    return frontend;
}

PacketBuilder host(const char* address) {
    return PacketBuilder{}.ipv4(ipv4_address(address), ipv4_address("198.51.100.1"));
}

Frame request(Protocol protocol, const PacketBuilder& from, std::uint16_t port, std::uint8_t flags = kTcpSyn) {
    PacketBuilder builder(from);
    if (protocol == Protocol::udp) {
        return builder.udp(port, kFlowFrontendPort).payload(counting_payload(16)).build();
    }
    return builder.tcp(port, kFlowFrontendPort).tcp_flags(flags).build();
}

portmux_flow_key address_key(const Frame& frame) {
    portmux_flow_key key = request_flow_key(frame);
    key.client_port = 0;
    return key;
}

}  // namespace

TEST_CASE("client affinity: all ports of an address go to one backend, the next address to the next",
          "[client-affinity]") {
    const Protocol protocol = GENERATE(Protocol::udp, Protocol::tcp);
    INFO("protocol " << to_string(protocol));
    data_path().configure(config_of({client_frontend(protocol)}));
    const PacketBuilder a = host("192.0.2.10"), b = host("192.0.2.11"), c = host("192.0.2.12");
    // Interleaved: every port of A on 8081, of B on 8082, of C on 8083.
    for (std::uint16_t port = 40000; port < 40010; ++port) {
        CHECK(forward(request(protocol, a, port)) == 8081);
        if (port == 40000 || port % 3 == 0) CHECK(forward(request(protocol, b, port)) == 8082);
        if (port == 40000) CHECK(forward(request(protocol, c, port)) == 8083);
    }
    // One entry per address, client port 0, on its backend.
    for (const auto& [from, backend] : {std::pair{a, 8081}, std::pair{b, 8082}, std::pair{c, 8083}}) {
        const auto entry = data_path().flow(address_key(request(protocol, from, 1)));
        REQUIRE(entry.has_value());
        CHECK(ntohs(entry->backend_port) == backend);
    }
    // Replies are translated by backend port, whatever the client port.
    CHECK(data_path().reply_frontend(request(protocol, a, 40007), 8081) == kFlowFrontendPort);
    CHECK(data_path().direct_client_count() == 0);
    if (protocol == Protocol::tcp) {
        // Each connection's later segments follow it as usual.
        for (std::uint16_t port = 40000; port < 40010; ++port) {
            CHECK(forward(request(protocol, a, port, kTcpAck)) == 8081);
        }
    }
}

TEST_CASE("client affinity: an address idle past its timeout is balanced afresh, an active one stays",
          "[client-affinity]") {
    const Protocol protocol = GENERATE(Protocol::udp, Protocol::tcp);
    INFO("protocol " << to_string(protocol));
    data_path().configure(config_of({client_frontend(protocol)}));
    const PacketBuilder a = host("192.0.2.10");
    CHECK(forward(request(protocol, a, 40000)) == 8081);
    const portmux_flow_key key = address_key(request(protocol, a, 40000));

    // 59 s idle: still on 8081, and the entry is refreshed.
    portmux_flow entry = *data_path().flow(key);
    entry.last_seen_ns = monotonic_ns() - 59 * kSecondNs;
    data_path().set_flow(key, entry);
    const std::uint64_t before = coarse_monotonic_ns();
    CHECK(forward(request(protocol, a, 40001)) == 8081);
    CHECK(data_path().flow(key)->last_seen_ns + kSecondNs >= before);

    // 61 s idle: the next backend.
    entry = *data_path().flow(key);
    entry.last_seen_ns = monotonic_ns() - 61 * kSecondNs;
    data_path().set_flow(key, entry);
    CHECK(forward(request(protocol, a, 40002)) == 8082);
    CHECK(ntohs(data_path().flow(key)->backend_port) == 8082);
    CHECK(forward(request(protocol, a, 40003)) == 8082);
}

TEST_CASE("client affinity: an address on a backend gone down moves to a live one", "[client-affinity]") {
    const Protocol protocol = GENERATE(Protocol::udp, Protocol::tcp);
    INFO("protocol " << to_string(protocol));
    Frontend frontend = client_frontend(protocol);
    data_path().configure(config_of({frontend}));
    const PacketBuilder a = host("192.0.2.10");
    CHECK(forward(request(protocol, a, 40000)) == 8081);
    frontend.backends[0].up_v4 = false;
    data_path().reload(config_of({frontend}));
    const std::uint16_t moved = forward(request(protocol, a, 40001));
    CHECK(moved != 8081);
    CHECK(forward(request(protocol, a, 40002)) == moved);
    CHECK(ntohs(data_path().flow(address_key(request(protocol, a, 1)))->backend_port) == moved);
}
