// Load generator and counting sinks for bench/run.sh. Every mode is bounded
// by a packet/connection count AND a time limit, and exits by itself.
//
//   udp-send   --dst ADDR --port P|--ports P1,P2,... --size BYTES --count N
//              --seconds S [--sockets K] [--batch B] [--sources A --source-base ADDR]
//       sendmmsg() of BYTES-byte UDP payloads from K connected sockets
//       (K source ports, rotated per batch: K "clients"), socket i to the
//       i-th port of the list (round robin). With A > 1: K x A clients, A
//       source addresses per socket (see UdpSender).
//              [--alt-dst ADDR --alt-ports P1,... --slice-seconds S --pairs N [--base-sources S]
//               --softirq-pid PID]
//       Alternating mode: two systems share the sender, in short slices A B,
//       B A, ... (see udp_send_alternating); --count caps each slice.
//   udp-sink   --ports P1,P2,... [--idle-ms MS] [--seconds S] [--ready FILE]
//              [--tags AB] [--until FILE]
//       recvmmsg() on each port; counts datagrams per port (and per port for
//       each payload tag listed). Ends MS after the last datagram (once one
//       arrived; with --until, once FILE exists too) or after S seconds.
//   tcp-serve  --ports P1,P2,... --seconds S [--ready FILE] [--size BYTES]
//       Answers every BYTES-byte request with BYTES bytes; counts per port.
//   tcp-client --dst ADDR --port P --mode connect|rr --count N --seconds S
//              [--size BYTES] [--conns C]
//       connect: connect, one request/response, close (RST), N times.
//       rr: C persistent connections, N request/response round trips.
//       [--prefix STR]: the first bytes of every request (a routing tag).
//   tcp-client --dst ADDR --ports P1,P2,... --mode connect|rr --slice S --cycles N
//              [--warmup W] [--seconds LIMIT] [--size BYTES] [--prefix STR]
//       Interleaved: the systems listening on P1, P2, ... share the client
//       in slices of S seconds, each once per cycle, in balanced orders
//       (see balanced_orders); latencies pooled per port (see
//       tcp_client_interleaved).
//   tcp-sink   --ports P1,... --expect BYTES --seconds S [--ready FILE]
//       Reads streams; answers 1 byte once a connection delivered BYTES.
//   tcp-stream --dst ADDR --port P --bytes B --streams C --seconds S [--prefix STR]
//       C connections send B bytes in all; throughput until the last answer.
//
// Results are one JSON object on stdout. Options --cpu N pin the process.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
    std::map<std::string, std::string> values;
    std::string get(const std::string& key, const std::string& fallback = "") const {
        auto it = values.find(key);
        if (it != values.end()) return it->second;
        if (fallback.empty()) throw std::invalid_argument("missing --" + key);
        return fallback;
    }
    double real(const std::string& key) const { return std::stod(get(key)); }
    long num(const std::string& key, long fallback = -1) const {
        auto it = values.find(key);
        if (it != values.end()) return std::stol(it->second);
        if (fallback < 0) throw std::invalid_argument("missing --" + key);
        return fallback;
    }
};

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "portmux_loadgen: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

std::vector<int> parse_ports(const std::string& list) {
    std::vector<int> ports;
    std::stringstream ss(list);
    std::string item;
    while (std::getline(ss, item, ',')) ports.push_back(std::stoi(item));
    return ports;
}

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

void pin(const Args& a) {
    const long cpu = a.num("cpu", 1000);
    if (cpu == 1000) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<int>(cpu), &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        // No such CPU here (a one-CPU machine running bench_smoke): run
        // unpinned rather than not at all; the timing is not asserted.
        if (errno != EINVAL) die("sched_setaffinity");
        std::fprintf(stderr, "loadgen: no CPU %ld here, not pinned\n", cpu);
    }
}

void write_ready(const Args& a) {
    const std::string path = a.get("ready", "-");
    if (path != "-") std::ofstream(path) << "ready\n";
}

std::string cpu_json() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    char text[128];
    std::snprintf(text, sizeof text, "\"user_s\": %.3f, \"sys_s\": %.3f",
                  ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
                  ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    return text;
}

sockaddr_in address(const std::string& addr, int port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    if (inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) != 1) {
        throw std::invalid_argument("bad address " + addr);
    }
    return sa;
}

volatile sig_atomic_t g_stop = 0;

// ------------------------------------------------------------------ UDP

// Destination ports: --port P (one) or --ports P1,P2,... (the client spreads
// over them itself: the "direct3" reference with the three backend ports).
std::vector<int> destination_ports(const Args& a) {
    if (a.values.count("ports")) return parse_ports(a.get("ports"));
    return {static_cast<int>(a.num("port"))};
}

// The payload byte that names the system a datagram was sent for, in
// alternating mode (udp-sink --tags counts by it).
constexpr std::size_t kTagOffset = 4;

// Where one system's datagrams go: the addresses, one per destination port.
std::vector<sockaddr_in> destinations(const std::string& addr, const std::vector<int>& ports) {
    std::vector<sockaddr_in> dsts;
    for (int port : ports) dsts.push_back(address(addr, port));
    return dsts;
}

