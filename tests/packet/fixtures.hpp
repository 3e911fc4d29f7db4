// The frontends, clients and payload helpers the packet tests share.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "checksum_reference.hpp"
#include "config.hpp"
#include "packet_builder.hpp"
#include "xdp_harness.hpp"

namespace portmux::test {

inline constexpr std::uint16_t kFrontendPort = 9875;  // 0x2693 on the wire
inline const std::vector<std::uint16_t> kBackendPorts{9876, 9877, 9878};
inline constexpr std::uint16_t kFirstBackend = 9876;
inline constexpr std::uint16_t kClientPort = 40000;

// The frontend the connection, affinity, ICMP and liveness tests use, TCP or
// UDP: 8080 -> 8081, 8082, 8083, away from the standard 9875 frontend's ports.
inline constexpr std::uint16_t kFlowFrontendPort = 8080;
inline const std::vector<std::uint16_t> kFlowBackendPorts{8081, 8082, 8083};

// One second of the data path's clock (ns), to age flow entries by hand.
inline constexpr std::uint64_t kSecondNs = 1000000000ull;

// One UDP frontend 9875 -> 9876, 9877, 9878 with its cursor at the start.
inline void configure_standard_frontend() {
    data_path().configure(udp_config({{kFrontendPort, kBackendPorts}}));
}

inline PacketBuilder ipv4_client() {
    return PacketBuilder{}.ipv4(ipv4_address("192.0.2.10"), ipv4_address("198.51.100.1"));
}

inline PacketBuilder ipv6_client() {
    return PacketBuilder{}.ipv6(ipv6_address("2001:db8:1::10"), ipv6_address("2001:db8:2::1"));
}

// The server side of ipv4_client() / ipv6_client(): replies go back from
// the frontend's address to the client's.
inline PacketBuilder ipv4_server() {
    return PacketBuilder{}.ipv4(ipv4_address("198.51.100.1"), ipv4_address("192.0.2.10"));
}

inline PacketBuilder ipv6_server() {
    return PacketBuilder{}.ipv6(ipv6_address("2001:db8:2::1"), ipv6_address("2001:db8:1::10"));
}

// A recognisable, non-trivial payload: 0x00, 0x01, ... wrapping at 0xff.
inline Bytes counting_payload(std::size_t size) {
    Bytes payload(size);
    for (std::size_t i = 0; i < size; ++i) {
        payload[i] = static_cast<std::uint8_t>(i * 7 + 3);
    }
    return payload;
}

// `payload` with its 16-bit word at even offset `at` chosen so that the
// frame `builder` makes with it has one's complement sum `target_sum` over
// pseudo-header and transport datagram (checksum field counted as zero).
// The word enters the sum once, so it is the difference, in one's
// complement, between the target and the sum without it.
inline Bytes payload_forcing_sum(PacketBuilder builder, Bytes payload, std::size_t at,
                                 std::uint16_t target_sum) {
    payload.at(at) = 0;
    payload.at(at + 1) = 0;
    const Frame without = builder.payload(payload).build();
    const std::uint16_t rest = transport_sum_without_checksum(without.bytes);
    const std::uint16_t word = ones_complement_add(target_sum, static_cast<std::uint16_t>(~rest));
    payload[at] = static_cast<std::uint8_t>(word >> 8);
    payload[at + 1] = static_cast<std::uint8_t>(word);
    return payload;
}

}  // namespace portmux::test

namespace portmux::test {

// After frames that must pass untouched: the next datagram to the frontend
// still goes to the first backend, so none of them moved the cursor.
inline void require_cursor_still_at_first_backend() {
    require_rewritten_to(ipv4_client().udp(kClientPort, kFrontendPort).payload(counting_payload(8)).build(),
                         kFirstBackend);
}

// Recomputes the IPv4 header checksum after a test patched the header, so
// the patched field is the frame's only defect.
inline void refresh_ipv4_header_checksum(Frame& frame) {
    const std::uint16_t checksum =
        ipv4_header_checksum(std::span(frame.bytes).subspan(frame.l3_offset, 20));
    frame.write16(frame.l3_offset + 10, checksum);
}

}  // namespace portmux::test

