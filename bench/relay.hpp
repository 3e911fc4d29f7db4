// A one-thread epoll TCP relay for the first-bytes benchmarks (issue 11):
// accept on --listen, connect to --backend, and move bytes both ways until
// each side has closed. The copy strategy is a template parameter, so the
// naive read/write proxy (naive_proxy.cpp) and the splice(2) proxy
// (splice_proxy.cpp) share everything else and differ only where they are
// meant to differ.
//
//   PROXY --listen PORT --backend ADDR:PORT [--listen-addr ADDR] [--cpu N]
//         [--buffer BYTES] [--ready FILE]
//
// Behaviour both proxies share, and why:
// - Backpressure: a direction reads again only once what it holds has been
//   written (one buffer, or one pipe, per direction), so a slow reader
//   stops the writer instead of growing memory.
// - Half-close: EOF from one side becomes shutdown(SHUT_WR) on the other
//   once everything read has been written; the pair closes when both
//   directions have ended. A read or write error (RST) closes both sides
//   with a reset (SO_LINGER 0), so the peer sees it too.
// - SIGTERM/SIGINT end the loop; a JSON line with the counts goes to stdout.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace relay {

inline volatile sig_atomic_t g_stop = 0;

[[noreturn]] inline void die(const char* what) {
    std::fprintf(stderr, "relay: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

struct Options {
    int listen_port = 0;
    std::string listen_addr = "0.0.0.0";
    sockaddr_in backend{};
    int cpu = -1;
    // 64 KiB: the pipe default, and below malloc's mmap threshold (a bigger
    // buffer costs an mmap and page faults per connection).
    std::size_t buffer = 64 * 1024;
    std::string ready;
};

inline Options parse(int argc, char** argv) {
    Options o;
    bool have_backend = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i], value = argv[i + 1];
        if (key == "--listen") {
            o.listen_port = std::atoi(value.c_str());
        } else if (key == "--listen-addr") {
            o.listen_addr = value;
        } else if (key == "--backend") {
            const auto colon = value.rfind(':');
            if (colon == std::string::npos) break;
            o.backend.sin_family = AF_INET;
            o.backend.sin_port = htons(static_cast<std::uint16_t>(std::atoi(value.c_str() + colon + 1)));
            have_backend = inet_pton(AF_INET, value.substr(0, colon).c_str(), &o.backend.sin_addr) == 1;
        } else if (key == "--cpu") {
            o.cpu = std::atoi(value.c_str());
        } else if (key == "--buffer") {
            o.buffer = static_cast<std::size_t>(std::atol(value.c_str()));
        } else if (key == "--ready") {
            o.ready = value;
        } else {
            std::fprintf(stderr, "relay: unknown option %s\n", key.c_str());
            std::exit(2);
        }
    }
    if (o.listen_port <= 0 || o.listen_port > 65535 || !have_backend || o.buffer < 4096) {
        std::fprintf(stderr, "usage: %s --listen PORT --backend ADDR:PORT [--listen-addr ADDR] [--cpu N] "
                             "[--buffer BYTES >= 4096] [--ready FILE]\n", argv[0]);
        std::exit(2);
    }
    return o;
}

// One direction of a connection: bytes read from `from`, not yet written to `to`.
template <typename Copy>
struct Direction {
    int from = -1;
    int to = -1;
    bool eof = false;   // `from` said EOF
    bool done = false;  // ... and everything was written, `to` shut down for writing
    typename Copy::State state;
};

template <typename Copy>
struct Pair;

template <typename Copy>
struct Endpoint {
    Pair<Copy>* pair;
    int side;  // 0: client socket, 1: backend socket
    std::uint32_t mask = 0;
};

template <typename Copy>
struct Pair {
    int fd[2] = {-1, -1};
    bool connecting = true;
    Endpoint<Copy> end[2];
    Direction<Copy> dir[2];  // 0: client -> backend, 1: backend -> client
};

struct Counters {
    long accepted = 0, connect_failed = 0, reset = 0, closed = 0;
    long long bytes[2] = {0, 0};
};

template <typename Copy>
class Loop {
public:
    explicit Loop(const Options& o) : opts_(o), copy_(o.buffer) {}

