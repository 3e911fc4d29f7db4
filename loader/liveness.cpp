#include "liveness.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

#include <fmt/format.h>

#include "bpf_handles.hpp"

namespace portmux {
namespace {

using V4 = std::array<std::uint8_t, 4>;
using V6 = std::array<std::uint8_t, 16>;

bool all_zero(const std::uint8_t* bytes, std::size_t length) {
    return std::all_of(bytes, bytes + length, [](std::uint8_t b) { return b == 0; });
}

// ::ffff:a.b.c.d
bool is_v4_mapped(const V6& address) {
    static constexpr std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(address.data(), prefix, sizeof prefix) == 0;
}

bool v4_is_local(const V4& address, const InterfaceAddresses& addresses) {
    if (addresses.loopback && address[0] == 127) {
        return true;
    }
    return std::find(addresses.v4.begin(), addresses.v4.end(), address) != addresses.v4.end();
}

bool v6_is_local(const V6& address, const InterfaceAddresses& addresses) {
    return std::find(addresses.v6.begin(), addresses.v6.end(), address) != addresses.v6.end();
}

}  // namespace

FamilyLiveness families_served(const ReceivingSocket& socket, const InterfaceAddresses& addresses) {
    if (socket.bound_ifindex != 0 && socket.bound_ifindex != addresses.ifindex) {
        return {};
    }
    if (socket.family == AF_INET) {
        V4 address;
        std::copy_n(socket.address.begin(), 4, address.begin());
        return {all_zero(address.data(), 4) || v4_is_local(address, addresses), false};
    }
    if (socket.family != AF_INET6) {
        return {};
    }
    if (all_zero(socket.address.data(), 16)) {
        return {!socket.v6only, true};
    }
    if (is_v4_mapped(socket.address)) {
        // Only an AF_INET6 socket without IPV6_V6ONLY can bind such an address.
        V4 address;
        std::copy_n(socket.address.begin() + 12, 4, address.begin());
        return {!socket.v6only && v4_is_local(address, addresses), false};
    }
    return {false, v6_is_local(socket.address, addresses)};
}

LivenessTable backend_liveness(const Config& config, const std::vector<ReceivingSocket>& sockets,
                               const InterfaceAddresses& addresses) {
    LivenessTable table;
    for (const Frontend& frontend : config.frontends) {
        for (const Backend& backend : frontend.backends) {
            table.emplace(LivenessKey{frontend.protocol, backend.port}, FamilyLiveness{});
        }
    }
    for (const ReceivingSocket& socket : sockets) {
        auto it = table.find({socket.protocol, socket.port});
        if (it == table.end()) {
            continue;
        }
        const FamilyLiveness served = families_served(socket, addresses);
        it->second.v4 = it->second.v4 || served.v4;
        it->second.v6 = it->second.v6 || served.v6;
    }
    return table;
}

std::vector<LivenessChange> liveness_changes(const LivenessTable& before,
                                             const LivenessTable& after) {
    std::vector<LivenessChange> changes;
    for (const auto& [key, now] : after) {
        auto it = before.find(key);
        const FamilyLiveness earlier = it == before.end() ? FamilyLiveness{} : it->second;
        if (it == before.end() || earlier != now) {
            changes.push_back({key, earlier, now});
        }
    }
    return changes;
}

std::size_t apply_liveness(Config& config, const LivenessTable& table) {
    std::size_t changed = 0;
    for (Frontend& frontend : config.frontends) {
        for (Backend& backend : frontend.backends) {
            auto it = table.find({frontend.protocol, backend.port});
            if (it == table.end()) {
                continue;
            }
            changed += backend.up_v4 != it->second.v4 || backend.up_v6 != it->second.v6;
            backend.up_v4 = it->second.v4;
            backend.up_v6 = it->second.v6;
        }
    }
    return changed;
}

std::string describe(const FamilyLiveness& liveness) {
    if (liveness.v4 && liveness.v6) {
        return "up";
    }
    if (liveness.v4) {
        return "up v4 only";
    }
    if (liveness.v6) {
        return "up v6 only";
    }
    return "down";
}

namespace {

struct DiagRequest {
    nlmsghdr header;
    inet_diag_req_v2 request;
};

[[noreturn]] void throw_diag_error(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(),
                            fmt::format("reading the socket table (sock_diag): {}", what));
}

// Appends the sockets of one (family, protocol) dump to OUT.
void dump_sockets(int netlink_fd, int family, Protocol protocol, std::uint32_t states,
                  std::vector<ReceivingSocket>& out) {
    DiagRequest message{};
    message.header.nlmsg_len = sizeof message;
    message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    message.header.nlmsg_seq = static_cast<std::uint32_t>(family) << 8 |
                               static_cast<std::uint32_t>(protocol);
    message.request.sdiag_family = static_cast<std::uint8_t>(family);
    message.request.sdiag_protocol = static_cast<std::uint8_t>(protocol);
    message.request.idiag_states = states;

    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (sendto(netlink_fd, &message, sizeof message, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) < 0) {
        throw_diag_error(errno, "sending the dump request");
    }

    // Dumps arrive in parts of up to a page or so each; 32 KiB holds several.
    alignas(nlmsghdr) static thread_local std::uint8_t buffer[32768];
    for (;;) {
        const ssize_t received = recv(netlink_fd, buffer, sizeof buffer, 0);
        if (received < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_diag_error(errno, "receiving the dump");
        }
        auto length = static_cast<std::uint32_t>(received);
        for (auto* header = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(header, length);
             header = NLMSG_NEXT(header, length)) {
            if (header->nlmsg_seq != message.header.nlmsg_seq) {
                continue;  // a late answer to an earlier request
            }
            if (header->nlmsg_type == NLMSG_DONE) {
                return;
            }
            if (header->nlmsg_type == NLMSG_ERROR) {
                const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(header));
                if (error->error == -ENOENT && protocol == Protocol::udp) {
                    return;  // no UDP diag module: no UDP sockets to report
                }
                throw_diag_error(-error->error, fmt::format("the kernel refused the {} {} dump",
                                                            family == AF_INET ? "IPv4" : "IPv6",
                                                            to_string(protocol)));
            }
            if (header->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
                header->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
                continue;
            }
            const auto* diag = static_cast<const inet_diag_msg*>(NLMSG_DATA(header));
            ReceivingSocket socket;
            socket.protocol = protocol;
            socket.family = diag->idiag_family;
            socket.port = ntohs(diag->id.idiag_sport);
            socket.bound_ifindex = diag->id.idiag_if;
            std::memcpy(socket.address.data(), diag->id.idiag_src,
                        diag->idiag_family == AF_INET ? 4 : 16);
            if (protocol == Protocol::udp && diag->id.idiag_dport != 0) {
                continue;  // connected: hears only its peer
            }
            // Attributes follow the message: IPV6_V6ONLY is among them for AF_INET6.
            int attributes_length = static_cast<int>(header->nlmsg_len) -
                                    static_cast<int>(NLMSG_LENGTH(sizeof(inet_diag_msg)));
            for (auto* attribute = reinterpret_cast<rtattr*>(
                     const_cast<inet_diag_msg*>(diag) + 1);
                 RTA_OK(attribute, attributes_length);
                 attribute = RTA_NEXT(attribute, attributes_length)) {
                if (attribute->rta_type == INET_DIAG_SKV6ONLY &&
                    RTA_PAYLOAD(attribute) >= sizeof(std::uint8_t)) {
                    socket.v6only = *static_cast<const std::uint8_t*>(RTA_DATA(attribute)) != 0;
                }
            }
            out.push_back(socket);
        }
    }
}

}  // namespace

