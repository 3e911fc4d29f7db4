// Backend liveness from the kernel's own socket table: a backend is up for
// an address family when a socket that would receive the frontend's
// traffic is bound (UDP) or listening (TCP) on its port. No probes.
//
// The decision (which sockets serve which family) is pure and unit-tested;
// reading the socket table (sock_diag netlink, what `ss` uses) and the
// interface's addresses needs no privileges but runs in the caller's
// network namespace, which must be IFACE's.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config.hpp"

namespace portmux {

// A socket that can receive on a port: a TCP listener, or an unconnected
// UDP socket (a connected one only hears its one peer, so it does not count).
struct ReceivingSocket {
    Protocol protocol = Protocol::udp;
    int family = 0;                         // AF_INET or AF_INET6
    std::array<std::uint8_t, 16> address{}; // bound address; IPv4 in the first 4 bytes
    std::uint16_t port = 0;                 // host byte order
    bool v6only = false;                    // IPV6_V6ONLY (AF_INET6 only)
    unsigned bound_ifindex = 0;             // SO_BINDTODEVICE; 0: any device
};

// The addresses clients reach IFACE on, which a backend bound to one
// specific address must use to serve the frontend's traffic.
struct InterfaceAddresses {
    unsigned ifindex = 0;
    bool loopback = false;  // all of 127.0.0.0/8 is local on a loopback device
    std::vector<std::array<std::uint8_t, 4>> v4;
    std::vector<std::array<std::uint8_t, 16>> v6;
};

// Whether a backend can take the frontend's traffic, per address family.
struct FamilyLiveness {
    bool v4 = false;
    bool v6 = false;
    friend bool operator==(const FamilyLiveness&, const FamilyLiveness&) = default;
};

// (protocol, backend port) -> liveness. A backend port is alive or not
// regardless of which frontend sends to it.
using LivenessKey = std::pair<Protocol, std::uint16_t>;
using LivenessTable = std::map<LivenessKey, FamilyLiveness>;

// Which families SOCKET serves for traffic arriving on the interface:
// wildcard binds serve their family (an AF_INET6 wildcard without
// IPV6_V6ONLY serves IPv4 too), specific binds only when the address is one
// of the interface's (IPv4-mapped IPv6 binds serve IPv4), and a socket bound
// to another device serves nothing.
FamilyLiveness families_served(const ReceivingSocket& socket, const InterfaceAddresses& addresses);

// Liveness of every backend port of CONFIG, given the sockets of the
// namespace. Every backend of the config has an entry.
LivenessTable backend_liveness(const Config& config, const std::vector<ReceivingSocket>& sockets,
                               const InterfaceAddresses& addresses);

// One backend whose liveness differs between two tables (for the log).
struct LivenessChange {
    LivenessKey backend;
    FamilyLiveness before;  // all false when the backend is new to `after`
    FamilyLiveness after;
};
std::vector<LivenessChange> liveness_changes(const LivenessTable& before,
                                             const LivenessTable& after);

// Sets up_v4/up_v6 of every backend of CONFIG that TABLE knows (others
// keep theirs). Returns how many backends changed.
std::size_t apply_liveness(Config& config, const LivenessTable& table);

// "up", "down", "up v4 only" or "up v6 only".
std::string describe(const FamilyLiveness& liveness);

// Reads the receiving sockets of the caller's network namespace through
// NETLINK_SOCK_DIAG: TCP listeners and unconnected UDP sockets, IPv4 and
// IPv6. Throws std::system_error when the kernel refuses.
std::vector<ReceivingSocket> receiving_sockets();

// The addresses of IFACE (getifaddrs); throws when IFACE does not exist.
InterfaceAddresses interface_addresses(const std::string& iface);

}  // namespace portmux
