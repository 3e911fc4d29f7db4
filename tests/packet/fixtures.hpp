// The frontends, clients and payload helpers the packet tests share.
#pragma once

#include <cstddef>
#include <cstdint>
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
