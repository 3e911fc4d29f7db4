#include "metrics_server.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "event_log.hpp"

namespace portmux {
namespace {

std::uint16_t parse_port(std::string_view text, std::string_view whole) {
    unsigned value = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || err != std::errc() || end != text.data() + text.size() || value > 65535) {
        throw std::invalid_argument(
            fmt::format("metrics listen address '{}': port '{}' is not a number from 0 to 65535",
                        std::string(whole), std::string(text)));
    }
    return static_cast<std::uint16_t>(value);
}

MHD_Result queue_text(MHD_Connection* connection, unsigned status, std::string_view body,
                      const char* content_type) {
    MHD_Response* response = MHD_create_response_from_buffer(
        body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
    if (!response) {
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    const MHD_Result result = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return result;
}

constexpr const char* kPlain = "text/plain; charset=utf-8";
constexpr const char* kExposition = "text/plain; version=0.0.4; charset=utf-8";

MHD_Result handle_request(void* cls, MHD_Connection* connection, const char* url,
                          const char* method, const char* /*version*/, const char* /*upload*/,
                          size_t* upload_size, void** request_state) {
    // The first call for a request only announces it; answering at once is
    // allowed, and a body (none is expected) is then discarded.
    (void)request_state;
    (void)upload_size;
    const auto& render = *static_cast<const MetricsServer::Render*>(cls);
    const std::string_view path(url ? url : "");
    const std::string_view verb(method ? method : "");
    if (verb != MHD_HTTP_METHOD_GET && verb != MHD_HTTP_METHOD_HEAD) {
        return queue_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET is served\n", kPlain);
    }
    if (path == "/") {
        return queue_text(connection, MHD_HTTP_OK, "portmux: metrics are at /metrics\n", kPlain);
    }
    if (path != "/metrics") {
        return queue_text(connection, MHD_HTTP_NOT_FOUND, "not found; metrics are at /metrics\n",
                          kPlain);
    }
    std::string body;
    try {
        body = render();
    } catch (const std::exception& error) {
        log_event(LogLevel::warning, "metrics_failed", {{"error", error.what()}});
        return queue_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          fmt::format("reading portmux's state failed: {}\n", error.what()), kPlain);
    }
    // Hand the rendered text over without a copy: libmicrohttpd frees it.
    char* buffer = static_cast<char*>(std::malloc(body.size() ? body.size() : 1));
    if (!buffer) {
        return MHD_NO;
    }
    std::memcpy(buffer, body.data(), body.size());
    MHD_Response* response =
        MHD_create_response_from_buffer_with_free_callback(body.size(), buffer, &std::free);
    if (!response) {
        std::free(buffer);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, kExposition);
    const MHD_Result result = MHD_queue_response(connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return result;
}

}  // namespace

ListenAddress parse_listen_address(std::string_view text) {
    ListenAddress result;
    result.text = std::string(text);
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        throw std::invalid_argument(fmt::format(
            "metrics listen address '{}' has no port; use ADDR:PORT, [ADDR]:PORT or :PORT",
            std::string(text)));
    }
    const std::uint16_t port = parse_port(text.substr(colon + 1), text);
    std::string_view host = text.substr(0, colon);
    if (host.empty() || host == "[::]") {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&result.address);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        in6->sin6_addr = in6addr_any;
        result.length = sizeof(sockaddr_in6);
        result.dual_stack = true;
        return result;
    }
    if (host.front() == '[') {
        if (host.size() < 2 || host.back() != ']') {
            throw std::invalid_argument(fmt::format(
                "metrics listen address '{}': an IPv6 address goes in brackets, [ADDR]:PORT",
                std::string(text)));
        }
        const std::string address(host.substr(1, host.size() - 2));
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&result.address);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr) != 1) {
            throw std::invalid_argument(fmt::format(
                "metrics listen address '{}': '{}' is not an IPv6 address", std::string(text),
                address));
        }
        result.length = sizeof(sockaddr_in6);
        return result;
    }
    const std::string address(host);
    auto* in = reinterpret_cast<sockaddr_in*>(&result.address);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    if (inet_pton(AF_INET, address.c_str(), &in->sin_addr) != 1) {
        throw std::invalid_argument(fmt::format(
            "metrics listen address '{}': '{}' is not an IPv4 address (IPv6 goes in brackets)",
            std::string(text), address));
    }
    result.length = sizeof(sockaddr_in);
    return result;
}

namespace {

MHD_Daemon* start_daemon(const sockaddr_storage& address, bool dual_stack,
                         MetricsServer::Render* render, const MetricsServerLimits& limits) {
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    if (address.ss_family == AF_INET6) {
        flags |= dual_stack ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    }
    return MHD_start_daemon(
        flags, 0, nullptr, nullptr, &handle_request, render,
        MHD_OPTION_SOCK_ADDR, reinterpret_cast<const sockaddr*>(&address),
        MHD_OPTION_CONNECTION_LIMIT, limits.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, limits.idle_timeout_seconds,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_END);
}

}  // namespace

MetricsServer::MetricsServer(const ListenAddress& address, Render render,
                             MetricsServerLimits limits)
    : render_(std::move(render)) {
    errno = 0;
    daemon_ = start_daemon(address.address, address.dual_stack, &render_, limits);
    if (!daemon_ && address.dual_stack) {
        // ":PORT" on a host without IPv6: every IPv4 address instead.
        sockaddr_storage v4{};
        auto* in = reinterpret_cast<sockaddr_in*>(&v4);
        in->sin_family = AF_INET;
        in->sin_port = reinterpret_cast<const sockaddr_in6*>(&address.address)->sin6_port;
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        errno = 0;
        daemon_ = start_daemon(v4, false, &render_, limits);
    }
    if (!daemon_) {
        throw std::runtime_error(fmt::format("cannot serve metrics on {}: {}", address.text,
                                             errno ? std::strerror(errno) : "libmicrohttpd failed"));
    }
}

MetricsServer::~MetricsServer() {
    if (daemon_) {
        MHD_stop_daemon(daemon_);
    }
}

std::uint16_t MetricsServer::port() const {
    const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

}  // namespace portmux
