// Frames the data path must leave alone: XDP_PASS, every byte intact, and
// the round-robin cursor not moved.
#include <catch2/catch.hpp>

#include "checksum_reference.hpp"
#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux::test;

TEST_CASE("TCP to the UDP frontend port passes unchanged", "[pass]") {
    configure_standard_frontend();
    SECTION("IPv4") {
        require_passes_unchanged(ipv4_client().tcp(kClientPort, kFrontendPort).payload(counting_payload(40)).build());
    }
    SECTION("IPv6 in a VLAN") {
        require_passes_unchanged(
            ipv6_client().vlan(kTpid8021q, 3).tcp(kClientPort, kFrontendPort).payload(counting_payload(40)).build());
    }
    SECTION("UDP is not balanced by a TCP frontend on the same port") {
        portmux::Config config;
        portmux::Frontend tcp_only;
        tcp_only.port = kFrontendPort;
        tcp_only.protocol = portmux::Protocol::tcp;
        tcp_only.backends.assign(kBackendPorts.begin(), kBackendPorts.end());
        config.frontends.push_back(tcp_only);
        data_path().configure(config);
        require_passes_unchanged(ipv4_client().udp(kClientPort, kFrontendPort).build());
        require_passes_unchanged(ipv6_client().udp(kClientPort, kFrontendPort).build());
        configure_standard_frontend();
    }
    require_cursor_still_at_first_backend();
}

TEST_CASE("ICMP passes unchanged, even where a UDP parser would see the frontend port", "[pass]") {
    configure_standard_frontend();
    SECTION("ICMP echo whose checksum field reads 9875 (bytes 2-3, where UDP has its destination port)") {
        // checksum = ~sum, so a sum of ~9875 makes the checksum read 9875.
        PacketBuilder echo = ipv4_client().icmp(8, 0, 0x00010001);
        const Frame frame =
            PacketBuilder(echo).payload(payload_forcing_sum(echo, counting_payload(32), 0, ~kFrontendPort & 0xffff)).build();
        REQUIRE(frame.destination_port() == kFrontendPort);
        REQUIRE(transport_checksum_verifies(frame.bytes));
        require_passes_unchanged(frame);
    }
    SECTION("ICMPv6 echo whose checksum field reads 9875") {
        PacketBuilder echo = ipv6_client().icmp(128, 0, 0x00010001);
        const Frame frame =
            PacketBuilder(echo).payload(payload_forcing_sum(echo, counting_payload(32), 0, ~kFrontendPort & 0xffff)).build();
        REQUIRE(frame.destination_port() == kFrontendPort);
        REQUIRE(transport_checksum_verifies(frame.bytes));
        require_passes_unchanged(frame);
    }
    SECTION("ICMP port unreachable quoting a datagram to the frontend") {
        const Frame quoted = ipv4_client().udp(kClientPort, kFrontendPort).payload(counting_payload(8)).build();
        const Bytes quote(quoted.bytes.begin() + static_cast<std::ptrdiff_t>(quoted.l3_offset), quoted.bytes.end());
        require_passes_unchanged(ipv4_client().icmp(3, 3).payload(quote).build());
    }
    SECTION("ICMPv6 port unreachable quoting a datagram to the frontend") {
        const Frame quoted = ipv6_client().udp(kClientPort, kFrontendPort).payload(counting_payload(8)).build();
        const Bytes quote(quoted.bytes.begin() + static_cast<std::ptrdiff_t>(quoted.l3_offset), quoted.bytes.end());
        require_passes_unchanged(ipv6_client().icmp(1, 4).payload(quote).build());
    }
    require_cursor_still_at_first_backend();
}

TEST_CASE("UDP to a port that is not a frontend passes unchanged", "[pass]") {
    configure_standard_frontend();
    // 0x9326 is 9875 byte-swapped: catches a lookup key in host order.
    const std::uint16_t port = GENERATE(std::uint16_t{0}, std::uint16_t{9874}, std::uint16_t{9876},
                                        std::uint16_t{9878}, std::uint16_t{0x9326}, std::uint16_t{65535});
    INFO("destination port " << port);
    require_passes_unchanged(ipv4_client().udp(kClientPort, port).payload(counting_payload(20)).build());
    require_passes_unchanged(ipv6_client().udp(kClientPort, port).payload(counting_payload(20)).build());
    // The frontend port as SOURCE port matches nothing either.
    require_passes_unchanged(ipv4_client().udp(kFrontendPort, port).payload(counting_payload(20)).build());
    require_cursor_still_at_first_backend();
}

