// ICMP and ICMPv6 errors about balanced datagrams (xdp/icmp.h).
//
// Outbound (TC egress): an error this host sends quotes the datagram as the
// XDP program left it (client -> backend port). It must leave quoting the
// datagram exactly as the client sent it: frontend port, the client's own
// transport checksum. So the expected frame is the same error built around
// the client's original datagram, and the reference must verify its ICMP
// checksum (ICMPv6: with the pseudo-header).
//
// Inbound (XDP): an error from the network quotes a reply as it left this
// host (frontend port -> client). It must reach the kernel quoting the reply
// exactly as the backend sent it (backend port, the backend's checksum).
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "checksum_reference.hpp"
#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

// A router between this host and the client.
PacketBuilder ipv4_router_to_server() {
    return PacketBuilder{}.ipv4(ipv4_address("203.0.113.1"), ipv4_address("198.51.100.1"));
}

PacketBuilder ipv6_router_to_server() {
    return PacketBuilder{}.ipv6(ipv6_address("2001:db8:3::1"), ipv6_address("2001:db8:2::1"));
}

// The IP datagram of `frame` (what an ICMP error quotes), cut to at most
// `limit` bytes.
Bytes quote_of(const Frame& frame, std::size_t limit = 1 << 16) {
    Bytes quote(frame.bytes.begin() + static_cast<std::ptrdiff_t>(frame.l3_offset), frame.bytes.end());
    if (quote.size() > limit) {
        quote.resize(limit);
    }
    return quote;
}

struct ErrorKind {
    std::string name;
    std::uint8_t type;
    std::uint8_t code;
    std::uint32_t rest;  // the MTU of a fragmentation needed / packet too big
};

std::vector<ErrorKind> ipv4_errors() {
    return {{"port unreachable", 3, 3, 0},
            {"fragmentation needed, MTU 1000", 3, 4, 1000},
            {"time exceeded", 11, 0, 0}};
}

std::vector<ErrorKind> ipv6_errors() {
    return {{"port unreachable", 1, 4, 0},
            {"packet too big, MTU 1280", 2, 0, 1280},
            {"time exceeded", 3, 0, 0}};
}

Frame icmp_error(PacketBuilder sender, const ErrorKind& kind, const Bytes& quote) {
    return sender.icmp(kind.type, kind.code, kind.rest).payload(quote).build();
}

void require_tc_rewrites(const Frame& error, const Frame& expected) {
    REQUIRE(transport_checksum_verifies(error.bytes));
    REQUIRE(transport_checksum_verifies(expected.bytes));
    const XdpRun run = data_path().run_tc(error.bytes);
    REQUIRE(run.action == kTcActContinue);
    REQUIRE_THAT(run.output, FrameEquals(expected.bytes));
    REQUIRE(transport_checksum_verifies(run.output));
}

void require_tc_unchanged(const Frame& error) {
    const XdpRun run = data_path().run_tc(error.bytes);
    REQUIRE(run.action == kTcActContinue);
    REQUIRE_THAT(run.output, FrameEquals(error.bytes));
}

void require_xdp_rewrites(const Frame& error, const Frame& expected) {
    REQUIRE(transport_checksum_verifies(error.bytes));
    REQUIRE(transport_checksum_verifies(expected.bytes));
    const XdpRun run = data_path().run(error.bytes);
    REQUIRE(run.action == kXdpPass);
    REQUIRE_THAT(run.output, FrameEquals(expected.bytes));
    REQUIRE(transport_checksum_verifies(run.output));
}

// XDP forwards `request`; returns the frame it left (backend port inside).
Frame forwarded(const Frame& request) {
    const XdpRun run = data_path().run(request.bytes);
    REQUIRE(run.action == kXdpPass);
    Frame out = request;
    out.bytes = run.output;
    REQUIRE(out.destination_port() != request.destination_port());
    return out;
}

}  // namespace

TEST_CASE("ICMP outbound: an error about a balanced UDP datagram quotes the frontend port", "[icmp][udp]") {
    struct Family {
        const char* name;
        PacketBuilder client, server;
        std::vector<ErrorKind> errors;
    };
    const std::vector<Family> families{
        {"IPv4", ipv4_client(), ipv4_server(), ipv4_errors()},
        {"IPv6", ipv6_client(), ipv6_server(), ipv6_errors()},
        {"IPv4 in a VLAN", ipv4_client().vlan(kTpid8021q, 12), ipv4_server().vlan(kTpid8021q, 12), ipv4_errors()},
        {"IPv6, hop-by-hop header outside and inside", ipv6_client().ipv6_hop_by_hop(),
         ipv6_server().ipv6_hop_by_hop(), ipv6_errors()},
    };
    for (const Family& family : families) {
        for (const ErrorKind& kind : family.errors) {
            configure_standard_frontend();
            INFO(family.name << ", " << kind.name);
            const Frame request =
                PacketBuilder(family.client).udp(kClientPort, kFrontendPort).payload(counting_payload(100)).build();
            const Frame at_backend = forwarded(request);
            REQUIRE(at_backend.destination_port() == kFirstBackend);
            // The whole datagram quoted, and only its first 8 transport bytes.
            const std::size_t header_bytes = request.l4_offset - request.l3_offset;
            for (std::size_t limit : {std::size_t{1} << 16, header_bytes + 8}) {
                INFO("quote cut to " << limit << " bytes");
                require_tc_rewrites(icmp_error(family.server, kind, quote_of(at_backend, limit)),
                                    icmp_error(family.server, kind, quote_of(request, limit)));
            }
        }
    }
}

