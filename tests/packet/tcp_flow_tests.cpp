// TCP frontends: a SYN (without ACK) takes the next backend and records it in
// its SYN slot; it neither reads nor writes the flow table (an older
// connection's entry is retired by the new one's SYN-ACK at TC egress); the segment that
// completes the handshake follows the slot and records the flow; later
// segments follow the flow table; segments no slot, flow or backend socket
// knows are hashed over the live backends and recorded nowhere; a SYN
// repeated within 3 s is a retransmission; a backend removed by a reload
// moves its flows. (Segments found in the kernel's socket table:
// tcp_affinity_tests.cpp.)
// UDP flow affinity, which shares the flow table, is tested at the end.
// main() pins the process to one CPU, so the round-robin cursor is exact.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "checksum_reference.hpp"
#include "fixtures.hpp"
#include "maps.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

Frontend tcp_frontend(const std::vector<std::uint16_t>& backends = kFlowBackendPorts) {
    return make_frontend(kFlowFrontendPort, Protocol::tcp, backends);
}

void configure_tcp(const std::vector<std::uint16_t>& backends = kFlowBackendPorts) {
    data_path().configure(config_of({tcp_frontend(backends)}));
}

Frame segment(const PacketBuilder& client, std::uint16_t client_port, std::uint8_t flags,
              std::size_t payload = 0) {
    return PacketBuilder(client)
        .tcp(client_port, kFlowFrontendPort)
        .tcp_flags(flags)
        .payload(counting_payload(payload))
        .build();
}

// The backend a segment of an unknown flow must go to: the hash of its flow
// key over the round-robin order of the live backends.
std::uint16_t hashed_backend(const Frontend& frontend, const Frame& request) {
    const std::vector<std::uint8_t> order = round_robin_order(frontend.backends);
    REQUIRE(!order.empty());
    const std::uint32_t hash = reference_flow_hash(request_flow_key(request));
    return frontend.backends.at(order.at(hash % order.size())).port;
}

std::uint32_t generation_of(const Frontend& frontend) {
    return encode_frontend(frontend, 0).generation;
}

// The flow entry of `request` must point at `backend` (index and port) under
// the generation of `frontend`, and its replies show the frontend port.
void require_flow(const Frame& request, const Frontend& frontend, std::uint16_t backend) {
    const auto flow = data_path().flow(request_flow_key(request));
    REQUIRE(flow.has_value());
    CHECK(ntohs(flow->backend_port) == backend);
    std::vector<std::uint16_t> ports;
    for (const Backend& b : frontend.backends) {
        ports.push_back(b.port);
    }
    CHECK(flow->backend_index == index_of(ports, backend));
    CHECK(flow->generation == generation_of(frontend));
    CHECK(data_path().reply_frontend(request, backend) == kFlowFrontendPort);
}

// The SYN slot of `syn` must name `backend` (port and index in `frontend`),
// no flow exist for it yet, and its replies show the frontend port.
void require_syn_slot(const Frame& syn, const Frontend& frontend, std::uint16_t backend) {
    const auto slot = data_path().syn_slot(request_flow_key(syn));
    REQUIRE(slot.has_value());
    CHECK(ntohs(slot->backend_port) == backend);
    std::vector<std::uint16_t> ports;
    for (const Backend& b : frontend.backends) {
        ports.push_back(b.port);
    }
    CHECK(slot->backend_index == index_of(ports, backend));
    CHECK_FALSE(data_path().flow(request_flow_key(syn)).has_value());
    CHECK(data_path().reply_frontend(syn, backend) == kFlowFrontendPort);
}

}  // namespace