TEST_CASE("non-first fragments pass unchanged: they carry no ports", "[pass][fragment]") {
    configure_standard_frontend();
    // Built with a UDP header to the frontend where the fragment's data
    // starts, which is exactly what a parser that ignored the offset would
    // rewrite.
    SECTION("IPv4, offset 185, MF set") {
        require_passes_unchanged(
            ipv4_client().ipv4_fragment(185, true).udp(kClientPort, kFrontendPort).payload(counting_payload(64)).build());
    }
    SECTION("IPv4, last fragment: offset 185, MF clear") {
        require_passes_unchanged(
            ipv4_client().ipv4_fragment(185, false).udp(kClientPort, kFrontendPort).payload(counting_payload(64)).build());
    }
    SECTION("IPv4, smallest offset (1) and the largest (8191)") {
        require_passes_unchanged(ipv4_client().ipv4_fragment(1, true).udp(kClientPort, kFrontendPort).build());
        require_passes_unchanged(ipv4_client().ipv4_fragment(8191, false).udp(kClientPort, kFrontendPort).build());
    }
    SECTION("IPv4 with options and a VLAN, offset 10") {
        require_passes_unchanged(ipv4_client()
                                     .vlan(kTpid8021q, 8)
                                     .ipv4_options(Bytes(12, kIpv4OptionNop))
                                     .ipv4_fragment(10, true)
                                     .udp(kClientPort, kFrontendPort)
                                     .build());
    }
    SECTION("IPv6, offset 181, M set") {
        require_passes_unchanged(
            ipv6_client().ipv6_fragment(181, true).udp(kClientPort, kFrontendPort).payload(counting_payload(64)).build());
    }
    SECTION("IPv6, last fragment: offset 1, M clear") {
        require_passes_unchanged(ipv6_client().ipv6_fragment(1, false).udp(kClientPort, kFrontendPort).build());
    }
    SECTION("IPv6 after hop-by-hop and destination options, offset 8191") {
        require_passes_unchanged(ipv6_client()
                                     .ipv6_hop_by_hop()
                                     .ipv6_destination_options()
                                     .ipv6_fragment(8191, true)
                                     .udp(kClientPort, kFrontendPort)
                                     .build());
    }
    require_cursor_still_at_first_backend();
}

TEST_CASE("three VLAN tags are deeper than the data path parses: unchanged", "[pass][vlan]") {
    configure_standard_frontend();
    PacketBuilder builder;
    SECTION("802.1ad + 802.1Q + 802.1Q, IPv4") {
        builder = ipv4_client().vlan(kTpid8021ad, 1).vlan(kTpid8021q, 2).vlan(kTpid8021q, 3);
    }
    SECTION("802.1Q x3, IPv6") {
        builder = ipv6_client().vlan(kTpid8021q, 1).vlan(kTpid8021q, 2).vlan(kTpid8021q, 3);
    }
    require_passes_unchanged(builder.udp(kClientPort, kFrontendPort).payload(counting_payload(20)).build());
    require_cursor_still_at_first_backend();
}

TEST_CASE("five IPv6 extension headers are beyond the parse limit of four: unchanged", "[pass][extension]") {
    configure_standard_frontend();
    require_passes_unchanged(ipv6_client()
                                 .ipv6_hop_by_hop()
                                 .ipv6_routing()
                                 .ipv6_destination_options()
                                 .ipv6_authentication()
                                 .ipv6_fragment(0, false)
                                 .udp(kClientPort, kFrontendPort)
                                 .build());
    require_cursor_still_at_first_backend();
}

TEST_CASE("IPv6 with No Next Header passes unchanged", "[pass]") {
    configure_standard_frontend();
    require_passes_unchanged(ipv6_client().raw_transport(kIpProtoNoNext).payload(counting_payload(8)).build());
    require_cursor_still_at_first_backend();
}

TEST_CASE("malformed IPv4 headers pass unchanged", "[pass][malformed]") {
    configure_standard_frontend();
    Frame frame = ipv4_client().udp(kClientPort, kFrontendPort).payload(counting_payload(48)).build();
    SECTION("IHL below 5") {
        // Baited: both addresses end in 38.147 (0x2693 = 9875), and for IHL
        // 0 and 2 the length and checksum words read 9875 too, so a parser
        // that trusted a short IHL would find the frontend port exactly
        // where it would look for the destination port (IPv4 header + 4 *
        // IHL + 2). IHL 1 would land on the fragment field, which the
        // fragment check guards anyway.
        frame = PacketBuilder{}
                    .ipv4(ipv4_address("192.0.38.147"), ipv4_address("198.51.38.147"))
                    .udp(kClientPort, kFrontendPort)
                    .payload(counting_payload(48))
                    .build();
        const int ihl = GENERATE(range(0, 5));
        INFO("IHL " << ihl);
        const std::size_t ip = frame.l3_offset;
        frame.bytes[ip] = static_cast<std::uint8_t>(0x40 | ihl);
        if (ihl == 0) {
            frame.write16(ip + 2, kFrontendPort);  // total length
        }
        refresh_ipv4_header_checksum(frame);
        if (ihl == 2) {
            frame.write16(ip + 10, kFrontendPort);  // header checksum
        }
        require_passes_unchanged(frame);
    }
    SECTION("version other than 4 under EtherType IPv4") {
        const int version = GENERATE(0, 1, 5, 6, 15);
        INFO("version " << version);
        frame.bytes[frame.l3_offset] = static_cast<std::uint8_t>(version << 4 | 5);
        refresh_ipv4_header_checksum(frame);
        require_passes_unchanged(frame);
    }
    SECTION("an IPv4 packet under EtherType IPv6") {
        frame.write16(12, kEtherTypeIpv6);
        require_passes_unchanged(frame);
    }
    SECTION("an IPv4 packet under EtherType ARP") {
        frame.write16(12, 0x0806);
        require_passes_unchanged(frame);
    }
    require_cursor_still_at_first_backend();
}

TEST_CASE("malformed IPv6 headers pass unchanged", "[pass][malformed]") {
    configure_standard_frontend();
    Frame frame = ipv6_client().udp(kClientPort, kFrontendPort).payload(counting_payload(48)).build();
    SECTION("version other than 6 under EtherType IPv6") {
        const int version = GENERATE(0, 4, 7, 15);
        INFO("version " << version);
        frame.bytes[frame.l3_offset] = static_cast<std::uint8_t>(version << 4 | (frame.bytes[frame.l3_offset] & 0x0f));
        require_passes_unchanged(frame);
    }
    SECTION("an IPv6 packet under EtherType IPv4") {
        frame.write16(12, kEtherTypeIpv4);
        require_passes_unchanged(frame);
    }
    require_cursor_still_at_first_backend();
}
