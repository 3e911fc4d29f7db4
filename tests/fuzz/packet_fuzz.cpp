// packet_fuzz: runs the portmux XDP program (BPF_PROG_TEST_RUN, one run per
// frame) on a stream of random, valid and corrupted frames and checks every
// result against an independent reference model (reference_model.hpp):
//
//  (a) the action is XDP_PASS or XDP_DROP, and the frame keeps its size;
//  (b) a frame the model says is not addressed to a frontend passes byte for
//      byte unchanged;
//  (c) a forwarded frame differs from the input only in the L4 destination
//      port and checksum; the port is one of the frontend's backends (exactly
//      the predicted one for round robin and route tags); the checksum moved
//      by exactly the port change (one's complement), a UDP checksum of 0
//      stays 0 and a UDP checksum never becomes 0; and when the reference
//      verifier accepts the input's checksum it accepts the output's;
//  (d) XDP_DROP exactly when the model says a validate rule, the route tag
//      or the payload location fails, with the model's drop reason;
//  (e) frontend_state counters (received, drops by reason, packets and
//      bytes per backend) equal the model's after every frame addressed to
//      a frontend, and read_stats() agrees with the model at the end.
//
// Environment: PORTMUX_FUZZ_FRAMES (default 1000000), PORTMUX_FUZZ_SEED
// (default: random, printed), PORTMUX_FUZZ_REGRESSION_DIR and
// PORTMUX_FUZZ_SEEDS_DIR (defaults: tests/fuzz/regressions and
// tests/fuzz/packet_seeds in the source tree). Frames in both directories are
// replayed before the random ones. A frame that breaks an invariant is
// written to the regression directory and the run fails.
//
// Options: --frames N, --seed S, --no-replay, --quiet, --write-seeds DIR
// (writes the crafted seed corpus and exits), --explain FILE.hex... (runs
// those frames and prints what the model and the data path did with each).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sched.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "checksum_reference.hpp"
#include "frame_generator.hpp"
#include "fuzz_frontends.hpp"
#include "hex_file.hpp"
#include "maps.hpp"
#include "portmux_shared.h"
#include "reference_model.hpp"
#include "seed_frames.hpp"
#include "skeleton.hpp"
#include "stats.hpp"

#ifndef PORTMUX_FUZZ_SOURCE_DIR
#define PORTMUX_FUZZ_SOURCE_DIR "tests/fuzz"
#endif

namespace portmux::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr int kXdpAborted = 0;
constexpr int kXdpDrop = 1;
constexpr int kXdpPass = 2;
constexpr std::size_t kMaxRegressionFiles = 25;
constexpr std::uint64_t kStopAfterFailures = 1000;

std::uint16_t be16(const Bytes& b, std::size_t at) {
    return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]);
}

std::uint16_t ones_add(std::uint16_t a, std::uint16_t b) {
    const std::uint32_t sum = static_cast<std::uint32_t>(a) + b;
    return static_cast<std::uint16_t>((sum & 0xffff) + (sum >> 16));
}

// One's complement has two zeros; compare values as the sum sees them.
std::uint16_t ones_normal(std::uint16_t v) {
    return v == 0xffff ? 0 : v;
}

std::optional<bool> reference_verifies(const Bytes& frame) {
    try {
        return test::transport_checksum_verifies(frame);
    } catch (const std::invalid_argument&) {
        return std::nullopt;  // nothing the reference can sum
    }
}

std::string hex_seed(std::uint64_t seed) {
    char text[32];
    std::snprintf(text, sizeof text, "%016" PRIx64, seed);
    return text;
}

struct Options {
    std::uint64_t frames = 1000000;
    std::uint64_t seed = 0;
    bool replay = true;
    bool quiet = false;
    fs::path regression_dir = fs::path(PORTMUX_FUZZ_SOURCE_DIR) / "regressions";
    fs::path seeds_dir = fs::path(PORTMUX_FUZZ_SOURCE_DIR) / "packet_seeds";
    std::optional<fs::path> write_seeds;
    std::vector<fs::path> explain;
};

