#include "stream_address.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace portmux {

sockaddr_storage unmapped_address(const sockaddr_storage& address) {
    if (address.ss_family != AF_INET6) {
        return address;
    }
    sockaddr_in6 in6{};
    std::memcpy(&in6, &address, sizeof in6);
    if (!IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
        return address;
    }
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = in6.sin6_port;
    std::memcpy(&in.sin_addr, &in6.sin6_addr.s6_addr[12], sizeof in.sin_addr);
    sockaddr_storage plain{};
    std::memcpy(&plain, &in, sizeof in);
    return plain;
}

sockaddr_storage backend_address(const sockaddr_storage& client, std::uint16_t port) {
    sockaddr_storage backend{};
    if (unmapped_address(client).ss_family == AF_INET6) {
        sockaddr_in6 in6{};
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        in6.sin6_addr = in6addr_loopback;
        std::memcpy(&backend, &in6, sizeof in6);
    } else {
        sockaddr_in in{};
        in.sin_family = AF_INET;
        in.sin_port = htons(port);
        in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        std::memcpy(&backend, &in, sizeof in);
    }
    return backend;
}

socklen_t address_length(const sockaddr_storage& address) {
    switch (address.ss_family) {
    case AF_INET:
        return sizeof(sockaddr_in);
    case AF_INET6:
        return sizeof(sockaddr_in6);
    default:
        return sizeof address;
    }
}

}  // namespace portmux
