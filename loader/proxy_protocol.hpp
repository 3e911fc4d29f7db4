// The PROXY protocol version 2 header (haproxy's proxy-protocol.txt, section
// 2.2): tells a backend the client's address when a proxy connects for it.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <vector>

namespace portmux {

// The binary header for a TCP connection from CLIENT to LOCAL (the address
// the client dialled), both AF_INET or both AF_INET6 (IPv4-mapped IPv6
// addresses count as AF_INET: a TCP4 header); a LOCAL command header (no
// addresses) for anything else.
std::vector<std::uint8_t> proxy_v2_header(const sockaddr_storage& client,
                                          const sockaddr_storage& local);

}  // namespace portmux