struct Counts {
    std::uint64_t frames = 0;
    std::uint64_t not_ours = 0;
    std::uint64_t forwarded = 0;
    std::uint64_t dropped = 0;
    std::array<std::uint64_t, PORTMUX_DROP_REASONS> drops{};
    std::uint64_t exact_choice_checks = 0;
    std::uint64_t membership_checks = 0;
    std::uint64_t checksum_delta_checks = 0;
    std::uint64_t reference_checksum_checks = 0;
    std::uint64_t unchanged_checks = 0;
    std::uint64_t counter_checks = 0;
    std::uint64_t invariant_checks = 0;
    std::uint64_t failures = 0;
    std::map<std::string, std::uint64_t> not_ours_reasons;
};

class Fuzzer {
public:
    explicit Fuzzer(const Options& options) : options_(options), specs_(fuzz_frontends()) {
        skeleton_ = open_and_load_skeleton();
        program_fd_ = bpf_program__fd(skeleton_->progs.portmux_xdp);
        maps_ = data_path_maps(*skeleton_);  // ports included: the data path needs it
        cpus_ = libbpf_num_possible_cpus();
        cpu_ = sched_getcpu();
        if (cpus_ <= 0 || cpu_ < 0 || cpu_ >= cpus_) {
            throw std::runtime_error("cannot count possible CPUs");
        }
        write_config(maps_, to_config(specs_));
        model_.resize(specs_.size());
        for (std::size_t i = 0; i < specs_.size(); ++i) {
            load_installed(i);
        }
    }

    Counts& counts() { return counts_; }
    void set_explain(bool on) { explain_ = on; }

    // Runs one frame and checks it. `origin` says where it came from; a
    // failing frame is written to the regression directory as
    // invariant-<x>-<record_as>.hex unless record_as is empty.
    void check(const Bytes& frame, const std::string& origin, const std::string& record_as) {
        ++counts_.frames;
        const Expectation e = expect(frame, specs_);
        std::vector<std::string> broken;
        auto require = [&](bool condition, const std::string& invariant) {
            ++counts_.invariant_checks;
            if (!condition) {
                broken.push_back(invariant);
            }
        };

        int action = -1;
        Bytes out(frame.size() + 256);
        bpf_test_run_opts opts{};
        opts.sz = sizeof opts;
        opts.data_in = frame.data();
        opts.data_size_in = static_cast<__u32>(frame.size());
        opts.data_out = out.data();
        opts.data_size_out = static_cast<__u32>(out.size());
        opts.repeat = 1;
        if (bpf_prog_test_run_opts(program_fd_, &opts) != 0) {
            broken.push_back(std::string("BPF_PROG_TEST_RUN failed: ") + std::strerror(errno));
        } else {
            action = static_cast<int>(opts.retval);
            out.resize(opts.data_size_out);
        }

        ModelState* state = e.frontend ? &model_[spec_index(e.frontend)] : nullptr;
        if (broken.empty()) {
            require(action == kXdpPass || action == kXdpDrop, "(a) action is XDP_PASS or XDP_DROP");
            require(out.size() == frame.size(), "(a) frame size unchanged");
            switch (e.verdict) {
            case Verdict::not_ours:
                ++counts_.not_ours;
                ++counts_.not_ours_reasons[e.why];
                ++counts_.unchanged_checks;
                require(action == kXdpPass, "(b) not addressed to a frontend: XDP_PASS");
                require(out == frame, "(b) not addressed to a frontend: byte for byte unchanged");
                break;
            case Verdict::drop:
                ++counts_.dropped;
                ++counts_.drops[static_cast<std::size_t>(e.drop_reason)];
                require(action == kXdpDrop, std::string("(d) model drops (") + e.why + "): XDP_DROP");
                state->counters.received++;
                state->counters.drops[static_cast<std::size_t>(e.drop_reason)]++;
                check_counters(*state, require);
                break;
            case Verdict::forward:
                ++counts_.forwarded;
                require(action == kXdpPass, "(d) model forwards (" + e.why + "): XDP_PASS, not a drop");
                state->counters.received++;
                if (action == kXdpPass && out.size() == frame.size()) {
                    check_rewrite(frame, out, e, *state, require);
                }
                check_counters(*state, require);
                break;
            }
        }

        if (explain_) {
            std::printf("%s\n  model: %s -- %s%s%s\n  data path: %s", origin.c_str(), verdict_name(e.verdict),
                        e.why.c_str(), e.frontend ? " [frontend " : "", e.frontend ? (e.frontend->name + "]").c_str() : "",
                        action == kXdpPass ? "XDP_PASS" : action == kXdpDrop ? "XDP_DROP" : "other action");
            if (e.verdict == Verdict::forward && out.size() == frame.size() && e.parsed.l4_offset + 4 <= out.size()) {
                std::printf(", destination port %u -> %u", be16(frame, e.parsed.l4_offset + 2),
                            be16(out, e.parsed.l4_offset + 2));
            }
            std::printf("%s\n", broken.empty() ? "" : " -- BROKEN INVARIANT");
        }
        if (!broken.empty()) {
            if (state != nullptr) {
                // Follow the data path from here on: one report per mistake,
                // not one per frame after it.
                state->cursor = state->observed_cursor;
                resync_counters(*state);
            }
            ++counts_.failures;
            report_failure(frame, out, action, e, origin, broken, record_as);
        }
    }

