// portmux_stream_load: many TCP connections through the stream router,
// every byte checked, for the e2e tests stream_many.sh and run_streams.sh.
// Python (tests/e2e/stream_peer.py) is too slow for 100,000 connections on
// a loaded 2-core machine; this is one thread and plain syscalls.
//
//   echo-server [--ready FILE] PORT...
//       Echoes every connection on every PORT (all IPv4 addresses), passes
//       a client's FIN back once everything it sent is echoed. Until
//       SIGTERM; then prints {"connections": {"PORT": N...}, "bytes": B}.
//   sequential HOST PORT COUNT PREFIX... [--payload BYTES] [--watch-pid PID]
//              [--samples N] [--time-limit S]
//       COUNT connections one after another. Connection I sends
//       PREFIX[I % number of prefixes] and reads its echo, then BYTES
//       bytes unique to I and reads their echo (a second flight: the
//       router splices the connection), half-closes and reads to EOF. With
//       --watch-pid it samples PID's open descriptors and VmRSS N times,
//       evenly spread over the run.
//   concurrent HOST PORT COUNT PREFIX... [--payload BYTES] [--hold-file F
//              --release-file G] [--time-limit S]
//       Opens COUNT connections at once; each sends its prefix and the
//       first half of its payload and reads that echo. With every one of
//       them open and echoed it creates F and waits for G to exist; then
//       each sends the second half, reads its echo, half-closes and reads
//       to EOF.
// Each client mode prints one JSON line: ok, failed, seconds, the first
// failures, and the samples; it exits 0 only when every connection got
// exactly its bytes back.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "portmux_stream_load: %s\n"
                 "usage: portmux_stream_load echo-server [--ready FILE] PORT...\n"
                 "       portmux_stream_load sequential HOST PORT COUNT PREFIX... [--payload N]\n"
                 "           [--watch-pid PID] [--samples N] [--time-limit S]\n"
                 "       portmux_stream_load concurrent HOST PORT COUNT PREFIX... [--payload N]\n"
                 "           [--hold-file F --release-file G] [--time-limit S]\n",
                 why);
    std::exit(2);
}

unsigned long parse_number(const std::string& text, const char* what) {
    char* end = nullptr;
    errno = 0;
    const unsigned long value = std::strtoul(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0) {
        usage((std::string("not a number for ") + what + ": " + text).c_str());
    }
    return value;
}

void raise_file_limit() {
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &files);
    }
}

std::string json_escape(const std::string& text) {
    std::string out;
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
            out += escaped;
        } else {
            out += c;
        }
    }
    return out;
}

// The bytes connection INDEX sends after its prefix: a function of the
// index and the offset, so a byte delivered to the wrong connection, lost,
// repeated or reordered shows.
std::vector<std::uint8_t> payload_of(std::uint64_t index, std::size_t length) {
    std::vector<std::uint8_t> bytes(length);
    std::uint64_t state = index * 0x9e3779b97f4a7c15ULL + 1;
    for (std::size_t i = 0; i < length; ++i) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes[i] = static_cast<std::uint8_t>(state);
    }
    return bytes;
}

// ------------------------------------------------------------- echo server

struct EchoConnection {
    int fd = -1;
    std::uint16_t port = 0;
    std::vector<std::uint8_t> pending;  // read, not yet echoed
    bool client_done = false;           // FIN seen
};

