// The schema of the portmux config: which keys, which values, which rules
// between them; docs/config.md is the user's side of every rule and message
// here. The JSON text itself is read by config_json.cpp.
#include "config.hpp"

#include <algorithm>
#include <initializer_list>
#include <map>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "config_json.hpp"
#include "portmux_shared.h"

namespace portmux {
namespace {

using config_json::describe;
using config_json::element_path;
using config_json::json_string;
using config_json::Json;
using config_json::member_path;

constexpr std::uint64_t lowest_port = 1;
constexpr std::uint64_t highest_port = 65535;
constexpr std::size_t max_backends = PORTMUX_MAX_BACKENDS;
constexpr std::size_t max_frontends = PORTMUX_MAX_FRONTENDS;
constexpr std::uint64_t rr_slots = PORTMUX_RR_SLOTS;
constexpr std::uint64_t lowest_weight = 1;
constexpr std::uint64_t highest_weight = PORTMUX_RR_SLOTS;
constexpr std::uint64_t lowest_flow_table_size = 1024;
constexpr std::uint64_t highest_flow_table_size = 16777216;
constexpr std::uint64_t lowest_idle_seconds = 1;
constexpr std::uint64_t highest_idle_seconds = 65535;
constexpr std::uint64_t highest_payload_length = 65535;
constexpr std::uint64_t highest_payload_offset = PORTMUX_MAX_PAYLOAD_OFFSET;
constexpr std::size_t max_matches = PORTMUX_MAX_MATCHES;
constexpr std::size_t max_match_length = PORTMUX_MAX_MATCH_LEN;
constexpr std::uint64_t max_tag_length = PORTMUX_MAX_TAG_LEN;
// The routes map (xdp/maps.h) holds this many (frontend, tag) entries in all.
constexpr std::size_t max_route_tags = PORTMUX_MAX_ROUTES;

constexpr std::string_view tcp_per_connection = "TCP is always balanced per connection";
constexpr std::uint64_t lowest_first_data_timeout = 1;
constexpr std::uint64_t highest_first_data_timeout = 3600;
// The stream router reads at most this many bytes of a TCP client before it
// decides, the same bound as matches and tags.
constexpr std::uint64_t highest_stream_min_length = PORTMUX_MAX_PAYLOAD_OFFSET;


std::string protocol_key(Protocol protocol, std::uint16_t port) {
    return fmt::format("{}/{}", port, to_string(protocol));
}

// ---------------------------------------------------------------- structure

std::string list_alternatives(std::initializer_list<std::string_view> names) {
    std::string text;
    std::size_t index = 0;
    for (const std::string_view name : names) {
        if (index > 0) {
            text += index + 1 == names.size() ? " or " : ", ";
        }
        text += json_string(name);
        ++index;
    }
    return text;
}

void reject_unknown_keys(const Json& object, const std::string& path,
                         std::initializer_list<std::string_view> known) {
    for (const auto& [key, value] : object.items()) {
        if (std::find(known.begin(), known.end(), key) == known.end()) {
            throw ConfigError(member_path(path, key),
                              fmt::format("unknown key {} (expected {})", json_string(key),
                                          list_alternatives(known)));
        }
    }
}

const Json& required_member(const Json& object, const std::string& path, std::string_view key) {
    const auto found = object.find(key);
    if (found == object.end()) {
        throw ConfigError(path, fmt::format("missing required key {}", json_string(key)));
    }
    return *found;
}

// The object member KEY, when there is one.
const Json* optional_member(const Json& object, std::string_view key) {
    const auto found = object.find(key);
    return found == object.end() ? nullptr : &*found;
}

void require_object(const Json& value, const std::string& path, std::string_view contents) {
    if (!value.is_object()) {
        throw ConfigError(path, fmt::format("expected an object with {}, got {}", contents,
                                            describe(value)));
    }
}

// Which of FIRST and SECOND OBJECT has: exactly one of them is required.
// When both are given, the one written second is at fault.
std::string_view exactly_one_of(const Json& object, const std::string& path,
                                std::string_view first, std::string_view second) {
    const bool has_first = optional_member(object, first) != nullptr;
    const bool has_second = optional_member(object, second) != nullptr;
    if (has_first && has_second) {
        std::string_view later = second;
        for (const auto& [key, value] : object.items()) {
            if (key == first || key == second) {
                later = key == first ? second : first;
                break;
            }
        }
        throw ConfigError(member_path(path, later),
                          fmt::format("{} and {} cannot both be given (use one of them)",
                                      json_string(first), json_string(second)));
    }
    if (!has_first && !has_second) {
        throw ConfigError(path, fmt::format("missing required key {} or {}", json_string(first),
                                            json_string(second)));
    }
    return has_first ? first : second;
}

// A JSON integer from LOW to HIGH. Non-negative integers are parsed as
// unsigned; negative ones, floats (even 9875.0) and everything else fall
// through to the error, which says WHAT was expected.
std::uint64_t read_integer(const Json& value, const std::string& path, std::string_view what,
                           std::uint64_t low, std::uint64_t high) {
    if (value.is_number_unsigned()) {
        const auto number = value.get<std::uint64_t>();
        if (number >= low && number <= high) {
            return number;
        }
    }
    throw ConfigError(path, fmt::format("expected {}, an integer from {} to {}, got {}", what, low,
                                        high, describe(value)));
}

std::uint16_t read_port(const Json& value, const std::string& path) {
    return static_cast<std::uint16_t>(
        read_integer(value, path, "a port number", lowest_port, highest_port));
}

std::uint16_t read_payload_offset(const Json& value, const std::string& path) {
    return static_cast<std::uint16_t>(
        read_integer(value, path, "a payload offset in bytes", 0, highest_payload_offset));
}

// The index in NAMES of the string VALUE; WHAT names the kind of value in
// the message about an unknown one.
std::size_t read_choice(const Json& value, const std::string& path, std::string_view what,
                        std::initializer_list<std::string_view> names) {
    if (!value.is_string()) {
        throw ConfigError(path, fmt::format("expected {}, got {}", list_alternatives(names),
                                            describe(value)));
    }
    const auto& name = value.get_ref<const std::string&>();
    const auto found = std::find(names.begin(), names.end(), name);
    if (found == names.end()) {
        throw ConfigError(path, fmt::format("unknown {} {} (expected {})", what, json_string(name),
                                            list_alternatives(names)));
    }
    return static_cast<std::size_t>(found - names.begin());
}

Protocol read_protocol(const Json& value, const std::string& path) {
    return read_choice(value, path, "protocol", {"udp", "tcp"}) == 0 ? Protocol::udp
                                                                     : Protocol::tcp;
}

// ---------------------------------------------------------------- bytes

// The bytes of a string exactly as written (UTF-8 for non-ASCII text).
std::vector<std::uint8_t> read_text_bytes(const Json& value, const std::string& path) {
    if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
        throw ConfigError(path, fmt::format("expected a non-empty string, got {}", describe(value)));
    }
    const auto& text = value.get_ref<const std::string&>();
    return {text.begin(), text.end()};
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Two hex digits per byte, either case, nothing else: no spaces, no "0x".
std::vector<std::uint8_t> read_hex_bytes(const Json& value, const std::string& path) {
    if (!value.is_string()) {
        throw ConfigError(path, fmt::format("expected a string of hex digits, two per byte, got {}",
                                            describe(value)));
    }
    const auto& text = value.get_ref<const std::string&>();
    if (text.empty()) {
        throw ConfigError(path, "expected at least one byte (two hex digits), got the string \"\"");
    }
    if (!std::all_of(text.begin(), text.end(), [](char c) { return hex_digit(c) >= 0; })) {
        throw ConfigError(path, fmt::format("expected hex digits only (two per byte, no spaces, "
                                            "no \"0x\"), got {}",
                                            describe(value)));
    }
    if (text.size() % 2 != 0) {
        throw ConfigError(path, fmt::format("odd number of hex digits ({}): each byte takes two",
                                            text.size()));
    }
    std::vector<std::uint8_t> bytes;
    bytes.reserve(text.size() / 2);
    for (std::size_t i = 0; i < text.size(); i += 2) {
        bytes.push_back(static_cast<std::uint8_t>(hex_digit(text[i]) * 16 + hex_digit(text[i + 1])));
    }
    return bytes;
}

// Bytes as a user would recognise them: text when all printable ASCII,
// else `hex "0a1b"`.
std::string describe_bytes(const std::vector<std::uint8_t>& bytes) {
    const bool printable = std::all_of(bytes.begin(), bytes.end(),
                                       [](std::uint8_t b) { return b >= 0x20 && b < 0x7f; });
    if (printable) {
        return json_string(std::string(bytes.begin(), bytes.end()));
    }
    std::string hex;
    for (const std::uint8_t b : bytes) {
        hex += fmt::format("{:02x}", b);
    }
    return fmt::format("hex \"{}\"", hex);
}

std::string count_bytes(std::size_t count) {
    return fmt::format("{} byte{}", count, count == 1 ? "" : "s");
}

// ---------------------------------------------------------------- backends

Backend read_backend(const Json& value, const std::string& path) {
    if (value.is_object()) {
        reject_unknown_keys(value, path, {"port", "weight"});
        Backend backend(read_port(required_member(value, path, "port"), member_path(path, "port")));
        if (const Json* weight = optional_member(value, "weight")) {
            backend.weight = static_cast<std::uint16_t>(read_integer(
                *weight, member_path(path, "weight"), "a weight", lowest_weight, highest_weight));
        }
        return backend;
    }
    if (value.is_number()) {
        return Backend(read_port(value, path));
    }
    throw ConfigError(path, fmt::format("expected a port number, an integer from {} to {}, or an "
                                        "object with \"port\" and \"weight\", got {}",
                                        lowest_port, highest_port, describe(value)));
}

// The listed backends; whether there may be none depends on the route and
// is checked by read_frontend.
std::vector<Backend> read_backends(const Json& value, const std::string& path,
                                   std::uint16_t frontend_port) {
    if (!value.is_array()) {
        throw ConfigError(path, fmt::format("expected an array of backend ports, got {}",
                                            describe(value)));
    }
    if (value.size() > max_backends) {
        throw ConfigError(path, fmt::format("too many backends: {} (at most {})", value.size(),
                                            max_backends));
    }
    std::vector<Backend> backends;
    backends.reserve(value.size());
    std::uint64_t total_weight = 0;
    for (std::size_t index = 0; index < value.size(); ++index) {
        const std::string backend_path = element_path(path, index);
        const Backend backend = read_backend(value[index], backend_path);
        const std::uint16_t port = backend.port;
        if (port == frontend_port) {
            throw ConfigError(backend_path,
                              fmt::format("backend {} is the frontend's own port", port));
        }
        // By port alone: a backend is the same one whatever its weight.
        const auto earlier = std::find_if(backends.begin(), backends.end(),
                                          [port](const Backend& other) { return other.port == port; });
        if (earlier != backends.end()) {
            const auto first_index = static_cast<std::size_t>(earlier - backends.begin());
            throw ConfigError(backend_path,
                              fmt::format("duplicate backend {} (already listed at {})", port,
                                          element_path(path, first_index)));
        }
        total_weight += backend.weight;
        backends.push_back(backend);
    }
    if (total_weight > rr_slots) {
        throw ConfigError(path, fmt::format("weights add up to {}, more than the {} round-robin "
                                            "slots of a frontend",
                                            total_weight, rr_slots));
    }
    return backends;
}

// ---------------------------------------------------------------- validate

ByteMatch read_match(const Json& value, const std::string& path) {
    require_object(value, path, R"("offset" and "value" or "hex")");
    reject_unknown_keys(value, path, {"offset", "value", "hex", "mask"});
    (void)required_member(value, path, "offset");
    const std::string_view bytes_key = exactly_one_of(value, path, "value", "hex");

    ByteMatch match;
    bool has_mask = false;
    for (const auto& [key, member] : value.items()) {
        const std::string key_path = member_path(path, key);
        if (key == "offset") {
            match.offset = read_payload_offset(member, key_path);
        } else if (key == "value" || key == "hex") {
            match.value = key == "value" ? read_text_bytes(member, key_path)
                                         : read_hex_bytes(member, key_path);
            if (match.value.size() > max_match_length) {
                throw ConfigError(key_path, fmt::format("{} long, more than the {} a match compares",
                                                        count_bytes(match.value.size()),
                                                        max_match_length));
            }
        } else if (key == "mask") {
            match.mask = read_hex_bytes(member, key_path);
            has_mask = true;
        }
    }

    const std::size_t end = std::size_t{match.offset} + match.value.size();
    if (end > highest_payload_offset) {
        throw ConfigError(path, fmt::format("offset {} + {} = {} goes past the {} payload bytes "
                                            "portmux can inspect",
                                            match.offset, count_bytes(match.value.size()), end,
                                            highest_payload_offset));
    }
    if (has_mask && match.mask.size() != match.value.size()) {
        throw ConfigError(member_path(path, "mask"),
                          fmt::format("the mask is {} long but the {} is {}",
                                      count_bytes(match.mask.size()), json_string(bytes_key),
                                      count_bytes(match.value.size())));
    }
    return match;
}

std::vector<ByteMatch> read_matches(const Json& value, const std::string& path) {
    if (!value.is_array()) {
        throw ConfigError(path, fmt::format("expected an array of matches, got {}", describe(value)));
    }
    if (value.size() > max_matches) {
        throw ConfigError(path, fmt::format("too many matches: {} (at most {})", value.size(),
                                            max_matches));
    }
    std::vector<ByteMatch> matches;
    for (std::size_t index = 0; index < value.size(); ++index) {
        matches.push_back(read_match(value[index], element_path(path, index)));
    }
    return matches;
}

// On a TCP frontend (STREAM) validate judges the first bytes of the
// stream: min_length is how many the decision waits for, and max_length
// has no meaning (segments come in any size).
Validation read_validation(const Json& value, const std::string& path, bool stream) {
    require_object(value, path, R"("min_length", "max_length" and/or "match")");
    reject_unknown_keys(value, path, {"min_length", "max_length", "match"});

    Validation rules;
    for (const auto& [key, member] : value.items()) {
        const std::string key_path = member_path(path, key);
        if (stream && key == "max_length") {
            throw ConfigError(key_path, "a TCP frontend takes no \"max_length\": a stream has no "
                                        "length to judge (its bytes arrive in segments of any "
                                        "size); \"min_length\" is how many first bytes the "
                                        "decision waits for");
        }
        if (stream && key == "min_length") {
            rules.min_payload = static_cast<std::uint16_t>(
                read_integer(member, key_path, "a number of first bytes to wait for", 0,
                             highest_stream_min_length));
        } else if (key == "min_length" || key == "max_length") {
            const auto length = static_cast<std::uint16_t>(
                read_integer(member, key_path, "a payload length in bytes", 0, highest_payload_length));
            (key == "min_length" ? rules.min_payload : rules.max_payload) = length;
        } else if (key == "match") {
            rules.matches = read_matches(member, key_path);
        }
    }

    for (const auto& [key, member] : value.items()) {
        const std::string key_path = member_path(path, key);
        if (key == "max_length" && rules.max_payload < rules.min_payload) {
            throw ConfigError(key_path, fmt::format("max_length {} is less than min_length {}",
                                                    rules.max_payload, rules.min_payload));
        }
        if (key == "match") {
            for (std::size_t index = 0; index < rules.matches.size(); ++index) {
                const ByteMatch& match = rules.matches[index];
                const std::size_t end = std::size_t{match.offset} + match.value.size();
                if (end > rules.max_payload) {
                    throw ConfigError(element_path(key_path, index),
                                      fmt::format("can never match: it needs {} of payload but "
                                                  "max_length is {}",
                                                  count_bytes(end), rules.max_payload));
                }
            }
        }
    }
    return rules;
}

// ---------------------------------------------------------------- route

RouteTag read_route_tag(const Json& value, const std::string& path, std::uint16_t frontend_port) {
    require_object(value, path, R"("tag" or "hex" and "backend")");
    reject_unknown_keys(value, path, {"tag", "hex", "backend"});
    (void)exactly_one_of(value, path, "tag", "hex");
    (void)required_member(value, path, "backend");

    RouteTag tag;
    for (const auto& [key, member] : value.items()) {
        const std::string key_path = member_path(path, key);
        if (key == "tag") {
            tag.tag = read_text_bytes(member, key_path);
        } else if (key == "hex") {
            tag.tag = read_hex_bytes(member, key_path);
        } else if (key == "backend") {
            tag.backend_port = read_port(member, key_path);
            if (tag.backend_port == frontend_port) {
                throw ConfigError(key_path, fmt::format("backend {} is the frontend's own port",
                                                        tag.backend_port));
            }
        }
    }
    return tag;
}

std::vector<RouteTag> read_route_tags(const Json& value, const std::string& path,
                                      std::uint16_t frontend_port) {
    if (!value.is_array()) {
        throw ConfigError(path, fmt::format("expected an array of tags, got {}", describe(value)));
    }
    if (value.empty()) {
        throw ConfigError(path, "must list at least one tag");
    }
    std::vector<RouteTag> tags;
    tags.reserve(value.size());
    for (std::size_t index = 0; index < value.size(); ++index) {
        tags.push_back(read_route_tag(value[index], element_path(path, index), frontend_port));
    }
    return tags;
}

Route read_route(const Json& value, const std::string& path, std::uint16_t frontend_port) {
    require_object(value, path, R"("offset", "length" and "tags")");
    reject_unknown_keys(value, path, {"offset", "length", "tags", "unknown"});
    for (const std::string_view key : {"offset", "length", "tags"}) {
        (void)required_member(value, path, key);
    }

    Route route;
    for (const auto& [key, member] : value.items()) {
        const std::string key_path = member_path(path, key);
        if (key == "offset") {
            route.offset = read_payload_offset(member, key_path);
        } else if (key == "length") {
            route.length = static_cast<std::uint8_t>(
                read_integer(member, key_path, "a tag length in bytes", 1, max_tag_length));
        } else if (key == "unknown") {
            route.unknown = read_choice(member, key_path, "action", {"drop", "round-robin"}) == 0
                                ? UnknownTagAction::drop
                                : UnknownTagAction::round_robin;
        } else if (key == "tags") {
            route.tags = read_route_tags(member, key_path, frontend_port);
        }
    }

    const std::size_t end = std::size_t{route.offset} + route.length;
    if (end > highest_payload_offset) {
        throw ConfigError(path, fmt::format("offset {} + length {} = {} goes past the {} payload "
                                            "bytes portmux can inspect",
                                            route.offset, route.length, end, highest_payload_offset));
    }
    const std::string tags_path = member_path(path, "tags");
    std::map<std::vector<std::uint8_t>, std::size_t> first_index;  // a route may have 65536 tags
    for (std::size_t index = 0; index < route.tags.size(); ++index) {
        const RouteTag& tag = route.tags[index];
        const std::string tag_path = element_path(tags_path, index);
        if (tag.tag.size() != route.length) {
            throw ConfigError(tag_path, fmt::format("tag {} is {} long but the route's length is {}",
                                                    describe_bytes(tag.tag),
                                                    count_bytes(tag.tag.size()), route.length));
        }
        const auto [earlier, first] = first_index.try_emplace(tag.tag, index);
        if (!first) {
            throw ConfigError(tag_path, fmt::format("duplicate tag {} (already listed at {})",
                                                    describe_bytes(tag.tag),
                                                    element_path(tags_path, earlier->second)));
        }
    }
    return route;
}

// ---------------------------------------------------------------- frontends

struct ParsedFrontend {
    Frontend frontend;
    std::size_t listed_backends = 0;  // the rest of frontend.backends are route targets
};

// Rules between a frontend's keys, each checked when its key comes in the
// document; then the route targets not listed join the backends.
void check_frontend_keys(const Json& value, const std::string& path, Frontend& frontend) {
    const std::size_t listed = frontend.backends.size();
    std::vector<Backend> targets;
    for (const auto& [key, member] : value.items()) {
        const std::string key_path = member_path(path, key);
        if (key == "backends" && listed == 0) {
            if (!frontend.route) {
                throw ConfigError(key_path, "must list at least one backend (only a frontend whose "
                                            "route drops unknown tags may list none)");
            }
            if (frontend.route->unknown == UnknownTagAction::round_robin) {
                throw ConfigError(key_path, "must list at least one backend: the route sends "
                                            "unknown tags round robin, which needs backends");
            }
        } else if (key == "flow_idle_timeout" && frontend.affinity == Affinity::packet) {
            throw ConfigError(key_path,
                              frontend.protocol == Protocol::tcp
                                  ? fmt::format("a TCP frontend takes no \"flow_idle_timeout\" "
                                                "without \"affinity\": \"client\": {}",
                                                tcp_per_connection)
                                  : std::string(R"(only applies with "affinity": "flow" or "client")"));
        } else if (key == "affinity" && frontend.affinity == Affinity::client &&
                   stream_frontend(frontend)) {
            throw ConfigError(key_path, "a TCP frontend with \"route\", \"validate\" or "
                                        "\"proxy_protocol\" is served by the stream router, which "
                                        "balances each connection on its first bytes: it takes no "
                                        "\"affinity\"");
        } else if (key == "first_data_timeout" && !stream_frontend(frontend)) {
            throw ConfigError(key_path, "only applies to a TCP frontend with \"route\", "
                                        "\"validate\" or \"proxy_protocol\" (the others are "
                                        "balanced on their SYN, before any data)");
        } else if (key == "route") {
            const Route& route = *frontend.route;
            if (frontend.affinity != Affinity::packet) {
                throw ConfigError(key_path,
                                  fmt::format("a frontend with \"affinity\": \"{}\" cannot route by "
                                              "payload: each packet's tag picks its backend",
                                              frontend.affinity == Affinity::flow ? "flow" : "client"));
            }
            const std::size_t end = std::size_t{route.offset} + route.length;
            if (frontend.validate && end > frontend.validate->max_payload) {
                throw ConfigError(key_path,
                                  fmt::format("the tag can never be read: it needs {} of payload but "
                                              "validate's max_length is {}",
                                              count_bytes(end), frontend.validate->max_payload));
            }
            const std::string tags_path = member_path(key_path, "tags");
            for (std::size_t index = 0; index < route.tags.size(); ++index) {
                const std::uint16_t port = route.tags[index].backend_port;
                const auto same_port = [port](const Backend& backend) { return backend.port == port; };
                if (std::any_of(frontend.backends.begin(), frontend.backends.end(), same_port) ||
                    std::any_of(targets.begin(), targets.end(), same_port)) {
                    continue;
                }
                if (listed + targets.size() == max_backends) {
                    throw ConfigError(
                        member_path(element_path(tags_path, index), "backend"),
                        fmt::format("route target {} would be backend number {}: at most {} per "
                                    "frontend, listed backends and route targets together",
                                    port, max_backends + 1, max_backends));
                }
                targets.emplace_back(port, std::uint16_t{0});
            }
        }
    }
    frontend.backends.insert(frontend.backends.end(), targets.begin(), targets.end());
}

ParsedFrontend read_frontend(const Json& value, const std::string& path) {
    require_object(value, path, R"("port" and "backends")");
    reject_unknown_keys(value, path, {"port", "protocol", "backends", "affinity",
                                      "flow_idle_timeout", "reply_translation", "validate",
                                      "route", "first_data_timeout", "proxy_protocol"});

    // Port and protocol first: the other keys are read knowing them.
    Frontend frontend;
    frontend.port = read_port(required_member(value, path, "port"), member_path(path, "port"));
    if (const Json* protocol = optional_member(value, "protocol")) {
        frontend.protocol = read_protocol(*protocol, member_path(path, "protocol"));
    }
    (void)required_member(value, path, "backends");
    const bool tcp = frontend.protocol == Protocol::tcp;

    std::size_t listed = 0;
    for (const auto& [key, member] : value.items()) {
        const std::string key_path = member_path(path, key);
        if (key == "backends") {
            frontend.backends = read_backends(member, key_path, frontend.port);
            listed = frontend.backends.size();
        } else if (key == "affinity") {
            const bool client = member.is_string() && member.get<std::string>() == "client";
            if (tcp && !client) {
                throw ConfigError(key_path, fmt::format("a TCP frontend takes no \"affinity\" but "
                                                        "\"client\": {}",
                                                        tcp_per_connection));
            }
            constexpr Affinity affinities[] = {Affinity::packet, Affinity::flow, Affinity::client};
            frontend.affinity =
                affinities[read_choice(member, key_path, "affinity", {"packet", "flow", "client"})];
        } else if (key == "flow_idle_timeout") {
            frontend.flow_idle_seconds = static_cast<std::uint16_t>(
                read_integer(member, key_path, "a number of seconds", lowest_idle_seconds,
                             highest_idle_seconds));
        } else if (key == "reply_translation") {
            if (tcp) {
                throw ConfigError(key_path,
                                  "a TCP frontend always translates replies: without it a client "
                                  "answers the SYN-ACK with a reset");
            }
            if (!member.is_boolean()) {
                throw ConfigError(key_path, fmt::format("expected true or false, got {}",
                                                        describe(member)));
            }
            frontend.reply_translation = member.get<bool>();
        } else if (key == "validate") {
            frontend.validate = read_validation(member, key_path, tcp);
        } else if (key == "route") {
            frontend.route = read_route(member, key_path, frontend.port);
        } else if (key == "first_data_timeout") {
            if (!tcp) {
                throw ConfigError(key_path, "a UDP frontend takes no \"first_data_timeout\": "
                                            "each datagram is judged as it arrives");
            }
            frontend.first_data_timeout_seconds = static_cast<std::uint16_t>(
                read_integer(member, key_path, "a number of seconds", lowest_first_data_timeout,
                             highest_first_data_timeout));
        } else if (key == "proxy_protocol") {
            if (!tcp) {
                throw ConfigError(key_path, "a UDP frontend takes no \"proxy_protocol\": the "
                                            "PROXY header precedes a TCP stream");
            }
            (void)read_choice(member, key_path, "PROXY protocol version", {"v2"});
            frontend.proxy_protocol_v2 = true;
        }
    }
    check_frontend_keys(value, path, frontend);
    return {std::move(frontend), listed};
}

// Rules between frontends: each (port, protocol) once, and no backend or
// route target that is itself a frontend of the same protocol. The data
// path rewrites a packet once, so such a backend would receive the
// rewritten traffic unbalanced while also balancing its own clients: almost
// surely a typo. A backend port serves one frontend of its protocol:
// replies are translated by backend port (the port's entry names the
// frontend port they show), so a port shared by two frontends could not say
// which. And the routes map has room for max_route_tags in all.
void check_frontends_together(const std::vector<ParsedFrontend>& frontends, const Json& json,
                              const std::string& path) {
    std::map<std::pair<Protocol, std::uint16_t>, std::size_t> first_index;
    for (std::size_t index = 0; index < frontends.size(); ++index) {
        const Frontend& frontend = frontends[index].frontend;
        first_index.try_emplace({frontend.protocol, frontend.port}, index);
    }
    const auto check_not_frontend = [&](Protocol protocol, std::uint16_t port,
                                        const std::string& backend_path) {
        const auto other = first_index.find({protocol, port});
        if (other != first_index.end()) {
            throw ConfigError(backend_path, fmt::format("backend {} is itself a {} frontend (at {})",
                                                        port, to_string(protocol),
                                                        element_path(path, other->second)));
        }
    };

    // (protocol, backend port) -> the frontend that has it, and where.
    std::map<std::pair<Protocol, std::uint16_t>, std::pair<std::size_t, std::string>> backend_owner;
    const auto check_backend_unshared = [&](std::size_t index, std::uint16_t port,
                                            const std::string& backend_path) {
        const Frontend& frontend = frontends[index].frontend;
        // The stream router connects to its backends itself: their replies
        // go to its own socket, and XDP records that as a direct client.
        if (stream_frontend(frontend)) return;
        const auto [owner, inserted] =
            backend_owner.try_emplace({frontend.protocol, port}, index, backend_path);
        if (!inserted && owner->second.first != index) {
            const Frontend& other = frontends[owner->second.first].frontend;
            throw ConfigError(backend_path,
                              fmt::format("backend {} is also a backend of {} frontend {} (at {}): "
                                          "replies are translated by backend port, so a backend "
                                          "port serves one frontend of its protocol",
                                          port, to_string(other.protocol), other.port,
                                          owner->second.second));
        }
    };

    std::size_t route_tags = 0;
    for (std::size_t index = 0; index < frontends.size(); ++index) {
        const Frontend& frontend = frontends[index].frontend;
        const std::string frontend_path = element_path(path, index);
        const std::size_t first = first_index.at({frontend.protocol, frontend.port});
        if (first != index) {
            throw ConfigError(frontend_path,
                              fmt::format("duplicate frontend {} (already defined at {})",
                                          protocol_key(frontend.protocol, frontend.port),
                                          element_path(path, first)));
        }
        for (const auto& [key, member] : json[index].items()) {
            const std::string key_path = member_path(frontend_path, key);
            if (key == "backends") {
                for (std::size_t backend = 0; backend < frontends[index].listed_backends; ++backend) {
                    check_not_frontend(frontend.protocol, frontend.backends[backend].port,
                                       element_path(key_path, backend));
                    check_backend_unshared(index, frontend.backends[backend].port,
                                           element_path(key_path, backend));
                }
            } else if (key == "route") {
                const std::string tags_path = member_path(key_path, "tags");
                for (std::size_t tag = 0; tag < frontend.route->tags.size(); ++tag) {
                    const std::string tag_path = element_path(tags_path, tag);
                    check_not_frontend(frontend.protocol, frontend.route->tags[tag].backend_port,
                                       member_path(tag_path, "backend"));
                    check_backend_unshared(index, frontend.route->tags[tag].backend_port,
                                           member_path(tag_path, "backend"));
                    if (++route_tags > max_route_tags) {
                        throw ConfigError(tag_path,
                                          fmt::format("too many route tags: more than {} in all "
                                                      "frontends together",
                                                      max_route_tags));
                    }
                }
            }
        }
    }
}

std::vector<Frontend> read_frontends(const Json& frontends, const std::string& path) {
    if (!frontends.is_array()) {
        throw ConfigError(path, fmt::format("expected an array of frontends, got {}",
                                            describe(frontends)));
    }
    if (frontends.empty()) {
        throw ConfigError(path, "must list at least one frontend");
    }
    if (frontends.size() > max_frontends) {
        throw ConfigError(path, fmt::format("too many frontends: {} (at most {})",
                                            frontends.size(), max_frontends));
    }
    std::vector<ParsedFrontend> parsed;
    parsed.reserve(frontends.size());
    for (std::size_t index = 0; index < frontends.size(); ++index) {
        parsed.push_back(read_frontend(frontends[index], element_path(path, index)));
    }
    check_frontends_together(parsed, frontends, path);

    std::vector<Frontend> result;
    result.reserve(parsed.size());
    for (ParsedFrontend& frontend : parsed) {
        result.push_back(std::move(frontend.frontend));
    }
    return result;
}

Config read_config(const Json& document) {
    if (!document.is_object()) {
        throw ConfigError({}, fmt::format("expected a JSON object at the top level, got {}",
                                          describe(document)));
    }
    reject_unknown_keys(document, {}, {"frontends", "flow_table_size"});
    (void)required_member(document, {}, "frontends");

    Config config;
    for (const auto& [key, member] : document.items()) {
        if (key == "frontends") {
            config.frontends = read_frontends(member, key);
        } else if (key == "flow_table_size") {
            config.flow_table_size = static_cast<std::uint32_t>(
                read_integer(member, key, "a flow table size", lowest_flow_table_size,
                             highest_flow_table_size));
        }
    }
    return config;
}

// ---------------------------------------------------------------- status --json

// One frontend of `portmux status --json` as the config key it came from:
// what status adds (affinity "connection", drained, route-only backends of
// weight 0, an empty mask) is left out, and keys status may gain later are
// ignored.
Json config_frontend(const Json& status_frontend) {
    if (!status_frontend.is_object()) {
        return status_frontend;  // read_config says what is wrong with it
    }
    Json frontend = Json::object();
    for (const auto& [key, member] : status_frontend.items()) {
        if (key == "affinity" && member == "connection") {
            continue;
        }
        if (key == "backends" && member.is_array()) {
            Json backends = Json::array();
            for (const Json& backend : member) {
                if (backend.is_object() && backend.contains("weight") &&
                    backend["weight"] == Json(0)) {
                    continue;  // a route target, which the route brings back
                }
                if (backend.is_object()) {
                    Json listed = Json::object();
                    for (const char* name : {"port", "weight"}) {
                        if (backend.contains(name)) {
                            listed[name] = backend[name];
                        }
                    }
                    backends.push_back(std::move(listed));
                } else {
                    backends.push_back(backend);
                }
            }
            frontend[key] = std::move(backends);
        } else if (key == "validate" && member.is_object()) {
            Json validate = member;
            if (validate.contains("match") && validate["match"].is_array()) {
                for (Json& match : validate["match"]) {
                    if (match.is_object() && match.contains("mask") && match["mask"] == Json("")) {
                        match.erase("mask");
                    }
                }
            }
            frontend[key] = std::move(validate);
        } else if (key == "port" || key == "protocol" || key == "affinity" ||
                   key == "flow_idle_timeout" || key == "reply_translation" || key == "route") {
            frontend[key] = member;
        }
    }
    return frontend;
}

// The config of one interface of a `portmux status --json` document: the
// one named INTERFACE, or the only one. Errors carry the status document's
// paths (interfaces[N]....).
Config read_status_document(const Json& document, const std::string& interface) {
    const Json& interfaces = document["interfaces"];
    if (!interfaces.is_array()) {
        throw ConfigError("interfaces", fmt::format("expected the array of `portmux status --json`, "
                                                    "got {}",
                                                    describe(interfaces)));
    }
    std::size_t chosen = interfaces.size();
    for (std::size_t index = 0; index < interfaces.size(); ++index) {
        const Json& entry = interfaces[index];
        if (!interface.empty() && entry.is_object() && entry.contains("interface") &&
            entry["interface"] == Json(interface)) {
            chosen = index;
        }
    }
    if (chosen == interfaces.size()) {
        if (interfaces.size() != 1) {
            throw ConfigError("interfaces",
                              interface.empty()
                                  ? fmt::format("a `portmux status --json` document with {} "
                                                "interfaces: give one interface's status "
                                                "(`portmux status IFACE --json`)",
                                                interfaces.size())
                                  : fmt::format("a `portmux status --json` document with {} "
                                                "interfaces, none of them {}",
                                                interfaces.size(), json_string(interface)));
        }
        chosen = 0;
    }
    const std::string prefix = element_path("interfaces", chosen);
    const Json& entry = interfaces[chosen];
    require_object(entry, prefix, R"("interface" and "frontends")");
    Json config = Json::object();
    if (entry.contains("frontends")) {
        Json frontends = Json::array();
        if (entry["frontends"].is_array()) {
            for (const Json& frontend : entry["frontends"]) {
                frontends.push_back(config_frontend(frontend));
            }
        } else {
            frontends = entry["frontends"];
        }
        config["frontends"] = std::move(frontends);
    }
    if (entry.contains("flow_table_size")) {
        config["flow_table_size"] = entry["flow_table_size"];
    }
    try {
        return read_config(config);
    } catch (const ConfigError& error) {
        throw ConfigError(error.path().empty() || error.path().front() == '['
                              ? prefix + error.path()
                              : prefix + "." + error.path(),
                          error.reason());
    }
}

}  // namespace

std::string_view to_string(Protocol protocol) {
    switch (protocol) {
    case Protocol::udp:
        return "udp";
    case Protocol::tcp:
        return "tcp";
    }
    return "unknown";  // a value read back from a map written by something else
}

Config parse_config(std::string_view json_text, const std::string& interface) {
    const Json document = config_json::parse_json(json_text);
    if (document.is_object() && document.contains("interfaces")) {
        return read_status_document(document, interface);
    }
    return read_config(document);
}

Config load_config(const std::filesystem::path& file, const std::string& interface) {
    const std::string text = config_json::read_config_text(file);
    try {
        return parse_config(text, interface);
    } catch (const ConfigError& error) {
        throw error.in_file(file);
    }
}


}  // namespace portmux
