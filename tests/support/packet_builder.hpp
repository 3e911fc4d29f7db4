// A small builder of Ethernet frames for tests and benchmarks. Every
// length and checksum comes out right unless a test asks otherwise, so a
// test states only what it is about:
//
//   Frame frame = PacketBuilder{}
//                     .vlan(kTpid8021ad, 100)
//                     .vlan(kTpid8021q, 200)
//                     .ipv4(ipv4_address("10.0.0.1"), ipv4_address("10.0.0.2"))
//                     .ipv4_options(Bytes(8, kIpv4OptionNop))
//                     .udp(40000, 9875)
//                     .payload(Bytes{1, 2, 3})
//                     .build();
//
// Headers go on the wire in the order Ethernet, VLAN tags (in call order,
// outermost first), IP header and IPv6 extension headers (in call order),
// transport header, payload.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portmux::test {

using Bytes = std::vector<std::uint8_t>;
using MacAddress = std::array<std::uint8_t, 6>;
using Ipv4Address = std::array<std::uint8_t, 4>;
using Ipv6Address = std::array<std::uint8_t, 16>;

inline constexpr std::uint16_t kTpid8021q = 0x8100;   // customer VLAN tag
inline constexpr std::uint16_t kTpid8021ad = 0x88a8;  // service (outer, QinQ) tag
inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherTypeIpv6 = 0x86dd;

inline constexpr std::uint8_t kIpProtoHopByHop = 0;
inline constexpr std::uint8_t kIpProtoIcmp = 1;
inline constexpr std::uint8_t kIpProtoTcp = 6;
inline constexpr std::uint8_t kIpProtoUdp = 17;
inline constexpr std::uint8_t kIpProtoRouting = 43;
inline constexpr std::uint8_t kIpProtoFragment = 44;
inline constexpr std::uint8_t kIpProtoAuthentication = 51;
inline constexpr std::uint8_t kIpProtoIcmpv6 = 58;
inline constexpr std::uint8_t kIpProtoNoNext = 59;
inline constexpr std::uint8_t kIpProtoDestinationOptions = 60;

// TCP header flags (byte 13).
inline constexpr std::uint8_t kTcpFin = 0x01;
inline constexpr std::uint8_t kTcpSyn = 0x02;
inline constexpr std::uint8_t kTcpRst = 0x04;
inline constexpr std::uint8_t kTcpPsh = 0x08;
inline constexpr std::uint8_t kTcpAck = 0x10;

inline constexpr std::uint8_t kIpv4OptionEnd = 0;
inline constexpr std::uint8_t kIpv4OptionNop = 1;

// Parses dotted-quad / RFC 4291 text; throws std::invalid_argument.
Ipv4Address ipv4_address(std::string_view text);
Ipv6Address ipv6_address(std::string_view text);

// One header of a built frame: where it is, for tests that cut or patch
// frames at header boundaries.
struct Layer {
    std::string name;  // "ethernet", "vlan", "ipv4", "ipv6", "hop-by-hop", "routing",
                       // "fragment", "authentication", "destination-options",
                       // "udp", "tcp", "icmp", "icmpv6", "payload"
    std::size_t offset = 0;
    std::size_t length = 0;
    std::size_t end() const { return offset + length; }
};

struct Frame {
    Bytes bytes;
    std::vector<Layer> layers;  // in wire order
    std::size_t l3_offset = 0;
    std::size_t l4_offset = 0;  // first byte after the IP header chain

    // The first layer named `name`; throws std::out_of_range.
    const Layer& layer(std::string_view name) const;

    // Transport header fields (big-endian on the wire, host order here).
    std::uint16_t source_port() const { return read16(l4_offset); }
    std::uint16_t destination_port() const { return read16(l4_offset + 2); }
    std::uint16_t udp_checksum() const { return read16(l4_offset + 6); }
    void set_destination_port(std::uint16_t port) { write16(l4_offset + 2, port); }
    void set_udp_checksum(std::uint16_t checksum) { write16(l4_offset + 6, checksum); }
    void set_source_port(std::uint16_t port) { write16(l4_offset, port); }
    // The UDP or TCP checksum, whichever transport header the frame has.
    std::size_t transport_checksum_offset() const;
    std::uint16_t transport_checksum() const { return read16(transport_checksum_offset()); }
    void set_transport_checksum(std::uint16_t checksum) { write16(transport_checksum_offset(), checksum); }

    std::uint16_t read16(std::size_t offset) const;
    void write16(std::size_t offset, std::uint16_t value);
};

class PacketBuilder {
public:
    PacketBuilder& ethernet(const MacAddress& destination, const MacAddress& source);
    // Adds one VLAN tag after the ones added before. The TCI is the 12-bit
    // VLAN id plus the 3-bit priority.
    PacketBuilder& vlan(std::uint16_t tpid, std::uint16_t vlan_id, std::uint8_t priority = 0);