int echo_server(int argc, char** argv) {
    std::string ready_file;
    std::vector<std::uint16_t> ports;
    for (int i = 0; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--ready" && i + 1 < argc) {
            ready_file = argv[++i];
        } else {
            ports.push_back(static_cast<std::uint16_t>(parse_number(arg, "PORT")));
        }
    }
    if (ports.empty()) {
        usage("echo-server needs at least one PORT");
    }
    raise_file_limit();
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    const int stop_fd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
    const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (stop_fd < 0 || epoll_fd < 0) {
        std::perror("echo-server: signalfd/epoll");
        return 1;
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = 0;  // 0: stop, 1..65535: listener of that port, else a connection
    (void)::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, stop_fd, &event);
    std::map<std::uint16_t, int> listeners;
    for (const std::uint16_t port : ports) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        const int one = 1;
        (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
            ::listen(fd, 4096) != 0) {
            std::fprintf(stderr, "echo-server: cannot listen on %u: %s\n", port, std::strerror(errno));
            return 1;
        }
        listeners[port] = fd;
        event.events = EPOLLIN;
        event.data.u64 = port;
        (void)::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
    }
    if (!ready_file.empty()) {
        std::ofstream(ready_file) << "ready\n";
    }
    std::map<std::uint16_t, std::uint64_t> accepted;
    std::uint64_t echoed_bytes = 0;
    std::map<int, std::unique_ptr<EchoConnection>> connections;
    std::vector<std::uint8_t> buffer(256 * 1024);
    const auto close_connection = [&](EchoConnection& connection) {
        const int fd = connection.fd;
        ::close(fd);
        connections.erase(fd);
    };
    // Echoes what is pending; passes the FIN on once nothing is left.
    // False when the connection is gone.
    const auto flush = [&](EchoConnection& connection) {
        while (!connection.pending.empty()) {
            const ssize_t sent = ::send(connection.fd, connection.pending.data(),
                                        connection.pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent < 0) {
                if (errno == EAGAIN) {
                    epoll_event wanted{};
                    wanted.events = EPOLLOUT;
                    wanted.data.u64 = static_cast<std::uint64_t>(connection.fd) + 65536;
                    (void)::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, connection.fd, &wanted);
                    return true;
                }
                close_connection(connection);
                return false;
            }
            echoed_bytes += static_cast<std::uint64_t>(sent);
            connection.pending.erase(connection.pending.begin(), connection.pending.begin() + sent);
        }
        if (connection.client_done) {
            close_connection(connection);  // everything read and echoed: FIN
            return false;
        }
        epoll_event wanted{};
        wanted.events = EPOLLIN;
        wanted.data.u64 = static_cast<std::uint64_t>(connection.fd) + 65536;
        (void)::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, connection.fd, &wanted);
        return true;
    };
    epoll_event events[256];
    for (;;) {
        const int count = ::epoll_wait(epoll_fd, events, 256, -1);
        if (count < 0 && errno != EINTR) {
            std::perror("echo-server: epoll_wait");
            return 1;
        }
        for (int i = 0; i < count; ++i) {
            const std::uint64_t tag = events[i].data.u64;
            if (tag == 0) {
                std::string out = "{\"connections\": {";
                const char* separator = "";
                for (const auto& [port, n] : accepted) {
                    out += separator + ("\"" + std::to_string(port) + "\": " + std::to_string(n));
                    separator = ", ";
                }
                out += "}, \"bytes\": " + std::to_string(echoed_bytes) + "}\n";
                std::fputs(out.c_str(), stdout);
                return 0;
            }
            if (tag < 65536) {
                const auto port = static_cast<std::uint16_t>(tag);
                for (;;) {
                    const int fd = ::accept4(listeners[port], nullptr, nullptr,
                                             SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) {
                        break;
                    }
                    ++accepted[port];
                    auto connection = std::make_unique<EchoConnection>();
                    connection->fd = fd;
                    connection->port = port;
                    epoll_event wanted{};
                    wanted.events = EPOLLIN;
                    wanted.data.u64 = static_cast<std::uint64_t>(fd) + 65536;
                    (void)::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &wanted);
                    connections[fd] = std::move(connection);
                }
                continue;
            }
            const int fd = static_cast<int>(tag - 65536);
            const auto found = connections.find(fd);
            if (found == connections.end()) {
                continue;
            }
            EchoConnection& connection = *found->second;
            if (!connection.pending.empty()) {
                (void)flush(connection);
                continue;
            }
            const ssize_t got = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
            if (got < 0) {
                if (errno != EAGAIN) {
                    close_connection(connection);
                }
                continue;
            }
            if (got == 0) {
                connection.client_done = true;
            } else {
                connection.pending.assign(buffer.begin(), buffer.begin() + got);
            }
            (void)flush(connection);
        }
    }
}

// ----------------------------------------------------------------- clients

struct ClientOptions {
    std::string host;
    std::uint16_t port = 0;
    std::uint64_t count = 0;
    std::vector<std::string> prefixes;
    std::size_t payload = 64;
    int watch_pid = 0;
    unsigned samples = 10;
    unsigned time_limit = 60;
    std::string hold_file;
    std::string release_file;
};

