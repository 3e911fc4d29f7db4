// Weights and drain: round_robin_order repeats each backend by its weight
// (smooth weighted round robin) and leaves drained ones out; the data path
// follows that order exactly over full rounds. A drained backend takes no
// new packet or flow, but connections already pinned to it keep going.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "checksum_reference.hpp"
#include "fixtures.hpp"
#include "maps.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

Frontend weighted(Protocol protocol, std::uint16_t port, const std::vector<std::uint16_t>& ports,
                  const std::vector<std::uint16_t>& weights) {
    Frontend frontend = make_frontend(port, protocol, ports);
    for (std::size_t i = 0; i < weights.size(); ++i) {
        frontend.backends[i].weight = weights[i];
    }
    return frontend;
}

std::size_t count(const std::vector<std::uint8_t>& order, std::uint8_t index) {
    return static_cast<std::size_t>(std::count(order.begin(), order.end(), index));
}

Frame udp_datagram(std::size_t payload, std::uint16_t client_port = kClientPort) {
    return ipv4_client().udp(client_port, kFrontendPort).payload(counting_payload(payload)).build();
}

Frame tcp_segment(std::uint16_t client_port, std::uint8_t flags, std::size_t payload = 0) {
    return ipv6_client().tcp(client_port, 8080).tcp_flags(flags).payload(counting_payload(payload)).build();
}

}  // namespace

TEST_CASE("weights: round_robin_order gives each backend its weight in slots", "[weights]") {
    SECTION("{3, 1}: four slots, three of backend 0, interleaved") {
        const auto order = round_robin_order({Backend(1, 3), Backend(2, 1)});
        REQUIRE(order.size() == 4);
        CHECK(count(order, 0) == 3);
        CHECK(count(order, 1) == 1);
        CHECK(order == std::vector<std::uint8_t>{0, 0, 1, 0});
    }
    SECTION("{5, 3, 2}: ten slots, no backend twice in a row more than its share needs") {
        const auto order = round_robin_order({Backend(1, 5), Backend(2, 3), Backend(3, 2)});
        REQUIRE(order.size() == 10);
        CHECK(count(order, 0) == 5);
        CHECK(count(order, 1) == 3);
        CHECK(count(order, 2) == 2);
        for (std::size_t i = 0; i + 1 < order.size(); ++i) {
            CHECK_FALSE((order[i] != 0 && order[i] == order[i + 1]));
        }
    }
    SECTION("weight 0 and drained backends get no slot") {
        Backend drained(3, 4);
        drained.drained = true;
        const auto order = round_robin_order({Backend(1, 0), Backend(2, 2), drained, Backend(4, 1)});
        REQUIRE(order.size() == 3);
        CHECK(count(order, 1) == 2);
        CHECK(count(order, 3) == 1);
    }
    SECTION("weights filling all 256 slots") {
        const auto order = round_robin_order({Backend(1, 255), Backend(2, 1)});
        REQUIRE(order.size() == PORTMUX_RR_SLOTS);
        CHECK(count(order, 1) == 1);
    }
    SECTION("all drained: no slot at all") {
        Backend a(1, 2), b(2, 3);
        a.drained = b.drained = true;
        CHECK(round_robin_order({a, b}).empty());
    }
}

