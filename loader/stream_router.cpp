#include "stream_router.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "bpf_handles.hpp"
#include "event_log.hpp"
#include "first_bytes.hpp"
#include "maps.hpp"
#include "portmux_stream_bpf.skel.h"
#include "proxy_protocol.hpp"
#include "sockmap_probe.hpp"
#include "stream_address.hpp"
#include "stream_sockets.hpp"
#include "stream_registry.hpp"

namespace portmux {
namespace {

using Clock = std::chrono::steady_clock;
using Milliseconds = std::chrono::milliseconds;

constexpr int kListenBacklog = 4096;
constexpr int kMaxEvents = 256;
// The most clients accepted from one listener in one loop iteration (see
// accept_clients): the connections already open get their turn between.
constexpr std::size_t kAcceptBurst = 64;
// How soon a connection whose side has half-closed is checked again for
// "every redirected byte is in the peer's send queue": starts small (the
// verdict program's backlog usually empties within microseconds), grows
// while a slow peer holds the bytes back.
constexpr Milliseconds kFirstDrainCheck{1};
constexpr Milliseconds kLastDrainCheck{100};
constexpr std::size_t kSpliceChunk = 64 * 1024;
// Backpressure. The kernel queues what the verdict program redirects to a
// peer that cannot send it yet without any limit (the skbs leave the
// sender's receive queue, so its TCP window stays open). Every
// kCheckEvery bytes a socket redirects, the program tells user space,
// which looks at how much of it still waits before the peer's send queue;
// above kHoldAbove the socket is held: the program leaves its data in the
// socket (SK_PASS), charged to its receive buffer, so TCP stops the sender.
// Below kReleaseBelow the hold ends; the bytes held meanwhile are forwarded
// by user space (at most kRelayChunk at a time) before the program
// redirects again. What a hold costs in copying is about one receive
// buffer (kReceiveBuffer): the sender stops once it is full. Holding
// above 24 MiB instead of 8 lets three times more pass between holds.
constexpr std::uint64_t kCheckEvery = 1 << 20;
constexpr std::uint64_t kHoldAbove = 24 << 20;
constexpr std::uint64_t kReleaseBelow = 1 << 20;
constexpr std::size_t kRelayChunk = 256 * 1024;
constexpr Milliseconds kHeldCheck{1};
// Each spliced socket's send buffer, as asked for (the kernel doubles it).
// The psock backlog worker that moves redirected skbs into a socket's send
// queue retries one jiffy (4 ms at HZ=250) after the queue was full, and
// nothing wakes it sooner; an autotuned buffer (tcp_wmem's maximum, 4 MiB
// here) drains in about 2 ms at loopback speed, so the peer idled half the
// time and the backlog grew into holds. 32 MiB covers several jiffies.
constexpr int kSendBuffer = 16 << 20;
// The receive buffer of a spliced socket that carries bulk data (see
// set_receive_buffer_once), as asked for (the kernel doubles it: 1 MiB).
// It bounds what a held sender can still send, which the router then
// copies; autotuned it grows to tcp_rmem's maximum (32 MiB here).
// Redirected skbs leave the receive queue at once, so it does not bound
// the spliced rate. Half of it (a window near 440 KiB) let the
// sender fall into its persist timer after holds in 4 trials of 6, a
// quarter in every trial (0.1x the throughput).
constexpr int kReceiveBuffer = 512 * 1024;
// Unread client bytes at insertion above which the router forwards them
// itself (see splice_with_sockmap): a request below it stays in the kernel.
constexpr int kForwardFirstAbove = 64 * 1024;
constexpr int kNoDeferAccept = 0;
// More than a client can have queued before the router's first read: its
// receive buffer starts at tcp_rmem's default (128 KiB) and grows only as
// it is read.
constexpr std::size_t kFirstFlightBuffer = 1 << 20;
// A closed connection's map entries are deleted in batches, for this many
// sockets at once (two syscalls, one per map), or once the oldest has
// waited this long. The program never looks at them again (a socket's
// cookie is never reused), and at most kStaleEntriesBatch - 1 wait, so a
// map never fills with them.
constexpr std::size_t kStaleEntriesBatch = 64;
constexpr Milliseconds kStaleEntriesDelay{1000};

std::system_error os_error(int error, const std::string& what) {
    return std::system_error(error, std::generic_category(), what);
}

struct StreamSkeletonDestroyer {
    void operator()(portmux_stream_bpf* skeleton) const noexcept {
        portmux_stream_bpf__destroy(skeleton);
    }
};
using StreamSkeletonPtr = std::unique_ptr<portmux_stream_bpf, StreamSkeletonDestroyer>;

void set_int_option(int fd, int level, int name, int value) {
    (void)::setsockopt(fd, level, name, &value, sizeof value);
}

// The window a side is clamped to while the router forwards its held
// bytes. Never below a few segments: TCP_WINDOW_CLAMP also lowers the
// socket's rcv_ssthresh, which raising the clamp again does not restore,
// and the window is capped by rcv_ssthresh until data arriving grows it (by
// two segments per segment). A window below one segment stops a Linux
// sender until its persist timer fires (200 ms, backing off).
int catch_up_window(int fd) {
    constexpr int kLeast = 64 * 1024;
    tcp_info info{};
    socklen_t length = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) {
        return kLeast;
    }
    return std::max<int>(kLeast, static_cast<int>(4 * info.tcpi_advmss));
}

// Returns once no verdict program runs on FD's socket that started before
// the call: the program runs under the socket lock (tcp_read_skb), and a
// receive takes that lock. A peek of one byte changes nothing.
void wait_for_verdicts(int fd) {
    std::uint8_t byte = 0;
    (void)::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
}

// SO_SNDBUFFORCE passes net.core.wmem_max by (CAP_NET_ADMIN, which the
// service has); without it SO_SNDBUF gives what wmem_max allows.
void set_send_buffer(int fd) {
    int size = kSendBuffer;
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0 && errno == EPERM) {
        (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
}

// Set once the connection is established, so the window scale negotiated
// at SYN time (from the default buffer) stays, and only on a side that
// carries bulk data (set_receive_buffer_once). A buffer set by hand is no
// longer autotuned, and neither is the window clamp, which stays where the
// handshake left it (about 128 KiB): raise it to the new buffer, or the
// window never opens beyond that.
void set_receive_buffer(int fd) {
    int size = kReceiveBuffer;
    int granted = 2 * size;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
        // Without CAP_NET_ADMIN: what net.core.rmem_max allows.
        socklen_t length = sizeof granted;
        if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) != 0 ||
            ::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &length) != 0) {
            return;
        }
    }
    set_int_option(fd, IPPROTO_TCP, TCP_WINDOW_CLAMP, granted);
}

// The congestion control a new TCP socket gets here (the network
// namespace's default), empty if it cannot be read.
std::string default_congestion_control() {
    UniqueFd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe) {
        probe.reset(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    }
    char name[16] = {};  // the kernel's TCP_CA_NAME_MAX
    socklen_t length = sizeof name;
    if (!probe || ::getsockopt(probe.get(), IPPROTO_TCP, TCP_CONGESTION, name, &length) != 0) {
        return {};
    }
    return std::string(name, strnlen(name, std::min<std::size_t>(length, sizeof name)));
}

// Closing with SO_LINGER 0 sends a RST instead of a FIN.
void close_with_reset(UniqueFd& fd) {
    if (fd) {
        const linger reset{1, 0};
        (void)::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        fd.reset();
    }
}

std::uint64_t socket_cookie(int fd) {
    std::uint64_t cookie = 0;
    socklen_t length = sizeof cookie;
    if (::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &length) != 0) {
        return 0;
    }
    return cookie;
}

bool read_tcp_info(int fd, tcp_info& info) {
    info = {};
    socklen_t length = sizeof info;
    return ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) == 0;
}

// Bytes in FD's receive queue (SIOCINQ), -1 if it cannot be asked.
int unread_bytes(int fd) {
    int unread = 0;
    return ::ioctl(fd, SIOCINQ, &unread) == 0 ? unread : -1;
}

int socket_error(int fd) {
    int error = 0;
    socklen_t length = sizeof error;
    (void)::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    return error;
}

// Every byte the router copies itself is read with read(2), not recv(2):
// /proc/PID/io counts only read(2) in rchar, so e2e stream_bulk can show
// that the bytes crossing into user space are exactly those counted as
// copied. The sockets are non-blocking.
ssize_t read_copied(int fd, std::uint8_t* buffer, std::size_t length) {
    return ::read(fd, buffer, length);
}

enum class ConnectState { pending, connected, failed };

// Where a non-blocking connect() stands, from the socket's TCP state. A
// backend that accepted and already closed its side (CLOSE_WAIT) counts as
// connected, as it did by SO_ERROR: the sockhash will not take it, and the
// connection is relayed by the splice(2) fallback.
ConnectState connect_state(int fd) {
    tcp_info info{};
    if (!read_tcp_info(fd, info)) {
        return ConnectState::failed;
    }
    switch (info.tcpi_state) {
    case BPF_TCP_SYN_SENT:
        return ConnectState::pending;
    case BPF_TCP_ESTABLISHED:
    case BPF_TCP_CLOSE_WAIT:
        return ConnectState::connected;
    default:
        return ConnectState::failed;
    }
}

// Writes the COUNT entries KEYS[i] -> VALUES[i] with one syscall. If the
// batch fails (a map type or kernel without batch updates, or an entry that
// does not fit), the entries it did not write are written one by one, every
// one of them even after one fails. True when all are in the map.
template <typename Key, typename Value>
bool update_entries(int map_fd, const Key* keys, const Value* values, std::uint32_t count) {
    std::uint32_t written = count;
    if (count == 0 || bpf_map_update_batch(map_fd, keys, values, &written, nullptr) == 0) {
        return true;
    }
    bool all = true;
    for (std::uint32_t i = written < count ? written : 0; i < count; ++i) {
        all = bpf_map_update_elem(map_fd, &keys[i], &values[i], BPF_ANY) == 0 && all;
    }
    return all;
}

// Deletes the entries of the COUNT KEYS with one syscall. A key that is not
// there ends a batch early; the keys after it are then deleted one by one.
void delete_keys(int map_fd, const std::uint64_t* keys, std::uint32_t count) {
    std::uint32_t deleted = count;
    if (count == 0 || bpf_map_delete_batch(map_fd, keys, &deleted, nullptr) == 0) {
        return;
    }
    for (std::uint32_t i = deleted < count ? deleted : 0; i < count; ++i) {
        (void)bpf_map_delete_elem(map_fd, &keys[i]);
    }
}

// Frontend rules with what the router derives from them once per apply.
struct FrontendRules {
    Frontend frontend;
    std::size_t needed = 0;
    std::vector<std::uint8_t> rr_order;  // indices into frontend.backends
};

enum class TagKind { wake, events, listener, client, backend };

struct Connection;
struct Listener;

struct EpollTag {
    TagKind kind = TagKind::wake;
    Connection* connection = nullptr;
    Listener* listener = nullptr;
};

// What a connection waits for with a time limit: its first bytes, its
// backend's connect and the first bytes' write (refused when it passes);
// the next check of a side held or forwarding passed bytes (kHeldCheck);
// the next check that a half-closed side's bytes have all been forwarded.
enum class TimerKind : std::uint8_t { deadline, flow_check, drain_check };
constexpr std::size_t kTimerKinds = 3;

// Every armed timer of every connection, soonest first: the loop looks at
// the ones due and sleeps until the next, instead of going over every
// connection at every wake-up. A connection disarms its timers as it
// closes, so no entry outlives its connection.
using TimerQueue = std::multimap<Clock::time_point, std::pair<Connection*, TimerKind>>;

