#include "reference_model.hpp"

#include <algorithm>

namespace portmux::fuzz {
namespace {

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;
constexpr std::uint16_t kVlanQ = 0x8100;
constexpr std::uint16_t kVlanAd = 0x88a8;

constexpr std::uint8_t kHopByHop = 0;
constexpr std::uint8_t kRouting = 43;
constexpr std::uint8_t kFragment = 44;
constexpr std::uint8_t kAuth = 51;
constexpr std::uint8_t kDestOpts = 60;

constexpr int kMaxVlanTags = 2;
constexpr int kMaxIpv6Extensions = 4;
constexpr std::size_t kMaxPayloadOffset = 1500;
constexpr std::size_t kMaxCompareLength = 16;

std::uint16_t be16(std::span<const std::uint8_t> b, std::size_t at) {
    return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]);
}

bool is_vlan(std::uint16_t type) {
    return type == kVlanQ || type == kVlanAd;
}

bool is_ipv6_extension(std::uint8_t next) {
    return next == kHopByHop || next == kRouting || next == kFragment || next == kAuth ||
           next == kDestOpts;
}

Parsed fail(Parsed p, std::string why) {
    p.ok = false;
    p.why_not = std::move(why);
    return p;
}

// Payload bytes [offset, offset + length) if the data path can read them:
// within the stated payload, within the bounds of the inspection and inside
// the frame.
std::optional<Bytes> payload_bytes(std::span<const std::uint8_t> frame, std::size_t payload_start,
                                   std::size_t payload_length, std::size_t offset,
                                   std::size_t length) {
    if (offset > kMaxPayloadOffset || length == 0 || length > kMaxCompareLength ||
        offset + length > payload_length) {
        return std::nullopt;
    }
    if (payload_start + offset + length > frame.size()) {
        return std::nullopt;  // the header promises bytes the frame does not have
    }
    const auto first = frame.begin() + static_cast<std::ptrdiff_t>(payload_start + offset);
    return Bytes(first, first + static_cast<std::ptrdiff_t>(length));
}

}  // namespace

Parsed parse_frame(std::span<const std::uint8_t> frame) {
    Parsed p;
    if (frame.size() < 14) {
        return fail(p, "shorter than an Ethernet header");
    }
    std::uint16_t type = be16(frame, 12);
    std::size_t at = 14;
    int tags = 0;
    while (is_vlan(type)) {
        if (tags == kMaxVlanTags) {
            return fail(p, "more than two VLAN tags");
        }
        if (at + 4 > frame.size()) {
            return fail(p, "truncated VLAN tag");
        }
        type = be16(frame, at + 2);
        at += 4;
        ++tags;
    }
    p.l3_offset = at;

    std::uint8_t proto = 0;
    if (type == kEtherIpv4) {
        if (at + 20 > frame.size()) {
            return fail(p, "truncated IPv4 header");
        }
        const unsigned version = frame[at] >> 4;
        const std::size_t header = (frame[at] & 0x0fu) * 4u;
        if (version != 4) {
            return fail(p, "IPv4 version field is not 4");
        }
        if (header < 20) {
            return fail(p, "IHL below 5");
        }
        if (at + header > frame.size()) {
            return fail(p, "IPv4 options beyond the frame");
        }
        if ((be16(frame, at + 6) & 0x1fff) != 0) {
            return fail(p, "non-first IPv4 fragment");
        }
        p.ip_version = 4;
        p.first_fragment = (be16(frame, at + 6) & 0x2000) != 0;
        proto = frame[at + 9];
        p.l4_offset = at + header;
        p.l4_length = static_cast<std::int64_t>(be16(frame, at + 2)) - static_cast<std::int64_t>(header);
    } else if (type == kEtherIpv6) {
        if (at + 40 > frame.size()) {
            return fail(p, "truncated IPv6 header");
        }
        if (frame[at] >> 4 != 6) {
            return fail(p, "IPv6 version field is not 6");
        }
        p.ip_version = 6;
        std::uint8_t next = frame[at + 6];
        std::size_t cursor = at + 40;
        int extensions = 0;
        while (is_ipv6_extension(next)) {
            if (extensions == kMaxIpv6Extensions) {
                return fail(p, "more than four IPv6 extension headers");
            }
            ++extensions;
            if (next == kFragment) {
                if (cursor + 8 > frame.size()) {
                    return fail(p, "truncated IPv6 fragment header");
                }
                if ((be16(frame, cursor + 2) & 0xfff8) != 0) {
                    return fail(p, "non-first IPv6 fragment");
                }
                p.first_fragment = true;
                next = frame[cursor];
                cursor += 8;
                continue;
            }
            if (cursor + 2 > frame.size()) {
                return fail(p, "truncated IPv6 extension header");
            }
            const std::size_t length = next == kAuth ? (frame[cursor + 1] + 2u) * 4u
                                                     : (frame[cursor + 1] + 1u) * 8u;
            next = frame[cursor];
            cursor += length;
        }
        proto = next;
        p.l4_offset = cursor;
        p.l4_length = static_cast<std::int64_t>(be16(frame, at + 4)) -
                      static_cast<std::int64_t>(cursor - (at + 40));
    } else {
        return fail(p, "not IPv4 or IPv6");
    }

    p.l4_proto = proto;
    if (proto == kProtoUdp) {
        if (p.l4_offset + 8 > frame.size()) {
            return fail(p, "truncated UDP header");
        }
    } else if (proto == kProtoTcp) {
        if (p.l4_offset + 20 > frame.size()) {
            return fail(p, "truncated TCP header");
        }
    } else {
        return fail(p, "neither UDP nor TCP");
    }
    if (p.l4_length < (proto == kProtoUdp ? 8 : 20)) {
        return fail(p, "IP length does not cover the transport header");
    }
    p.source_port = be16(frame, p.l4_offset);
    p.dest_port = be16(frame, p.l4_offset + 2);
    p.ok = true;
    return p;
}