    // (e) at the end: read_stats() against the model.
    bool check_final_stats() {
        bool ok = true;
        for (const FrontendStats& stats : read_stats(maps_)) {
            const std::uint8_t proto = static_cast<std::uint8_t>(stats.protocol);
            const FrontendSpec* spec = find_frontend(stats.port, proto);
            if (spec == nullptr) {
                std::fprintf(stderr, "FAIL (e): read_stats lists unknown frontend %u/%u\n", stats.port, proto);
                ok = false;
                continue;
            }
            const ModelCounters& m = model_[spec_index(spec)].counters;
            auto fail = [&](const std::string& what, std::uint64_t got, std::uint64_t want) {
                std::fprintf(stderr, "FAIL (e): frontend %s: %s is %" PRIu64 ", model %" PRIu64 "\n",
                             spec->name.c_str(), what.c_str(), got, want);
                ok = false;
            };
            ++counts_.invariant_checks;
            if (stats.received != m.received) fail("received", stats.received, m.received);
            std::uint64_t forwarded = 0;
            std::uint64_t dropped = 0;
            for (std::size_t r = 0; r < PORTMUX_DROP_REASONS; ++r) {
                dropped += m.drops[r];
                if (stats.drops[r] != m.drops[r]) fail(std::string("drops ") + drop_reason_name(static_cast<int>(r)), stats.drops[r], m.drops[r]);
            }
            for (std::size_t b = 0; b < stats.backends.size() && b < PORTMUX_MAX_BACKENDS; ++b) {
                forwarded += m.packets[b];
                if (stats.backends[b].packets != m.packets[b]) fail("packets to backend " + std::to_string(stats.backends[b].port), stats.backends[b].packets, m.packets[b]);
                if (stats.backends[b].bytes != m.bytes[b]) fail("bytes to backend " + std::to_string(stats.backends[b].port), stats.backends[b].bytes, m.bytes[b]);
            }
            if (stats.received != stats.forwarded() + stats.dropped()) {
                fail("received - forwarded - dropped", stats.received, stats.forwarded() + stats.dropped());
            }
            if (m.received != forwarded + dropped) {
                fail("model received - forwarded - dropped", m.received, forwarded + dropped);
            }
            if (!options_.quiet) {
                std::printf("  %-22s %5u/%s received %9" PRIu64 " forwarded %9" PRIu64 " dropped %8" PRIu64 "\n",
                            spec->name.c_str(), stats.port, proto == kProtoTcp ? "tcp" : "udp",
                            stats.received, stats.forwarded(), stats.dropped());
            }
        }
        return ok;
    }

private:
    struct ModelState {
        std::uint32_t slot = 0;
        // Per address family (PORTMUX_FAMILY_V4/_V6); the generated
        // frontends have every backend up, so both follow the weights.
        std::vector<std::uint8_t> rr_order[PORTMUX_FAMILIES];
        std::uint32_t cursor = 0;
        std::uint32_t observed_cursor = 0;  // this CPU's cursor in the map, last read
        ModelCounters counters;
    };