double clock_seconds(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// CPU time of a task from /proc/PID/schedstat (ns, exact; /proc/PID/stat
// counts ticks of 10 ms), or 0 without one.
double task_cpu_seconds(long pid) {
    if (pid <= 0) return 0;
    std::ifstream in("/proc/" + std::to_string(pid) + "/schedstat");
    double ns = 0;
    return (in >> ns) ? ns / 1e9 : 0;
}

// The sender's CPU as /proc/stat counts it (ticks): idle (idle + iowait)
// and softirq, whoever was running when the tick came.
struct CpuTicks {
    double idle_s = 0;
    double softirq_s = 0;
};

CpuTicks cpu_ticks(int cpu) {
    CpuTicks out;
    if (cpu < 0) return out;
    std::ifstream in("/proc/stat");
    const std::string name = "cpu" + std::to_string(cpu);
    std::string label;
    while (in >> label) {
        if (label == name) {
            double user, nice, system, idle, iowait, irq, softirq;
            in >> user >> nice >> system >> idle >> iowait >> irq >> softirq;
            const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
            out.idle_s = (idle + iowait) / hz;
            out.softirq_s = softirq / hz;
            return out;
        }
        in.ignore(1 << 12, '\n');
    }
    return out;
}

// What one stretch of sending did: datagrams, failed calls, its wall time,
// the sender thread's CPU time, the CPU time of the task given by
// --softirq-pid (CPU 0's ksoftirqd: the receive path the sender's datagrams
// trigger runs there when the kernel defers it); and, to tell where the
// rest of the wall time went, how often the sender slept (voluntary
// context switches) or was preempted, and the ticks its CPU spent idle or
// in softirq (charged to whichever task was running).
struct Slice {
    long sent = 0;
    long errors = 0;
    double wall_s = 0;
    double cpu_s = 0;
    double softirq_s = 0;
    long slept = 0;
    long preempted = 0;
    double cpu_idle_s = 0;
    double cpu_softirq_s = 0;
};

rusage thread_usage() {
    rusage ru{};
    getrusage(RUSAGE_THREAD, &ru);
    return ru;
}

// The sending side of udp-send: K sockets and a batch of messages.
// Connected mode (no --sources): K connected sockets, socket i sends to
// ports[i % n]; clients = K source ports.
// Many-clients mode (--sources A): K unconnected sockets with
// IP_TRANSPARENT, each message carries its own destination and (IP_PKTINFO)
// its own source address out of A consecutive ones from --source-base:
// clients = K x A (source port, source address) pairs, and every one of them
// sends within the first K x A / batch calls.
class UdpSender {
public:
    // Where a system's walk over sockets, addresses and destinations stands:
    // kept per system, so that alternating systems each cycle through all
    // their clients as a lone sender would.
    struct Walk {
        long round = 0;
        long message = 0;
        long sources = 0;  // source addresses this walk uses (the first ones); 0: all of --sources
    };

    UdpSender(const Args& a, const std::vector<sockaddr_in>& connect_to)
        : size_(static_cast<std::size_t>(a.num("size"))),
          sockets_(static_cast<int>(a.num("sockets", 48))),
          batch_(static_cast<int>(a.num("batch", 32))),
          spread_sources_(a.values.count("sources") > 0),
          sources_(a.num("sources", 1)),
          softirq_pid_(a.num("softirq-pid", 0)) {
        if (sources_ < 1) throw std::invalid_argument("--sources must be at least 1");
        if (spread_sources_ && inet_pton(AF_INET, a.get("source-base").c_str(), &source_base_) != 1) {
            throw std::invalid_argument("bad --source-base " + a.get("source-base"));
        }
        for (int i = 0; i < sockets_; ++i) {
            int fd = socket(AF_INET, SOCK_DGRAM, 0);
            if (fd < 0) die("socket");
            int sndbuf = 4 << 20;
            setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
            if (spread_sources_) {
                int one = 1;  // send from source addresses this namespace does not own
                if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) != 0) die("IP_TRANSPARENT");
                // DF, never fragmented here: the IP ID is then 0. An unconnected
                // socket's datagrams otherwise take their ID from the kernel's
                // table hashed by (source, destination), a cache line per source
                // address: +12 ns a datagram at 208 addresses and +20-25 ns at
                // 2,084 against 1 (perf, __ip_select_ident), sender work that
                // grows with --sources in A and not in C.
                int pmtu = IP_PMTUDISC_DO;
                if (setsockopt(fd, SOL_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu) != 0) die("IP_MTU_DISCOVER");
                const sockaddr_in any = address("0.0.0.0", 0);
                if (bind(fd, reinterpret_cast<const sockaddr*>(&any), sizeof any) != 0) die("bind");
            } else {
                const sockaddr_in& dst = connect_to[static_cast<std::size_t>(i) % connect_to.size()];
                if (connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof dst) != 0) die("connect");
            }
            fds_.push_back(fd);
        }
        payload_.assign(size_, 'x');
        std::memcpy(payload_.data(), "PMX1", std::min<std::size_t>(4, size_));
        const auto n = static_cast<std::size_t>(batch_);
        iov_.resize(n);
        msgs_.resize(n);
        msg_dst_.resize(n);
        control_.assign(n * kCmsgSpace, 0);
        for (std::size_t i = 0; i < n; ++i) {
            iov_[i] = {payload_.data(), size_};
            msgs_[i] = {};
            msgs_[i].msg_hdr.msg_iov = &iov_[i];
            msgs_[i].msg_hdr.msg_iovlen = 1;
            if (spread_sources_) {
                msgs_[i].msg_hdr.msg_name = &msg_dst_[i];
                msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
                msgs_[i].msg_hdr.msg_control = control_.data() + i * kCmsgSpace;
                msgs_[i].msg_hdr.msg_controllen = kCmsgSpace;
                cmsghdr* c = CMSG_FIRSTHDR(&msgs_[i].msg_hdr);
                c->cmsg_level = SOL_IP;
                c->cmsg_type = IP_PKTINFO;
                c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
            }
        }
    }
    ~UdpSender() {
        for (int fd : fds_) close(fd);
    }
    UdpSender(const UdpSender&) = delete;
    UdpSender& operator=(const UdpSender&) = delete;

    bool spreads_sources() const { return spread_sources_; }
    long clients() const { return static_cast<long>(sockets_) * sources_; }
    long sources() const { return sources_; }
    long sockets() const { return sockets_; }

    // Sends until `count` datagrams or `seconds` have passed (checked every
    // 8 calls), to `dsts` in turn (many-clients mode; connected sockets go
    // where they are connected), each payload carrying `tag` at kTagOffset
    // when `tag` is set.
    Slice send(Walk& walk, const std::vector<sockaddr_in>& dsts, char tag, long count, double seconds) {
        if (tag != 0 && size_ > kTagOffset) payload_[kTagOffset] = tag;
        Slice slice;
        const int cpu = sched_getcpu();
        const CpuTicks ticks0 = cpu_ticks(cpu);
        const rusage usage0 = thread_usage();
        const double softirq0 = task_cpu_seconds(softirq_pid_);
        const double cpu0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
        const auto start = Clock::now();
        for (long calls = 0; slice.sent < count; ++calls, ++walk.round) {
            if ((calls & 7) == 0 && seconds_since(start) > seconds) break;
            const int n = static_cast<int>(std::min<long>(batch_, count - slice.sent));
            if (spread_sources_) {
                // Socket round % K, addresses (round / K) * batch + i: each socket
                // walks through all A addresses, so every pair gets its turn.
                const long block = (walk.round / sockets_) * batch_;
                const long sources = walk.sources > 0 ? std::min(walk.sources, sources_) : sources_;
                for (int i = 0; i < n; ++i) {
                    in_pktinfo info{};
                    info.ipi_spec_dst.s_addr =
                        htonl(ntohl(source_base_.s_addr) + static_cast<std::uint32_t>((block + i) % sources));
                    std::memcpy(CMSG_DATA(CMSG_FIRSTHDR(&msgs_[i].msg_hdr)), &info, sizeof info);
                    msg_dst_[i] = dsts[static_cast<std::size_t>(walk.message++ % static_cast<long>(dsts.size()))];
                }
            }
            const int r = sendmmsg(fds_[static_cast<std::size_t>(walk.round % sockets_)], msgs_.data(),
                                   static_cast<unsigned>(n), 0);
            if (r < 0) {
                ++slice.errors;  // ENOBUFS or ECONNREFUSED (ICMP from a port without a socket)
                continue;
            }
            slice.sent += r;
        }
        slice.wall_s = seconds_since(start);
        slice.cpu_s = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu0;
        slice.softirq_s = task_cpu_seconds(softirq_pid_) - softirq0;
        const rusage usage1 = thread_usage();
        slice.slept = usage1.ru_nvcsw - usage0.ru_nvcsw;
        slice.preempted = usage1.ru_nivcsw - usage0.ru_nivcsw;
        const CpuTicks ticks1 = cpu_ticks(cpu);
        slice.cpu_idle_s = ticks1.idle_s - ticks0.idle_s;
        slice.cpu_softirq_s = ticks1.softirq_s - ticks0.softirq_s;
        return slice;
    }

