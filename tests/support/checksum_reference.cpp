#include "checksum_reference.hpp"

#include <stdexcept>
#include <string>

namespace portmux::test {
namespace {

// Protocol numbers, spelled out here so the reference includes no kernel
// or data-path header.
constexpr std::uint8_t kProtoHopByHop = 0;
constexpr std::uint8_t kProtoIcmp = 1;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kProtoRouting = 43;
constexpr std::uint8_t kProtoFragment = 44;
constexpr std::uint8_t kProtoAuthentication = 51;
constexpr std::uint8_t kProtoIcmpv6 = 58;
constexpr std::uint8_t kProtoDestinationOptions = 60;
constexpr std::uint8_t kProtoMobility = 135;
constexpr std::uint8_t kProtoHip = 139;
constexpr std::uint8_t kProtoShim6 = 140;

std::uint16_t read_be16(std::span<const std::uint8_t> bytes, std::size_t offset) {
    return static_cast<std::uint16_t>(bytes[offset] << 8 | bytes[offset + 1]);
}

[[noreturn]] void reject(const std::string& why) {
    throw std::invalid_argument("checksum reference: " + why);
}

void require_bytes(std::span<const std::uint8_t> frame, std::size_t end, const char* what) {
    if (frame.size() < end) {
        reject(std::string("frame ends inside the ") + what);
    }
}

// The checked datagram of a located transport header: the UDP length field
// bounds a UDP datagram, the IP length anything else.
std::span<const std::uint8_t> complete_datagram(std::span<const std::uint8_t> frame,
                                                const TransportLocation& where) {
    if (where.fragment) {
        reject("a fragment carries only part of the datagram");
    }
    if (frame.size() < where.l4_offset + where.l4_length) {
        reject("the frame is shorter than its IP length says");
    }
    std::span<const std::uint8_t> datagram = frame.subspan(where.l4_offset, where.l4_length);
    if (where.protocol == kProtoUdp) {
        if (datagram.size() < 8) {
            reject("truncated UDP header");
        }
        const std::size_t udp_length = read_be16(datagram, 4);
        if (udp_length < 8 || udp_length > datagram.size()) {
            reject("UDP length field out of range");
        }
        datagram = datagram.first(udp_length);
    }
    if (datagram.size() < checksum_field_offset(where.protocol) + 2) {
        reject("truncated transport header");
    }
    return datagram;
}

}  // namespace

std::uint16_t ones_complement_sum(std::span<const std::uint8_t> bytes, std::uint16_t initial) {
    // A 64-bit accumulator cannot overflow for any frame size; the carries
    // are folded back in at the end (end-around carry).
    std::uint64_t sum = initial;
    std::size_t i = 0;
    for (; i + 1 < bytes.size(); i += 2) {
        sum += static_cast<std::uint64_t>(bytes[i]) << 8 | bytes[i + 1];
    }
    if (i < bytes.size()) {
        sum += static_cast<std::uint64_t>(bytes[i]) << 8;
    }
    while (sum > 0xffff) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(sum);
}

std::uint16_t ones_complement_add(std::uint16_t a, std::uint16_t b) {
    std::uint32_t sum = static_cast<std::uint32_t>(a) + b;
    return static_cast<std::uint16_t>((sum & 0xffff) + (sum >> 16));
}

std::uint16_t internet_checksum(std::span<const std::uint8_t> bytes) {
    return static_cast<std::uint16_t>(~ones_complement_sum(bytes));
}

std::size_t checksum_field_offset(std::uint8_t protocol) {
    switch (protocol) {
    case kProtoUdp:
        return 6;
    case kProtoTcp:
        return 16;
    case kProtoIcmp:
    case kProtoIcmpv6:
        return 2;
    default:
        reject("no checksum known for IP protocol " + std::to_string(protocol));
    }
}

std::uint16_t transport_sum(int ip_version, std::span<const std::uint8_t> source,
                            std::span<const std::uint8_t> destination, std::uint8_t protocol,
                            std::span<const std::uint8_t> datagram) {
    const std::size_t address_size = ip_version == 4 ? 4 : 16;
    if ((ip_version != 4 && ip_version != 6) || source.size() != address_size ||
        destination.size() != address_size) {
        reject("bad IP version or address size for the pseudo-header");
    }
    if (ip_version == 4 && protocol == kProtoIcmp) {
        return ones_complement_sum(datagram);  // ICMPv4 sums the message alone
    }
    // The pseudo-header is written out byte for byte, as the RFCs draw it,
    // rather than summed cleverly: this is the reference.
    std::vector<std::uint8_t> pseudo(source.begin(), source.end());
    pseudo.insert(pseudo.end(), destination.begin(), destination.end());
    const auto length = static_cast<std::uint32_t>(datagram.size());
    if (ip_version == 4) {
        pseudo.insert(pseudo.end(), {0, protocol, static_cast<std::uint8_t>(length >> 8),
                                     static_cast<std::uint8_t>(length)});
    } else {
        pseudo.insert(pseudo.end(),
                      {static_cast<std::uint8_t>(length >> 24), static_cast<std::uint8_t>(length >> 16),
                       static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length), 0, 0,
                       0, protocol});
    }
    return ones_complement_sum(datagram, ones_complement_sum(pseudo));
}

