#include "sockmap_probe.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include <fmt/format.h>

#include "bpf_handles.hpp"
#include "portmux_shared.h"
#include "portmux_stream_bpf.skel.h"

namespace portmux {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kProbeTime = std::chrono::seconds(2);
constexpr char kProbeBytes[] = "portmux sockmap self-test: these bytes, then a FIN";
constexpr std::size_t kProbeLength = sizeof kProbeBytes - 1;

struct ProbeSkeletonDestroyer {
    void operator()(portmux_stream_bpf* skeleton) const noexcept {
        portmux_stream_bpf__destroy(skeleton);
    }
};

using Verdict = SockmapProbeVerdict;

struct Outcome {
    Verdict verdict = Verdict::passed;
    std::string detail;  // what failed, or why the probe could not run
};

constexpr char kTestHook[] = "PORTMUX_TEST_SOCKMAP_PROBE";
// The kernel feature the router needs, as the log line names it.
constexpr char kFeature[] = "sockmap sk_skb stream verdict FIN handling (Linux 6.4)";

Outcome failed(std::string detail) {
    return {Verdict::failed, std::move(detail)};
}

Outcome unavailable(std::string detail) {
    return {Verdict::unavailable, std::move(detail)};
}

std::string kernel_release() {
    utsname name{};
    return ::uname(&name) == 0 ? name.release : "unknown";
}

bool release_at_least_6_4(const std::string& release) {
    unsigned major = 0;
    unsigned minor = 0;
    if (std::sscanf(release.c_str(), "%u.%u", &major, &minor) != 2) {
        return true;  // unknown: let the router try
    }
    return major > 6 || (major == 6 && minor >= 4);
}

// Polls FD for EVENTS until DEADLINE; the events it saw, 0 on timeout.
short wait_for(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd entry{fd, events, 0};
        const int ready = ::poll(&entry, 1, static_cast<int>(std::max<long>(0, left.count())));
        if (ready > 0) {
            return entry.revents;
        }
        if (ready == 0 || errno != EINTR) {
            return 0;
        }
    }
}

// Connects NEAR to LISTENER (bound on loopback) and accepts FAR.
bool loopback_pair(int listener, const sockaddr_in& address, UniqueFd& near, UniqueFd& far) {
    near.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!near || ::connect(near.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        return false;
    }
    far.reset(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    return static_cast<bool>(far);
}

std::uint64_t cookie_of(int fd) {
    std::uint64_t cookie = 0;
    socklen_t length = sizeof cookie;
    return ::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &length) == 0 ? cookie : 0;
}