    PacketBuilder& ipv4(const Ipv4Address& source, const Ipv4Address& destination);
    // Options padded with End-of-Options to a multiple of 4 bytes; the IHL
    // becomes 5 + size / 4 (at most 40 bytes of options, IHL 15).
    PacketBuilder& ipv4_options(Bytes options);
    // Fragment fields: offset in 8-byte units, the More Fragments flag.
    PacketBuilder& ipv4_fragment(std::uint16_t offset_units, bool more_fragments);
    PacketBuilder& ipv4_dont_fragment();  // sets DF, keeps the rest
    PacketBuilder& ipv4_identification(std::uint16_t id);

    PacketBuilder& ipv6(const Ipv6Address& source, const Ipv6Address& destination);
    // Extension headers, in call order. Option headers carry PadN padding
    // to `length` bytes (a multiple of 8, at least 8).
    PacketBuilder& ipv6_hop_by_hop(std::size_t length = 8);
    PacketBuilder& ipv6_destination_options(std::size_t length = 8);
    // A routing header with Segments Left 0 (type 253, experimental): the
    // IPv6 destination stays the final one.
    PacketBuilder& ipv6_routing(std::size_t length = 8);
    // An AH header of `length` bytes (a multiple of 8, at least 16).
    PacketBuilder& ipv6_authentication(std::size_t length = 24);
    PacketBuilder& ipv6_fragment(std::uint16_t offset_units, bool more_fragments,
                                 std::uint32_t identification = 0x1234abcd);

    PacketBuilder& hop_limit(std::uint8_t ttl);  // IPv4 TTL or IPv6 hop limit

    PacketBuilder& udp(std::uint16_t source_port, std::uint16_t destination_port);
    // A TCP header with PSH|ACK unless tcp_flags() says otherwise.
    PacketBuilder& tcp(std::uint16_t source_port, std::uint16_t destination_port);
    PacketBuilder& tcp_flags(std::uint8_t flags);  // kTcpSyn | kTcpAck ...
    // TCP options (padded with End-of-Options to a multiple of 4 bytes, at
    // most 40); the data offset grows to cover them.
    PacketBuilder& tcp_options(Bytes options);
    // ICMP over IPv4, ICMPv6 over IPv6; `rest` fills the 4 bytes after the
    // checksum (identifier and sequence of an echo).
    PacketBuilder& icmp(std::uint8_t type, std::uint8_t code, std::uint32_t rest = 0);
    // Raw transport bytes under IP protocol `protocol`, no checksum.
    PacketBuilder& raw_transport(std::uint8_t protocol);

    PacketBuilder& payload(Bytes payload);

    // UDP over IPv4 only: send checksum 0, "no checksum".
    PacketBuilder& without_udp_checksum();
    // Builds a first fragment: lengths and checksum are computed over the
    // whole transport datagram, then only its first `bytes` go in the frame
    // and the IP length covers just those (set the fragment fields too).
    PacketBuilder& truncate_transport_to(std::size_t bytes);

    // Throws std::logic_error for an incomplete or inconsistent description.
    Frame build() const;

private:
    struct VlanTag {
        std::uint16_t tpid;
        std::uint16_t tci;
    };
    struct Ipv6Extension {
        std::uint8_t type;
        Bytes body;  // everything after the Next Header byte
    };
    enum class Network { none, ipv4, ipv6 };
    enum class Transport { none, udp, tcp, icmp, raw };

    Bytes build_transport(std::uint8_t protocol) const;
    Bytes build_network_header(std::uint8_t protocol, std::size_t transport_size) const;
    std::uint8_t transport_protocol() const;

    MacAddress destination_mac_{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
    MacAddress source_mac_{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
    std::vector<VlanTag> vlans_;

    Network network_ = Network::none;
    Bytes source_address_;
    Bytes destination_address_;
    std::uint8_t hop_limit_ = 64;
    Bytes ipv4_options_;
    std::uint16_t ipv4_fragment_field_ = 0;
    std::uint16_t ipv4_id_ = 0x4d2;
    std::vector<Ipv6Extension> ipv6_extensions_;

    Transport transport_ = Transport::none;
    std::uint8_t raw_protocol_ = 0;
    std::uint16_t source_port_ = 0;
    std::uint16_t destination_port_ = 0;
    std::uint8_t icmp_type_ = 0;
    std::uint8_t icmp_code_ = 0;
    std::uint32_t icmp_rest_ = 0;
    std::uint8_t tcp_flags_ = 0x18;  // PSH | ACK
    Bytes tcp_options_;
    bool udp_checksum_ = true;
    std::optional<std::size_t> truncate_transport_to_;

    Bytes payload_;
};

// A hex dump of `bytes`, 16 a line, for failure messages.
std::string hex_dump(const Bytes& bytes);

}  // namespace portmux::test