private:
    static constexpr std::size_t kCmsgSpace = CMSG_SPACE(sizeof(in_pktinfo));
    std::size_t size_;
    int sockets_;
    int batch_;
    bool spread_sources_;
    long sources_;
    long softirq_pid_;
    in_addr source_base_{};
    std::vector<int> fds_;
    std::vector<char> payload_;
    std::vector<iovec> iov_;
    std::vector<mmsghdr> msgs_;
    std::vector<sockaddr_in> msg_dst_;
    std::vector<char> control_;
};

std::string slice_json(const Slice& s) {
    char text[384];
    std::snprintf(text, sizeof text,
                  "\"sent\": %ld, \"send_errors\": %ld, \"wall_s\": %.6f, \"cpu_s\": %.6f, \"softirq_s\": %.6f, "
                  "\"slept\": %ld, \"preempted\": %ld, \"cpu_idle_s\": %.2f, \"cpu_softirq_s\": %.2f",
                  s.sent, s.errors, s.wall_s, s.cpu_s, s.softirq_s, s.slept, s.preempted, s.cpu_idle_s,
                  s.cpu_softirq_s);
    return text;
}

// Alternating mode (--alt-dst, --alt-ports): two systems, A (--dst with
// --port/--ports) and B (--alt-dst with --alt-ports), share one sender and
// one stretch of time: a warm-up slice of each (payload tag 'W', which the
// sink does not count), then --pairs pairs of --slice-seconds slices in the
// order A B, B A, A B, ... (so a steady drift of the machine's speed hits
// both alike), each slice sending at most --count datagrams tagged 'A' or
// 'B'. Every slice is reported, so that ratios can be taken pair by pair.
// With --base-sources S, a third system C goes to A's destinations from
// only the first S source addresses (S x --sockets clients), so that A at
// many clients and A at few are measured in the same seconds: cycles
// A C B, B C A, ... (C always between, so A and C are always adjacent).
int udp_send_alternating(const Args& a, UdpSender& sender, const std::vector<sockaddr_in>& dsts_a) {
    if (!sender.spreads_sources()) throw std::invalid_argument("--alt-dst needs --sources (unconnected sockets)");
    if (static_cast<std::size_t>(a.num("size")) <= kTagOffset) {
        throw std::invalid_argument("--alt-dst needs --size above " + std::to_string(kTagOffset));
    }
    const std::vector<sockaddr_in> dsts_b = destinations(a.get("alt-dst"), parse_ports(a.get("alt-ports")));
    const long count = a.num("count");
    const double slice_s = a.real("slice-seconds");
    const long pairs = a.num("pairs");
    if (pairs < 1 || slice_s <= 0) throw std::invalid_argument("--pairs and --slice-seconds must be positive");
    const bool with_base = a.values.count("base-sources") > 0;
    UdpSender::Walk walk_a, walk_b, walk_c;
    if (with_base) {
        walk_c.sources = a.num("base-sources");
        if (walk_c.sources < 1) throw std::invalid_argument("--base-sources must be at least 1");
    }
    sender.send(walk_a, dsts_a, 'W', count, slice_s);
    if (with_base) sender.send(walk_c, dsts_a, 'W', count, slice_s);
    sender.send(walk_b, dsts_b, 'W', count, slice_s);
    std::string slices;
    Slice total_a, total_b, total_c;
    auto run = [&](char system) {
        UdpSender::Walk& walk = system == 'A' ? walk_a : system == 'B' ? walk_b : walk_c;
        const Slice s = sender.send(walk, system == 'B' ? dsts_b : dsts_a, system, count, slice_s);
        Slice& total = system == 'A' ? total_a : system == 'B' ? total_b : total_c;
        total.sent += s.sent;
        total.errors += s.errors;
        total.wall_s += s.wall_s;
        total.cpu_s += s.cpu_s;
        total.softirq_s += s.softirq_s;
        total.slept += s.slept;
        total.preempted += s.preempted;
        total.cpu_idle_s += s.cpu_idle_s;
        total.cpu_softirq_s += s.cpu_softirq_s;
        slices += std::string(slices.empty() ? "" : ", ") + "{\"system\": \"" + system + "\", " + slice_json(s) + "}";
    };
    for (long p = 0; p < pairs; ++p) {
        run(p % 2 == 0 ? 'A' : 'B');
        if (with_base) run('C');
        run(p % 2 == 0 ? 'B' : 'A');
    }
    const std::string base =
        with_base ? ", \"base_clients\": " + std::to_string(std::min(walk_c.sources, sender.sources()) * sender.sockets()) +
                        ", \"C\": {" + slice_json(total_c) + "}"
                  : std::string();
    std::printf("{\"clients\": %ld, \"pairs\": %ld, \"slice_s\": %.3f, \"A\": {%s}, \"B\": {%s}%s, "
                "\"slices\": [%s], %s}\n",
                sender.clients(), pairs, slice_s, slice_json(total_a).c_str(), slice_json(total_b).c_str(),
                base.c_str(), slices.c_str(), cpu_json().c_str());
    return 0;
}

