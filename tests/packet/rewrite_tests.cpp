// Datagrams to a frontend: every encapsulation the data path parses must
// come out with exactly the destination port and UDP checksum changed.
#include <catch2/catch.hpp>

#include <span>
#include <utility>

#include "checksum_reference.hpp"
#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux::test;

namespace {

// IPv4 options of `size` bytes (a multiple of 4): a Record Route option
// filling all but the last byte, then End of Options. Real options rather
// than NOP padding, so a parser that looked at option contents would show.
Bytes record_route_options(std::size_t size) {
    Bytes options(size, 0);
    options[0] = 7;                                      // Record Route
    options[1] = static_cast<std::uint8_t>(size - 1);    // 3 + 4 * slots
    options[2] = 4;                                      // pointer: first slot
    return options;
}

// Sends the first fragment of `whole` (a UDP datagram to the frontend) and
// requires the checksum of the whole datagram as if it had gone to the
// backend: a receiver checks it after reassembly.
void require_first_fragment_rewritten(const PacketBuilder& whole, const Frame& first_fragment) {
    REQUIRE(locate_transport(first_fragment.bytes).fragment);
    // `whole` untruncated still carries the fragment flags, but all of the
    // datagram, so the reference can sum it (it refuses a flagged frame on
    // its own, hence transport_checksum on the located bytes).
    const Frame whole_after = PacketBuilder(whole).udp(kClientPort, kFirstBackend).build();
    const TransportLocation where = locate_transport(whole_after.bytes);
    const std::uint16_t reassembled_checksum =
        transport_checksum(where.ip_version, where.source, where.destination, where.protocol,
                           std::span(whole_after.bytes).subspan(where.l4_offset, where.l4_length));
    REQUIRE(whole_after.udp_checksum() == reassembled_checksum);

    Frame expected = first_fragment;
    expected.set_destination_port(kFirstBackend);
    expected.set_udp_checksum(reassembled_checksum);

    const XdpRun run = data_path().run(first_fragment.bytes);
    REQUIRE(run.action == kXdpPass);
    REQUIRE_THAT(run.output, FrameEquals(expected.bytes));
}

}  // namespace

TEST_CASE("IPv4 UDP to the frontend goes to the first backend", "[rewrite][ipv4]") {
    configure_standard_frontend();
    const std::size_t payload_size = GENERATE(0, 1, 2, 7, 100, 1472);
    INFO("payload of " << payload_size << " bytes");
    require_rewritten_to(ipv4_client().udp(kClientPort, kFrontendPort).payload(counting_payload(payload_size)).build(),
                         kFirstBackend);
}

TEST_CASE("IPv4 UDP with Don't Fragment set is not mistaken for a fragment", "[rewrite][ipv4]") {
    configure_standard_frontend();
    require_rewritten_to(
        ipv4_client().ipv4_dont_fragment().udp(kClientPort, kFrontendPort).payload(counting_payload(64)).build(),
        kFirstBackend);
}

TEST_CASE("IPv4 with options: every IHL from 6 to 15", "[rewrite][ipv4][options]") {
    configure_standard_frontend();
    const int ihl = GENERATE(range(6, 16));
    INFO("IHL " << ihl);
    const Frame frame = ipv4_client()
                            .ipv4_options(record_route_options(static_cast<std::size_t>(ihl - 5) * 4))
                            .udp(kClientPort, kFrontendPort)
                            .payload(counting_payload(37))
                            .build();
    REQUIRE(frame.bytes[frame.l3_offset] == (0x40 | ihl));
    require_rewritten_to(frame, kFirstBackend);
}

TEST_CASE("IPv6 UDP to the frontend goes to the first backend", "[rewrite][ipv6]") {
    configure_standard_frontend();
    const std::size_t payload_size = GENERATE(0, 1, 2, 7, 100, 1452);
    INFO("payload of " << payload_size << " bytes");
    require_rewritten_to(ipv6_client().udp(kClientPort, kFrontendPort).payload(counting_payload(payload_size)).build(),
                         kFirstBackend);
}

TEST_CASE("IPv6 with extension headers", "[rewrite][ipv6][extension]") {
    configure_standard_frontend();
    PacketBuilder builder = ipv6_client();
    SECTION("hop-by-hop") {
        builder.ipv6_hop_by_hop();
    }
    SECTION("hop-by-hop, 24 bytes") {
        builder.ipv6_hop_by_hop(24);
    }
    SECTION("destination options") {
        builder.ipv6_destination_options();
    }
    SECTION("destination options, 16 bytes") {
        builder.ipv6_destination_options(16);
    }
    SECTION("fragment header of a whole datagram (atomic fragment)") {
        builder.ipv6_fragment(0, false);
    }
    SECTION("routing header, segments left 0") {
        builder.ipv6_routing(24);
    }
    SECTION("authentication header") {
        builder.ipv6_authentication();
    }
    SECTION("four headers, the most the data path walks") {
        builder.ipv6_hop_by_hop().ipv6_routing().ipv6_destination_options().ipv6_fragment(0, false);
    }
    SECTION("hop-by-hop, AH, destination options, fragment") {
        builder.ipv6_hop_by_hop(16).ipv6_authentication(32).ipv6_destination_options(8).ipv6_fragment(0, false);
    }
    require_rewritten_to(builder.udp(kClientPort, kFrontendPort).payload(counting_payload(51)).build(),
                         kFirstBackend);
}

