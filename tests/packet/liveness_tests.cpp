// Backend liveness per address family (Backend::up_v4 / up_v6, set by
// `portmux run` from the kernel's socket table). A backend down for a
// family takes no new choice of that family: round robin, hash and UDP
// flow affinity skip it, a route tag to it counts as no_backend. When no
// backend of a frontend serves the family, the packet passes unrewritten
// (the kernel answers as for a closed port) and counts as no_backend.
// Established TCP flows stay; an explicit drain still wins.
// main() pins the process to one CPU, so the round-robin cursor is exact.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fixtures.hpp"
#include "maps.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

Frame datagram(const PacketBuilder& client, std::uint16_t client_port = kClientPort) {
    return PacketBuilder(client).udp(client_port, kFrontendPort).payload(counting_payload(10)).build();
}

Frame segment(const PacketBuilder& client, std::uint16_t client_port, std::uint8_t flags) {
    return PacketBuilder(client).tcp(client_port, kFlowFrontendPort).tcp_flags(flags).build();
}

// Runs `frame`, requires XDP_PASS with the frame byte for byte unchanged.
void require_unrewritten(const Frame& frame) {
    const XdpRun run = data_path().run(frame.bytes);
    REQUIRE(run.action == kXdpPass);
    REQUIRE_THAT(run.output, FrameEquals(frame.bytes));
}

}  // namespace

TEST_CASE("liveness: a backend down for IPv4 gets no IPv4 datagrams, still IPv6 ones", "[liveness]") {
    Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
    frontend.backends[1].up_v4 = false;  // 9877: only an IPv6 socket
    data_path().configure(config_of({frontend}));
    CounterTally tally(3);
    for (std::uint16_t expected : {9876, 9878, 9876, 9878}) {
        const Frame frame = datagram(ipv4_client());
        CHECK(forward(frame) == expected);
        tally.forwarded(index_of(kBackendPorts, expected), frame);
    }
    // IPv6 has its own order over all three; the cursor is shared, at 0 again.
    data_path().set_round_robin_cursor(kFrontendPort, 0);
    CounterTally v6(3);
    for (std::uint16_t expected : {9876, 9877, 9878}) {
        const Frame frame = datagram(ipv6_client());
        CHECK(forward(frame) == expected);
        v6.forwarded(index_of(kBackendPorts, expected), frame);
    }
    require_counters(kFrontendPort, Protocol::udp, v6.expected());
}

