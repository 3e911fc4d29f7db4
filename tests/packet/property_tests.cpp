// Randomized property test: whatever the addresses, ports, payload and
// encapsulation, the rewritten checksum equals a full recomputation.
//
// The seed is fixed so runs are reproducible; set PORTMUX_TEST_SEED
// (decimal or 0x-hex) to explore others. It is printed on every run.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

#include "checksum_reference.hpp"
#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux::test;

namespace {

constexpr std::uint64_t kDefaultSeed = 0x5eed'9875'2026ULL;
constexpr int kDatagrams = 10'000;

std::uint64_t test_seed() {
    if (const char* text = std::getenv("PORTMUX_TEST_SEED"); text && *text) {
        return std::stoull(text, nullptr, 0);
    }
    return kDefaultSeed;
}

// SplitMix64: tiny, and unlike std::uniform_int_distribution it yields the
// same numbers with every standard library, so a seed means the same
// packets everywhere.
class Random {
public:
    explicit Random(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    // Uniform in [0, bound]; the modulo bias is negligible for small bounds.
    std::uint64_t up_to(std::uint64_t bound) { return next() % (bound + 1); }
    bool coin() { return next() & 1; }
    template <typename Array>
    Array fill() {
        Array bytes{};
        for (auto& byte : bytes) {
            byte = static_cast<std::uint8_t>(next());
        }
        return bytes;
    }

private:
    std::uint64_t state_;
};

Frame random_datagram(Random& random) {
    PacketBuilder builder;
    const std::uint64_t tags = random.up_to(2);  // 0, 1 or 2; the first may be either TPID
    for (std::uint64_t tag = 0; tag < tags; ++tag) {
        const bool outer = tag == 0;
        builder.vlan(outer && random.coin() ? kTpid8021ad : kTpid8021q,
                     static_cast<std::uint16_t>(random.up_to(4095)));
    }
    if (random.coin()) {
        builder.ipv4(random.fill<Ipv4Address>(), random.fill<Ipv4Address>());
        if (random.up_to(3) == 0) {  // a quarter carry options
            builder.ipv4_options(Bytes(4 * random.up_to(10), kIpv4OptionNop));
        }
    } else {
        builder.ipv6(random.fill<Ipv6Address>(), random.fill<Ipv6Address>());
        if (random.up_to(3) == 0) {
            builder.ipv6_hop_by_hop(8 * (1 + random.up_to(2)));
        }
    }
    Bytes payload(random.up_to(1472));
    for (auto& byte : payload) {
        byte = static_cast<std::uint8_t>(random.next());
    }
    const auto source_port = static_cast<std::uint16_t>(1 + random.up_to(65534));
    return builder.udp(source_port, kFrontendPort).payload(std::move(payload)).build();
}

}  // namespace

TEST_CASE("property: 10,000 random datagrams come out with a fully recomputed checksum", "[property]") {
    const std::uint64_t seed = test_seed();
    std::cout << "property test seed: PORTMUX_TEST_SEED=0x" << std::hex << seed << std::dec << '\n';
    configure_standard_frontend();

    Random random(seed);
    for (int i = 0; i < kDatagrams; ++i) {
        const Frame input = random_datagram(random);
        const std::uint16_t backend = kBackendPorts[static_cast<std::size_t>(i) % kBackendPorts.size()];
        INFO("PORTMUX_TEST_SEED=0x" << std::hex << seed << std::dec << ", datagram " << i << " of "
                                    << input.bytes.size() << " bytes, layers " << input.layers.size());
        REQUIRE(transport_checksum_verifies(input.bytes));

        const XdpRun run = data_path().run(input.bytes);
        REQUIRE(run.action == kXdpPass);
        REQUIRE_THAT(run.output, FrameEquals(expected_rewrite(input, backend)));
        REQUIRE(transport_checksum_verifies(run.output));
        Frame output = input;
        output.bytes = run.output;
        REQUIRE(output.udp_checksum() == recompute_transport_checksum(run.output));
    }
}