ClientOptions parse_client(int argc, char** argv) {
    ClientOptions options;
    std::vector<std::string> positional;
    for (int i = 0; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage((arg + " needs a value").c_str());
            }
            return argv[++i];
        };
        if (arg == "--payload") {
            options.payload = parse_number(value(), "--payload");
        } else if (arg == "--watch-pid") {
            options.watch_pid = static_cast<int>(parse_number(value(), "--watch-pid"));
        } else if (arg == "--samples") {
            options.samples = static_cast<unsigned>(parse_number(value(), "--samples"));
        } else if (arg == "--time-limit") {
            options.time_limit = static_cast<unsigned>(parse_number(value(), "--time-limit"));
        } else if (arg == "--hold-file") {
            options.hold_file = value();
        } else if (arg == "--release-file") {
            options.release_file = value();
        } else {
            positional.push_back(arg);
        }
    }
    if (positional.size() < 4) {
        usage("HOST PORT COUNT and at least one PREFIX are required");
    }
    options.host = positional[0];
    options.port = static_cast<std::uint16_t>(parse_number(positional[1], "PORT"));
    options.count = parse_number(positional[2], "COUNT");
    options.prefixes.assign(positional.begin() + 3, positional.end());
    if (options.hold_file.empty() != options.release_file.empty()) {
        usage("--hold-file and --release-file go together");
    }
    return options;
}

sockaddr_in address_of(const ClientOptions& options) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(options.port);
    if (::inet_pton(AF_INET, options.host.c_str(), &address.sin_addr) != 1) {
        usage(("not an IPv4 address: " + options.host).c_str());
    }
    return address;
}

// What connection INDEX sends in all: its prefix, then its payload.
std::vector<std::uint8_t> request_of(const ClientOptions& options, std::uint64_t index) {
    const std::string& prefix = options.prefixes[index % options.prefixes.size()];
    std::vector<std::uint8_t> request(prefix.begin(), prefix.end());
    const std::vector<std::uint8_t> payload = payload_of(index, options.payload);
    request.insert(request.end(), payload.begin(), payload.end());
    return request;
}

struct Report {
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    std::vector<std::string> failures;  // the first few
    std::string samples;                // JSON array body

    void failure(std::uint64_t index, const std::string& what) {
        ++failed;
        if (failures.size() < 5) {
            failures.push_back("connection " + std::to_string(index) + ": " + what);
        }
    }

    int print(Clock::time_point start, bool timed_out) const {
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        std::string out = "{\"ok\": " + std::to_string(ok) + ", \"failed\": " + std::to_string(failed) +
                          ", \"timed_out\": " + (timed_out ? "true" : "false") +
                          ", \"seconds\": " + std::to_string(seconds) + ", \"failures\": [";
        const char* separator = "";
        for (const std::string& failure : failures) {
            out += separator + ("\"" + json_escape(failure) + "\"");
            separator = ", ";
        }
        out += "], \"samples\": [" + samples + "]}\n";
        std::fputs(out.c_str(), stdout);
        return failed == 0 && !timed_out ? 0 : 1;
    }
};

// Open descriptors and resident kB of PID, or -1 when it cannot be read.
std::pair<long, long> process_usage(int pid) {
    long fds = -1;
    if (DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
        fds = 0;
        while (const dirent* entry = ::readdir(dir)) {
            if (entry->d_name[0] != '.') {
                ++fds;
            }
        }
        ::closedir(dir);
    }
    long rss = -1;
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmRSS:", 0) == 0) {
            rss = std::strtol(line.c_str() + 6, nullptr, 10);
        }
    }
    return {fds, rss};
}

// Sends all of DATA and reads exactly EXPECTED back on a blocking socket
// with timeouts; then, when HALF_CLOSE, sends FIN and reads to EOF.
std::string exchange(int fd, const std::vector<std::uint8_t>& data, bool half_close) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n < 0) {
            return std::string("send: ") + std::strerror(errno);
        }
        sent += static_cast<std::size_t>(n);
    }
    std::vector<std::uint8_t> echoed(data.size());
    std::size_t got = 0;
    while (got < echoed.size()) {
        const ssize_t n = ::recv(fd, echoed.data() + got, echoed.size() - got, 0);
        if (n <= 0) {
            return "echo ended after " + std::to_string(got) + " of " + std::to_string(data.size()) +
                   " bytes" + (n < 0 ? std::string(": ") + std::strerror(errno) : "");
        }
        got += static_cast<std::size_t>(n);
    }
    if (echoed != data) {
        return "echo differs from what was sent";
    }
    if (half_close) {
        ::shutdown(fd, SHUT_WR);
        std::uint8_t extra[64];
        const ssize_t n = ::recv(fd, extra, sizeof extra, 0);
        if (n != 0) {
            return n > 0 ? "bytes after the echo" : std::string("no FIN: ") + std::strerror(errno);
        }
    }
    return {};
}