TEST_CASE("TCP: SYNs take backends in turn, every later segment follows its flow", "[tcp]") {
    configure_tcp();
    const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client(), ipv4_client().vlan(kTpid8021q, 7),
                                          ipv6_client().ipv6_hop_by_hop());
    CounterTally tally(3);

    // Three connections from three client ports: 8081, 8082, 8083.
    const std::vector<std::uint16_t> client_ports{40001, 40002, 40003};
    for (std::size_t i = 0; i < client_ports.size(); ++i) {
        const Frame syn = segment(client, client_ports[i], kTcpSyn);
        CHECK(forward(syn) == kFlowBackendPorts[i]);
        tally.forwarded(i, syn);
        require_syn_slot(syn, tcp_frontend(), kFlowBackendPorts[i]);
    }
    // SYNs write slots, never the flow table.
    CHECK(data_path().flow_count() == 0);
    CHECK(data_path().syn_slot_count() == 3);
    CHECK(data_path().direct_client_count() == 0);

    // The rest of each connection, interleaved, stays on its backend; the
    // first of them (the handshake's ACK) records the flow.
    for (const std::uint8_t flags : {kTcpAck, std::uint8_t(kTcpPsh | kTcpAck), std::uint8_t(kTcpFin | kTcpAck),
                                     kTcpAck}) {
        for (std::size_t i = 0; i < client_ports.size(); ++i) {
            const std::size_t payload = flags == (kTcpPsh | kTcpAck) ? 100 + i : 0;
            const Frame later = segment(client, client_ports[i], flags, payload);
            INFO("flags 0x" << std::hex << int(flags) << std::dec << ", client port " << client_ports[i]);
            CHECK(forward(later) == kFlowBackendPorts[i]);
            tally.forwarded(i, later);
            require_flow(later, tcp_frontend(), kFlowBackendPorts[i]);
        }
    }
    // Still three flows, and the cursor moved only for the SYNs: the next
    // connection goes to the first backend again.
    CHECK(data_path().flow_count() == 3);
    const Frame fourth = segment(client, 40004, kTcpSyn);
    CHECK(forward(fourth) == kFlowBackendPorts[0]);
    tally.forwarded(0, fourth);
    require_counters(kFlowFrontendPort, Protocol::tcp, tally.expected());
}

TEST_CASE("TCP: the flow key holds client address, client port and frontend port", "[tcp]") {
    configure_tcp();
    CounterTally tally(3);
    const Frame syn = segment(ipv4_client(), 40001, kTcpSyn);
    CHECK(forward(syn) == 8081);
    tally.forwarded(0, syn);
    // Same port, other address: a new connection, so the next SYN backend.
    const PacketBuilder other_host =
        PacketBuilder{}.ipv4(ipv4_address("192.0.2.11"), ipv4_address("198.51.100.1"));
    const Frame other_syn = segment(other_host, 40001, kTcpSyn);
    CHECK(forward(other_syn) == 8082);
    tally.forwarded(1, other_syn);
    // Each host's ACK follows its own flow.
    const Frame ack = segment(ipv4_client(), 40001, kTcpAck);
    const Frame other_ack = segment(other_host, 40001, kTcpAck);
    CHECK(forward(other_ack) == 8082);
    tally.forwarded(1, other_ack);
    CHECK(forward(ack) == 8081);
    tally.forwarded(0, ack);
    CHECK(data_path().flow_count() == 2);
    require_counters(kFlowFrontendPort, Protocol::tcp, tally.expected());
}

TEST_CASE("TCP: a segment no slot, flow or backend socket knows goes to a stable hashed backend, recorded nowhere",
          "[tcp]") {
    configure_tcp();
    const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client());
    const std::uint8_t flags = GENERATE(as<std::uint8_t>{}, kTcpAck, std::uint8_t(kTcpPsh | kTcpAck), std::uint8_t(kTcpFin | kTcpAck),
                                        std::uint8_t(kTcpSyn | kTcpAck), kTcpRst);
    INFO("flags 0x" << std::hex << int(flags));
    CounterTally tally(3);
    std::set<std::uint16_t> used;
    for (std::uint16_t port = 41000; port < 41024; ++port) {
        const Frame frame = segment(client, port, flags, flags & kTcpPsh ? 33 : 0);
        const std::uint16_t expected = hashed_backend(tcp_frontend(), frame);
        INFO("client port " << port);
        const std::uint16_t first = forward(frame);
        CHECK(first == expected);
        tally.forwarded(index_of(kFlowBackendPorts, first), frame);
        used.insert(first);
        // No socket of this namespace holds such a connection: the backend
        // answers it with a reset, and nothing is recorded for it (a flood
        // of such segments cannot evict anything).
        CHECK_FALSE(data_path().flow(request_flow_key(frame)).has_value());
        // Again: the same backend every time.
        CHECK(forward(frame) == first);
        tally.forwarded(index_of(kFlowBackendPorts, first), frame);
    }
    CHECK(data_path().flow_count() == 0);
    CHECK(data_path().direct_client_count() == 0);
    CHECK(data_path().syn_slot_count() == 0);
    // 24 flows over 3 backends: a hash that spreads uses all of them.
    CHECK(used.size() == 3);
    // None of it moved the round-robin cursor.
    const Frame syn = segment(client, 42000, kTcpSyn);
    CHECK(forward(syn) == kFlowBackendPorts[0]);
    tally.forwarded(0, syn);
    require_counters(kFlowFrontendPort, Protocol::tcp, tally.expected());
}

