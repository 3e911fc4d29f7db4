// Tag routing (UDP): the `length` payload bytes at `offset` pick the
// backend. Known tags go to their backend (weight-0 route targets
// included); unknown tags drop (unknown_tag) or take the round robin over
// the weighted backends; a payload too short for the tag drops as too_short.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstdint>
#include <string>
#include <vector>

#include "checksum_reference.hpp"
#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

constexpr std::uint16_t kRouted = 5060;
// Round robin over 5061 and 5062; 5071 and 5072 only by tag (weight 0).
const std::vector<std::uint16_t> kRoutedBackends{5061, 5062, 5071, 5072};

Bytes text(const std::string& s) {
    return Bytes(s.begin(), s.end());
}

Frontend routed_frontend(UnknownTagAction unknown, std::uint16_t offset = 2, std::uint8_t length = 4) {
    Frontend frontend = make_frontend(kRouted, Protocol::udp, kRoutedBackends);
    frontend.backends[2].weight = 0;
    frontend.backends[3].weight = 0;
    Route route;
    route.offset = offset;
    route.length = length;
    route.unknown = unknown;
    if (length == 4) {
        route.tags = {{text("AAAA"), 5071}, {text("AAAB"), 5072}, {text("CCCC"), 5061}};
    }
    frontend.route = std::move(route);
    return frontend;
}

// A payload of `size` bytes with `tag` at `offset`.
Bytes tagged(std::size_t size, std::size_t offset, const Bytes& tag) {
    Bytes payload = counting_payload(size);
    std::copy(tag.begin(), tag.end(), payload.begin() + static_cast<std::ptrdiff_t>(offset));
    return payload;
}

Frame datagram(const PacketBuilder& client, Bytes payload, std::uint16_t client_port = kClientPort) {
    return PacketBuilder(client).udp(client_port, kRouted).payload(std::move(payload)).build();
}

void require_routed(const Frame& frame, std::uint16_t backend, CounterTally& tally) {
    CHECK(forward(frame) == backend);
    tally.forwarded(index_of(kRoutedBackends, backend), frame);
    CHECK(data_path().reply_frontend(frame, backend) == kRouted);
}

void require_rejected(const Frame& frame, portmux_drop_reason reason, CounterTally& tally) {
    require_dropped(frame);
    tally.dropped(reason);
}

}  // namespace

TEST_CASE("routing: a known tag picks its backend, weight 0 or not", "[routing]") {
    const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client(), ipv6_client().vlan(kTpid8021q, 4));
    const UnknownTagAction unknown = GENERATE(UnknownTagAction::drop, UnknownTagAction::round_robin);
    data_path().configure(config_of({routed_frontend(unknown)}));
    CounterTally tally(4);
    for (int round = 0; round < 3; ++round) {
        require_routed(datagram(client, tagged(10, 2, text("AAAA"))), 5071, tally);
        require_routed(datagram(client, tagged(10, 2, text("AAAB"))), 5072, tally);  // differs in its last byte
        require_routed(datagram(client, tagged(64, 2, text("CCCC"))), 5061, tally);
    }
    // Routed datagrams keep no flow and did not move the cursor.
    CHECK(data_path().flow_count() == 0);
    if (unknown == UnknownTagAction::round_robin) {
        require_routed(datagram(client, tagged(10, 2, text("ZZZZ"))), 5061, tally);
    }
    require_counters(kRouted, Protocol::udp, tally.expected());
}

TEST_CASE("routing: an unknown tag drops as unknown_tag", "[routing]") {
    data_path().configure(config_of({routed_frontend(UnknownTagAction::drop)}));
    CounterTally tally(4);
    for (const char* tag : {"AAAC", "aaaa", "BAAA", "CCC\0"}) {
        INFO("tag " << tag);
        require_rejected(datagram(ipv4_client(), tagged(10, 2, Bytes(tag, tag + 4))), PORTMUX_DROP_UNKNOWN_TAG, tally);
    }
    // The tag sits at offset 2: "AAAA" at offset 0 is not it.
    Bytes at_zero = tagged(10, 0, text("AAAA"));
    at_zero[4] = 'x';
    at_zero[5] = 'y';
    require_rejected(datagram(ipv4_client(), at_zero), PORTMUX_DROP_UNKNOWN_TAG, tally);
    CHECK(data_path().direct_client_count() == 0);
    require_routed(datagram(ipv4_client(), tagged(10, 2, text("AAAA"))), 5071, tally);
    require_counters(kRouted, Protocol::udp, tally.expected());
}

TEST_CASE("routing: unknown tags take the round robin over weighted backends only", "[routing]") {
    data_path().configure(config_of({routed_frontend(UnknownTagAction::round_robin)}));
    CounterTally tally(4);
    std::vector<std::uint16_t> sent_to;
    for (int i = 0; i < 6; ++i) {
        const Frame frame = datagram(ipv6_client(), tagged(8, 2, text("U" + std::to_string(100 + i))));
        const std::uint16_t backend = forward(frame);
        tally.forwarded(index_of(kRoutedBackends, backend), frame);
        sent_to.push_back(backend);
        // Known tags in between do not move the cursor.
        require_routed(datagram(ipv6_client(), tagged(8, 2, text("AAAB"))), 5072, tally);
    }
    CHECK(sent_to == std::vector<std::uint16_t>{5061, 5062, 5061, 5062, 5061, 5062});
    require_counters(kRouted, Protocol::udp, tally.expected());
}