std::uint16_t transport_checksum(int ip_version, std::span<const std::uint8_t> source,
                                 std::span<const std::uint8_t> destination,
                                 std::uint8_t protocol, std::span<const std::uint8_t> datagram) {
    const std::size_t field = checksum_field_offset(protocol);
    if (datagram.size() < field + 2) {
        reject("datagram shorter than its checksum field");
    }
    std::vector<std::uint8_t> zeroed(datagram.begin(), datagram.end());
    zeroed[field] = 0;
    zeroed[field + 1] = 0;
    const auto checksum =
        static_cast<std::uint16_t>(~transport_sum(ip_version, source, destination, protocol, zeroed));
    // RFC 768: an all-zero UDP checksum means "none", so a computed zero
    // goes on the wire as its other one's complement form, all ones.
    return protocol == kProtoUdp && checksum == 0 ? 0xffff : checksum;
}

TransportLocation locate_transport(std::span<const std::uint8_t> frame) {
    TransportLocation where;
    require_bytes(frame, 14, "Ethernet header");
    std::size_t offset = 12;
    std::uint16_t ethertype = read_be16(frame, offset);
    offset += 2;
    while (ethertype == 0x8100 || ethertype == 0x88a8 || ethertype == 0x9100) {
        require_bytes(frame, offset + 4, "VLAN tag");
        ethertype = read_be16(frame, offset + 2);
        offset += 4;
    }
    where.l3_offset = offset;

    if (ethertype == 0x0800) {
        require_bytes(frame, offset + 20, "IPv4 header");
        const std::uint8_t version = frame[offset] >> 4;
        const std::size_t header_length = (frame[offset] & 0x0f) * 4u;
        if (version != 4 || header_length < 20) {
            reject("malformed IPv4 header");
        }
        require_bytes(frame, offset + header_length, "IPv4 options");
        const std::size_t total_length = read_be16(frame, offset + 2);
        if (total_length < header_length) {
            reject("IPv4 total length shorter than the header");
        }
        where.ip_version = 4;
        where.protocol = frame[offset + 9];
        where.fragment = (read_be16(frame, offset + 6) & 0x3fff) != 0;  // MF or an offset
        where.source.assign(frame.begin() + offset + 12, frame.begin() + offset + 16);
        where.destination.assign(frame.begin() + offset + 16, frame.begin() + offset + 20);
        where.l4_offset = offset + header_length;
        where.l4_length = total_length - header_length;
        return where;
    }
    if (ethertype != 0x86dd) {
        reject("not an IP frame");
    }

    require_bytes(frame, offset + 40, "IPv6 header");
    if (frame[offset] >> 4 != 6) {
        reject("malformed IPv6 header");
    }
    where.ip_version = 6;
    where.source.assign(frame.begin() + offset + 8, frame.begin() + offset + 24);
    where.destination.assign(frame.begin() + offset + 24, frame.begin() + offset + 40);
    const std::size_t payload_end = offset + 40 + read_be16(frame, offset + 4);
    std::uint8_t next = frame[offset + 6];
    offset += 40;
    for (;;) {
        std::size_t length = 0;
        switch (next) {
        case kProtoHopByHop:
        case kProtoDestinationOptions:
        case kProtoMobility:
        case kProtoHip:
        case kProtoShim6:
            require_bytes(frame, offset + 2, "IPv6 extension header");
            length = (frame[offset + 1] + 1u) * 8;
            break;
        case kProtoRouting:
            require_bytes(frame, offset + 4, "IPv6 routing header");
            // With segments left, the pseudo-header would need the final
            // destination from inside the routing header; no test needs it.
            if (frame[offset + 3] != 0) {
                reject("routing header with segments left");
            }
            length = (frame[offset + 1] + 1u) * 8;
            break;
        case kProtoAuthentication:
            require_bytes(frame, offset + 2, "IPv6 authentication header");
            length = (frame[offset + 1] + 2u) * 4;
            break;
        case kProtoFragment:
            require_bytes(frame, offset + 8, "IPv6 fragment header");
            // Offset 0 without M is an atomic fragment: a whole datagram.
            where.fragment = where.fragment || (read_be16(frame, offset + 2) & 0xfff9) != 0;
            length = 8;
            break;
        default:
            if (payload_end < offset) {
                reject("IPv6 payload length shorter than its extension headers");
            }
            where.protocol = next;
            where.l4_offset = offset;
            where.l4_length = payload_end - offset;
            return where;
        }
        require_bytes(frame, offset + length, "IPv6 extension header");
        next = frame[offset];
        offset += length;
    }
}

