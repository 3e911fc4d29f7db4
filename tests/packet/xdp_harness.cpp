#include "xdp_harness.hpp"
#include "skeleton.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <arpa/inet.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>
#include <system_error>

#include "checksum_reference.hpp"
#include "portmux_shared.h"
#include "portmux.skel.h"
#include "skeleton.hpp"

#include <cstdlib>
#include <string_view>

namespace portmux::test {

void LoadedDataPath::Destroyer::operator()(portmux_bpf* skeleton) const noexcept {
    portmux_bpf__destroy(skeleton);
}

// PORTMUX_TEST_OBJECT=frags runs the suite on the frags-aware object
// (ctest packet_tests_frags); the default is the standard object.
DataPathObject object_under_test() {
    const char* chosen = std::getenv("PORTMUX_TEST_OBJECT");
    return chosen && std::string_view(chosen) == "frags" ? DataPathObject::frags
                                                         : DataPathObject::standard;
}

LoadedDataPath::LoadedDataPath() : skeleton_(open_and_load_skeleton(object_under_test()).release()) {}

int LoadedDataPath::program_fd() const {
    return bpf_program__fd(skeleton_->progs.portmux_xdp);
}

int LoadedDataPath::tc_program_fd() const {
    return bpf_program__fd(skeleton_->progs.portmux_tc_egress);
}

int LoadedDataPath::flows_fd() const {
    return bpf_map__fd(skeleton_->maps.flows);
}

int LoadedDataPath::direct_clients_fd() const {
    return bpf_map__fd(skeleton_->maps.direct_clients);
}

int LoadedDataPath::syn_slots_fd() const {
    return bpf_map__fd(skeleton_->maps.syn_slots);
}

DataPathMaps LoadedDataPath::maps() const {
    return portmux::data_path_maps(*skeleton_);
}

namespace {

// Writes `state` for `slot` on every possible CPU (a per-CPU array takes
// one value per CPU in a single update).
void write_state_on_all_cpus(int state_fd, std::uint32_t slot, const portmux_frontend_state& state) {
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) {
        throw std::system_error(-cpus, std::generic_category(), "counting possible CPUs");
    }
    const std::vector<portmux_frontend_state> values(static_cast<std::size_t>(cpus), state);
    if (bpf_map_update_elem(state_fd, &slot, values.data(), BPF_ANY) != 0) {
        throw std::system_error(errno, std::generic_category(), "writing frontend_state");
    }
}

// Deletes every key of a hash map keyed by portmux_flow_key.
void clear_flow_map(int fd, const char* name) {
    portmux_flow_key key{};
    while (bpf_map_get_next_key(fd, nullptr, &key) == 0) {
        if (bpf_map_delete_elem(fd, &key) != 0) {
            throw std::system_error(errno, std::generic_category(), std::string("emptying ") + name);
        }
    }
}

}  // namespace

void LoadedDataPath::configure(const Config& config) const {
    write_config(maps(), config);
    for (const InstalledFrontend& installed : read_frontends(maps())) {
        write_state_on_all_cpus(maps().frontend_state, installed.slot, portmux_frontend_state{});
        // Counts start from zero: no base left by an earlier test's reloads.
        const portmux_counter_bases no_bases{};
        if (bpf_map_update_elem(maps().counter_bases, &installed.slot, &no_bases, BPF_ANY) != 0) {
            throw std::system_error(errno, std::generic_category(), "writing counter_bases");
        }
    }
    clear_flow_tables();
    clear_syn_slots();
}

void LoadedDataPath::reload(const Config& config) const {
    write_config(maps(), config);
}

namespace {

portmux_port_bits read_port_bits(int fd) {
    const std::uint32_t zero = 0;
    portmux_port_bits bits{};
    if (bpf_map_lookup_elem(fd, &zero, &bits) != 0) {
        throw std::system_error(errno, std::generic_category(), "reading port_bits");
    }
    return bits;
}

void write_port_bit(int fd, std::uint32_t index, bool set) {
    portmux_port_bits bits = read_port_bits(fd);
    const auto bit = static_cast<std::uint8_t>(1u << (index % 8));
    bits.bits[index / 8] = set ? bits.bits[index / 8] | bit : bits.bits[index / 8] & ~bit;
    const std::uint32_t zero = 0;
    if (bpf_map_update_elem(fd, &zero, &bits, BPF_ANY) != 0) {
        throw std::system_error(errno, std::generic_category(), "writing port_bits");
    }
}

}  // namespace