    std::size_t spec_index(const FrontendSpec* spec) const {
        return static_cast<std::size_t>(spec - specs_.data());
    }

    // The installed entry: slot and round-robin order, the order checked
    // against the spec's weights (each backend index exactly `weight` times).
    void load_installed(std::size_t i) {
        const FrontendSpec& spec = specs_[i];
        const std::optional<portmux_frontend> installed =
            installed_config(maps_, static_cast<Protocol>(spec.protocol), spec.port);
        if (!installed) {
            throw std::runtime_error("frontend " + spec.name + " is not installed");
        }
        const portmux_frontend& value = *installed;
        ModelState& m = model_[i];
        m.slot = value.slot;
        std::uint32_t total = 0;
        for (const BackendSpec& b : spec.backends) total += b.weight;
        bool ok = true;
        for (int family = 0; family < PORTMUX_FAMILIES; ++family) {
            m.rr_order[family].assign(
                value.rr_order[family],
                value.rr_order[family] + std::min<std::size_t>(value.rr_length[family], PORTMUX_RR_SLOTS));
            std::vector<std::uint32_t> seen(spec.backends.size(), 0);
            ok = ok && value.rr_length[family] == total && value.down_mask[family] == 0;
            for (const std::uint8_t index : m.rr_order[family]) {
                if (index >= spec.backends.size()) {
                    ok = false;
                } else {
                    ++seen[index];
                }
            }
            for (std::size_t b = 0; b < spec.backends.size(); ++b) {
                ok = ok && seen[b] == spec.backends[b].weight;
            }
        }
        if (!ok) {
            throw std::runtime_error("the installed round-robin order of " + spec.name +
                                     " does not follow the weights");
        }
    }

    template <typename Require>
    void check_rewrite(const Bytes& in, const Bytes& out, const Expectation& e, ModelState& state,
                       Require& require) {
        const FrontendSpec& fe = *e.frontend;
        const std::size_t l4 = e.parsed.l4_offset;
        const bool udp = e.parsed.l4_proto == kProtoUdp;
        const std::size_t csum = l4 + (udp ? 6 : 16);
        bool only_fields = true;
        for (std::size_t i = 0; i < in.size(); ++i) {
            const bool field = (i >= l4 + 2 && i < l4 + 4) || (i >= csum && i < csum + 2);
            if (!field && in[i] != out[i]) {
                only_fields = false;
                break;
            }
        }
        require(only_fields, "(c) only the destination port and checksum change");

        const std::uint16_t port = be16(out, l4 + 2);
        const int index = fe.backend_index(port);
        ++counts_.membership_checks;
        require(index >= 0, "(c) the new port is one of the frontend's backends");

        // The exact choice where it is predictable.
        std::optional<int> predicted;
        if (e.choice == Choice::tag) {
            predicted = e.tag_backend;
        } else if (const auto& order =
                       state.rr_order[e.parsed.ip_version == 6 ? PORTMUX_FAMILY_V6 : PORTMUX_FAMILY_V4];
                   e.choice == Choice::round_robin && !order.empty()) {
            std::uint32_t pos = state.cursor >= order.size() ? 0 : state.cursor;
            predicted = order[pos];
            state.cursor = pos + 1 < order.size() ? pos + 1 : 0;
        }
        if (predicted) {
            ++counts_.exact_choice_checks;
            const bool same = index == *predicted;
            require(same, e.choice == Choice::tag ? "(c) a known tag goes to its backend"
                                                  : "(c) round robin picks the next backend in order");
        }
        if (index >= 0) {
            state.counters.packets[static_cast<std::size_t>(index)]++;
            state.counters.bytes[static_cast<std::size_t>(index)] += in.size();
        }

        // Checksum: moved by exactly the port change.
        const std::uint16_t old_check = be16(in, csum);
        const std::uint16_t new_check = be16(out, csum);
        const std::uint16_t old_port = be16(in, l4 + 2);
        ++counts_.checksum_delta_checks;
        if (udp && old_check == 0) {
            require(new_check == 0, "(c) a UDP checksum of 0 (none) stays 0");
        } else {
            const std::uint16_t want = ones_add(ones_add(static_cast<std::uint16_t>(~old_check),
                                                         static_cast<std::uint16_t>(~old_port)),
                                                port);
            require(ones_normal(static_cast<std::uint16_t>(~new_check)) == ones_normal(want),
                    "(c) the checksum changes by exactly the port change");
            if (udp) {
                require(new_check != 0, "(c) a UDP checksum never becomes 0");
            }
        }
        // Reference verifier: a checksum that verified still verifies. (An
        // IPv6 UDP checksum of 0 is "none" to the data path and stays 0; the
        // reference only accepts it when the sum happens to be 0xffff, so it
        // is left to the check above.)
        if (!(udp && old_check == 0)) {
            const std::optional<bool> before = reference_verifies(in);
            if (before && *before) {
                ++counts_.reference_checksum_checks;
                const std::optional<bool> after = reference_verifies(out);
                require(after && *after, "(c) the reference verifies the rewritten checksum");
            }
        }
    }

