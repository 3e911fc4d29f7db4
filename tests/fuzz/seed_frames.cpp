#include "seed_frames.hpp"

#include "checksum_reference.hpp"
#include "frame_generator.hpp"
#include "packet_builder.hpp"

namespace portmux::fuzz {
namespace {

using test::Frame;
using test::PacketBuilder;

PacketBuilder v4() {
    PacketBuilder b;
    b.ipv4(test::ipv4_address("10.0.0.1"), test::ipv4_address("192.0.2.1"));
    return b;
}

PacketBuilder v6() {
    PacketBuilder b;
    b.ipv6(test::ipv6_address("2001:db8::2"), test::ipv6_address("2001:db8::1"));
    return b;
}

Bytes text(const std::string& s) {
    return Bytes(s.begin(), s.end());
}

// Sets the two filler bytes at `at` (even offset inside the UDP payload) so
// the frame's correct UDP checksum is `want`.
void force_udp_checksum(Frame& f, std::size_t at, std::uint16_t want) {
    f.write16(at, 0);
    const std::uint16_t sum = test::transport_sum_without_checksum(f.bytes);  // with filler 0
    // want = ~(sum + filler)  =>  filler = ~want - sum (one's complement)
    const std::uint16_t target = static_cast<std::uint16_t>(~want);
    const std::uint32_t filler = target >= sum ? target - sum : 0xffffu - (sum - target);
    f.write16(at, static_cast<std::uint16_t>(filler));
    f.set_udp_checksum(want);
}

Bytes concat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

}  // namespace

std::vector<SeedFrame> seed_frames() {
    std::vector<SeedFrame> seeds;
    auto add = [&seeds](std::string name, std::string comment, Bytes bytes) {
        seeds.push_back({std::move(name), std::move(comment), std::move(bytes)});
    };
    auto add_frame = [&add](std::string name, std::string comment, const Frame& frame) {
        add(std::move(name), std::move(comment), frame.bytes);
    };

    // ---- plain round robin, parser corners
    add_frame("udp4-rr", "UDP/IPv4 to 9000 (round robin): forwarded to 9001, 9002 or 9003",
              v4().udp(40000, 9000).payload(text("hello")).build());
    add_frame("udp6-rr", "UDP/IPv6 to 9000 (round robin): forwarded",
              v6().udp(40000, 9000).payload(text("hello")).build());
    add_frame("udp4-qinq-options", "802.1ad + 802.1Q tags, 40 bytes of IPv4 options, UDP to 9800: forwarded",
              v4().vlan(test::kTpid8021ad, 100)
                  .vlan(test::kTpid8021q, 200)
                  .ipv4_options(Bytes(40, test::kIpv4OptionNop))
                  .udp(40000, 9800)
                  .payload(text("qinq"))
                  .build());
    {
        PacketBuilder b = v4();
        b.vlan(test::kTpid8021q, 1).vlan(test::kTpid8021q, 2).vlan(test::kTpid8021q, 3);
        add_frame("vlan3-not-parsed", "three VLAN tags: deeper than parsed, passes unchanged",
                  b.udp(40000, 9000).payload(text("deep")).build());
    }
    add_frame("udp6-ext4", "IPv6 with hop-by-hop, routing, destination options, AH: 4 extension headers, UDP to 9000: forwarded",
              v6().ipv6_hop_by_hop(16)
                  .ipv6_routing(8)
                  .ipv6_destination_options(24)
                  .ipv6_authentication(24)
                  .udp(40000, 9000)
                  .payload(text("four"))
                  .build());
    add_frame("udp6-ext5-too-deep", "IPv6 with 5 extension headers: too deep, passes unchanged",
              v6().ipv6_hop_by_hop()
                  .ipv6_routing()
                  .ipv6_destination_options()
                  .ipv6_authentication()
                  .ipv6_destination_options()
                  .udp(40000, 9000)
                  .payload(text("five"))
                  .build());
    add_frame("udp6-atomic-fragment", "IPv6 fragment header, offset 0, M=0, UDP to 9000: forwarded",
              v6().ipv6_fragment(0, false).udp(40000, 9000).payload(text("atomic")).build());
    add_frame("udp6-nonfirst-fragment", "IPv6 fragment offset 10: no ports, passes unchanged",
              v6().ipv6_fragment(10, true).udp(40000, 9000).payload(text("later")).build());
    add_frame("udp4-nonfirst-fragment", "IPv4 fragment offset 100: no ports, passes unchanged",
              v4().ipv4_fragment(100, false).udp(40000, 9000).payload(text("later")).build());
    add_frame("udp4-first-fragment", "IPv4 first fragment (MF, offset 0) with 16 of 40 transport bytes: forwarded, checksum adjusted incrementally",
              v4().ipv4_fragment(0, true)
                  .udp(40000, 9000)
                  .payload(Bytes(32, 0x5a))
                  .truncate_transport_to(16)
                  .build());
    add_frame("udp4-no-checksum", "UDP/IPv4 with checksum 0 (none): forwarded, checksum stays 0",
              v4().udp(40000, 9000).payload(text("nocsum")).without_udp_checksum().build());
    {
        // IPv6 UDP whose sum makes a checksum field of 0 verify: the data
        // path treats 0 as "none" and keeps it (see README.md).
        Frame f = v6().udp(40000, 9000).payload(Bytes{'z', 'e', 'r', 'o', 0, 0}).build();
        f.set_udp_checksum(0);
        const std::uint16_t sum = test::transport_sum_without_checksum(f.bytes);
        const std::uint16_t fill = static_cast<std::uint16_t>(0xffff - sum);
        f.write16(f.bytes.size() - 2, fill);
        add_frame("udp6-zero-checksum", "UDP/IPv6 with checksum field 0 and a sum of 0xffff: forwarded, the data path keeps 0", f);
    }
    {
        Frame f = v4().udp(40000, 9000).payload(text("short-ip")).build();
        f.write16(f.l3_offset + 2, 20 + 2);  // IP says 2 bytes of UDP follow
        add_frame("udp4-iplen-inside-udp-header",
                  "IPv4 tot_len covers only 2 bytes of the UDP header (the frame has all 8): the transport "
                  "header is not inside the IP packet, so it is not ours and passes unchanged",
                  f);
    }
    {
        Frame f = v4().udp(40000, 9000).payload(text("tiny")).build();
        f.write16(f.l3_offset + 2, 10);
        add_frame("udp4-iplen-below-header", "IPv4 tot_len 10 (< IHL*4): passes unchanged", f);
    }
    {
        Frame f = v4().udp(40000, 9000).payload(text("ihl")).build();
        f.bytes[f.l3_offset] = 0x44;
        add_frame("udp4-ihl4", "IPv4 IHL 4: passes unchanged", f);
    }
    {
        Frame f = v4().udp(40000, 9000).payload(text("ver")).build();
        f.bytes[f.l3_offset] = 0x55;
        add_frame("ip-version5", "IPv4 EtherType with version 5: passes unchanged", f);
    }
    {
        Frame f = v6().udp(40000, 9000).payload({}).build();
        f.write16(f.l3_offset + 4, 0);
        add_frame("udp6-payload-len-0", "IPv6 payload_len 0 (jumbogram-style): the UDP header is not inside the stated payload, so it is not ours and passes unchanged", f);
    }
    {
        Frame f = v6().ipv6_hop_by_hop(16).udp(40000, 9000).payload(text("x")).build();
        f.write16(f.l3_offset + 4, 8);
        add_frame("udp6-payload-len-inside-ext", "IPv6 payload_len shorter than its extension headers: passes unchanged", f);
    }
    {
        Frame f = v4().udp(40000, 9000).payload(text("cut")).build();
        f.bytes.resize(f.l4_offset + 6);
        add_frame("udp4-truncated-header", "frame ends inside the UDP header: passes unchanged", f);
    }
    add(std::string("arp"), "ARP: passes unchanged",
        concat(Bytes{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06}, Bytes(28, 0)));
    add("runt-ipv4", "an Ethernet header with EtherType IPv4 and nothing after it: passes unchanged",
        Bytes{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00});
    add_frame("icmp4", "ICMP echo: passes unchanged", v4().icmp(8, 0, 0x12340001).payload(text("ping")).build());
    add_frame("icmp6", "ICMPv6 echo: passes unchanged", v6().icmp(128, 0, 0x12340001).payload(text("ping")).build());
    add_frame("udp-to-backend", "UDP to a backend port (9001): passes unchanged",
              v4().udp(40000, 9001).payload(text("direct")).build());
    add_frame("tcp-to-udp-frontend", "TCP to 9500, a UDP-only frontend port: passes unchanged",
              v4().tcp(40000, 9500).payload(text("tcp")).build());

    // ---- TCP
    {
        Frame f = v4().tcp(40001, 9000).build();
        set_tcp_flags(f, 0x02);
        add_frame("tcp4-syn", "TCP SYN to 9000/tcp: forwarded to 9201 or 9202", f);
    }
    {
        Frame f = v6().tcp(40001, 9000).payload(text("data")).build();
        add_tcp_options(f, Bytes{1, 1, 1, 1, 2, 4, 5, 0xb4});
        add_frame("tcp6-ack-options", "TCP/IPv6 PSH|ACK with 8 option bytes to 9000/tcp: forwarded", f);
    }
    {
        Frame f = v4().tcp(40001, 9400).build();
        set_tcp_flags(f, 0x02);
        add_frame("tcp-validate-syn", "TCP SYN without payload to 9400 (validate): not judged, forwarded", f);
    }
    add_frame("tcp-validate-ok", "TCP to 9400 with 0xcafe at payload offset 2: forwarded",
              v4().tcp(40001, 9400).payload(Bytes{'h', 'i', 0xca, 0xfe, 1}).build());
    add_frame("tcp-validate-mismatch", "TCP to 9400 without the magic: drop magic_mismatch",
              v4().tcp(40001, 9400).payload(Bytes{'h', 'i', 0xca, 0xff, 1}).build());
    {
        Frame f = v4().tcp(40001, 9400).payload(Bytes{'h', 'i', 0xca, 0xfe, 1}).build();
        f.bytes[f.l4_offset + 12] = 0xf0 | (f.bytes[f.l4_offset + 12] & 0x0f);
        add_frame("tcp-validate-doff15", "TCP to 9400 with data offset 15 (60 bytes > L4 length): drop too_short", f);
    }
    {
        Frame f = v4().tcp(40001, 9000).payload(Bytes{'h', 'i'}).build();
        f.bytes[f.l4_offset + 12] = 0x20 | (f.bytes[f.l4_offset + 12] & 0x0f);
        add_frame("tcp-doff2-no-validate", "TCP to 9000/tcp with data offset 2: no validate block, forwarded anyway", f);
    }

    // ---- UDP validate (9500: 4..64 bytes, "PMUX" at 0, high nibble 1 at 6)
    const Bytes good{'P', 'M', 'U', 'X', 0, 0, 0x1f, 'o', 'k'};
    add_frame("validate-ok", "UDP to 9500 with magic and nibble: forwarded",
              v4().udp(40000, 9500).payload(good).build());
    add_frame("validate-too-short", "UDP to 9500 with 3 payload bytes: drop too_short",
              v4().udp(40000, 9500).payload(text("PMU")).build());
    add_frame("validate-too-long", "UDP to 9500 with 65 payload bytes: drop too_long",
              v4().udp(40000, 9500).payload(concat(good, Bytes(56, 'x'))).build());
    add_frame("validate-max", "UDP to 9500 with exactly 64 payload bytes: forwarded",
              v6().udp(40000, 9500).payload(concat(good, Bytes(55, 'x'))).build());
    add_frame("validate-magic-mismatch", "UDP to 9500 with \"PMUY\": drop magic_mismatch",
              v4().udp(40000, 9500).payload(Bytes{'P', 'M', 'U', 'Y', 0, 0, 0x1f}).build());
    add_frame("validate-nibble-mismatch", "UDP to 9500, byte 6 is 0x2f (mask 0xf0 wants 0x1_): drop magic_mismatch",
              v4().udp(40000, 9500).payload(Bytes{'P', 'M', 'U', 'X', 0, 0, 0x2f}).build());
    add_frame("validate-match-beyond-payload", "UDP to 9500 with 5 payload bytes: the nibble at 6 is missing, drop magic_mismatch",
              v4().udp(40000, 9500).payload(text("PMUX!")).build());
    {
        Frame f = v4().udp(40000, 9500).payload(good).build();
        f.write16(f.l4_offset + 4, 7);
        fix_transport_checksum(f);
        add_frame("validate-udp-len-7", "UDP to 9500 with UDP length 7: drop too_short", f);
    }
    {
        Frame f = v4().udp(40000, 9500).payload(good).build();
        f.write16(f.l4_offset + 4, static_cast<std::uint16_t>(8 + good.size() + 1));
        add_frame("validate-udp-len-beyond-ip", "UDP to 9500 whose UDP length exceeds the IP-stated L4 length: drop too_short", f);
    }
    {
        Frame f = v4().udp(40000, 9500).payload(good).build();
        f.write16(f.l3_offset + 2, static_cast<std::uint16_t>(f.read16(f.l3_offset + 2) + 100));
        f.write16(f.l4_offset + 4, static_cast<std::uint16_t>(f.read16(f.l4_offset + 4) + 100));
        add_frame("validate-lengths-beyond-frame",
                  "UDP to 9500, IP and UDP lengths claim 100 bytes the frame lacks: the window still "
                  "passes (109 > 64: drop too_long)", f);
    }
    {
        Bytes payload(1500, '.');
        const Bytes magic = text("far-away-magic!!");
        std::copy(magic.begin(), magic.end(), payload.begin() + 1484);
        add_frame("validate-far-ok", "UDP to 9900, 1500-byte payload with the match ending at offset 1500: forwarded",
                  v4().udp(40000, 9900).payload(payload).build());
        Frame f = v4().udp(40000, 9900).payload(payload).build();
        f.bytes.resize(f.bytes.size() - 10);
        add_frame("validate-far-truncated",
                  "UDP to 9900 whose headers promise the magic but the frame ends 10 bytes early: the load "
                  "fails, drop magic_mismatch", f);
    }

    // ---- routes (9600: 4-byte tag at 2; AAAA->9601 BBBB->9602 CCCC->9603 (weight 0) 0000->9602)
    add_frame("route-aaaa", "UDP to 9600 with tag AAAA: forwarded to 9601",
              v4().udp(40000, 9600).payload(text("..AAAA..")).build());
    add_frame("route-cccc-weight0", "UDP to 9600 with tag CCCC: forwarded to 9603, a weight-0 route-only backend",
              v6().udp(40000, 9600).payload(text("..CCCC")).build());
    {
        // 9600 -> 9602. The data path sums the wire bytes as host-order
        // words (byte-order independent, but the carries are not): on a
        // little-endian host ~check + ~0x8025 + 0x8225 = ~check + 0x101ff,
        // so a check of ff 01 on the wire (~0x01ff = 0xfe00) leaves 0x10000
        // after the first fold: the second fold matters. 0x0001 is the same
        // corner on a big-endian host.
        for (const std::uint16_t check : {std::uint16_t{0xff01}, std::uint16_t{0x0001}}) {
            Frame f = v4().udp(40000, 9600).payload(text("..BBBB..")).build();
            force_udp_checksum(f, f.l4_offset + 8 + 6, check);
            add_frame(check == 0xff01 ? "route-checksum-double-fold" : "route-checksum-double-fold-be",
                      "UDP to 9600 with tag BBBB (-> 9602) and a checksum whose incremental update "
                      "needs its second carry fold",
                      f);
        }
        Frame g = v4().udp(40000, 9600).payload(text("..BBBB..")).build();
        force_udp_checksum(g, g.l4_offset + 8 + 6, 0x0002);
        add_frame("route-checksum-to-ffff",
                  "UDP to 9600 with tag BBBB (-> 9602) and checksum 0x0002: the new checksum computes to "
                  "0 and goes out as 0xffff", g);
    }
    add_frame("route-zero-tag", "UDP to 9600 with an all-zero tag: forwarded to 9602",
              v4().udp(40000, 9600).payload(Bytes{1, 2, 0, 0, 0, 0, 3}).build());
    add_frame("route-unknown", "UDP to 9600 with tag DDDD: drop unknown_tag",
              v4().udp(40000, 9600).payload(text("..DDDD")).build());
    add_frame("route-short", "UDP to 9600 with 5 payload bytes (tag needs 6): drop too_short",
              v4().udp(40000, 9600).payload(text("..AAA")).build());
    {
        Frame f = v4().udp(40000, 9600).payload(text("..AAAA")).build();
        f.write16(f.l4_offset + 4, 4);
        add_frame("route-udp-len-4", "UDP to 9600 with UDP length 4: drop too_short", f);
    }
    // 9650: no listed backend, tags "600"->5001 and "601"->5002 at offset 20, unknown tags drop.
    add_frame("route-only-known", "UDP to 9650 with tag \"601\" at offset 20: forwarded to 5002 (a route-only backend)",
              v4().udp(40000, 9650).payload(text("twenty bytes of head601tail")).build());
    add_frame("route-only-unknown", "UDP to 9650 with tag \"999\": drop unknown_tag (nothing to round robin to)",
              v6().udp(40000, 9650).payload(text("twenty bytes of head999")).build());
    // 9700: validate 2..1480, (byte 0 & 0xc0) == 0x80; 16-byte tag at 0; unknown tags round robin.
    add_frame("route-rr-known", "UDP to 9700 with tag \"\\x81 tenant-number1\": forwarded to 9703",
              v4().udp(40000, 9700).payload(text("\x81 tenant-number1 and more")).build());
    add_frame("route-rr-unknown", "UDP to 9700 with an unknown 16-byte tag: round robin",
              v6().udp(40000, 9700).payload(text("\x81 tenant-number9")).build());
    add_frame("route-rr-short-tag", "UDP to 9700 with 10 payload bytes (tag needs 16): drop too_short",
              v4().udp(40000, 9700).payload(text("\x81 tenant-n")).build());
    add_frame("route-rr-magic-mismatch", "UDP to 9700 whose first byte fails the mask: drop magic_mismatch",
              v4().udp(40000, 9700).payload(text("\x41 tenant-number1")).build());

    // ---- first fragments to validate/route frontends: judged by the UDP length
    // and their own bytes; a match or tag past those bytes drops the datagram.
    add_frame("route-first-fragment-known", "IPv4 first fragment to 9600 holding 8 of 40 payload bytes, tag AAAA in them: forwarded to 9601",
              v4().ipv4_fragment(0, true).udp(40000, 9600).payload(concat(text("..AAAA.."), Bytes(32, 0x5a)))
                  .truncate_transport_to(16).build());
    add_frame("route-first-fragment-tag-beyond", "IPv4 first fragment to 9600 holding 4 payload bytes, the tag ends at 6: drop beyond_first_fragment",
              v4().ipv4_fragment(0, true).udp(40000, 9600).payload(concat(text("..AAAA.."), Bytes(32, 0x5a)))
                  .truncate_transport_to(12).build());
    add_frame("route6-first-fragment-known", "IPv6 first fragment (M=1) to 9600 holding 8 payload bytes, tag BBBB in them: forwarded to 9602",
              v6().ipv6_fragment(0, true).udp(40000, 9600).payload(concat(text("..BBBB.."), Bytes(32, 0x5a)))
                  .truncate_transport_to(16).build());
    add_frame("validate-first-fragment-too-long", "IPv4 first fragment to 9500 (window 4..64) of a 100-byte datagram with PMUX in its 16 bytes: drop too_long by the UDP length",
              v4().ipv4_fragment(0, true).udp(40000, 9500).payload(concat(Bytes{'P', 'M', 'U', 'X', 0, 0, 0x10}, Bytes(93, 0)))
                  .truncate_transport_to(24).build());
    add_frame("validate-far-first-fragment-beyond", "IPv4 first fragment to 9900 of a 1600-byte datagram holding 1000 payload bytes, match ends at 1500: drop beyond_first_fragment",
              v4().ipv4_fragment(0, true).udp(40000, 9900).payload(Bytes(1600, 0x21))
                  .truncate_transport_to(1008).build());
    add_frame("route-rr-first-fragment-known", "IPv4 first fragment to 9700 with the 16-byte tag in its 20 payload bytes: forwarded to 9703",
              v4().ipv4_fragment(0, true).udp(40000, 9700).payload(text("\x81 tenant-number1 and more and more"))
                  .truncate_transport_to(28).build());

    // ---- flow affinity
    add_frame("udp-flow", "UDP to 9100 (flow affinity): forwarded to one of 9101..9103",
              v4().udp(40002, 9100).payload(text("flow")).build());
    add_frame("udp6-flow", "UDP/IPv6 to 9100 (flow affinity): forwarded",
              v6().udp(40002, 9100).payload(text("flow")).build());
    return seeds;
}

}  // namespace portmux::fuzz
