// Backend order. main() pins the process to one CPU, so every run below
// uses the same per-CPU cursor and the order is exact.
#include <catch2/catch.hpp>

#include <vector>

#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux::test;

namespace {

// Sends one datagram to `frontend` and returns the port it left with,
// requiring the exact rewrite for that port.
std::uint16_t send_to(std::uint16_t frontend, const PacketBuilder& client = ipv4_client()) {
    const Frame frame = PacketBuilder(client).udp(kClientPort, frontend).payload(counting_payload(12)).build();
    const XdpRun run = data_path().run(frame.bytes);
    REQUIRE(run.action == kXdpPass);
    Frame output = frame;
    output.bytes = run.output;
    REQUIRE_THAT(run.output, FrameEquals(expected_rewrite(frame, output.destination_port())));
    return output.destination_port();
}

}  // namespace

TEST_CASE("round robin: 9875 -> 9876, 9877, 9878 over three rounds, in order", "[round-robin]") {
    configure_standard_frontend();
    std::vector<std::uint16_t> sent_to;
    for (int i = 0; i < 9; ++i) {
        sent_to.push_back(send_to(kFrontendPort));
    }
    CHECK(sent_to == std::vector<std::uint16_t>{9876, 9877, 9878, 9876, 9877, 9878, 9876, 9877, 9878});
}

TEST_CASE("round robin: two frontends interleaved keep independent cursors", "[round-robin]") {
    data_path().configure(udp_config({{kFrontendPort, kBackendPorts}, {5300, {5301, 5302}}}));
    // An irregular interleaving, so a shared cursor could not pass by luck.
    const std::vector<std::uint16_t> frontends{9875, 5300, 5300, 9875, 9875, 5300, 9875,
                                               5300, 5300, 5300, 9875, 9875, 9875, 5300};
    std::vector<std::uint16_t> sent_to;
    for (std::uint16_t frontend : frontends) {
        sent_to.push_back(send_to(frontend));
    }
    CHECK(sent_to == std::vector<std::uint16_t>{9876, 5301, 5302, 9877, 9878, 5301, 9876,
                                                5302, 5301, 5302, 9877, 9878, 9876, 5301});
}

TEST_CASE("round robin: one cursor per frontend across IP versions and VLANs", "[round-robin]") {
    configure_standard_frontend();
    const std::vector<PacketBuilder> clients{ipv4_client(), ipv6_client(), ipv4_client().vlan(kTpid8021q, 5),
                                             ipv6_client().vlan(kTpid8021ad, 1).vlan(kTpid8021q, 2),
                                             ipv6_client().ipv6_hop_by_hop(), ipv4_client().ipv4_options(Bytes(4, 1))};
    std::vector<std::uint16_t> sent_to;
    for (const PacketBuilder& client : clients) {
        sent_to.push_back(send_to(kFrontendPort, client));
    }
    CHECK(sent_to == std::vector<std::uint16_t>{9876, 9877, 9878, 9876, 9877, 9878});
}

TEST_CASE("round robin: a single backend always, and 64 backends wrap", "[round-robin]") {
    SECTION("one backend") {
        data_path().configure(udp_config({{kFrontendPort, {12345}}}));
        for (int i = 0; i < 5; ++i) {
            CHECK(send_to(kFrontendPort) == 12345);
        }
    }
    SECTION("64 backends, three rounds") {
        std::vector<std::uint16_t> backends;
        for (std::uint16_t port = 20000; port < 20064; ++port) {
            backends.push_back(port);
        }
        data_path().configure(udp_config({{kFrontendPort, backends}}));
        for (int i = 0; i < 3 * 64; ++i) {
            INFO("datagram " << i);
            CHECK(send_to(kFrontendPort) == backends[static_cast<std::size_t>(i % 64)]);
        }
    }
}

TEST_CASE("round robin: a cursor beyond a shrunk backend set restarts at the first", "[round-robin]") {
    configure_standard_frontend();
    // A cursor left over from a larger set, on every CPU.
    data_path().set_round_robin_cursor(kFrontendPort, 7);
    CHECK(send_to(kFrontendPort) == 9876);
    CHECK(send_to(kFrontendPort) == 9877);
}
