// First fragments of UDP datagrams to validate and route frontends
// (xdp/fragment.h). The first fragment's UDP header states the whole
// datagram's length: validate's window judges that length, matches and the
// tag are read from the fragment's own bytes, and a match or tag beyond
// them drops the datagram as beyond_first_fragment. Later fragments carry
// no port and pass untouched (passthrough_tests.cpp).
//
// Expected frames: the same first fragment built with the backend port. The
// builder computes both checksums over the whole datagram, so they are full
// recomputations the data path's incremental update must equal.
#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "checksum_reference.hpp"
#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

constexpr std::uint16_t kFragFrontend = 7000;
const std::vector<std::uint16_t> kFragBackends{5001, 5002};
constexpr std::size_t kDatagram = 3000;  // payload bytes

Bytes text(const std::string& s) {
    return Bytes(s.begin(), s.end());
}

// Tags "600" -> 5001 and "601" -> 5002 at `tag_offset`, window 23..4000,
// and a match "MX" at `match_offset` when given.
Frontend fragment_frontend(std::uint16_t tag_offset, std::optional<std::uint16_t> match_offset = {}) {
    Frontend frontend = make_frontend(kFragFrontend, Protocol::udp, kFragBackends);
    Validation rules;
    rules.min_payload = 23;
    rules.max_payload = 4000;
    if (match_offset) {
        rules.matches.push_back({*match_offset, text("MX"), {}});
    }
    frontend.validate = rules;
    Route route;
    route.offset = tag_offset;
    route.length = 3;
    route.tags = {{text("600"), 5001}, {text("601"), 5002}};
    frontend.route = route;
    return frontend;
}

// A payload of `size` bytes with the tag at `tag_offset` and "MX" at `match_offset`.
Bytes fragment_payload(std::size_t size, std::size_t tag_offset, const std::string& tag,
                       std::size_t match_offset) {
    Bytes payload = counting_payload(size);
    std::copy(tag.begin(), tag.end(), payload.begin() + static_cast<std::ptrdiff_t>(tag_offset));
    payload.at(match_offset) = 'M';
    payload.at(match_offset + 1) = 'X';
    return payload;
}

// The first fragment, `carried` transport bytes (UDP header included), of a
// datagram to `port` with `payload`.
Frame first_fragment(bool v6, std::uint16_t port, const Bytes& payload, std::size_t carried) {
    PacketBuilder builder = v6 ? ipv6_client().ipv6_fragment(0, true) : ipv4_client().ipv4_fragment(0, true);
    return builder.udp(kClientPort, port).payload(payload).truncate_transport_to(carried).build();
}

struct Mtu {
    bool v6;
    std::size_t mtu;
    // Transport bytes a first fragment carries: what is left of the MTU
    // after the IP header (and IPv6 fragment header), rounded down to 8.
    std::size_t carried() const { return (mtu - (v6 ? 48 : 20)) / 8 * 8; }
};

const std::vector<Mtu> kMtus{{false, 1500}, {false, 576}, {true, 1500}, {true, 1280}};

}  // namespace

TEST_CASE("fragments: a first fragment is judged by the UDP length and routed by its tag", "[fragments][routing]") {
    for (const Mtu& m : kMtus) {
        INFO((m.v6 ? "IPv6" : "IPv4") << " at MTU " << m.mtu);
        data_path().configure(config_of({fragment_frontend(20, 40)}));
        CounterTally tally(2);
        for (const std::string tag : {"600", "601", "600"}) {
            const Bytes payload = fragment_payload(kDatagram, 20, tag, 40);
            const Frame input = first_fragment(m.v6, kFragFrontend, payload, m.carried());
            const std::uint16_t backend = tag == "600" ? 5001 : 5002;
            const Frame expected = first_fragment(m.v6, backend, payload, m.carried());
            REQUIRE(input.bytes.size() == expected.bytes.size());
            const XdpRun run = data_path().run(input.bytes);
            REQUIRE(run.action == kXdpPass);
            REQUIRE_THAT(run.output, FrameEquals(expected.bytes));
            tally.forwarded(backend == 5001 ? 0 : 1, input);
        }
        require_counters(kFragFrontend, Protocol::udp, tally.expected());
    }
}