struct Timer {
    TimerQueue::iterator entry;
    bool armed = false;
};

// A backend socket made ahead, and whether replace_spare_sockets() is to
// make another: at the start and once taken; not again after a socket()
// that failed.
struct SpareSocket {
    UniqueFd fd;
    std::uint64_t cookie = 0;  // SO_COOKIE, read ahead too; 0 if that failed
    bool taken = true;
};

struct Listener {
    UniqueFd fd;
    std::uint16_t port = 0;
    std::shared_ptr<const FrontendRules> rules;
    std::uint32_t rr_cursor = 0;
    bool defers_accept = false;  // TCP_DEFER_ACCEPT set: see set_defer_accept()
    std::uint64_t ready_at_wake = 0;  // the loop iteration it last was ready in (accept_clients)
    EpollTag tag;
};

enum class Phase { reading, connecting, writing, first_reply, spliced, fallback, closed };

struct Side {
    UniqueFd fd;
    std::uint64_t cookie = 0;
    // The program's view of this side (its stream_peers entry).
    std::uint64_t notify_at = 0;
    std::uint64_t released = 0;     // passed bytes written to the peer
    bool held = false;              // the program leaves its data in the socket
    bool relaying = false;          // held, or passed bytes may wait: checked every kHeldCheck
    std::vector<std::uint8_t> relay;  // read from this side, not yet written to the peer
    std::size_t relay_sent = 0;
    int window_clamp = 0;           // TCP_WINDOW_CLAMP to restore, 0: not clamped
    bool receive_buffer_set = false;  // set_receive_buffer() done: it carries bulk data
    std::uint32_t events = 0;       // current epoll interest, 0: not registered
    bool read_closed = false;       // its peer sent FIN
    bool write_shut = false;        // we sent FIN on it
    std::uint64_t user_read = 0;    // bytes the router itself read from it once spliced
    std::uint64_t read_first = 0;   // bytes it read from it before (take_first_flight)
    std::uint64_t user_written = 0; // bytes the router itself wrote to it
};

// One direction of the splice(2) fallback: SOURCE -> pipe -> DESTINATION.
struct PipeRelay {
    UniqueFd read_end;
    UniqueFd write_end;
    std::size_t in_pipe = 0;
    bool source_ended = false;
    bool done = false;  // FIN passed on
};

struct Connection {
    std::uint64_t id = 0;
    Phase phase = Phase::reading;
    std::shared_ptr<const FrontendRules> rules;
    Side client;
    Side backend;
    sockaddr_storage client_address{};  // as accepted: IPv4 clients IPv4-mapped
    std::uint16_t backend_port = 0;
    std::vector<std::uint8_t> first;           // the client's bytes read before splicing
    // Written to the backend before splicing: the PROXY header, if any, and
    // the client's first bytes (take_first_flight).
    std::vector<std::uint8_t> to_backend;
    bool splice_unsafe = false;  // a partly read skb may head the client's queue
    bool client_lowat_raised = false;  // SO_RCVLOWAT above 1 (wait_for_first_bytes)
    std::size_t to_backend_written = 0;
    std::vector<std::uint8_t> to_client;       // backend bytes read before splicing
    std::uint64_t spare_cookie = 0;  // the backend socket's cookie, read when it was made ahead
    std::size_t to_client_written = 0;
    Timer timers[kTimerKinds];
    Milliseconds drain_interval = kFirstDrainCheck;
    bool draining = false;
    PipeRelay client_to_backend;
    PipeRelay backend_to_client;
    EpollTag client_tag;
    EpollTag backend_tag;
};

Timer& timer_of(Connection& connection, TimerKind kind) {
    return connection.timers[static_cast<std::size_t>(kind)];
}

// A side's receive buffer bounds what a held sender can still send (see
// kReceiveBuffer), and a side can be held only from the event of its first
// kCheckEvery redirected bytes on, which sets it first (as does insertion
// for a side relayed from the start, see start_splicing): a connection that
// carries requests and responses never needs it, and is spared two
// setsockopts per side. Until then the kernel autotunes the buffer from
// tcp_rmem's default (128 KiB; seen at 1.6 MiB after 950 KB sent in 8 KiB
// writes), as for any socket.
void set_receive_buffer_once(Side& side) {
    if (!side.receive_buffer_set) {
        side.receive_buffer_set = true;
        set_receive_buffer(side.fd.get());
    }
}

using RouteKey = std::pair<std::uint16_t, std::uint16_t>;  // frontend port, backend port (0: totals)

}  // namespace

// ------------------------------------------------------------------ kernel

std::filesystem::path default_stream_pin_directory() {
    return "/sys/fs/bpf/portmux-stream";
}

std::vector<StreamFrontendStats> read_stream_stats(int connections_fd, int bytes_fd) {
    std::map<std::uint16_t, StreamFrontendStats> frontends;
    std::map<RouteKey, StreamBackendStats> backends;
    portmux_stream_route_key key{};
    portmux_stream_route_key next{};
    bool first = true;
    while (bpf_map_get_next_key(connections_fd, first ? nullptr : &key, &next) == 0) {
        first = false;
        key = next;
        portmux_stream_connections value{};
        if (bpf_map_lookup_elem(connections_fd, &key, &value) != 0) {
            continue;
        }
        if (key.backend_port == 0) {
            StreamFrontendStats& frontend = frontends[key.frontend_port];
            frontend.port = key.frontend_port;
            frontend.accepted = value.accepted;
            frontend.spliced = value.spliced;
            frontend.fallback = value.fallback;
            frontend.unspliced = value.unspliced;
            std::copy(std::begin(value.refused), std::end(value.refused), frontend.refused);
        } else {
            StreamBackendStats& backend = backends[{key.frontend_port, key.backend_port}];
            backend.port = key.backend_port;
            backend.routed = value.routed;
            backend.refused = value.refused[PORTMUX_REFUSED_BACKEND_REFUSED];
            backend.bytes_to_backend += value.splice_bytes_to_backend;
            backend.bytes_to_client += value.splice_bytes_to_client;
            backend.copied_to_backend = value.splice_bytes_to_backend;
            backend.copied_to_client = value.splice_bytes_to_client;
        }
    }
    first = true;
    while (bpf_map_get_next_key(bytes_fd, first ? nullptr : &key, &next) == 0) {
        first = false;
        key = next;
        portmux_stream_bytes value{};
        if (bpf_map_lookup_elem(bytes_fd, &key, &value) != 0) {
            continue;
        }
        StreamBackendStats& backend = backends[{key.frontend_port, key.backend_port}];
        backend.port = key.backend_port;
        backend.bytes_to_backend += value.to_backend;
        backend.bytes_to_client += value.to_client;
        backend.overlaps_trimmed += value.overlaps_trimmed;
    }
    for (auto& [route, backend] : backends) {
        StreamFrontendStats& frontend = frontends[route.first];
        frontend.port = route.first;
        frontend.backends.push_back(backend);
    }
    std::vector<StreamFrontendStats> result;
    for (auto& [port, frontend] : frontends) {
        result.push_back(std::move(frontend));
    }
    return result;
}

std::vector<StreamFrontendStats> read_pinned_stream_stats(const std::filesystem::path& dir) {
    const UniqueFd connections(bpf_obj_get((dir / "stream_connections").c_str()));
    const UniqueFd bytes(bpf_obj_get((dir / "stream_bytes").c_str()));
    if (!connections || !bytes) {
        return {};
    }
    return read_stream_stats(connections.get(), bytes.get());
}

// ------------------------------------------------------------------ router

class StreamRouter::Impl {
public:
    explicit Impl(std::filesystem::path pin_dir);
    ~Impl() { stop(); }

    void apply(const Config& config);
    void stop();
    std::vector<std::uint16_t> listening_ports() const;
    std::size_t open_connections() const;
    std::vector<StreamFrontendStats> stats() const;

private:
    struct PendingApply {
        std::map<std::uint16_t, std::shared_ptr<const FrontendRules>> rules;
        std::vector<std::unique_ptr<Listener>> new_listeners;
        bool done = false;
    };

    // --- loop thread
    void loop();
    void take_pending_apply();
    void handle(const epoll_event& event);
    void accept_clients(Listener& listener);
    bool accept_client(Listener& listener);
    enum class FirstRead { some, none, ended, failed, decided };
    void await_first_bytes(Connection& connection);
    void wait_for_first_bytes(Connection& connection);
    FirstRead read_client(Connection& connection);
    FirstRead read_first_bytes(Connection& connection);
    void decide(Connection& connection, bool stream_ended);
    void connect_backend(Connection& connection, std::uint16_t port);
    UniqueFd new_backend_socket(int family) const;
    SpareSocket& spare_backend_socket(int family);
    void replace_spare_sockets();
    void backend_writable(Connection& connection);
    bool take_first_flight(Connection& connection);
    void write_first_bytes(Connection& connection);
    void hand_off(Connection& connection);
    void await_reply(Connection& connection);
    void first_reply_event(Connection& connection, bool from_client, std::uint32_t events);
    // What take_first_reply() did: copied the reply; found nothing yet;
    // found the backend's FIN and no reply; left the connection to
    // hand_off() now; aborted it.
    enum class FirstReply { relayed, pending, none, hand_off, failed };
    FirstReply take_first_reply(Connection& connection);
    void side_ended(Connection& connection, Side& from, Side& to);
    bool splice_with_sockmap(Connection& connection);
    bool insert_sockets(Connection& connection);
    bool write_socket_entries(Connection& connection);
    void start_splicing(Connection& connection);
    void spliced_event(Connection& connection, Side& side, std::uint32_t events);
    void check_drained(Connection& connection, Clock::time_point now);
    void on_stream_event(std::uint64_t cookie);
    bool queued_for_peer(Side& from, Side& to, std::uint64_t& queued, std::uint64_t& redirected);
    bool write_peer_entry(Side& side, const Side& peer);
    void hold(Connection& connection, Side& from);
    void relay_held(Connection& connection, Side& from, Side& to);
    bool forward_last(Connection& connection, Side& from, Side& to, std::uint64_t passed,
                      std::uint64_t& relayed);
    static bool has_relaying_side(const Connection& connection);
    bool all_forwarded(Side& from, Side& to);
    void start_fallback(Connection& connection);
    void pump_fallback(Connection& connection);
    bool pump(Connection& connection, PipeRelay& relay, Side& from, Side& to);
    void refuse(Connection& connection, Refusal refusal);
    void finish(Connection& connection);
    void abort(Connection& connection, const Side* failed = nullptr);
    void close_connection(Connection& connection, bool reset_client, bool reset_backend);
    void forget_sockets(Connection& connection);
    void forget_entries(Connection& connection);
    void watch(Side& side, EpollTag& tag, std::uint32_t events);
    void arm(Connection& connection, TimerKind kind, Clock::time_point at);
    void disarm(Connection& connection, TimerKind kind);
    void run_timers(Clock::time_point now);
    int next_timeout(Clock::time_point now) const;
    void delete_stale_entries();

    portmux_stream_connections& counters(std::uint16_t frontend, std::uint16_t backend);
    void counters_changed(std::uint16_t frontend, std::uint16_t backend);
    void count_copied(const Connection& connection, const Side& to, std::uint64_t bytes);
    void count_served(const Connection& connection, __u64 portmux_stream_connections::*how);
    void flush_counters();

