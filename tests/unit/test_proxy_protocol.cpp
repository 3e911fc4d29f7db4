// Tests of loader/proxy_protocol.cpp against the bytes of haproxy's
// proxy-protocol.txt, section 2.2.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstring>
#include <vector>

#include "proxy_protocol.hpp"

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
