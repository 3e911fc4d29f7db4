// Payload validation: the length window [min_payload, max_payload] and up to
// four byte matches (offset, value, mask). Drops leave the frame untouched,
// count their reason, and create no flow or reply entry; TCP segments
// without payload (SYN, pure ACK, FIN) are never judged.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "checksum_reference.hpp"
#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

Frontend validating_frontend(Validation rules, Protocol protocol = Protocol::udp,
                             std::uint16_t port = kFrontendPort) {
    Frontend frontend = make_frontend(port, protocol, kBackendPorts);
    frontend.validate = std::move(rules);
    return frontend;
}

Frame udp_datagram(const PacketBuilder& client, Bytes payload) {
    return PacketBuilder(client).udp(kClientPort, kFrontendPort).payload(std::move(payload)).build();
}

// `size` bytes of counting payload with `bytes` written at `offset`.
Bytes payload_with(std::size_t size, std::size_t offset, const Bytes& bytes) {
    Bytes payload = counting_payload(size);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        payload.at(offset + i) = bytes[i];
    }
    return payload;
}

// Sends `frame`, which must pass to the next backend in round robin.
void require_accepted(const Frame& frame, CounterTally& tally, std::size_t& next) {
    CHECK(forward(frame) == kBackendPorts[next]);
    tally.forwarded(next, frame);
    next = (next + 1) % kBackendPorts.size();
}

void require_rejected(const Frame& frame, portmux_drop_reason reason, CounterTally& tally) {
    require_dropped(frame);
    tally.dropped(reason);
}

}  // namespace