Expectation expect(std::span<const std::uint8_t> frame, const std::vector<FrontendSpec>& frontends) {
    Expectation e;
    e.parsed = parse_frame(frame);
    const Parsed& p = e.parsed;
    if (!p.ok) {
        e.why = "not ours: " + p.why_not;
        return e;
    }
    const auto found = std::find_if(frontends.begin(), frontends.end(), [&](const FrontendSpec& f) {
        return f.port == p.dest_port && f.protocol == p.l4_proto;
    });
    if (found == frontends.end()) {
        e.why = "not ours: no frontend for this port and protocol";
        return e;
    }
    const FrontendSpec& fe = *found;
    e.frontend = &fe;

    auto drop = [&e](int reason, std::string why) {
        e.verdict = Verdict::drop;
        e.drop_reason = reason;
        e.why = std::move(why);
        return e;
    };

    // Where the payload is, per the transport and IP headers.
    bool payload_ok = false;
    std::size_t payload_start = 0;
    std::size_t payload_length = 0;
    std::string payload_problem;
    if (p.l4_proto == kProtoUdp) {
        const std::size_t udp_length = be16(frame, p.l4_offset + 4);
        if (udp_length < 8) {
            payload_problem = "UDP length below 8";
        } else if (static_cast<std::int64_t>(udp_length) > p.l4_length) {
            payload_problem = "UDP length beyond the IP-stated L4 length";
        } else {
            payload_ok = true;
            payload_start = p.l4_offset + 8;
            payload_length = udp_length - 8;
        }
    } else {
        const std::size_t header = (frame[p.l4_offset + 12] >> 4) * 4u;
        if (header < 20) {
            payload_problem = "TCP data offset below 5";
        } else if (static_cast<std::int64_t>(header) > p.l4_length) {
            payload_problem = "TCP header beyond the IP-stated L4 length";
        } else {
            payload_ok = true;
            payload_start = p.l4_offset + header;
            payload_length = static_cast<std::size_t>(p.l4_length) - header;
        }
    }

    // A first UDP fragment: the UDP length states the whole datagram, the IP
    // length only what this fragment carries.
    if (!payload_ok && p.l4_proto == kProtoUdp && p.first_fragment) {
        const std::size_t udp_length = be16(frame, p.l4_offset + 4);
        if (static_cast<std::int64_t>(udp_length) > p.l4_length) {
            const std::size_t present = static_cast<std::size_t>(p.l4_length) - 8;
            const std::size_t datagram_payload = udp_length - 8;
            const auto hidden = [&](std::size_t offset, std::size_t length) {
                return offset + length > present && offset + length <= datagram_payload;
            };
            if (fe.validate) {
                for (std::size_t m = 0; m < fe.matches.size(); ++m) {
                    if (hidden(fe.matches[m].offset, fe.matches[m].value.size())) {
                        return drop(PORTMUX_DROP_BEYOND_FIRST_FRAGMENT,
                                    "beyond_first_fragment: match " + std::to_string(m) + " ends past " +
                                        std::to_string(present) + " fragment payload bytes");
                    }
                }
            }
            if (fe.route && hidden(fe.tag_offset, fe.tag_length)) {
                return drop(PORTMUX_DROP_BEYOND_FIRST_FRAGMENT,
                            "beyond_first_fragment: the tag ends past " + std::to_string(present) +
                                " fragment payload bytes");
            }
            payload_ok = true;
            payload_start = p.l4_offset + 8;
            payload_length = datagram_payload;
        }
    }

    if (!payload_ok && (fe.validate || fe.route)) {
        return drop(PORTMUX_DROP_TOO_SHORT, "too_short: " + payload_problem);
    }

    if (fe.validate && (p.l4_proto == kProtoUdp || payload_length > 0)) {
        if (payload_length < fe.min_payload) {
            return drop(PORTMUX_DROP_TOO_SHORT, "too_short: payload below the minimum");
        }
        if (payload_length > fe.max_payload) {
            return drop(PORTMUX_DROP_TOO_LONG, "too_long: payload above the maximum");
        }
        for (std::size_t m = 0; m < fe.matches.size(); ++m) {
            const MatchSpec& match = fe.matches[m];
            const auto bytes =
                payload_bytes(frame, payload_start, payload_length, match.offset, match.value.size());
            if (!bytes) {
                return drop(PORTMUX_DROP_MAGIC_MISMATCH,
                            "magic_mismatch: match " + std::to_string(m) + " bytes not readable");
            }
            for (std::size_t i = 0; i < match.value.size(); ++i) {
                const std::uint8_t mask = match.mask.empty() ? 0xff : match.mask[i];
                if (((*bytes)[i] & mask) != (match.value[i] & mask)) {
                    return drop(PORTMUX_DROP_MAGIC_MISMATCH,
                                "magic_mismatch: match " + std::to_string(m) + " differs");
                }
            }
        }
    }

    e.verdict = Verdict::forward;
    if (p.l4_proto == kProtoTcp || fe.flow_affinity) {
        e.choice = Choice::flow_table;
        e.why = "forward: flow table";
        return e;
    }
    if (fe.route) {
        const auto tag = payload_bytes(frame, payload_start, payload_length, fe.tag_offset, fe.tag_length);
        if (!tag) {
            return drop(PORTMUX_DROP_TOO_SHORT, "too_short: no room for the route tag");
        }
        for (const TagSpec& known : fe.tags) {
            if (known.tag == *tag) {
                e.choice = Choice::tag;
                e.tag_backend = fe.backend_index(known.backend_port);
                e.why = "forward: known tag";
                return e;
            }
        }
        if (!fe.unknown_round_robin) {
            return drop(PORTMUX_DROP_UNKNOWN_TAG, "unknown_tag");
        }
        e.choice = Choice::round_robin;
        e.why = "forward: unknown tag, round robin";
        return e;
    }
    e.choice = Choice::round_robin;
    e.why = "forward: round robin";
    return e;
}

const char* verdict_name(Verdict verdict) {
    switch (verdict) {
    case Verdict::not_ours:
        return "pass unchanged";
    case Verdict::forward:
        return "forward";
    case Verdict::drop:
        return "drop";
    }
    return "?";
}

const char* drop_reason_name(int reason) {
    switch (reason) {
    case PORTMUX_DROP_TOO_SHORT:
        return "too_short";
    case PORTMUX_DROP_TOO_LONG:
        return "too_long";
    case PORTMUX_DROP_MAGIC_MISMATCH:
        return "magic_mismatch";
    case PORTMUX_DROP_UNKNOWN_TAG:
        return "unknown_tag";
    case PORTMUX_DROP_NO_BACKEND:
        return "no_backend";
    case PORTMUX_DROP_BEYOND_FIRST_FRAGMENT:
        return "beyond_first_fragment";
    default:
        return "none";
    }
}

}  // namespace portmux::fuzz
