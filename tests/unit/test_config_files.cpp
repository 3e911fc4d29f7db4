// Tests of reading config files (loader/config_json.cpp): only regular files,
// a size cap, a nesting cap; hostile files end promptly with a clear error.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "config.hpp"
#include "config_json.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;
using portmux::ConfigError;

struct ScratchDir {
    fs::path path;
    ScratchDir() {
        char pattern[] = "/tmp/portmux-unit-files.XXXXXX";
        REQUIRE(mkdtemp(pattern) != nullptr);
        path = pattern;
    }
    ~ScratchDir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
};

// The error load_config gives for FILE (fails the test if it accepts it).
ConfigError load_error(const fs::path& file) {
    try {
        (void)portmux::load_config(file);
    } catch (const ConfigError& error) {
        return error;
    }
    FAIL(file.string() << " was accepted");
    throw std::logic_error("unreachable");
}

ConfigError parse_error(const std::string& text) {
    try {
        (void)portmux::parse_config(text);
    } catch (const ConfigError& error) {
        return error;
    }
    FAIL("accepted: " << text.substr(0, 80));
    throw std::logic_error("unreachable");
}

std::string nested_arrays(std::size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

}  // namespace

TEST_CASE("a FIFO is refused at once, without waiting for a writer", "[config][file]") {
    const ScratchDir dir;
    const fs::path fifo = dir.path / "config.json";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    const auto start = std::chrono::steady_clock::now();
    const ConfigError error = load_error(fifo);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    CHECK(error.path().empty());
    CHECK(std::string(error.what()) ==
          fifo.string() + ": cannot read config file: it is a FIFO, not a regular file");
}

TEST_CASE("a character device such as /dev/zero is refused, not read", "[config][file]") {
    const ConfigError error = load_error("/dev/zero");
    CHECK(std::string(error.what()) ==
          "/dev/zero: cannot read config file: it is a character device, not a regular file");
}

TEST_CASE("a directory is still named as one", "[config][file]") {
    const ScratchDir dir;
    CHECK_THAT(std::string(load_error(dir.path).what()), EndsWith("Is a directory"));
}

TEST_CASE("a symlink to a regular file is read (ConfigMap-style configs)", "[config][file]") {
    const ScratchDir dir;
    std::ofstream(dir.path / "real.json") << R"({"frontends": [{"port": 9875, "backends": [9876]}]})";
    fs::create_symlink(dir.path / "real.json", dir.path / "config.json");
    CHECK(portmux::load_config(dir.path / "config.json").frontends.size() == 1);
}

TEST_CASE("a file over the size cap is refused before it is read", "[config][file]") {
    const ScratchDir dir;
    const fs::path big = dir.path / "big.json";
    std::ofstream(big).close();
    fs::resize_file(big, portmux::config_json::kMaxConfigBytes + 1);  // sparse: no disk used
    CHECK(std::string(load_error(big).what()) ==
          big.string() + ": cannot read config file: larger than 16777216 bytes (16 MiB), the "
                         "most a config may be");
}

TEST_CASE("a file at the size cap is read (and judged as JSON)", "[config][file]") {
    const ScratchDir dir;
    const fs::path file = dir.path / "padded.json";
    std::string text = R"({"frontends": [{"port": 9875, "backends": [9876]}]})";
    text.resize(portmux::config_json::kMaxConfigBytes, ' ');
    std::ofstream(file, std::ios::binary) << text;
    CHECK(portmux::load_config(file).frontends.size() == 1);
}

TEST_CASE("nesting deeper than the cap names the path where it goes too deep", "[config][json]") {
    const std::size_t cap = portmux::config_json::kMaxNestingDepth;
    SECTION("under a key") {
        // The document is level 1, so the cap-th array is one too many: the
        // path leads through the first cap - 1 arrays to it.
        const ConfigError error = parse_error(R"({"frontends": )" + nested_arrays(cap) + "}");
        std::string path = "frontends";
        for (std::size_t level = 1; level < cap; ++level) {
            path += "[0]";
        }
        CHECK(error.path() == path);
        CHECK(error.reason() == "nested deeper than 32 levels of arrays and objects");
    }
    SECTION("at the top, 100,000 levels (was 14.7 GB), ends at once") {
        const auto start = std::chrono::steady_clock::now();
        const ConfigError error = parse_error(nested_arrays(100000));
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
        CHECK_THAT(error.reason(), Contains("nested deeper than 32 levels"));
    }
    SECTION("exactly at the cap is only judged by the schema") {
        const ConfigError error = parse_error(R"({"frontends": )" + nested_arrays(cap - 1) + "}");
        CHECK_THAT(error.reason(), !Contains("nested deeper"));
    }
}

TEST_CASE("duplicate keys are still reported at their path", "[config][json]") {
    const ConfigError error =
        parse_error(R"({"frontends": [{"port": 1, "backends": [2]}, {"port": 3, "port": 4}]})");
    CHECK(error.path() == "frontends[1].port");
    CHECK(error.reason() == "duplicate key \"port\"");
}