void set_timeouts(int fd, int seconds) {
    const timeval timeout{seconds, 0};
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

int sequential(const ClientOptions& options) {
    const sockaddr_in address = address_of(options);
    const Clock::time_point start = Clock::now();
    const Clock::time_point deadline = start + std::chrono::seconds(options.time_limit);
    Report report;
    const std::uint64_t sample_every =
        options.samples == 0 ? 0 : std::max<std::uint64_t>(1, options.count / options.samples);
    const char* separator = "";
    bool timed_out = false;
    for (std::uint64_t index = 0; index < options.count; ++index) {
        if ((index & 255) == 0 && Clock::now() > deadline) {
            timed_out = true;
            break;
        }
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            report.failure(index, std::string("socket: ") + std::strerror(errno));
            continue;
        }
        set_timeouts(fd, 10);
        std::string error;
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
            error = std::string("connect: ") + std::strerror(errno);
        } else {
            // Two rounds: the router copies a connection's first reply
            // itself and splices it at the client's second flight.
            const std::vector<std::uint8_t> request = request_of(options, index);
            const auto split = request.begin() + static_cast<std::ptrdiff_t>(
                                                     options.prefixes[index % options.prefixes.size()].size());
            error = exchange(fd, {request.begin(), split}, false);
            if (error.empty()) {
                error = exchange(fd, {split, request.end()}, true);
            }
        }
        ::close(fd);
        if (error.empty()) {
            ++report.ok;
        } else {
            report.failure(index, error);
        }
        if (options.watch_pid != 0 && sample_every != 0 && (index + 1) % sample_every == 0) {
            const auto [fds, rss] = process_usage(options.watch_pid);
            report.samples += separator + ("[" + std::to_string(index + 1) + ", " +
                                           std::to_string(fds) + ", " + std::to_string(rss) + "]");
            separator = ", ";
        }
    }
    return report.print(start, timed_out);
}

// One connection of the concurrent mode, driven by epoll.
struct Concurrent {
    int fd = -1;
    std::uint64_t index = 0;
    std::vector<std::uint8_t> request;
    std::size_t half = 0;       // bytes in the first round: prefix + half the payload
    std::size_t sent = 0;       // of request
    std::size_t limit = 0;      // send up to here in this round
    std::size_t received = 0;   // echoed bytes checked so far
    bool connected = false;
    bool fin_sent = false;
    bool settled = false;       // counted as finished in this round
    bool done = false;
};

