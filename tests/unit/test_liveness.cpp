// Tests of loader/liveness.cpp's decision: which sockets make a backend
// alive for which address family. No sockets are opened.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "config.hpp"
#include "liveness.hpp"

namespace {

using portmux::Config;
using portmux::FamilyLiveness;
using portmux::InterfaceAddresses;
using portmux::Protocol;
using portmux::ReceivingSocket;

ReceivingSocket v4_socket(Protocol protocol, const char* address, std::uint16_t port) {
    ReceivingSocket socket;
    socket.protocol = protocol;
    socket.family = AF_INET;
    socket.port = port;
    REQUIRE(inet_pton(AF_INET, address, socket.address.data()) == 1);
    return socket;
}

ReceivingSocket v6_socket(Protocol protocol, const char* address, std::uint16_t port,
                          bool v6only) {
    ReceivingSocket socket;
    socket.protocol = protocol;
    socket.family = AF_INET6;
    socket.port = port;
    socket.v6only = v6only;
    REQUIRE(inet_pton(AF_INET6, address, socket.address.data()) == 1);
    return socket;
}

// eth-like interface 7 with 192.0.2.10 and 2001:db8::10.
InterfaceAddresses eth_addresses() {
    InterfaceAddresses addresses;
    addresses.ifindex = 7;
    std::array<std::uint8_t, 4> v4{};
    REQUIRE(inet_pton(AF_INET, "192.0.2.10", v4.data()) == 1);
    addresses.v4.push_back(v4);
    std::array<std::uint8_t, 16> v6{};
    REQUIRE(inet_pton(AF_INET6, "2001:db8::10", v6.data()) == 1);
    addresses.v6.push_back(v6);
    return addresses;
}

Config one_frontend(Protocol protocol, std::vector<std::uint16_t> ports) {
    Config config;
    portmux::Frontend frontend;
    frontend.port = 9000;
    frontend.protocol = protocol;
    for (std::uint16_t port : ports) {
        frontend.backends.emplace_back(port);
    }
    config.frontends.push_back(frontend);
    return config;
}

}  // namespace

TEST_CASE("an IPv4 wildcard socket serves IPv4 only") {
    const auto served = portmux::families_served(v4_socket(Protocol::udp, "0.0.0.0", 9001),
                                                 eth_addresses());
    CHECK(served == FamilyLiveness{true, false});
}

TEST_CASE("an IPv6 wildcard socket serves IPv4 too unless IPV6_V6ONLY") {
    CHECK(portmux::families_served(v6_socket(Protocol::tcp, "::", 9001, false), eth_addresses()) ==
          FamilyLiveness{true, true});
    CHECK(portmux::families_served(v6_socket(Protocol::tcp, "::", 9001, true), eth_addresses()) ==
          FamilyLiveness{false, true});
}

TEST_CASE("a socket bound to the interface's own address counts, another address does not") {
    const InterfaceAddresses addresses = eth_addresses();
    CHECK(portmux::families_served(v4_socket(Protocol::udp, "192.0.2.10", 9001), addresses) ==
          FamilyLiveness{true, false});
    CHECK(portmux::families_served(v4_socket(Protocol::udp, "192.0.2.11", 9001), addresses) ==
          FamilyLiveness{});
    CHECK(portmux::families_served(v4_socket(Protocol::udp, "127.0.0.1", 9001), addresses) ==
          FamilyLiveness{});
    CHECK(portmux::families_served(v6_socket(Protocol::udp, "2001:db8::10", 9001, true), addresses) ==
          FamilyLiveness{false, true});
    CHECK(portmux::families_served(v6_socket(Protocol::udp, "2001:db8::11", 9001, true), addresses) ==
          FamilyLiveness{});
}

TEST_CASE("an IPv4-mapped IPv6 bind serves IPv4 on that address") {
    const InterfaceAddresses addresses = eth_addresses();
    CHECK(portmux::families_served(v6_socket(Protocol::tcp, "::ffff:192.0.2.10", 9001, false),
                                   addresses) == FamilyLiveness{true, false});
    CHECK(portmux::families_served(v6_socket(Protocol::tcp, "::ffff:192.0.2.99", 9001, false),
                                   addresses) == FamilyLiveness{});
}

TEST_CASE("on a loopback device every 127/8 address is local") {
    InterfaceAddresses lo;
    lo.ifindex = 1;
    lo.loopback = true;
    CHECK(portmux::families_served(v4_socket(Protocol::udp, "127.0.0.2", 9001), lo) ==
          FamilyLiveness{true, false});
    CHECK(portmux::families_served(v4_socket(Protocol::udp, "192.0.2.10", 9001), lo) ==
          FamilyLiveness{});
}

TEST_CASE("a socket bound to another device serves nothing here") {
    ReceivingSocket socket = v4_socket(Protocol::udp, "0.0.0.0", 9001);
    socket.bound_ifindex = 8;
    CHECK(portmux::families_served(socket, eth_addresses()) == FamilyLiveness{});
    socket.bound_ifindex = 7;
    CHECK(portmux::families_served(socket, eth_addresses()) == FamilyLiveness{true, false});
}

TEST_CASE("backend_liveness: every backend has an entry; protocol and port must both match") {
    const Config config = one_frontend(Protocol::udp, {9001, 9002, 9003});
    const std::vector<ReceivingSocket> sockets{
        v4_socket(Protocol::udp, "0.0.0.0", 9001),
        v4_socket(Protocol::tcp, "0.0.0.0", 9002),      // TCP does not serve a UDP backend
        v6_socket(Protocol::udp, "::", 9003, true),     // IPv6 only
        v4_socket(Protocol::udp, "0.0.0.0", 9004),      // not a backend
    };
    const portmux::LivenessTable table =
        portmux::backend_liveness(config, sockets, eth_addresses());
    REQUIRE(table.size() == 3);
    CHECK(table.at({Protocol::udp, 9001}) == FamilyLiveness{true, false});
    CHECK(table.at({Protocol::udp, 9002}) == FamilyLiveness{false, false});
    CHECK(table.at({Protocol::udp, 9003}) == FamilyLiveness{false, true});
}

TEST_CASE("backend_liveness: two sockets on one port add their families up") {
    const Config config = one_frontend(Protocol::tcp, {9001});
    const std::vector<ReceivingSocket> sockets{
        v4_socket(Protocol::tcp, "0.0.0.0", 9001),
        v6_socket(Protocol::tcp, "::", 9001, true),
    };
    CHECK(portmux::backend_liveness(config, sockets, eth_addresses())
              .at({Protocol::tcp, 9001}) == FamilyLiveness{true, true});
}

TEST_CASE("liveness_changes lists what differs, new backends included") {
    const portmux::LivenessTable before{{{Protocol::udp, 9001}, {true, true}},
                                        {{Protocol::udp, 9002}, {true, true}}};
    const portmux::LivenessTable after{{{Protocol::udp, 9001}, {true, true}},
                                       {{Protocol::udp, 9002}, {false, true}},
                                       {{Protocol::udp, 9003}, {false, false}}};
    const auto changes = portmux::liveness_changes(before, after);
    REQUIRE(changes.size() == 2);
    CHECK(changes[0].backend == portmux::LivenessKey{Protocol::udp, 9002});
    CHECK(changes[0].before == FamilyLiveness{true, true});
    CHECK(changes[0].after == FamilyLiveness{false, true});
    CHECK(changes[1].backend == portmux::LivenessKey{Protocol::udp, 9003});
    CHECK(portmux::describe(changes[0].after) == "up v6 only");
    CHECK(portmux::describe(changes[1].after) == "down");
}