std::vector<ReceivingSocket> receiving_sockets() {
    UniqueFd netlink(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!netlink) {
        throw_diag_error(errno, "opening a NETLINK_SOCK_DIAG socket");
    }
    // TCP_LISTEN for TCP; an unconnected UDP socket is in TCP_CLOSE.
    constexpr std::uint32_t listening = 1u << TCP_LISTEN;
    constexpr std::uint32_t unconnected = 1u << TCP_CLOSE;
    std::vector<ReceivingSocket> sockets;
    for (int family : {AF_INET, AF_INET6}) {
        dump_sockets(netlink.get(), family, Protocol::tcp, listening, sockets);
        dump_sockets(netlink.get(), family, Protocol::udp, unconnected, sockets);
    }
    return sockets;
}

InterfaceAddresses interface_addresses(const std::string& iface) {
    InterfaceAddresses addresses;
    addresses.ifindex = if_nametoindex(iface.c_str());
    if (addresses.ifindex == 0) {
        throw std::runtime_error(fmt::format("no such interface: {}", iface));
    }
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) {
        throw std::system_error(errno, std::generic_category(),
                                fmt::format("reading the addresses of {}", iface));
    }
    const std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> owner(list, &freeifaddrs);
    for (const ifaddrs* entry = list; entry; entry = entry->ifa_next) {
        if (!entry->ifa_name || iface != entry->ifa_name) {
            continue;
        }
        addresses.loopback = addresses.loopback || (entry->ifa_flags & IFF_LOOPBACK);
        if (!entry->ifa_addr) {
            continue;
        }
        if (entry->ifa_addr->sa_family == AF_INET) {
            const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
            V4 address;
            std::memcpy(address.data(), &in->sin_addr, 4);
            addresses.v4.push_back(address);
        } else if (entry->ifa_addr->sa_family == AF_INET6) {
            const auto* in6 = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
            V6 address;
            std::memcpy(address.data(), &in6->sin6_addr, 16);
            addresses.v6.push_back(address);
        }
    }
    return addresses;
}

}  // namespace portmux