    // After a reported mismatch the model takes the data path's counters, so
    // one mistake is reported once.
    void resync_counters(ModelState& state) {
        per_cpu_.resize(static_cast<std::size_t>(cpus_));
        const std::uint32_t slot = state.slot;
        if (bpf_map_lookup_elem(maps_.frontend_state, &slot, per_cpu_.data()) != 0) {
            return;
        }
        ModelCounters sum;
        for (const portmux_frontend_state& cpu : per_cpu_) {
            sum.received += cpu.received;
            for (std::size_t r = 0; r < PORTMUX_DROP_REASONS; ++r) sum.drops[r] += cpu.drops[r];
            for (std::size_t b = 0; b < PORTMUX_MAX_BACKENDS; ++b) {
                sum.packets[b] += cpu.backends[b].packets;
                sum.bytes[b] += cpu.backends[b].bytes;
            }
        }
        state.counters = sum;
        state.observed_cursor = per_cpu_[static_cast<std::size_t>(cpu_)].rr_cursor;
        state.cursor = state.observed_cursor;
    }

    // The slot's counters, summed over CPUs, equal the model's.
    template <typename Require>
    void check_counters(ModelState& state, Require& require) {
        per_cpu_.resize(static_cast<std::size_t>(cpus_));
        const std::uint32_t slot = state.slot;
        if (bpf_map_lookup_elem(maps_.frontend_state, &slot, per_cpu_.data()) != 0) {
            require(false, "(e) frontend_state readable");
            return;
        }
        state.observed_cursor = per_cpu_[static_cast<std::size_t>(cpu_)].rr_cursor;
        ModelCounters sum;
        for (const portmux_frontend_state& cpu : per_cpu_) {
            sum.received += cpu.received;
            for (std::size_t r = 0; r < PORTMUX_DROP_REASONS; ++r) sum.drops[r] += cpu.drops[r];
            for (std::size_t b = 0; b < PORTMUX_MAX_BACKENDS; ++b) {
                sum.packets[b] += cpu.backends[b].packets;
                sum.bytes[b] += cpu.backends[b].bytes;
            }
        }
        ++counts_.counter_checks;
        require(sum.received == state.counters.received, "(e) received counter equals the model's");
        require(sum.drops == state.counters.drops, "(e) drop counters (by reason) equal the model's");
        require(sum.packets == state.counters.packets && sum.bytes == state.counters.bytes,
                "(e) per-backend packet and byte counters equal the model's");
    }