    StreamSkeletonPtr skeleton_;
    int sockets_fd_ = -1;
    int peers_fd_ = -1;
    int state_fd_ = -1;
    std::unique_ptr<ring_buffer, void (*)(ring_buffer*)> events_{nullptr, ring_buffer__free};
    EpollTag events_tag_{TagKind::events, nullptr, nullptr};
    int bytes_fd_ = -1;
    int connections_fd_ = -1;
    bool use_sockmap_ = true;
    // Set on every backend socket before it connects, if not empty
    // (backend_congestion_control(): no pacing toward a loopback backend).
    std::string backend_congestion_;
    SpareSocket spare_backend_sockets_[2];  // AF_INET, AF_INET6: spare_backend_socket()
    std::filesystem::path pin_dir_;
    bool pinned_ = false;
    std::unique_ptr<StreamRegistry> registry_;  // frontends and drains, for other processes

    UniqueFd epoll_;
    UniqueFd wake_;
    EpollTag wake_tag_;
    std::jthread thread_;

    // Shared with apply(), stop() and the readers.
    mutable std::mutex mutex_;
    std::condition_variable applied_;
    std::mutex apply_mutex_;            // one apply() at a time
    std::shared_ptr<PendingApply> pending_;
    std::set<std::uint16_t> ports_;     // listened on, as apply() left them
    std::size_t open_connections_ = 0;
    bool stopping_ = false;
    bool stopped_ = false;

    // Loop thread only.
    std::map<std::uint16_t, std::unique_ptr<Listener>> listeners_;
    std::uint64_t wake_count_ = 0;  // loop iterations so far (accept_clients)
    std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;
    std::vector<std::uint64_t> dead_;
    // Spliced sockets by cookie: which connection, and whether the client.
    std::unordered_map<std::uint64_t, std::pair<Connection*, bool>> by_cookie_;
    std::uint64_t next_id_ = 1;
    std::map<RouteKey, portmux_stream_connections> counters_;
    std::set<RouteKey> unflushed_;  // routes whose counters_ changed since flush_counters()
    std::set<RouteKey> byte_routes_;  // routes with a `stream_bytes` entry
    TimerQueue timers_;
    std::vector<std::uint8_t> first_flight_;  // take_first_flight()'s buffer
    // Cookies of closed sockets whose `stream_peers` and
    // `stream_sockets_state` entries are still to be deleted, and since when
    // the oldest waits: see forget_entries().
    std::vector<std::uint64_t> stale_cookies_;
    Clock::time_point stale_since_;
};

StreamRouter::Impl::Impl(std::filesystem::path pin_dir) : pin_dir_(std::move(pin_dir)) {
    // Two descriptors per connection (four more for a splice(2) fallback):
    // the default soft limit of 1024 would stop at a few hundred clients.
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &files);
    }

    // By behaviour, not by kernel version (sockmap_probe.hpp).
    const SockmapProbe probe = probe_sockmap_splicing();
    use_sockmap_ = probe.splices;
    if (!probe.event.empty()) {
        log_event(probe.level, probe.event, probe.fields);
    }

    backend_congestion_ = backend_congestion_control(default_congestion_control());
    replace_spare_sockets();

    skeleton_.reset(portmux_stream_bpf__open_and_load());
    if (!skeleton_) {
        throw os_error(errno, "loading the stream verdict program (sockmap/stream_verdict.bpf.c)");
    }
    sockets_fd_ = bpf_map__fd(skeleton_->maps.stream_sockets);
    peers_fd_ = bpf_map__fd(skeleton_->maps.stream_peers);
    state_fd_ = bpf_map__fd(skeleton_->maps.stream_sockets_state);
    bytes_fd_ = bpf_map__fd(skeleton_->maps.stream_bytes);
    connections_fd_ = bpf_map__fd(skeleton_->maps.stream_connections);
    if (bpf_prog_attach(bpf_program__fd(skeleton_->progs.portmux_stream_verdict), sockets_fd_,
                        BPF_SK_SKB_STREAM_VERDICT, 0) != 0) {
        throw os_error(errno, "attaching the stream verdict program to its sockhash");
    }

    if (!pin_dir_.empty()) {
        std::error_code ignored;
        std::filesystem::create_directories(pin_dir_, ignored);
        for (const auto& [map, name] : {std::pair{skeleton_->maps.stream_connections,
                                                  "stream_connections"},
                                        std::pair{skeleton_->maps.stream_bytes, "stream_bytes"}}) {
            const std::filesystem::path path = pin_dir_ / name;
            (void)::unlink(path.c_str());  // a router that was killed left it
            if (bpf_obj_pin(bpf_map__fd(map), path.c_str()) != 0) {
                throw os_error(errno, fmt::format("pinning the stream counters at {}",
                                                  path.string()));
            }
        }
        pinned_ = true;
    }
    registry_ = std::make_unique<StreamRegistry>(pin_dir_);

    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!epoll_ || !wake_) {
        throw os_error(errno, "creating the stream router's event loop");
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = &wake_tag_;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &event) != 0) {
        throw os_error(errno, "creating the stream router's event loop");
    }
    events_.reset(ring_buffer__new(
        bpf_map__fd(skeleton_->maps.stream_events),
        [](void* self, void* data, std::size_t size) {
            if (size >= sizeof(std::uint64_t)) {
                std::uint64_t cookie = 0;
                std::memcpy(&cookie, data, sizeof cookie);
                static_cast<Impl*>(self)->on_stream_event(cookie);
            }
            return 0;
        },
        this, nullptr));
    if (!events_) {
        throw os_error(errno, "opening the stream router's event ring buffer");
    }
    event.events = EPOLLIN;
    event.data.ptr = &events_tag_;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, ring_buffer__epoll_fd(events_.get()), &event) != 0) {
        throw os_error(errno, "creating the stream router's event loop");
    }
    thread_ = std::jthread([this] { loop(); });
}

// ------------------------------------------------------------ apply, stop