TEST_CASE("routing: a tag at the very end of the payload, and a payload too short for it", "[routing]") {
    const UnknownTagAction unknown = GENERATE(UnknownTagAction::drop, UnknownTagAction::round_robin);
    data_path().configure(config_of({routed_frontend(unknown)}));
    CounterTally tally(4);
    // offset 2 + length 4: a 6-byte payload holds the tag exactly.
    require_routed(datagram(ipv4_client(), tagged(6, 2, text("AAAA"))), 5071, tally);
    require_routed(datagram(ipv6_client(), tagged(6, 2, text("CCCC"))), 5061, tally);
    // 5 bytes: the tag would end one past the payload. Also when the
    // missing byte is in the frame (Ethernet padding), and for round robin.
    for (std::size_t size : {5, 2, 1, 0}) {
        INFO("payload " << size);
        Bytes payload = tagged(6, 2, text("AAAA"));
        payload.resize(size);
        require_rejected(datagram(ipv4_client(), payload), PORTMUX_DROP_TOO_SHORT, tally);
    }
    Frame padded = datagram(ipv4_client(), Bytes{0, 0, 'A', 'A', 'A'});
    padded.bytes.push_back('A');
    padded.bytes.resize(60, 0);
    require_rejected(padded, PORTMUX_DROP_TOO_SHORT, tally);
    CHECK(data_path().direct_client_count() == 0);
    require_counters(kRouted, Protocol::udp, tally.expected());
}

TEST_CASE("routing: 16-byte tags ending at payload offset 1500, and 1-byte tags", "[routing]") {
    CounterTally tally(4);
    SECTION("16 bytes at 1484") {
        Frontend frontend = routed_frontend(UnknownTagAction::drop, 1484, 16);
        const Bytes tag_a = text("0123456789abcdef");
        Bytes tag_b = tag_a;
        tag_b[15] = 'g';
        frontend.route->tags = {{tag_a, 5072}, {tag_b, 5062}};
        data_path().configure(config_of({frontend}));
        require_routed(datagram(ipv4_client(), tagged(1500, 1484, tag_a)), 5072, tally);
        require_routed(datagram(ipv6_client(), tagged(1500, 1484, tag_b)), 5062, tally);
        Bytes short_payload = tagged(1500, 1484, tag_a);
        short_payload.pop_back();
        require_rejected(datagram(ipv4_client(), short_payload), PORTMUX_DROP_TOO_SHORT, tally);
        Bytes other = tag_a;
        other[0] = 'X';
        require_rejected(datagram(ipv4_client(), tagged(1500, 1484, other)), PORTMUX_DROP_UNKNOWN_TAG, tally);
    }
    SECTION("1 byte at 0") {
        Frontend frontend = routed_frontend(UnknownTagAction::drop, 0, 1);
        frontend.route->tags = {{{0x01}, 5071}, {{0x02}, 5072}, {{0x00}, 5062}};
        data_path().configure(config_of({frontend}));
        require_routed(datagram(ipv4_client(), {0x01}), 5071, tally);
        require_routed(datagram(ipv4_client(), {0x02, 0xff}), 5072, tally);
        require_routed(datagram(ipv4_client(), {0x00, 0x01}), 5062, tally);  // a zero tag is a tag
        require_rejected(datagram(ipv4_client(), {0x03}), PORTMUX_DROP_UNKNOWN_TAG, tally);
        require_rejected(datagram(ipv4_client(), {}), PORTMUX_DROP_TOO_SHORT, tally);
    }
    require_counters(kRouted, Protocol::udp, tally.expected());
}

TEST_CASE("routing: validation is judged before the tag", "[routing][validation]") {
    Frontend frontend = routed_frontend(UnknownTagAction::drop);
    Validation rules;
    rules.min_payload = 8;
    rules.max_payload = 32;
    rules.matches.push_back({0, {0x7e}, {}});
    frontend.validate = rules;
    data_path().configure(config_of({frontend}));
    CounterTally tally(4);
    Bytes good = tagged(8, 2, text("AAAA"));
    good[0] = 0x7e;
    require_routed(datagram(ipv4_client(), good), 5071, tally);
    Bytes no_magic = good;
    no_magic[0] = 0x7f;
    require_rejected(datagram(ipv4_client(), no_magic), PORTMUX_DROP_MAGIC_MISMATCH, tally);
    Bytes seven = good;
    seven.resize(7);
    require_rejected(datagram(ipv4_client(), seven), PORTMUX_DROP_TOO_SHORT, tally);
    Bytes unknown = good;
    unknown[2] = 'Q';
    require_rejected(datagram(ipv4_client(), unknown), PORTMUX_DROP_UNKNOWN_TAG, tally);
    require_counters(kRouted, Protocol::udp, tally.expected());
}

TEST_CASE("routing: round robin for unknown tags with no weighted backend drops as no_backend", "[routing]") {
    Frontend frontend = routed_frontend(UnknownTagAction::round_robin);
    frontend.backends[0].weight = 0;
    frontend.backends[1].weight = 0;
    data_path().configure(config_of({frontend}));
    CounterTally tally(4);
    require_rejected(datagram(ipv4_client(), tagged(6, 2, text("ZZZZ"))), PORTMUX_DROP_NO_BACKEND, tally);
    require_routed(datagram(ipv4_client(), tagged(6, 2, text("CCCC"))), 5061, tally);
    require_counters(kRouted, Protocol::udp, tally.expected());
}
