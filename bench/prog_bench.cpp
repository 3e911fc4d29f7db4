// Per-packet cost of the portmux XDP program and of reference programs,
// measured with BPF_PROG_TEST_RUN on crafted frames (no interface needed).
//
// BPF_PROG_TEST_RUN with repeat = N runs the program N times over ONE
// buffer, which each run leaves rewritten. To time the hit path rather than
// a miss, the maps are programmed so a rewritten packet lands on a frontend
// again: 9875 -> 9876 and 9876 -> 9875 (the "ping-pong" pair, for the
// headline rows), or 9875 -> 9875 (a "self loop", for the scaling matrix,
// which must also work with a single frontend). The JSON config forbids
// both; write_config on a Config built here does not check. Every timed
// run is followed by a check of the per-CPU counters that all iterations
// took the intended path.
//
// A TCP SYN can only open a new flow once per key, so the new-flow path is
// timed in single-shot mode: one run per syscall (repeat = 1), a fresh
// client port each time, the kernel's own per-run duration averaged. The
// XDP_PASS floor is measured the same way for that comparison, since
// single-shot durations carry the timer's own overhead.
//
// Every case, repeat or single shot, is timed the same way: a run is
// --batches short calls, interleaved with the other cases' batches, and
// its value is its fastest batch (see Stats for why). The thread is pinned
// to one CPU and asks for nice -20.
//
// Output: a JSON document on stdout (or --json FILE); progress on stderr.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sched.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "portmux_shared.h"  // before the skeletons: their global data has its types

#include "ablation.skel.h"
#include "baseline.skel.h"
#include "config.hpp"
#include "maps.hpp"
#include "portmux.skel.h"
#include "skeleton.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;
using json = nlohmann::json;

constexpr int kXdpDrop = 1;
constexpr int kXdpPass = 2;
constexpr std::uint32_t kTcUnspec = static_cast<std::uint32_t>(-1);  // TC_ACT_UNSPEC
constexpr std::uint16_t kFrontA = 9875;
constexpr std::uint16_t kFrontB = 9876;
constexpr int kCpu = 0;

struct Options {
    std::uint32_t repeat = 250000;    // iterations per call (one batch)
    int batches = 8;                  // calls per timed run: the run's value is its fastest
    int runs = 5;                     // timed runs per case (median reported)
    std::uint32_t single_shots = 100000;  // calls per single-shot run, over its batches
    std::uint32_t big_flow_table = 1000000;
    bool quick = false;
    bool smoke = false;  // bench/run.sh --smoke: every path once, a small scaling matrix, no flow table
    bool headline_only = false;  // only the interleaved headline cases (fast)
    bool flow_table_only = false;  // only the flow table (empty and --flows full), SYN and ACK
    std::string json_path;
};