// Two loopback connections, client -> spliced_client and spliced_backend
// -> backend, the middle two spliced the way the router splices them.
// The client sends kProbeBytes and a FIN.
Outcome run_probe() {
    std::unique_ptr<portmux_stream_bpf, ProbeSkeletonDestroyer> skeleton(
        portmux_stream_bpf__open_and_load());
    if (!skeleton) {
        return unavailable(fmt::format("loading the verdict program: {}", std::strerror(errno)));
    }
    const int sockets = bpf_map__fd(skeleton->maps.stream_sockets);
    const int peers = bpf_map__fd(skeleton->maps.stream_peers);
    const int states = bpf_map__fd(skeleton->maps.stream_sockets_state);
    if (bpf_prog_attach(bpf_program__fd(skeleton->progs.portmux_stream_verdict), sockets,
                        BPF_SK_SKB_STREAM_VERDICT, 0) != 0) {
        return unavailable(fmt::format("attaching the verdict program: {}", std::strerror(errno)));
    }

    const UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (!listener || ::bind(listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener.get(), 4) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        return unavailable(fmt::format("a TCP listener on 127.0.0.1: {}", std::strerror(errno)));
    }
    UniqueFd client;
    UniqueFd spliced_client;
    UniqueFd spliced_backend;
    UniqueFd backend;
    if (!loopback_pair(listener.get(), address, client, spliced_client) ||
        !loopback_pair(listener.get(), address, spliced_backend, backend)) {
        return unavailable(fmt::format("connecting on 127.0.0.1: {}", std::strerror(errno)));
    }

    const std::uint64_t client_cookie = cookie_of(spliced_client.get());
    const std::uint64_t backend_cookie = cookie_of(spliced_backend.get());
    portmux_stream_socket client_state{};
    client_state.to_backend = 1;
    const portmux_stream_socket backend_state{};
    // Never notified: the probe reads the counts itself.
    portmux_stream_peer to_backend{};
    to_backend.peer_cookie = backend_cookie;
    to_backend.notify_at = ~0ULL;
    portmux_stream_peer to_client = to_backend;
    to_client.peer_cookie = client_cookie;
    auto backend_fd = static_cast<std::uint32_t>(spliced_backend.get());
    auto client_fd = static_cast<std::uint32_t>(spliced_client.get());
    // Backend first, as the router does.
    if (client_cookie == 0 || backend_cookie == 0 ||
        bpf_map_update_elem(states, &client_cookie, &client_state, BPF_ANY) != 0 ||
        bpf_map_update_elem(states, &backend_cookie, &backend_state, BPF_ANY) != 0 ||
        bpf_map_update_elem(peers, &client_cookie, &to_backend, BPF_ANY) != 0 ||
        bpf_map_update_elem(peers, &backend_cookie, &to_client, BPF_ANY) != 0 ||
        bpf_map_update_elem(sockets, &backend_cookie, &backend_fd, BPF_NOEXIST) != 0 ||
        bpf_map_update_elem(sockets, &client_cookie, &client_fd, BPF_NOEXIST) != 0) {
        return unavailable(fmt::format("filling the probe's maps: {}", std::strerror(errno)));
    }

    const Clock::time_point deadline = Clock::now() + kProbeTime;
    if (::send(client.get(), kProbeBytes, kProbeLength, MSG_NOSIGNAL) != static_cast<ssize_t>(kProbeLength) ||
        ::shutdown(client.get(), SHUT_WR) != 0) {
        return unavailable(fmt::format("sending on 127.0.0.1: {}", std::strerror(errno)));
    }
    // The bytes reach the other connection through the verdict program.
    char received[kProbeLength + 1] = {};
    std::size_t got = 0;
    while (got < kProbeLength && (wait_for(backend.get(), POLLIN, deadline) & POLLIN) != 0) {
        const ssize_t n = ::recv(backend.get(), received + got, sizeof received - got, MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    if (got != kProbeLength || std::memcmp(received, kProbeBytes, kProbeLength) != 0) {
        return failed(fmt::format("{} of {} bytes crossed the splice", got, kProbeLength));
    }
    // The FIN shows on the spliced socket, which is how the router learns
    // that a side has ended.
    if ((wait_for(spliced_client.get(), POLLRDHUP, deadline) & POLLRDHUP) == 0) {
        return failed("the FIN of a spliced socket never showed (no EPOLLRDHUP)");
    }
    // And the counts the router compares before it passes the FIN on agree:
    // what the socket received (the FIN counts one) is what the program
    // redirected.
    portmux_stream_socket counted{};
    tcp_info info{};
    socklen_t info_length = sizeof info;
    if (bpf_map_lookup_elem(states, &client_cookie, &counted) != 0 ||
        ::getsockopt(spliced_client.get(), IPPROTO_TCP, TCP_INFO, &info, &info_length) != 0) {
        return unavailable(fmt::format("reading the probe's counts: {}", std::strerror(errno)));
    }
    if (counted.redirected_bytes != kProbeLength || info.tcpi_bytes_received != kProbeLength + 1) {
        return failed(fmt::format("counts disagree: {} bytes redirected, {} received with the FIN",
                                  counted.redirected_bytes, info.tcpi_bytes_received));
    }
    (void)bpf_map_delete_elem(sockets, &client_cookie);
    (void)bpf_map_delete_elem(sockets, &backend_cookie);
    return {};
}

}  // namespace

SockmapProbe judge_sockmap_probe(SockmapProbeVerdict verdict, const std::string& detail,
                                 const std::string& release) {
    SockmapProbe probe;
    switch (verdict) {
    case Verdict::passed:
        probe.splices = true;
        return probe;
    case Verdict::failed:
        probe.splices = false;
        probe.event = "sockmap_self_test_failed";
        break;
    case Verdict::unavailable:
        probe.splices = release_at_least_6_4(release);
        probe.event = "sockmap_self_test_not_run";
        break;
    }
    probe.fields = {{"kernel", release},
                    {"feature", kFeature},
                    {"reason", detail},
                    {"relay", probe.splices ? "sockmap" : "splice"}};
    return probe;
}

SockmapProbe probe_sockmap_splicing() {
    const char* hook = std::getenv(kTestHook);
    const Outcome outcome = hook && std::string_view(hook) == "fail"
                                ? failed(fmt::format("failure injected by {}", kTestHook))
                                : run_probe();
    return judge_sockmap_probe(outcome.verdict, outcome.detail, kernel_release());
}

}  // namespace portmux
