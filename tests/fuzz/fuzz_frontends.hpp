// The frontends the packet fuzzer installs, described in a form of its own
// (FrontendSpec) from which both the loader's Config and the reference
// model are derived: the model reads the spec, never the encoded map value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config.hpp"

namespace portmux::fuzz {

using Bytes = std::vector<std::uint8_t>;

inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;

struct BackendSpec {
    std::uint16_t port = 0;
    std::uint16_t weight = 1;  // 0: reached only through a route tag
};

struct MatchSpec {
    std::uint16_t offset = 0;  // from the start of the L4 payload
    Bytes value;
    Bytes mask;  // same size as value, or empty for all ones
};

struct TagSpec {
    Bytes tag;  // exactly RouteSpec::length bytes
    std::uint16_t backend_port = 0;
};

struct FrontendSpec {
    std::string name;
    std::uint16_t port = 0;
    std::uint8_t protocol = kProtoUdp;
    std::vector<BackendSpec> backends;
    bool flow_affinity = false;

    bool validate = false;
    std::uint16_t min_payload = 0;
    std::uint16_t max_payload = 65535;
    std::vector<MatchSpec> matches;

    bool route = false;
    std::uint16_t tag_offset = 0;
    std::uint8_t tag_length = 0;
    std::vector<TagSpec> tags;
    bool unknown_round_robin = false;

    // Index into backends of `port`, or -1.
    int backend_index(std::uint16_t backend_port) const;
    bool has_backend(std::uint16_t backend_port) const { return backend_index(backend_port) >= 0; }
};

// The fixed set of frontends of every run (replayed frames depend on it):
// UDP round robin with weights, UDP round robin over 64 backends, UDP flow
// affinity, TCP, TCP with validate, UDP validate (window + magic + masked
// nibble), UDP validate with a match near the 1500-byte payload bound, UDP
// route (unknown tags drop, a weight-0 route-only backend), UDP validate +
// route (unknown tags round robin).
const std::vector<FrontendSpec>& fuzz_frontends();

// The frontend for (destination port, IP protocol), or nullptr.
const FrontendSpec* find_frontend(std::uint16_t port, std::uint8_t protocol);

// The loader's Config for the specs (built directly, not through JSON).
Config to_config(const std::vector<FrontendSpec>& specs);

}  // namespace portmux::fuzz
