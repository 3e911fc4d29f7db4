#include "packet_builder.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "checksum_reference.hpp"

namespace portmux::test {
namespace {

void put16(Bytes& out, std::uint16_t value) {
    out.push_back(static_cast<std::uint8_t>(value >> 8));
    out.push_back(static_cast<std::uint8_t>(value));
}

void put32(Bytes& out, std::uint32_t value) {
    put16(out, static_cast<std::uint16_t>(value >> 16));
    put16(out, static_cast<std::uint16_t>(value));
}

template <typename Range>
void append(Bytes& out, const Range& bytes) {
    out.insert(out.end(), std::begin(bytes), std::end(bytes));
}

void require(bool condition, const char* what) {
    if (!condition) {
        throw std::logic_error(std::string("PacketBuilder: ") + what);
    }
}

std::string_view extension_name(std::uint8_t type) {
    switch (type) {
    case kIpProtoHopByHop:
        return "hop-by-hop";
    case kIpProtoRouting:
        return "routing";
    case kIpProtoFragment:
        return "fragment";
    case kIpProtoAuthentication:
        return "authentication";
    case kIpProtoDestinationOptions:
        return "destination-options";
    default:
        return "ipv6-extension";
    }
}

// The body (after Next Header) of a hop-by-hop or destination options
// header of `length` bytes: Hdr Ext Len, then one PadN option filling it.
Bytes options_header_body(std::size_t length) {
    require(length >= 8 && length % 8 == 0 && length <= 2048,
            "IPv6 options header length must be a multiple of 8 in [8, 2048]");
    Bytes body{static_cast<std::uint8_t>(length / 8 - 1)};
    body.push_back(1);                                     // PadN
    body.push_back(static_cast<std::uint8_t>(length - 4));  // its data length
    body.resize(length - 1, 0);
    return body;
}

}  // namespace

Ipv4Address ipv4_address(std::string_view text) {
    Ipv4Address address{};
    if (inet_pton(AF_INET, std::string(text).c_str(), address.data()) != 1) {
        throw std::invalid_argument("not an IPv4 address: " + std::string(text));
    }
    return address;
}

Ipv6Address ipv6_address(std::string_view text) {
    Ipv6Address address{};
    if (inet_pton(AF_INET6, std::string(text).c_str(), address.data()) != 1) {
        throw std::invalid_argument("not an IPv6 address: " + std::string(text));
    }
    return address;
}

const Layer& Frame::layer(std::string_view name) const {
    for (const Layer& layer : layers) {
        if (layer.name == name) {
            return layer;
        }
    }
    throw std::out_of_range("frame has no layer " + std::string(name));
}

std::uint16_t Frame::read16(std::size_t offset) const {
    return static_cast<std::uint16_t>(bytes.at(offset) << 8 | bytes.at(offset + 1));
}

void Frame::write16(std::size_t offset, std::uint16_t value) {
    bytes.at(offset) = static_cast<std::uint8_t>(value >> 8);
    bytes.at(offset + 1) = static_cast<std::uint8_t>(value);
}

std::size_t Frame::transport_checksum_offset() const {
    for (const Layer& layer : layers) {
        if (layer.name == "tcp") {
            return layer.offset + 16;
        }
        if (layer.name == "udp") {
            return layer.offset + 6;
        }
    }
    throw std::out_of_range("frame has no UDP or TCP header");
}

PacketBuilder& PacketBuilder::ethernet(const MacAddress& destination, const MacAddress& source) {
    destination_mac_ = destination;
    source_mac_ = source;
    return *this;
}

PacketBuilder& PacketBuilder::vlan(std::uint16_t tpid, std::uint16_t vlan_id, std::uint8_t priority) {
    require(vlan_id < 4096 && priority < 8, "VLAN id or priority out of range");
    vlans_.push_back({tpid, static_cast<std::uint16_t>(priority << 13 | vlan_id)});
    return *this;
}

PacketBuilder& PacketBuilder::ipv4(const Ipv4Address& source, const Ipv4Address& destination) {
    network_ = Network::ipv4;
    source_address_.assign(source.begin(), source.end());
    destination_address_.assign(destination.begin(), destination.end());
    return *this;
}

PacketBuilder& PacketBuilder::ipv4_options(Bytes options) {
    require(options.size() <= 40, "at most 40 bytes of IPv4 options");
    options.resize((options.size() + 3) / 4 * 4, kIpv4OptionEnd);
    ipv4_options_ = std::move(options);
    return *this;
}

PacketBuilder& PacketBuilder::ipv4_fragment(std::uint16_t offset_units, bool more_fragments) {
    require(offset_units < 0x2000, "IPv4 fragment offset has 13 bits");
    ipv4_fragment_field_ = static_cast<std::uint16_t>((ipv4_fragment_field_ & 0x4000) |
                                                      (more_fragments ? 0x2000 : 0) | offset_units);
    return *this;
}

PacketBuilder& PacketBuilder::ipv4_dont_fragment() {
    ipv4_fragment_field_ |= 0x4000;
    return *this;
}

PacketBuilder& PacketBuilder::ipv4_identification(std::uint16_t id) {
    ipv4_id_ = id;
    return *this;
}

PacketBuilder& PacketBuilder::ipv6(const Ipv6Address& source, const Ipv6Address& destination) {
    network_ = Network::ipv6;
    source_address_.assign(source.begin(), source.end());
    destination_address_.assign(destination.begin(), destination.end());
    return *this;
}

PacketBuilder& PacketBuilder::ipv6_hop_by_hop(std::size_t length) {
    ipv6_extensions_.push_back({kIpProtoHopByHop, options_header_body(length)});
    return *this;
}

PacketBuilder& PacketBuilder::ipv6_destination_options(std::size_t length) {
    ipv6_extensions_.push_back({kIpProtoDestinationOptions, options_header_body(length)});
    return *this;
}

PacketBuilder& PacketBuilder::ipv6_routing(std::size_t length) {
    require(length >= 8 && length % 8 == 0 && length <= 2048,
            "IPv6 routing header length must be a multiple of 8 in [8, 2048]");
    Bytes body{static_cast<std::uint8_t>(length / 8 - 1), 253, 0};  // Hdr Ext Len, type, Segments Left
    body.resize(length - 1, 0);
    ipv6_extensions_.push_back({kIpProtoRouting, std::move(body)});
    return *this;
}

PacketBuilder& PacketBuilder::ipv6_authentication(std::size_t length) {
    require(length >= 16 && length % 8 == 0 && length <= 1028,
            "IPv6 AH length must be a multiple of 8 in [16, 1028]");
    Bytes body{static_cast<std::uint8_t>(length / 4 - 2), 0, 0};  // Payload Len, Reserved
    put32(body, 0x00000100);                                       // SPI
    put32(body, 1);                                                // sequence number
    body.resize(length - 1, 0xa5);                                 // ICV
    ipv6_extensions_.push_back({kIpProtoAuthentication, std::move(body)});
    return *this;
}

PacketBuilder& PacketBuilder::ipv6_fragment(std::uint16_t offset_units, bool more_fragments,
                                            std::uint32_t identification) {
    require(offset_units < 0x2000, "IPv6 fragment offset has 13 bits");
    Bytes body{0};  // Reserved
    put16(body, static_cast<std::uint16_t>(offset_units << 3 | (more_fragments ? 1 : 0)));
    put32(body, identification);
    ipv6_extensions_.push_back({kIpProtoFragment, std::move(body)});
    return *this;
}

PacketBuilder& PacketBuilder::hop_limit(std::uint8_t ttl) {
    hop_limit_ = ttl;
    return *this;
}

PacketBuilder& PacketBuilder::udp(std::uint16_t source_port, std::uint16_t destination_port) {
    transport_ = Transport::udp;
    source_port_ = source_port;
    destination_port_ = destination_port;
    return *this;
}

PacketBuilder& PacketBuilder::tcp(std::uint16_t source_port, std::uint16_t destination_port) {
    transport_ = Transport::tcp;
    source_port_ = source_port;
    destination_port_ = destination_port;
    return *this;
}

PacketBuilder& PacketBuilder::tcp_flags(std::uint8_t flags) {
    tcp_flags_ = flags;
    return *this;
}

PacketBuilder& PacketBuilder::tcp_options(Bytes options) {
    require(options.size() <= 40, "at most 40 bytes of TCP options");
    options.resize((options.size() + 3) / 4 * 4, 0);  // End of Option List
    tcp_options_ = std::move(options);
    return *this;
}

PacketBuilder& PacketBuilder::icmp(std::uint8_t type, std::uint8_t code, std::uint32_t rest) {
    transport_ = Transport::icmp;
    icmp_type_ = type;
    icmp_code_ = code;
    icmp_rest_ = rest;
    return *this;
}

PacketBuilder& PacketBuilder::raw_transport(std::uint8_t protocol) {
    transport_ = Transport::raw;
    raw_protocol_ = protocol;
    return *this;
}

PacketBuilder& PacketBuilder::payload(Bytes payload) {
    payload_ = std::move(payload);
    return *this;
}

PacketBuilder& PacketBuilder::without_udp_checksum() {
    udp_checksum_ = false;
    return *this;
}

PacketBuilder& PacketBuilder::truncate_transport_to(std::size_t bytes) {
    truncate_transport_to_ = bytes;
    return *this;
}

std::uint8_t PacketBuilder::transport_protocol() const {
    switch (transport_) {
    case Transport::udp:
        return kIpProtoUdp;
    case Transport::tcp:
        return kIpProtoTcp;
    case Transport::icmp:
        return network_ == Network::ipv6 ? kIpProtoIcmpv6 : kIpProtoIcmp;
    case Transport::raw:
        return raw_protocol_;
    case Transport::none:
        break;
    }
    require(false, "no transport header chosen");
    return 0;
}

// The whole transport datagram, checksum filled in.
Bytes PacketBuilder::build_transport(std::uint8_t protocol) const {
    Bytes out;
    switch (transport_) {
    case Transport::udp:
        require(payload_.size() <= 0xffff - 8, "UDP payload too long");
        put16(out, source_port_);
        put16(out, destination_port_);
        put16(out, static_cast<std::uint16_t>(8 + payload_.size()));
        put16(out, 0);  // checksum, below
        break;
    case Transport::tcp:
        put16(out, source_port_);
        put16(out, destination_port_);
        put32(out, 0x01020304);  // sequence number
        put32(out, 0x0a0b0c0d);  // acknowledgment number
        out.push_back(static_cast<std::uint8_t>((5 + tcp_options_.size() / 4) << 4));  // data offset
        out.push_back(tcp_flags_);
        put16(out, 0xffff);      // window
        put16(out, 0);           // checksum, below
        put16(out, 0);           // urgent pointer
        append(out, tcp_options_);
        break;
    case Transport::icmp:
        out.push_back(icmp_type_);
        out.push_back(icmp_code_);
        put16(out, 0);  // checksum, below
        put32(out, icmp_rest_);
        break;
    case Transport::raw:
    case Transport::none:
        break;
    }
    append(out, payload_);

    const bool checksummed = transport_ == Transport::tcp || transport_ == Transport::icmp ||
                             (transport_ == Transport::udp && udp_checksum_);
    if (checksummed) {
        const std::uint16_t checksum =
            transport_checksum(network_ == Network::ipv4 ? 4 : 6, source_address_,
                               destination_address_, protocol, out);
        const std::size_t field = checksum_field_offset(protocol);
        out[field] = static_cast<std::uint8_t>(checksum >> 8);
        out[field + 1] = static_cast<std::uint8_t>(checksum);
    }
    return out;
}

// The IPv4 header, or the IPv6 header plus its extension headers.
Bytes PacketBuilder::build_network_header(std::uint8_t protocol, std::size_t transport_size) const {
    Bytes out;
    if (network_ == Network::ipv4) {
        const std::size_t header_size = 20 + ipv4_options_.size();
        require(header_size + transport_size <= 0xffff, "IPv4 packet too long");
        out.push_back(static_cast<std::uint8_t>(0x40 | header_size / 4));
        out.push_back(0);  // DSCP/ECN
        put16(out, static_cast<std::uint16_t>(header_size + transport_size));
        put16(out, ipv4_id_);
        put16(out, ipv4_fragment_field_);
        out.push_back(hop_limit_);
        out.push_back(protocol);
        put16(out, 0);  // header checksum, below
        append(out, source_address_);
        append(out, destination_address_);
        append(out, ipv4_options_);
        const std::uint16_t checksum = ipv4_header_checksum(out);
        out[10] = static_cast<std::uint8_t>(checksum >> 8);
        out[11] = static_cast<std::uint8_t>(checksum);
        return out;
    }

    std::size_t extensions_size = 0;
    for (const Ipv6Extension& extension : ipv6_extensions_) {
        extensions_size += 1 + extension.body.size();
    }
    require(extensions_size + transport_size <= 0xffff, "IPv6 payload too long (no jumbograms)");
    put32(out, 6u << 28);  // version, traffic class 0, flow label 0
    put16(out, static_cast<std::uint16_t>(extensions_size + transport_size));
    out.push_back(ipv6_extensions_.empty() ? protocol : ipv6_extensions_.front().type);
    out.push_back(hop_limit_);
    append(out, source_address_);
    append(out, destination_address_);
    for (std::size_t i = 0; i < ipv6_extensions_.size(); ++i) {
        const bool last = i + 1 == ipv6_extensions_.size();
        out.push_back(last ? protocol : ipv6_extensions_[i + 1].type);
        append(out, ipv6_extensions_[i].body);
    }
    return out;
}

Frame PacketBuilder::build() const {
    require(network_ != Network::none, "no IP header chosen");
    require(network_ == Network::ipv6 || ipv6_extensions_.empty(),
            "IPv6 extension headers on an IPv4 packet");
    require(udp_checksum_ || (transport_ == Transport::udp && network_ == Network::ipv4),
            "only UDP over IPv4 may go without a checksum");

    const std::uint8_t protocol = transport_protocol();
    Bytes transport = build_transport(protocol);
    if (truncate_transport_to_) {
        require(*truncate_transport_to_ <= transport.size(), "truncating beyond the datagram");
        transport.resize(*truncate_transport_to_);
    }
    const Bytes network = build_network_header(protocol, transport.size());

    Frame frame;
    auto add_layer = [&frame](std::string name, std::size_t length) {
        frame.layers.push_back({std::move(name), frame.bytes.size(), length});
    };

    add_layer("ethernet", 14);
    append(frame.bytes, destination_mac_);
    append(frame.bytes, source_mac_);
    const std::uint16_t l3_ethertype = network_ == Network::ipv4 ? kEtherTypeIpv4 : kEtherTypeIpv6;
    put16(frame.bytes, vlans_.empty() ? l3_ethertype : vlans_.front().tpid);
    for (std::size_t i = 0; i < vlans_.size(); ++i) {
        add_layer("vlan", 4);
        put16(frame.bytes, vlans_[i].tci);
        put16(frame.bytes, i + 1 < vlans_.size() ? vlans_[i + 1].tpid : l3_ethertype);
    }

    frame.l3_offset = frame.bytes.size();
    if (network_ == Network::ipv4) {
        add_layer("ipv4", 20 + ipv4_options_.size());
    } else {
        add_layer("ipv6", 40);
        std::size_t offset = frame.bytes.size() + 40;
        for (const Ipv6Extension& extension : ipv6_extensions_) {
            frame.layers.push_back(
                {std::string(extension_name(extension.type)), offset, 1 + extension.body.size()});
            offset += 1 + extension.body.size();
        }
    }
    append(frame.bytes, network);

    frame.l4_offset = frame.bytes.size();
    const std::size_t full_header_size = [&]() -> std::size_t {
        switch (transport_) {
        case Transport::udp:
        case Transport::icmp:
            return 8;
        case Transport::tcp:
            return 20 + tcp_options_.size();
        default:
            return 0;
        }
    }();
    const std::size_t present_header = std::min(full_header_size, transport.size());
    if (present_header > 0) {
        const char* name = transport_ == Transport::udp   ? "udp"
                           : transport_ == Transport::tcp ? "tcp"
                           : protocol == kIpProtoIcmpv6   ? "icmpv6"
                                                          : "icmp";
        add_layer(name, present_header);
    }
    if (transport.size() > present_header) {
        frame.layers.push_back({"payload", frame.l4_offset + present_header, transport.size() - present_header});
    }
    append(frame.bytes, transport);
    return frame;
}

std::string hex_dump(const Bytes& bytes) {
    std::string out;
    char cell[32];
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i % 16 == 0) {
            std::snprintf(cell, sizeof cell, "%s%04zx:", i ? "\n" : "", i);
            out += cell;
        }
        std::snprintf(cell, sizeof cell, " %02x", bytes[i]);
        out += cell;
    }
    return out;
}

}  // namespace portmux::test