void LoadedDataPath::write_port_entry(std::uint32_t index, const portmux_port& entry) const {
    if (entry.flags != 0) {
        write_port_bit(maps().port_bits, index, true);
    }
    if (bpf_map_update_elem(maps().ports, &index, &entry, BPF_ANY) != 0) {
        throw std::system_error(errno, std::generic_category(), "writing the ports map");
    }
    if (entry.flags == 0) {
        write_port_bit(maps().port_bits, index, false);
    }
}

std::vector<std::uint32_t> LoadedDataPath::port_bits_set() const {
    const portmux_port_bits bits = read_port_bits(maps().port_bits);
    std::vector<std::uint32_t> set;
    for (std::uint32_t i = 0; i < PORTMUX_PORT_ENTRIES; ++i) {
        if (bits.bits[i / 8] & (1u << (i % 8))) {
            set.push_back(i);
        }
    }
    return set;
}

void LoadedDataPath::clear_flow_tables() const {
    clear_flow_map(flows_fd(), "flows");
    clear_flow_map(direct_clients_fd(), "direct_clients");
}

void LoadedDataPath::clear_syn_slots() const {
    std::vector<std::uint32_t> keys(PORTMUX_SYN_SLOTS);
    for (std::uint32_t i = 0; i < PORTMUX_SYN_SLOTS; ++i) {
        keys[i] = i;
    }
    const std::vector<portmux_syn_slot> zeros(PORTMUX_SYN_SLOTS);
    __u32 count = PORTMUX_SYN_SLOTS;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    if (bpf_map_update_batch(syn_slots_fd(), keys.data(), zeros.data(), &count, &opts) != 0 ||
        count != PORTMUX_SYN_SLOTS) {
        throw std::system_error(errno, std::generic_category(), "zeroing syn_slots");
    }
}

namespace {

std::uint32_t syn_slot_index(const portmux_flow_key& key) {
    return reference_flow_hash(key) & (PORTMUX_SYN_SLOTS - 1);
}

}  // namespace

std::optional<portmux_syn_slot> LoadedDataPath::syn_slot(const portmux_flow_key& key) const {
    const std::uint32_t index = syn_slot_index(key);
    portmux_syn_slot slot{};
    if (bpf_map_lookup_elem(syn_slots_fd(), &index, &slot) != 0) {
        throw std::system_error(errno, std::generic_category(), "reading a SYN slot");
    }
    if (slot.fingerprint != (reference_flow_hash(key, PORTMUX_SYN_FINGERPRINT_SEED) | 1)) {
        return std::nullopt;
    }
    return slot;
}

void LoadedDataPath::age_syn_slot(const portmux_flow_key& key, std::uint8_t stamps) const {
    std::optional<portmux_syn_slot> slot = syn_slot(key);
    if (!slot) {
        throw std::invalid_argument("age_syn_slot: the key has no SYN slot");
    }
    slot->stamp = static_cast<std::uint8_t>(slot->stamp - stamps);
    const std::uint32_t index = syn_slot_index(key);
    if (bpf_map_update_elem(syn_slots_fd(), &index, &*slot, BPF_ANY) != 0) {
        throw std::system_error(errno, std::generic_category(), "writing a SYN slot");
    }
}

std::size_t LoadedDataPath::syn_slot_count() const {
    std::vector<std::uint32_t> keys(PORTMUX_SYN_SLOTS);
    std::vector<portmux_syn_slot> slots(PORTMUX_SYN_SLOTS);
    std::uint32_t batch = 0;
    __u32 count = PORTMUX_SYN_SLOTS;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    if (bpf_map_lookup_batch(syn_slots_fd(), nullptr, &batch, keys.data(), slots.data(), &count, &opts) != 0 &&
        errno != ENOENT) {
        throw std::system_error(errno, std::generic_category(), "reading syn_slots");
    }
    return static_cast<std::size_t>(std::count_if(slots.begin(), slots.begin() + count,
                                                  [](const portmux_syn_slot& s) { return s.fingerprint != 0; }));
}

std::uint32_t reference_flow_hash(const portmux_flow_key& key, std::uint32_t seed) {
    static_assert(sizeof key % 4 == 0);
    std::uint32_t words[sizeof key / 4];
    std::memcpy(words, &key, sizeof key);
    std::uint32_t hash = seed;
    for (std::uint32_t word : words) {
        std::uint32_t k = word * 0xcc9e2d51u;
        k = (k << 15) | (k >> 17);
        hash ^= k * 0x1b873593u;
        hash = ((hash << 13) | (hash >> 19)) * 5 + 0xe6546b64u;
    }
    hash ^= hash >> 16;
    hash *= 0x85ebca6bu;
    hash ^= hash >> 13;
    hash *= 0xc2b2ae35u;
    hash ^= hash >> 16;
    return hash;
}

std::size_t LoadedDataPath::flow_count() const {
    return count_map_keys<portmux_flow_key>(flows_fd());
}