TEST_CASE("ICMP outbound: a zero (absent) quoted IPv4 UDP checksum stays zero", "[icmp][udp]") {
    configure_standard_frontend();
    const Frame request =
        ipv4_client().udp(kClientPort, kFrontendPort).without_udp_checksum().payload(counting_payload(20)).build();
    const Frame at_backend = forwarded(request);
    REQUIRE(at_backend.udp_checksum() == 0);
    require_tc_rewrites(ipv4_server().icmp(3, 3).payload(quote_of(at_backend)).build(),
                        ipv4_server().icmp(3, 3).payload(quote_of(request)).build());
}

TEST_CASE("ICMP outbound: errors about TCP segments, quoted checksum or not", "[icmp][tcp]") {
    for (bool v6 : {false, true}) {
        data_path().configure(config_of({make_frontend(kFlowFrontendPort, Protocol::tcp, kFlowBackendPorts)}));
        INFO((v6 ? "IPv6" : "IPv4"));
        const PacketBuilder client = v6 ? ipv6_client() : ipv4_client();
        const PacketBuilder server = v6 ? ipv6_server() : ipv4_server();
        const ErrorKind kind = v6 ? ipv6_errors()[1] : ipv4_errors()[1];
        const Frame syn = PacketBuilder(client).tcp(kClientPort, kFlowFrontendPort).tcp_flags(kTcpSyn).build();
        const Frame at_backend = forwarded(syn);
        REQUIRE(at_backend.destination_port() == kFlowBackendPorts[0]);
        const std::size_t header_bytes = syn.l4_offset - syn.l3_offset;
        // Whole header (checksum quoted and restored); 8 bytes (ports only).
        for (std::size_t limit : {header_bytes + 20, header_bytes + 8}) {
            INFO("quote cut to " << limit << " bytes");
            require_tc_rewrites(icmp_error(server, kind, quote_of(at_backend, limit)),
                                icmp_error(server, kind, quote_of(syn, limit)));
        }
    }
}

TEST_CASE("ICMP outbound: errors portmux has no part in leave unchanged", "[icmp]") {
    configure_standard_frontend();
    // A client talking to a backend port directly (XDP saw it: an exception
    // to reply translation) gets errors about its datagrams unchanged.
    const Frame direct = ipv4_client().udp(kClientPort, kFirstBackend).payload(counting_payload(16)).build();
    require_passes_unchanged(direct);
    require_tc_unchanged(ipv4_server().icmp(3, 3).payload(quote_of(direct)).build());
    const Frame direct6 = ipv6_client().udp(kClientPort, kFirstBackend).payload(counting_payload(16)).build();
    require_passes_unchanged(direct6);
    require_tc_unchanged(ipv6_server().icmp(1, 4).payload(quote_of(direct6)).build());
    // A port that is no backend: nothing to translate.
    const Frame elsewhere = ipv4_client().udp(kClientPort, 5999).payload(counting_payload(16)).build();
    require_tc_unchanged(ipv4_server().icmp(3, 3).payload(quote_of(elsewhere)).build());
    // A balanced datagram, but ICMP that is not an error (redirect, parameter
    // problem, echo reply), and a quote too short for the ports.
    const Frame request = ipv4_client().udp(kClientPort, kFrontendPort).payload(counting_payload(16)).build();
    const Frame at_backend = forwarded(request);
    require_tc_unchanged(ipv4_server().icmp(5, 1).payload(quote_of(at_backend)).build());
    require_tc_unchanged(ipv4_server().icmp(12, 0).payload(quote_of(at_backend)).build());
    require_tc_unchanged(ipv4_server().icmp(0, 0).payload(quote_of(at_backend)).build());
    require_tc_unchanged(ipv4_server().icmp(3, 3).payload(quote_of(at_backend, 20 + 3)).build());
}