namespace {

// One dual-stack socket on [::] serves IPv4 and IPv6 clients (IPV6_V6ONLY
// off, whatever net.ipv6.bindv6only says): a stream frontend, like an XDP
// one, answers on every local address of both families. Only on a kernel
// without IPv6 (socket(AF_INET6) fails) does it listen on 0.0.0.0.
std::unique_ptr<Listener> open_listener(std::uint16_t port) {
    auto listener = std::make_unique<Listener>();
    listener->port = port;
    sockaddr_storage address{};
    listener->fd.reset(::socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (listener->fd) {
        set_int_option(listener->fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 0);
        sockaddr_in6 any{};
        any.sin6_family = AF_INET6;
        any.sin6_port = htons(port);
        any.sin6_addr = in6addr_any;
        std::memcpy(&address, &any, sizeof any);
    } else if (errno == EAFNOSUPPORT) {
        listener->fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        sockaddr_in any{};
        any.sin_family = AF_INET;
        any.sin_port = htons(port);
        any.sin_addr.s_addr = htonl(INADDR_ANY);
        std::memcpy(&address, &any, sizeof any);
    }
    if (!listener->fd) {
        throw os_error(errno, fmt::format("opening a socket for TCP frontend {}", port));
    }
    set_int_option(listener->fd.get(), SOL_SOCKET, SO_REUSEADDR, 1);
    if (::bind(listener->fd.get(), reinterpret_cast<const sockaddr*>(&address),
               address_length(address)) != 0) {
        const int error = errno;
        if (error == EACCES) {
            throw std::runtime_error(fmt::format(
                "cannot listen on TCP frontend {}: ports below 1024 need CAP_NET_BIND_SERVICE",
                port));
        }
        if (error == EADDRINUSE) {
            throw std::runtime_error(fmt::format(
                "cannot listen on TCP frontend {}: the port is already in use", port));
        }
        throw os_error(error, fmt::format("binding TCP frontend {}", port));
    }
    if (::listen(listener->fd.get(), kListenBacklog) != 0) {
        throw os_error(errno, fmt::format("listening on TCP frontend {}", port));
    }
    // Accepted sockets inherit the listener's send buffer (and its lock
    // against autotuning): set here once, not on every client. The receive
    // buffer is not: a listener's locked receive buffer caps the window
    // clamp, and with it the window scale, of every handshake it answers
    // (a scale of 3 for 1 MiB, a window of at most 512 KiB), so it is set
    // on a spliced socket once established, when it turns out to carry
    // bulk data (set_receive_buffer_once).
    set_send_buffer(listener->fd.get());
    // TCP_NODELAY is inherited too. The router's sockets send whatever the
    // peer sent, as it comes: Nagle would hold a small segment back while
    // an earlier one is unacknowledged (a response written in two parts),
    // until the client's delayed ACK, up to 40 ms.
    set_int_option(listener->fd.get(), IPPROTO_TCP, TCP_NODELAY, 1);
    return listener;
}

// How long, in seconds, the kernel holds a handshake whose client has not
// sent a byte before handing it to accept() all the same: one SYN-ACK
// retransmission (1 s). See set_defer_accept().
constexpr int kDeferAcceptSeconds = 1;

// With TCP_DEFER_ACCEPT the listener becomes readable only once a client's
// first bytes (or its FIN) have arrived, so the router accepts, reads and
// decides in one wake-up, instead of accepting a connection whose bytes are
// still on their way (a read that finds nothing, SO_RCVLOWAT, an epoll
// registration and a second wake-up). Only for rules that wait for bytes:
// with none needed the router decides at accept, and a protocol whose
// server speaks first must not wait for the client. A client that sends
// nothing is accepted when the deferral runs out, after one SYN-ACK
// retransmission; await_first_bytes() takes that second off its
// first_data_timeout.
void set_defer_accept(Listener& listener, bool defer) {
    if (listener.defers_accept != defer &&
        ::setsockopt(listener.fd.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT,
                     defer ? &kDeferAcceptSeconds : &kNoDeferAccept, sizeof(int)) == 0) {
        listener.defers_accept = defer;
    }
}

}  // namespace

void StreamRouter::Impl::apply(const Config& config) {
    const std::lock_guard serial(apply_mutex_);
    auto pending = std::make_shared<PendingApply>();
    for (const Frontend& frontend : config.frontends) {
        if (!stream_frontend(frontend)) {
            continue;
        }
        auto rules = std::make_shared<FrontendRules>();
        rules->frontend = frontend;
        rules->needed = first_bytes_needed(frontend);
        rules->rr_order = round_robin_order(frontend.backends);
        pending->rules[frontend.port] = std::move(rules);
    }
    std::set<std::uint16_t> current;
    {
        const std::lock_guard lock(mutex_);
        if (stopping_) {
            throw std::runtime_error("the stream router has stopped");
        }
        current = ports_;
    }
    // Every new listener opens before anything changes: a port that cannot
    // be had fails the whole apply and the old rules stay.
    for (const auto& [port, rules] : pending->rules) {
        if (!current.contains(port)) {
            pending->new_listeners.push_back(open_listener(port));
        }
    }
    std::unique_lock lock(mutex_);
    pending_ = pending;
    std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
    applied_.wait(lock, [&] { return pending->done || stopped_; });
    ports_.clear();
    for (const auto& [port, rules] : pending->rules) {
        ports_.insert(port);
    }
}

void StreamRouter::Impl::stop() {
    {
        const std::lock_guard lock(mutex_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
    }
    if (wake_) {
        std::uint64_t one = 1;
        (void)!::write(wake_.get(), &one, sizeof one);
    }
    if (thread_.joinable()) {
        thread_.join();
    }
    if (registry_) {
        registry_->unpin();
    }
    if (pinned_) {
        (void)::unlink((pin_dir_ / "stream_connections").c_str());
        (void)::unlink((pin_dir_ / "stream_bytes").c_str());
        (void)::rmdir(pin_dir_.c_str());
        pinned_ = false;
    }
}

std::vector<std::uint16_t> StreamRouter::Impl::listening_ports() const {
    const std::lock_guard lock(mutex_);
    return {ports_.begin(), ports_.end()};
}

std::size_t StreamRouter::Impl::open_connections() const {
    const std::lock_guard lock(mutex_);
    return open_connections_;
}

std::vector<StreamFrontendStats> StreamRouter::Impl::stats() const {
    return read_stream_stats(connections_fd_, bytes_fd_);
}

// ------------------------------------------------------------------- loop

void StreamRouter::Impl::loop() {
    epoll_event events[kMaxEvents];
    for (;;) {
        {
            const std::lock_guard lock(mutex_);
            if (stopping_) {
                break;
            }
        }
        const int count = ::epoll_wait(epoll_.get(), events, kMaxEvents, next_timeout(Clock::now()));
        ++wake_count_;
        if (count < 0 && errno != EINTR) {
            fmt::print(stderr, "portmux: stream router: epoll_wait: {}\n", std::strerror(errno));
            break;
        }
        // New clients first: the request of a client accepted now reaches
        // its backend before the router spends its time closing the
        // connections whose ends came in the same wake-up (a sequential
        // client resets one connection and opens the next at once; their
        // events share a wake-up about half the time).
        for (const bool listeners : {true, false}) {
            for (int i = 0; i < count; ++i) {
                if ((static_cast<const EpollTag*>(events[i].data.ptr)->kind == TagKind::listener) ==
                    listeners) {
                    handle(events[i]);
                }
            }
        }
        const Clock::time_point now = Clock::now();
        run_timers(now);
        if (!stale_cookies_.empty() && now >= stale_since_ + kStaleEntriesDelay) {
            delete_stale_entries();
        }
        for (const std::uint64_t id : dead_) {
            connections_.erase(id);
        }
        dead_.clear();
        flush_counters();
        replace_spare_sockets();
        const std::lock_guard lock(mutex_);
        open_connections_ = connections_.size();
    }
    // Stopping: every connection ends with the router.
    for (auto& [id, connection] : connections_) {
        forget_sockets(*connection);
    }
    timers_.clear();
    connections_.clear();
    listeners_.clear();
    const std::lock_guard lock(mutex_);
    open_connections_ = 0;
    stopped_ = true;
    applied_.notify_all();
}

void StreamRouter::Impl::take_pending_apply() {
    std::shared_ptr<PendingApply> pending;
    {
        const std::lock_guard lock(mutex_);
        pending = std::exchange(pending_, nullptr);
    }
    if (!pending) {
        return;
    }
    for (auto it = listeners_.begin(); it != listeners_.end();) {
        if (!pending->rules.contains(it->first)) {
            it = listeners_.erase(it);  // closing the fd leaves the epoll set
        } else {
            it->second->rules = pending->rules.at(it->first);
            set_defer_accept(*it->second, it->second->rules->needed > 0);
            ++it;
        }
    }
    for (std::unique_ptr<Listener>& listener : pending->new_listeners) {
        listener->rules = pending->rules.at(listener->port);
        set_defer_accept(*listener, listener->rules->needed > 0);
        listener->tag = {TagKind::listener, nullptr, listener.get()};
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.ptr = &listener->tag;
        (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener->fd.get(), &event);
        (void)counters(listener->port, 0);
        counters_changed(listener->port, 0);
        const std::uint16_t port = listener->port;
        listeners_[port] = std::move(listener);
    }
    std::vector<Frontend> served;
    for (const auto& [port, rules] : pending->rules) {
        served.push_back(rules->frontend);
    }
    registry_->publish(served);
    flush_counters();  // a new frontend shows in stats once apply() returns
    const std::lock_guard lock(mutex_);
    pending->done = true;
    applied_.notify_all();
}

void StreamRouter::Impl::handle(const epoll_event& event) {
    auto* tag = static_cast<EpollTag*>(event.data.ptr);
    switch (tag->kind) {
    case TagKind::wake: {
        std::uint64_t value = 0;
        (void)!::read(wake_.get(), &value, sizeof value);
        take_pending_apply();
        return;
    }
    case TagKind::events:
        (void)ring_buffer__consume(events_.get());
        return;
    case TagKind::listener:
        accept_clients(*tag->listener);
        return;
    case TagKind::client:
    case TagKind::backend:
        break;
    }
    Connection& connection = *tag->connection;
    const bool from_client = tag->kind == TagKind::client;
    switch (connection.phase) {
    case Phase::reading:
        // More bytes, still short of what the rules need: wait for the rest.
        if (from_client && read_first_bytes(connection) == FirstRead::some) {
            wait_for_first_bytes(connection);
        }
        return;
    case Phase::connecting:
        if (!from_client) {
            backend_writable(connection);
        }
        return;
    case Phase::writing:
        if (!from_client) {
            write_first_bytes(connection);
        }
        return;
    case Phase::first_reply:
        first_reply_event(connection, from_client, event.events);
        return;
    case Phase::spliced:
        spliced_event(connection, from_client ? connection.client : connection.backend,
                      event.events);
        return;
    case Phase::fallback:
        if (Side& side = from_client ? connection.client : connection.backend;
            (event.events & EPOLLERR) != 0 && socket_error(side.fd.get()) != 0) {
            abort(connection, &side);
            return;
        }
        pump_fallback(connection);
        return;
    case Phase::closed:
        return;
    }
}

void StreamRouter::Impl::watch(Side& side, EpollTag& tag, std::uint32_t events) {
    if (side.events == events || !side.fd) {
        return;
    }
    epoll_event event{};
    event.events = events;
    event.data.ptr = &tag;
    if (side.events == 0 && events != 0) {
        (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, side.fd.get(), &event);
    } else if (events == 0) {
        (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, side.fd.get(), nullptr);
    } else {
        (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, side.fd.get(), &event);
    }
    side.events = events;
}

void StreamRouter::Impl::arm(Connection& connection, TimerKind kind, Clock::time_point at) {
    disarm(connection, kind);
    Timer& timer = timer_of(connection, kind);
    timer.entry = timers_.emplace(at, std::pair{&connection, kind});
    timer.armed = true;
}

void StreamRouter::Impl::disarm(Connection& connection, TimerKind kind) {
    Timer& timer = timer_of(connection, kind);
    if (timer.armed) {
        timers_.erase(timer.entry);
        timer.armed = false;
    }
}

// Runs every timer due by NOW. A timer that a handler arms again for NOW or
// earlier runs in this same call.
void StreamRouter::Impl::run_timers(Clock::time_point now) {
    while (!timers_.empty() && timers_.begin()->first <= now) {
        const auto [connection, kind] = timers_.begin()->second;
        disarm(*connection, kind);
        switch (kind) {
        case TimerKind::deadline:
            if (connection->phase == Phase::reading) {
                refuse(*connection, Refusal::timeout);
            } else if (connection->phase == Phase::connecting ||
                       connection->phase == Phase::writing) {
                refuse(*connection, Refusal::backend_refused);
            }
            break;
        case TimerKind::flow_check:
            if (connection->phase != Phase::spliced || !has_relaying_side(*connection)) {
                break;
            }
            arm(*connection, TimerKind::flow_check, now + kHeldCheck);
            relay_held(*connection, connection->client, connection->backend);
            if (connection->phase == Phase::spliced) {
                relay_held(*connection, connection->backend, connection->client);
            }
            if (connection->phase == Phase::spliced && !has_relaying_side(*connection)) {
                disarm(*connection, TimerKind::flow_check);
            }
            break;
        case TimerKind::drain_check:
            if (connection->phase == Phase::spliced && connection->draining) {
                check_drained(*connection, now);
            }
            break;
        }
    }
}

int StreamRouter::Impl::next_timeout(Clock::time_point now) const {
    Clock::time_point next = timers_.empty() ? Clock::time_point::max() : timers_.begin()->first;
    if (!stale_cookies_.empty()) {
        next = std::min(next, stale_since_ + kStaleEntriesDelay);
    }
    if (next == Clock::time_point::max()) {
        return -1;
    }
    if (next <= now) {
        return 0;
    }
    return static_cast<int>(
        std::chrono::ceil<Milliseconds>(next - now).count());
}

// --------------------------------------------------------------- counters

portmux_stream_connections& StreamRouter::Impl::counters(std::uint16_t frontend,
                                                          std::uint16_t backend) {
    return counters_[{frontend, backend}];
}

void StreamRouter::Impl::counters_changed(std::uint16_t frontend, std::uint16_t backend) {
    unflushed_.insert({frontend, backend});
}

// Bytes the router wrote to TO itself, counted as copied to that side.
void StreamRouter::Impl::count_copied(const Connection& connection, const Side& to,
                                      std::uint64_t bytes) {
    portmux_stream_connections& count =
        counters(connection.rules->frontend.port, connection.backend_port);
    (&to == &connection.backend ? count.splice_bytes_to_backend : count.splice_bytes_to_client) +=
        bytes;
    counters_changed(connection.rules->frontend.port, connection.backend_port);
}

// How a routed connection was served (spliced, fallback, unspliced):
// counted for its frontend and its backend.
void StreamRouter::Impl::count_served(const Connection& connection,
                                      __u64 portmux_stream_connections::*how) {
    for (const std::uint16_t backend : {std::uint16_t{0}, connection.backend_port}) {
        ++(counters(connection.rules->frontend.port, backend).*how);
        counters_changed(connection.rules->frontend.port, backend);
    }
}

// Writes the changed counters to `stream_connections`, all in one syscall:
// once per loop iteration rather than at every change (a connection changes
// two routes' counters two or three times as it is accepted and spliced),
// and before a connection is closed, so that a client that sees its
// connection end and then asks `portmux stats` finds it counted. The router
// is the only writer of the map: whole-value updates lose nothing.
void StreamRouter::Impl::flush_counters() {
    if (unflushed_.empty()) {
        return;
    }
    std::vector<portmux_stream_route_key> keys;
    std::vector<portmux_stream_connections> values;
    keys.reserve(unflushed_.size());
    values.reserve(unflushed_.size());
    for (const RouteKey& route : unflushed_) {
        keys.push_back({route.first, route.second});
        values.push_back(counters_[route]);
    }
    unflushed_.clear();
    (void)update_entries(connections_fd_, keys.data(), values.data(),
                         static_cast<std::uint32_t>(keys.size()));
}

// --------------------------------------------------------- first bytes

// One client per wake-up while they come one at a time: a second accept4
// would find the queue empty, a syscall per connection for nothing. The
// listener is level triggered, so one still ready at the very next wake-up
// has a queue: it is emptied then, up to kAcceptBurst. Otherwise a burst of
// clients (64 streams opened at once) is accepted one per loop iteration,
// behind whatever else that iteration does (forwarding held bytes); their
// handshakes are done and they send until their window closes, unread, and
// then wait for their persist timer (200 ms, backing off), since nothing
// reopens the window before the router's first read.
void StreamRouter::Impl::accept_clients(Listener& listener) {
    const bool queued = listener.ready_at_wake + 1 == wake_count_;
    listener.ready_at_wake = wake_count_;
    const std::size_t burst = queued ? kAcceptBurst : 1;
    std::size_t accepted = 0;
    while (accepted < burst && accept_client(listener)) {
        ++accepted;
    }
}

bool StreamRouter::Impl::accept_client(Listener& listener) {
    sockaddr_storage client_address{};
    socklen_t client_length = sizeof client_address;
    UniqueFd client(::accept4(listener.fd.get(), reinterpret_cast<sockaddr*>(&client_address),
                              &client_length, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!client) {
        return false;  // EAGAIN, or a client gone before accept, or out of fds
    }
    auto connection = std::make_unique<Connection>();
    connection->client_address = client_address;
    connection->id = next_id_++;
    connection->rules = listener.rules;
    connection->client.fd = std::move(client);
    connection->client_tag = {TagKind::client, connection.get(), nullptr};
    connection->backend_tag = {TagKind::backend, connection.get(), nullptr};
    arm(*connection, TimerKind::deadline,
        Clock::now() +
            std::chrono::seconds(listener.rules->frontend.first_data_timeout_seconds));
    connection->first.reserve(listener.rules->needed);
    ++counters(listener.port, 0).accepted;
    counters_changed(listener.port, 0);
    Connection& added = *connection;
    connections_[added.id] = std::move(connection);
    if (listener.rules->needed == 0) {
        decide(added, false);
    } else {
        await_first_bytes(added);
    }
    return true;
}

// Most clients send their first bytes right behind the handshake, and a
// listener that defers accept hands the router their connection once those
// are there: one read then decides at once. Fewer bytes than the rules need
// mean "not yet" here, not "ended": the connection then waits, woken only
// once the rest is there (SO_RCVLOWAT) or on FIN or RST.
void StreamRouter::Impl::await_first_bytes(Connection& connection) {
    const FirstRead got = read_first_bytes(connection);
    if (got == FirstRead::decided) {
        return;
    }
    if (got == FirstRead::none) {
        // Not a byte: from a listener that defers accept, a client that sent
        // nothing while the kernel held its handshake, one SYN-ACK
        // retransmission per second of it (1 s, then 2, 4...; the child
        // socket keeps the count). That time counts against its
        // first_data_timeout, which runs from the handshake.
        tcp_info info{};
        if (read_tcp_info(connection.client.fd.get(), info)) {
            const auto held = deferred_handshake_time(info.tcpi_total_retrans);
            if (held.count() > 0) {
                const Timer& deadline = timer_of(connection, TimerKind::deadline);
                arm(connection, TimerKind::deadline, std::max(Clock::now(), deadline.entry->first - held));
            }
        }
    }
    wait_for_first_bytes(connection);
}

// SO_RCVLOWAT counts the bytes not yet read: the rest of what the rules need.
void StreamRouter::Impl::wait_for_first_bytes(Connection& connection) {
    const std::size_t missing = connection.rules->needed - connection.first.size();
    set_int_option(connection.client.fd.get(), SOL_SOCKET, SO_RCVLOWAT, static_cast<int>(missing));
    connection.client_lowat_raised = true;
    watch(connection.client, connection.client_tag, EPOLLIN | EPOLLRDHUP);
}

// Reads what the client has sent since, onto connection.first: every byte
// read goes to the backend ahead of the rest of the stream (take_first_flight).
// It reads the whole receive queue at once: the verdict path hands on every
// skb whole, so a partly read skb at the head would reach the backend a
// second time after insertion. A read that fills the buffer may have
// stopped inside one: that connection is relayed by the splice(2) fallback.
StreamRouter::Impl::FirstRead StreamRouter::Impl::read_client(Connection& connection) {
    first_flight_.resize(kFirstFlightBuffer);
    const ssize_t got =
        read_copied(connection.client.fd.get(), first_flight_.data(), first_flight_.size());
    if (got < 0) {
        return errno == EAGAIN || errno == EINTR ? FirstRead::none : FirstRead::failed;
    }
    if (got == 0) {
        return FirstRead::ended;
    }
    const auto length = static_cast<std::size_t>(got);
    connection.splice_unsafe = connection.splice_unsafe || length == first_flight_.size();
    connection.first.insert(connection.first.end(), first_flight_.begin(),
                            first_flight_.begin() + static_cast<std::ptrdiff_t>(length));
    return FirstRead::some;
}

// Reads, then decides once the rules have their bytes or the client has
// ended or failed: FirstRead::decided, or what the read found otherwise.
StreamRouter::Impl::FirstRead StreamRouter::Impl::read_first_bytes(Connection& connection) {
    const FirstRead got = read_client(connection);
    const bool ended = got == FirstRead::ended || got == FirstRead::failed;
    if (ended || connection.first.size() >= connection.rules->needed) {
        decide(connection, ended);
        return FirstRead::decided;
    }
    return got;
}

void StreamRouter::Impl::decide(Connection& connection, bool stream_ended) {
    const FrontendRules& rules = *connection.rules;
    const FirstBytesDecision decision =
        decide_first_bytes(rules.frontend, connection.first, stream_ended);
    switch (decision.kind) {
    case FirstBytesDecision::Kind::need_more:
        return;
    case FirstBytesDecision::Kind::refuse:
        refuse(connection, decision.refusal);
        return;
    case FirstBytesDecision::Kind::route:
        // A drained backend takes no new connection, not even by its tag.
        if (registry_->drained(decision.backend_port)) {
            connection.backend_port = decision.backend_port;
            refuse(connection, Refusal::backend_refused);
            return;
        }
        connect_backend(connection, decision.backend_port);
        return;
    case FirstBytesDecision::Kind::round_robin: {
        const auto found = listeners_.find(rules.frontend.port);
        if (rules.rr_order.empty() || found == listeners_.end()) {
            refuse(connection, Refusal::backend_refused);
            return;
        }
        // The next backend in round-robin order that is not drained.
        std::uint32_t& cursor = found->second->rr_cursor;
        for (std::size_t tried = 0; tried < rules.rr_order.size(); ++tried) {
            const std::uint8_t index = rules.rr_order[cursor++ % rules.rr_order.size()];
            if (!registry_->drained(rules.frontend.backends[index].port)) {
                connect_backend(connection, rules.frontend.backends[index].port);
                return;
            }
        }
        refuse(connection, Refusal::backend_refused);  // every backend drained
        return;
    }
    }
}

// Everything a backend socket needs before it carries bytes, set while no
// client waits (the client's socket has the same from the listener): its
// send buffer (see set_send_buffer) and TCP_NODELAY (see open_listener).
UniqueFd StreamRouter::Impl::new_backend_socket(int family) const {
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        return fd;
    }
    if (!backend_congestion_.empty()) {
        // Before connect(): a BBR socket asks the stack to pace from its
        // first segment on, and switching later would not stop that.
        (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_CONGESTION, backend_congestion_.data(),
                           backend_congestion_.size());
    }
    set_send_buffer(fd.get());
    set_int_option(fd.get(), IPPROTO_TCP, TCP_NODELAY, 1);
    return fd;
}

// A backend socket made ahead, one per family: a client's request waits
// for the router's socket() and setsockopt()s no more, nor its connection's
// insertion for the socket's cookie: all of them run after the loop has
// handled what woke it (replace_spare_sockets()).
SpareSocket& StreamRouter::Impl::spare_backend_socket(int family) {
    return spare_backend_sockets_[family == AF_INET6 ? 1 : 0];
}

// Once at the start, then for the spares taken since.
void StreamRouter::Impl::replace_spare_sockets() {
    for (const int family : {AF_INET, AF_INET6}) {
        SpareSocket& spare = spare_backend_socket(family);
        if (spare.taken) {
            spare.taken = false;
            spare.fd = new_backend_socket(family);
            spare.cookie = spare.fd ? socket_cookie(spare.fd.get()) : 0;
        }
    }
}

void StreamRouter::Impl::connect_backend(Connection& connection, std::uint16_t port) {
    connection.backend_port = port;
    watch(connection.client, connection.client_tag, 0);
    const sockaddr_storage address = backend_address(connection.client_address, port);
    SpareSocket& spare = spare_backend_socket(address.ss_family);
    if (spare.fd) {
        connection.backend.fd = std::move(spare.fd);
        connection.spare_cookie = spare.cookie;
        spare.taken = true;
    } else {
        connection.backend.fd = new_backend_socket(address.ss_family);
    }
    if (!connection.backend.fd) {
        refuse(connection, Refusal::backend_refused);
        return;
    }
    connection.phase = Phase::connecting;
    if (::connect(connection.backend.fd.get(), reinterpret_cast<const sockaddr*>(&address),
                  address_length(address)) != 0 &&
        errno != EINPROGRESS) {
        refuse(connection, Refusal::backend_refused);
        return;
    }
    if (connection.rules->frontend.proxy_protocol_v2) {
        sockaddr_storage local{};
        socklen_t local_length = sizeof local;
        (void)::getsockname(connection.client.fd.get(), reinterpret_cast<sockaddr*>(&local),
                            &local_length);
        connection.to_backend = proxy_v2_header(connection.client_address, local);
    }
    if (!take_first_flight(connection)) {
        abort(connection, &connection.client);
        return;
    }
    // A backend on this host has usually answered by the time connect()
    // returns, EINPROGRESS notwithstanding: its SYN-ACK is processed as the
    // call releases the socket. The first write tells: it fails with
    // EAGAIN while the connect goes on (EPOLLOUT comes once it is done) and
    // with the connect's error if it failed. With nothing to write, the
    // socket is asked (TCP_INFO). Either saves the round through epoll (an
    // EPOLLOUT registration, a wake-up, the deregistration).
    if (connection.to_backend.empty()) {
        backend_writable(connection);
        return;
    }
    connection.phase = Phase::writing;
    write_first_bytes(connection);
}

// The backend's connect() has gone on (or was just started), with nothing
// to write to it first: carry on once it is connected, wait for EPOLLOUT
// while it is not.
void StreamRouter::Impl::backend_writable(Connection& connection) {
    switch (connect_state(connection.backend.fd.get())) {
    case ConnectState::pending:
        watch(connection.backend, connection.backend_tag, EPOLLOUT);
        return;
    case ConnectState::connected:
        connection.phase = Phase::writing;
        write_first_bytes(connection);
        return;
    case ConnectState::failed:
        refuse(connection, Refusal::backend_refused);
        return;
    }
}

void StreamRouter::Impl::write_first_bytes(Connection& connection) {
    Side& backend = connection.backend;
    while (connection.to_backend_written < connection.to_backend.size()) {
        const ssize_t sent = ::send(backend.fd.get(),
                                    connection.to_backend.data() + connection.to_backend_written,
                                    connection.to_backend.size() - connection.to_backend_written,
                                    MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                watch(backend, connection.backend_tag, EPOLLOUT);
                return;
            }
            refuse(connection, Refusal::backend_refused);
            return;
        }
        connection.to_backend_written += static_cast<std::size_t>(sent);
        backend.user_written += static_cast<std::uint64_t>(sent);
    }
    await_reply(connection);
}

// The backend has the request. Its first reply is copied by the router
// (take_first_reply); the sockets are spliced only when either side sends
// more than that: a connection that carries one request and one reply ends
// without paying for the sockmap (two psocks made and torn down, a kernel
// worker's wake-up for the redirected reply), which cost more than the two
// syscalls of the copy (design.md, "Splicing at the second flight").
// Counted as routed now; spliced, fallback or unspliced by how it goes on.
void StreamRouter::Impl::await_reply(Connection& connection) {
    disarm(connection, TimerKind::deadline);
    const std::uint16_t frontend = connection.rules->frontend.port;
    const std::uint16_t backend = connection.backend_port;
    ++counters(frontend, backend).routed;
    // The client's first bytes are all written by now: copied by the router.
    counters(frontend, backend).splice_bytes_to_backend += connection.client.read_first;
    counters_changed(frontend, backend);
    connection.phase = Phase::first_reply;
    if (connection.client_lowat_raised) {
        // Its next byte, whatever the count the first bytes waited for, is
        // a second flight: readable from 1 byte on.
        set_int_option(connection.client.fd.get(), SOL_SOCKET, SO_RCVLOWAT, 1);
        connection.client_lowat_raised = false;
    }
    watch(connection.client, connection.client_tag, EPOLLIN | EPOLLRDHUP);
    watch(connection.backend, connection.backend_tag, EPOLLIN | EPOLLRDHUP);
}

// Level triggered: every event is something that waits. The backend's
// first bytes are its reply, copied to the client. A FIN with nothing
// unread before it is passed on at once (a backend that answers and
// closes, a client that half-closes after the reply), and the connection
// ends when both sides have. Anything else, a second flight from either
// side, hands the connection off: to the sockmap, or to the splice(2)
// fallback when a side has half-closed by then.
void StreamRouter::Impl::first_reply_event(Connection& connection, bool from_client,
                                           std::uint32_t events) {
    Side& client = connection.client;
    Side& backend = connection.backend;
    Side& side = from_client ? client : backend;
    if ((events & EPOLLERR) != 0 || ((events & EPOLLHUP) != 0 && socket_error(side.fd.get()) != 0)) {
        abort(connection, &side);
        return;
    }
    if (side.read_closed) {
        return;  // watched for errors only
    }
    const bool ended = (events & (EPOLLRDHUP | EPOLLHUP)) != 0;
    if (!from_client && backend.read_first == 0 && (events & EPOLLIN) != 0) {
        switch (take_first_reply(connection)) {
        case FirstReply::relayed:
            // A FIN seen with the reply came after all of it: read whole.
            if (ended) {
                side_ended(connection, backend, client);
            }
            return;
        case FirstReply::pending:
            return;
        case FirstReply::none:
            side_ended(connection, backend, client);
            return;
        case FirstReply::hand_off:
            hand_off(connection);
            return;
        case FirstReply::failed:
            return;
        }
    }
    // A client that half-closed before any reply (`nc -N`) is relayed as
    // before this phase existed, by the splice(2) fallback: the router
    // does not guess that the backend will answer in one flight.
    const bool before_reply = from_client && backend.read_first == 0 && !backend.read_closed;
    if (ended && !before_reply && unread_bytes(side.fd.get()) == 0) {
        side_ended(connection, side, from_client ? backend : client);
    } else {
        hand_off(connection);  // a second flight, or that client
    }
}

// FROM sent its FIN with every byte before it relayed: TO gets it now, and
// FROM is watched for errors only. Once both have ended, so has the
// connection.
void StreamRouter::Impl::side_ended(Connection& connection, Side& from, Side& to) {
    from.read_closed = true;
    (void)::shutdown(to.fd.get(), SHUT_WR);
    to.write_shut = true;
    if (to.read_closed) {
        finish(connection);
        return;
    }
    watch(from, &from == &connection.client ? connection.client_tag : connection.backend_tag,
          EPOLLRDHUP | EPOLLET);
}

// The backend's reply, read whole (its receive queue, as for the client's
// first bytes: a partly read skb would reach the client twice once
// spliced) and written to the client, whose send buffer (kSendBuffer) takes
// it at once. hand_off when the read filled the buffer or the write did not
// take it all (the rest then goes first, in the splice(2) fallback).
StreamRouter::Impl::FirstReply StreamRouter::Impl::take_first_reply(Connection& connection) {
    Side& backend = connection.backend;
    Side& client = connection.client;
    first_flight_.resize(kFirstFlightBuffer);
    const ssize_t got = read_copied(backend.fd.get(), first_flight_.data(), first_flight_.size());
    if (got < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            return FirstReply::pending;
        }
        abort(connection, &backend);
        return FirstReply::failed;
    }
    if (got == 0) {
        return FirstReply::none;
    }
    const auto length = static_cast<std::size_t>(got);
    backend.read_first = length;
    connection.splice_unsafe = connection.splice_unsafe || length == first_flight_.size();
    const ssize_t sent =
        ::send(client.fd.get(), first_flight_.data(), length, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0 && errno != EAGAIN && errno != EINTR) {
        abort(connection, &client);
        return FirstReply::failed;
    }
    const std::size_t written = sent > 0 ? static_cast<std::size_t>(sent) : 0;
    client.user_written += written;
    count_copied(connection, client, written);
    if (written < length) {
        connection.splice_unsafe = true;
        connection.to_client.assign(first_flight_.begin() + static_cast<std::ptrdiff_t>(written),
                                    first_flight_.begin() + static_cast<std::ptrdiff_t>(length));
    }
    return connection.splice_unsafe ? FirstReply::hand_off : FirstReply::relayed;
}

