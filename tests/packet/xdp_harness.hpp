// Runs the portmux XDP program on crafted frames with BPF_PROG_TEST_RUN,
// no interface needed, and the Catch2 helpers the packet tests share.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "config.hpp"
#include "maps.hpp"
#include "packet_builder.hpp"

struct portmux_bpf;

namespace portmux::test {

// XDP actions (enum xdp_action), spelled out so tests read plainly.
inline constexpr int kXdpAborted = 0;
inline constexpr int kXdpDrop = 1;
inline constexpr int kXdpPass = 2;

// The result of one program run: its action and the frame it left.
struct XdpRun {
    int action = -1;
    Bytes output;
};

// The embedded BPF object, opened and loaded; destroyed with its holder.
class LoadedDataPath {
public:
    // Throws std::system_error (with the verifier log on stderr).
    LoadedDataPath();

    int program_fd() const;
    DataPathMaps maps() const;

    // Programs the maps through the loader's own code path, then zeroes
    // the per-CPU state (round-robin cursors) of every installed frontend:
    // write_config keeps the state of a frontend that stays, and a test
    // wants its sequence to start at the first backend.
    void configure(const Config& config) const;

    // Sets the round-robin cursor of `frontend_port`/UDP on every CPU, as a
    // config reload leaves it behind.
    void set_round_robin_cursor(std::uint16_t frontend_port, std::uint32_t cursor) const;

    // Runs the program once on `frame` on the calling CPU. Throws
    // std::system_error when the kernel refuses the run.
    XdpRun run(std::span<const std::uint8_t> frame) const;

private:
    struct Destroyer {
        void operator()(portmux_bpf* skeleton) const noexcept;
    };
    std::unique_ptr<portmux_bpf, Destroyer> skeleton_;
};

// The process-wide program: loading (and verifying) once keeps the suite
// fast; each test configures the maps it needs, which also resets cursors.
const LoadedDataPath& data_path();

// A config of UDP frontends, per-packet round robin over equally weighted
// backends: {frontend port, {backend ports...}}, ...
Config udp_config(std::initializer_list<std::pair<std::uint16_t, std::vector<std::uint16_t>>> frontends);

// `input` as the data path must leave it after sending it to `backend`:
// destination port replaced and the UDP checksum equal to a full
// recomputation by the reference (a zero IPv4 UDP checksum stays zero).
Bytes expected_rewrite(const Frame& input, std::uint16_t backend);

// Runs `input` and requires XDP_PASS with the frame byte for byte intact.
void require_passes_unchanged(const Frame& input);

// Runs `input` and requires XDP_PASS with exactly expected_rewrite(input,
// backend), and a checksum the reference verifies.
void require_rewritten_to(const Frame& input, std::uint16_t backend);

// Catch2 matcher: byte-for-byte frame equality, describing the first
// difference.
class FrameEquals : public Catch::MatcherBase<Bytes> {
public:
    explicit FrameEquals(Bytes expected) : expected_(std::move(expected)) {}
    bool match(const Bytes& actual) const override;
    std::string describe() const override;

private:
    Bytes expected_;
    mutable std::string difference_;
};

}  // namespace portmux::test

// Frames print as hex dumps rather than as lists of characters.
namespace Catch {
template <>
struct StringMaker<std::vector<std::uint8_t>> {
    static std::string convert(const std::vector<std::uint8_t>& bytes) {
        return "\n" + portmux::test::hex_dump(bytes) + "\n";
    }
};
}  // namespace Catch