    void report_failure(const Bytes& frame, const Bytes& out, int action, const Expectation& e,
                        const std::string& origin, const std::vector<std::string>& broken,
                        const std::string& record_as) {
        std::ostringstream text;
        text << "portmux packet fuzz: a frame that broke an invariant\n";
        for (const std::string& b : broken) text << "broken: " << b << '\n';
        text << "origin: " << origin << '\n';
        text << "model: " << verdict_name(e.verdict) << " -- " << e.why;
        if (e.frontend) text << " [frontend " << e.frontend->name << "]";
        text << '\n';
        text << "data path: action " << action;
        if (action == kXdpPass && out != frame) {
            text << ", frame changed";
            for (std::size_t i = 0; i < out.size() && i < frame.size(); ++i) {
                if (out[i] != frame[i]) {
                    char cell[48];
                    std::snprintf(cell, sizeof cell, " [%zu] %02x->%02x", i, frame[i], out[i]);
                    text << cell;
                }
            }
        }
        text << '\n' << "frame: " << frame.size() << " bytes\n";
        if (counts_.failures <= 20 || !options_.quiet) {
            std::fprintf(stderr, "FAIL %s", text.str().c_str());
        }
        if (record_as.empty() || regression_files_ >= kMaxRegressionFiles) {
            return;
        }
        std::string name = broken.front().substr(0, 3);  // "(c)"
        name = name.size() >= 2 ? std::string(1, name[1]) : "x";
        const fs::path file = options_.regression_dir / ("invariant-" + name + "-" + record_as + ".hex");
        try {
            write_hex_file(file, text.str(), frame);
            ++regression_files_;
            std::fprintf(stderr, "     written to %s\n", file.c_str());
        } catch (const std::exception& error) {
            std::fprintf(stderr, "     cannot write the regression: %s\n", error.what());
        }
    }

    Options options_;
    const std::vector<FrontendSpec>& specs_;
    SkeletonPtr skeleton_;
    int program_fd_ = -1;
    int cpus_ = 0;
    int cpu_ = 0;
    DataPathMaps maps_;
    std::vector<ModelState> model_;
    std::vector<portmux_frontend_state> per_cpu_;
    Counts counts_;
    std::size_t regression_files_ = 0;
    bool explain_ = false;
};

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') {
        return fallback;
    }
    return std::stoull(text, nullptr, 0);
}

Options parse_options(int argc, char** argv) {
    Options options;
    options.frames = env_number("PORTMUX_FUZZ_FRAMES", options.frames);
    std::random_device device;
    const std::uint64_t random_seed = (static_cast<std::uint64_t>(device()) << 32) ^ device() ^
                                      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    options.seed = env_number("PORTMUX_FUZZ_SEED", random_seed);
    if (const char* dir = std::getenv("PORTMUX_FUZZ_REGRESSION_DIR"); dir && *dir) options.regression_dir = dir;
    if (const char* dir = std::getenv("PORTMUX_FUZZ_SEEDS_DIR"); dir && *dir) options.seeds_dir = dir;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "--frames") options.frames = std::stoull(value(), nullptr, 0);
        else if (arg == "--seed") options.seed = std::stoull(value(), nullptr, 0);
        else if (arg == "--no-replay") options.replay = false;
        else if (arg == "--quiet") options.quiet = true;
        else if (arg == "--write-seeds") options.write_seeds = value();
        else if (arg == "--explain") {
            while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) options.explain.push_back(argv[++i]);
        }
        else throw std::invalid_argument("unknown option " + arg);
    }
    return options;
}

void pin_to_one_cpu() {
    // BPF_PROG_TEST_RUN runs on the calling CPU and round-robin cursors are
    // per CPU: staying on one CPU makes the rotation exactly predictable.
    const int cpu = sched_getcpu();
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (cpu < 0 || sched_setaffinity(0, sizeof set, &set) != 0) {
        throw std::runtime_error(std::string("cannot pin to one CPU: ") + std::strerror(errno));
    }
}