    int run() {
        signal(SIGPIPE, SIG_IGN);
        signal(SIGTERM, [](int) { g_stop = 1; });
        signal(SIGINT, [](int) { g_stop = 1; });
        if (opts_.cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(opts_.cpu, &set);
            if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
        }
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        listener_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (listener_ < 0) die("socket");
        int one = 1;
        setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<std::uint16_t>(opts_.listen_port));
        if (inet_pton(AF_INET, opts_.listen_addr.c_str(), &sa.sin_addr) != 1) die("--listen-addr");
        if (bind(listener_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) die("bind");
        if (listen(listener_, 4096) != 0) die("listen");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = nullptr;  // the listener
        epoll_ctl(ep_, EPOLL_CTL_ADD, listener_, &ev);
        if (!opts_.ready.empty()) std::ofstream(opts_.ready) << "ready\n";

        epoll_event events[128];
        while (!g_stop) {
            const int n = epoll_wait(ep_, events, 128, 200);
            for (int i = 0; i < n; ++i) {
                if (events[i].data.ptr == nullptr) {
                    accept_all();
                    continue;
                }
                auto* end = static_cast<Endpoint<Copy>*>(events[i].data.ptr);
                Pair<Copy>* p = end->pair;
                if (p->connecting) {
                    // SO_ERROR reads 0 while a connect is in progress: only the
                    // backend's EPOLLOUT says it finished.
                    if (end->side == 1) {
                        finish_connect(p);
                    } else if (events[i].events & (EPOLLHUP | EPOLLERR)) {
                        destroy(p, true);  // the client left before the backend answered
                    }
                } else {
                    pump(p);
                }
            }
        }
        std::printf("{\"accepted\": %ld, \"connect_failed\": %ld, \"reset\": %ld, \"closed\": %ld, "
                    "\"bytes_to_backend\": %lld, \"bytes_to_client\": %lld}\n",
                    counters_.accepted, counters_.connect_failed, counters_.reset, counters_.closed,
                    counters_.bytes[0], counters_.bytes[1]);
        return 0;
    }

private:
    void accept_all() {
        for (;;) {
            const int c = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c < 0) return;
            ++counters_.accepted;
            const int b = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (b < 0) {
                reset_close(c);
                continue;
            }
            int one = 1;  // small requests and answers go out at once, as nginx does
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            auto* p = new Pair<Copy>;
            p->fd[0] = c;
            p->fd[1] = b;
            for (int s = 0; s < 2; ++s) {
                p->end[s].pair = p;
                p->end[s].side = s;
                p->dir[s].from = p->fd[s];
                p->dir[s].to = p->fd[1 - s];
                copy_.init(p->dir[s].state);
            }
            const int r = connect(b, reinterpret_cast<const sockaddr*>(&opts_.backend), sizeof opts_.backend);
            if (r != 0 && errno != EINPROGRESS) {
                ++counters_.connect_failed;
                destroy(p, true);
                continue;
            }
            // The client is not read until the backend is connected.
            watch(p, 1, EPOLLOUT, EPOLL_CTL_ADD);
            watch(p, 0, 0, EPOLL_CTL_ADD);
            if (r == 0) finish_connect(p);
        }
    }

    void finish_connect(Pair<Copy>* p) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(p->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == EINPROGRESS || err == EALREADY) return;
        if (err != 0) {
            ++counters_.connect_failed;
            destroy(p, true);
            return;
        }
        p->connecting = false;
        pump(p);
    }

    // Moves what it can in both directions, then says which events it waits for.
    void pump(Pair<Copy>* p) {
        for (int d = 0; d < 2; ++d) {
            Direction<Copy>& dir = p->dir[d];
            for (int rounds = 0; rounds < 8 && !dir.done; ++rounds) {
                if (copy_.pending(dir.state) > 0) {
                    const ssize_t w = copy_.drain(dir.state, dir.to);
                    if (w < 0) {
                        if (errno == EAGAIN) break;
                        destroy(p, true);
                        return;
                    }
                    counters_.bytes[d] += w;
                    if (copy_.pending(dir.state) > 0) break;  // `to` is full: wait for EPOLLOUT
                }
                if (dir.eof) {
                    shutdown(dir.to, SHUT_WR);
                    dir.done = true;
                    break;
                }
                const ssize_t r = copy_.fill(dir.state, dir.from);
                if (r < 0) {
                    if (errno == EAGAIN) break;
                    destroy(p, true);
                    return;
                }
                if (r == 0) dir.eof = true;
            }
        }
        if (p->dir[0].done && p->dir[1].done) {
            destroy(p, false);
            return;
        }
        for (int s = 0; s < 2; ++s) {
            // Side s is read by direction s and written by direction 1 - s.
            std::uint32_t want = 0;
            const Direction<Copy>& reading = p->dir[s];
            const Direction<Copy>& writing = p->dir[1 - s];
            if (!reading.eof && copy_.pending(reading.state) == 0) want |= EPOLLIN;
            if (!writing.done && copy_.pending(writing.state) > 0) want |= EPOLLOUT;
            if (want != p->end[s].mask) watch(p, s, want, EPOLL_CTL_MOD);
        }
    }

    void watch(Pair<Copy>* p, int side, std::uint32_t mask, int op) {
        epoll_event ev{};
        ev.events = mask;
        ev.data.ptr = &p->end[side];
        epoll_ctl(ep_, op, p->fd[side], &ev);
        p->end[side].mask = mask;
    }

    static void reset_close(int fd) {
        linger l{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close(fd);
    }

    void destroy(Pair<Copy>* p, bool reset) {
        for (int s = 0; s < 2; ++s) {
            copy_.release(p->dir[s].state);
            if (p->fd[s] < 0) continue;
            epoll_ctl(ep_, EPOLL_CTL_DEL, p->fd[s], nullptr);
            if (reset) {
                reset_close(p->fd[s]);
            } else {
                close(p->fd[s]);
            }
        }
        ++(reset ? counters_.reset : counters_.closed);
        delete p;
    }

    Options opts_;
    Copy copy_;
    int ep_ = -1;
    int listener_ = -1;
    Counters counters_;
};

template <typename Copy>
int main_with(int argc, char** argv) {
    const Options o = parse(argc, argv);
    return Loop<Copy>(o).run();
}

}  // namespace relay
