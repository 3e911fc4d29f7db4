// Frames for the packet fuzzer: random bytes, valid frames from the
// tests/support builder aimed at the fuzz frontends (and elsewhere), and
// valid frames with exactly one field corrupted.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "fuzz_frontends.hpp"
#include "packet_builder.hpp"

namespace portmux::fuzz {

// BPF_PROG_TEST_RUN takes frames of 14 bytes (an Ethernet header) up to a
// page minus headroom and tailroom; stay well inside.
inline constexpr std::size_t kMinFrame = 14;
inline constexpr std::size_t kMaxFrame = 3000;

struct GeneratedFrame {
    Bytes bytes;
    std::string description;  // how it was made, for regression files
};

class FrameGenerator {
public:
    explicit FrameGenerator(std::uint64_t seed) : rng_(seed) {}

    // One frame of the mix: ~12% random bytes, ~28% valid, ~60% valid with
    // one corruption.
    GeneratedFrame next();

    // A valid frame (no corruption) and what it is.
    test::Frame valid_frame(std::string& description);

private:
    std::uint32_t below(std::uint32_t bound) { return std::uniform_int_distribution<std::uint32_t>(0, bound - 1)(rng_); }
    std::uint32_t range(std::uint32_t low, std::uint32_t high) {
        return std::uniform_int_distribution<std::uint32_t>(low, high)(rng_);
    }
    bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
    std::uint8_t byte() { return static_cast<std::uint8_t>(below(256)); }
    Bytes random_bytes(std::size_t n);

    GeneratedFrame random_frame();
    Bytes payload_for(const FrontendSpec* frontend, std::string& description);
    std::string corrupt(test::Frame& frame);

    std::mt19937_64 rng_;
};

// Sets the TCP flags byte / inserts TCP options after a built TCP header,
// fixing IP lengths and the checksums (the committed builder has neither).
void set_tcp_flags(test::Frame& frame, std::uint8_t flags);
void add_tcp_options(test::Frame& frame, const Bytes& options);  // size a multiple of 4, <= 40

// Recomputes the transport checksum with the reference if it can; false when
// the frame has no complete datagram to sum.
bool fix_transport_checksum(test::Frame& frame);

}  // namespace portmux::fuzz