namespace portmux::test {

// A frontend with equally weighted (weight 1) backends.
inline Frontend make_frontend(std::uint16_t port, Protocol protocol,
                              const std::vector<std::uint16_t>& backends) {
    Frontend frontend;
    frontend.port = port;
    frontend.protocol = protocol;
    frontend.backends.assign(backends.begin(), backends.end());
    return frontend;
}

inline Config config_of(std::initializer_list<Frontend> frontends) {
    Config config;
    config.frontends.assign(frontends.begin(), frontends.end());
    return config;
}

// Runs `frame`, requires XDP_PASS with exactly the destination port
// rewritten (checksum = full recomputation) and returns the backend port.
inline std::uint16_t forward(const Frame& frame) {
    REQUIRE(transport_checksum_verifies(frame.bytes));
    const XdpRun run = data_path().run(frame.bytes);
    REQUIRE(run.action == kXdpPass);
    Frame output = frame;
    output.bytes = run.output;
    const std::uint16_t backend = output.destination_port();
    REQUIRE_THAT(run.output, FrameEquals(expected_rewrite(frame, backend)));
    REQUIRE(transport_checksum_verifies(run.output));
    return backend;
}

// Runs `frame` and requires XDP_DROP with the frame left byte for byte.
inline void require_dropped(const Frame& frame) {
    const XdpRun run = data_path().run(frame.bytes);
    REQUIRE(run.action == kXdpDrop);
    REQUIRE_THAT(run.output, FrameEquals(frame.bytes));
}

// Drop counters by reason, spelled out: {too_short, too_long,
// magic_mismatch, unknown_tag, no_backend}.
using DropCounts = std::array<std::uint64_t, PORTMUX_DROP_REASONS>;

// What a frontend's counters must read, summed over CPUs.
struct ExpectedCounters {
    std::uint64_t received = 0;
    std::vector<std::uint64_t> packets;  // per backend, in config order
    std::vector<std::uint64_t> bytes;    // per backend: whole frames
    DropCounts drops{};
};

inline void require_counters(std::uint16_t frontend_port, Protocol protocol,
                             const ExpectedCounters& expected) {
    const FrontendStats stats = data_path().stats(frontend_port, protocol);
    INFO("counters of frontend " << frontend_port << "/" << to_string(protocol));
    CHECK(stats.received == expected.received);
    REQUIRE(stats.backends.size() == expected.packets.size());
    REQUIRE(stats.backends.size() == expected.bytes.size());
    for (std::size_t i = 0; i < stats.backends.size(); ++i) {
        INFO("backend " << i << " (port " << stats.backends[i].port << ")");
        CHECK(stats.backends[i].packets == expected.packets[i]);
        CHECK(stats.backends[i].bytes == expected.bytes[i]);
    }
    for (std::size_t r = 0; r < expected.drops.size(); ++r) {
        INFO("drop reason " << drop_reason_name(r));
        CHECK(stats.drops[r] == expected.drops[r]);
    }
}

// Tallies the frames a test sends, to state the counters it expects.
class CounterTally {
public:
    explicit CounterTally(std::size_t backends) {
        expected_.packets.assign(backends, 0);
        expected_.bytes.assign(backends, 0);
    }
    void forwarded(std::size_t backend_index, const Frame& frame) {
        ++expected_.received;
        ++expected_.packets.at(backend_index);
        expected_.bytes.at(backend_index) += frame.bytes.size();
    }
    void dropped(portmux_drop_reason reason) {
        ++expected_.received;
        ++expected_.drops.at(reason);
    }
    const ExpectedCounters& expected() const { return expected_; }

private:
    ExpectedCounters expected_;
};

// Index of `port` in `ports`; fails the test when absent.
inline std::size_t index_of(const std::vector<std::uint16_t>& ports, std::uint16_t port) {
    for (std::size_t i = 0; i < ports.size(); ++i) {
        if (ports[i] == port) {
            return i;
        }
    }
    FAIL("port " << port << " is not a backend");
    return 0;
}

}  // namespace portmux::test
