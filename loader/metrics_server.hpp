// The HTTP side of `portmux run --metrics-listen ADDR:PORT`: GET /metrics
// answers with the text a render callback returns. libmicrohttpd serves it
// from one internal thread on epoll, so idle, slow or garbage clients cost
// a socket each and never block the run loop (reloads, liveness); a
// connection limit and an idle timeout bound what they can hold.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

struct MHD_Daemon;

namespace portmux {

// An address to listen on, parsed from "ADDR:PORT", "[V6ADDR]:PORT" or
// ":PORT" (all IPv4 and IPv6 addresses).
struct ListenAddress {
    sockaddr_storage address{};
    socklen_t length = 0;
    bool dual_stack = false;  // ":PORT" and "[::]:PORT"
    std::string text;         // as given, for messages
};

// Throws std::invalid_argument naming what is wrong with TEXT.
ListenAddress parse_listen_address(std::string_view text);

struct MetricsServerLimits {
    unsigned max_connections = 4096;  // more are refused; needs as many file descriptors
    unsigned idle_timeout_seconds = 10;
};

class MetricsServer {
public:
    // Returns the body of /metrics; runs on the server's thread and must be
    // thread-safe. An exception becomes a 500 answer naming it.
    using Render = std::function<std::string()>;

    // Starts listening; throws std::runtime_error when it cannot.
    MetricsServer(const ListenAddress& address, Render render, MetricsServerLimits limits = {});
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // The port actually bound (useful with port 0).
    std::uint16_t port() const;

private:
    Render render_;
    MHD_Daemon* daemon_ = nullptr;
};

}  // namespace portmux