[[noreturn]] void fail(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// ---------------------------------------------------------------- frames

std::uint16_t fold(std::uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
}

std::uint32_t add_bytes(std::uint32_t sum, const std::uint8_t* p, std::size_t n) {
    for (std::size_t i = 0; i + 1 < n; i += 2) sum += (p[i] << 8) | p[i + 1];
    if (n & 1) sum += p[n - 1] << 8;
    return sum;
}

struct FrameSpec {
    std::uint8_t protocol = IPPROTO_UDP;
    std::uint32_t saddr = 0xc6120001;  // 198.18.0.1 (benchmark range; never sent)
    std::uint32_t daddr = 0xc6120002;  // 198.18.0.2
    std::uint16_t sport = 40000;
    std::uint16_t dport = kFrontA;
    std::uint8_t tcp_flags = 0x10;     // ACK
    std::string payload_prefix;        // rest of the payload is zero
    std::size_t frame_size = 64;       // Ethernet frame without FCS
};

// An Ethernet/IPv4/UDP or TCP frame with valid IP and L4 checksums.
Bytes make_frame(const FrameSpec& spec) {
    const std::size_t l4_header = spec.protocol == IPPROTO_UDP ? 8 : 20;
    const std::size_t header = 14 + 20 + l4_header;
    std::size_t size = std::max(spec.frame_size, header + spec.payload_prefix.size());
    if (spec.protocol == IPPROTO_TCP && spec.tcp_flags == 0x02) size = header;  // bare SYN
    Bytes f(size, 0);
    const std::uint8_t mac_dst[6] = {0x02, 0, 0, 0, 0, 2}, mac_src[6] = {0x02, 0, 0, 0, 0, 1};
    std::memcpy(&f[0], mac_dst, 6);
    std::memcpy(&f[6], mac_src, 6);
    f[12] = 0x08;
    f[13] = 0x00;
    std::uint8_t* ip = &f[14];
    const std::uint16_t ip_len = static_cast<std::uint16_t>(size - 14);
    ip[0] = 0x45;
    ip[2] = ip_len >> 8;
    ip[3] = ip_len & 0xff;
    ip[6] = 0x40;  // DF
    ip[8] = 64;
    ip[9] = spec.protocol;
    const std::uint32_t s = htonl(spec.saddr), d = htonl(spec.daddr);
    std::memcpy(ip + 12, &s, 4);
    std::memcpy(ip + 16, &d, 4);
    const std::uint16_t ip_csum = static_cast<std::uint16_t>(~fold(add_bytes(0, ip, 20)));
    ip[10] = ip_csum >> 8;
    ip[11] = ip_csum & 0xff;

    std::uint8_t* l4 = ip + 20;
    const std::uint16_t l4_len = static_cast<std::uint16_t>(ip_len - 20);
    l4[0] = spec.sport >> 8;
    l4[1] = spec.sport & 0xff;
    l4[2] = spec.dport >> 8;
    l4[3] = spec.dport & 0xff;
    std::size_t csum_at;
    if (spec.protocol == IPPROTO_UDP) {
        l4[4] = l4_len >> 8;
        l4[5] = l4_len & 0xff;
        csum_at = 6;
    } else {
        l4[4] = 0;  // sequence number 1
        l4[7] = 1;
        if (spec.tcp_flags & 0x10) l4[11] = 1;  // ack number 1
        l4[12] = 5 << 4;  // data offset: 20 bytes
        l4[13] = spec.tcp_flags;
        l4[14] = 0xff;    // window
        l4[15] = 0xff;
        csum_at = 16;
    }
    std::memcpy(l4 + l4_header, spec.payload_prefix.data(), spec.payload_prefix.size());
    std::uint32_t sum = add_bytes(0, ip + 12, 8);
    sum += spec.protocol;
    sum += l4_len;
    sum = add_bytes(sum, l4, l4_len);
    std::uint16_t csum = static_cast<std::uint16_t>(~fold(sum));
    if (spec.protocol == IPPROTO_UDP && csum == 0) csum = 0xffff;
    l4[csum_at] = csum >> 8;
    l4[csum_at + 1] = csum & 0xff;
    return f;
}

std::uint16_t dest_port_of(const Bytes& frame) {
    return static_cast<std::uint16_t>((frame[14 + 20 + 2] << 8) | frame[14 + 20 + 3]);
}

std::uint16_t source_port_of(const Bytes& frame) {
    return static_cast<std::uint16_t>((frame[14 + 20] << 8) | frame[14 + 20 + 1]);
}

// ---------------------------------------------------------------- timing

struct RunResult {
    double ns = 0;           // per packet, wall clock over the syscall / repeat
    std::uint32_t kernel_ns = 0;  // the kernel's own (integer) average
    double cpu_ns = 0;            // this thread's CPU time over the syscall / repeat
    long preempted = 0;           // involuntary context switches during the syscall
    std::uint32_t retval = 0;
};

// One BPF_PROG_TEST_RUN of `repeat` iterations over one buffer.
RunResult test_run(int prog_fd, const Bytes& frame, std::uint32_t repeat, Bytes* out = nullptr) {
    bpf_test_run_opts opts{};
    opts.sz = sizeof opts;
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<std::uint32_t>(frame.size());
    Bytes buffer;
    if (out) {
        buffer.resize(frame.size() + 256);
        opts.data_out = buffer.data();
        opts.data_size_out = static_cast<std::uint32_t>(buffer.size());
    }
    opts.repeat = static_cast<int>(repeat);
    timespec cpu0{}, cpu1{};
    rusage usage0{}, usage1{};
    getrusage(RUSAGE_THREAD, &usage0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    const auto start = std::chrono::steady_clock::now();
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) fail("BPF_PROG_TEST_RUN");
    const auto stop = std::chrono::steady_clock::now();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    getrusage(RUSAGE_THREAD, &usage1);
    if (out) {
        buffer.resize(opts.data_size_out);
        *out = std::move(buffer);
    }
    RunResult result;
    result.ns = std::chrono::duration<double, std::nano>(stop - start).count() / repeat;
    result.kernel_ns = opts.duration;
    result.cpu_ns = ((cpu1.tv_sec - cpu0.tv_sec) * 1e9 + (cpu1.tv_nsec - cpu0.tv_nsec)) / repeat;
    result.preempted = usage1.ru_nivcsw - usage0.ru_nivcsw;
    result.retval = opts.retval;
    return result;
}

// One timed run (repetition) of a case is `o.batches` calls of `o.repeat`
// iterations each (single shot: of single_shots / batches calls), the
// batches of all cases interleaved; the run's value is its fastest batch.
// Interference on this shared VM only ever adds time: another task's time
// slice between the test run's cond_resched points, its cache footprint
// afterwards, interrupts and softirqs charged to this thread, the host's
// own contention. Each XDP call also sleeps twice (the kernel re-points its
// XDP dispatcher at the program and back, synchronize_rcu each time), which
// hands the CPU to others. A whole 1,000,000-iteration run caught such a
// burst now and then (+4 to +7 ns on an 8 ns floor); the fastest of several
// short batches is the one least disturbed, for the reference and for the
// path compared with it alike.
struct Stats {
    std::vector<double> samples;       // per run: the fastest batch's CPU time / iterations
    std::vector<double> wall_samples;  // per run: the fastest batch by the wall clock, for reference
    std::vector<double> kernel_samples;  // per run: the kernel's integer average, its fastest batch
    std::vector<std::vector<double>> batch_samples;  // per run, every batch (CPU time / iterations)
    std::vector<int> preempted_batches;  // per run: batches with an involuntary context switch
    double median() const {
        std::vector<double> s = samples;
        std::sort(s.begin(), s.end());
        const std::size_t n = s.size();
        return n == 0 ? 0 : (n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2);
    }
    double min() const { return *std::min_element(samples.begin(), samples.end()); }
    double max() const { return *std::max_element(samples.begin(), samples.end()); }
    // Starts run `run`'s batches (the first batch of a run).
    void begin_run() {
        batch_samples.emplace_back();
        preempted_batches.push_back(0);
        samples.push_back(std::numeric_limits<double>::infinity());
        wall_samples.push_back(std::numeric_limits<double>::infinity());
        kernel_samples.push_back(std::numeric_limits<double>::infinity());
    }
    void add_batch(double cpu_ns, double wall_ns, double kernel_ns, long preempted) {
        batch_samples.back().push_back(cpu_ns);
        if (preempted > 0) ++preempted_batches.back();
        samples.back() = std::min(samples.back(), cpu_ns);
        wall_samples.back() = std::min(wall_samples.back(), wall_ns);
        kernel_samples.back() = std::min(kernel_samples.back(), kernel_ns);
    }
    json to_json() const {
        json j = {{"median_ns", median()}, {"min_ns", min()}, {"max_ns", max()}, {"samples_ns", samples}};
        if (!wall_samples.empty()) j["wall_samples_ns"] = wall_samples;
        if (!kernel_samples.empty()) j["kernel_samples_ns"] = kernel_samples;
        if (!batch_samples.empty()) j["batch_samples_ns"] = batch_samples;
        if (!preempted_batches.empty()) j["preempted_batches"] = preempted_batches;
        return j;
    }
};

struct TimedCase {
    std::string name;
    int prog_fd;
    Bytes frame;
    std::uint32_t verdict;
    Stats stats;
};

std::uint32_t warm_up_iterations(const Options& o) { return std::max<std::uint32_t>(o.repeat / 10, 1000); }

// Iterations one case runs in time_interleaved: the warm-up and every batch.
std::uint64_t timed_iterations(const Options& o) {
    return warm_up_iterations(o) + std::uint64_t{o.repeat} * o.batches * o.runs;
}

// Times the cases interleaved: batch b of every case, then batch b + 1 (the
// order rotated from one batch to the next), run k's batches before run
// k + 1's. So a burst of load from other work on this machine lands on all
// of them alike and their per-run ratios stay comparable. One warm-up
// call per case first (which also brings the maps into the state the loop
// keeps them in) checks its verdict.
void time_interleaved(std::vector<TimedCase>& cases, const Options& o) {
    for (auto& c : cases) {
        const RunResult warm = test_run(c.prog_fd, c.frame, warm_up_iterations(o));
        if (warm.retval != c.verdict) {
            throw std::runtime_error(fmt::format("{}: warm-up returned {} instead of {}", c.name,
                                                 warm.retval, c.verdict));
        }
    }
    for (int run = 0; run < o.runs; ++run) {
        for (auto& c : cases) c.stats.begin_run();
        for (int batch = 0; batch < o.batches; ++batch) {
            for (std::size_t i = 0; i < cases.size(); ++i) {
                TimedCase& c = cases[(i + static_cast<std::size_t>(batch)) % cases.size()];
                const RunResult r = test_run(c.prog_fd, c.frame, o.repeat);
                if (r.retval != c.verdict) throw std::runtime_error(c.name + ": unexpected verdict");
                // This thread's CPU time: on this busy machine the test-run
                // loop yields to other tasks (cond_resched) and the wall clock
                // counts their time slices too. The kernel's own average
                // excludes them as well but is truncated to whole ns; both
                // are kept for reference.
                c.stats.add_batch(r.cpu_ns, r.ns, r.kernel_ns, r.preempted);
            }
        }
    }
}

// One case alone, timed as time_interleaved times several.
Stats time_repeat(int prog_fd, const Bytes& frame, const Options& o, std::uint32_t expect_retval,
                  std::uint64_t* iterations = nullptr) {
    std::vector<TimedCase> one = {{"", prog_fd, frame, expect_retval, {}}};
    time_interleaved(one, o);
    if (iterations) *iterations = timed_iterations(o);
    return one.front().stats;
}

// Single-shot mode: one run per syscall (repeat = 1), each on a frame from
// the case's make(i), the kernel's per-run durations averaged over a batch
// of single_shots / batches calls. Cases interleaved batch by batch like
// time_interleaved, so the SYN path and the single-shot floor it is
// compared with see the same minute of this shared machine; a run's value
// is its fastest batch's average. Each case draws its frames from its own
// counter.
struct SingleShotCase {
    std::string name;
    int prog_fd;
    std::function<Bytes(std::uint32_t)> make;
    std::uint32_t verdict;
    std::uint32_t made = 0;  // frames made so far (the next client's index)
    Stats stats;
};

// Average kernel duration of `n` single shots of case c (frames made first).
double single_shot_batch(SingleShotCase& c, std::uint32_t n, long* preempted) {
    std::vector<Bytes> frames(n);
    for (std::uint32_t i = 0; i < n; ++i) frames[i] = c.make(c.made++);
    std::uint64_t total = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        const RunResult r = test_run(c.prog_fd, frames[i], 1);
        if (r.retval != c.verdict) throw std::runtime_error(c.name + ": unexpected verdict (single shot)");
        total += r.kernel_ns;
        if (preempted) *preempted += r.preempted;
    }
    return static_cast<double>(total) / n;
}

