// Parsing and validating the portmux config; docs/config.md is the user's
// side of every rule and message here.
#include "config.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "portmux_shared.h"

namespace portmux {
namespace {

// Ordered, so that of several mistakes the first one in the document is the
// one reported, and unknown keys are named in the order they were written.
using Json = nlohmann::ordered_json;

// TCP frontends wait for TCP support in the data path; turning this on is
// the whole config-side change.
constexpr bool tcp_frontends_supported = false;

constexpr std::uint64_t lowest_port = 1;
constexpr std::uint64_t highest_port = 65535;
constexpr std::size_t max_backends = PORTMUX_MAX_BACKENDS;
constexpr std::size_t max_frontends = PORTMUX_MAX_FRONTENDS;

// JSON text for TEXT, escapes included, so that whatever a user typed is
// printed unambiguously and without raw control characters.
std::string json_string(std::string_view text) {
    return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool is_plain_key(std::string_view key) {
    return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

// `parent.key`; keys that would make the path ambiguous (dots, brackets,
// spaces...) are written as `parent["a.b"]` instead.
std::string member_path(std::string_view parent, std::string_view key) {
    if (!is_plain_key(key)) {
        return fmt::format("{}[{}]", parent, json_string(key));
    }
    return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

std::string element_path(std::string_view parent, std::size_t index) {
    return fmt::format("{}[{}]", parent, index);
}

// What the user wrote instead of what was expected, for the end of a reason.
std::string describe(const Json& value) {
    switch (value.type()) {
    case Json::value_t::object:
        return "an object";
    case Json::value_t::array:
        return "an array";
    case Json::value_t::string:
        return fmt::format("the string {}", json_string(value.get_ref<const std::string&>()));
    default:  // numbers, booleans and null read best exactly as written
        return value.dump();
    }
}

std::string protocol_key(Protocol protocol, std::uint16_t port) {
    return fmt::format("{}/{}", port, to_string(protocol));
}

// ---------------------------------------------------------------- syntax

struct TextPosition {
    std::size_t line = 1;
    std::size_t column = 1;
};

// nlohmann reports a parse error as a count of bytes read, the offending
// byte included (end of input counting as one more); people and editors
// want a line and column. Columns count characters, not bytes, so a
// non-ASCII name earlier on the line does not push them to the right.
TextPosition position_of(std::string_view text, std::size_t bytes_read) {
    const std::size_t offset = std::min(bytes_read == 0 ? 0 : bytes_read - 1, text.size());
    TextPosition position;
    for (const char c : text.substr(0, offset)) {
        if (c == '\n') {
            ++position.line;
            position.column = 1;
        } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {  // not a UTF-8 continuation
            ++position.column;
        }
    }
    return position;
}

// nlohmann's message without its "[json.exception...] parse error at line
// L, column C: " prefix, whose position we compute ourselves.
std::string parse_error_detail(const nlohmann::json::parse_error& error) {
    const std::string_view message = error.what();
    const std::size_t start = message.find("parse error");
    const std::size_t colon = start == std::string_view::npos ? start : message.find(": ", start);
    return std::string(colon == std::string_view::npos ? message : message.substr(colon + 2));
}

// nlohmann silently keeps the last of repeated keys; in a config a second
// "port" is a mistake, not an override. Following the parser's events keeps
// track of the path so the repetition is reported where it is.
class DuplicateKeyDetector {
public:
    bool on_event(Json::parse_event_t event, const Json& parsed) {
        switch (event) {
        case Json::parse_event_t::object_start:
        case Json::parse_event_t::array_start:
            containers_.emplace_back(next_child_path(),
                                     event == Json::parse_event_t::array_start);
            break;
        case Json::parse_event_t::key: {
            Container& object = containers_.back();
            object.current_key = parsed.get<std::string>();
            if (!object.keys.insert(object.current_key).second) {
                throw ConfigError(member_path(object.path, object.current_key),
                                  fmt::format("duplicate key {}", json_string(object.current_key)));
            }
            break;
        }
        case Json::parse_event_t::value:
            child_done();
            break;
        case Json::parse_event_t::object_end:
        case Json::parse_event_t::array_end:
            containers_.pop_back();
            child_done();
            break;
        }
        return true;  // keep everything
    }

private:
    struct Container {
        Container(std::string container_path, bool array)
            : path(std::move(container_path)), is_array(array) {}

        std::string path;
        bool is_array = false;
        std::size_t next_index = 0;   // arrays
        std::string current_key;      // objects
        std::set<std::string> keys;   // objects
    };

    std::string next_child_path() const {
        if (containers_.empty()) {
            return {};
        }
        const Container& parent = containers_.back();
        return parent.is_array ? element_path(parent.path, parent.next_index)
                               : member_path(parent.path, parent.current_key);
    }

    void child_done() {
        if (!containers_.empty() && containers_.back().is_array) {
            ++containers_.back().next_index;
        }
    }

    std::vector<Container> containers_;
};

Json parse_json(std::string_view text) {
    DuplicateKeyDetector detector;
    try {
        return Json::parse(text, [&detector](int /*depth*/, Json::parse_event_t event, Json& parsed) {
            return detector.on_event(event, parsed);
        });
    } catch (const nlohmann::json::parse_error& error) {
        const TextPosition position = position_of(text, error.byte);
        throw ConfigError({}, fmt::format("line {}, column {}: {}", position.line, position.column,
                                          parse_error_detail(error)));
    }
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

std::uint16_t read_port(const Json& value, const std::string& path) {
    // Non-negative integers are parsed as unsigned; negative ones, floats
    // (even 9875.0) and everything else fall through to the error.
    if (value.is_number_unsigned()) {
        const auto number = value.get<std::uint64_t>();
        if (number >= lowest_port && number <= highest_port) {
            return static_cast<std::uint16_t>(number);
        }
    }
    throw ConfigError(path, fmt::format("expected a port number, an integer from {} to {}, got {}",
                                        lowest_port, highest_port, describe(value)));
}

Protocol read_protocol(const Json& value, const std::string& path) {
    if (!value.is_string()) {
        throw ConfigError(path, fmt::format("expected \"udp\" or \"tcp\", got {}", describe(value)));
    }
    const auto& name = value.get_ref<const std::string&>();
    if (name == "udp") {
        return Protocol::udp;
    }
    if (name == "tcp") {
        if (!tcp_frontends_supported) {
            throw ConfigError(path, "TCP frontends are not supported yet");
        }
        return Protocol::tcp;
    }
    throw ConfigError(path,
                      fmt::format("unknown protocol {} (expected \"udp\" or \"tcp\")", json_string(name)));
}

std::vector<Backend> read_backends(const Json& value, const std::string& path,
                                   std::uint16_t frontend_port) {
    if (!value.is_array()) {
        throw ConfigError(path, fmt::format("expected an array of backend ports, got {}",
                                            describe(value)));
    }
    if (value.empty()) {
        throw ConfigError(path, "must list at least one backend");
    }
    if (value.size() > max_backends) {
        throw ConfigError(path, fmt::format("too many backends: {} (at most {})", value.size(),
                                            max_backends));
    }
    std::vector<Backend> backends;
    backends.reserve(value.size());
    for (std::size_t index = 0; index < value.size(); ++index) {
        const std::string backend_path = element_path(path, index);
        const std::uint16_t port = read_port(value[index], backend_path);
        if (port == frontend_port) {
            throw ConfigError(backend_path,
                              fmt::format("backend {} is the frontend's own port", port));
        }
        // By port alone: a backend is the same one whatever its weight.
        const auto earlier = std::find_if(backends.begin(), backends.end(),
                                          [port](const Backend& backend) { return backend.port == port; });
        if (earlier != backends.end()) {
            const auto first_index = static_cast<std::size_t>(earlier - backends.begin());
            throw ConfigError(backend_path,
                              fmt::format("duplicate backend {} (already listed at {})", port,
                                          element_path(path, first_index)));
        }
        backends.emplace_back(port);
    }
    return backends;
}

Frontend read_frontend(const Json& value, const std::string& path) {
    if (!value.is_object()) {
        throw ConfigError(path, fmt::format("expected an object with \"port\" and \"backends\", got {}",
                                            describe(value)));
    }
    reject_unknown_keys(value, path, {"port", "protocol", "backends"});

    Frontend frontend;
    frontend.port = read_port(required_member(value, path, "port"), member_path(path, "port"));
    if (const auto protocol = value.find("protocol"); protocol != value.end()) {
        frontend.protocol = read_protocol(*protocol, member_path(path, "protocol"));
    }
    frontend.backends = read_backends(required_member(value, path, "backends"),
                                      member_path(path, "backends"), frontend.port);
    return frontend;
}

// Rules between frontends: each (port, protocol) once, and no backend that
// is itself a frontend of the same protocol. The data path rewrites a packet
// once, so such a backend would receive the rewritten traffic unbalanced
// while also balancing its own clients: almost surely a typo.
void check_frontends_together(const Config& config, const std::string& path) {
    std::map<std::pair<Protocol, std::uint16_t>, std::size_t> first_index;
    for (std::size_t index = 0; index < config.frontends.size(); ++index) {
        const Frontend& frontend = config.frontends[index];
        first_index.try_emplace({frontend.protocol, frontend.port}, index);
    }

    for (std::size_t index = 0; index < config.frontends.size(); ++index) {
        const Frontend& frontend = config.frontends[index];
        const std::string frontend_path = element_path(path, index);
        const std::size_t first = first_index.at({frontend.protocol, frontend.port});
        if (first != index) {
            throw ConfigError(frontend_path,
                              fmt::format("duplicate frontend {} (already defined at {})",
                                          protocol_key(frontend.protocol, frontend.port),
                                          element_path(path, first)));
        }
        for (std::size_t backend = 0; backend < frontend.backends.size(); ++backend) {
            const auto other =
                first_index.find({frontend.protocol, frontend.backends[backend].port});
            if (other != first_index.end()) {
                throw ConfigError(
                    element_path(member_path(frontend_path, "backends"), backend),
                    fmt::format("backend {} is itself a {} frontend (at {})",
                                frontend.backends[backend].port, to_string(frontend.protocol),
                                element_path(path, other->second)));
            }
        }
    }
}

Config read_config(const Json& document) {
    if (!document.is_object()) {
        throw ConfigError({}, fmt::format("expected a JSON object at the top level, got {}",
                                          describe(document)));
    }
    reject_unknown_keys(document, {}, {"frontends"});

    const std::string path = "frontends";
    const Json& frontends = required_member(document, {}, path);
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

    Config config;
    config.frontends.reserve(frontends.size());
    for (std::size_t index = 0; index < frontends.size(); ++index) {
        config.frontends.push_back(read_frontend(frontends[index], element_path(path, index)));
    }
    check_frontends_together(config, path);
    return config;
}

// ---------------------------------------------------------------- files

ConfigError unreadable(const std::filesystem::path& file, int error) {
    const std::string cause =
        error != 0 ? std::generic_category().message(error) : std::string("read error");
    return ConfigError({}, fmt::format("cannot read config file: {}", cause)).in_file(file);
}

std::string read_text_file(const std::filesystem::path& file) {
    struct FileCloser {
        void operator()(std::FILE* stream) const noexcept { std::fclose(stream); }
    };
    errno = 0;
    const std::unique_ptr<std::FILE, FileCloser> stream(std::fopen(file.c_str(), "rb"));
    if (!stream) {
        throw unreadable(file, errno);
    }
    std::string text;
    std::array<char, 64 * 1024> chunk{};
    std::size_t count = 0;
    // A directory opens fine and fails here, with EISDIR.
    while ((count = std::fread(chunk.data(), 1, chunk.size(), stream.get())) > 0) {
        text.append(chunk.data(), count);
    }
    if (std::ferror(stream.get()) != 0) {
        throw unreadable(file, errno);
    }
    return text;
}

std::string compose_message(const std::string& path, const std::string& reason) {
    return path.empty() ? reason : fmt::format("{}: {}", path, reason);
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

ConfigError::ConfigError(std::string path, std::string reason)
    : std::runtime_error(compose_message(path, reason)),
      path_(std::move(path)),
      reason_(std::move(reason)) {}

ConfigError::ConfigError(std::string path, std::string reason, const std::string& message)
    : std::runtime_error(message), path_(std::move(path)), reason_(std::move(reason)) {}

ConfigError ConfigError::in_file(const std::filesystem::path& file) const {
    return ConfigError(path_, reason_,
                       fmt::format("{}: {}", file.string(), compose_message(path_, reason_)));
}

Config parse_config(std::string_view json_text) {
    return read_config(parse_json(json_text));
}

Config load_config(const std::filesystem::path& file) {
    const std::string text = read_text_file(file);
    try {
        return parse_config(text);
    } catch (const ConfigError& error) {
        throw error.in_file(file);
    }
}

}  // namespace portmux