TEST_CASE("TCP: a connection whose flow entry was lost follows its SYN slot and records the flow again", "[tcp]") {
    configure_tcp();
    const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client());
    CounterTally tally(3);
    // Two connections, to 8081 and 8082; the second's slot outlives its flow.
    const Frame syn1 = segment(client, 40001, kTcpSyn);
    const Frame syn2 = segment(client, 40002, kTcpSyn);
    CHECK(forward(syn1) == 8081);
    tally.forwarded(0, syn1);
    CHECK(forward(syn2) == 8082);
    tally.forwarded(1, syn2);
    const Frame ack2 = segment(client, 40002, kTcpAck);
    CHECK(forward(ack2) == 8082);
    tally.forwarded(1, ack2);
    require_flow(ack2, tcp_frontend(), 8082);
    data_path().clear_flow_tables();  // as evictions would
    // Not the hash: the slot, however old (only another key's SYN would have
    // overwritten it).
    data_path().age_syn_slot(request_flow_key(syn2), 200);
    const Frame data2 = segment(client, 40002, kTcpPsh | kTcpAck, 7);
    CHECK(forward(data2) == 8082);
    tally.forwarded(1, data2);
    require_flow(data2, tcp_frontend(), 8082);
    require_counters(kFlowFrontendPort, Protocol::tcp, tally.expected());
}

TEST_CASE("TCP: a SYN repeated within 3 s is a retransmission and keeps its backend", "[tcp]") {
    configure_tcp();
    CounterTally tally(3);
    const Frame syn = segment(ipv4_client(), 40001, kTcpSyn);
    CHECK(forward(syn) == 8081);
    tally.forwarded(0, syn);
    REQUIRE(data_path().syn_slot(request_flow_key(syn)).has_value());

    SECTION("at once") {
        CHECK(forward(syn) == 8081);
        tally.forwarded(0, syn);
        CHECK(forward(syn) == 8081);
        tally.forwarded(0, syn);
        require_syn_slot(syn, tcp_frontend(), 8081);
    }
    SECTION("2.5 s after the first (37 stamps of 67 ms)") {
        data_path().age_syn_slot(request_flow_key(syn), 37);
        const std::uint8_t aged = data_path().syn_slot(request_flow_key(syn))->stamp;
        CHECK(forward(syn) == 8081);
        tally.forwarded(0, syn);
        // A retransmission does not restart the window.
        CHECK(data_path().syn_slot(request_flow_key(syn))->stamp == aged);
        require_syn_slot(syn, tcp_frontend(), 8081);
    }
    std::uint16_t next_backend = 8082;
    SECTION("a duplicate after the handshake that finds its slot overwritten") {
        const Frame ack = segment(ipv4_client(), 40001, kTcpAck);
        CHECK(forward(ack) == 8081);
        tally.forwarded(0, ack);
        data_path().clear_syn_slots();  // as a flood of other SYNs would
        // A SYN reads no flow entry: it is balanced afresh.
        CHECK(forward(syn) == 8082);
        tally.forwarded(1, syn);
        // 8082's SYN-ACK leaves the young flow entry, the connection's own,
        // and makes the slot name its backend again.
        const XdpRun run = data_path().run_tc(
            ipv4_server().tcp(8082, 40001).tcp_flags(kTcpSyn | kTcpAck).build().bytes);
        CHECK(run.action == kTcActContinue);
        require_flow(ack, tcp_frontend(), 8081);
        const auto slot = data_path().syn_slot(request_flow_key(syn));
        REQUIRE(slot.has_value());
        CHECK(ntohs(slot->backend_port) == 8081);
        CHECK(forward(ack) == 8081);
        tally.forwarded(0, ack);
        data_path().clear_flow_tables();  // as an eviction would
        CHECK(forward(ack) == 8081);
        tally.forwarded(0, ack);
        next_backend = 8083;
    }
    // The cursor only moved for the SYNs balanced afresh.
    const Frame other = segment(ipv4_client(), 40002, kTcpSyn);
    CHECK(forward(other) == next_backend);
    tally.forwarded(index_of(kFlowBackendPorts, next_backend), other);
    require_counters(kFlowFrontendPort, Protocol::tcp, tally.expected());
}

