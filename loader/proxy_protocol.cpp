#include "proxy_protocol.hpp"

#include <array>
#include <cstring>

#include "stream_address.hpp"

namespace portmux {
namespace {

constexpr std::array<std::uint8_t, 12> signature{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::uint8_t version2_proxy = 0x21;  // version 2, PROXY command
constexpr std::uint8_t version2_local = 0x20;  // version 2, LOCAL command
constexpr std::uint8_t tcp_over_ipv4 = 0x11;
constexpr std::uint8_t tcp_over_ipv6 = 0x21;
constexpr std::uint8_t unspecified = 0x00;

void append(std::vector<std::uint8_t>& out, const void* data, std::size_t size) {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    out.insert(out.end(), bytes, bytes + size);
}

void append_be16(std::vector<std::uint8_t>& out, std::uint16_t value) {
    out.push_back(static_cast<std::uint8_t>(value >> 8));
    out.push_back(static_cast<std::uint8_t>(value & 0xff));
}

}  // namespace

std::vector<std::uint8_t> proxy_v2_header(const sockaddr_storage& mapped_client,
                                          const sockaddr_storage& mapped_local) {
    // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: the backend
    // is told the IPv4 addresses (TCP4), as if the listener were IPv4 only.
    const sockaddr_storage client = unmapped_address(mapped_client);
    const sockaddr_storage local = unmapped_address(mapped_local);
    std::vector<std::uint8_t> header(signature.begin(), signature.end());
    if (client.ss_family == AF_INET && local.ss_family == AF_INET) {
        sockaddr_in source{};
        sockaddr_in destination{};
        std::memcpy(&source, &client, sizeof source);
        std::memcpy(&destination, &local, sizeof destination);
        header.push_back(version2_proxy);
        header.push_back(tcp_over_ipv4);
        append_be16(header, 12);
        append(header, &source.sin_addr, 4);       // already in network order
        append(header, &destination.sin_addr, 4);
        append(header, &source.sin_port, 2);
        append(header, &destination.sin_port, 2);
    } else if (client.ss_family == AF_INET6 && local.ss_family == AF_INET6) {
        sockaddr_in6 source{};
        sockaddr_in6 destination{};
        std::memcpy(&source, &client, sizeof source);
        std::memcpy(&destination, &local, sizeof destination);
        header.push_back(version2_proxy);
        header.push_back(tcp_over_ipv6);
        append_be16(header, 36);
        append(header, &source.sin6_addr, 16);
        append(header, &destination.sin6_addr, 16);
        append(header, &source.sin6_port, 2);
        append(header, &destination.sin6_port, 2);
    } else {
        header.push_back(version2_local);
        header.push_back(unspecified);
        append_be16(header, 0);
    }
    return header;
}

}  // namespace portmux