TEST_CASE("VLAN-tagged frames", "[rewrite][vlan]") {
    configure_standard_frontend();
    PacketBuilder builder;
    SECTION("802.1Q, IPv4") {
        builder = ipv4_client().vlan(kTpid8021q, 100);
    }
    SECTION("802.1Q, IPv6") {
        builder = ipv6_client().vlan(kTpid8021q, 4094, 7);
    }
    SECTION("802.1ad alone, IPv4") {
        builder = ipv4_client().vlan(kTpid8021ad, 1);
    }
    SECTION("802.1ad outer + 802.1Q inner, IPv4") {
        builder = ipv4_client().vlan(kTpid8021ad, 300).vlan(kTpid8021q, 42);
    }
    SECTION("802.1ad outer + 802.1Q inner, IPv6 with hop-by-hop") {
        builder = ipv6_client().vlan(kTpid8021ad, 300).vlan(kTpid8021q, 42).ipv6_hop_by_hop();
    }
    SECTION("802.1Q + 802.1Q, IPv4 with options") {
        builder = ipv4_client().vlan(kTpid8021q, 5).vlan(kTpid8021q, 6).ipv4_options(record_route_options(12));
    }
    require_rewritten_to(builder.udp(kClientPort, kFrontendPort).payload(counting_payload(200)).build(),
                         kFirstBackend);
}

TEST_CASE("first fragments carry the ports and are rewritten", "[rewrite][fragment]") {
    configure_standard_frontend();
    SECTION("IPv4, MF set, offset 0") {
        const PacketBuilder whole = ipv4_client().udp(kClientPort, kFrontendPort).payload(counting_payload(2000));
        require_first_fragment_rewritten(
            whole, PacketBuilder(whole).ipv4_fragment(0, true).truncate_transport_to(1480).build());
    }
    SECTION("IPv4 with options and DF clear, MF set, in a VLAN") {
        const PacketBuilder whole = ipv4_client()
                                        .vlan(kTpid8021q, 9)
                                        .ipv4_options(record_route_options(8))
                                        .udp(kClientPort, kFrontendPort)
                                        .payload(counting_payload(3001));
        require_first_fragment_rewritten(
            whole, PacketBuilder(whole).ipv4_fragment(0, true).truncate_transport_to(1472).build());
    }
    SECTION("IPv6, M set, offset 0") {
        const PacketBuilder whole =
            ipv6_client().ipv6_fragment(0, true).udp(kClientPort, kFrontendPort).payload(counting_payload(2000));
        require_first_fragment_rewritten(whole, PacketBuilder(whole).truncate_transport_to(1448).build());
    }
    SECTION("IPv6 with hop-by-hop before the fragment header, double VLAN") {
        const PacketBuilder whole = ipv6_client()
                                        .vlan(kTpid8021ad, 10)
                                        .vlan(kTpid8021q, 20)
                                        .ipv6_hop_by_hop()
                                        .ipv6_fragment(0, true)
                                        .udp(kClientPort, kFrontendPort)
                                        .payload(counting_payload(1999));
        require_first_fragment_rewritten(whole, PacketBuilder(whole).truncate_transport_to(1000).build());
    }
}

TEST_CASE("UDP checksum 0 over IPv4 means none and stays 0", "[rewrite][checksum]") {
    configure_standard_frontend();
    PacketBuilder builder = ipv4_client();
    SECTION("plain") {}
    SECTION("double VLAN and options") {
        builder.vlan(kTpid8021ad, 1).vlan(kTpid8021q, 2).ipv4_options(record_route_options(40));
    }
    SECTION("first fragment") {
        builder.ipv4_fragment(0, true);
    }
    const Frame frame =
        builder.udp(kClientPort, kFrontendPort).payload(counting_payload(99)).without_udp_checksum().build();
    REQUIRE(frame.udp_checksum() == 0);

    Frame expected = frame;
    expected.set_destination_port(kFirstBackend);
    const XdpRun run = data_path().run(frame.bytes);
    REQUIRE(run.action == kXdpPass);
    REQUIRE_THAT(run.output, FrameEquals(expected.bytes));
}