TEST_CASE("ICMP inbound: an error about a TCP reply reaches the backend's connection", "[icmp][tcp]") {
    for (bool v6 : {false, true}) {
        data_path().configure(config_of({make_frontend(kFlowFrontendPort, Protocol::tcp, kFlowBackendPorts)}));
        INFO((v6 ? "IPv6" : "IPv4"));
        const PacketBuilder client = v6 ? ipv6_client() : ipv4_client();
        const PacketBuilder server = v6 ? ipv6_server() : ipv4_server();
        const PacketBuilder router = v6 ? ipv6_router_to_server() : ipv4_router_to_server();
        // Two connections, so the second takes the second backend; its
        // first ACK records it in the flow table (a SYN only takes a slot).
        forwarded(PacketBuilder(client).tcp(kClientPort, kFlowFrontendPort).tcp_flags(kTcpSyn).build());
        const Frame syn = PacketBuilder(client).tcp(kClientPort + 1, kFlowFrontendPort).tcp_flags(kTcpSyn).build();
        REQUIRE(forwarded(syn).destination_port() == kFlowBackendPorts[1]);
        const Frame ack = PacketBuilder(client).tcp(kClientPort + 1, kFlowFrontendPort).tcp_flags(kTcpAck).build();
        REQUIRE(forwarded(ack).destination_port() == kFlowBackendPorts[1]);

        // A large reply the backend sent, and as it left through TC egress.
        const Frame sent = PacketBuilder(server).tcp(kFlowBackendPorts[1], kClientPort + 1).payload(counting_payload(1400)).build();
        const Frame on_wire = PacketBuilder(server).tcp(kFlowFrontendPort, kClientPort + 1).payload(counting_payload(1400)).build();
        for (const ErrorKind& kind : v6 ? ipv6_errors() : ipv4_errors()) {
            INFO(kind.name);
            // Routers quote 548 bytes (IPv4, 576 in all) or up to 1232 (IPv6).
            const std::size_t limit = v6 ? 1232 : 548;
            require_xdp_rewrites(icmp_error(router, kind, quote_of(on_wire, limit)),
                                 icmp_error(router, kind, quote_of(sent, limit)));
        }
        // Its flow entry evicted: the SYN's slot still names the backend,
        // as it does for the connection's segments.
        data_path().clear_flow_tables();
        const ErrorKind& too_big = v6 ? ipv6_errors()[1] : ipv4_errors()[1];
        require_xdp_rewrites(icmp_error(router, too_big, quote_of(on_wire, 548)),
                             icmp_error(router, too_big, quote_of(sent, 548)));
        // A connection no flow, slot or socket knows (tcp_affinity_tests.cpp
        // has the socket table): nothing to tell.
        const Frame unknown = PacketBuilder(server).tcp(kFlowFrontendPort, kClientPort + 2).payload(counting_payload(64)).build();
        require_passes_unchanged(icmp_error(router, v6 ? ipv6_errors()[1] : ipv4_errors()[1], quote_of(unknown)));
    }
}

TEST_CASE("ICMP inbound: UDP errors find the flow's backend, or the first in round-robin order", "[icmp][udp]") {
    for (bool v6 : {false, true}) {
        INFO((v6 ? "IPv6" : "IPv4"));
        const PacketBuilder client = v6 ? ipv6_client() : ipv4_client();
        const PacketBuilder server = v6 ? ipv6_server() : ipv4_server();
        const PacketBuilder router = v6 ? ipv6_router_to_server() : ipv4_router_to_server();
        const ErrorKind kind = v6 ? ipv6_errors()[1] : ipv4_errors()[1];
        const auto reply = [&](std::uint16_t source, std::uint16_t client_port) {
            return PacketBuilder(server).udp(source, client_port).payload(counting_payload(1300)).build();
        };

        SECTION("flow affinity: the client's backend") {
            Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
            frontend.affinity = Affinity::flow;
            data_path().configure(config_of({frontend}));
            forwarded(PacketBuilder(client).udp(kClientPort, kFrontendPort).payload(counting_payload(8)).build());
            const Frame second = PacketBuilder(client).udp(kClientPort + 1, kFrontendPort).payload(counting_payload(8)).build();
            REQUIRE(forwarded(second).destination_port() == kBackendPorts[1]);
            require_xdp_rewrites(icmp_error(router, kind, quote_of(reply(kFrontendPort, kClientPort + 1))),
                                 icmp_error(router, kind, quote_of(reply(kBackendPorts[1], kClientPort + 1))));
        }
        SECTION("per packet: the first backend of the round-robin order") {
            configure_standard_frontend();
            require_xdp_rewrites(icmp_error(router, kind, quote_of(reply(kFrontendPort, kClientPort))),
                                 icmp_error(router, kind, quote_of(reply(kFirstBackend, kClientPort))));
        }
        SECTION("a quoted source port that is no frontend") {
            configure_standard_frontend();
            require_passes_unchanged(icmp_error(router, kind, quote_of(reply(kFirstBackend, kClientPort))));
            require_passes_unchanged(icmp_error(router, kind, quote_of(reply(kFrontendPort + 100, kClientPort))));
        }
    }
}