void time_single_shots_interleaved(std::vector<SingleShotCase>& cases, const Options& o) {
    const std::uint32_t per_batch = std::max<std::uint32_t>(o.single_shots / o.batches, 1);
    for (auto& c : cases) single_shot_batch(c, std::max<std::uint32_t>(o.single_shots / 10, 100), nullptr);
    for (int run = 0; run < o.runs; ++run) {
        for (auto& c : cases) c.stats.begin_run();
        for (int batch = 0; batch < o.batches; ++batch) {
            for (std::size_t i = 0; i < cases.size(); ++i) {
                SingleShotCase& c = cases[(i + static_cast<std::size_t>(batch)) % cases.size()];
                long preempted = 0;
                const double mean = single_shot_batch(c, per_batch, &preempted);
                c.stats.add_batch(mean, mean, mean, preempted);
            }
        }
    }
}

// bench/bpf/baseline.bpf.c loaded: the floors (XDP_PASS, XDP_DROP, a bare
// TC program) and the seed algorithm.
using BaselineObject = std::unique_ptr<bench_baseline, void (*)(bench_baseline*)>;

BaselineObject load_baseline() {
    bench_baseline* object = bench_baseline__open_and_load();
    if (!object) fail("loading the baseline BPF object");
    return BaselineObject(object, bench_baseline__destroy);
}

// The single-shot XDP_PASS floor, the reference every single-shot path is
// timed against.
SingleShotCase floor_single_shot_case(const bench_baseline& base) {
    return {"xdp_pass_single_shot", bpf_program__fd(base.progs.bench_pass),
            [frame = make_frame({})](std::uint32_t) { return frame; }, kXdpPass, 0, {}};
}

void pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) fail("pinning the benchmark thread");
}

// ---------------------------------------------------------------- portmux

struct PortmuxSizes {
    std::uint32_t state_slots = PORTMUX_DEFAULT_STATE_SLOTS;
    std::uint32_t flow_entries = PORTMUX_DEFAULT_FLOW_TABLE_SIZE;
};

// Sizes the maps as the loader's size_maps() (loader/attachment.cpp) does
// for a config of sizes.state_slots frontends: every map indexed by
// frontend slot must hold them all (bench_scaling writes 65,535). By name,
// and only those the object has: the client tables differ between versions
// of the data path (replies, direct_clients).
portmux::SkeletonPtr load_portmux(const PortmuxSizes& sizes) {
    portmux::SkeletonPtr skel = portmux::open_skeleton();
    const std::pair<const char*, std::uint32_t> map_sizes[] = {
        {"frontend_state", sizes.state_slots},
        {"frontend_configs", PORTMUX_CONFIG_BUFFERS * sizes.state_slots},
        {"counter_bases", sizes.state_slots},
        {"flows", sizes.flow_entries},
        {"replies", sizes.flow_entries},
        {"direct_clients", sizes.flow_entries},
    };
    for (const auto& [name, entries] : map_sizes) {
        bpf_map* map = bpf_object__find_map_by_name(skel->obj, name);
        if (map && bpf_map__set_max_entries(map, entries) != 0) fail(fmt::format("sizing map {}", name));
    }
    if (int err = portmux_bpf__load(skel.get()); err) {
        errno = -err;
        fail("loading the portmux BPF object");
    }
    return skel;
}