TEST_CASE("TCP: a SYN after the 3 s window opens a new connection, balanced afresh", "[tcp]") {
    configure_tcp();
    const bool ipv6 = GENERATE(false, true);
    const PacketBuilder client = ipv6 ? ipv6_client() : ipv4_client();
    const PacketBuilder server = ipv6 ? ipv6_server() : ipv4_server();
    const bool completed = GENERATE(false, true);
    INFO((ipv6 ? "IPv6" : "IPv4") << ", the first connection completed its handshake: " << completed);
    CounterTally tally(3);
    const Frame syn = segment(client, 40001, kTcpSyn);
    const Frame ack = segment(client, 40001, kTcpAck);
    const auto key = request_flow_key(syn);
    auto syn_ack_from = [&](std::uint16_t backend) {
        const XdpRun run = data_path().run_tc(PacketBuilder(server).tcp(backend, 40001).tcp_flags(kTcpSyn | kTcpAck).build().bytes);
        CHECK(run.action == kTcActContinue);
    };
    CHECK(forward(syn) == 8081);
    tally.forwarded(0, syn);
    syn_ack_from(8081);
    if (completed) {
        // A connection that ended 4 s ago left its flow behind.
        CHECK(forward(ack) == 8081);
        tally.forwarded(0, ack);
        portmux_flow aged = *data_path().flow(key);
        aged.created_ns = monotonic_ns() - 4 * kSecondNs;
        aged.last_seen_ns = aged.created_ns;
        data_path().set_flow(key, aged);
        // A SYN-ACK from the entry's own backend leaves it.
        syn_ack_from(8081);
        REQUIRE(data_path().flow(key).has_value());
    }
    data_path().age_syn_slot(key, 46);  // 3.08 s

    CHECK(forward(syn) == 8082);
    tally.forwarded(1, syn);
    // The SYN reads no flow entry, so the old one is still there...
    CHECK(data_path().flow(key).has_value() == completed);
    // ...until the new backend's SYN-ACK leaves, before the client can answer it.
    syn_ack_from(8082);
    require_syn_slot(syn, tcp_frontend(), 8082);

    // The new connection's later segments follow the new backend.
    CHECK(forward(ack) == 8082);
    tally.forwarded(1, ack);
    require_flow(ack, tcp_frontend(), 8082);
    CHECK(data_path().flow(key)->created_ns + kSecondNs >= coarse_monotonic_ns());
    // And the new SYN is itself retransmission-protected.
    CHECK(forward(syn) == 8082);
    tally.forwarded(1, syn);
    // Its retransmitted SYN-ACK keeps the new entry.
    syn_ack_from(8082);
    require_flow(ack, tcp_frontend(), 8082);
    require_counters(kFlowFrontendPort, Protocol::tcp, tally.expected());
}