// --------------------------------------------------------------- splicing

void StreamRouter::Impl::hand_off(Connection& connection) {
    const bool spliced =
        use_sockmap_ && !connection.splice_unsafe && splice_with_sockmap(connection);
    count_served(connection, spliced ? &portmux_stream_connections::spliced
                                     : &portmux_stream_connections::fallback);
    if (!spliced) {
        start_fallback(connection);  // counted first: it may end the connection at once
    }
}

// The client's bytes read so far (its request, usually) go to the backend
// ahead of the rest of the stream, written by the router: the backend gets
// the request as soon as the router writes it, instead of through the
// verdict program after insertion, whose redirect waits for a kernel
// worker to be scheduled on the router's CPU (after the router's own
// wake-up ends). With rules that need no byte, what the client has sent by
// now is read here. False when the client has failed (reset).
bool StreamRouter::Impl::take_first_flight(Connection& connection) {
    if (connection.rules->needed == 0 && read_client(connection) == FirstRead::failed) {
        return false;
    }
    connection.to_backend.insert(connection.to_backend.end(), connection.first.begin(),
                                 connection.first.end());
    connection.client.read_first = connection.first.size();
    return true;
}

// Reads the bytes the verdict program left in the backend socket while it
// had no peer (SK_PASS): exactly as many as it counted, so the read never
// reaches into the receive queue the program consumes.
static std::vector<std::uint8_t> take_passed_bytes(int state_fd, Side& backend) {
    std::vector<std::uint8_t> taken;
    for (int round = 0; round < 64; ++round) {
        portmux_stream_socket state{};
        if (bpf_map_lookup_elem(state_fd, &backend.cookie, &state) != 0 ||
            state.passed_bytes <= backend.user_read) {
            break;
        }
        const std::size_t want = static_cast<std::size_t>(state.passed_bytes - backend.user_read);
        const std::size_t old_size = taken.size();
        taken.resize(old_size + want);
        const ssize_t got = read_copied(backend.fd.get(), taken.data() + old_size, want);
        taken.resize(old_size + (got > 0 ? static_cast<std::size_t>(got) : 0));
        if (got <= 0) {
            break;
        }
        backend.user_read += static_cast<std::uint64_t>(got);
    }
    return taken;
}