std::size_t LoadedDataPath::direct_client_count() const {
    return count_map_keys<portmux_flow_key>(direct_clients_fd());
}

std::optional<portmux_flow> LoadedDataPath::flow(const portmux_flow_key& key) const {
    portmux_flow value{};
    if (bpf_map_lookup_elem(flows_fd(), &key, &value) != 0) {
        return std::nullopt;
    }
    return value;
}

void LoadedDataPath::set_flow(const portmux_flow_key& key, const portmux_flow& flow) const {
    if (bpf_map_update_elem(flows_fd(), &key, &flow, BPF_ANY) != 0) {
        throw std::system_error(errno, std::generic_category(), "writing a flow");
    }
}

bool LoadedDataPath::direct_client(const portmux_flow_key& key) const {
    portmux_direct_client value{};
    return bpf_map_lookup_elem(direct_clients_fd(), &key, &value) == 0;
}

namespace {

std::uint32_t direct_port_index(const portmux_flow_key& key) {
    return ntohs(key.service_port) + (key.protocol == IPPROTO_TCP ? PORTMUX_TCP_PORT_BASE : 0);
}

}  // namespace

bool LoadedDataPath::direct_port(const portmux_flow_key& key) const {
    const std::uint32_t index = direct_port_index(key);
    std::uint32_t seen = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(skeleton_->maps.direct_ports), &index, &seen) != 0) {
        throw std::system_error(errno, std::generic_category(), "reading direct_ports");
    }
    return seen != 0;
}

void LoadedDataPath::set_direct_client(const portmux_flow_key& key) const {
    // As XDP does: the backend port's flag first, then the exception.
    const std::uint32_t index = direct_port_index(key);
    const std::uint32_t seen = 1;
    if (bpf_map_update_elem(bpf_map__fd(skeleton_->maps.direct_ports), &index, &seen, BPF_ANY) != 0) {
        throw std::system_error(errno, std::generic_category(), "writing direct_ports");
    }
    const portmux_direct_client value{1};
    if (bpf_map_update_elem(direct_clients_fd(), &key, &value, BPF_ANY) != 0) {
        throw std::system_error(errno, std::generic_category(), "writing a direct client");
    }
}

void LoadedDataPath::erase_direct_client(const portmux_flow_key& key) const {
    if (bpf_map_delete_elem(direct_clients_fd(), &key) != 0) {
        throw std::system_error(errno, std::generic_category(), "deleting a direct client");
    }
}

std::uint16_t LoadedDataPath::reply_frontend(const Frame& request, std::uint16_t backend) const {
    const portmux_flow_key key = reply_key(request, backend);
    const std::uint32_t index = backend + (key.protocol == IPPROTO_TCP ? PORTMUX_TCP_PORT_BASE : 0);
    portmux_port entry{};
    if (bpf_map_lookup_elem(maps().ports, &index, &entry) != 0) {
        throw std::system_error(errno, std::generic_category(), "reading the ports map");
    }
    if (!(entry.flags & PORTMUX_PORT_BACKEND) || entry.reply_port == 0 ||
        (direct_port(key) && direct_client(key))) {
        return 0;
    }
    return ntohs(entry.reply_port);
}

FrontendStats LoadedDataPath::stats(std::uint16_t frontend_port, Protocol protocol) const {
    for (const FrontendStats& stats : read_stats(maps())) {
        if (stats.port == frontend_port && stats.protocol == protocol) {
            return stats;
        }
    }
    throw std::invalid_argument("no frontend on port " + std::to_string(frontend_port));
}

void LoadedDataPath::set_round_robin_cursor(std::uint16_t frontend_port, std::uint32_t cursor,
                                            Protocol protocol) const {
    for (const InstalledFrontend& installed : read_frontends(maps())) {
        if (installed.frontend.port == frontend_port && installed.frontend.protocol == protocol) {
            portmux_frontend_state state{};
            state.rr_cursor = cursor;
            write_state_on_all_cpus(maps().frontend_state, installed.slot, state);
            return;
        }
    }
    throw std::invalid_argument("no UDP frontend on port " + std::to_string(frontend_port));
}

namespace {

// Runs one program once on FRAME. The output buffer leaves room for the
// frame to grow, so a program that wrongly adjusted the tail would show up
// as a size change rather than as ENOSPC.
XdpRun run_program(int program_fd, std::span<const std::uint8_t> frame, const char* what) {
    XdpRun result;
    result.output.resize(frame.size() + 256);

    bpf_test_run_opts opts{};
    opts.sz = sizeof(opts);
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<__u32>(frame.size());
    opts.data_out = result.output.data();
    opts.data_size_out = static_cast<__u32>(result.output.size());
    opts.repeat = 1;
    if (bpf_prog_test_run_opts(program_fd, &opts) != 0) {
        throw std::system_error(errno, std::generic_category(), what);
    }
    result.action = static_cast<int>(opts.retval);
    result.output.resize(opts.data_size_out);
    return result;
}

}  // namespace

