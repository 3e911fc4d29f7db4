// Addresses of the stream router's connections. Its listeners are dual
// stack (one AF_INET6 socket on [::] takes IPv4 clients too, as
// IPv4-mapped addresses ::ffff:a.b.c.d); what the router says to others
// (the PROXY v2 header, its backend connection) uses the client's real
// family. Pure functions, unit-tested without root.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>

namespace portmux {

// ADDRESS with an IPv4-mapped IPv6 address turned back into AF_INET (same
// port); any other address unchanged.
sockaddr_storage unmapped_address(const sockaddr_storage& address);

// Where the router dials backend PORT for a client at CLIENT: this host's
// loopback in the client's family, 127.0.0.1 for IPv4 clients (mapped or
// not), ::1 for IPv6 ones. A backend serves IPv6 clients only when it
// listens on ::1 (or [::]).
sockaddr_storage backend_address(const sockaddr_storage& client, std::uint16_t port);

// The length to pass with ADDRESS to bind(2) or connect(2).
socklen_t address_length(const sockaddr_storage& address);

}  // namespace portmux
