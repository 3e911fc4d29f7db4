// The portmux backend configuration: parsed from JSON and validated whole
// before anything touches the kernel.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace portmux {

enum class Protocol : std::uint8_t { tcp = 6, udp = 17 };

std::string_view to_string(Protocol protocol);

struct Frontend {
    std::uint16_t port = 0;
    Protocol protocol = Protocol::udp;
    std::vector<std::uint16_t> backends;  // host byte order, in config order
};

struct Config {
    std::vector<Frontend> frontends;
};

// A config that cannot be used. path() names the offending JSON element in
// the form `frontends[2].backends[1]` (empty for the document as a whole).
class ConfigError : public std::runtime_error {
public:
    ConfigError(std::string path, std::string reason);
    const std::string& path() const noexcept { return path_; }
    const std::string& reason() const noexcept { return reason_; }

private:
    std::string path_;
    std::string reason_;
};

// Parses and validates a config document; throws ConfigError.
Config parse_config(std::string_view json_text);

// Reads FILE and parses it; the error message names the file too.
Config load_config(const std::filesystem::path& file);

}  // namespace portmux