int udp_send(const Args& a) {
    const std::vector<sockaddr_in> dsts = destinations(a.get("dst"), destination_ports(a));
    pin(a);
    UdpSender sender(a, dsts);
    if (a.values.count("alt-dst")) return udp_send_alternating(a, sender, dsts);
    UdpSender::Walk walk;
    const Slice s = sender.send(walk, dsts, 0, a.num("count"), a.real("seconds"));
    std::printf("{\"sent\": %ld, \"send_errors\": %ld, \"elapsed_s\": %.4f, \"send_pps\": %.0f, "
                "\"clients\": %ld, %s}\n",
                s.sent, s.errors, s.wall_s, s.sent / s.wall_s, sender.clients(), cpu_json().c_str());
    return 0;
}

int udp_sink(const Args& a) {
    const std::vector<int> ports = parse_ports(a.get("ports"));
    const long idle_ms = a.num("idle-ms", 300);
    // --until FILE: the idle end counts only once FILE exists (the sender is
    // done), so a sender starved for longer than idle-ms on a loaded machine
    // does not end the count early.
    const std::string until = a.get("until", "-");
    auto sender_done = [&] { return until == "-" || access(until.c_str(), F_OK) == 0; };
    const double limit = a.values.count("seconds") ? a.real("seconds") : 20.0;
    pin(a);
    const int ep = epoll_create1(0);
    std::vector<int> fds;
    for (std::size_t i = 0; i < ports.size(); ++i) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fd < 0) die("socket");
        int rcvbuf = 8 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
        const sockaddr_in sa = address("0.0.0.0", ports[i]);
        if (bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) die("bind");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<std::uint32_t>(i);
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fds.push_back(fd);
    }
    write_ready(a);

    constexpr int kBatch = 64;
    static char buffers[kBatch][2048];
    iovec iov[kBatch];
    mmsghdr msgs[kBatch];
    std::vector<long> counts(ports.size(), 0);
    // Per payload tag listed in --tags (alternating senders): counts per port.
    const std::string tags = a.get("tags", "-") == "-" ? "" : a.get("tags");
    std::vector<std::vector<long>> tag_counts(tags.size(), std::vector<long>(ports.size(), 0));
    long bytes = 0;
    bool got_any = false;
    Clock::time_point first{}, last{};
    const auto start = Clock::now();
    while (seconds_since(start) < limit) {
        epoll_event events[8];
        const int n = epoll_wait(ep, events, 8, 50);
        if (n <= 0) {
            if (got_any && std::chrono::duration<double, std::milli>(Clock::now() - last).count() > idle_ms &&
                sender_done())
                break;
            continue;
        }
        for (int e = 0; e < n; ++e) {
            const std::uint32_t idx = events[e].data.u32;
            for (;;) {
                for (int i = 0; i < kBatch; ++i) {
                    iov[i] = {buffers[i], sizeof buffers[i]};
                    msgs[i] = {};
                    msgs[i].msg_hdr.msg_iov = &iov[i];
                    msgs[i].msg_hdr.msg_iovlen = 1;
                }
                const int r = recvmmsg(fds[idx], msgs, kBatch, MSG_DONTWAIT, nullptr);
                if (r <= 0) break;
                if (!got_any) {
                    got_any = true;
                    first = Clock::now();
                }
                counts[idx] += r;
                for (int i = 0; i < r; ++i) {
                    bytes += msgs[i].msg_len;
                    if (msgs[i].msg_len > kTagOffset) {
                        const std::size_t t = tags.find(buffers[i][kTagOffset]);
                        if (t != std::string::npos) ++tag_counts[t][idx];
                    }
                }
                last = Clock::now();
                if (r < kBatch) break;
            }
        }
        if (got_any && std::chrono::duration<double, std::milli>(Clock::now() - last).count() > idle_ms &&
                sender_done())
            break;
    }
    long total = 0;
    std::string per_port;
    for (std::size_t i = 0; i < ports.size(); ++i) {
        total += counts[i];
        per_port += (i ? ", " : "") + std::string("\"") + std::to_string(ports[i]) + "\": " +
                    std::to_string(counts[i]);
    }
    std::string per_tag;
    for (std::size_t t = 0; t < tags.size(); ++t) {
        long tag_total = 0;
        std::string tag_ports;
        for (std::size_t i = 0; i < ports.size(); ++i) {
            tag_total += tag_counts[t][i];
            tag_ports += (i ? ", " : "") + std::string("\"") + std::to_string(ports[i]) + "\": " +
                         std::to_string(tag_counts[t][i]);
        }
        per_tag += std::string(t ? ", " : "") + "\"" + tags[t] + "\": {\"received\": " + std::to_string(tag_total) +
                   ", \"per_port\": {" + tag_ports + "}}";
    }
    const double span = got_any ? std::chrono::duration<double>(last - first).count() : 0;
    std::printf("{\"received\": %ld, \"bytes\": %ld, \"per_port\": {%s}, \"per_tag\": {%s}, \"span_s\": %.4f, "
                "\"delivered_pps\": %.0f, %s}\n",
                total, bytes, per_port.c_str(), per_tag.c_str(), span, span > 0 ? total / span : 0.0,
                cpu_json().c_str());
    return 0;
}

