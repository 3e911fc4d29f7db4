// Reply translation by backend port. The TC egress program, run here with
// BPF_PROG_TEST_RUN on Ethernet frames (the test run's skb has
// CHECKSUM_NONE, so bpf_l4_csum_replace updates the checksum in full),
// gives a packet leaving a backend port the frontend port its `ports`
// entry names, unless its client talks to that backend port directly.
// Nothing is recorded per balanced client.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstdint>
#include <vector>

#include "checksum_reference.hpp"
#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

struct Family {
    const char* name;
    PacketBuilder client;
    PacketBuilder server;
};

std::vector<Family> families() {
    return {{"IPv4", ipv4_client(), ipv4_server()},
            {"IPv6", ipv6_client(), ipv6_server()},
            {"IPv4 in a VLAN", ipv4_client().vlan(kTpid8021q, 12), ipv4_server().vlan(kTpid8021q, 12)},
            {"IPv6 with a hop-by-hop header", ipv6_client().ipv6_hop_by_hop(), ipv6_server().ipv6_hop_by_hop()}};
}

// Runs `reply` through TC egress and requires TC_ACT_UNSPEC with exactly the
// source port turned into `frontend_port` and a fully valid checksum.
void require_reply_translated(const Frame& reply, std::uint16_t frontend_port) {
    REQUIRE(transport_checksum_verifies(reply.bytes));
    const XdpRun run = data_path().run_tc(reply.bytes);
    REQUIRE(run.action == kTcActContinue);
    REQUIRE_THAT(run.output, FrameEquals(expected_source_rewrite(reply, frontend_port)));
    REQUIRE(transport_checksum_verifies(run.output));
}

void require_reply_unchanged(const Frame& reply) {
    const XdpRun run = data_path().run_tc(reply.bytes);
    REQUIRE(run.action == kTcActContinue);
    REQUIRE_THAT(run.output, FrameEquals(reply.bytes));
}

}  // namespace