// Puts both sockets in the sockhash and starts splicing. False (and
// nothing left in the maps) when the kernel will not take them.
bool StreamRouter::Impl::splice_with_sockmap(Connection& connection) {
    if (!insert_sockets(connection)) {
        return false;
    }
    start_splicing(connection);
    return true;
}

// The kernel inserts only ESTABLISHED sockets. A backend that already
// closed its side (CLOSE_WAIT) fails the first insertion, which leaves
// nothing to undo. A client that already sent its FIN (`nc -N` with a short
// request) is asked for beforehand (TCP_INFO): its insertion comes second,
// and taking the backend out again destroys the backend's psock, with any
// byte the backend sent that the program is handling at that moment.
bool StreamRouter::Impl::insert_sockets(Connection& connection) {
    Side& client = connection.client;
    Side& backend = connection.backend;
    tcp_info info{};
    // BPF_TCP_ESTABLISHED is the kernel's TCP_ESTABLISHED (1).
    if (!read_tcp_info(client.fd.get(), info) || info.tcpi_state != BPF_TCP_ESTABLISHED) {
        return false;
    }
    client.cookie = socket_cookie(client.fd.get());
    backend.cookie = connection.spare_cookie != 0 ? connection.spare_cookie
                                                  : socket_cookie(backend.fd.get());
    if (client.cookie == 0 || backend.cookie == 0) {
        return false;
    }
    // The route's byte counters, created once (the program only adds to them).
    const RouteKey route{connection.rules->frontend.port, connection.backend_port};
    if (!byte_routes_.contains(route)) {
        const portmux_stream_route_key key{route.first, route.second};
        const portmux_stream_bytes zero{};
        if (bpf_map_update_elem(bytes_fd_, &key, &zero, BPF_NOEXIST) == 0 || errno == EEXIST) {
            byte_routes_.insert(route);
        }
    }
    // A client that sent more than this before insertion has likely filled
    // its window. Redirected, those bytes stay charged to its socket until
    // the backend's backlog worker has sent them, so the window update
    // computed when they leave still sees a full buffer, freeing them
    // later sends none, and the client waits for its persist timer (up to
    // 200 ms). Held instead, they are forwarded by the router, whose read
    // frees them and sends the window update. What the client sent that
    // the router has not read: bytes received (TCP_INFO) less those it read.
    client.held = info.tcpi_bytes_received > client.read_first + kForwardFirstAbove;
    // Likewise a backend whose second flight, behind the reply the router
    // copied, is a download that has filled its window.
    tcp_info backend_info{};
    backend.held = read_tcp_info(backend.fd.get(), backend_info) &&
                   backend_info.tcpi_bytes_received > backend.read_first + kForwardFirstAbove;
    bool written = write_socket_entries(connection);
    if (!written && !stale_cookies_.empty()) {
        // The maps may be full of closed sockets' entries: delete them, retry.
        delete_stale_entries();
        written = write_socket_entries(connection);
    }
    if (!written) {
        forget_sockets(connection);
        return false;
    }
    // Backend first: from the moment the client is in the map its bytes are
    // redirected, and the backend must be there to take them.
    std::uint32_t fd = static_cast<std::uint32_t>(backend.fd.get());
    if (bpf_map_update_elem(sockets_fd_, &backend.cookie, &fd, BPF_NOEXIST) != 0) {
        forget_sockets(connection);
        return false;
    }
    fd = static_cast<std::uint32_t>(client.fd.get());
    if (bpf_map_update_elem(sockets_fd_, &client.cookie, &fd, BPF_NOEXIST) != 0) {
        // The client has sent its FIN just now. What the backend sent
        // meanwhile would be lost with its psock: keep it for the fallback.
        connection.to_client = take_passed_bytes(state_fd_, backend);
        forget_sockets(connection);
        return false;
    }
    by_cookie_[client.cookie] = {&connection, true};
    by_cookie_[backend.cookie] = {&connection, false};
    return true;
}

// Each side's entries, one update per map for both: its route and direction
// (`stream_sockets_state`, which the program counts into) and its peer
// (`stream_peers`, which user space writes). The backend names the client
// as its peer from the start: until the client is inserted, a redirect to
// it fails and the program passes the backend's bytes (counted as
// passed_bytes), as it would with no peer at all.
bool StreamRouter::Impl::write_socket_entries(Connection& connection) {
    Side& client = connection.client;
    Side& backend = connection.backend;
    const std::uint64_t cookies[2] = {backend.cookie, client.cookie};
    portmux_stream_socket states[2]{};
    states[0].route = {connection.rules->frontend.port, connection.backend_port};
    states[1].route = states[0].route;
    states[1].to_backend = 1;
    client.notify_at = kCheckEvery;
    backend.notify_at = kCheckEvery;
    portmux_stream_peer peers[2]{};
    peers[0].peer_cookie = client.cookie;
    peers[0].notify_at = backend.notify_at;
    peers[0].hold = backend.held ? 1 : 0;
    peers[1].peer_cookie = backend.cookie;
    peers[1].notify_at = client.notify_at;
    peers[1].hold = client.held ? 1 : 0;
    // On failure the caller deletes both sides' entries in both maps.
    return update_entries(state_fd_, cookies, states, 2) &&
           update_entries(peers_fd_, cookies, peers, 2);
}

