// TCP affinity from the kernel's socket table (xdp/tcp_affinity.h): a segment
// whose flow entry and SYN slot are gone goes to the backend whose socket
// holds its connection (established, or the request socket of a handshake
// under way), or whose listener issued the syncookie its ACK returns; never
// to the hash, and never to a backend that does not hold it.
//
// BPF_PROG_TEST_RUN runs the XDP program in the caller's network namespace,
// so each test moves this thread into a namespace of its own (unshare), with
// real sockets in it and a veth pair: pmxa (10.7.0.1, fd07::1) is this host,
// frames injected on pmxb come from a remote client 10.7.0.2 / fd07::2, and
// what the host sends that client (SYN-ACKs) is read back on pmxb, where
// the stack drops it (no address, no forwarding: no reset, no ICMP).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "checksum_reference.hpp"
#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

const MacAddress kHostMac{0x02, 0, 0, 0, 0x07, 0x01};
const MacAddress kClientMac{0x02, 0, 0, 0, 0x07, 0x02};

[[noreturn]] void fail_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    Fd& operator=(Fd&& other) noexcept {
        std::swap(fd_, other.fd_);
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0) close(fd_);
    }
    int get() const { return fd_; }

private:
    int fd_;
};

void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path);
}

// This thread in a network namespace of its own for the object's lifetime,
// with the veth pair described above. Declared before any socket of the
// test, so the sockets close before the thread leaves and the namespace
// goes with them.
class PrivateNetwork {
public:
    PrivateNetwork() : original_(open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) {
        if (original_.get() < 0) fail_errno("opening this thread's network namespace");
        if (unshare(CLONE_NEWNET) != 0) fail_errno("unshare(CLONE_NEWNET)");
        const char* script =
            "set -e; ip link set lo up;"
            "ip link add pmxa address 02:00:00:00:07:01 type veth peer name pmxb address 02:00:00:00:07:02;"
            "echo 1 > /proc/sys/net/ipv6/conf/pmxb/disable_ipv6;"
            "ip addr add 10.7.0.1/24 dev pmxa; ip -6 addr add fd07::1/64 dev pmxa nodad;"
            "ip link set pmxa up; ip link set pmxb up;"
            "ip neigh add 10.7.0.2 lladdr 02:00:00:00:07:02 dev pmxa nud permanent;"
            "ip -6 neigh add fd07::2 lladdr 02:00:00:00:07:02 dev pmxa nud permanent";
        const std::string command = std::string("sh -c '") + script + "' >/dev/null 2>&1";
        if (std::system(command.c_str()) != 0) {
            leave();
            throw std::runtime_error("setting up the test's veth pair with ip(8) failed");
        }
    }
    ~PrivateNetwork() { leave(); }
    PrivateNetwork(const PrivateNetwork&) = delete;
    PrivateNetwork& operator=(const PrivateNetwork&) = delete;

    // net.ipv4.tcp_syncookies of this namespace (it governs IPv6 too):
    // 2 answers every SYN with a cookie, as a listener under a flood does.
    void syncookies(int mode) const {
        write_file("/proc/sys/net/ipv4/tcp_syncookies", std::to_string(mode));
    }

private:
    void leave() {
        if (original_.get() >= 0 && setns(original_.get(), CLONE_NEWNET) != 0) {
            std::perror("setns back to the original network namespace");
            std::abort();  // every later test would run in the wrong namespace
        }
    }
    Fd original_;
};

struct Endpoint {
    int family;
    std::string host;    // this host's address on pmxa
    std::string client;  // the remote client's, behind pmxb
};

const Endpoint kIpv4{AF_INET, "10.7.0.1", "10.7.0.2"};
const Endpoint kIpv6{AF_INET6, "fd07::1", "fd07::2"};