TEST_CASE("weights: the data path follows the weighted order over full rounds", "[weights]") {
    struct Case {
        std::vector<std::uint16_t> weights;
        int rounds;
    };
    const Case c = GENERATE(Case{{3, 1}, 5}, Case{{5, 3, 2}, 3}, Case{{1, 0, 4}, 4}, Case{{255, 1}, 2});
    const std::vector<std::uint16_t> ports{9876, 9877, 9878};
    const std::vector<std::uint16_t> used(ports.begin(), ports.begin() + static_cast<std::ptrdiff_t>(c.weights.size()));
    const Frontend frontend = weighted(Protocol::udp, kFrontendPort, used, c.weights);
    data_path().configure(config_of({frontend}));
    const std::vector<std::uint8_t> order = round_robin_order(frontend.backends);
    std::uint32_t total = 0;
    for (auto w : c.weights) {
        total += w;
    }
    REQUIRE(order.size() == total);

    CounterTally tally(used.size());
    std::vector<std::uint64_t> per_backend(used.size(), 0);
    for (int round = 0; round < c.rounds; ++round) {
        for (std::size_t slot = 0; slot < order.size(); ++slot) {
            const Frame frame = udp_datagram(slot % 17);
            INFO("round " << round << " slot " << slot);
            REQUIRE(forward(frame) == used[order[slot]]);
            tally.forwarded(order[slot], frame);
            ++per_backend[order[slot]];
        }
    }
    // Exactly weight × rounds each.
    for (std::size_t i = 0; i < used.size(); ++i) {
        CHECK(per_backend[i] == std::uint64_t{c.weights[i]} * static_cast<std::uint64_t>(c.rounds));
    }
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("drain: a drained UDP backend gets no packets; undrain brings it back", "[weights][drain]") {
    Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
    frontend.backends[1].drained = true;
    data_path().configure(config_of({frontend}));
    CounterTally tally(3);
    for (int i = 0; i < 6; ++i) {
        const Frame frame = udp_datagram(10);
        const std::uint16_t expected = i % 2 == 0 ? 9876 : 9878;
        CHECK(forward(frame) == expected);
        tally.forwarded(index_of(kBackendPorts, expected), frame);
    }
    CHECK(data_path().direct_client_count() == 0);
    require_counters(kFrontendPort, Protocol::udp, tally.expected());

    // Undrain by reload: same slot, counters kept; the order is 3 long again.
    frontend.backends[1].drained = false;
    data_path().reload(config_of({frontend}));
    data_path().set_round_robin_cursor(kFrontendPort, 0);  // also zeroes the counters
    CounterTally after(3);
    for (std::uint16_t expected : {9876, 9877, 9878}) {
        const Frame frame = udp_datagram(10);
        CHECK(forward(frame) == expected);
        after.forwarded(index_of(kBackendPorts, expected), frame);
    }
    require_counters(kFrontendPort, Protocol::udp, after.expected());
}

TEST_CASE("drain: every backend drained drops as no_backend", "[weights][drain]") {
    Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
    for (Backend& backend : frontend.backends) {
        backend.drained = true;
    }
    data_path().configure(config_of({frontend}));
    CounterTally tally(3);
    for (int i = 0; i < 3; ++i) {
        require_dropped(udp_datagram(10));
        tally.dropped(PORTMUX_DROP_NO_BACKEND);
    }
    CHECK(data_path().direct_client_count() == 0);
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("drain: a TCP connection pinned to a backend keeps it after the drain", "[weights][drain][tcp]") {
    const std::vector<std::uint16_t> ports{8081, 8082, 8083};
    Frontend frontend = make_frontend(8080, Protocol::tcp, ports);
    data_path().configure(config_of({frontend}));
    CounterTally tally(3);
    // Connections on 8081 (client 40001) and 8082 (client 40002).
    for (std::uint16_t client : {40001, 40002}) {
        const Frame syn = tcp_segment(client, kTcpSyn);
        const std::uint16_t expected = client == 40001 ? 8081 : 8082;
        CHECK(forward(syn) == expected);
        tally.forwarded(index_of(ports, expected), syn);
    }

    // Drain 8082 (portmux drain: a reload with the drained flag; the
    // backend list is the same, so flows keep their generation).
    frontend.backends[1].drained = true;
    REQUIRE(encode_frontend(frontend, 0).generation == encode_frontend(make_frontend(8080, Protocol::tcp, ports), 0).generation);
    data_path().reload(config_of({frontend}));

    // The established connection to 8082 carries on there, to its end.
    for (std::uint8_t flags : {kTcpAck, std::uint8_t(kTcpPsh | kTcpAck), std::uint8_t(kTcpFin | kTcpAck), kTcpAck}) {
        const Frame segment = tcp_segment(40002, flags, flags & kTcpPsh ? 300 : 0);
        CHECK(forward(segment) == 8082);
        tally.forwarded(1, segment);
    }
    // A retransmitted SYN of it too (within 3 s).
    const Frame again = tcp_segment(40002, kTcpSyn);
    CHECK(forward(again) == 8082);
    tally.forwarded(1, again);

    // New connections skip it: the cursor stood at index 2 of {8081, 8082,
    // 8083}, which in the order {8081, 8083} is past the end, so it restarts.
    std::vector<std::uint16_t> sent_to;
    for (std::uint16_t client = 40010; client < 40016; ++client) {
        const Frame syn = tcp_segment(client, kTcpSyn);
        const std::uint16_t backend = forward(syn);
        tally.forwarded(index_of(ports, backend), syn);
        sent_to.push_back(backend);
    }
    CHECK(sent_to == std::vector<std::uint16_t>{8081, 8083, 8081, 8083, 8081, 8083});

    // Segments of connections the table does not know never hash to it.
    for (std::uint16_t client = 41000; client < 41032; ++client) {
        const Frame ack = tcp_segment(client, kTcpAck);
        const std::uint16_t backend = forward(ack);
        CHECK(backend != 8082);
        tally.forwarded(index_of(ports, backend), ack);
    }
    // And the 8081 connection is untouched.
    const Frame ack1 = tcp_segment(40001, kTcpAck);
    CHECK(forward(ack1) == 8081);
    tally.forwarded(0, ack1);
    require_counters(8080, Protocol::tcp, tally.expected());
}

TEST_CASE("drain: a UDP affinity flow pinned to a backend keeps it after the drain", "[weights][drain][udp-flow]") {
    Frontend frontend = make_frontend(kFrontendPort, Protocol::udp, kBackendPorts);
    frontend.affinity = Affinity::flow;
    data_path().configure(config_of({frontend}));
    CounterTally tally(3);
    const Frame first = udp_datagram(10, 40001);
    const Frame second = udp_datagram(10, 40002);
    CHECK(forward(first) == 9876);
    tally.forwarded(0, first);
    CHECK(forward(second) == 9877);
    tally.forwarded(1, second);

    frontend.backends[1].drained = true;
    data_path().reload(config_of({frontend}));
    CHECK(forward(second) == 9877);
    tally.forwarded(1, second);
    // A new client: cursor at 2 of a 2-long order restarts at 9876.
    const Frame third = udp_datagram(10, 40003);
    CHECK(forward(third) == 9876);
    tally.forwarded(0, third);
    const Frame fourth = udp_datagram(10, 40004);
    CHECK(forward(fourth) == 9878);
    tally.forwarded(2, fourth);
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("counters: a reload that removes a backend keeps each backend's counters with it", "[weights][reload]") {
    configure_standard_frontend();
    CounterTally before(3);
    for (std::size_t i = 0; i < 3; ++i) {
        const Frame frame = udp_datagram(10 * i);
        CHECK(forward(frame) == kBackendPorts[i]);
        before.forwarded(i, frame);
    }
    require_counters(kFrontendPort, Protocol::udp, before.expected());

    data_path().reload(udp_config({{kFrontendPort, {9876, 9878}}}));
    ExpectedCounters after;
    after.received = 3;
    after.packets = {1, 1};
    after.bytes = {before.expected().bytes[0], before.expected().bytes[2]};
    require_counters(kFrontendPort, Protocol::udp, after);
    const FrontendStats stats = data_path().stats(kFrontendPort, Protocol::udp);
    CHECK(stats.retired.packets == 1);
    CHECK(stats.retired.bytes == before.expected().bytes[1]);
}

TEST_CASE("counters: a reorder keeps each backend's counters, and it keeps counting into them", "[weights][reload]") {
    configure_standard_frontend();
    CounterTally before(3);
    for (std::size_t i = 0; i < 3; ++i) {
        const Frame frame = udp_datagram(10 * i + 1);
        CHECK(forward(frame) == kBackendPorts[i]);
        before.forwarded(i, frame);
    }
    data_path().reload(udp_config({{kFrontendPort, {9878, 9876, 9877}}}));
    const auto& was = before.expected();
    ExpectedCounters expected;
    expected.received = 3;
    expected.packets = {1, 1, 1};
    expected.bytes = {was.bytes[2], was.bytes[0], was.bytes[1]};
    require_counters(kFrontendPort, Protocol::udp, expected);
    // The cursor (3 of 3) carries on at the new first backend, 9878.
    for (std::size_t i = 0; i < 3; ++i) {
        const Frame frame = udp_datagram(20 + i);
        CHECK(forward(frame) == std::vector<std::uint16_t>{9878, 9876, 9877}[i]);
        ++expected.received;
        ++expected.packets[i];
        expected.bytes[i] += frame.bytes.size();
    }
    require_counters(kFrontendPort, Protocol::udp, expected);
    const FrontendStats stats = data_path().stats(kFrontendPort, Protocol::udp);
    CHECK(stats.retired.packets == 0);
}

TEST_CASE("counters: a backend replaced at the same position starts at 0; the old one's counts show as removed", "[weights][reload]") {
    configure_standard_frontend();  // 9876, 9877, 9878
    CounterTally before(3);
    for (std::size_t i = 0; i < 6; ++i) {
        const Frame frame = udp_datagram(10 + i);
        CHECK(forward(frame) == kBackendPorts[i % 3]);
        before.forwarded(i % 3, frame);
    }
    data_path().reload(udp_config({{kFrontendPort, {9876, 9879, 9878}}}));
    {
        ExpectedCounters expected;
        expected.received = 6;
        expected.packets = {2, 0, 2};
        expected.bytes = {before.expected().bytes[0], 0, before.expected().bytes[2]};
        require_counters(kFrontendPort, Protocol::udp, expected);
        const FrontendStats stats = data_path().stats(kFrontendPort, Protocol::udp);
        CHECK(stats.backends[1].port == 9879);
        CHECK(stats.retired.packets == 2);
        CHECK(stats.retired.bytes == before.expected().bytes[1]);
    }
    // 9879 counts from 0; the cursor (at 6 of 3) carries on at 9876.
    std::uint64_t bytes_9879 = 0;
    std::uint64_t received = 6;
    std::array<std::uint64_t, 3> packets{2, 0, 2};
    std::array<std::uint64_t, 3> bytes{before.expected().bytes[0], 0, before.expected().bytes[2]};
    for (std::size_t i = 0; i < 3; ++i) {
        const Frame frame = udp_datagram(30 + i);
        const std::uint16_t backend = forward(frame);
        CHECK(backend == std::vector<std::uint16_t>{9876, 9879, 9878}[i]);
        ++received;
        ++packets[i];
        bytes[i] += frame.bytes.size();
        if (backend == 9879) bytes_9879 += frame.bytes.size();
    }
    ExpectedCounters expected;
    expected.received = received;
    expected.packets = {packets.begin(), packets.end()};
    expected.bytes = {bytes.begin(), bytes.end()};
    require_counters(kFrontendPort, Protocol::udp, expected);
    CHECK(bytes[1] == bytes_9879);
    // Back to 9877: a new backend again, from 0; both removed ones add up.
    data_path().reload(udp_config({{kFrontendPort, {9876, 9877, 9878}}}));
    const FrontendStats stats = data_path().stats(kFrontendPort, Protocol::udp);
    CHECK(stats.backends[1].port == 9877);
    CHECK(stats.backends[1].packets == 0);
    CHECK(stats.retired.packets == 3);
    CHECK(stats.retired.bytes == before.expected().bytes[1] + bytes_9879);
    CHECK(stats.received == stats.forwarded() + stats.dropped());
}

namespace {

// Runs `body` with the process pinned to `cpu`, then restores the pinning
// main() chose.
template <typename Body>
void on_cpu(int cpu, Body body) {
    cpu_set_t original;
    REQUIRE(sched_getaffinity(0, sizeof original, &original) == 0);
    cpu_set_t only;
    CPU_ZERO(&only);
    CPU_SET(cpu, &only);
    REQUIRE(sched_setaffinity(0, sizeof only, &only) == 0);
    REQUIRE(sched_getcpu() == cpu);
    body();
    REQUIRE(sched_setaffinity(0, sizeof original, &original) == 0);
}

}  // namespace

TEST_CASE("counters: each CPU has its own cursor and counters, read_stats sums them", "[weights][cpu]") {
    std::vector<int> cpus;
    for (int cpu = 0; cpu < 2 && cpu < libbpf_num_possible_cpus(); ++cpu) {
        cpus.push_back(cpu);
    }
    if (cpus.size() < 2) {
        WARN("only one CPU: nothing to sum");
        return;
    }
    configure_standard_frontend();
    CounterTally tally(3);
    // Two datagrams on the first CPU, three on the second: each CPU's
    // cursor starts at the first backend.
    const std::vector<std::vector<std::uint16_t>> expected{{9876, 9877}, {9876, 9877, 9878}};
    for (std::size_t c = 0; c < cpus.size(); ++c) {
        on_cpu(cpus[c], [&] {
            for (std::uint16_t backend : expected[c]) {
                const Frame frame = udp_datagram(5 + backend % 7);
                CHECK(forward(frame) == backend);
                tally.forwarded(index_of(kBackendPorts, backend), frame);
            }
        });
    }
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}
