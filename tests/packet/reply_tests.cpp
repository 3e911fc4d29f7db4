// Reply translation. XDP records (client, client port, backend port) ->
// frontend port for every packet it forwards; the TC egress program, run
// here with BPF_PROG_TEST_RUN on Ethernet frames (the test run's skb has
// CHECKSUM_NONE, so bpf_l4_csum_replace updates the checksum in full),
// gives a reply leaving a backend the frontend port back as its source.
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

// The server side of ipv4_client() / ipv6_client(): replies go back from
// the frontend's address to the client's.
PacketBuilder ipv4_server() {
    return PacketBuilder{}.ipv4(ipv4_address("198.51.100.1"), ipv4_address("192.0.2.10"));
}

PacketBuilder ipv6_server() {
    return PacketBuilder{}.ipv6(ipv6_address("2001:db8:2::1"), ipv6_address("2001:db8:1::10"));
}

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

TEST_CASE("replies: per-packet UDP records one reply entry per client and backend", "[reply][udp]") {
    configure_standard_frontend();
    CounterTally tally(3);
    const Frame request = ipv4_client().udp(kClientPort, kFrontendPort).payload(counting_payload(16)).build();
    for (int round = 0; round < 2; ++round) {
        for (std::size_t i = 0; i < kBackendPorts.size(); ++i) {
            CHECK(forward(request) == kBackendPorts[i]);
            tally.forwarded(i, request);
            const auto entry = data_path().reply(reply_key(request, kBackendPorts[i]));
            REQUIRE(entry.has_value());
            CHECK(ntohs(entry->frontend_port) == kFrontendPort);
            CHECK(entry->pad[0] == 0);
        }
        // Per-packet affinity keeps no flow, and a client has one reply
        // entry per backend, however many datagrams it sends.
        CHECK(data_path().flow_count() == 0);
        CHECK(data_path().reply_count() == 3);
    }
    // Another client port: entries of its own.
    const Frame other = ipv4_client().udp(kClientPort + 1, kFrontendPort).payload(counting_payload(16)).build();
    CHECK(forward(other) == 9876);
    tally.forwarded(0, other);
    CHECK(data_path().reply(reply_key(other, 9876)).has_value());
    CHECK_FALSE(data_path().reply(reply_key(other, 9877)).has_value());
    CHECK(data_path().reply_count() == 4);
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
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
        // A backend this client was never sent to: no entry, no change.
        require_reply_unchanged(PacketBuilder(family.server).udp(9877, kClientPort).payload(counting_payload(20)).build());
        // The frontend port itself, another client port, TCP from the same port.
        require_reply_unchanged(PacketBuilder(family.server).udp(kFrontendPort, kClientPort).payload(counting_payload(20)).build());
        require_reply_unchanged(PacketBuilder(family.server).udp(9876, kClientPort + 1).payload(counting_payload(20)).build());
        require_reply_unchanged(PacketBuilder(family.server).tcp(9876, kClientPort).payload(counting_payload(20)).build());
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
        require_reply_unchanged(PacketBuilder(family.server).tcp(8082, kClientPort).build());
        require_reply_unchanged(PacketBuilder(family.server).udp(8081, kClientPort).payload(counting_payload(4)).build());
    }
}

TEST_CASE("replies: entries written directly, checksum corner cases", "[reply][checksum]") {
    configure_standard_frontend();
    const Frame request = ipv4_client().udp(kClientPort, kFrontendPort).build();
    data_path().set_reply(reply_key(request, 9876), kFrontendPort);
    const Frame tcp_request = ipv6_client().tcp(kClientPort, kFrontendPort).build();
    data_path().set_reply(reply_key(tcp_request, 9876), kFrontendPort);
    const Frame udp6_request = ipv6_client().udp(kClientPort, kFrontendPort).build();
    data_path().set_reply(reply_key(udp6_request, 9876), kFrontendPort);

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

TEST_CASE("replies: UDP flow affinity records the reply entry of its flow", "[reply][udp-flow]") {
    Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
    frontend.affinity = Affinity::flow;
    data_path().configure(config_of({frontend}));
    const Frame request = ipv6_client().udp(kClientPort, kFrontendPort).payload(counting_payload(9)).build();
    CHECK(forward(request) == 9876);
    CHECK(forward(request) == 9876);
    CHECK(data_path().reply_count() == 1);
    const auto entry = data_path().reply(reply_key(request, 9876));
    REQUIRE(entry.has_value());
    CHECK(ntohs(entry->frontend_port) == kFrontendPort);
    require_reply_translated(ipv6_server().udp(9876, kClientPort).payload(counting_payload(5)).build(), kFrontendPort);
}