TEST_CASE("validation: payload length window, boundaries inclusive", "[validation]") {
    const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client(), ipv4_client().vlan(kTpid8021q, 9));
    Validation rules;
    rules.min_payload = 10;
    rules.max_payload = 20;
    data_path().configure(config_of({validating_frontend(rules)}));
    CounterTally tally(3);
    std::size_t next = 0;

    require_rejected(udp_datagram(client, {}), PORTMUX_DROP_TOO_SHORT, tally);
    require_rejected(udp_datagram(client, counting_payload(9)), PORTMUX_DROP_TOO_SHORT, tally);   // min - 1
    require_accepted(udp_datagram(client, counting_payload(10)), tally, next);                   // min
    require_accepted(udp_datagram(client, counting_payload(15)), tally, next);
    require_accepted(udp_datagram(client, counting_payload(20)), tally, next);                   // max
    require_rejected(udp_datagram(client, counting_payload(21)), PORTMUX_DROP_TOO_LONG, tally);   // max + 1
    require_rejected(udp_datagram(client, counting_payload(1400)), PORTMUX_DROP_TOO_LONG, tally);
    // Drops moved no cursor and recorded nothing.
    require_accepted(udp_datagram(client, counting_payload(10)), tally, next);
    CHECK(data_path().direct_client_count() == 0);
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("validation: a window of one length, and the full range", "[validation]") {
    CounterTally tally(3);
    std::size_t next = 0;
    SECTION("min == max") {
        Validation rules;
        rules.min_payload = 4;
        rules.max_payload = 4;
        data_path().configure(config_of({validating_frontend(rules)}));
        require_rejected(udp_datagram(ipv4_client(), counting_payload(3)), PORTMUX_DROP_TOO_SHORT, tally);
        require_accepted(udp_datagram(ipv4_client(), counting_payload(4)), tally, next);
        require_rejected(udp_datagram(ipv4_client(), counting_payload(5)), PORTMUX_DROP_TOO_LONG, tally);
    }
    SECTION("0 to 65535 accepts everything, empty payload included") {
        data_path().configure(config_of({validating_frontend(Validation{})}));
        for (std::size_t size : {0, 1, 1472}) {
            require_accepted(udp_datagram(ipv4_client(), counting_payload(size)), tally, next);
        }
    }
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("validation: byte matches, one wrong byte drops, masked bits are ignored", "[validation]") {
    const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client());
    Validation rules;
    rules.min_payload = 8;
    rules.max_payload = 100;
    rules.matches.push_back({0, {0xca, 0xfe, 0xba, 0xbe}, {}});        // exact magic
    rules.matches.push_back({6, {0x12, 0x34}, {0xff, 0xf0}});          // low nibble of byte 7 free
    data_path().configure(config_of({validating_frontend(rules)}));
    CounterTally tally(3);
    std::size_t next = 0;

    auto payload = [](std::size_t size, std::uint8_t b6, std::uint8_t b7) {
        Bytes p = payload_with(size, 0, {0xca, 0xfe, 0xba, 0xbe});
        p.at(6) = b6;
        p.at(7) = b7;
        return p;
    };
    require_accepted(udp_datagram(client, payload(8, 0x12, 0x34)), tally, next);
    // The masked-off low nibble may be anything; the value's own low nibble
    // is ignored too.
    for (std::uint8_t low = 0; low < 16; ++low) {
        require_accepted(udp_datagram(client, payload(12, 0x12, static_cast<std::uint8_t>(0x30 | low))), tally, next);
    }
    // Any one wrong bit in a compared position drops.
    for (std::size_t byte = 0; byte < 4; ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
            Bytes p = payload(20, 0x12, 0x34);
            p[byte] ^= static_cast<std::uint8_t>(1 << bit);
            INFO("magic byte " << byte << " bit " << bit);
            require_rejected(udp_datagram(client, p), PORTMUX_DROP_MAGIC_MISMATCH, tally);
        }
    }
    for (int bit = 0; bit < 8; ++bit) {
        require_rejected(udp_datagram(client, payload(20, static_cast<std::uint8_t>(0x12 ^ (1 << bit)), 0x34)),
                         PORTMUX_DROP_MAGIC_MISMATCH, tally);
    }
    for (int bit = 4; bit < 8; ++bit) {
        require_rejected(udp_datagram(client, payload(20, 0x12, static_cast<std::uint8_t>(0x34 ^ (1 << bit)))),
                         PORTMUX_DROP_MAGIC_MISMATCH, tally);
    }
    // The length window is judged before the matches.
    // (a short or long payload with wrong bytes counts as too_short / too_long).
    Bytes short_bad = payload_with(7, 0, {0xca, 0xfe, 0xba, 0x00});
    require_rejected(udp_datagram(client, short_bad), PORTMUX_DROP_TOO_SHORT, tally);
    require_rejected(udp_datagram(client, payload(101, 0, 0)), PORTMUX_DROP_TOO_LONG, tally);
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("validation: a match at the very end of the payload, and beyond it", "[validation]") {
    Validation rules;
    rules.min_payload = 0;
    rules.matches.push_back({10, {0xab, 0xcd, 0xef}, {}});
    data_path().configure(config_of({validating_frontend(rules)}));
    CounterTally tally(3);
    std::size_t next = 0;
    // Payload of 13: the match fills its last three bytes.
    require_accepted(udp_datagram(ipv4_client(), payload_with(13, 10, {0xab, 0xcd, 0xef})), tally, next);
    require_accepted(udp_datagram(ipv6_client(), payload_with(40, 10, {0xab, 0xcd, 0xef})), tally, next);
    // A payload too short to hold the match is a mismatch, not too_short.
    require_rejected(udp_datagram(ipv4_client(), payload_with(12, 10, {0xab, 0xcd})), PORTMUX_DROP_MAGIC_MISMATCH, tally);
    require_rejected(udp_datagram(ipv4_client(), counting_payload(10)), PORTMUX_DROP_MAGIC_MISMATCH, tally);
    require_rejected(udp_datagram(ipv4_client(), {}), PORTMUX_DROP_MAGIC_MISMATCH, tally);
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("validation: four 16-byte matches, the last ending at payload offset 1500", "[validation]") {
    Validation rules;
    std::vector<std::pair<std::uint16_t, Bytes>> spots;
    for (std::uint16_t offset : {0, 100, 700, 1484}) {
        Bytes value(16);
        for (std::size_t i = 0; i < 16; ++i) {
            value[i] = static_cast<std::uint8_t>(0x80 + offset + i);
        }
        rules.matches.push_back({offset, value, {}});
        spots.emplace_back(offset, value);
    }
    data_path().configure(config_of({validating_frontend(rules)}));
    CounterTally tally(3);
    std::size_t next = 0;
    auto payload = [&](std::size_t size) {
        Bytes p = counting_payload(size);
        for (const auto& [offset, value] : spots) {
            for (std::size_t i = 0; i < value.size() && offset + i < size; ++i) {
                p[offset + i] = value[i];
            }
        }
        return p;
    };
    const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client());
    require_accepted(udp_datagram(client, payload(1500)), tally, next);
    // One short of the last match: mismatch.
    require_rejected(udp_datagram(client, payload(1499)), PORTMUX_DROP_MAGIC_MISMATCH, tally);
    // The last byte of each match, wrong.
    for (const auto& [offset, value] : spots) {
        Bytes p = payload(1500);
        p[offset + 15] ^= 0x01;
        INFO("match at " << offset);
        require_rejected(udp_datagram(client, p), PORTMUX_DROP_MAGIC_MISMATCH, tally);
    }
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("validation: lengths come from the headers, not from Ethernet padding", "[validation]") {
    Validation rules;
    rules.min_payload = 3;
    data_path().configure(config_of({validating_frontend(rules)}));
    CounterTally tally(3);
    // 2 payload bytes, padded to the 60-byte Ethernet minimum.
    Frame padded = udp_datagram(ipv4_client(), counting_payload(2));
    padded.bytes.resize(60, 0);
    require_rejected(padded, PORTMUX_DROP_TOO_SHORT, tally);
    // 3 payload bytes, padded: accepted, and its bytes counted as the whole
    // 60-byte frame, padding included.
    Frame padded_ok = udp_datagram(ipv4_client(), counting_payload(3));
    padded_ok.bytes.resize(60, 0xee);
    CHECK(forward(padded_ok) == kBackendPorts[0]);
    tally.forwarded(0, padded_ok);
    // A UDP length beyond the IP payload contradicts the IP header.
    Frame overlong = udp_datagram(ipv4_client(), counting_payload(8));
    overlong.write16(overlong.l4_offset + 4, 8 + 9);
    require_rejected(overlong, PORTMUX_DROP_TOO_SHORT, tally);
    // A UDP length below its own header.
    Frame underlong = udp_datagram(ipv6_client(), counting_payload(8));
    underlong.write16(underlong.l4_offset + 4, 7);
    require_rejected(underlong, PORTMUX_DROP_TOO_SHORT, tally);
    // A UDP length shorter than the IP payload: the UDP length counts.
    Frame trailing = udp_datagram(ipv4_client(), counting_payload(8));
    trailing.write16(trailing.l4_offset + 4, 8 + 2);
    require_rejected(trailing, PORTMUX_DROP_TOO_SHORT, tally);
    require_counters(kFrontendPort, Protocol::udp, tally.expected());
}

TEST_CASE("validation: TCP segments without payload are never judged", "[validation][tcp]") {
    Validation rules;
    rules.min_payload = 10;
    rules.max_payload = 50;
    rules.matches.push_back({0, {'G', 'E', 'T'}, {}});
    data_path().configure(config_of({validating_frontend(rules, Protocol::tcp, 8080)}));
    CounterTally tally(3);
    const PacketBuilder client = GENERATE(ipv4_client(), ipv6_client());
    auto segment = [&](std::uint16_t port, std::uint8_t flags, Bytes payload, Bytes options = {}) {
        return PacketBuilder(client).tcp(port, 8080).tcp_flags(flags).tcp_options(std::move(options)).payload(std::move(payload)).build();
    };
    // SYN, pure ACK and FIN pass however strict the rules.
    const Frame syn = segment(40001, kTcpSyn, {}, {2, 4, 0x05, 0xb4});  // MSS option
    CHECK(forward(syn) == kBackendPorts[0]);
    tally.forwarded(0, syn);
    const Frame ack = segment(40001, kTcpAck, {});
    CHECK(forward(ack) == kBackendPorts[0]);
    tally.forwarded(0, ack);
    // Data is judged, behind options too: the payload starts after them.
    const Bytes request = payload_with(20, 0, {'G', 'E', 'T'});
    const Frame good = segment(40001, kTcpPsh | kTcpAck, request, {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2});
    CHECK(forward(good) == kBackendPorts[0]);
    tally.forwarded(0, good);
    require_rejected(segment(40001, kTcpPsh | kTcpAck, payload_with(20, 0, {'P', 'U', 'T'})),
                     PORTMUX_DROP_MAGIC_MISMATCH, tally);
    // "GET" in the option bytes, where a parser ignoring the data offset would look.
    require_rejected(segment(40001, kTcpPsh | kTcpAck, counting_payload(20), {'G', 'E', 'T', 0}),
                     PORTMUX_DROP_MAGIC_MISMATCH, tally);
    require_rejected(segment(40001, kTcpPsh | kTcpAck, payload_with(9, 0, {'G', 'E', 'T'})), PORTMUX_DROP_TOO_SHORT, tally);
    require_rejected(segment(40001, kTcpPsh | kTcpAck, payload_with(51, 0, {'G', 'E', 'T'})), PORTMUX_DROP_TOO_LONG, tally);
    const Frame fin = segment(40001, kTcpFin | kTcpAck, {});
    CHECK(forward(fin) == kBackendPorts[0]);
    tally.forwarded(0, fin);
    // A dropped data segment of an unknown flow creates no flow.
    require_rejected(segment(40002, kTcpPsh | kTcpAck, counting_payload(20)), PORTMUX_DROP_MAGIC_MISMATCH, tally);
    CHECK(data_path().flow_count() == 1);
    CHECK(data_path().direct_client_count() == 0);
    require_counters(8080, Protocol::tcp, tally.expected());
}
