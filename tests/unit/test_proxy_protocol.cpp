// Tests of loader/proxy_protocol.cpp against the bytes of haproxy's
// proxy-protocol.txt, section 2.2, and of loader/stream_address.cpp (the
// addresses of a dual-stack listener's connections).
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstring>
#include <string>
#include <vector>

#include "proxy_protocol.hpp"
#include "stream_address.hpp"

namespace {

sockaddr_storage ipv4(const char* address, std::uint16_t port) {
    sockaddr_storage storage{};
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    REQUIRE(inet_pton(AF_INET, address, &in.sin_addr) == 1);
    std::memcpy(&storage, &in, sizeof in);
    return storage;
}

sockaddr_storage ipv6(const char* address, std::uint16_t port) {
    sockaddr_storage storage{};
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    REQUIRE(inet_pton(AF_INET6, address, &in6.sin6_addr) == 1);
    std::memcpy(&storage, &in6, sizeof in6);
    return storage;
}

// "ADDRESS PORT" of an AF_INET or AF_INET6 address, "family N" otherwise.
std::string text(const sockaddr_storage& storage) {
    char buffer[INET6_ADDRSTRLEN] = {};
    if (storage.ss_family == AF_INET) {
        sockaddr_in in{};
        std::memcpy(&in, &storage, sizeof in);
        inet_ntop(AF_INET, &in.sin_addr, buffer, sizeof buffer);
        return std::string(buffer) + " " + std::to_string(ntohs(in.sin_port));
    }
    if (storage.ss_family == AF_INET6) {
        sockaddr_in6 in6{};
        std::memcpy(&in6, &storage, sizeof in6);
        inet_ntop(AF_INET6, &in6.sin6_addr, buffer, sizeof buffer);
        return std::string(buffer) + " " + std::to_string(ntohs(in6.sin6_port));
    }
    return "family " + std::to_string(storage.ss_family);
}

}  // namespace

TEST_CASE("PROXY v2 over IPv4: signature, PROXY command, TCP4, addresses then ports") {
    const std::vector<std::uint8_t> header =
        portmux::proxy_v2_header(ipv4("192.0.2.7", 40000), ipv4("198.51.100.1", 9000));
    const std::vector<std::uint8_t> expected{
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  // signature
        0x21, 0x11, 0x00, 0x0C,                                                   // v2 PROXY, TCP4, 12
        192, 0, 2, 7, 198, 51, 100, 1,                                            // source, destination
        0x9C, 0x40, 0x23, 0x28};                                                  // 40000, 9000
    CHECK(header == expected);
}

TEST_CASE("PROXY v2 for mixed or unknown families is a LOCAL header without addresses") {
    sockaddr_storage unknown{};
    const std::vector<std::uint8_t> header =
        portmux::proxy_v2_header(unknown, ipv4("198.51.100.1", 9000));
    REQUIRE(header.size() == 16);
    CHECK(header[12] == 0x20);
    CHECK(header[13] == 0x00);
    CHECK(header[14] == 0x00);
    CHECK(header[15] == 0x00);
}

TEST_CASE("PROXY v2 over IPv6: TCP6, 36 bytes of 16-byte addresses then ports") {
    const std::vector<std::uint8_t> header = portmux::proxy_v2_header(
        ipv6("2001:db8::7", 40000), ipv6("2001:db8:0:1::ff01", 9200));
    const std::vector<std::uint8_t> expected{
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  // signature
        0x21, 0x21, 0x00, 0x24,                                                   // v2 PROXY, TCP6, 36
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07,            // source
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0xff, 0x01,      // destination
        0x9C, 0x40, 0x23, 0xF0};                                                  // 40000, 9200
    CHECK(header == expected);
}

TEST_CASE("PROXY v2 for an IPv4 client of a dual-stack listener is the TCP4 header") {
    // What accept(2) and getsockname(2) give on [::] for an IPv4 client.
    CHECK(portmux::proxy_v2_header(ipv6("::ffff:192.0.2.7", 40000), ipv6("::ffff:198.51.100.1", 9000)) ==
          portmux::proxy_v2_header(ipv4("192.0.2.7", 40000), ipv4("198.51.100.1", 9000)));
}

TEST_CASE("PROXY v2 with one IPv4 and one IPv6 end is a LOCAL header") {
    const std::vector<std::uint8_t> header =
        portmux::proxy_v2_header(ipv4("192.0.2.7", 40000), ipv6("2001:db8::1", 9000));
    REQUIRE(header.size() == 16);
    CHECK(header[12] == 0x20);
    CHECK(header[13] == 0x00);
}

TEST_CASE("unmapped_address: IPv4-mapped IPv6 becomes IPv4, anything else stays") {
    CHECK(text(portmux::unmapped_address(ipv6("::ffff:127.0.0.1", 9000))) == "127.0.0.1 9000");
    CHECK(text(portmux::unmapped_address(ipv6("::1", 9000))) == "::1 9000");
    // Only ::ffff:0:0/96 is mapped: the deprecated IPv4-compatible ::a.b.c.d is not.
    CHECK(text(portmux::unmapped_address(ipv6("::127.0.0.1", 9000))) == "::127.0.0.1 9000");
    CHECK(text(portmux::unmapped_address(ipv4("192.0.2.7", 1))) == "192.0.2.7 1");
    CHECK(text(portmux::unmapped_address(sockaddr_storage{})) == "family 0");
}

TEST_CASE("backend_address: this host's loopback in the client's family") {
    CHECK(text(portmux::backend_address(ipv4("192.0.2.7", 40000), 5001)) == "127.0.0.1 5001");
    CHECK(text(portmux::backend_address(ipv6("::ffff:192.0.2.7", 40000), 5001)) == "127.0.0.1 5001");
    CHECK(text(portmux::backend_address(ipv6("2001:db8::7", 40000), 5002)) == "::1 5002");
    CHECK(text(portmux::backend_address(ipv6("::1", 40000), 65535)) == "::1 65535");
    CHECK(portmux::address_length(portmux::backend_address(ipv6("::1", 1), 5001)) == sizeof(sockaddr_in6));
    CHECK(portmux::address_length(portmux::backend_address(ipv4("127.0.0.1", 1), 5001)) == sizeof(sockaddr_in));
}