sockaddr_storage socket_address(int family, const std::string& address, std::uint16_t port, socklen_t& length) {
    sockaddr_storage storage{};
    if (family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&storage);
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        inet_pton(AF_INET, address.c_str(), &in->sin_addr);
        length = sizeof(sockaddr_in);
    } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr);
        length = sizeof(sockaddr_in6);
    }
    return storage;
}

Fd listener(const Endpoint& at, std::uint16_t port) {
    Fd fd(socket(at.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) fail_errno("socket");
    socklen_t length = 0;
    const sockaddr_storage address = socket_address(at.family, at.host, port, length);
    if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) fail_errno("bind");
    if (listen(fd.get(), 16) != 0) fail_errno("listen");
    return fd;
}

// A connection from this host to itself at backend `port`: the accepted side
// is the backend's socket. Returns {client socket, accepted socket, client port}.
struct Connection {
    Fd client;
    Fd accepted;
    std::uint16_t client_port = 0;
};

// `client_port` 0: the kernel picks an ephemeral port.
Connection connect_to(const Endpoint& at, const Fd& listening, std::uint16_t port, std::uint16_t client_port = 0) {
    Connection c;
    c.client = Fd(socket(at.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    socklen_t length = 0;
    if (client_port != 0) {
        socklen_t local_length = 0;
        const sockaddr_storage local = socket_address(at.family, at.host, client_port, local_length);
        if (bind(c.client.get(), reinterpret_cast<const sockaddr*>(&local), local_length) != 0) fail_errno("bind");
    }
    const sockaddr_storage address = socket_address(at.family, at.host, port, length);
    if (connect(c.client.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) fail_errno("connect");
    c.accepted = Fd(accept4(listening.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (c.accepted.get() < 0) fail_errno("accept");
    sockaddr_storage local{};
    socklen_t local_length = sizeof local;
    getsockname(c.client.get(), reinterpret_cast<sockaddr*>(&local), &local_length);
    c.client_port = ntohs(at.family == AF_INET ? reinterpret_cast<sockaddr_in*>(&local)->sin_port
                                               : reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
    return c;
}

PacketBuilder between(const Endpoint& at, const std::string& source, const std::string& destination) {
    PacketBuilder builder;
    builder.ethernet(kHostMac, kClientMac);
    if (at.family == AF_INET) {
        builder.ipv4(ipv4_address(source), ipv4_address(destination));
    } else {
        builder.ipv6(ipv6_address(source), ipv6_address(destination));
    }
    return builder;
}

void write32(Frame& frame, std::size_t offset, std::uint32_t value) {
    frame.write16(offset, static_cast<std::uint16_t>(value >> 16));
    frame.write16(offset + 2, static_cast<std::uint16_t>(value));
}

std::uint32_t read32(const Bytes& bytes, std::size_t offset) {
    return std::uint32_t{bytes.at(offset)} << 24 | std::uint32_t{bytes.at(offset + 1)} << 16 |
           std::uint32_t{bytes.at(offset + 2)} << 8 | bytes.at(offset + 3);
}

// A TCP segment with the given sequence and acknowledgment numbers.
Frame tcp_segment(const PacketBuilder& ip, std::uint16_t source_port, std::uint16_t destination_port,
                  std::uint8_t flags, std::uint32_t seq, std::uint32_t ack) {
    Frame frame = PacketBuilder(ip).tcp(source_port, destination_port).tcp_flags(flags).build();
    write32(frame, frame.l4_offset + 4, seq);
    write32(frame, frame.l4_offset + 8, ack);
    frame.set_transport_checksum(0);
    frame.set_transport_checksum(recompute_transport_checksum(frame.bytes));
    return frame;
}

// The client's side of pmxb: sends frames into the host, reads what the
// host sends the client.
class ClientLink {
public:
    ClientLink() : fd_(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL))) {
        if (fd_.get() < 0) fail_errno("AF_PACKET socket");
        sockaddr_ll address{};
        address.sll_family = AF_PACKET;
        address.sll_protocol = htons(ETH_P_ALL);
        address.sll_ifindex = static_cast<int>(if_nametoindex("pmxb"));
        if (address.sll_ifindex == 0 || bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            fail_errno("binding to pmxb");
        }
        timeval timeout{0, 200000};
        setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    }
    void send(const Frame& frame) const {
        if (::send(fd_.get(), frame.bytes.data(), frame.bytes.size(), 0) != static_cast<ssize_t>(frame.bytes.size())) {
            fail_errno("sending on pmxb");
        }
    }
    // The SYN-ACK the host sent to `client_port` from `backend`, within 5 s;
    // its sequence number (the cookie, or the request socket's ISN).
    std::optional<std::uint32_t> syn_ack_seq(std::uint16_t backend, std::uint16_t client_port) const {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        std::vector<std::uint8_t> buffer(2048);
        while (std::chrono::steady_clock::now() < deadline) {
            sockaddr_ll from{};
            socklen_t from_length = sizeof from;
            const ssize_t got = recvfrom(fd_.get(), buffer.data(), buffer.size(), 0,
                                         reinterpret_cast<sockaddr*>(&from), &from_length);
            if (got <= 0 || from.sll_pkttype == PACKET_OUTGOING) continue;
            const Bytes bytes(buffer.begin(), buffer.begin() + got);
            try {
                const TransportLocation where = locate_transport(bytes);
                if (where.protocol != kIpProtoTcp) continue;
                const std::size_t l4 = where.l4_offset;
                const std::uint16_t source = static_cast<std::uint16_t>(bytes.at(l4) << 8 | bytes.at(l4 + 1));
                const std::uint16_t destination = static_cast<std::uint16_t>(bytes.at(l4 + 2) << 8 | bytes.at(l4 + 3));
                if (source == backend && destination == client_port && (bytes.at(l4 + 13) & 0x12) == 0x12) {
                    return read32(bytes, l4 + 4);
                }
            } catch (const std::exception&) {
                continue;  // not a frame the reference parser reads: not ours
            }
        }
        return std::nullopt;
    }

private:
    Fd fd_;
};

// The frontend's three backends configured and listening, in the current
// (private) network namespace.
std::vector<Fd> listening_backends(const Endpoint& at) {
    data_path().configure(config_of({make_frontend(kFlowFrontendPort, Protocol::tcp, kFlowBackendPorts)}));
    std::vector<Fd> listeners;
    for (std::uint16_t port : kFlowBackendPorts) listeners.push_back(listener(at, port));
    return listeners;
}

// The segment must go to `backend` and be recorded in the flow table there.
void require_found(const Frame& segment, std::uint16_t backend) {
    CHECK(forward(segment) == backend);
    const auto flow = data_path().flow(request_flow_key(segment));
    REQUIRE(flow.has_value());
    CHECK(ntohs(flow->backend_port) == backend);
}

std::uint16_t hashed_over_backends(const Frame& segment) {
    const std::vector<std::uint8_t> order = round_robin_order(make_frontend(kFlowFrontendPort, Protocol::tcp, kFlowBackendPorts).backends);
    return kFlowBackendPorts.at(order.at(reference_flow_hash(request_flow_key(segment)) % order.size()));
}

}  // namespace

TEST_CASE("TCP affinity: a connection with no flow entry and no SYN slot is found in the socket table",
          "[tcp][sockets]") {
    const Endpoint at = GENERATE(kIpv4, kIpv6);
    INFO("family " << (at.family == AF_INET ? "IPv4" : "IPv6"));
    PrivateNetwork network;
    std::vector<Fd> listeners = listening_backends(at);
    // Two connections per backend, opened to each backend port directly
    // (as if portmux had balanced them and then lost every trace). Each
    // from a client port the flow hash would send to another backend, so
    // only the socket table lookup can find the right one (with ephemeral
    // ports all six matched the hash in 1 run of 729).
    const auto segment_from = [&](std::uint16_t client_port, std::uint8_t flags) {
        return tcp_segment(between(at, at.host, at.host), client_port, kFlowFrontendPort, flags, 1000, 2000);
    };
    std::vector<Connection> connections;
    std::uint16_t next_client_port = 41000;
    for (int round = 0; round < 2; ++round) {
        for (std::size_t i = 0; i < kFlowBackendPorts.size(); ++i) {
            while (hashed_over_backends(segment_from(next_client_port, kTcpAck)) == kFlowBackendPorts[i]) ++next_client_port;
            connections.push_back(connect_to(at, listeners[i], kFlowBackendPorts[i], next_client_port++));
        }
    }
    std::size_t not_the_hash = 0;
    for (std::size_t c = 0; c < connections.size(); ++c) {
        const std::uint16_t backend = kFlowBackendPorts[c % kFlowBackendPorts.size()];
        INFO("connection from port " << connections[c].client_port << " on backend " << backend);
        for (std::uint8_t flags : {kTcpAck, std::uint8_t(kTcpPsh | kTcpAck), std::uint8_t(kTcpFin | kTcpAck), kTcpRst}) {
            data_path().clear_flow_tables();
            const Frame segment = segment_from(connections[c].client_port, flags);
            require_found(segment, backend);
            not_the_hash += hashed_over_backends(segment) != backend;
        }
    }
    // The hash would have sent every segment elsewhere (the flags are not
    // hashed): the test proves the lookup, not luck.
    CHECK(not_the_hash == connections.size() * 4);
    CHECK(data_path().syn_slot_count() == 0);
}

TEST_CASE("TCP affinity: the ACK of a handshake under way goes to the backend holding its request socket",
          "[tcp][sockets]") {
    const Endpoint at = GENERATE(kIpv4, kIpv6);
    INFO("family " << (at.family == AF_INET ? "IPv4" : "IPv6"));
    PrivateNetwork network;
    network.syncookies(1);  // cookies only when a queue overflows: request sockets here
    std::vector<Fd> listeners = listening_backends(at);
    ClientLink link;
    // The client's SYN reached 8083 (directly: portmux's record of it is lost).
    const std::uint16_t client_port = 50001;
    link.send(tcp_segment(between(at, at.client, at.host), client_port, 8083, kTcpSyn, 7000, 0));
    const auto syn_ack = link.syn_ack_seq(8083, client_port);
    REQUIRE(syn_ack.has_value());
    const Frame ack = tcp_segment(between(at, at.client, at.host), client_port, kFlowFrontendPort, kTcpAck, 7001, *syn_ack + 1);
    require_found(ack, 8083);
}

TEST_CASE("TCP affinity: the ACK returning a syncookie goes to the backend whose listener issued it",
          "[tcp][sockets][syncookie]") {
    const Endpoint at = GENERATE(kIpv4, kIpv6);
    INFO("family " << (at.family == AF_INET ? "IPv4" : "IPv6"));
    PrivateNetwork network;
    network.syncookies(2);  // every SYN answered with a cookie, no request socket
    std::vector<Fd> listeners = listening_backends(at);
    ClientLink link;
    for (std::uint16_t backend : kFlowBackendPorts) {
        INFO("cookie from backend " << backend);
        const std::uint16_t client_port = static_cast<std::uint16_t>(51000 + backend);
        link.send(tcp_segment(between(at, at.client, at.host), client_port, backend, kTcpSyn, 9000, 0));
        const auto cookie = link.syn_ack_seq(backend, client_port);
        REQUIRE(cookie.has_value());
        // A forged cookie (its minute counter 128 off; the low bits would
        // only change the MSS it encodes): no listener recognises it, so it
        // is hashed and recorded nowhere.
        const Frame forged = tcp_segment(between(at, at.client, at.host), client_port, kFlowFrontendPort, kTcpAck, 9001,
                                         *cookie + 1 + 0x80000000u);
        CHECK(forward(forged) == hashed_over_backends(forged));
        CHECK_FALSE(data_path().flow(request_flow_key(forged)).has_value());
        // The real one: only the issuing listener's port makes it valid.
        const Frame ack = tcp_segment(between(at, at.client, at.host), client_port, kFlowFrontendPort, kTcpAck, 9001,
                                      *cookie + 1);
        require_found(ack, backend);
    }
}

namespace {

// An ICMP error from a router about a reply this host sent (frontend port
// -> client), with the MTU of its next hop: Ethernet from the client's side.
Frame path_mtu_error(const Endpoint& at, const Frame& reply) {
    const std::size_t limit = at.family == AF_INET ? 548 : 1232;  // what routers quote
    Bytes quote(reply.bytes.begin() + static_cast<std::ptrdiff_t>(reply.l3_offset), reply.bytes.end());
    if (quote.size() > limit) quote.resize(limit);
    const std::string router = at.family == AF_INET ? "10.7.0.254" : "fd07::fe";
    PacketBuilder error = between(at, router, at.host);
    if (at.family == AF_INET) {
        error.icmp(3, 4, 1000);  // fragmentation needed, next-hop MTU 1000
    } else {
        error.icmp(2, 0, 1280);  // packet too big, MTU 1280
    }
    return error.payload(quote).build();
}

}  // namespace

TEST_CASE("TCP affinity: a path MTU error about a reply of a connection with no flow entry and no SYN slot "
          "reaches its backend's socket",
          "[tcp][sockets][icmp]") {
    const Endpoint at = GENERATE(kIpv4, kIpv6);
    INFO("family " << (at.family == AF_INET ? "IPv4" : "IPv6"));
    PrivateNetwork network;
    std::vector<Fd> listeners = listening_backends(at);
    // One connection per backend, opened to the backend port directly (as
    // if portmux had balanced it and then lost its flow entry and slot).
    std::vector<Connection> connections;
    for (std::size_t i = 0; i < kFlowBackendPorts.size(); ++i) {
        connections.push_back(connect_to(at, listeners[i], kFlowBackendPorts[i], static_cast<std::uint16_t>(42000 + i)));
    }
    const auto reply_from = [&](std::uint16_t source, std::uint16_t client_port) {
        return tcp_segment(between(at, at.host, at.host).payload(Bytes(1400, 0x5a)), source, client_port,
                           kTcpPsh | kTcpAck, 3000, 4000);
    };
    for (std::size_t c = 0; c < connections.size(); ++c) {
        const std::uint16_t backend = kFlowBackendPorts[c];
        INFO("connection from port " << connections[c].client_port << " on backend " << backend);
        data_path().clear_flow_tables();
        data_path().clear_syn_slots();
        // The reply as the backend sent it, and as it left (TC egress gave it the frontend port).
        const Frame sent = reply_from(backend, connections[c].client_port);
        const Frame on_wire = reply_from(kFlowFrontendPort, connections[c].client_port);
        const Frame error = path_mtu_error(at, on_wire);
        const Frame expected = path_mtu_error(at, sent);
        REQUIRE(transport_checksum_verifies(error.bytes));
        REQUIRE(transport_checksum_verifies(expected.bytes));
        const XdpRun run = data_path().run(error.bytes);
        CHECK(run.action == kXdpPass);
        CHECK_THAT(run.output, FrameEquals(expected.bytes));
        CHECK(transport_checksum_verifies(run.output));
        // Nothing recorded for it.
        CHECK(data_path().flow_count() == 0);
    }
    // A client port no backend holds a connection for: the listeners do not
    // count, and the error passes as it came.
    const Frame stray = path_mtu_error(at, reply_from(kFlowFrontendPort, 45000));
    const XdpRun run = data_path().run(stray.bytes);
    CHECK(run.action == kXdpPass);
    CHECK_THAT(run.output, FrameEquals(stray.bytes));
}