TEST_CASE("replies: balanced UDP records nothing per client", "[reply][udp]") {
    configure_standard_frontend();
    CounterTally tally(3);
    for (std::uint16_t client_port : {kClientPort, std::uint16_t(kClientPort + 1)}) {
        const Frame request = ipv4_client().udp(client_port, kFrontendPort).payload(counting_payload(16)).build();
        for (std::size_t i = 0; i < kBackendPorts.size(); ++i) {
            CHECK(forward(request) == kBackendPorts[i]);
            tally.forwarded(i, request);
            CHECK(data_path().reply_frontend(request, kBackendPorts[i]) == kFrontendPort);
        }
    }
    CHECK(data_path().flow_count() == 0);
    CHECK(data_path().direct_client_count() == 0);
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("replies: translated by backend port, for clients XDP never saw", "[reply][udp][tcp]") {
    data_path().configure(config_of({make_frontend(kFrontendPort, Protocol::udp, kBackendPorts),
                                     make_frontend(5300, Protocol::udp, {5301}),
                                     make_frontend(8080, Protocol::tcp, {8081, 8082})}));
    for (std::uint16_t backend : kBackendPorts) {
        require_reply_translated(ipv4_server().udp(backend, 41234).payload(counting_payload(9)).build(),
                                 kFrontendPort);
    }
    require_reply_translated(ipv6_server().udp(5301, 50000).payload(counting_payload(9)).build(), 5300);
    require_reply_translated(ipv4_server().tcp(8082, 50001).tcp_flags(kTcpSyn | kTcpAck).build(), 8080);
    // Per protocol: UDP from a TCP backend port, TCP from a UDP one.
    require_reply_unchanged(ipv4_server().udp(8081, 50001).payload(counting_payload(4)).build());
    require_reply_unchanged(ipv4_server().tcp(5301, 50001).build());
    // A reload that moves a backend port to another frontend: its replies follow.
    data_path().reload(config_of({make_frontend(kFrontendPort, Protocol::udp, {9876, 9877}),
                                  make_frontend(5300, Protocol::udp, {5301, 9878})}));
    require_reply_translated(ipv4_server().udp(9878, 41234).payload(counting_payload(9)).build(), 5300);
    require_reply_unchanged(ipv4_server().tcp(8081, 50001).build());
}

TEST_CASE("replies: a UDP reply from the backend leaves with the frontend port", "[reply][udp]") {
    for (const Family& family : families()) {
        INFO(family.name);
        configure_standard_frontend();
        const Frame request = PacketBuilder(family.client).udp(kClientPort, kFrontendPort).payload(counting_payload(20)).build();
        CHECK(forward(request) == 9876);
        for (std::size_t size : {0, 1, 2, 7, 64, 1200}) {
            INFO("reply payload " << size);
            require_reply_translated(
                PacketBuilder(family.server).udp(9876, kClientPort).payload(counting_payload(size)).build(),
                kFrontendPort);
        }
        // Another backend of the frontend, another client port: by port.
        require_reply_translated(PacketBuilder(family.server).udp(9877, kClientPort).payload(counting_payload(20)).build(),
                                 kFrontendPort);
        require_reply_translated(PacketBuilder(family.server).udp(9876, kClientPort + 1).payload(counting_payload(20)).build(),
                                 kFrontendPort);
        // The frontend port itself, TCP from the same port number.
        require_reply_unchanged(PacketBuilder(family.server).udp(kFrontendPort, kClientPort).payload(counting_payload(20)).build());
        require_reply_unchanged(PacketBuilder(family.server).tcp(9876, kClientPort).payload(counting_payload(20)).build());
        // A client that talks to the backend port directly: its replies keep it.
        require_passes_unchanged(PacketBuilder(family.client).udp(kClientPort + 2, 9876).payload(counting_payload(20)).build());
        require_reply_unchanged(PacketBuilder(family.server).udp(9876, kClientPort + 2).payload(counting_payload(20)).build());
        require_reply_translated(PacketBuilder(family.server).udp(9876, kClientPort + 3).payload(counting_payload(20)).build(),
                                 kFrontendPort);
        // The request direction is not a reply.
        require_reply_unchanged(request);
    }
}

TEST_CASE("replies: a TCP reply (SYN-ACK, data) from the backend leaves with the frontend port", "[reply][tcp]") {
    for (const Family& family : families()) {
        INFO(family.name);
        data_path().configure(config_of({make_frontend(8080, Protocol::tcp, {8081, 8082})}));
        const Frame syn = PacketBuilder(family.client).tcp(kClientPort, 8080).tcp_flags(kTcpSyn).build();
        CHECK(forward(syn) == 8081);
        require_reply_translated(
            PacketBuilder(family.server).tcp(8081, kClientPort).tcp_flags(kTcpSyn | kTcpAck).build(), 8080);
        require_reply_translated(PacketBuilder(family.server)
                                     .tcp(8081, kClientPort)
                                     .tcp_options({1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8})
                                     .payload(counting_payload(333))
                                     .build(),
                                 8080);
        require_reply_translated(
            PacketBuilder(family.server).tcp(8081, kClientPort).tcp_flags(kTcpFin | kTcpAck).build(), 8080);
        require_reply_translated(PacketBuilder(family.server).tcp(8082, kClientPort).build(), 8080);
        require_reply_unchanged(PacketBuilder(family.server).udp(8081, kClientPort).payload(counting_payload(4)).build());
    }
}

TEST_CASE("replies: checksum corner cases", "[reply][checksum]") {
    data_path().configure(config_of({make_frontend(kFrontendPort, Protocol::udp, kBackendPorts),
                                     make_frontend(kFrontendPort, Protocol::tcp, {9876})}));

    SECTION("IPv4 UDP without a checksum keeps checksum 0") {
        const Frame reply = ipv4_server().udp(9876, kClientPort).without_udp_checksum().payload(counting_payload(30)).build();
        REQUIRE(reply.transport_checksum() == 0);
        const XdpRun run = data_path().run_tc(reply.bytes);
        REQUIRE(run.action == kTcActContinue);
        Frame expected = reply;
        expected.set_source_port(kFrontendPort);
        REQUIRE_THAT(run.output, FrameEquals(expected.bytes));
    }
    SECTION("UDP whose new checksum computes to 0 is sent as 0xffff") {
        for (const PacketBuilder& server : {ipv4_server(), ipv6_server()}) {
            // Sum 0xffff over the reply as it leaves: checksum 0, sent as 0xffff.
            const PacketBuilder after = PacketBuilder(server).udp(kFrontendPort, kClientPort);
            const Bytes payload = payload_forcing_sum(after, counting_payload(10), 2, 0xffff);
            REQUIRE(PacketBuilder(after).payload(payload).build().transport_checksum() == 0xffff);
            const Frame reply = PacketBuilder(server).udp(9876, kClientPort).payload(payload).build();
            const XdpRun run = data_path().run_tc(reply.bytes);
            REQUIRE(run.action == kTcActContinue);
            REQUIRE_THAT(run.output, FrameEquals(expected_source_rewrite(reply, kFrontendPort)));
            Frame output = reply;
            output.bytes = run.output;
            CHECK(output.transport_checksum() == 0xffff);
            CHECK(transport_checksum_verifies(run.output));
        }
    }
    SECTION("UDP whose old checksum is 0xffff (a computed 0)") {
        const PacketBuilder before = ipv6_server().udp(9876, kClientPort);
        const Bytes payload = payload_forcing_sum(before, counting_payload(10), 2, 0xffff);
        const Frame reply = PacketBuilder(before).payload(payload).build();
        REQUIRE(reply.transport_checksum() == 0xffff);
        require_reply_translated(reply, kFrontendPort);
    }
    SECTION("TCP whose new checksum is 0") {
        const PacketBuilder after = ipv6_server().tcp(kFrontendPort, kClientPort);
        const Bytes payload = payload_forcing_sum(after, counting_payload(10), 2, 0xffff);
        REQUIRE(PacketBuilder(after).payload(payload).build().transport_checksum() == 0);
        require_reply_translated(PacketBuilder(ipv6_server()).tcp(9876, kClientPort).payload(payload).build(),
                                 kFrontendPort);
    }
    SECTION("a frame that is not UDP or TCP passes unchanged") {
        require_reply_unchanged(ipv4_server().icmp(0, 0, 0x00010001).payload(counting_payload(8)).build());
        require_reply_unchanged(ipv6_server().icmp(129, 0, 0x00010001).payload(counting_payload(8)).build());
    }
}

TEST_CASE("replies: UDP flow affinity records its flow, no reply entry", "[reply][udp-flow]") {
    Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
    frontend.affinity = Affinity::flow;
    data_path().configure(config_of({frontend}));
    const Frame request = ipv6_client().udp(kClientPort, kFrontendPort).payload(counting_payload(9)).build();
    CHECK(forward(request) == 9876);
    CHECK(forward(request) == 9876);
    CHECK(data_path().flow_count() == 1);
    CHECK(data_path().direct_client_count() == 0);
    require_reply_translated(ipv6_server().udp(9876, kClientPort).payload(counting_payload(5)).build(), kFrontendPort);
}