XdpRun LoadedDataPath::run(std::span<const std::uint8_t> frame) const {
    return run_program(program_fd(), frame, "BPF_PROG_TEST_RUN");
}

XdpRun LoadedDataPath::run_tc(std::span<const std::uint8_t> frame) const {
    return run_program(tc_program_fd(), frame, "BPF_PROG_TEST_RUN (tc)");
}

portmux_flow_key request_flow_key(const Frame& request) {
    const TransportLocation where = locate_transport(request.bytes);
    portmux_flow_key key{};
    std::memcpy(key.client_addr, where.source.data(), where.source.size());
    key.client_port = htons(request.source_port());
    key.service_port = htons(request.destination_port());
    key.protocol = where.protocol;
    key.family = static_cast<std::uint8_t>(where.ip_version);
    return key;
}

portmux_flow_key reply_key(const Frame& request, std::uint16_t backend) {
    portmux_flow_key key = request_flow_key(request);
    key.service_port = htons(backend);
    return key;
}

std::uint64_t monotonic_ns() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(now.tv_nsec);
}

std::uint64_t coarse_monotonic_ns() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(now.tv_nsec);
}

Bytes expected_source_rewrite(const Frame& input, std::uint16_t frontend_port) {
    Frame expected = input;
    expected.set_source_port(frontend_port);
    const TransportLocation where = locate_transport(input.bytes);
    const bool no_checksum =
        where.protocol == kIpProtoUdp && where.ip_version == 4 && input.transport_checksum() == 0;
    expected.set_transport_checksum(no_checksum ? 0 : recompute_transport_checksum(expected.bytes));
    return expected.bytes;
}

const LoadedDataPath& data_path() {
    static const LoadedDataPath loaded;
    return loaded;
}

Config udp_config(std::initializer_list<std::pair<std::uint16_t, std::vector<std::uint16_t>>> frontends) {
    Config config;
    for (const auto& [port, backends] : frontends) {
        Frontend frontend;
        frontend.port = port;
        frontend.protocol = Protocol::udp;
        frontend.backends.assign(backends.begin(), backends.end());  // weight 1 each
        config.frontends.push_back(std::move(frontend));
    }
    return config;
}

Bytes expected_rewrite(const Frame& input, std::uint16_t backend) {
    Frame expected = input;
    expected.set_destination_port(backend);
    const TransportLocation where = locate_transport(input.bytes);
    const bool no_checksum =
        where.protocol == kIpProtoUdp && where.ip_version == 4 && input.transport_checksum() == 0;
    expected.set_transport_checksum(no_checksum ? 0 : recompute_transport_checksum(expected.bytes));
    return expected.bytes;
}

void require_passes_unchanged(const Frame& input) {
    const XdpRun run = data_path().run(input.bytes);
    REQUIRE(run.action == kXdpPass);
    REQUIRE_THAT(run.output, FrameEquals(input.bytes));
}

void require_rewritten_to(const Frame& input, std::uint16_t backend) {
    // The input itself must be sound, or a mismatch would blame the data path.
    REQUIRE(transport_checksum_verifies(input.bytes));
    const XdpRun run = data_path().run(input.bytes);
    REQUIRE(run.action == kXdpPass);
    REQUIRE_THAT(run.output, FrameEquals(expected_rewrite(input, backend)));
    REQUIRE(transport_checksum_verifies(run.output));
    if (input.transport_checksum() != 0) {
        Frame output = input;
        output.bytes = run.output;
        REQUIRE(output.transport_checksum() == recompute_transport_checksum(run.output));
    }
}

bool FrameEquals::match(const Bytes& actual) const {
    if (actual == expected_) {
        return true;
    }
    std::size_t i = 0;
    while (i < actual.size() && i < expected_.size() && actual[i] == expected_[i]) {
        ++i;
    }
    char text[160];
    if (i < actual.size() && i < expected_.size()) {
        std::snprintf(text, sizeof text, "first difference at byte %zu: got 0x%02x, want 0x%02x", i,
                      actual[i], expected_[i]);
    } else {
        std::snprintf(text, sizeof text, "sizes differ: got %zu bytes, want %zu", actual.size(),
                      expected_.size());
    }
    difference_ = text;
    return false;
}

std::string FrameEquals::describe() const {
    return "equals the frame\n" + hex_dump(expected_) + "\n" + difference_;
}

}  // namespace portmux::test