TEST_CASE("liveness: every backend down for a family passes unrewritten as no_backend", "[liveness]") {
    Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
    for (Backend& backend : frontend.backends) {
        backend.up_v6 = false;
    }
    frontend.backends[2].drained = true;  // drained and down: still "down" decides
    data_path().configure(config_of({frontend}));
    CounterTally tally(3);
    for (int i = 0; i < 3; ++i) {
        require_unrewritten(datagram(ipv6_client()));
        tally.dropped(PORTMUX_DROP_NO_BACKEND);  // counted, not dropped
    }
    CHECK(data_path().direct_client_count() == 0);
    // IPv4 still goes to the two undrained backends.
    for (std::uint16_t expected : {9876, 9877}) {
        const Frame frame = datagram(ipv4_client());
        CHECK(forward(frame) == expected);
        tally.forwarded(index_of(kBackendPorts, expected), frame);
    }
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("liveness: drain wins over up; only drained (none down) still drops", "[liveness][drain]") {
    Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
    for (Backend& backend : frontend.backends) {
        backend.drained = true;  // up for both families
    }
    data_path().configure(config_of({frontend}));
    require_dropped(datagram(ipv4_client()));
    require_dropped(datagram(ipv6_client()));
    CounterTally tally(3);
    tally.dropped(PORTMUX_DROP_NO_BACKEND);
    tally.dropped(PORTMUX_DROP_NO_BACKEND);
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("liveness: TCP keeps established flows on a backend gone down; new SYNs skip it", "[liveness][tcp]") {
    Frontend frontend = make_frontend(kFlowFrontendPort, Protocol::tcp, kFlowBackendPorts);
    data_path().configure(config_of({frontend}));
    // A connection on 8081 (first SYN), then 8081 goes down for IPv4.
    CHECK(forward(segment(ipv4_client(), 40001, kTcpSyn)) == 8081);
    frontend.backends[0].up_v4 = false;
    data_path().reload(config_of({frontend}));
    CHECK(forward(segment(ipv4_client(), 40001, kTcpAck)) == 8081);
    // A retransmitted SYN of that connection does not stay on a dead backend.
    data_path().set_round_robin_cursor(kFlowFrontendPort, 0, Protocol::tcp);
    CHECK(forward(segment(ipv4_client(), 40001, kTcpSyn)) == 8082);
    // New connections take 8082, 8083 in turn.
    for (std::uint16_t client : {40002, 40003, 40004}) {
        const std::uint16_t backend = forward(segment(ipv4_client(), client, kTcpSyn));
        CHECK(backend != 8081);
    }
    // A segment of a connection the table does not know hashes over live backends only.
    for (std::uint16_t client = 41000; client < 41040; ++client) {
        CHECK(forward(segment(ipv4_client(), client, kTcpAck)) != 8081);
    }
}

TEST_CASE("liveness: TCP with no backend up for the family: SYN passes unrewritten", "[liveness][tcp]") {
    Frontend frontend = make_frontend(kFlowFrontendPort, Protocol::tcp, kFlowBackendPorts);
    for (Backend& backend : frontend.backends) {
        backend.up_v4 = false;
    }
    data_path().configure(config_of({frontend}));
    require_unrewritten(segment(ipv4_client(), 40001, kTcpSyn));
    require_unrewritten(segment(ipv4_client(), 40002, kTcpAck));
    CHECK(data_path().flow_count() == 0);
    CHECK(forward(segment(ipv6_client(), 40001, kTcpSyn)) == 8081);
    const FrontendStats stats = data_path().stats(kFlowFrontendPort, Protocol::tcp);
    CHECK(stats.received == 3);
    CHECK(stats.drops[PORTMUX_DROP_NO_BACKEND] == 2);
}

TEST_CASE("liveness: a UDP flow-affinity client of a dead backend moves to a live one", "[liveness][udp-flow]") {
    Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
    frontend.affinity = Affinity::flow;
    data_path().configure(config_of({frontend}));
    const Frame frame = datagram(ipv6_client());
    CHECK(forward(frame) == 9876);
    CHECK(forward(frame) == 9876);
    frontend.backends[0].up_v6 = false;
    data_path().reload(config_of({frontend}));
    const std::uint16_t moved = forward(frame);
    CHECK(moved != 9876);
    CHECK(forward(frame) == moved);  // and stays there
    const auto flow = data_path().flow(request_flow_key(frame));
    REQUIRE(flow.has_value());
    CHECK(ntohs(flow->backend_port) == moved);
    // An IPv4 client of 9876 (up for IPv4) is not moved.
    const Frame v4 = datagram(ipv4_client(), 40100);
    data_path().set_round_robin_cursor(kFrontendPort, 0);
    CHECK(forward(v4) == 9876);
    CHECK(forward(v4) == 9876);
}

TEST_CASE("liveness: a route tag to a backend down for the family counts as no_backend", "[liveness][routing]") {
    Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
    Route route;
    route.offset = 0;
    route.length = 2;
    route.unknown = UnknownTagAction::round_robin;
    route.tags = {{{'A', 'A'}, 9877}};
    frontend.route = route;
    frontend.backends[1].up_v4 = false;
    data_path().configure(config_of({frontend}));
    const Frame tagged =
        ipv4_client().udp(kClientPort, kFrontendPort).payload(Bytes{'A', 'A', 1, 2, 3}).build();
    require_unrewritten(tagged);
    const Frame tagged6 =
        ipv6_client().udp(kClientPort, kFrontendPort).payload(Bytes{'A', 'A', 1, 2, 3}).build();
    CHECK(forward(tagged6) == 9877);
    const FrontendStats stats = data_path().stats(kFrontendPort);
    CHECK(stats.received == 2);
    CHECK(stats.drops[PORTMUX_DROP_NO_BACKEND] == 1);
}

TEST_CASE("liveness: read_frontends reads the up flags back", "[liveness][maps]") {
    Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
    frontend.backends[0].up_v4 = false;
    frontend.backends[2].up_v6 = false;
    frontend.backends[2].drained = true;
    data_path().configure(config_of({frontend}));
    const auto installed = read_frontends(data_path().maps());
    REQUIRE(installed.size() == 1);
    REQUIRE(installed[0].frontend.backends == frontend.backends);
    CHECK_FALSE(installed[0].frontend.backends[0].up_v4);
    CHECK(installed[0].frontend.backends[0].up_v6);
    CHECK_FALSE(installed[0].frontend.backends[2].up_v6);
}

TEST_CASE("layout version: write_config stamps the meta map; another version is refused", "[layout]") {
    configure_standard_frontend();
    const DataPathMaps maps = data_path().maps();
    REQUIRE(maps.meta >= 0);
    CHECK_NOTHROW(check_layout_version(maps.meta, "the test attachment"));
    const std::uint32_t zero = 0;
    const portmux_meta other{PORTMUX_LAYOUT_VERSION + 1, 0};
    REQUIRE(bpf_map_update_elem(maps.meta, &zero, &other, BPF_ANY) == 0);
    try {
        check_layout_version(maps.meta, "the test attachment");
        FAIL("another layout version was accepted");
    } catch (const LayoutMismatch& mismatch) {
        const std::string message = mismatch.what();
        CHECK_THAT(message, Catch::Contains("map layout " + std::to_string(PORTMUX_LAYOUT_VERSION + 1)));
        CHECK_THAT(message, Catch::Contains("this one uses layout " + std::to_string(PORTMUX_LAYOUT_VERSION)));
    }
    configure_standard_frontend();  // stamps it again
    CHECK_NOTHROW(check_layout_version(maps.meta, "the test attachment"));
}