void StreamRouter::Impl::start_splicing(Connection& connection) {
    Side& client = connection.client;
    Side& backend = connection.backend;
    // Bytes that arrived before insertion (the client's first bytes among
    // them) sit in the receive queue until the next segment wakes the
    // verdict program; setting SO_RCVLOWAT calls the socket's data-ready
    // hook now, which hands them to the program.
    set_int_option(client.fd.get(), SOL_SOCKET, SO_RCVLOWAT, 1);
    set_int_option(backend.fd.get(), SOL_SOCKET, SO_RCVLOWAT, 1);
    // What the backend sent before the client was inserted was passed
    // (SK_PASS) and waits in its socket: relay_held() forwards it, and the
    // program redirects again once it is all written. Once the router holds
    // the backend's socket lock the program has finished with every skb
    // that arrived before the client was inserted, and passed_bytes is
    // final: the setsockopt above may take it (the kernels read do) but
    // need not, so a peek does. Usually it is 0: no relay.
    wait_for_verdicts(backend.fd.get());
    portmux_stream_socket state{};
    backend.relaying = backend.held || bpf_map_lookup_elem(state_fd_, &backend.cookie, &state) != 0 ||
                       state.passed_bytes != 0;
    // A side inserted held has its first bytes forwarded by relay_held().
    client.relaying = client.held;
    // A side's receive buffer is set once it turns out to carry bulk data
    // (see set_receive_buffer_once), and before relay_held() clamps its
    // window: a side relayed from the start (a client inserted held, a
    // backend that sent before the client was inserted) may be copied from
    // for a while, and an autotuned buffer would grow past the clamp and
    // let its sender send up to tcp_rmem's maximum meanwhile.
    for (Side* side : {&client, &backend}) {
        if (side->relaying) {
            set_receive_buffer_once(*side);
        }
    }
    if (backend.relaying || client.relaying) {
        arm(connection, TimerKind::flow_check, Clock::now());
    }
    // Only FIN, RST and errors concern user space from now on; edge
    // triggered, so a half-closed side does not wake the loop again.
    connection.phase = Phase::spliced;
    watch(client, connection.client_tag, EPOLLRDHUP | EPOLLET);
    watch(backend, connection.backend_tag, EPOLLRDHUP | EPOLLET);
}

void StreamRouter::Impl::spliced_event(Connection& connection, Side& side, std::uint32_t events) {
    // A reset (or any error) ends both sides at once.
    if ((events & EPOLLERR) != 0 || ((events & EPOLLHUP) != 0 && socket_error(side.fd.get()) != 0)) {
        abort(connection, &side);
        return;
    }
    if ((events & (EPOLLRDHUP | EPOLLHUP)) != 0 && !side.read_closed) {
        side.read_closed = true;
        connection.draining = true;
        connection.drain_interval = kFirstDrainCheck;
        check_drained(connection, Clock::now());
    }
}

// FROM has half-closed: have all its bytes reached TO's send queue? The
// verdict program counts what it redirected; FROM's receive count says what
// there was (the FIN counts one in it), TO's acked plus queued bytes what
// it has taken. Read TO's TCP_INFO before its queue: an ACK between the
// two reads can then only make the sum fall short, never reach it early.
bool StreamRouter::Impl::all_forwarded(Side& from, Side& to) {
    portmux_stream_socket entry{};
    if (bpf_map_lookup_elem(state_fd_, &from.cookie, &entry) != 0) {
        return true;
    }
    tcp_info from_info{};
    tcp_info to_info{};
    if (!read_tcp_info(from.fd.get(), from_info) || !read_tcp_info(to.fd.get(), to_info)) {
        return true;
    }
    int queued = 0;
    if (::ioctl(to.fd.get(), SIOCOUTQ, &queued) != 0) {
        return true;
    }
    const std::uint64_t received = from_info.tcpi_bytes_received - 1;  // less the FIN
    const std::uint64_t relayed = from.read_first + from.user_read + entry.redirected_bytes;
    const std::uint64_t taken = to_info.tcpi_bytes_acked + static_cast<std::uint64_t>(queued);
    return relayed >= received && taken >= to.user_written + entry.redirected_bytes;
}

void StreamRouter::Impl::check_drained(Connection& connection, Clock::time_point now) {
    Side& client = connection.client;
    Side& backend = connection.backend;
    // A side whose held bytes still wait is finished by relay_held().
    if (client.read_closed && !backend.write_shut && !client.relaying &&
        all_forwarded(client, backend)) {
        (void)::shutdown(backend.fd.get(), SHUT_WR);
        backend.write_shut = true;
    }
    if (backend.read_closed && !client.write_shut && !backend.relaying &&
        all_forwarded(backend, client)) {
        (void)::shutdown(client.fd.get(), SHUT_WR);
        client.write_shut = true;
    }
    if (client.write_shut && backend.write_shut) {
        finish(connection);
        return;
    }
    const bool waiting = (client.read_closed && !backend.write_shut) ||
                         (backend.read_closed && !client.write_shut);
    connection.draining = waiting;
    if (waiting) {
        arm(connection, TimerKind::drain_check, now + connection.drain_interval);
        connection.drain_interval = std::min(connection.drain_interval * 2, kLastDrainCheck);
    } else {
        disarm(connection, TimerKind::drain_check);
    }
}

// ------------------------------------------------------------ backpressure

bool StreamRouter::Impl::has_relaying_side(const Connection& connection) {
    return connection.client.relaying || connection.backend.relaying;
}

// How many of the bytes FROM's data the program redirected still wait
// before TO's send queue (in TO's psock). REDIRECTED is read first, so a
// redirect racing with the reads can only make QUEUED smaller.
bool StreamRouter::Impl::queued_for_peer(Side& from, Side& to, std::uint64_t& queued,
                                         std::uint64_t& redirected) {
    portmux_stream_socket state{};
    tcp_info info{};
    int unsent = 0;
    if (bpf_map_lookup_elem(state_fd_, &from.cookie, &state) != 0 ||
        !read_tcp_info(to.fd.get(), info) || ::ioctl(to.fd.get(), SIOCOUTQ, &unsent) != 0) {
        return false;
    }
    redirected = state.redirected_bytes;
    const std::uint64_t taken = info.tcpi_bytes_acked + static_cast<std::uint64_t>(unsent);
    const std::uint64_t taken_from_peer = taken > to.user_written ? taken - to.user_written : 0;
    queued = redirected > taken_from_peer ? redirected - taken_from_peer : 0;
    return true;
}

// SIDE's entry as the program reads it. The program itself only ever
// writes notify_at (to ~0 once it fired): rewriting it here at worst
// brings one more event.
bool StreamRouter::Impl::write_peer_entry(Side& side, const Side& peer) {
    portmux_stream_peer entry{};
    entry.peer_cookie = peer.cookie;
    entry.notify_at = side.notify_at;
    entry.released = side.released;
    entry.hold = side.held ? 1 : 0;
    return bpf_map_update_elem(peers_fd_, &side.cookie, &entry, BPF_EXIST) == 0;
}

// The program says COOKIE redirected kCheckEvery more bytes.
void StreamRouter::Impl::on_stream_event(std::uint64_t cookie) {
    const auto found = by_cookie_.find(cookie);
    if (found == by_cookie_.end()) {
        return;
    }
    Connection& connection = *found->second.first;
    Side& from = found->second.second ? connection.client : connection.backend;
    Side& to = found->second.second ? connection.backend : connection.client;
    if (connection.phase != Phase::spliced || from.held) {
        return;
    }
    set_receive_buffer_once(from);
    std::uint64_t queued = 0;
    std::uint64_t redirected = 0;
    if (!queued_for_peer(from, to, queued, redirected)) {
        return;
    }
    from.notify_at = redirected + kCheckEvery;
    if (queued > kHoldAbove) {
        hold(connection, from);
    } else {
        (void)write_peer_entry(from, to);
    }
}

void StreamRouter::Impl::hold(Connection& connection, Side& from) {
    Side& to = &from == &connection.client ? connection.backend : connection.client;
    from.held = true;
    from.relaying = true;
    (void)write_peer_entry(from, to);
    arm(connection, TimerKind::flow_check, Clock::now() + kHeldCheck);
}

