// Self-tests of the support code: the packet tests trust the builder and
// the checksum reference, so both are checked here against published or
// independently computed values first.
#include <catch2/catch.hpp>

#include <stdexcept>

#include "checksum_reference.hpp"
#include "fixtures.hpp"
#include "packet_builder.hpp"

using namespace portmux::test;

TEST_CASE("reference: one's complement sum matches RFC 1071's worked example", "[reference]") {
    const Bytes data{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    CHECK(ones_complement_sum(data) == 0xddf2);
    CHECK(internet_checksum(data) == 0x220d);
    // An odd length pads the last byte on the right.
    CHECK(ones_complement_sum(Bytes{0x12, 0x34, 0x56}) == 0x6834);
    CHECK(ones_complement_add(0xffff, 0x0001) == 0x0001);
    CHECK(ones_complement_add(0x8000, 0x8000) == 0x0001);
}

TEST_CASE("reference: IPv4 header checksum of a well-known header", "[reference]") {
    // The classic example: 192.168.0.1 -> 192.168.0.199, UDP, DF, TTL 64.
    const Bytes header{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                       0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    CHECK(ipv4_header_checksum(header) == 0xb861);
}

TEST_CASE("reference: UDP checksums equal independently computed values", "[reference]") {
    // Computed outside this code base with a separate implementation.
    const Bytes payload{'p', 'o', 'r', 't', 'm', 'u', 'x'};
    const Frame v4 = PacketBuilder{}
                         .ipv4(ipv4_address("10.1.2.3"), ipv4_address("10.9.8.7"))
                         .udp(5353, 9875)
                         .payload(payload)
                         .build();
    CHECK(v4.udp_checksum() == 0xdde6);
    CHECK(recompute_transport_checksum(v4.bytes) == 0xdde6);
    CHECK(transport_checksum_verifies(v4.bytes));

    const Frame v6 = PacketBuilder{}
                         .ipv6(ipv6_address("2001:db8::1"), ipv6_address("2001:db8::2"))
                         .udp(5353, 9875)
                         .payload(payload)
                         .build();
    CHECK(v6.udp_checksum() == 0xa085);
    CHECK(recompute_transport_checksum(v6.bytes) == 0xa085);
    CHECK(transport_checksum_verifies(v6.bytes));
}

namespace {

// A corrupted length field may make the datagram unreadable, which the
// reference reports by throwing: that too is "does not verify".
bool verifies_or_is_rejected(const Bytes& frame) {
    try {
        return transport_checksum_verifies(frame);
    } catch (const std::invalid_argument&) {
        return false;
    }
}

}  // namespace

TEST_CASE("reference: a flipped bit anywhere in the datagram or pseudo-header fails verification",
          "[reference]") {
    for (const Frame& frame : {ipv4_client().vlan(kTpid8021q, 7).udp(1, 2).payload(counting_payload(33)).build(),
                               ipv6_client().ipv6_hop_by_hop().tcp(1, 2).payload(counting_payload(20)).build()}) {
        const TransportLocation where = locate_transport(frame.bytes);
        REQUIRE(transport_checksum_verifies(frame.bytes));
        for (std::size_t offset = where.l4_offset; offset < frame.bytes.size(); ++offset) {
            Bytes corrupted = frame.bytes;
            corrupted[offset] ^= 0x10;
            INFO("flipped byte " << offset);
            CHECK_FALSE(verifies_or_is_rejected(corrupted));
        }
        // The destination address is part of the pseudo-header.
        Bytes corrupted = frame.bytes;
        corrupted[where.l4_offset - 1 - (where.ip_version == 6 ? 8 : 0)] ^= 0x01;
        CHECK_FALSE(transport_checksum_verifies(corrupted));
    }
}

TEST_CASE("reference: zero UDP checksum means none over IPv4 only; computed zero is 0xffff",
          "[reference]") {
    const Frame none = ipv4_client().udp(1, 2).without_udp_checksum().build();
    CHECK(none.udp_checksum() == 0);
    CHECK(transport_checksum_verifies(none.bytes));

    Frame v6 = ipv6_client().udp(1, 2).build();
    v6.set_udp_checksum(0);
    CHECK_FALSE(transport_checksum_verifies(v6.bytes));

    // Force the sum to all ones: the checksum computes to 0, sent as 0xffff.
    PacketBuilder builder = ipv4_client().udp(1, 2);
    const Frame zero = builder.payload(payload_forcing_sum(builder, counting_payload(10), 4, 0xffff)).build();
    CHECK(transport_sum_without_checksum(zero.bytes) == 0xffff);
    CHECK(zero.udp_checksum() == 0xffff);
    CHECK(transport_checksum_verifies(zero.bytes));
}

TEST_CASE("builder: lengths, EtherType chain and layer map are consistent", "[builder]") {
    const Frame frame = PacketBuilder{}
                            .vlan(kTpid8021ad, 100, 3)
                            .vlan(kTpid8021q, 200)
                            .ipv4(ipv4_address("10.0.0.1"), ipv4_address("10.0.0.2"))
                            .ipv4_options(Bytes(6, kIpv4OptionNop))
                            .udp(1000, 2000)
                            .payload(counting_payload(11))
                            .build();
    REQUIRE(frame.bytes.size() == 14 + 8 + 28 + 8 + 11);
    CHECK(frame.read16(12) == kTpid8021ad);
    CHECK(frame.read16(14) == (3 << 13 | 100));
    CHECK(frame.read16(16) == kTpid8021q);
    CHECK(frame.read16(18) == 200);
    CHECK(frame.read16(20) == kEtherTypeIpv4);
    CHECK(frame.l3_offset == 22);
    CHECK(frame.bytes[22] == 0x47);              // version 4, IHL 7 (options padded to 8)
    CHECK(frame.read16(24) == 28 + 8 + 11);      // total length
    CHECK(frame.l4_offset == 50);
    CHECK(frame.read16(frame.l4_offset + 4) == 19);  // UDP length
    CHECK(ipv4_header_checksum(std::span(frame.bytes).subspan(22, 28)) == frame.read16(32));

    std::size_t expected_offset = 0;
    for (const Layer& layer : frame.layers) {
        CHECK(layer.offset == expected_offset);
        expected_offset = layer.end();
    }
    CHECK(expected_offset == frame.bytes.size());
    CHECK(frame.layer("udp").offset == frame.l4_offset);
}

TEST_CASE("builder: IPv6 extension header chain and payload length", "[builder]") {
    const Frame frame = ipv6_client()
                            .ipv6_hop_by_hop(16)
                            .ipv6_routing()
                            .ipv6_authentication()
                            .ipv6_destination_options()
                            .ipv6_fragment(0, false)
                            .udp(1, 2)
                            .payload(counting_payload(5))
                            .build();
    const std::size_t ip = frame.l3_offset;
    CHECK(frame.read16(ip + 4) == 16 + 8 + 24 + 8 + 8 + 8 + 5);
    CHECK(frame.bytes[ip + 6] == kIpProtoHopByHop);
    CHECK(frame.bytes[frame.layer("hop-by-hop").offset] == kIpProtoRouting);
    CHECK(frame.bytes[frame.layer("hop-by-hop").offset + 1] == 1);  // (16 / 8) - 1
    CHECK(frame.bytes[frame.layer("routing").offset] == kIpProtoAuthentication);
    CHECK(frame.bytes[frame.layer("authentication").offset] == kIpProtoDestinationOptions);
    CHECK(frame.bytes[frame.layer("authentication").offset + 1] == 4);  // (24 / 4) - 2
    CHECK(frame.bytes[frame.layer("destination-options").offset] == kIpProtoFragment);
    CHECK(frame.bytes[frame.layer("fragment").offset] == kIpProtoUdp);
    CHECK(frame.l4_offset == ip + 40 + 64);
    // An atomic fragment (offset 0, no M) is a whole datagram.
    CHECK(transport_checksum_verifies(frame.bytes));
}

TEST_CASE("builder: a first fragment keeps the whole datagram's UDP length and checksum",
          "[builder]") {
    PacketBuilder whole = ipv4_client().udp(1, 2).payload(counting_payload(100));
    const Frame complete = whole.build();
    const Frame first = PacketBuilder(whole).ipv4_fragment(0, true).truncate_transport_to(48).build();
    CHECK(first.bytes.size() == complete.l4_offset + 48);
    CHECK(first.read16(first.l3_offset + 2) == 20 + 48);
    CHECK(first.read16(first.l4_offset + 4) == 108);
    CHECK(first.udp_checksum() == complete.udp_checksum());
    CHECK(locate_transport(first.bytes).fragment);
    CHECK_THROWS_AS(recompute_transport_checksum(first.bytes), std::invalid_argument);
}
