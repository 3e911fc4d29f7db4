// Reading JSON text for the config: the file, syntax errors with line and
// column, duplicate keys, and the JSON paths every config error is reported
// at. The schema rules (config_rules.cpp) work on the document this returns.
// Internal to the loader; users include config.hpp.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "config.hpp"

namespace portmux::config_json {

// Ordered, so that of several mistakes the first one in the document is the
// one reported, and unknown keys are named in the order they were written.
using Json = nlohmann::ordered_json;

// A config file larger than this is refused before it is read (no real
// config comes near it: 4096 frontends of 32 backends is about 1 MiB).
inline constexpr std::size_t kMaxConfigBytes = std::size_t{16} << 20;

// Arrays and objects nested deeper than this are refused, with the path of
// the element that goes too deep (the deepest valid config nests 5 levels).
inline constexpr std::size_t kMaxNestingDepth = 32;

// JSON text for TEXT, escapes included, so that whatever a user typed is
// printed unambiguously and without raw control characters.
std::string json_string(std::string_view text);

// `parent.key`; keys that would make the path ambiguous (dots, brackets,
// spaces...) are written as `parent["a.b"]` instead.
std::string member_path(std::string_view parent, std::string_view key);

// `parent[index]`.
std::string element_path(std::string_view parent, std::size_t index);

// What the user wrote instead of what was expected, for the end of a reason.
std::string describe(const Json& value);

// Parses TEXT; throws ConfigError on a syntax error (with line and column),
// a repeated key or nesting deeper than kMaxNestingDepth (at its path).
Json parse_json(std::string_view text);

// The bytes of config FILE; throws ConfigError (in_file) when it cannot be
// read, is not a regular file (a FIFO, a device, a directory) or is larger
// than kMaxConfigBytes.
std::string read_config_text(const std::filesystem::path& file);

}  // namespace portmux::config_json