// Every kHeldCheck while FROM is held or has passed bytes waiting: ends the
// hold once TO has taken most of what was redirected, and forwards the
// passed bytes (in order: only once every redirected byte, which came
// before them, is in TO's send queue). When nothing waits any more and the
// hold is over, the program redirects again.
void StreamRouter::Impl::relay_held(Connection& connection, Side& from, Side& to) {
    if (!from.relaying) {
        return;
    }
    std::uint64_t queued = 0;
    std::uint64_t redirected = 0;
    if (!queued_for_peer(from, to, queued, redirected)) {
        return;
    }
    bool changed = false;
    if (from.held && queued < kReleaseBelow) {
        from.held = false;
        from.notify_at = redirected + kCheckEvery;
        changed = true;
    }
    std::uint64_t relayed = 0;
    portmux_stream_socket state{};
    bool known = false;
    if (queued == 0 && !from.held && from.window_clamp == 0 &&
        bpf_map_lookup_elem(state_fd_, &from.cookie, &state) == 0 &&
        state.passed_bytes > from.released) {
        // Every byte read reopens the sender's window by as much, and what
        // comes in meanwhile is held too: against a steady sender the
        // forwarding would never end. A clamped window lets only a few
        // segments in until the held bytes are out and the program
        // redirects again.
        int clamp = 0;
        socklen_t size = sizeof clamp;
        const int catch_up = catch_up_window(from.fd.get());
        if (::getsockopt(from.fd.get(), IPPROTO_TCP, TCP_WINDOW_CLAMP, &clamp, &size) == 0 &&
            clamp > catch_up) {
            set_int_option(from.fd.get(), IPPROTO_TCP, TCP_WINDOW_CLAMP, catch_up);
            from.window_clamp = clamp;
        }
    }
    if (queued == 0) {
        for (int round = 0; round < 64; ++round) {
            if (from.relay_sent < from.relay.size()) {
                const ssize_t sent =
                    ::send(to.fd.get(), from.relay.data() + from.relay_sent,
                           from.relay.size() - from.relay_sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (sent < 0) {
                    if (errno == EAGAIN || errno == EINTR) {
                        break;
                    }
                    abort(connection);
                    return;
                }
                from.relay_sent += static_cast<std::size_t>(sent);
                from.released += static_cast<std::uint64_t>(sent);
                to.user_written += static_cast<std::uint64_t>(sent);
                relayed += static_cast<std::uint64_t>(sent);
                changed = true;
                continue;
            }
            from.relay.clear();
            from.relay_sent = 0;
            known = bpf_map_lookup_elem(state_fd_, &from.cookie, &state) == 0;
            if (!known || state.passed_bytes <= from.user_read) {
                break;
            }
            // Exactly the bytes the program passed: the read never reaches
            // into the receive queue the program consumes.
            const std::uint64_t waiting = state.passed_bytes - from.user_read;
            if (waiting > kRelayChunk) {
                const std::size_t want =
                    static_cast<std::size_t>(std::min<std::uint64_t>(waiting, kRelayChunk));
                from.relay.resize(want);
                const ssize_t got = read_copied(from.fd.get(), from.relay.data(), want);
                from.relay.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
                if (got <= 0) {
                    break;  // still on its way to the socket's message queue
                }
                from.user_read += static_cast<std::uint64_t>(got);
                continue;
            }
            // The last of the passed bytes: peeked, written to TO, and only
            // then consumed. Consuming opens the sender's window (and sends
            // the window update); by then the program has been told to
            // redirect, so what the update lets in follows the forwarded
            // bytes through TO's send queue instead of being held again.
            const bool all = forward_last(connection, from, to, state.passed_bytes, relayed);
            if (connection.phase != Phase::spliced) {
                return;
            }
            changed = changed || relayed > 0;
            if (!all) {
                break;
            }
        }
    }
    if (relayed > 0) {
        count_copied(connection, to, relayed);
    }
    if (changed) {
        (void)write_peer_entry(from, to);
    }
    if (!from.held && from.relay.empty() && from.user_read == from.released) {
        // A verdict that read the entry before the write above may still
        // be passing an skb; it runs under FROM's socket lock, which this
        // takes, so afterwards its count is in the map.
        wait_for_verdicts(from.fd.get());
        known = bpf_map_lookup_elem(state_fd_, &from.cookie, &state) == 0;
        if (known && state.passed_bytes == from.released) {
            from.relaying = false;
            if (from.window_clamp != 0) {
                set_int_option(from.fd.get(), IPPROTO_TCP, TCP_WINDOW_CLAMP, from.window_clamp);
                from.window_clamp = 0;
            }
            if (from.read_closed) {
                check_drained(connection, Clock::now());
            }
        }
    }
}

// Forwards the last WAITING (= PASSED - user_read) passed bytes of FROM:
// peeks at them, writes what TO takes, tells the program that many are
// released, and consumes them. True when every passed byte is released.
bool StreamRouter::Impl::forward_last(Connection& connection, Side& from, Side& to,
                                      std::uint64_t passed, std::uint64_t& relayed) {
    const std::size_t want = static_cast<std::size_t>(passed - from.user_read);
    from.relay.resize(want);
    const ssize_t got = ::recv(from.fd.get(), from.relay.data(), want, MSG_PEEK | MSG_DONTWAIT);
    if (got <= 0) {
        from.relay.clear();
        return false;  // still on its way to the socket's message queue
    }
    const ssize_t sent = ::send(to.fd.get(), from.relay.data(), static_cast<std::size_t>(got),
                                MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0) {
        from.relay.clear();
        if (errno == EAGAIN || errno == EINTR) {
            return false;
        }
        abort(connection);
        return false;
    }
    from.released += static_cast<std::uint64_t>(sent);
    to.user_written += static_cast<std::uint64_t>(sent);
    relayed += static_cast<std::uint64_t>(sent);
    const bool all = from.released == passed;
    if (all) {
        (void)write_peer_entry(from, to);
    }
    // Exactly the bytes written: they are the head of the socket's queue.
    std::size_t consumed = 0;
    for (int attempt = 0; attempt < 4 && consumed < static_cast<std::size_t>(sent); ++attempt) {
        const ssize_t got_now = read_copied(from.fd.get(), from.relay.data() + consumed,
                                            static_cast<std::size_t>(sent) - consumed);
        if (got_now <= 0) {
            break;
        }
        consumed += static_cast<std::size_t>(got_now);
    }
    from.user_read += consumed;
    from.relay.clear();
    if (consumed != static_cast<std::size_t>(sent)) {
        // The peeked bytes vanished from the queue: the stream is broken.
        abort(connection);
        return false;
    }
    return all;
}

// --------------------------------------------------------------- fallback

void StreamRouter::Impl::start_fallback(Connection& connection) {
    connection.phase = Phase::fallback;
    for (PipeRelay* relay : {&connection.client_to_backend, &connection.backend_to_client}) {
        int ends[2];
        if (::pipe2(ends, O_NONBLOCK | O_CLOEXEC) != 0) {
            abort(connection);
            return;
        }
        relay->read_end.reset(ends[0]);
        relay->write_end.reset(ends[1]);
    }
    pump_fallback(connection);
}

// Moves what can move without blocking; false when the relay failed (the
// connection is then aborted).
bool StreamRouter::Impl::pump(Connection& connection, PipeRelay& relay, Side& from, Side& to) {
    for (int round = 0; round < 16 && !relay.done; ++round) {
        if (relay.in_pipe > 0) {
            const ssize_t moved = ::splice(relay.read_end.get(), nullptr, to.fd.get(), nullptr,
                                           relay.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (moved < 0) {
                return errno == EAGAIN || errno == EINTR;
            }
            relay.in_pipe -= static_cast<std::size_t>(moved);
            to.user_written += static_cast<std::uint64_t>(moved);
            count_copied(connection, to, static_cast<std::uint64_t>(moved));
            continue;
        }
        if (!relay.source_ended) {
            // Only into an empty pipe: EAGAIN then means "no data", never
            // "pipe full", and at most one pipe's worth waits per direction.
            const ssize_t moved = ::splice(from.fd.get(), nullptr, relay.write_end.get(), nullptr,
                                           kSpliceChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (moved > 0) {
                relay.in_pipe += static_cast<std::size_t>(moved);
                continue;
            }
            if (moved < 0) {
                return errno == EAGAIN || errno == EINTR;
            }
            relay.source_ended = true;
            from.read_closed = true;
        }
        if (relay.source_ended && relay.in_pipe == 0) {
            (void)::shutdown(to.fd.get(), SHUT_WR);
            to.write_shut = true;
            relay.done = true;
        }
    }
    return true;
}

void StreamRouter::Impl::pump_fallback(Connection& connection) {
    Side& client = connection.client;
    Side& backend = connection.backend;
    // Bytes of the backend read before the fallback go first: what it sent
    // before a failed insertion, or the rest of a first reply.
    while (connection.to_client_written < connection.to_client.size()) {
        const ssize_t sent = ::send(client.fd.get(),
                                    connection.to_client.data() + connection.to_client_written,
                                    connection.to_client.size() - connection.to_client_written,
                                    MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                watch(client, connection.client_tag, EPOLLOUT);
                return;
            }
            abort(connection);
            return;
        }
        connection.to_client_written += static_cast<std::size_t>(sent);
        client.user_written += static_cast<std::uint64_t>(sent);
        count_copied(connection, client, static_cast<std::uint64_t>(sent));
    }
    if (!pump(connection, connection.client_to_backend, client, backend)) {
        abort(connection);
        return;
    }
    if (!pump(connection, connection.backend_to_client, backend, client)) {
        abort(connection);
        return;
    }
    PipeRelay& up = connection.client_to_backend;
    PipeRelay& down = connection.backend_to_client;
    if (up.done && down.done) {
        finish(connection);
        return;
    }
    const auto reading = [](const PipeRelay& relay) {
        return !relay.done && !relay.source_ended && relay.in_pipe == 0;
    };
    const auto writing = [](const PipeRelay& relay) { return !relay.done && relay.in_pipe > 0; };
    // Level triggered: each side is watched for exactly what its relays wait on.
    const std::uint32_t client_events =
        (reading(up) ? EPOLLIN : 0u) | (writing(down) ? EPOLLOUT : 0u);
    const std::uint32_t backend_events =
        (reading(down) ? EPOLLIN : 0u) | (writing(up) ? EPOLLOUT : 0u);
    // A side with nothing to wait on still reports a reset (EPOLLERR).
    watch(client, connection.client_tag, client_events ? client_events : EPOLLRDHUP | EPOLLET);
    watch(backend, connection.backend_tag, backend_events ? backend_events : EPOLLRDHUP | EPOLLET);
}

// ---------------------------------------------------------------- closing

// Dropped connections are reset, not closed with a FIN: a FIN would read
// as a clean, empty answer to a client that cannot tell it from a backend
// that had nothing to say; a RST says "refused", frees both ends at once
// (no TIME_WAIT on the router for connections it never served) and
// discards whatever the client queued.
void StreamRouter::Impl::refuse(Connection& connection, Refusal refusal) {
    const std::uint16_t frontend = connection.rules->frontend.port;
    const auto reason = static_cast<std::size_t>(refusal);
    ++counters(frontend, 0).refused[reason];
    counters_changed(frontend, 0);
    if (refusal == Refusal::backend_refused && connection.backend_port != 0) {
        ++counters(frontend, connection.backend_port).refused[reason];
        counters_changed(frontend, connection.backend_port);
    }
    close_connection(connection, /*reset_client=*/true, /*reset_backend=*/false);
}

void StreamRouter::Impl::finish(Connection& connection) {
    close_connection(connection, false, false);
}

// One side was reset (or failed): the other side gets a RST too, so an
// abort travels both ways like FIN does. FAILED, the side whose error says
// so, is closed already (a reset or an error moves a TCP socket to CLOSE,
// where closing sends nothing): no SO_LINGER for it.
void StreamRouter::Impl::abort(Connection& connection, const Side* failed) {
    close_connection(connection, failed != &connection.client, failed != &connection.backend);
}

// Closing a socket takes it out of the sockhash (the kernel unlinks a
// socket from every sockmap as it closes) and out of the epoll set (the
// router never duplicates a descriptor, so its close is the last
// reference): no map deletion or EPOLL_CTL_DEL is needed for either. Only
// the router's own entries for the sockets are deleted, after the close, when
// the program can no longer run for them.
void StreamRouter::Impl::close_connection(Connection& connection, bool reset_client,
                                          bool reset_backend) {
    if (connection.phase == Phase::first_reply) {
        // Ended in its first exchange (after the reply, or reset), before
        // either side needed splicing.
        count_served(connection, &portmux_stream_connections::unspliced);
    }
    flush_counters();  // before the client can see the end
    for (auto [side, reset] : {std::pair{&connection.client, reset_client},
                               std::pair{&connection.backend, reset_backend}}) {
        if (reset) {
            close_with_reset(side->fd);
        } else {
            side->fd.reset();
        }
        side->events = 0;
    }
    forget_entries(connection);
    for (std::size_t kind = 0; kind < kTimerKinds; ++kind) {
        disarm(connection, static_cast<TimerKind>(kind));
    }
    connection.phase = Phase::closed;
    dead_.push_back(connection.id);
}

// Takes the sockets out of the sockhash while they stay open (an insertion
// that failed halfway, before the splice(2) fallback; or the router stopping).
void StreamRouter::Impl::forget_sockets(Connection& connection) {
    for (Side* side : {&connection.backend, &connection.client}) {
        if (side->cookie != 0) {
            (void)bpf_map_delete_elem(sockets_fd_, &side->cookie);
        }
    }
    forget_entries(connection);
}

// The sockets' entries in `stream_peers` and `stream_sockets_state` go
// with those of other connections, in one syscall per map for
// kStaleEntriesBatch sockets (see kStaleEntriesDelay): the sockets are out of
// the sockhash, so the program no longer runs for them, and the router
// forgets their cookies now.
void StreamRouter::Impl::forget_entries(Connection& connection) {
    for (Side* side : {&connection.backend, &connection.client}) {
        if (side->cookie != 0) {
            by_cookie_.erase(side->cookie);
            if (stale_cookies_.empty()) {
                stale_since_ = Clock::now();
            }
            stale_cookies_.push_back(side->cookie);
            side->cookie = 0;
        }
    }
    if (stale_cookies_.size() >= kStaleEntriesBatch) {
        delete_stale_entries();
    }
}

void StreamRouter::Impl::delete_stale_entries() {
    const auto count = static_cast<std::uint32_t>(stale_cookies_.size());
    delete_keys(peers_fd_, stale_cookies_.data(), count);
    delete_keys(state_fd_, stale_cookies_.data(), count);
    stale_cookies_.clear();
}

// ----------------------------------------------------------------- facade

StreamRouter::StreamRouter(std::filesystem::path pin_dir)
    : impl_(std::make_unique<Impl>(std::move(pin_dir))) {}

StreamRouter::~StreamRouter() = default;

void StreamRouter::apply(const Config& config) {
    impl_->apply(config);
}

void StreamRouter::stop() {
    impl_->stop();
}

std::vector<std::uint16_t> StreamRouter::listening_ports() const {
    return impl_->listening_ports();
}

std::size_t StreamRouter::open_connections() const {
    return impl_->open_connections();
}

std::vector<StreamFrontendStats> StreamRouter::stats() const {
    return impl_->stats();
}

}  // namespace portmux