TEST_CASE("fragments: the window judges the whole datagram's length", "[fragments][validation]") {
    for (const Mtu& m : kMtus) {
        INFO((m.v6 ? "IPv6" : "IPv4") << " at MTU " << m.mtu);
        data_path().configure(config_of({fragment_frontend(20, 40)}));
        CounterTally tally(2);
        // 4001 payload bytes: one above max_length, though the fragment is small.
        const Frame too_long = first_fragment(m.v6, kFragFrontend, fragment_payload(4001, 20, "600", 40), m.carried());
        require_dropped(too_long);
        tally.dropped(PORTMUX_DROP_TOO_LONG);
        // Exactly max_length: routed.
        const Bytes edge = fragment_payload(4000, 20, "601", 40);
        const XdpRun run = data_path().run(first_fragment(m.v6, kFragFrontend, edge, m.carried()).bytes);
        REQUIRE(run.action == kXdpPass);
        REQUIRE_THAT(run.output, FrameEquals(first_fragment(m.v6, 5002, edge, m.carried()).bytes));
        tally.forwarded(1, first_fragment(m.v6, kFragFrontend, edge, m.carried()));
        // A visible match that fails still fails.
        Bytes wrong = fragment_payload(kDatagram, 20, "600", 40);
        wrong.at(41) = 'Y';
        require_dropped(first_fragment(m.v6, kFragFrontend, wrong, m.carried()));
        tally.dropped(PORTMUX_DROP_MAGIC_MISMATCH);
        require_counters(kFragFrontend, Protocol::udp, tally.expected());
    }
}

TEST_CASE("fragments: a tag or match beyond the first fragment drops as beyond_first_fragment", "[fragments]") {
    // Offset 1000 lies in the first fragment at MTU 1500 and 1280, not at 576.
    for (const Mtu& m : kMtus) {
        INFO((m.v6 ? "IPv6" : "IPv4") << " at MTU " << m.mtu);
        const bool visible = m.carried() - 8 >= 1003;
        for (bool tag_far : {true, false}) {
            INFO((tag_far ? "tag at 1000" : "match at 1000"));
            data_path().configure(config_of({tag_far ? fragment_frontend(1000, 40) : fragment_frontend(20, 1000)}));
            CounterTally tally(2);
            const Bytes payload = tag_far ? fragment_payload(kDatagram, 1000, "601", 40)
                                          : fragment_payload(kDatagram, 20, "601", 1000);
            const Frame input = first_fragment(m.v6, kFragFrontend, payload, m.carried());
            if (visible) {
                const XdpRun run = data_path().run(input.bytes);
                REQUIRE(run.action == kXdpPass);
                REQUIRE_THAT(run.output, FrameEquals(first_fragment(m.v6, 5002, payload, m.carried()).bytes));
                tally.forwarded(1, input);
            } else {
                require_dropped(input);
                tally.dropped(PORTMUX_DROP_BEYOND_FIRST_FRAGMENT);
            }
            require_counters(kFragFrontend, Protocol::udp, tally.expected());
        }
    }
}

TEST_CASE("fragments: a first fragment too short for the tag even whole is too_short", "[fragments]") {
    data_path().configure(config_of({fragment_frontend(1000, 40)}));
    // 1002 payload bytes in all: the tag (1000..1002) does not fit the datagram.
    const Frame input = first_fragment(false, kFragFrontend, fragment_payload(1002, 900, "600", 40), 552);
    require_dropped(input);
    ExpectedCounters expected;
    expected.received = 1;
    expected.packets = {0, 0};
    expected.bytes = {0, 0};
    expected.drops[PORTMUX_DROP_TOO_SHORT] = 1;
    require_counters(kFragFrontend, Protocol::udp, expected);
}
