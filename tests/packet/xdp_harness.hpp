// Runs the portmux XDP program on crafted frames with BPF_PROG_TEST_RUN,
// no interface needed, and the Catch2 helpers the packet tests share.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <bpf/bpf.h>
#include <catch2/catch.hpp>

#include "config.hpp"
#include "maps.hpp"
#include "packet_builder.hpp"
#include "portmux_shared.h"
#include "stats.hpp"

struct portmux_bpf;

namespace portmux::test {

// XDP actions (enum xdp_action), spelled out so tests read plainly.
inline constexpr int kXdpAborted = 0;
inline constexpr int kXdpDrop = 1;
inline constexpr int kXdpPass = 2;
// TC action the egress program returns for every packet (TC_ACT_UNSPEC: on to
// the next program at egress, else pass).
inline constexpr int kTcActContinue = -1;

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
    int tc_program_fd() const;  // portmux_tc_egress
    DataPathMaps maps() const;
    int flows_fd() const;
    int direct_clients_fd() const;
    int syn_slots_fd() const;

    // Programs the maps through the loader's own code path, then zeroes
    // the per-CPU state (round-robin cursors) of every installed frontend:
    // write_config keeps the state of a frontend that stays, and a test
    // wants its sequence to start at the first backend. Empties the flows
    // and direct_clients tables too, so no test sees another one's entries.
    void configure(const Config& config) const;

    // Only write_config, as `portmux reload` does: cursors, counters,
    // flows and direct clients stay.
    void reload(const Config& config) const;

    // Deletes every entry of the flows and direct_clients tables (as
    // evictions would); the SYN slots stay.
    void clear_flow_tables() const;
    // Zeroes every SYN slot.
    void clear_syn_slots() const;

    // Sets the round-robin cursor of `frontend_port`/`protocol` on every
    // CPU, as a config reload leaves it behind.
    void set_round_robin_cursor(std::uint16_t frontend_port, std::uint32_t cursor,
                                Protocol protocol = Protocol::udp) const;

    // Writes `entry` at `index` of the ports array as the loader orders it:
    // the entry's bit in port_bits set before a flagged entry, cleared after
    // a zero one (a test that flags an entry by hand reaches the code behind
    // the bit).
    void write_port_entry(std::uint32_t index, const portmux_port& entry) const;
    // The indices of the ports array whose bit in port_bits is set.
    std::vector<std::uint32_t> port_bits_set() const;

    // Runs the program once on `frame` on the calling CPU. Throws
    // std::system_error when the kernel refuses the run.
    XdpRun run(std::span<const std::uint8_t> frame) const;

    // Runs the TC egress program once on the Ethernet frame `frame` (the
    // test run's skb has CHECKSUM_NONE). action is the TC verdict.
    XdpRun run_tc(std::span<const std::uint8_t> frame) const;

    // The summed counters of one frontend (throws when it is not installed).
    FrontendStats stats(std::uint16_t frontend_port, Protocol protocol = Protocol::udp) const;

    // Flow table entries; nullopt when absent.
    std::optional<portmux_flow> flow(const portmux_flow_key& key) const;
    void set_flow(const portmux_flow_key& key, const portmux_flow& flow) const;
    std::size_t flow_count() const;
    // The exceptions to reply translation, keyed by reply_key(): clients
    // that talked to a backend port directly.
    bool direct_client(const portmux_flow_key& key) const;
    // Whether the backend port of KEY ever had a direct client (direct_ports).
    bool direct_port(const portmux_flow_key& key) const;
    void set_direct_client(const portmux_flow_key& key) const;
    void erase_direct_client(const portmux_flow_key& key) const;  // as an LRU eviction would
    std::size_t direct_client_count() const;
    // The source port TC egress gives a reply from BACKEND to REQUEST's
    // client, by the maps: the backend port's reply port unless the client
    // is a direct client of it; 0 when the reply leaves unchanged.
    std::uint16_t reply_frontend(const Frame& request, std::uint16_t backend) const;

    // The SYN slot of a flow key (xdp/tcp_affinity.h): nullopt when the
    // slot holds another key's SYN or none.
    std::optional<portmux_syn_slot> syn_slot(const portmux_flow_key& key) const;
    // Moves the stamp of the key's slot `stamps` units (67 ms) into the past.
    void age_syn_slot(const portmux_flow_key& key, std::uint8_t stamps) const;
    // SYN slots holding any SYN.
    std::size_t syn_slot_count() const;

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
// destination port replaced and the UDP or TCP checksum equal to a full
// recomputation by the reference (a zero IPv4 UDP checksum stays zero).
Bytes expected_rewrite(const Frame& input, std::uint16_t backend);

// Runs `input` and requires XDP_PASS with the frame byte for byte intact.
void require_passes_unchanged(const Frame& input);

// Runs `input` and requires XDP_PASS with exactly expected_rewrite(input,
// backend), and a checksum the reference verifies.
void require_rewritten_to(const Frame& input, std::uint16_t backend);

// The data path's flow_hash_seeded (xdp/flow.h), written out again: murmur3's
// mixing per 32-bit word of the key as it sits in memory, then its finalizer.
std::uint32_t reference_flow_hash(const portmux_flow_key& key, std::uint32_t seed = PORTMUX_FLOW_HASH_SEED);

// The `flows` key of a request frame: (client = source address and port,
// service = destination port, protocol, family), from the reference parser.
// Entries of the BPF map FD, whose keys are Key, walked key by key.
template <typename Key>
std::size_t count_map_keys(int fd) {
    std::size_t count = 0;
    Key key{};
    Key next{};
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
        ++count;
        key = next;
        first = false;
    }
    return count;
}

portmux_flow_key request_flow_key(const Frame& request);
// The `direct_clients` key of a request frame's client talking to `backend`.
portmux_flow_key reply_key(const Frame& request, std::uint16_t backend);

// CLOCK_MONOTONIC in nanoseconds: bpf_ktime_get_ns()'s clock.
std::uint64_t monotonic_ns();
// CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns()'s clock, up to a tick
// behind): a lower bound for a timestamp the data path takes afterwards,
// whichever of the two clocks it reads.
std::uint64_t coarse_monotonic_ns();

// `input` (a reply leaving a backend) as TC egress must leave it: source
// port replaced, transport checksum equal to a full recomputation (a zero
// IPv4 UDP checksum stays zero).
Bytes expected_source_rewrite(const Frame& input, std::uint16_t frontend_port);

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