TEST_CASE("TCP: rewritten checksums equal a full recomputation", "[tcp][checksum]") {
    configure_tcp({8081});
    SECTION("payload sizes, both IP versions, with and without options") {
        const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client(), ipv4_client().ipv4_options(Bytes(8, 1)));
        const std::size_t payload = GENERATE(0, 1, 2, 3, 99, 1400);
        const bool options = GENERATE(false, true);
        INFO("payload " << payload << ", options " << options);
        PacketBuilder builder = PacketBuilder(client).tcp(40001, kFlowFrontendPort).tcp_flags(kTcpPsh | kTcpAck);
        if (options) {
            builder.tcp_options({1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78});  // NOP NOP timestamps
        }
        CHECK(forward(builder.payload(counting_payload(payload)).build()) == 8081);
    }
    SECTION("a rewrite whose result is checksum 0x0000, and one starting from 0x0000") {
        const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client());
        // Sum 0xffff over the frame as it leaves: its checksum is 0.
        const PacketBuilder after = PacketBuilder(client).tcp(40001, 8081).tcp_flags(kTcpPsh | kTcpAck);
        const Bytes to_zero = payload_forcing_sum(after, counting_payload(20), 4, 0xffff);
        REQUIRE(PacketBuilder(after).payload(to_zero).build().transport_checksum() == 0);
        const Frame in = PacketBuilder(client).tcp(40001, kFlowFrontendPort).tcp_flags(kTcpPsh | kTcpAck).payload(to_zero).build();
        CHECK(forward(in) == 8081);

        const PacketBuilder before = PacketBuilder(client).tcp(40002, kFlowFrontendPort).tcp_flags(kTcpPsh | kTcpAck);
        const Bytes from_zero = payload_forcing_sum(before, counting_payload(20), 4, 0xffff);
        const Frame zero_in = PacketBuilder(before).payload(from_zero).build();
        REQUIRE(zero_in.transport_checksum() == 0);
        CHECK(forward(zero_in) == 8081);
    }
}

TEST_CASE("TCP: a reload that removes a backend moves its flows to live backends", "[tcp][generation]") {
    configure_tcp();
    const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client());
    // Connections to 8081, 8082, 8083 that completed their handshakes, and
    // one more to 8081 and one to 8082 whose last ACK comes after the reload.
    for (std::uint16_t port : {40001, 40002, 40003, 40004, 40005}) {
        CHECK(forward(segment(client, port, kTcpSyn)) == kFlowBackendPorts[(port - 40001) % 3]);
    }
    for (std::uint16_t port : {40001, 40002, 40003}) {
        CHECK(forward(segment(client, port, kTcpAck)) == kFlowBackendPorts[port - 40001]);
    }
    const std::uint64_t received_before = data_path().stats(kFlowFrontendPort, Protocol::tcp).received;

    // 8082 leaves; 8083 moves from index 2 to index 1.
    const Frontend reduced = tcp_frontend({8081, 8083});
    REQUIRE(generation_of(reduced) != generation_of(tcp_frontend()));
    data_path().reload(config_of({reduced}));

    // 8081's connection: same backend, same index, entry now checked
    // against the new generation.
    const Frame ack1 = segment(client, 40001, kTcpAck);
    CHECK(forward(ack1) == 8081);
    require_flow(ack1, reduced, 8081);

    // 8083's connection: same backend, at its new index.
    const Frame ack3 = segment(client, 40003, kTcpPsh | kTcpAck, 10);
    CHECK(forward(ack3) == 8083);
    require_flow(ack3, reduced, 8083);

    // A handshake under way with 8081: its slot still names it.
    const Frame ack4 = segment(client, 40004, kTcpAck);
    CHECK(forward(ack4) == 8081);
    require_flow(ack4, reduced, 8081);

    // 8082's connections: the backend is gone and no socket of it is left,
    // so they are hashed over the live backends, every segment alike.
    for (std::uint16_t port : {40002, 40005}) {
        const Frame ack = segment(client, port, kTcpAck);
        const std::uint16_t moved = hashed_backend(reduced, ack);
        CHECK(forward(ack) == moved);
        CHECK(forward(segment(client, port, kTcpFin | kTcpAck)) == moved);
    }

    const FrontendStats stats = data_path().stats(kFlowFrontendPort, Protocol::tcp);
    CHECK(stats.received == received_before + 7);
    CHECK(stats.dropped() == 0);
}

TEST_CASE("TCP: a handshake under way follows its backend to its new index after a reorder", "[tcp][generation]") {
    configure_tcp();
    const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client());
    for (std::uint16_t port : {40001, 40002, 40003}) {
        CHECK(forward(segment(client, port, kTcpSyn)) == kFlowBackendPorts[port - 40001]);
    }
    const Frontend reordered = tcp_frontend({8083, 8081, 8082});
    data_path().reload(config_of({reordered}));
    for (std::uint16_t port : {40001, 40002, 40003}) {
        const Frame ack = segment(client, port, kTcpAck);
        CHECK(forward(ack) == kFlowBackendPorts[port - 40001]);
        require_flow(ack, reordered, kFlowBackendPorts[port - 40001]);
    }
}