// ------------------------------------------------------------------ TCP

bool read_full(int fd, char* buf, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
        const ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            return false;
        }
        got += static_cast<std::size_t>(r);
    }
    return true;
}

bool write_full(int fd, const char* buf, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = write(fd, buf + done, n - done);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            return false;
        }
        done += static_cast<std::size_t>(r);
    }
    return true;
}

int tcp_serve(const Args& a) {
    const std::vector<int> ports = parse_ports(a.get("ports"));
    const double limit = a.real("seconds");
    const std::size_t size = static_cast<std::size_t>(a.num("size", 64));
    pin(a);
    signal(SIGTERM, [](int) { g_stop = 1; });
    signal(SIGINT, [](int) { g_stop = 1; });
    signal(SIGPIPE, SIG_IGN);
    const int ep = epoll_create1(0);
    struct Conn {
        int fd;
        std::size_t port_index;
        std::size_t have;
        char buf[2048];
    };
    std::vector<int> listeners;
    for (std::size_t i = 0; i < ports.size(); ++i) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        const sockaddr_in sa = address("0.0.0.0", ports[i]);
        if (bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) die("bind");
        if (listen(fd, 4096) != 0) die("listen");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;  // listener i (small numbers); connections carry pointers
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        listeners.push_back(fd);
    }
    write_ready(a);
    std::vector<long> conns(ports.size(), 0), requests(ports.size(), 0);
    const auto start = Clock::now();
    while (!g_stop && seconds_since(start) < limit) {
        epoll_event events[64];
        const int n = epoll_wait(ep, events, 64, 100);
        for (int e = 0; e < n; ++e) {
            const std::uint64_t tag = events[e].data.u64;
            if (tag < listeners.size()) {
                for (;;) {
                    const int c = accept4(listeners[tag], nullptr, nullptr, SOCK_NONBLOCK);
                    if (c < 0) break;
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    Conn* conn = new Conn{c, static_cast<std::size_t>(tag), 0, {}};
                    epoll_event ev{};
                    ev.events = EPOLLIN;
                    ev.data.ptr = conn;
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                    ++conns[tag];
                }
                continue;
            }
            Conn* conn = static_cast<Conn*>(events[e].data.ptr);
            bool closed = false;
            for (;;) {
                const ssize_t r = read(conn->fd, conn->buf + conn->have, size - conn->have);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    closed = true;
                    break;
                }
                if (r < 0) break;
                conn->have += static_cast<std::size_t>(r);
                if (conn->have == size) {
                    conn->have = 0;
                    ++requests[conn->port_index];
                    // Small responses: the socket buffer takes them at once.
                    if (!write_full(conn->fd, conn->buf, size)) {
                        closed = true;
                        break;
                    }
                }
            }
            if (closed) {
                epoll_ctl(ep, EPOLL_CTL_DEL, conn->fd, nullptr);
                close(conn->fd);
                delete conn;
            }
        }
    }
    std::string per_port;
    for (std::size_t i = 0; i < ports.size(); ++i) {
        per_port += (i ? ", " : "") + std::string("\"") + std::to_string(ports[i]) + "\": {\"connections\": " +
                    std::to_string(conns[i]) + ", \"requests\": " + std::to_string(requests[i]) + "}";
    }
    std::printf("{\"per_port\": {%s}, %s}\n", per_port.c_str(), cpu_json().c_str());
    return 0;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5));
    return v[i];
}

