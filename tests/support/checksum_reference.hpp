// A from-scratch Internet checksum reference for test frames: its own
// frame parser and a plain byte-by-byte summation, sharing nothing with the
// BPF data path (xdp/), so a test that compares the two catches a mistake in
// either one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace portmux::test {

// The 16-bit one's complement sum of `bytes` read as big-endian words (an
// odd last byte is padded with zero, RFC 1071), added to `initial`. The
// result is folded into [0, 0xffff]; it is 0 only when every word is zero.
std::uint16_t ones_complement_sum(std::span<const std::uint8_t> bytes,
                                  std::uint16_t initial = 0);

// One's complement addition of two 16-bit values (end-around carry).
std::uint16_t ones_complement_add(std::uint16_t a, std::uint16_t b);

// The Internet checksum of `bytes`: the complement of their sum.
std::uint16_t internet_checksum(std::span<const std::uint8_t> bytes);

// Where a frame's transport datagram sits, found by the reference's own
// parser: Ethernet, any number of 802.1Q/802.1ad/0x9100 tags, IPv4 (any
// IHL) or IPv6 with any chain of extension headers.
struct TransportLocation {
    int ip_version = 0;                  // 4 or 6
    std::size_t l3_offset = 0;
    std::size_t l4_offset = 0;
    std::size_t l4_length = 0;           // bytes the IP header says follow it
    std::uint8_t protocol = 0;           // IPPROTO_* of the transport header
    std::vector<std::uint8_t> source;      // 4 or 16 address bytes
    std::vector<std::uint8_t> destination; // 4 or 16 address bytes
    bool fragment = false;  // part of a datagram, first part included (not atomic)
};

// Locates the transport datagram; throws std::invalid_argument when the
// frame does not hold a complete IP header chain.
TransportLocation locate_transport(std::span<const std::uint8_t> frame);

// The one's complement sum of the pseudo-header (RFC 768 / RFC 793 for
// IPv4, RFC 8200 section 8.1 for IPv6) and `datagram`, with the datagram's
// own checksum field taken as it is. ICMP over IPv4 has no pseudo-header.
std::uint16_t transport_sum(int ip_version, std::span<const std::uint8_t> source,
                            std::span<const std::uint8_t> destination, std::uint8_t protocol,
                            std::span<const std::uint8_t> datagram);

// The checksum a sender puts in `datagram` (its checksum field is ignored):
// the complement of transport_sum() over the datagram with that field zero;
// for UDP a computed 0 is sent as 0xffff (RFC 768). Protocols: UDP, TCP,
// ICMP (over IPv4) and ICMPv6 (over IPv6).
std::uint16_t transport_checksum(int ip_version, std::span<const std::uint8_t> source,
                                 std::span<const std::uint8_t> destination,
                                 std::uint8_t protocol, std::span<const std::uint8_t> datagram);

// Byte offset of the checksum field inside a transport header.
std::size_t checksum_field_offset(std::uint8_t protocol);

// A full recomputation of the transport checksum of a frame, as its sender
// would put it on the wire. Throws std::invalid_argument for a fragment, a
// truncated datagram or an unsupported protocol: there is nothing to
// recompute from.
std::uint16_t recompute_transport_checksum(std::span<const std::uint8_t> frame);

// The one's complement sum over pseudo-header and datagram with the checksum
// field counted as zero: what a checksum is the complement of. Lets a test
// craft payloads that force a chosen checksum. Same preconditions as above.
std::uint16_t transport_sum_without_checksum(std::span<const std::uint8_t> frame);

// True when the frame's transport checksum verifies the way a receiver
// checks it (the sum over pseudo-header and datagram, checksum included, is
// 0xffff), or it is a UDP-over-IPv4 checksum of 0, which means "none".
bool transport_checksum_verifies(std::span<const std::uint8_t> frame);

// The IPv4 header checksum for `header` (its checksum field is ignored).
std::uint16_t ipv4_header_checksum(std::span<const std::uint8_t> header);

}  // namespace portmux::test