portmux::DataPathMaps data_path_maps(const portmux_bpf& skel) {
    return portmux::data_path_maps(skel);  // with the ports array the data path needs
}

portmux::Frontend frontend(std::uint16_t port, portmux::Protocol protocol,
                           std::vector<std::uint16_t> backends) {
    portmux::Frontend f;
    f.port = port;
    f.protocol = protocol;
    for (std::uint16_t b : backends) f.backends.emplace_back(b);
    return f;
}

// Clears every flow and reply entry (between scenarios).
void clear_table(int fd) {
    portmux_flow_key key{}, next{};
    std::vector<portmux_flow_key> keys;
    while (bpf_map_get_next_key(fd, keys.empty() ? nullptr : &key, &next) == 0) {
        keys.push_back(next);
        key = next;
    }
    for (const auto& k : keys) bpf_map_delete_elem(fd, &k);
}

// The per-CPU state of one frontend, summed over CPUs.
struct FrontendCounters {
    std::uint64_t received = 0, forwarded = 0, dropped = 0;
};

FrontendCounters counters_of(const portmux::DataPathMaps& maps, std::uint16_t port,
                             portmux::Protocol protocol) {
    const std::optional<portmux_frontend> installed = portmux::installed_config(maps, protocol, port);
    if (!installed) fail("reading a frontend");
    portmux_frontend value = *installed;
    const int cpus = libbpf_num_possible_cpus();
    std::vector<portmux_frontend_state> states(static_cast<std::size_t>(cpus));
    if (bpf_map_lookup_elem(maps.frontend_state, &value.slot, states.data()) != 0) fail("reading state");
    FrontendCounters c;
    for (const auto& s : states) {
        c.received += s.received;
        for (auto d : s.drops) c.dropped += d;
        for (const auto& b : s.backends) c.forwarded += b.packets;
    }
    return c;
}

FrontendCounters counters_sum(const portmux::DataPathMaps& maps, std::initializer_list<std::uint16_t> ports,
                              portmux::Protocol protocol) {
    FrontendCounters total;
    for (std::uint16_t p : ports) {
        const FrontendCounters c = counters_of(maps, p, protocol);
        total.received += c.received;
        total.forwarded += c.forwarded;
        total.dropped += c.dropped;
    }
    return total;
}

// Throws unless (nearly) every iteration was a forward (or a drop).
void require_hits(const char* what, const FrontendCounters& before, const FrontendCounters& after,
                  std::uint64_t iterations, bool drops) {
    const std::uint64_t got =
        drops ? after.dropped - before.dropped : after.forwarded - before.forwarded;
    // The first couple of iterations of a flow case take the miss path.
    if (got + 4 < iterations || got > iterations) {
        throw std::runtime_error(fmt::format("{}: {} of {} iterations took the timed path", what,
                                             got, iterations));
    }
}

json program_info(int prog_fd) {
    bpf_prog_info info{};
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) fail("reading program info");
    return {{"id", info.id},
            {"xlated_insns", info.xlated_prog_len / 8},
            {"jited_bytes", info.jited_prog_len},
            {"verified_insns", info.verified_insns}};
}

json row(const std::string& name, const Stats& s) {
    json j = s.to_json();
    j["name"] = name;
    return j;
}

// ---------------------------------------------------------------- cases

struct Baselines {
    double pass_ns = 0;
    double pass_single_ns = 0;
};

