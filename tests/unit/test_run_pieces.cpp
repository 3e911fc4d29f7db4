// Tests of the pure parts of `portmux run`: log lines, the systemd notify
// address, the metrics listen address and the config directory watch
// (inotify in a temporary directory; no root, no network).
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "config_watch.hpp"
#include "event_log.hpp"
#include "metrics_server.hpp"
#include "sd_notify.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

TEST_CASE("log lines are logfmt, quoted where needed, with a priority prefix under journald") {
    using portmux::LogLevel;
    CHECK(portmux::format_event(LogLevel::info, "reloaded", {{"iface", "eth0"}, {"frontends", "3"}},
                                false) == "level=info event=reloaded iface=eth0 frontends=3");
    CHECK(portmux::format_event(LogLevel::error, "config_refused",
                                {{"reason", "frontends[0].port: must be \"1\"..65535"}}, true) ==
          "<3>level=error event=config_refused reason=\"frontends[0].port: must be "
          "\\\"1\\\"..65535\"");
    CHECK(portmux::format_event(LogLevel::warning, "x", {{"a", ""}, {"b", "two\nlines"}}, false) ==
          "level=warning event=x a=\"\" b=\"two\\nlines\"");
    CHECK(portmux::format_event(LogLevel::info, "x", {{"k", std::string("\x01=", 2)}}, false) ==
          "level=info event=x k=\"\\x01=\"");
}

TEST_CASE("NOTIFY_SOCKET: paths and abstract names") {
    sockaddr_un address{};
    socklen_t length = 0;
    REQUIRE(portmux::notify_address("/run/systemd/notify", address, length));
    CHECK(std::string(address.sun_path) == "/run/systemd/notify");
    CHECK(length == offsetof(sockaddr_un, sun_path) + 20);

    REQUIRE(portmux::notify_address("@portmux-test", address, length));
    CHECK(address.sun_path[0] == '\0');
    CHECK(std::string(address.sun_path + 1, 12) == "portmux-test");
    CHECK(length == offsetof(sockaddr_un, sun_path) + 13);

    CHECK_FALSE(portmux::notify_address("", address, length));
    CHECK_FALSE(portmux::notify_address("relative/path", address, length));
    CHECK_FALSE(portmux::notify_address(std::string(200, '/'), address, length));
}

TEST_CASE("metrics listen addresses") {
    const auto v4 = portmux::parse_listen_address("127.0.0.1:9469");
    CHECK(v4.address.ss_family == AF_INET);
    CHECK_FALSE(v4.dual_stack);
    const auto any = portmux::parse_listen_address(":9469");
    CHECK(any.address.ss_family == AF_INET6);
    CHECK(any.dual_stack);
    const auto v6 = portmux::parse_listen_address("[::1]:9469");
    CHECK(v6.address.ss_family == AF_INET6);
    CHECK_FALSE(v6.dual_stack);
    CHECK(portmux::parse_listen_address("[::]:0").dual_stack);

    CHECK_THROWS_WITH(portmux::parse_listen_address("9469"), Contains("has no port"));
    CHECK_THROWS_WITH(portmux::parse_listen_address("127.0.0.1:http"),
                      Contains("is not a number from 0 to 65535"));
    CHECK_THROWS_WITH(portmux::parse_listen_address("127.0.0.1:65536"),
                      Contains("is not a number from 0 to 65535"));
    CHECK_THROWS_WITH(portmux::parse_listen_address("localhost:9469"),
                      Contains("is not an IPv4 address"));
    CHECK_THROWS_WITH(portmux::parse_listen_address("::1:9469"),
                      Contains("is not an IPv4 address (IPv6 goes in brackets)"));
    CHECK_THROWS_WITH(portmux::parse_listen_address("[::1:9469"), Contains("in brackets"));
}

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char pattern[] = "/tmp/portmux-unit-watch.XXXXXX";
        REQUIRE(mkdtemp(pattern) != nullptr);
        path = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
};

void write_file(const fs::path& file, const std::string& text) {
    std::ofstream(file) << text;
}

// Waits up to 2 s for the watch to become readable, then consumes.
bool saw_event(portmux::ConfigWatch& watch) {
    pollfd entry{watch.fd(), POLLIN, 0};
    if (poll(&entry, 1, 2000) != 1) {
        return false;
    }
    return watch.consume_events();
}

std::string content(const fs::path& file) {
    std::string error;
    auto text = portmux::read_whole_file(file, error);
    return text ? *text : "error: " + error;
}

}  // namespace

TEST_CASE("config watch: an editor's rename-over is seen") {
    TempDir dir;
    const fs::path file = dir.path / "eth0.json";
    write_file(file, "one");
    portmux::ConfigWatch watch(file);
    CHECK_FALSE(watch.consume_events());

    write_file(dir.path / ".eth0.json.swp", "two");
    fs::rename(dir.path / ".eth0.json.swp", file);
    CHECK(saw_event(watch));
    CHECK(content(file) == "two");
}

TEST_CASE("config watch: a ConfigMap-style ..data symlink swap is seen, and the next one too") {
    TempDir dir;
    fs::create_directory(dir.path / "..2024_01");
    write_file(dir.path / "..2024_01" / "eth0.json", "one");
    fs::create_directory_symlink("..2024_01", dir.path / "..data");
    fs::create_symlink("..data/eth0.json", dir.path / "eth0.json");
    const fs::path file = dir.path / "eth0.json";
    portmux::ConfigWatch watch(file);
    CHECK(content(file) == "one");

    for (const char* version : {"..2024_02", "..2024_03"}) {
        fs::create_directory(dir.path / version);
        write_file(dir.path / version / "eth0.json", version);
        fs::create_directory_symlink(version, dir.path / "..data_tmp");
        fs::rename(dir.path / "..data_tmp", dir.path / "..data");
        CHECK(saw_event(watch));
        CHECK(content(file) == version);
    }
}

TEST_CASE("config watch: a file reached through a symlink into another directory") {
    TempDir dir;
    fs::create_directory(dir.path / "etc");
    fs::create_directory(dir.path / "srv");
    write_file(dir.path / "srv" / "real.json", "one");
    fs::create_symlink(dir.path / "srv" / "real.json", dir.path / "etc" / "eth0.json");
    portmux::ConfigWatch watch(dir.path / "etc" / "eth0.json");
    write_file(dir.path / "srv" / "real.json", "two");  // in place, in the target's directory
    CHECK(saw_event(watch));
    CHECK(content(dir.path / "etc" / "eth0.json") == "two");
}

TEST_CASE("config watch: a missing file reads as an error, not an exception") {
    TempDir dir;
    CHECK_THAT(content(dir.path / "none.json"), Contains("cannot read"));
}