int connect_to(const sockaddr_in& dst) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{1, 0};  // a lost packet costs a bounded second, never a hang
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof dst) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void close_with_reset(int fd) {
    linger l{1, 0};  // RST: no TIME_WAIT piles up over thousands of connections
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

// What a client sends in every request: SIZE bytes, --prefix (the tag a
// route reads) first.
std::vector<char> client_request(const Args& a, std::size_t size) {
    std::vector<char> request(size, 'r');
    const std::string prefix = a.get("prefix", "-") == "-" ? "" : a.get("prefix");
    std::memcpy(request.data(), prefix.data(), std::min(prefix.size(), size));
    return request;
}

using Micros = std::chrono::duration<double, std::micro>;

// One request and its response on connection FD: the microseconds they
// took, or < 0 if either failed.
double timed_round_trip(int fd, const std::vector<char>& request, std::vector<char>& response) {
    const auto t0 = Clock::now();
    if (!write_full(fd, request.data(), request.size()) || !read_full(fd, response.data(), response.size())) {
        return -1;
    }
    return Micros(Clock::now() - t0).count();
}

// A whole connection: connect, one request/response, close with RST. The
// microseconds from connect to the response, or < 0 if any step failed.
double timed_connection(const sockaddr_in& dst, const std::vector<char>& request, std::vector<char>& response) {
    const auto t0 = Clock::now();
    const int fd = connect_to(dst);
    if (fd < 0) return -1;
    const bool ok = write_full(fd, request.data(), request.size()) && read_full(fd, response.data(), response.size());
    const auto t1 = Clock::now();
    close_with_reset(fd);
    return ok ? Micros(t1 - t0).count() : -1;
}

int tcp_client_single(const Args& a) {
    const sockaddr_in dst = address(a.get("dst"), static_cast<int>(a.num("port")));
    const std::string mode = a.get("mode");
    const long count = a.num("count");
    const double limit = a.real("seconds");
    const std::size_t size = static_cast<std::size_t>(a.num("size", 64));
    pin(a);
    signal(SIGPIPE, SIG_IGN);
    const std::vector<char> request = client_request(a, size);
    std::vector<char> response(size);
    std::vector<double> latency_us;
    long done = 0, failures = 0;
    const auto start = Clock::now();
    if (mode == "connect") {
        for (long i = 0; i < count && seconds_since(start) < limit; ++i) {
            const double us = timed_connection(dst, request, response);
            if (us < 0) {
                ++failures;
                continue;
            }
            ++done;
            latency_us.push_back(us);
        }
    } else {
        const int conns = static_cast<int>(a.num("conns", 6));
        std::vector<int> fds;
        for (int i = 0; i < conns; ++i) {
            const int fd = connect_to(dst);
            if (fd < 0) die("connect");
            fds.push_back(fd);
        }
        for (long i = 0; i < count; ++i) {
            if ((i & 255) == 0 && seconds_since(start) > limit) break;
            const double us = timed_round_trip(fds[static_cast<std::size_t>(i % conns)], request, response);
            if (us < 0) {
                ++failures;
                break;
            }
            latency_us.push_back(us);
            ++done;
        }
        for (int fd : fds) close(fd);
    }
    const double elapsed = seconds_since(start);
    std::printf("{\"mode\": \"%s\", \"completed\": %ld, \"failures\": %ld, \"elapsed_s\": %.4f, "
                "\"per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f, %s}\n",
                mode.c_str(), done, failures, elapsed, done / elapsed, percentile(latency_us, 0.5),
                percentile(latency_us, 0.99), cpu_json().c_str());
    return failures > done ? 1 : 0;
}

// The orders of the cycles of an interleaved run over n targets: a Williams
// design. Row r is r, r+1, r-1, r+2, r-2, ... (mod n); with n odd, the rows
// reversed as well. Over one round of the rows every target takes every
// position equally often and follows every other target equally often, so
// the work one system leaves behind (a relay closing its sockets after a
// slice of connects, a cold cache, a kworker still running) falls on every
// other system alike rather than always on the same neighbour, which a plain
// rotation (A B C, B C A, ...: B always after A) would do.
std::vector<std::vector<std::size_t>> balanced_orders(std::size_t n) {
    std::vector<std::vector<std::size_t>> orders;
    for (std::size_t r = 0; r < n; ++r) {
        std::vector<std::size_t> row;
        for (std::size_t j = 0; j < n; ++j) {
            const std::size_t k = (j + 1) / 2;
            row.push_back(j % 2 ? (r + k) % n : (r + n - k) % n);
        }
        orders.push_back(row);
    }
    if (n % 2 == 1) {
        for (std::size_t r = 0; r < n; ++r) orders.emplace_back(orders[r].rbegin(), orders[r].rend());
    }
    return orders;
}

// One system of an interleaved run: where it listens, its persistent
// connection (rr), and what its slices measured.
struct ClientTarget {
    int port = 0;
    sockaddr_in dst{};
    int fd = -1;  // rr: the persistent connection, -1 until (re)connected
    long completed = 0;
    long failures = 0;
    long warmup_failures = 0;
    double busy_s = 0;  // the sum of its slices' wall time
    std::vector<double> latency_us;
    std::vector<long> slice_completed;
    std::vector<double> slice_p50_us;
};

// tcp-client with --ports: several systems measured in the same seconds.
// The VM's speed swings 2x within seconds, so systems measured one after
// another for a second or more each compare different machines; here every
// cycle gives each system one slice of --slice seconds, in the cycle's
// balanced order, and every system's latencies are pooled over all its
// slices. rr: one persistent connection per system, made up front (a
// --warmup of round trips on each, not counted); connect: connect, one
// request/response, close with RST, repeated within the slice. A slice runs
// at least one operation and ends at the first one to finish after --slice
// seconds; its wall time counts as the system's busy time, and per_s =
// completed / busy seconds. Per port: completed, failures, busy_s, per_s,
// p50/p99/p999 of every operation, and each slice's count and median. A
// round trip that fails closes that connection; the system's next slice
// connects again. --seconds caps the whole run (cycles_done says how many
// cycles ran).
int tcp_client_interleaved(const Args& a) {
    const std::string mode = a.get("mode");
    if (mode != "rr" && mode != "connect") throw std::invalid_argument("--mode must be rr or connect");
    const std::vector<int> ports = parse_ports(a.get("ports"));
    if (ports.empty()) throw std::invalid_argument("--ports names no port");
    for (std::size_t i = 0; i < ports.size(); ++i) {
        if (std::count(ports.begin(), ports.end(), ports[i]) > 1) {
            throw std::invalid_argument("--ports names " + std::to_string(ports[i]) + " twice");
        }
    }
    const double slice_s = a.real("slice");
    const long cycles = a.num("cycles");
    if (slice_s <= 0 || cycles < 1) throw std::invalid_argument("--slice and --cycles must be positive");
    const long warmup = a.num("warmup", 20);
    const double limit = a.values.count("seconds") ? a.real("seconds") : 1e9;
    const std::size_t size = static_cast<std::size_t>(a.num("size", 64));
    pin(a);
    signal(SIGPIPE, SIG_IGN);
    const std::vector<char> request = client_request(a, size);
    std::vector<char> response(size);
    const bool rr = mode == "rr";

    std::vector<ClientTarget> targets(ports.size());
    for (std::size_t i = 0; i < ports.size(); ++i) {
        targets[i].port = ports[i];
        targets[i].dst = address(a.get("dst"), ports[i]);
    }
    // One operation on a target: a round trip on its connection (rr) or a
    // whole connection (connect). The latency in microseconds, or < 0 on
    // failure (counted).
    auto operate = [&](ClientTarget& t) -> double {
        if (rr) {
            if (t.fd < 0 && (t.fd = connect_to(t.dst)) < 0) {
                ++t.failures;
                return -1;
            }
            const double us = timed_round_trip(t.fd, request, response);
            if (us < 0) {
                ++t.failures;
                close(t.fd);
                t.fd = -1;
            }
            return us;
        }
        const double us = timed_connection(t.dst, request, response);
        if (us < 0) ++t.failures;
        return us;
    };
    // Warm-up, not counted: connections made, each system's first requests
    // (a router's first route lookup, a relay's first accept) behind us.
    for (auto& t : targets) {
        for (long i = 0; i < warmup; ++i) operate(t);
        t.warmup_failures = t.failures;
        t.failures = 0;
    }
    const auto orders = balanced_orders(targets.size());
    const auto start = Clock::now();
    long cycles_done = 0;
    for (long c = 0; c < cycles && seconds_since(start) < limit; ++c, ++cycles_done) {
        for (std::size_t index : orders[static_cast<std::size_t>(c) % orders.size()]) {
            ClientTarget& t = targets[index];
            const std::size_t first = t.latency_us.size();
            const auto slice_start = Clock::now();
            double elapsed = 0;
            do {
                const double us = operate(t);
                if (us >= 0) t.latency_us.push_back(us);
                else if (rr && t.fd < 0) break;  // connection lost: the next slice reconnects
                elapsed = seconds_since(slice_start);
            } while (elapsed < slice_s);
            elapsed = seconds_since(slice_start);
            t.busy_s += elapsed;
            const long n = static_cast<long>(t.latency_us.size() - first);
            t.completed += n;
            t.slice_completed.push_back(n);
            std::vector<double> in_slice(t.latency_us.begin() + static_cast<long>(first), t.latency_us.end());
            t.slice_p50_us.push_back(percentile(std::move(in_slice), 0.5));
        }
    }
    const double total_s = seconds_since(start);
    for (auto& t : targets) {
        if (t.fd >= 0) close(t.fd);
    }
    std::string out;
    bool failed = false;
    for (std::size_t i = 0; i < targets.size(); ++i) {
        const ClientTarget& t = targets[i];
        std::string counts, medians;
        for (std::size_t s = 0; s < t.slice_completed.size(); ++s) {
            char num[32];
            std::snprintf(num, sizeof num, "%s%.1f", s ? ", " : "", t.slice_p50_us[s]);
            counts += (s ? ", " : "") + std::to_string(t.slice_completed[s]);
            medians += num;
        }
        char head[512];
        std::snprintf(head, sizeof head,
                      "\"%d\": {\"completed\": %ld, \"failures\": %ld, \"slices\": %zu, \"busy_s\": %.4f, "
                      "\"per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f, "
                      "\"warmup_failures\": %ld, ",
                      t.port, t.completed, t.failures, t.slice_completed.size(), t.busy_s,
                      t.busy_s > 0 ? t.completed / t.busy_s : 0.0, percentile(t.latency_us, 0.5),
                      percentile(t.latency_us, 0.99), percentile(t.latency_us, 0.999),
                      percentile(t.latency_us, 1.0), t.warmup_failures);
        out += std::string(i ? ", " : "") + head + "\"slice_completed\": [" + counts + "], \"slice_p50_us\": [" +
               medians + "]}";
        failed = failed || t.failures > t.completed;
    }
    std::printf("{\"mode\": \"%s\", \"interleaved\": true, \"slice_s\": %.4f, \"cycles\": %ld, \"cycles_done\": %ld, "
                "\"orders\": %zu, \"warmup\": %ld, \"elapsed_s\": %.4f, \"targets\": {%s}, %s}\n",
                mode.c_str(), slice_s, cycles, cycles_done, orders.size(), warmup, total_s, out.c_str(),
                cpu_json().c_str());
    return failed ? 1 : 0;
}

int tcp_client(const Args& a) {
    return a.values.count("ports") ? tcp_client_interleaved(a) : tcp_client_single(a);
}

// Streams: a 1-byte answer from the sink once a connection delivered all its
// bytes, so the client's clock stops when the last byte ARRIVED (through any
// relay), without relying on the relay to pass a half-close on.
int tcp_sink(const Args& a) {
    const std::vector<int> ports = parse_ports(a.get("ports"));
    const double limit = a.real("seconds");
    const long expect = a.num("expect");
    pin(a);
    signal(SIGTERM, [](int) { g_stop = 1; });
    signal(SIGINT, [](int) { g_stop = 1; });
    signal(SIGPIPE, SIG_IGN);
    const int ep = epoll_create1(0);
    std::vector<int> listeners;
    for (std::size_t i = 0; i < ports.size(); ++i) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        const sockaddr_in sa = address("0.0.0.0", ports[i]);
        if (bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) die("bind");
        if (listen(fd, 4096) != 0) die("listen");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        listeners.push_back(fd);
    }
    write_ready(a);
    struct Conn {
        int fd;
        long got;
    };
    static char buf[1 << 18];
    long total = 0, streams = 0, complete = 0;
    const auto start = Clock::now();
    while (!g_stop && seconds_since(start) < limit) {
        epoll_event events[64];
        const int n = epoll_wait(ep, events, 64, 100);
        for (int e = 0; e < n; ++e) {
            const std::uint64_t tag = events[e].data.u64;
            if (tag < listeners.size()) {
                for (;;) {
                    const int c = accept4(listeners[tag], nullptr, nullptr, SOCK_NONBLOCK);
                    if (c < 0) break;
                    epoll_event ev{};
                    ev.events = EPOLLIN;
                    ev.data.ptr = new Conn{c, 0};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                    ++streams;
                }
                continue;
            }
            Conn* conn = static_cast<Conn*>(events[e].data.ptr);
            bool closed = false;
            for (int reads = 0; reads < 16; ++reads) {  // fairness between streams
                const ssize_t r = read(conn->fd, buf, sizeof buf);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    closed = true;
                    break;
                }
                if (r < 0) break;
                const long before = conn->got;
                conn->got += r;
                total += r;
                if (before < expect && conn->got >= expect) {
                    ++complete;
                    if (write(conn->fd, "K", 1) != 1) closed = true;
                }
            }
            if (closed) {
                epoll_ctl(ep, EPOLL_CTL_DEL, conn->fd, nullptr);
                close(conn->fd);
                delete conn;
            }
        }
    }
    std::printf("{\"bytes\": %ld, \"streams\": %ld, \"complete\": %ld, %s}\n", total, streams, complete,
                cpu_json().c_str());
    return 0;
}