// The headline comparison, interleaved: the floor, XDP_DROP, the aya demo
// algorithm, portmux's UDP path, and portmux's UDP path stage by stage
// (bench/bpf/ablation.bpf.c, the data path's own code in its own maps).
json bench_headline(const Options& o, Baselines& base) {
    const BaselineObject baseline = load_baseline();
    bench_baseline* skel = baseline.get();
    struct bench_ablation* abl = bench_ablation__open_and_load();
    if (!abl) fail("loading the ablation BPF object");
    std::unique_ptr<struct bench_ablation, void (*)(struct bench_ablation*)> abl_guard(abl, bench_ablation__destroy);
    portmux::SkeletonPtr pm = load_portmux({});

    // The demo's map: 9875 -> [9876], 9876 -> [9875], host byte order.
    struct DemoBackends {
        std::uint16_t ports[4];
        std::uint64_t index;
    };
    for (auto [from, to] : {std::pair<std::uint16_t, std::uint16_t>{kFrontA, kFrontB}, {kFrontB, kFrontA}}) {
        DemoBackends v{{to, 0, 0, 0}, 0};
        if (bpf_map_update_elem(bpf_map__fd(skel->maps.demo_backend_ports), &from, &v, BPF_ANY) != 0)
            fail("writing the demo map");
    }
    // portmux and the ablation object: the ping-pong pair.
    portmux::Config udp;
    udp.frontends = {frontend(kFrontA, portmux::Protocol::udp, {kFrontB}),
                     frontend(kFrontB, portmux::Protocol::udp, {kFrontA})};
    const portmux::DataPathMaps pm_maps = data_path_maps(*pm);
    portmux::write_config(pm_maps, udp);
    portmux::DataPathMaps abl_maps;
    abl_maps.frontend_configs = bpf_map__fd(abl->maps.frontend_configs);
    abl_maps.frontend_state = bpf_map__fd(abl->maps.frontend_state);
    abl_maps.routes = bpf_map__fd(abl->maps.routes);
    abl_maps.ports = bpf_map__fd(abl->maps.ports);
    abl_maps.port_bits = bpf_map__fd(abl->maps.data_port_bits);
    portmux::write_config(abl_maps, udp);

    const Bytes frame = make_frame({});
    const int pass = bpf_program__fd(skel->progs.bench_pass);
    const int drop = bpf_program__fd(skel->progs.bench_drop);
    const int demo = bpf_program__fd(skel->progs.bench_demo);
    const int portmux_prog = bpf_program__fd(pm->progs.portmux_xdp);

    // The demo and portmux must really rewrite: check one run each.
    for (int fd : {demo, portmux_prog}) {
        Bytes out;
        test_run(fd, frame, 1, &out);
        if (dest_port_of(out) != kFrontB) throw std::runtime_error("a balancer did not rewrite");
    }

    // Not portmux's: a datagram to a port that is no frontend and no backend.
    FrameSpec other;
    other.dport = 53;
    const Bytes not_ours = make_frame(other);
    // TC egress: a packet leaving a port that is no backend (most of what
    // leaves an interface), and a reply leaving backend 9876 for the client
    // of the UDP frames above. Its source becomes 9875, which the ping-pong
    // config makes a backend of 9876, so every iteration translates.
    FrameSpec reply_spec;
    reply_spec.saddr = 0xc6120002;
    reply_spec.daddr = 0xc6120001;
    reply_spec.sport = kFrontB;
    reply_spec.dport = 40000;
    const Bytes reply = make_frame(reply_spec);
    FrameSpec leaving;
    leaving.saddr = 0xc6120002;
    leaving.daddr = 0xc6120001;
    leaving.sport = 40001;
    leaving.dport = 443;
    const Bytes not_a_reply = make_frame(leaving);
    const int tc_pass = bpf_program__fd(skel->progs.bench_tc_pass);
    const int portmux_tc = bpf_program__fd(pm->progs.portmux_tc_egress);

    std::vector<TimedCase> cases = {
        {"xdp_pass", pass, frame, kXdpPass, {}},
        {"xdp_drop", drop, frame, kXdpDrop, {}},
        {"aya_demo", demo, frame, kXdpPass, {}},
        {"udp", portmux_prog, frame, kXdpPass, {}},
        {"udp_not_a_frontend", portmux_prog, not_ours, kXdpPass, {}},
        {"tc_pass", tc_pass, not_a_reply, kTcUnspec, {}},
        {"tc_not_a_reply", portmux_tc, not_a_reply, kTcUnspec, {}},
        {"tc_reply", portmux_tc, reply, kTcUnspec, {}},
        {"parse", bpf_program__fd(abl->progs.abl_parse), frame, kXdpPass, {}},
        {"parse_lookup", bpf_program__fd(abl->progs.abl_lookup), frame, kXdpPass, {}},
        {"parse_lookup_rr_rewrite", bpf_program__fd(abl->progs.abl_rewrite), frame, kXdpPass, {}},
        {"full", bpf_program__fd(abl->progs.abl_full), frame, kXdpPass, {}},
    };
    // The reply is really translated (after the UDP check above recorded
    // what translation needs), and the other packet is left alone.
    {
        Bytes out;
        test_run(portmux_tc, reply, 1, &out);
        if (source_port_of(out) != kFrontA) throw std::runtime_error("TC egress did not translate a reply");
        test_run(portmux_tc, not_a_reply, 1, &out);
        if (out != not_a_reply) throw std::runtime_error("TC egress changed a packet that is no reply");
    }
    std::cerr << "headline: floor, drop, aya demo, portmux UDP and its stages, TC egress, interleaved\n";
    const FrontendCounters before = counters_sum(pm_maps, {kFrontA, kFrontB}, portmux::Protocol::udp);
    time_interleaved(cases, o);
    const std::uint64_t iterations = timed_iterations(o) + 1;  // + the rewrite check
    require_hits("headline udp", before, counters_sum(pm_maps, {kFrontA, kFrontB}, portmux::Protocol::udp),
                 iterations, false);

    json baseline_rows = json::array(), ablation_rows = json::array(), headline_rows = json::array();
    json portmux_udp;
    for (auto& c : cases) {
        if (c.name == "xdp_pass") base.pass_ns = c.stats.median();
        if (c.name == "xdp_pass" || c.name == "xdp_drop" || c.name == "aya_demo" || c.name == "tc_pass") {
            baseline_rows.push_back(row(c.name, c.stats));
        } else if (c.name == "udp") {
            portmux_udp = row(c.name, c.stats);
        } else if (c.name == "udp_not_a_frontend" || c.name == "tc_not_a_reply" || c.name == "tc_reply") {
            headline_rows.push_back(row(c.name, c.stats));
        } else {
            ablation_rows.push_back(row(c.name, c.stats));
        }
    }

    // (The single-shot floor is timed with the SYN path, in bench_portmux.)
    json progs = json::object();
    progs["xdp_pass"] = program_info(pass);
    progs["xdp_drop"] = program_info(drop);
    progs["aya_demo"] = program_info(demo);
    progs["tc_pass"] = program_info(tc_pass);
    // Per repetition (run k of each case): the ratios the issue 12 targets
    // are stated in, so a burst of load on this machine shows as a spread.
    json ratios = json::object();
    auto case_named = [&](const std::string& name) -> const TimedCase& {
        return *std::find_if(cases.begin(), cases.end(), [&](const TimedCase& c) { return c.name == name; });
    };
    auto per_run = [&](const std::string& a, const std::string& b, bool difference) {
        json values = json::array();
        const TimedCase& x = case_named(a);
        const TimedCase& y = case_named(b);
        for (std::size_t k = 0; k < x.stats.samples.size(); ++k) {
            values.push_back(difference ? x.stats.samples[k] - y.stats.samples[k]
                                        : x.stats.samples[k] / y.stats.samples[k]);
        }
        return values;
    };
    ratios["udp_over_aya_demo"] = per_run("udp", "aya_demo", false);
    ratios["not_a_frontend_minus_floor_ns"] = per_run("udp_not_a_frontend", "xdp_pass", true);
    ratios["tc_not_a_reply_over_tc_pass"] = per_run("tc_not_a_reply", "tc_pass", false);
    return {{"baseline", {{"rows", baseline_rows}, {"programs", progs}}},
            {"portmux_udp", portmux_udp},
            {"headline_rows", headline_rows},
            {"per_run", ratios},
            {"ablation", ablation_rows}};
}

// Frames of new TCP connections: a different client (address, port) each.
Bytes new_syn(std::uint32_t i, std::uint16_t dport) {
    FrameSpec spec;
    spec.protocol = IPPROTO_TCP;
    spec.tcp_flags = 0x02;
    spec.saddr = 0xc6130000u | ((i >> 14) & 0xffff);  // 198.19.x.y
    spec.sport = static_cast<std::uint16_t>(1024 + (i & 0x3fff));
    spec.dport = dport;
    return make_frame(spec);
}