TEST_CASE("TCP: no live backend drops SYNs and unknown segments as no_backend", "[tcp]") {
    Frontend drained = tcp_frontend({8081});
    drained.backends[0].drained = true;
    data_path().configure(config_of({drained}));
    CounterTally tally(1);
    for (std::uint8_t flags : {kTcpSyn, kTcpAck, std::uint8_t(kTcpPsh | kTcpAck)}) {
        require_dropped(segment(ipv4_client(), 40001, flags, flags & kTcpPsh ? 5 : 0));
        tally.dropped(PORTMUX_DROP_NO_BACKEND);
    }
    CHECK(data_path().flow_count() == 0);
    CHECK(data_path().direct_client_count() == 0);
    require_counters(kFlowFrontendPort, Protocol::tcp, tally.expected());
}

// UDP frontends with "affinity": "flow" use the same flow table: a client
// address and port stick to their backend until idle for flow_idle_seconds.
namespace {

constexpr std::uint16_t kIdleSeconds = 30;

Frontend udp_flow_frontend(const std::vector<std::uint16_t>& backends = kBackendPorts) {
    Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, backends);
    frontend.affinity = Affinity::flow;
    frontend.flow_idle_seconds = kIdleSeconds;
    return frontend;
}

Frame udp_from(const PacketBuilder& client, std::uint16_t client_port, std::size_t payload = 12) {
    return PacketBuilder(client).udp(client_port, kFrontendPort).payload(counting_payload(payload)).build();
}

// Sets the flow of `request` as last seen `age_ns` ago.
void age_flow(const Frame& request, std::uint64_t age_ns) {
    const auto key = request_flow_key(request);
    portmux_flow flow = *data_path().flow(key);
    flow.last_seen_ns = monotonic_ns() - age_ns;
    data_path().set_flow(key, flow);
}

}  // namespace