int run(int argc, char** argv) {
    const Options options = parse_options(argc, argv);
    if (options.write_seeds) {
        const auto seeds = seed_frames();
        for (const SeedFrame& seed : seeds) {
            write_hex_file(*options.write_seeds / (seed.name + ".hex"), seed.comment, seed.bytes);
        }
        std::printf("packet_fuzz: wrote %zu seed frames to %s\n", seeds.size(), options.write_seeds->c_str());
        return 0;
    }
    pin_to_one_cpu();
    if (!options.explain.empty()) {
        Fuzzer fuzzer(options);
        fuzzer.set_explain(true);
        for (const fs::path& file : options.explain) {
            fuzzer.check(read_hex_file(file), file.filename().string(), {});
        }
        return fuzzer.counts().failures == 0 ? 0 : 1;
    }
    std::printf("packet_fuzz: seed 0x%s (PORTMUX_FUZZ_SEED=0x%s to repeat), %" PRIu64 " frames\n",
                hex_seed(options.seed).c_str(), hex_seed(options.seed).c_str(), options.frames);
    std::fflush(stdout);

    Fuzzer fuzzer(options);
    const auto start = std::chrono::steady_clock::now();

    std::uint64_t replayed = 0;
    if (options.replay) {
        for (const fs::path& dir : {options.seeds_dir, options.regression_dir}) {
            for (const fs::path& file : hex_files_in(dir)) {
                const Bytes frame = read_hex_file(file);
                if (frame.size() < kMinFrame || frame.size() > kMaxFrame) {
                    std::fprintf(stderr, "packet_fuzz: skipping %s: %zu bytes is outside [%zu, %zu]\n",
                                 file.c_str(), frame.size(), kMinFrame, kMaxFrame);
                    continue;
                }
                fuzzer.check(frame, "replay of " + file.string(), {});
                ++replayed;
            }
        }
        std::printf("packet_fuzz: replayed %" PRIu64 " stored frames (%s, %s)\n", replayed,
                    options.seeds_dir.c_str(), options.regression_dir.c_str());
    }

    FrameGenerator generator(options.seed);
    for (std::uint64_t i = 0; i < options.frames; ++i) {
        GeneratedFrame frame = generator.next();
        fuzzer.check(frame.bytes, "seed 0x" + hex_seed(options.seed) + ", frame " + std::to_string(i) + ": " +
                                      frame.description,
                     "seed" + hex_seed(options.seed) + "-frame" + std::to_string(i));
        if (fuzzer.counts().failures >= kStopAfterFailures) {
            std::fprintf(stderr, "packet_fuzz: stopping after %" PRIu64 " failures\n", fuzzer.counts().failures);
            break;
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::printf("packet_fuzz: final counters per frontend:\n");
    const bool stats_ok = fuzzer.check_final_stats();
    const Counts& c = fuzzer.counts();
    std::printf("packet_fuzz: %" PRIu64 " frames in %.1f s (%.0f frames/s): %" PRIu64 " passed untouched, %" PRIu64
                " forwarded, %" PRIu64 " dropped\n",
                c.frames, seconds, c.frames / seconds, c.not_ours, c.forwarded, c.dropped);
    std::printf("  drops by reason:");
    for (std::size_t r = 0; r < PORTMUX_DROP_REASONS; ++r) {
        std::printf(" %s %" PRIu64, drop_reason_name(static_cast<int>(r)), c.drops[r]);
    }
    std::printf("\n  checks: %" PRIu64 " invariant checks; %" PRIu64 " unchanged-frame, %" PRIu64
                " backend-membership, %" PRIu64 " exact-choice, %" PRIu64 " checksum-delta, %" PRIu64
                " reference-checksum, %" PRIu64 " counter comparisons\n",
                c.invariant_checks, c.unchanged_checks, c.membership_checks, c.exact_choice_checks,
                c.checksum_delta_checks, c.reference_checksum_checks, c.counter_checks);
    if (!options.quiet) {
        std::printf("  passed untouched because:\n");
        for (const auto& [why, n] : c.not_ours_reasons) {
            std::printf("    %9" PRIu64 "  %s\n", n, why.c_str());
        }
    }
    if (c.failures > 0 || !stats_ok) {
        std::fprintf(stderr, "packet_fuzz: FAILED: %" PRIu64 " frames broke an invariant%s (seed 0x%s)\n",
                     c.failures, stats_ok ? "" : ", final counters differ", hex_seed(options.seed).c_str());
        return 1;
    }
    std::printf("packet_fuzz: OK\n");
    return 0;
}

}  // namespace
}  // namespace portmux::fuzz

int main(int argc, char** argv) {
    try {
        return portmux::fuzz::run(argc, argv);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "packet_fuzz: %s\n", error.what());
        return 2;
    }
}