json bench_portmux(const Options& o) {
    using portmux::Protocol;
    json rows = json::array();
    portmux::SkeletonPtr skel = load_portmux({});
    const int prog = bpf_program__fd(skel->progs.portmux_xdp);
    const portmux::DataPathMaps maps = data_path_maps(*skel);
    const int flows_fd = bpf_map__fd(skel->maps.flows);
    const int direct_clients_fd = bpf_map__fd(skel->maps.direct_clients);

    auto timed = [&](const char* name, const Bytes& frame, std::uint32_t verdict, Protocol proto,
                     bool drops) {
        std::cerr << "portmux: " << name << "\n";
        const FrontendCounters before = counters_sum(maps, {kFrontA, kFrontB}, proto);
        std::uint64_t iterations = 0;
        Stats s = time_repeat(prog, frame, o, verdict, &iterations);
        require_hits(name, before, counters_sum(maps, {kFrontA, kFrontB}, proto), iterations, drops);
        rows.push_back(row(name, s));
    };

    // UDP round robin, the ping-pong pair.
    portmux::Config udp;
    udp.frontends = {frontend(kFrontA, Protocol::udp, {kFrontB}),
                     frontend(kFrontB, Protocol::udp, {kFrontA})};
    portmux::write_config(maps, udp);  // (the UDP hit path itself is timed in bench_headline)

    // (A datagram to a port that is no frontend is timed in bench_headline,
    // interleaved with the floor it is compared with.)

    // UDP round robin for a one-way service: no reply translation, so no
    // reply-table lookup per datagram.
    {
        portmux::Config cfg = udp;
        for (auto& f : cfg.frontends) f.reply_translation = false;
        portmux::write_config(maps, cfg);
        timed("udp_one_way", make_frame({}), kXdpPass, Protocol::udp, false);
    }

    // UDP with flow affinity: after the first two packets every one is a known flow.
    {
        portmux::Config cfg = udp;
        for (auto& f : cfg.frontends) f.affinity = portmux::Affinity::flow;
        portmux::write_config(maps, cfg);
        timed("udp_flow_affinity", make_frame({}), kXdpPass, Protocol::udp, false);
    }

    // Validation drop: the payload must start with "PMX1"; it starts with "XXXX".
    {
        portmux::Config cfg = udp;
        portmux::Validation v;
        v.matches.push_back({0, {'P', 'M', 'X', '1'}, {}});
        cfg.frontends[0].validate = v;
        portmux::write_config(maps, cfg);
        FrameSpec spec;
        spec.payload_prefix = "XXXX";
        timed("udp_validation_drop", make_frame(spec), kXdpDrop, Protocol::udp, true);
    }

    // A validation the packet passes, then round robin (the cost of a validate block).
    {
        portmux::Config cfg = udp;
        portmux::Validation v;
        v.matches.push_back({0, {'P', 'M', 'X', '1'}, {}});
        for (auto& f : cfg.frontends) f.validate = v;
        portmux::write_config(maps, cfg);
        FrameSpec spec;
        spec.payload_prefix = "PMX1";
        timed("udp_validation_pass", make_frame(spec), kXdpPass, Protocol::udp, false);
    }

    // Tag routing: tag "abcd" at payload offset 4 routes 9875 -> 9876 and 9876 -> 9875.
    {
        portmux::Config cfg = udp;
        for (auto& f : cfg.frontends) {
            portmux::Route r;
            r.offset = 4;
            r.length = 4;
            r.tags.push_back({{'a', 'b', 'c', 'd'}, f.backends[0].port});
            f.route = r;
        }
        portmux::write_config(maps, cfg);
        FrameSpec spec;
        spec.payload_prefix = "PMX1abcd";
        timed("udp_tag_routed", make_frame(spec), kXdpPass, Protocol::udp, false);
    }

    // TCP: established flow (ACK of a flow the table knows after the first
    // two iterations), then new flows (SYN, single shot).
    portmux::Config tcp;
    tcp.frontends = {frontend(kFrontA, Protocol::tcp, {kFrontB}),
                     frontend(kFrontB, Protocol::tcp, {kFrontA})};
    portmux::write_config(maps, tcp);
    clear_table(flows_fd);
    clear_table(direct_clients_fd);
    {
        // The connection's SYN to each frontend of the pair first: a SYN
        // records its backend in its slot, and the ACK's first runs in each
        // direction turn the slot into a flow, which every later run follows.
        FrameSpec spec;
        spec.protocol = IPPROTO_TCP;
        spec.tcp_flags = 0x02;  // SYN
        for (std::uint16_t port : {kFrontA, kFrontB}) {
            spec.dport = port;
            test_run(prog, make_frame(spec), 1);
        }
        spec.dport = kFrontA;
        spec.tcp_flags = 0x10;  // ACK
        timed("tcp_established", make_frame(spec), kXdpPass, Protocol::tcp, false);
    }
    json single_shot_floor, syn_per_run = json::array(), syn_over_floor = json::array();
    {
        // A new TCP flow (SYN, a new client each time), single shot,
        // interleaved with the single-shot XDP_PASS floor.
        std::cerr << "portmux: tcp_new_flow (single shot, interleaved with the single-shot floor)\n";
        const BaselineObject base = load_baseline();
        std::vector<SingleShotCase> shots = {
            floor_single_shot_case(*base),
            {"tcp_new_flow_single_shot", prog, [](std::uint32_t i) { return new_syn(i, kFrontA); },
             kXdpPass, 0, {}},
        };
        const FrontendCounters before = counters_sum(maps, {kFrontA, kFrontB}, Protocol::tcp);
        time_single_shots_interleaved(shots, o);
        require_hits("tcp_new_flow", before, counters_sum(maps, {kFrontA, kFrontB}, Protocol::tcp),
                     shots[1].made, false);
        single_shot_floor = row(shots[0].name, shots[0].stats);
        rows.push_back(row(shots[1].name, shots[1].stats));
        for (std::size_t k = 0; k < shots[1].stats.samples.size(); ++k) {
            syn_per_run.push_back(shots[1].stats.samples[k]);
            syn_over_floor.push_back(shots[1].stats.samples[k] / shots[0].stats.samples[k]);
        }
    }
    return {{"rows", rows},
            {"program", program_info(prog)},
            {"single_shot_floor", single_shot_floor},
            {"per_run", {{"tcp_syn_single_shot_ns", syn_per_run},
                         {"tcp_syn_single_shot_over_floor", syn_over_floor}}}};
}