std::uint16_t recompute_transport_checksum(std::span<const std::uint8_t> frame) {
    const TransportLocation where = locate_transport(frame);
    return transport_checksum(where.ip_version, where.source, where.destination, where.protocol,
                              complete_datagram(frame, where));
}

std::uint16_t transport_sum_without_checksum(std::span<const std::uint8_t> frame) {
    const TransportLocation where = locate_transport(frame);
    const std::span<const std::uint8_t> datagram = complete_datagram(frame, where);
    std::vector<std::uint8_t> zeroed(datagram.begin(), datagram.end());
    const std::size_t field = checksum_field_offset(where.protocol);
    zeroed[field] = 0;
    zeroed[field + 1] = 0;
    return transport_sum(where.ip_version, where.source, where.destination, where.protocol, zeroed);
}

bool transport_checksum_verifies(std::span<const std::uint8_t> frame) {
    const TransportLocation where = locate_transport(frame);
    const std::span<const std::uint8_t> datagram = complete_datagram(frame, where);
    const std::uint16_t stored = read_be16(datagram, checksum_field_offset(where.protocol));
    if (where.protocol == kProtoUdp && where.ip_version == 4 && stored == 0) {
        return true;  // the sender chose not to checksum
    }
    return transport_sum(where.ip_version, where.source, where.destination, where.protocol,
                         datagram) == 0xffff;
}

std::uint16_t ipv4_header_checksum(std::span<const std::uint8_t> header) {
    if (header.size() < 20) {
        reject("IPv4 header shorter than 20 bytes");
    }
    std::vector<std::uint8_t> zeroed(header.begin(), header.end());
    zeroed[10] = 0;
    zeroed[11] = 0;
    return internet_checksum(zeroed);
}

}  // namespace portmux::test