int concurrent(const ClientOptions& options) {
    raise_file_limit();
    const sockaddr_in address = address_of(options);
    const Clock::time_point start = Clock::now();
    const Clock::time_point deadline = start + std::chrono::seconds(options.time_limit);
    Report report;
    const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    std::vector<Concurrent> connections(options.count);
    std::vector<std::uint8_t> buffer(256 * 1024);
    for (std::uint64_t index = 0; index < options.count; ++index) {
        Concurrent& connection = connections[index];
        connection.index = index;
        connection.request = request_of(options, index);
        connection.half =
            options.prefixes[index % options.prefixes.size()].size() + options.payload / 2;
        connection.limit = connection.half;
        connection.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (connection.fd < 0 ||
            (::connect(connection.fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 &&
             errno != EINPROGRESS)) {
            report.failure(index, std::string("connect: ") + std::strerror(errno));
            connection.done = true;
            continue;
        }
        epoll_event event{};
        event.events = EPOLLIN | EPOLLOUT;
        event.data.u64 = index;
        (void)::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, connection.fd, &event);
    }
    std::uint64_t waiting = 0;  // connections not yet settled in this round
    const auto settle = [&](Concurrent& connection) {
        if (!connection.settled) {
            connection.settled = true;
            --waiting;
        }
    };
    const auto fail = [&](Concurrent& connection, const std::string& what) {
        report.failure(connection.index, what);
        connection.done = true;
        ::close(connection.fd);
        settle(connection);
    };
    // Runs every connection until it has received LIMIT bytes (and, in the
    // last round, EOF). Returns false on timeout.
    const auto run_round = [&](bool last) {
        waiting = 0;
        for (Concurrent& connection : connections) {
            connection.settled = connection.done;
            if (!connection.done) {
                ++waiting;
                epoll_event event{};
                event.events = EPOLLIN | EPOLLOUT;
                event.data.u64 = connection.index;
                (void)::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, connection.fd, &event);
            }
        }
        epoll_event events[256];
        while (waiting > 0) {
            if (Clock::now() > deadline) {
                return false;
            }
            const int count = ::epoll_wait(epoll_fd, events, 256, 100);
            for (int i = 0; i < count; ++i) {
                Concurrent& connection = connections[events[i].data.u64];
                if (connection.done) {
                    continue;
                }
                if ((events[i].events & EPOLLOUT) != 0 && connection.sent < connection.limit) {
                    const ssize_t n = ::send(connection.fd, connection.request.data() + connection.sent,
                                             connection.limit - connection.sent,
                                             MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (n < 0 && errno != EAGAIN) {
                        fail(connection, std::string("send: ") + std::strerror(errno));
                        continue;
                    }
                    connection.sent += n > 0 ? static_cast<std::size_t>(n) : 0;
                }
                epoll_event wanted{};
                wanted.events = EPOLLIN | (connection.sent < connection.limit ? EPOLLOUT : 0u);
                wanted.data.u64 = connection.index;
                (void)::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, connection.fd, &wanted);
                if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0) {
                    continue;
                }
                const ssize_t n = ::recv(connection.fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
                if (n < 0) {
                    if (errno != EAGAIN) {
                        fail(connection, std::string("recv: ") + std::strerror(errno));
                    }
                    continue;
                }
                if (n == 0) {
                    if (last && connection.received == connection.request.size()) {
                        ::close(connection.fd);
                        connection.done = true;
                        ++report.ok;
                        settle(connection);
                    } else {
                        fail(connection, "EOF after " + std::to_string(connection.received) +
                                             " of " + std::to_string(connection.limit) + " bytes");
                    }
                    continue;
                }
                const auto got = static_cast<std::size_t>(n);
                if (connection.received + got > connection.limit ||
                    std::memcmp(buffer.data(), connection.request.data() + connection.received, got) != 0) {
                    fail(connection, "echo differs from what was sent at byte " +
                                         std::to_string(connection.received));
                    continue;
                }
                connection.received += got;
                // The FIN once the whole echo is back, not with the last
                // bytes: a client half-closed by the time the router
                // splices its connection takes the splice(2) fallback.
                if (last && connection.received == connection.request.size() && !connection.fin_sent) {
                    ::shutdown(connection.fd, SHUT_WR);
                    connection.fin_sent = true;
                }
                if (!last && connection.received == connection.limit) {
                    settle(connection);  // this round's echo is complete; EOF comes in the last
                }
            }
        }
        return true;
    };
    bool timed_out = !run_round(false);
    if (!timed_out && !options.hold_file.empty()) {
        std::ofstream(options.hold_file) << "holding " << options.count << "\n";
        struct stat ignored {};
        while (::stat(options.release_file.c_str(), &ignored) != 0) {
            if (Clock::now() > deadline) {
                timed_out = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    if (!timed_out) {
        for (Concurrent& connection : connections) {
            connection.limit = connection.request.size();
        }
        timed_out = !run_round(true);
    }
    for (Concurrent& connection : connections) {
        if (!connection.done) {
            report.failure(connection.index, "unfinished at the time limit (" +
                                                 std::to_string(connection.received) + " bytes echoed)");
            ::close(connection.fd);
        }
    }
    return report.print(start, timed_out);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage("a mode is required");
    }
    const std::string mode = argv[1];
    if (mode == "echo-server") {
        return echo_server(argc - 2, argv + 2);
    }
    if (mode == "sequential") {
        return sequential(parse_client(argc - 2, argv + 2));
    }
    if (mode == "concurrent") {
        return concurrent(parse_client(argc - 2, argv + 2));
    }
    usage(("unknown mode " + mode).c_str());
}