// The UDP path with F frontends and B backends: frontend 9875 rewrites to
// 9875 (all B backend slots name it) so every iteration is a hit; the other
// F - 1 frontends fill the config array.
json bench_scaling(const Options& o) {
    using portmux::Protocol;
    json rows = json::array();
    portmux::SkeletonPtr skel = load_portmux({PORTMUX_MAX_FRONTENDS, PORTMUX_DEFAULT_FLOW_TABLE_SIZE});
    const int prog = bpf_program__fd(skel->progs.portmux_xdp);
    const portmux::DataPathMaps maps = data_path_maps(*skel);
    // (--smoke: past the default 1,024 slots, which catches a map left at its default size.)
    const std::vector<std::uint32_t> frontend_counts =
        o.smoke   ? std::vector<std::uint32_t>{1, 2000}
        : o.quick ? std::vector<std::uint32_t>{1, 65535}
                  : std::vector<std::uint32_t>{1, 100, 10000, 65535};
    const std::vector<std::uint16_t> backend_counts =
        o.smoke ? std::vector<std::uint16_t>{8} : std::vector<std::uint16_t>{1, 8, 64};
    const Bytes frame = make_frame({});
    for (std::uint32_t f_count : frontend_counts) {
        for (std::uint16_t b_count : backend_counts) {
            portmux::Config cfg;
            cfg.frontends.push_back(
                frontend(kFrontA, Protocol::udp, std::vector<std::uint16_t>(b_count, kFrontA)));
            // Fillers: ports counting down from 65535, skipping 9875.
            for (std::uint32_t port = 65535; cfg.frontends.size() < f_count; --port) {
                if (port == kFrontA) continue;
                cfg.frontends.push_back(frontend(static_cast<std::uint16_t>(port), Protocol::udp,
                                                 std::vector<std::uint16_t>(b_count, kFrontA)));
            }
            const auto t0 = std::chrono::steady_clock::now();
            portmux::write_config(maps, cfg);
            const double write_s =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::cerr << fmt::format("scaling: {} frontends x {} backends (config written in {:.2f} s)\n",
                                     f_count, b_count, write_s);
            const FrontendCounters before = counters_of(maps, kFrontA, Protocol::udp);
            std::uint64_t iterations = 0;
            Stats s = time_repeat(prog, frame, o, kXdpPass, &iterations);
            require_hits("scaling", before, counters_of(maps, kFrontA, Protocol::udp), iterations, false);
            json r = row("udp", s);
            r["frontends"] = f_count;
            r["backends"] = b_count;
            r["config_write_s"] = write_s;
            rows.push_back(r);
        }
    }
    return rows;
}

// Reads /proc/loadavg's first three fields, for the record beside the numbers.
std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