// --streams C connections write --bytes B in all (B / C each, the first
// bytes of each being --prefix), all at once from one epoll loop, then wait
// for each sink's 1-byte answer. Throughput = B / (first connect .. last answer).
int tcp_stream(const Args& a) {
    const sockaddr_in dst = address(a.get("dst"), static_cast<int>(a.num("port")));
    const long total = a.num("bytes");
    const int streams = static_cast<int>(a.num("streams", 1));
    const double limit = a.real("seconds");
    const std::string prefix = a.get("prefix", "-") == "-" ? "" : a.get("prefix");
    pin(a);
    signal(SIGPIPE, SIG_IGN);
    const long each = total / streams;
    std::vector<char> chunk(1 << 17, 's');
    std::memcpy(chunk.data(), prefix.data(), std::min(prefix.size(), chunk.size()));
    struct Stream {
        int fd;
        long sent;
        bool answered;
    };
    std::vector<Stream> all(static_cast<std::size_t>(streams));
    const int ep = epoll_create1(0);
    const auto start = Clock::now();
    for (int i = 0; i < streams; ++i) {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        if (connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof dst) != 0) die("connect");
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        all[static_cast<std::size_t>(i)] = {fd, 0, false};
        epoll_event ev{};
        ev.events = EPOLLOUT | EPOLLIN;
        ev.data.u32 = static_cast<std::uint32_t>(i);
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    int answered = 0, failed = 0;
    long sent_total = 0;
    while (answered + failed < streams && seconds_since(start) < limit) {
        epoll_event events[64];
        const int n = epoll_wait(ep, events, 64, 100);
        for (int e = 0; e < n; ++e) {
            Stream& s = all[events[e].data.u32];
            if (s.answered) continue;
            if (events[e].events & EPOLLOUT && s.sent < each) {
                // The prefix goes out first, at offset 0 of the stream only.
                const char* from = s.sent == 0 ? chunk.data() : chunk.data() + prefix.size();
                const std::size_t room = s.sent == 0 ? chunk.size() : chunk.size() - prefix.size();
                const ssize_t w = write(s.fd, from, static_cast<std::size_t>(std::min<long>(room, each - s.sent)));
                if (w > 0) {
                    s.sent += w;
                    sent_total += w;
                }
                if (s.sent >= each) {  // only the answer is awaited now
                    epoll_event ev{};
                    ev.events = EPOLLIN;
                    ev.data.u32 = events[e].data.u32;
                    epoll_ctl(ep, EPOLL_CTL_MOD, s.fd, &ev);
                }
            }
            if (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                char k = 0;
                const ssize_t r = read(s.fd, &k, 1);
                if (r == 1 && s.sent >= each) {
                    s.answered = true;
                    ++answered;
                } else if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    s.answered = true;
                    ++failed;
                }
            }
        }
    }
    const double elapsed = seconds_since(start);
    for (auto& s : all) close(s.fd);
    const bool ok = answered == streams;
    std::printf("{\"streams\": %d, \"answered\": %d, \"failed\": %d, \"bytes\": %ld, \"sent\": %ld, "
                "\"elapsed_s\": %.4f, \"gbit_s\": %.3f, %s}\n",
                streams, answered, failed, ok ? each * streams : 0L, sent_total, elapsed,
                ok ? each * streams * 8.0 / elapsed / 1e9 : 0.0, cpu_json().c_str());
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: portmux_loadgen udp-send|udp-sink|tcp-serve|tcp-client|tcp-sink|tcp-stream --key value...\n");
        return 2;
    }
    Args a;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string key = argv[i];
        if (key.rfind("--", 0) != 0) {
            std::fprintf(stderr, "portmux_loadgen: unexpected %s\n", argv[i]);
            return 2;
        }
        a.values[key.substr(2)] = argv[i + 1];
    }
    const std::string mode = argv[1];
    try {
        if (mode == "udp-send") return udp_send(a);
        if (mode == "udp-sink") return udp_sink(a);
        if (mode == "tcp-serve") return tcp_serve(a);
        if (mode == "tcp-client") return tcp_client(a);
        if (mode == "tcp-sink") return tcp_sink(a);
        if (mode == "tcp-stream") return tcp_stream(a);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "portmux_loadgen: %s\n", e.what());
        return 2;
    }
    std::fprintf(stderr, "portmux_loadgen: unknown mode %s\n", mode.c_str());
    return 2;
}
