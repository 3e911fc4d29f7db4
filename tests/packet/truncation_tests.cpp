// Frames cut short at every byte inside every header: the data path must
// never read past the end, never rewrite, and always pass the frame on.
#include <catch2/catch.hpp>

#include <cerrno>
#include <string>
#include <system_error>

#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux::test;

namespace {

constexpr std::size_t kEthernetHeaderSize = 14;

// The header a cut at `size` bytes falls in.
std::string layer_containing(const Frame& frame, std::size_t size) {
    for (const Layer& layer : frame.layers) {
        if (size >= layer.offset && size < layer.end()) {
            return layer.name + " (byte " + std::to_string(size - layer.offset) + " of " +
                   std::to_string(layer.length) + ")";
        }
    }
    return "?";
}

// Cuts `frame` at every size from 0 up to the last byte of its UDP header.
void require_every_cut_passes_unchanged(const Frame& frame) {
    const std::size_t headers_end = frame.layer("udp").end();
    for (std::size_t size = 0; size < headers_end; ++size) {
        INFO("frame cut to " << size << " bytes, inside " << layer_containing(frame, size));
        const Bytes cut(frame.bytes.begin(), frame.bytes.begin() + static_cast<std::ptrdiff_t>(size));
        if (size < kEthernetHeaderSize) {
            // BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet
            // header (EINVAL), so the program cannot be shown those; a NIC
            // does not deliver them either.
            try {
                data_path().run(cut);
                FAIL("the kernel ran the program on a " << size << "-byte frame");
            } catch (const std::system_error& error) {
                REQUIRE(error.code().value() == EINVAL);
            }
            continue;
        }
        const XdpRun run = data_path().run(cut);
        REQUIRE(run.action == kXdpPass);
        REQUIRE_THAT(run.output, FrameEquals(cut));
    }
}

}  // namespace

TEST_CASE("frames cut inside any header pass unchanged", "[truncated]") {
    configure_standard_frontend();
    PacketBuilder builder;
    SECTION("IPv4, IHL 5, untagged") {
        builder = ipv4_client();
    }
    SECTION("IPv4, IHL 15, 802.1ad + 802.1Q") {
        builder = ipv4_client().vlan(kTpid8021ad, 10).vlan(kTpid8021q, 20).ipv4_options(Bytes(40, kIpv4OptionNop));
    }
    SECTION("IPv4, IHL 8, 802.1Q") {
        builder = ipv4_client().vlan(kTpid8021q, 10).ipv4_options(Bytes(12, kIpv4OptionNop));
    }
    SECTION("IPv4 first fragment") {
        builder = ipv4_client().ipv4_fragment(0, true);
    }
    SECTION("IPv6, untagged") {
        builder = ipv6_client();
    }
    SECTION("IPv6, 802.1Q, hop-by-hop + routing + destination options + first fragment") {
        builder = ipv6_client()
                      .vlan(kTpid8021q, 30)
                      .ipv6_hop_by_hop(16)
                      .ipv6_routing()
                      .ipv6_destination_options(24)
                      .ipv6_fragment(0, true);
    }
    SECTION("IPv6, 802.1ad + 802.1Q, AH") {
        builder = ipv6_client().vlan(kTpid8021ad, 10).vlan(kTpid8021q, 20).ipv6_authentication(32);
    }
    const Frame frame = builder.udp(kClientPort, kFrontendPort).payload(counting_payload(24)).build();

    require_every_cut_passes_unchanged(frame);

    // Nothing above moved the cursor, and the whole frame is balanced: the
    // cuts passed because they were cut, not because the frame never matched.
    const XdpRun whole = data_path().run(frame.bytes);
    REQUIRE(whole.action == kXdpPass);
    Frame output = frame;
    output.bytes = whole.output;
    REQUIRE(output.destination_port() == kFirstBackend);
}