TEST_CASE("UDP flow affinity: a client sticks to its backend, another client port takes the next", "[udp-flow]") {
    data_path().configure(config_of({udp_flow_frontend()}));
    const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client());
    CounterTally tally(3);
    const std::vector<std::uint16_t> client_ports{40001, 40002, 40003, 40004};
    const std::vector<std::uint16_t> expected{9876, 9877, 9878, 9876};
    for (int round = 0; round < 3; ++round) {
        for (std::size_t i = 0; i < client_ports.size(); ++i) {
            const Frame frame = udp_from(client, client_ports[i], 10 + i);
            INFO("round " << round << ", client port " << client_ports[i]);
            CHECK(forward(frame) == expected[i]);
            tally.forwarded(index_of(kBackendPorts, expected[i]), frame);
            const auto flow = data_path().flow(request_flow_key(frame));
            REQUIRE(flow.has_value());
            CHECK(ntohs(flow->backend_port) == expected[i]);
            CHECK(flow->backend_index == index_of(kBackendPorts, expected[i]));
            CHECK(data_path().reply_frontend(frame, expected[i]) == kFrontendPort);
        }
    }
    CHECK(data_path().flow_count() == 4);
    CHECK(data_path().direct_client_count() == 0);
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("UDP flow affinity: an idle flow is rebalanced, a live one refreshed", "[udp-flow]") {
    data_path().configure(config_of({udp_flow_frontend()}));
    CounterTally tally(3);
    const Frame a = udp_from(ipv4_client(), 40001);
    const Frame b = udp_from(ipv4_client(), 40002);
    CHECK(forward(a) == 9876);
    tally.forwarded(0, a);
    CHECK(forward(b) == 9877);
    tally.forwarded(1, b);

    SECTION("idle one second longer than flow_idle_seconds: the next backend in turn") {
        age_flow(a, (kIdleSeconds + 1) * kSecondNs);
        const std::uint64_t before = coarse_monotonic_ns();
        CHECK(forward(a) == 9878);
        tally.forwarded(2, a);
        const auto flow = data_path().flow(request_flow_key(a));
        CHECK(ntohs(flow->backend_port) == 9878);
        CHECK(flow->backend_index == 2);
        CHECK(flow->created_ns >= before);
        CHECK(flow->last_seen_ns >= before);
        CHECK(data_path().reply_frontend(a, 9878) == kFrontendPort);
        // And it sticks to the new one.
        CHECK(forward(a) == 9878);
        tally.forwarded(2, a);
    }
    SECTION("idle just under flow_idle_seconds: kept, and its idle clock restarts") {
        age_flow(a, (kIdleSeconds - 1) * kSecondNs);
        const std::uint64_t before = coarse_monotonic_ns();
        CHECK(forward(a) == 9876);
        tally.forwarded(0, a);
        CHECK(data_path().flow(request_flow_key(a))->last_seen_ns >= before);
        // The cursor did not move: a new client takes 9878.
        const Frame c = udp_from(ipv4_client(), 40003);
        CHECK(forward(c) == 9878);
        tally.forwarded(2, c);
    }
    SECTION("seen half a second ago: the idle clock is not rewritten (refreshed at most once a second)") {
        age_flow(a, kSecondNs / 2);
        const std::uint64_t last_seen = data_path().flow(request_flow_key(a))->last_seen_ns;
        CHECK(forward(a) == 9876);
        tally.forwarded(0, a);
        CHECK(data_path().flow(request_flow_key(a))->last_seen_ns == last_seen);
    }
    // b was not touched by any of it.
    CHECK(forward(b) == 9877);
    tally.forwarded(1, b);
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("UDP flow affinity: a reload that removes a backend moves its flows round robin", "[udp-flow][generation]") {
    data_path().configure(config_of({udp_flow_frontend()}));
    const Frame a = udp_from(ipv6_client(), 40001);
    const Frame b = udp_from(ipv6_client(), 40002);
    const Frame c = udp_from(ipv6_client(), 40003);
    CHECK(forward(a) == 9876);
    CHECK(forward(b) == 9877);
    CHECK(forward(c) == 9878);
    // Cursor now at 0 of 3. 9876 leaves: 9877 and 9878 move to indices 0, 1.
    const Frontend reduced = udp_flow_frontend({9877, 9878});
    data_path().reload(config_of({reduced}));
    CHECK(forward(c) == 9878);
    CHECK(data_path().flow(request_flow_key(c))->backend_index == 1);
    CHECK(data_path().flow(request_flow_key(c))->generation == generation_of(reduced));
    CHECK(forward(b) == 9877);
    CHECK(data_path().flow(request_flow_key(b))->backend_index == 0);
    // a's backend is gone: the next in round robin (cursor 0 -> 9877).
    CHECK(forward(a) == 9877);
    const auto moved = data_path().flow(request_flow_key(a));
    CHECK(ntohs(moved->backend_port) == 9877);
    CHECK(moved->backend_index == 0);
    CHECK(moved->generation == generation_of(reduced));
    CHECK(forward(a) == 9877);
    CHECK(data_path().flow_count() == 3);
}

TEST_CASE("replies: no per-client state; losing a flow entry changes nothing for replies",
          "[tcp][udp-flow][reply]") {
    // Replies are translated by backend port, so nothing an LRU evicts
    // decides whether a balanced client's replies show the frontend port.
    SECTION("TCP") {
        configure_tcp();
        const Frame syn = segment(ipv6_client(), 40001, kTcpSyn);
        CHECK(forward(syn) == 8081);
        CHECK(forward(segment(ipv6_client(), 40001, kTcpAck)) == 8081);
        data_path().clear_flow_tables();
        CHECK(data_path().reply_frontend(syn, 8081) == kFlowFrontendPort);
        CHECK(forward(segment(ipv6_client(), 40001, kTcpPsh | kTcpAck, 20)) == 8081);
        require_flow(syn, tcp_frontend(), 8081);
    }
    SECTION("UDP flow affinity") {
        data_path().configure(config_of({udp_flow_frontend()}));
        const Frame datagram = udp_from(ipv4_client(), 40001);
        CHECK(forward(datagram) == 9876);
        data_path().clear_flow_tables();
        CHECK(data_path().reply_frontend(datagram, 9876) == kFrontendPort);
    }
    CHECK(data_path().direct_client_count() == 0);
}

namespace {

// Runs `frame`, requires XDP_PASS with the frame unchanged.
void require_passed_unchanged(const Frame& frame) {
    const XdpRun run = data_path().run(frame.bytes);
    REQUIRE(run.action == kXdpPass);
    REQUIRE_THAT(run.output, FrameEquals(frame.bytes));
}

}  // namespace

TEST_CASE("replies: a client that talks to a backend port directly becomes an exception",
          "[reply][tcp][udp]") {
    configure_tcp();
    const Frame syn = segment(ipv4_client(), kClientPort, kTcpSyn);
    const std::uint16_t backend = forward(syn);
    CHECK(data_path().reply_frontend(syn, backend) == kFlowFrontendPort);

    // Another client port straight to the backend: its replies keep the
    // backend port, the balanced client's still show the frontend's.
    const Frame direct_syn =
        PacketBuilder(ipv4_client()).tcp(kClientPort + 1, backend).tcp_flags(kTcpSyn).build();
    require_passed_unchanged(direct_syn);
    CHECK(data_path().direct_client(reply_key(direct_syn, backend)));
    CHECK(data_path().direct_port(reply_key(direct_syn, backend)));  // TC now looks for exceptions of it
    CHECK(data_path().reply_frontend(direct_syn, backend) == 0);
    CHECK(data_path().reply_frontend(syn, backend) == kFlowFrontendPort);
    // Any later segment puts back an exception the LRU evicted.
    data_path().erase_direct_client(reply_key(direct_syn, backend));
    const Frame direct_ack =
        PacketBuilder(ipv4_client()).tcp(kClientPort + 1, backend).tcp_flags(kTcpAck).build();
    require_passed_unchanged(direct_ack);
    CHECK(data_path().direct_client(reply_key(direct_syn, backend)));

    // A balanced SYN from a client port that was a direct client of the
    // backend it is sent to retires the exception.
    const Frame second = segment(ipv4_client(), kClientPort + 2, kTcpSyn);
    data_path().set_direct_client(reply_key(second, kFlowBackendPorts[1]));
    CHECK(forward(second) == kFlowBackendPorts[1]);
    CHECK_FALSE(data_path().direct_client(reply_key(second, kFlowBackendPorts[1])));
    CHECK(data_path().reply_frontend(second, kFlowBackendPorts[1]) == kFlowFrontendPort);

    // A port that is no backend costs nothing and records nothing.
    const std::size_t before = data_path().direct_client_count();
    require_passed_unchanged(PacketBuilder(ipv4_client()).tcp(kClientPort, 22).tcp_flags(kTcpSyn).build());
    CHECK(data_path().direct_client_count() == before);

    // UDP: any datagram straight to a backend port makes the exception.
    configure_standard_frontend();
    const Frame request =
        ipv4_client().udp(kClientPort, kFrontendPort).payload(counting_payload(8)).build();
    const std::uint16_t udp_backend = forward(request);
    CHECK(data_path().reply_frontend(request, udp_backend) == kFrontendPort);
    const Frame direct =
        ipv4_client().udp(kClientPort, udp_backend).payload(counting_payload(8)).build();
    require_passed_unchanged(direct);
    CHECK(data_path().direct_client_count() == 1);
    CHECK(data_path().reply_frontend(request, udp_backend) == 0);
}

TEST_CASE("replies: a one-way UDP frontend's backends neither translate nor note direct clients",
          "[reply][udp]") {
    Frontend one_way = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
    one_way.reply_translation = false;
    data_path().configure(config_of({one_way}));
    const Frame request = ipv4_client().udp(kClientPort, kFrontendPort).payload(counting_payload(8)).build();
    CHECK(forward(request) == kFirstBackend);
    CHECK(data_path().reply_frontend(request, kFirstBackend) == 0);
    require_passed_unchanged(ipv4_client().udp(kClientPort, kFirstBackend).payload(counting_payload(8)).build());
    CHECK(data_path().direct_client_count() == 0);
}
