// The portmux backend configuration: parsed from JSON and validated whole
// before anything touches the kernel.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "portmux_shared.h"

namespace portmux {

enum class Protocol : std::uint8_t { tcp = 6, udp = 17 };

std::string_view to_string(Protocol protocol);

// How a frontend spreads a client's traffic. UDP: each datagram (packet), a
// client address and port stick to a backend (flow). TCP is per connection
// (packet here, shown as "connection"). Both: every connection and datagram
// of a client address goes to one backend while it is active (client, like
// IPVS persistence); `flow_idle_timeout` is its idle timeout.
enum class Affinity { packet, flow, client };

enum class UnknownTagAction { drop, round_robin };

struct Backend {
    std::uint16_t port = 0;   // host byte order
    std::uint16_t weight = 1; // share of round robin; 0: only reached by a route tag
    bool drained = false;     // runtime state (portmux drain), never read from JSON
    // Runtime liveness per address family (portmux run, from the kernel's
    // socket table), never read from JSON: a backend down for a family takes
    // no new packets or flows of that family.
    bool up_v4 = true;
    bool up_v6 = true;

    Backend() = default;
    Backend(std::uint16_t port_, std::uint16_t weight_ = 1) : port(port_), weight(weight_) {}
    friend bool operator==(const Backend&, const Backend&) = default;
};

// Payload bytes that must equal `value` under `mask` (all ones when empty).
struct ByteMatch {
    std::uint16_t offset = 0;
    std::vector<std::uint8_t> value;
    std::vector<std::uint8_t> mask;
    friend bool operator==(const ByteMatch&, const ByteMatch&) = default;
};

struct Validation {
    std::uint16_t min_payload = 0;
    std::uint16_t max_payload = 65535;
    std::vector<ByteMatch> matches;
    friend bool operator==(const Validation&, const Validation&) = default;
};

struct RouteTag {
    std::vector<std::uint8_t> tag;
    std::uint16_t backend_port = 0;
    friend bool operator==(const RouteTag&, const RouteTag&) = default;
};

struct Route {
    std::uint16_t offset = 0;
    std::uint8_t length = 0;
    std::vector<RouteTag> tags;
    UnknownTagAction unknown = UnknownTagAction::drop;
    friend bool operator==(const Route&, const Route&) = default;
};

inline constexpr std::uint16_t kDefaultFlowIdleSeconds = 30;
inline constexpr std::uint16_t kDefaultFirstDataTimeoutSeconds = 5;

struct Frontend {
    std::uint16_t port = 0;
    Protocol protocol = Protocol::udp;
    // In config order; route targets not listed as backends follow with weight 0.
    std::vector<Backend> backends;
    Affinity affinity = Affinity::packet;
    std::uint16_t flow_idle_seconds = kDefaultFlowIdleSeconds;
    // UDP only: false for one-way services, whose backends never answer;
    // saves the reply-table lookup on every datagram.
    bool reply_translation = true;
    std::optional<Validation> validate;
    std::optional<Route> route;
    // TCP frontends served by the stream router (stream_frontend() below):
    // how long a client may take to send the bytes the rules need, and
    // whether the backend gets a PROXY protocol v2 header first.
    std::uint16_t first_data_timeout_seconds = kDefaultFirstDataTimeoutSeconds;
    bool proxy_protocol_v2 = false;
};


struct Config {
    std::vector<Frontend> frontends;
    std::uint32_t flow_table_size = PORTMUX_DEFAULT_FLOW_TABLE_SIZE;
};

// A TCP frontend whose backend is picked from the client's first bytes
// (route or validate) or that sends a PROXY header: served by the stream
// router in user space and the sockmap verdict program, never by XDP.
bool stream_frontend(const Frontend& frontend);

// CONFIG without its stream frontends: what the XDP data path installs.
Config xdp_frontends(const Config& config);

// A config that cannot be used. path() names the offending JSON element in
// the form `frontends[2].backends[1]` (empty for the document as a whole).
class ConfigError : public std::runtime_error {
public:
    ConfigError(std::string path, std::string reason);
    const std::string& path() const noexcept { return path_; }
    const std::string& reason() const noexcept { return reason_; }

    // The same error reported against FILE: path() and reason() are kept,
    // what() becomes "FILE: <path>: <reason>".
    ConfigError in_file(const std::filesystem::path& file) const;

private:
    ConfigError(std::string path, std::string reason, const std::string& message);

    std::string path_;
    std::string reason_;
};

// Parses and validates a config document; throws ConfigError. The output
// of `portmux status --json` is accepted too (a round trip): the config of
// its interface named INTERFACE, or of its only interface.
Config parse_config(std::string_view json_text, const std::string& interface = {});

// Reads FILE and parses it; the error message names the file too. A file
// that cannot be read is a ConfigError with an empty path naming the cause.
Config load_config(const std::filesystem::path& file, const std::string& interface = {});

}  // namespace portmux