TEST_CASE("an incremental result of 0 goes out as 0xffff", "[rewrite][checksum]") {
    configure_standard_frontend();
    // Choose a payload word so that the datagram addressed to the BACKEND
    // sums to all ones: its full checksum then computes to 0 and must be
    // sent as 0xffff. The datagram to the frontend, with the same payload,
    // is what arrives; RFC 1624's update of its checksum yields exactly 0.
    PacketBuilder to_backend;
    SECTION("IPv4") {
        to_backend = ipv4_client();
    }
    SECTION("IPv6 with a VLAN tag") {
        to_backend = ipv6_client().vlan(kTpid8021q, 77);
    }
    SECTION("IPv4 with options, double VLAN") {
        to_backend = ipv4_client().vlan(kTpid8021ad, 1).vlan(kTpid8021q, 2).ipv4_options(record_route_options(20));
    }
    to_backend.udp(kClientPort, kFirstBackend);
    const Bytes payload = payload_forcing_sum(to_backend, counting_payload(30), 10, 0xffff);
    const Frame expected = PacketBuilder(to_backend).payload(payload).build();
    REQUIRE(transport_sum_without_checksum(expected.bytes) == 0xffff);
    REQUIRE(expected.udp_checksum() == 0xffff);

    const Frame input = PacketBuilder(to_backend).udp(kClientPort, kFrontendPort).payload(payload).build();
    // The one's complement arithmetic the data path does, written out: it
    // must land on zero here, or this test would not test the edge.
    const auto incremental = static_cast<std::uint16_t>(~ones_complement_add(
        ones_complement_add(static_cast<std::uint16_t>(~input.udp_checksum()),
                            static_cast<std::uint16_t>(~kFrontendPort)),
        kFirstBackend));
    REQUIRE(incremental == 0);

    const XdpRun run = data_path().run(input.bytes);
    REQUIRE(run.action == kXdpPass);
    REQUIRE_THAT(run.output, FrameEquals(expected.bytes));
    REQUIRE(transport_checksum_verifies(run.output));
}

TEST_CASE("an arriving checksum of 0xffff (a computed 0) is updated correctly", "[rewrite][checksum]") {
    configure_standard_frontend();
    PacketBuilder to_frontend;
    SECTION("IPv4") {
        to_frontend = ipv4_client();
    }
    SECTION("IPv6") {
        to_frontend = ipv6_client();
    }
    to_frontend.udp(kClientPort, kFrontendPort);
    const Frame input =
        PacketBuilder(to_frontend).payload(payload_forcing_sum(to_frontend, counting_payload(16), 0, 0xffff)).build();
    REQUIRE(input.udp_checksum() == 0xffff);
    require_rewritten_to(input, kFirstBackend);
}

TEST_CASE("an update whose sum carries twice is folded completely", "[rewrite][checksum]") {
    // RFC 1624's ~HC + ~m + m' can exceed 0xffff so that the end-around
    // carry produces another carry: with m' > m + 1 and d = m' - m - 1,
    // exactly when HC == d. A single fold then drops a carry and the
    // checksum is off by one. Which arriving checksum does it depends on the
    // byte order the implementation reads the 16-bit fields in (the data
    // path uses them as they sit on the wire, so a little-endian CPU sees
    // them byte-swapped): both views are covered.
    const auto [frontend, backend] = GENERATE(std::pair<std::uint16_t, std::uint16_t>{9875, 9877},
                                              std::pair<std::uint16_t, std::uint16_t>{9875, 60000},
                                              std::pair<std::uint16_t, std::uint16_t>{53, 5353},
                                              std::pair<std::uint16_t, std::uint16_t>{1, 65535});
    const bool swapped_view = GENERATE(false, true);
    auto view = [swapped_view](std::uint16_t value) {
        return swapped_view ? static_cast<std::uint16_t>(value << 8 | value >> 8) : value;
    };
    const std::uint16_t m = view(frontend);
    const std::uint16_t m_new = view(backend);
    if (m_new <= m + 1) {
        SUCCEED("no arriving checksum needs a second fold in this byte order");
        return;
    }
    // The arriving checksum as the wire holds it (read big-endian).
    const std::uint16_t arriving = view(static_cast<std::uint16_t>(m_new - m - 1));
    INFO("frontend " << frontend << " -> backend " << backend << ", arriving checksum 0x" << std::hex
                     << arriving << (swapped_view ? " (byte-swapped view)" : " (wire view)"));
    data_path().configure(udp_config({{frontend, {backend}}}));

    PacketBuilder to_frontend;
    SECTION("IPv4") {
        to_frontend = ipv4_client();
    }
    SECTION("IPv6 in a VLAN") {
        to_frontend = ipv6_client().vlan(kTpid8021q, 12);
    }
    to_frontend.udp(kClientPort, frontend);
    // checksum = ~sum, so the sum ~arriving gives the arriving checksum.
    const Frame input = PacketBuilder(to_frontend)
                            .payload(payload_forcing_sum(to_frontend, counting_payload(24), 2,
                                                         static_cast<std::uint16_t>(~arriving)))
                            .build();
    REQUIRE(input.udp_checksum() == arriving);
    require_rewritten_to(input, backend);
}
