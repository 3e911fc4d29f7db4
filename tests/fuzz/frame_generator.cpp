#include "frame_generator.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

#include "checksum_reference.hpp"

namespace portmux::fuzz {
namespace {

using test::Frame;
using test::PacketBuilder;

constexpr std::array<std::uint8_t, 10> kInterestingNextHeaders{0, 43, 44, 51, 60, 6, 17, 58, 59, 1};

std::uint16_t ones_add(std::uint16_t a, std::uint16_t b) {
    const std::uint32_t sum = static_cast<std::uint32_t>(a) + b;
    return static_cast<std::uint16_t>((sum & 0xffff) + (sum >> 16));
}

// RFC 1624 eqn. 3, for keeping a checksum right across an edit the fuzzer
// makes on purpose (TCP flags).
std::uint16_t checksum_after(std::uint16_t check, std::uint16_t old_word, std::uint16_t new_word) {
    return static_cast<std::uint16_t>(
        ~ones_add(ones_add(static_cast<std::uint16_t>(~check), static_cast<std::uint16_t>(~old_word)),
                  new_word));
}

bool has_layer(const Frame& frame, std::string_view name) {
    return std::any_of(frame.layers.begin(), frame.layers.end(),
                       [&](const test::Layer& layer) { return layer.name == name; });
}

int ip_version_of(const Frame& frame) {
    return has_layer(frame, "ipv6") ? 6 : 4;
}

std::vector<const test::Layer*> layers_named(const Frame& frame,
                                             std::initializer_list<std::string_view> names) {
    std::vector<const test::Layer*> out;
    for (const test::Layer& layer : frame.layers) {
        if (std::find(names.begin(), names.end(), layer.name) != names.end()) {
            out.push_back(&layer);
        }
    }
    return out;
}

void fix_ipv4_header_checksum(Frame& frame) {
    const std::size_t at = frame.l3_offset;
    if (at + 20 > frame.bytes.size()) {
        return;
    }
    const std::size_t header = (frame.bytes[at] & 0x0fu) * 4u;
    if (header < 20 || at + header > frame.bytes.size()) {
        return;
    }
    const std::uint16_t sum = test::ipv4_header_checksum(
        std::span<const std::uint8_t>(frame.bytes).subspan(at, header));
    frame.write16(at + 10, sum);
}

}  // namespace

bool fix_transport_checksum(Frame& frame) {
    try {
        const std::uint16_t sum = test::recompute_transport_checksum(frame.bytes);
        const test::TransportLocation where = test::locate_transport(frame.bytes);
        frame.write16(where.l4_offset + test::checksum_field_offset(where.protocol), sum);
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

void set_tcp_flags(Frame& frame, std::uint8_t flags) {
    const std::size_t at = frame.l4_offset;
    if (at + 20 > frame.bytes.size()) {
        return;
    }
    const std::uint16_t old_word = frame.read16(at + 12);
    const std::uint16_t new_word = static_cast<std::uint16_t>((old_word & 0xff00) | flags);
    frame.write16(at + 12, new_word);
    frame.write16(at + 16, checksum_after(frame.read16(at + 16), old_word, new_word));
}

void add_tcp_options(Frame& frame, const Bytes& options) {
    if (options.empty() || options.size() % 4 != 0 || options.size() > 40 ||
        frame.l4_offset + 20 > frame.bytes.size()) {
        throw std::logic_error("add_tcp_options: bad options or no TCP header");
    }
    const std::size_t at = frame.l4_offset;
    frame.bytes.insert(frame.bytes.begin() + static_cast<std::ptrdiff_t>(at + 20), options.begin(),
                       options.end());
    const std::size_t grow = options.size();
    frame.bytes[at + 12] = static_cast<std::uint8_t>(((5 + grow / 4) << 4) | (frame.bytes[at + 12] & 0x0f));
    if (ip_version_of(frame) == 4) {
        frame.write16(frame.l3_offset + 2, static_cast<std::uint16_t>(frame.read16(frame.l3_offset + 2) + grow));
        fix_ipv4_header_checksum(frame);
    } else {
        frame.write16(frame.l3_offset + 4, static_cast<std::uint16_t>(frame.read16(frame.l3_offset + 4) + grow));
    }
    for (test::Layer& layer : frame.layers) {
        if (layer.name == "tcp") {
            layer.length += grow;
        } else if (layer.offset > at) {
            layer.offset += grow;
        }
    }
    fix_transport_checksum(frame);
}

Bytes FrameGenerator::random_bytes(std::size_t n) {
    Bytes out(n);
    for (auto& b : out) {
        b = byte();
    }
    return out;
}

GeneratedFrame FrameGenerator::next() {
    const std::uint32_t roll = below(100);
    if (roll < 12) {
        return random_frame();
    }
    GeneratedFrame out;
    Frame frame = valid_frame(out.description);
    if (roll >= 40) {
        out.description += "; corrupted: " + corrupt(frame);
    }
    out.bytes = std::move(frame.bytes);
    return out;
}

GeneratedFrame FrameGenerator::random_frame() {
    GeneratedFrame out;
    const std::uint32_t size_class = below(100);
    const std::size_t size = size_class < 50   ? range(14, 80)
                             : size_class < 85 ? range(14, 300)
                                               : range(14, 1600);
    out.bytes = random_bytes(size);
    if (chance(0.5)) {
        out.description = "random bytes";
        return out;
    }
    // Random bytes under plausible headers, so they get past the first checks.
    Bytes& b = out.bytes;
    std::size_t at = 12;
    const std::uint32_t tags = below(3);
    for (std::uint32_t i = 0; i < tags && at + 6 <= b.size(); ++i) {
        const std::uint16_t tpid = chance(0.5) ? test::kTpid8021q : test::kTpid8021ad;
        b[at] = static_cast<std::uint8_t>(tpid >> 8);
        b[at + 1] = static_cast<std::uint8_t>(tpid);
        at += 4;
    }
    const bool v6 = chance(0.4);
    if (at + 2 <= b.size()) {
        const std::uint16_t type = v6 ? test::kEtherTypeIpv6 : test::kEtherTypeIpv4;
        b[at] = static_cast<std::uint8_t>(type >> 8);
        b[at + 1] = static_cast<std::uint8_t>(type);
    }
    at += 2;
    const std::uint8_t proto = chance(0.5) ? kProtoUdp : kProtoTcp;
    std::size_t l4 = 0;
    if (!v6 && at + 20 <= b.size()) {
        const std::uint8_t ihl = chance(0.8) ? static_cast<std::uint8_t>(range(5, 8)) : static_cast<std::uint8_t>(below(16));
        b[at] = static_cast<std::uint8_t>(0x40 | ihl);
        b[at + 9] = proto;
        if (chance(0.7)) {
            b[at + 6] &= 0xe0;  // fragment offset 0
            b[at + 7] = 0;
        }
        l4 = at + ihl * 4u;
    } else if (v6 && at + 40 <= b.size()) {
        b[at] = static_cast<std::uint8_t>(0x60 | (b[at] & 0x0f));
        b[at + 6] = chance(0.7) ? proto : kInterestingNextHeaders[below(kInterestingNextHeaders.size())];
        l4 = at + 40;
    }
    if (l4 != 0 && l4 + 4 <= b.size()) {
        const auto& specs = fuzz_frontends();
        const FrontendSpec& spec = specs[below(static_cast<std::uint32_t>(specs.size()))];
        b[l4 + 2] = static_cast<std::uint8_t>(spec.port >> 8);
        b[l4 + 3] = static_cast<std::uint8_t>(spec.port);
    }
    out.description = "random bytes under plausible headers";
    return out;
}

Bytes FrameGenerator::payload_for(const FrontendSpec* fe, std::string& description) {
    auto plain = [&]() {
        const std::uint32_t c = below(100);
        const std::size_t n = c < 30 ? below(17) : c < 80 ? below(101) : c < 95 ? below(1501) : range(1400, 2400);
        return random_bytes(n);
    };
    if (fe == nullptr || (!fe->validate && !fe->route) || chance(0.2)) {
        description += ", random payload";
        return plain();
    }

    std::size_t need = 0;  // bytes the matches and the tag reach
    for (const MatchSpec& m : fe->matches) {
        need = std::max<std::size_t>(need, m.offset + m.value.size());
    }
    if (fe->route) {
        need = std::max<std::size_t>(need, fe->tag_offset + fe->tag_length);
    }
    std::size_t low = need;
    std::size_t high = need + 40;
    if (fe->validate) {
        low = std::max<std::size_t>(low, fe->min_payload);
        high = std::min<std::size_t>(std::max<std::size_t>(low, fe->max_payload), 2400);
    }
    std::size_t length = 0;
    const std::uint32_t c = below(100);
    if (c < 10 && fe->validate) {
        length = fe->min_payload > 0 ? fe->min_payload - 1u : 0;  // just too short
        description += ", payload one below the minimum";
    } else if (c < 18 && fe->validate) {
        length = std::min<std::size_t>(fe->max_payload + 1u, 2400);  // just too long
        description += ", payload one above the maximum";
    } else if (c < 26) {
        length = low;
        description += ", payload at the lowest valid length";
    } else if (c < 32 && need > 0) {
        length = need - 1;
        description += ", payload one short of the magic/tag";
    } else {
        length = low <= high ? range(static_cast<std::uint32_t>(low), static_cast<std::uint32_t>(high)) : low;
        description += ", payload in the window";
    }
    Bytes payload = random_bytes(length);

    auto put = [&payload](std::size_t offset, const Bytes& bytes) {
        for (std::size_t i = 0; i < bytes.size() && offset + i < payload.size(); ++i) {
            payload[offset + i] = bytes[i];
        }
    };
    if (fe->validate && chance(0.85)) {
        for (const MatchSpec& m : fe->matches) {
            Bytes value = m.value;
            for (std::size_t i = 0; i < value.size() && !m.mask.empty(); ++i) {
                value[i] = static_cast<std::uint8_t>((value[i] & m.mask[i]) | (byte() & ~m.mask[i]));
            }
            put(m.offset, value);
        }
        description += ", magic written";
        if (chance(0.1) && !fe->matches.empty()) {
            const MatchSpec& m = fe->matches[below(static_cast<std::uint32_t>(fe->matches.size()))];
            const std::size_t i = m.offset + below(static_cast<std::uint32_t>(m.value.size()));
            if (i < payload.size()) {
                payload[i] ^= static_cast<std::uint8_t>(1u << below(8));
                description += " (one bit flipped)";
            }
        }
    }
    if (fe->route) {
        const std::uint32_t t = below(100);
        if (t < 65 && !fe->tags.empty()) {
            put(fe->tag_offset, fe->tags[below(static_cast<std::uint32_t>(fe->tags.size()))].tag);
            description += ", known tag";
        } else if (t < 75) {
            put(fe->tag_offset, Bytes(fe->tag_length, 0));
            description += ", zero tag";
        } else {
            description += ", random tag";
        }
        // Routed frontends that also validate need their match to survive the tag.
        if (fe->validate && chance(0.9)) {
            for (const MatchSpec& m : fe->matches) {
                for (std::size_t i = 0; i < m.value.size() && m.offset + i < payload.size(); ++i) {
                    const std::uint8_t mask = m.mask.empty() ? 0xff : m.mask[i];
                    auto& b = payload[m.offset + i];
                    b = static_cast<std::uint8_t>((b & ~mask) | (m.value[i] & mask));
                }
            }
        }
    }
    return payload;
}

Frame FrameGenerator::valid_frame(std::string& description) {
    const auto& specs = fuzz_frontends();
    PacketBuilder b;
    if (chance(0.1)) {
        test::MacAddress dst{}, src{};
        for (auto& x : dst) x = byte();
        for (auto& x : src) x = byte();
        b.ethernet(dst, src);
    }
    const std::uint32_t v = below(100);
    const std::uint32_t vlan_count = v < 50 ? 0 : v < 78 ? 1 : v < 96 ? 2 : 3;  // 3: deeper than parsed
    for (std::uint32_t i = 0; i < vlan_count; ++i) {
        b.vlan(chance(0.5) ? test::kTpid8021q : test::kTpid8021ad, static_cast<std::uint16_t>(below(4096)),
               static_cast<std::uint8_t>(below(8)));
    }
    description = std::to_string(vlan_count) + " VLAN";

    // Target: a frontend, a backend, or anywhere.
    const FrontendSpec* fe = nullptr;
    std::uint8_t proto = kProtoUdp;
    std::uint16_t dport = 0;
    const std::uint32_t target = below(100);
    if (target < 72) {
        fe = &specs[below(static_cast<std::uint32_t>(specs.size()))];
        proto = fe->protocol;
        dport = fe->port;
    } else if (target < 82) {
        const FrontendSpec& other = specs[below(static_cast<std::uint32_t>(specs.size()))];
        dport = other.backends[below(static_cast<std::uint32_t>(other.backends.size()))].port;
        proto = chance(0.5) ? kProtoUdp : kProtoTcp;
    } else if (target < 87) {
        const FrontendSpec& other = specs[below(static_cast<std::uint32_t>(specs.size()))];
        dport = other.port;  // a frontend port under the other protocol
        proto = other.protocol == kProtoUdp ? kProtoTcp : kProtoUdp;
        fe = find_frontend(dport, proto);
    } else {
        dport = static_cast<std::uint16_t>(below(65536));
        proto = chance(0.5) ? kProtoUdp : kProtoTcp;
        fe = find_frontend(dport, proto);
    }
    const std::uint32_t kind_roll = below(100);
    const bool icmp = kind_roll < 6;
    const bool raw = kind_roll >= 6 && kind_roll < 9;

    const bool v6 = chance(0.45);
    const std::uint16_t sport = chance(0.2) ? static_cast<std::uint16_t>(40000 + below(4))
                                            : static_cast<std::uint16_t>(below(65536));
    bool fragment_first = false;
    if (!v6) {
        test::Ipv4Address src{10, 0, 0, static_cast<std::uint8_t>(below(4))};
        if (chance(0.5)) {
            for (auto& x : src) x = byte();
        }
        b.ipv4(src, {192, 0, 2, 1});
        description += ", IPv4";
        if (chance(0.25)) {
            const std::uint32_t n = range(1, 40);
            b.ipv4_options(chance(0.5) ? Bytes(n, test::kIpv4OptionNop) : random_bytes(n));
            description += " with " + std::to_string(n) + " option bytes";
        }
        if (chance(0.2)) {
            b.ipv4_dont_fragment();
        }
        b.ipv4_identification(static_cast<std::uint16_t>(below(65536)));
        const std::uint32_t frag = below(100);
        if (frag < 8) {
            b.ipv4_fragment(0, true);
            fragment_first = true;
            description += ", first fragment (MF)";
        } else if (frag < 12) {
            b.ipv4_fragment(static_cast<std::uint16_t>(range(1, 0x1fff)), chance(0.5));
            description += ", non-first fragment";
        }
    } else {
        test::Ipv6Address src{0x20, 0x01, 0x0d, 0xb8};
        src[15] = static_cast<std::uint8_t>(below(4));
        if (chance(0.5)) {
            for (auto& x : src) x = byte();
        }
        b.ipv6(src, test::ipv6_address("2001:db8::1"));
        description += ", IPv6";
        const std::uint32_t r = below(100);
        const std::uint32_t count = r < 55 ? 0 : r < 95 ? range(1, 4) : 5;
        for (std::uint32_t i = 0; i < count; ++i) {
            switch (below(5)) {
            case 0:
                b.ipv6_hop_by_hop(8 * range(1, 6));
                description += " +hop-by-hop";
                break;
            case 1:
                b.ipv6_routing(8 * range(1, 6));
                description += " +routing";
                break;
            case 2:
                b.ipv6_destination_options(8 * range(1, 6));
                description += " +dstopts";
                break;
            case 3:
                b.ipv6_authentication(8 * range(2, 8));
                description += " +AH";
                break;
            default:
                if (chance(0.85)) {
                    b.ipv6_fragment(0, chance(0.5), static_cast<std::uint32_t>(below(1u << 31)));
                    fragment_first = true;
                    description += " +fragment(first)";
                } else {
                    b.ipv6_fragment(static_cast<std::uint16_t>(range(1, 0x1fff)), chance(0.5));
                    description += " +fragment(non-first)";
                }
                break;
            }
        }
    }

    std::size_t transport_size = 0;
    if (icmp) {
        b.icmp(static_cast<std::uint8_t>(below(256)), static_cast<std::uint8_t>(below(4)),
               static_cast<std::uint32_t>(below(1u << 31)));
        b.payload(random_bytes(below(64)));
        transport_size = 8;
        description += ", ICMP";
    } else if (raw) {
        const std::uint8_t p = static_cast<std::uint8_t>(
            std::array<std::uint8_t, 5>{47, 50, 132, 136, 59}[below(5)]);
        b.raw_transport(p);
        b.payload(random_bytes(below(64)));
        description += ", raw protocol " + std::to_string(p);
    } else {
        const Bytes payload = payload_for(fe, description);
        transport_size = (proto == kProtoUdp ? 8 : 20) + payload.size();
        if (proto == kProtoUdp) {
            b.udp(sport, dport);
            if (!v6 && chance(0.1)) {
                b.without_udp_checksum();
                description += ", no UDP checksum";
            }
        } else {
            b.tcp(sport, dport);
        }
        description = std::string(proto == kProtoUdp ? "UDP" : "TCP") + " to " + std::to_string(dport) +
                      " (" + (fe ? fe->name : std::string("no frontend")) + "), " + description;
        b.payload(payload);
    }
    if (fragment_first && chance(0.5) && transport_size > 0) {
        const std::size_t keep = chance(0.8) ? range(8, static_cast<std::uint32_t>(transport_size))
                                             : below(static_cast<std::uint32_t>(transport_size + 1));
        b.truncate_transport_to(keep);
        description += ", fragment carries " + std::to_string(keep) + " transport bytes";
    }
    Frame frame = b.build();

    if (!icmp && !raw && proto == kProtoTcp && frame.l4_offset + 20 <= frame.bytes.size()) {
        static constexpr std::array<std::uint8_t, 8> kFlags{0x02, 0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x00};
        const std::uint8_t flags = chance(0.9) ? kFlags[below(kFlags.size())] : byte();
        set_tcp_flags(frame, flags);
        description += ", TCP flags " + std::to_string(flags);
        if (!fragment_first && chance(0.2)) {
            const std::size_t n = 4 * range(1, 10);
            Bytes options = chance(0.5) ? Bytes(n, 1) : random_bytes(n);
            add_tcp_options(frame, options);
            description += ", " + std::to_string(n) + " TCP option bytes";
        }
    }
    return frame;
}

std::string FrameGenerator::corrupt(Frame& frame) {
    Bytes& b = frame.bytes;
    const std::size_t l3 = frame.l3_offset;
    const std::size_t l4 = frame.l4_offset;
    const bool v6 = ip_version_of(frame) == 6;
    const bool has_udp = has_layer(frame, "udp");
    const bool has_tcp = has_layer(frame, "tcp");
    auto w16 = [&](std::size_t at, std::uint16_t value) {
        if (at + 2 <= b.size()) {
            frame.write16(at, value);
        }
    };
    auto r16 = [&](std::size_t at) -> std::uint16_t { return at + 2 <= b.size() ? frame.read16(at) : 0; };
    auto near = [&](std::uint16_t value) {
        const std::uint32_t c = below(100);
        if (c < 30) return static_cast<std::uint16_t>(below(65536));
        if (c < 40) return static_cast<std::uint16_t>(below(9));
        const int delta = static_cast<int>(range(1, 40)) * (chance(0.5) ? 1 : -1);
        return static_cast<std::uint16_t>(value + delta);
    };

    std::string what;
    bool checksum_touched = false;
    for (int attempt = 0; attempt < 8 && what.empty(); ++attempt) {
        switch (below(15)) {
        case 0: {  // IP length
            const std::size_t at = l3 + (v6 ? 4 : 2);
            w16(at, near(r16(at)));
            what = v6 ? "IPv6 payload_len" : "IPv4 tot_len";
            break;
        }
        case 1:  // IHL
            if (!v6) {
                b[l3] = static_cast<std::uint8_t>((b[l3] & 0xf0) | below(16));
                what = "IPv4 IHL";
            }
            break;
        case 2:  // version
            b[l3] = static_cast<std::uint8_t>((b[l3] & 0x0f) | (below(16) << 4));
            what = "IP version";
            break;
        case 3: {  // fragment fields
            if (!v6) {
                static constexpr std::array<std::uint16_t, 4> kFields{0x2000, 0x4000, 0x0001, 0x1fff};
                w16(l3 + 6, chance(0.5) ? kFields[below(4)] : static_cast<std::uint16_t>(below(65536)));
                what = "IPv4 fragment field";
            } else if (auto frags = layers_named(frame, {"fragment"}); !frags.empty()) {
                w16(frags[0]->offset + 2, chance(0.5) ? static_cast<std::uint16_t>(below(65536))
                                                      : static_cast<std::uint16_t>(range(1, 0x1fff) << 3));
                what = "IPv6 fragment offset";
            }
            break;
        }
        case 4: {  // protocol / next header
            const std::uint8_t value = chance(0.8) ? kInterestingNextHeaders[below(kInterestingNextHeaders.size())]
                                                   : byte();
            if (!v6) {
                b[l3 + 9] = value;
                what = "IPv4 protocol";
            } else {
                auto exts = layers_named(frame, {"hop-by-hop", "routing", "destination-options",
                                                 "authentication", "fragment"});
                const std::uint32_t pick = below(static_cast<std::uint32_t>(exts.size() + 1));
                const std::size_t at = pick == 0 ? l3 + 6 : exts[pick - 1]->offset;
                if (at < b.size()) {
                    b[at] = value;
                    what = "IPv6 next header";
                }
            }
            break;
        }
        case 5: {  // extension header length
            auto exts = layers_named(frame, {"hop-by-hop", "routing", "destination-options", "authentication"});
            if (v6 && !exts.empty()) {
                const std::size_t at = exts[below(static_cast<std::uint32_t>(exts.size()))]->offset + 1;
                if (at < b.size()) {
                    b[at] = chance(0.5) ? static_cast<std::uint8_t>(below(9)) : byte();
                    what = "IPv6 extension header length";
                }
            }
            break;
        }
        case 6:  // UDP length / TCP data offset
            if (has_udp && l4 + 6 <= b.size()) {
                w16(l4 + 4, near(r16(l4 + 4)));
                what = "UDP length";
            } else if (has_tcp && l4 + 13 <= b.size()) {
                b[l4 + 12] = static_cast<std::uint8_t>((b[l4 + 12] & 0x0f) | (below(16) << 4));
                what = "TCP data offset";
            }
            break;
        case 7: {  // VLAN nesting / EtherType
            auto tags = layers_named(frame, {"vlan"});
            const std::size_t last_type = tags.empty() ? 12 : tags.back()->offset + 2;
            const std::uint32_t c = below(5);
            const std::uint16_t vlan = chance(0.5) ? test::kTpid8021q : test::kTpid8021ad;
            if (c == 0) {
                w16(12, vlan);
                what = "outer EtherType made a VLAN TPID";
            } else if (c == 1) {
                w16(last_type, vlan);
                what = "innermost EtherType made a VLAN TPID (one tag deeper)";
            } else if (c == 2) {
                w16(last_type, static_cast<std::uint16_t>(below(65536)));
                what = "random EtherType";
            } else if (c == 3) {
                w16(last_type, v6 ? test::kEtherTypeIpv4 : test::kEtherTypeIpv6);
                what = "EtherType of the other IP version";
            } else if (!tags.empty()) {
                const std::size_t at = tags.size() == 1 ? 12 : tags[0]->offset + 2;
                w16(at, r16(at) == test::kTpid8021q ? test::kTpid8021ad : test::kTpid8021q);
                what = "VLAN TPID swapped";
            }
            break;
        }
        case 8:  // truncation
            if (b.size() > kMinFrame) {
                b.resize(range(static_cast<std::uint32_t>(kMinFrame), static_cast<std::uint32_t>(b.size() - 1)));
                what = "truncated to " + std::to_string(b.size()) + " bytes";
            }
            break;
        case 9: {  // destination port
            const auto& specs = fuzz_frontends();
            const FrontendSpec& other = specs[below(static_cast<std::uint32_t>(specs.size()))];
            w16(l4 + 2, chance(0.7) ? other.port : static_cast<std::uint16_t>(below(65536)));
            what = "destination port";
            break;
        }
        case 10: {  // payload byte
            auto payload = layers_named(frame, {"payload"});
            if (!payload.empty() && payload[0]->length > 0) {
                const std::size_t span = std::min<std::size_t>(payload[0]->length, 24);
                const std::size_t at = payload[0]->offset + below(static_cast<std::uint32_t>(span));
                if (at < b.size()) {
                    b[at] = byte();
                    what = "payload byte";
                }
            }
            break;
        }
        case 11: {  // any byte
            const std::size_t at = below(static_cast<std::uint32_t>(b.size()));
            b[at] = byte();
            what = "byte " + std::to_string(at);
            break;
        }
        case 12:  // trailer
            if (b.size() + 64 <= kMaxFrame) {
                const Bytes extra = random_bytes(range(1, 64));
                b.insert(b.end(), extra.begin(), extra.end());
                what = "trailing bytes";
            }
            break;
        case 13:  // transport checksum
            if (has_udp || has_tcp) {
                w16(l4 + (has_udp ? 6 : 16), chance(0.3) ? 0 : static_cast<std::uint16_t>(below(65536)));
                what = "transport checksum";
                checksum_touched = true;
            }
            break;
        default:  // source port
            w16(l4, static_cast<std::uint16_t>(below(65536)));
            what = "source port";
            break;
        }
    }
    if (what.empty()) {
        what = "nothing applicable";
    }
    if (!checksum_touched && chance(0.4) && fix_transport_checksum(frame)) {
        what += " (transport checksum fixed up)";
    }
    return what;
}

}  // namespace portmux::fuzz
