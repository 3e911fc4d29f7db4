// An independent model of what the portmux XDP program must do with one
// frame: its own parser (written from the rules of the data path, not from
// its code) and its own policy evaluation against the FrontendSpecs.
//
// Parsing, as the data path does it:
//   Ethernet; up to 2 VLAN tags (0x8100 / 0x88a8), a third one is not ours;
//   IPv4: version 4, IHL >= 5, header inside the frame, fragment offset 0
//     (MF alone is fine: a first fragment carries the ports);
//   IPv6: version 6, at most 4 extension headers among hop-by-hop (0),
//     routing (43), destination options (60) ((len + 1) * 8 bytes each),
//     AH (51) ((len + 2) * 4) and fragment (44) (8 bytes, offset 0 only);
//     each needs its first 2 (fragment: 8) bytes in the frame;
//   then UDP (8-byte header in the frame) or TCP (20 bytes in the frame);
//   L4 length = IPv4 tot_len - IHL * 4, IPv6 payload_len - extension bytes,
//     negative: not ours.
// A first fragment (IPv4 MF at offset 0, or an IPv6 fragment header at offset
// 0, M flag or not) of a UDP datagram whose UDP length exceeds the L4 length
// is judged by that UDP length (the validate window) and by the payload bytes
// the L4 length covers (matches, tag); a match or tag that ends past them but
// inside the datagram drops it as beyond_first_fragment. Later fragments carry
// no ports: not ours.
// A frame that fails any of it, or whose (destination port, protocol) is no
// frontend, must pass untouched.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fuzz_frontends.hpp"
#include "portmux_shared.h"

namespace portmux::fuzz {

enum class Verdict { not_ours, forward, drop };

// How the backend of a forwarded frame is chosen.
enum class Choice {
    none,
    round_robin,  // next in the frontend's round-robin order (exactly predictable)
    tag,          // the backend of a known route tag (exact)
    flow_table,   // TCP or UDP flow affinity: any of the frontend's backends
};

struct Parsed {
    bool ok = false;              // a UDP or TCP header was located
    std::string why_not;          // when !ok
    int ip_version = 0;
    std::size_t l3_offset = 0;
    std::size_t l4_offset = 0;
    std::uint8_t l4_proto = 0;
    std::int64_t l4_length = 0;   // per the IP header
    std::uint16_t dest_port = 0;
    std::uint16_t source_port = 0;
    bool first_fragment = false;  // IPv4 MF, or an IPv6 fragment header (offset 0 both)
};

struct Expectation {
    Verdict verdict = Verdict::not_ours;
    std::string why;                     // a human readable reason
    Parsed parsed;
    const FrontendSpec* frontend = nullptr;
    int drop_reason = -1;                // PORTMUX_DROP_* when verdict == drop
    Choice choice = Choice::none;
    int tag_backend = -1;                // index into frontend->backends for Choice::tag
};

// Parses the frame like the data path.
Parsed parse_frame(std::span<const std::uint8_t> frame);

// What the data path must do with the frame under `frontends`.
Expectation expect(std::span<const std::uint8_t> frame, const std::vector<FrontendSpec>& frontends);

const char* verdict_name(Verdict verdict);
const char* drop_reason_name(int reason);

// The counters the model expects in frontend_state, summed over CPUs.
struct ModelCounters {
    std::uint64_t received = 0;
    std::array<std::uint64_t, PORTMUX_DROP_REASONS> drops{};
    std::array<std::uint64_t, PORTMUX_MAX_BACKENDS> packets{};
    std::array<std::uint64_t, PORTMUX_MAX_BACKENDS> bytes{};
};

}  // namespace portmux::fuzz