// The flow paths with the table holding only the measured flow, and with
// `o.big_flow_table` flows (random clients, bulk-inserted first): two copies
// of the program, each with its own maps, so the SYN single shots of both
// tables and the single-shot floor are timed interleaved (run k of each
// before run k + 1 of any) and see the same minute of this shared machine.
json bench_flow_table(const Options& o) {
    using portmux::Protocol;
    const std::uint32_t capacity = std::max<std::uint32_t>(o.big_flow_table + o.big_flow_table / 16,
                                                           PORTMUX_DEFAULT_FLOW_TABLE_SIZE);
    struct Table {
        portmux::SkeletonPtr skel;
        int prog = -1;
        portmux::DataPathMaps maps;
        int flows_fd = -1;
        std::uint32_t flows = 0;  // entries besides the measured flow
    };
    portmux::Config cfg;
    cfg.frontends = {frontend(kFrontA, Protocol::tcp, {kFrontA})};
    auto make_table = [&](std::uint32_t fill) {
        Table t;
        t.skel = load_portmux({PORTMUX_DEFAULT_STATE_SLOTS, capacity});
        t.prog = bpf_program__fd(t.skel->progs.portmux_xdp);
        t.maps = data_path_maps(*t.skel);
        t.flows_fd = bpf_map__fd(t.skel->maps.flows);
        t.flows = fill;
        portmux::write_config(t.maps, cfg);
        const std::optional<portmux_frontend> installed =
            portmux::installed_config(t.maps, Protocol::tcp, kFrontA);
        if (!installed) fail("reading the TCP frontend");
        const auto t0 = std::chrono::steady_clock::now();
        std::mt19937 rng(42);
        const std::uint32_t batch = 65536;
        std::vector<portmux_flow_key> keys(batch);
        std::vector<portmux_flow> values(batch);
        for (std::uint32_t done = 0; done < fill;) {
            const std::uint32_t n = std::min(batch, fill - done);
            for (std::uint32_t i = 0; i < n; ++i) {
                portmux_flow_key k{};
                k.client_addr[0] = htonl(0xc6120000u | (rng() & 0x1ffff));  // 198.18.0.0/15, a map key only
                k.client_port = htons(static_cast<std::uint16_t>(1024 + rng() % 60000));
                k.service_port = htons(kFrontA);
                k.protocol = PORTMUX_PROTO_TCP;
                k.family = 4;
                keys[i] = k;
                values[i] = {htons(kFrontA), 0, installed->generation, 0, 0};
            }
            __u32 count = n;
            LIBBPF_OPTS(bpf_map_batch_opts, opts);
            if (bpf_map_update_batch(t.flows_fd, keys.data(), values.data(), &count, &opts) != 0) {
                for (std::uint32_t i = 0; i < n; ++i)  // no batch support: one by one
                    bpf_map_update_elem(t.flows_fd, &keys[i], &values[i], BPF_ANY);
            }
            done += n;
        }
        if (fill) {
            std::cerr << fmt::format("flow table: {} flows inserted in {:.2f} s\n", fill,
                                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        return t;
    };
    std::vector<Table> tables;
    tables.push_back(make_table(0));
    tables.push_back(make_table(o.big_flow_table));
    const std::string load_start = load_average();

    FrameSpec ack;
    ack.protocol = IPPROTO_TCP;
    ack.tcp_flags = 0x10;
    const Bytes ack_frame = make_frame(ack);
    FrameSpec syn = ack;
    syn.tcp_flags = 0x02;
    const Bytes syn_frame = make_frame(syn);  // records the slot the ACK's first run turns into a flow

    json rows = json::array();
    for (Table& t : tables) {
        std::cerr << fmt::format("flow table ({} flows): tcp_established\n", t.flows);
        test_run(t.prog, syn_frame, 1);
        const FrontendCounters before = counters_of(t.maps, kFrontA, Protocol::tcp);
        std::uint64_t iterations = 0;
        Stats est = time_repeat(t.prog, ack_frame, o, kXdpPass, &iterations);
        require_hits("flow table", before, counters_of(t.maps, kFrontA, Protocol::tcp), iterations, false);
        json r = row("tcp_established", est);
        r["flows"] = t.flows ? t.flows : 1;
        rows.push_back(r);
    }

    // New flows (SYN, a new client each time), single shot, the two tables
    // and the single-shot XDP_PASS floor interleaved.
    std::cerr << "flow table: tcp_new_flow (single shot, both tables and the floor interleaved)\n";
    const BaselineObject base = load_baseline();
    std::vector<SingleShotCase> shots = {floor_single_shot_case(*base)};
    for (const Table& t : tables) {
        shots.push_back({"tcp_new_flow_single_shot", t.prog,
                         [](std::uint32_t i) { return new_syn(i, kFrontA); }, kXdpPass, 0, {}});
    }
    std::vector<FrontendCounters> before;
    for (const Table& t : tables) before.push_back(counters_of(t.maps, kFrontA, Protocol::tcp));
    Options shot_options = o;
    shot_options.single_shots = std::min<std::uint32_t>(o.single_shots, 20000);
    time_single_shots_interleaved(shots, shot_options);
    json per_run = {{"floor_single_shot_ns", shots[0].stats.samples}, {"load_start", load_start}};
    for (std::size_t i = 0; i < tables.size(); ++i) {
        require_hits("flow table SYN", before[i], counters_of(tables[i].maps, kFrontA, Protocol::tcp),
                     shots[i + 1].made, false);
        json s = row("tcp_new_flow_single_shot", shots[i + 1].stats);
        s["flows"] = tables[i].flows ? tables[i].flows : 1;
        rows.push_back(s);
        json minus_floor = json::array();
        for (std::size_t k = 0; k < shots[i + 1].stats.samples.size(); ++k) {
            minus_floor.push_back(shots[i + 1].stats.samples[k] - shots[0].stats.samples[k]);
        }
        per_run[fmt::format("syn_{}_flows_ns", tables[i].flows)] = shots[i + 1].stats.samples;
        per_run[fmt::format("syn_{}_flows_minus_floor_ns", tables[i].flows)] = minus_floor;
    }
    per_run["load_end"] = load_average();
    return {{"rows", rows}, {"per_run", per_run}};
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
            return argv[++i];
        };
        if (a == "--repeat") o.repeat = static_cast<std::uint32_t>(std::stoul(next()));
        else if (a == "--runs") o.runs = std::stoi(next());
        else if (a == "--batches") o.batches = std::stoi(next());
        else if (a == "--single-shots") o.single_shots = static_cast<std::uint32_t>(std::stoul(next()));
        else if (a == "--flows") o.big_flow_table = static_cast<std::uint32_t>(std::stoul(next()));
        else if (a == "--quick") o.quick = true;
        else if (a == "--smoke") o.smoke = true;
        else if (a == "--headline-only") o.headline_only = true;
        else if (a == "--flow-table-only") o.flow_table_only = true;
        else if (a == "--json") o.json_path = next();
        else {
            std::cerr << "usage: portmux_prog_bench [--repeat N] [--batches B] [--runs K] [--single-shots N] "
                         "[--flows N] [--quick] [--smoke] [--headline-only] [--flow-table-only] [--json FILE]\n";
            return 2;
        }
    }
    try {
        libbpf_set_print([](libbpf_print_level level, const char* fmt, va_list args) {
            return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
        });
        if (o.repeat < 1 || o.batches < 1 || o.runs < 1 || o.single_shots < 1) {
            throw std::invalid_argument("--repeat, --batches, --runs and --single-shots must be at least 1");
        }
        pin_to_cpu(kCpu);
        // Ahead of other work on the CPU it is pinned to (a build's nice-0
        // compilers), so fewer batches are cut into by their time slices.
        // Best effort: without CAP_SYS_NICE it stays at its nice value.
        setpriority(PRIO_PROCESS, 0, -20);
        json doc;
        doc["repeat"] = o.repeat;
        doc["batches"] = o.batches;
        doc["runs"] = o.runs;
        doc["nice"] = getpriority(PRIO_PROCESS, 0);
        doc["single_shots"] = o.single_shots;
        doc["cpu"] = kCpu;
        doc["frame_bytes"] = 64;
        if (o.flow_table_only) {
            const json table = bench_flow_table(o);
            doc["flow_table"] = table["rows"];
            doc["flow_table_per_run"] = table["per_run"];
            const std::string text = doc.dump(2);
            if (o.json_path.empty()) std::cout << text << "\n";
            else std::ofstream(o.json_path) << text << "\n";
            return 0;
        }
        Baselines base;
        json headline = bench_headline(o, base);
        doc["baseline"] = headline["baseline"];
        doc["portmux"] = o.headline_only ? json{{"rows", json::array()}} : bench_portmux(o);
        doc["portmux"]["rows"].insert(doc["portmux"]["rows"].begin(), headline["portmux_udp"]);
        for (const json& r : headline["headline_rows"]) doc["portmux"]["rows"].push_back(r);
        doc["headline_per_run"] = headline["per_run"];
        if (doc["portmux"].contains("single_shot_floor")) {
            base.pass_single_ns = doc["portmux"]["single_shot_floor"]["median_ns"].get<double>();
            doc["baseline"]["rows"].push_back(doc["portmux"]["single_shot_floor"]);
            for (const auto& [k, v] : doc["portmux"]["per_run"].items()) doc["headline_per_run"][k] = v;
        }
        doc["ablation"] = headline["ablation"];
        if (!o.headline_only) doc["scaling"] = bench_scaling(o);
        if (!o.headline_only && !o.smoke) {
            const json table = bench_flow_table(o);
            doc["flow_table"] = table["rows"];
            doc["flow_table_per_run"] = table["per_run"];
        }
        doc["floor_ns"] = base.pass_ns;
        doc["floor_single_shot_ns"] = base.pass_single_ns;
        const std::string text = doc.dump(2);
        if (o.json_path.empty()) {
            std::cout << text << "\n";
        } else {
            std::ofstream(o.json_path) << text << "\n";
        }
    } catch (const std::exception& e) {
        std::cerr << "portmux_prog_bench: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
