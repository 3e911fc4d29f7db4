// Tests of loader/config_rules.cpp (and config_json.cpp): every rule of docs/config.md, with the exact
// path of the element each rejection names.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "config.hpp"
#include "portmux_shared.h"

namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using portmux::Config;
using portmux::ConfigError;
using portmux::parse_config;
using portmux::Protocol;

// The error parse_config raises for JSON_TEXT; fails the test when the text
// is accepted, so each test can then check path() and reason() separately
// and a mismatch shows both values.
ConfigError rejection(std::string_view json_text) {
    try {
        (void)parse_config(json_text);
    } catch (const ConfigError& error) {
        return error;
    }
    FAIL("config was accepted:\n" << json_text);
    throw std::logic_error("unreachable");  // FAIL throws; this keeps the compiler content
}

// A document with one frontend on port 9000 whose "backends" value is BACKENDS.
std::string with_backends(const std::string& backends) {
    return R"({"frontends": [{"port": 9000, "backends": )" + backends + "}]}";
}

// A document with one frontend whose "port" value is PORT.
std::string with_port(const std::string& port) {
    return R"({"frontends": [{"port": )" + port + R"(, "backends": [9001]}]})";
}

// "[first, first+1, ...]" with COUNT ports.
std::string port_list(int first, int count) {
    std::string list = "[";
    for (int i = 0; i < count; ++i) {
        list += (i > 0 ? ", " : "") + std::to_string(first + i);
    }
    return list + "]";
}

// A scratch directory removed with everything in it when the test ends.
class TempDir {
public:
    TempDir()
        : path_(std::filesystem::temp_directory_path() /
                ("portmux-config-test-" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::filesystem::path write(const std::string& name, std::string_view contents) const {
        const std::filesystem::path file = path_ / name;
        std::ofstream(file, std::ios::binary) << contents;
        return file;
    }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

}  // namespace

// ------------------------------------------------------------------ basics

TEST_CASE("to_string names each protocol", "[config]") {
    CHECK(portmux::to_string(Protocol::udp) == "udp");
    CHECK(portmux::to_string(Protocol::tcp) == "tcp");
}

TEST_CASE("ConfigError joins path and reason in what()", "[config]") {
    const ConfigError with_path("frontends[2].backends[1]", "something is wrong");
    CHECK(std::string(with_path.what()) == "frontends[2].backends[1]: something is wrong");
    CHECK(with_path.path() == "frontends[2].backends[1]");
    CHECK(with_path.reason() == "something is wrong");

    const ConfigError document_wide("", "something is wrong");
    CHECK(std::string(document_wide.what()) == "something is wrong");

    const ConfigError in_file = with_path.in_file("conf/lb.json");
    CHECK(std::string(in_file.what()) == "conf/lb.json: frontends[2].backends[1]: something is wrong");
    CHECK(in_file.path() == "frontends[2].backends[1]");
    CHECK(in_file.reason() == "something is wrong");
}

// ------------------------------------------------------------------ valid configs

TEST_CASE("a single UDP frontend is parsed in config order", "[config]") {
    const Config config = parse_config(R"({
        "frontends": [
            { "port": 9875, "protocol": "udp", "backends": [9878, 9876, 9877] }
        ]
    })");
    REQUIRE(config.frontends.size() == 1);
    CHECK(config.frontends[0].port == 9875);
    CHECK(config.frontends[0].protocol == Protocol::udp);
    CHECK(config.frontends[0].backends == std::vector<portmux::Backend>{9878, 9876, 9877});
}

TEST_CASE("protocol is optional and defaults to udp", "[config]") {
    const Config config = parse_config(R"({"frontends": [{"port": 53, "backends": [5353]}]})");
    REQUIRE(config.frontends.size() == 1);
    CHECK(config.frontends[0].protocol == Protocol::udp);
}

TEST_CASE("several frontends keep their order", "[config]") {
    const Config config = parse_config(R"({
        "frontends": [
            { "port": 9875, "backends": [9876, 9877] },
            { "port": 1, "protocol": "udp", "backends": [65535] },
            { "port": 7000, "backends": [9878] },
            { "port": 7000, "protocol": "tcp", "backends": [9876] }
        ]
    })");
    REQUIRE(config.frontends.size() == 4);
    CHECK(config.frontends[0].port == 9875);
    CHECK(config.frontends[1].port == 1);
    CHECK(config.frontends[1].backends == std::vector<portmux::Backend>{65535});
    CHECK(config.frontends[2].port == 7000);
    CHECK(config.frontends[2].backends == std::vector<portmux::Backend>{9878});
    // The same port as a backend of a UDP and a TCP frontend: two ports.
    CHECK(config.frontends[3].backends == std::vector<portmux::Backend>{9876});
}

TEST_CASE("a backend port serves one frontend of its protocol", "[config][frontends]") {
    // Replies are translated by backend port: a shared one would be ambiguous.
    const ConfigError listed = rejection(R"({"frontends": [
        { "port": 9875, "backends": [9876, 9877] },
        { "port": 7000, "backends": [9878, 9877] }
    ]})");
    CHECK(listed.path() == "frontends[1].backends[1]");
    CHECK_THAT(listed.reason(), Contains("backend 9877 is also a backend of udp frontend 9875") &&
                                    Contains("frontends[0].backends[1]") &&
                                    Contains("replies are translated by backend port"));
    // A route target counts as a backend too.
    const ConfigError routed = rejection(R"({"frontends": [
        { "port": 9875, "backends": [9876] },
        { "port": 7000, "backends": [9878],
          "route": { "offset": 0, "length": 1, "tags": [ { "tag": "A", "backend": 9876 } ] } }
    ]})");
    CHECK(routed.path() == "frontends[1].route.tags[0].backend");
    CHECK_THAT(routed.reason(), Contains("backend 9876 is also a backend of udp frontend 9875"));
    // Within one frontend a port may be listed and routed to.
    CHECK_NOTHROW(parse_config(R"({"frontends": [
        { "port": 7000, "backends": [9878],
          "route": { "offset": 0, "length": 1, "tags": [ { "tag": "A", "backend": 9878 } ] } }
    ]})"));
    // A TCP frontend served by the stream router translates no replies: the
    // router dials its backends itself, so it may share them with an XDP one.
    CHECK_NOTHROW(parse_config(R"({"frontends": [
        { "port": 9000, "protocol": "tcp", "backends": [5001],
          "route": { "offset": 0, "length": 1, "tags": [ { "tag": "A", "backend": 5001 } ] } },
        { "port": 9100, "protocol": "tcp", "backends": [5001] }
    ]})"));
}

TEST_CASE("exactly PORTMUX_MAX_BACKENDS backends are accepted", "[config]") {
    STATIC_REQUIRE(PORTMUX_MAX_BACKENDS == 64);
    const Config config = parse_config(with_backends(port_list(10000, PORTMUX_MAX_BACKENDS)));
    REQUIRE(config.frontends.size() == 1);
    REQUIRE(config.frontends[0].backends.size() == PORTMUX_MAX_BACKENDS);
    CHECK(config.frontends[0].backends.front() == 10000);
    CHECK(config.frontends[0].backends.back() == 10063);
}

TEST_CASE("whitespace and key order do not matter", "[config]") {
    const Config config = parse_config(
        "\n\t{ \"frontends\" : [ { \"backends\" : [ 2 ] , \"protocol\" : \"udp\" , \"port\" : 1 } ] }\n");
    REQUIRE(config.frontends.size() == 1);
    CHECK(config.frontends[0].port == 1);
    CHECK(config.frontends[0].backends == std::vector<portmux::Backend>{2});
}

// ------------------------------------------------------------------ malformed JSON

TEST_CASE("a syntax error reports its line and column", "[config][syntax]") {
    // The `u` of the bare word udp is line 3, column 33.
    const ConfigError error = rejection(R"({
  "frontends": [
    { "port": 9875, "protocol": udp }
  ]
})");
    CHECK(error.path().empty());
    CHECK_THAT(error.reason(), StartsWith("line 3, column 33: "));
    CHECK_THAT(error.reason(), Contains("syntax error"));
    CHECK(std::string(error.what()) == error.reason());  // no path, no ": " prefix
    // nlohmann's own "[json.exception...]" prefix is not passed on.
    CHECK_THAT(error.reason(), !Contains("json.exception"));
}

TEST_CASE("a missing comma is found on its own line", "[config][syntax]") {
    const ConfigError error = rejection(R"({
  "frontends": [
    { "port": 9875, "backends": [9876] }
    { "port": 9975, "backends": [9976] }
  ]
})");
    CHECK(error.path().empty());
    CHECK_THAT(error.reason(), StartsWith("line 4, column 5: "));
}

TEST_CASE("unexpected end of input points just past the last character", "[config][syntax]") {
    const ConfigError error = rejection(R"({"frontends": [)");
    CHECK_THAT(error.reason(), StartsWith("line 1, column 16: "));
    CHECK_THAT(error.reason(), Contains("end of input"));
}

TEST_CASE("an empty document is a syntax error at line 1, column 1", "[config][syntax]") {
    const ConfigError error = rejection("");
    CHECK(error.path().empty());
    CHECK_THAT(error.reason(), StartsWith("line 1, column 1: "));
}

TEST_CASE("a trailing comma is a syntax error", "[config][syntax]") {
    const ConfigError error = rejection(R"({"frontends": [1,]})");
    CHECK_THAT(error.reason(), StartsWith("line 1, column 18: "));
}

TEST_CASE("a raw newline inside a string is reported on the line it ends", "[config][syntax]") {
    const ConfigError error = rejection("{\"frontends\": \"abc\n\"}");
    CHECK_THAT(error.reason(), StartsWith("line 1, column 19: "));
}

TEST_CASE("columns count characters, not UTF-8 bytes", "[config][syntax]") {
    // Each é is two bytes; the bare x is the 22nd character.
    const ConfigError error = rejection("{\"frontends\": [\"\xC3\xA9\xC3\xA9\", x]}");
    CHECK_THAT(error.reason(), StartsWith("line 1, column 22: "));
}

// ------------------------------------------------------------------ document structure

TEST_CASE("the top level must be an object", "[config][structure]") {
    const ConfigError array = rejection(R"([{"port": 1, "backends": [2]}])");
    CHECK(array.path().empty());
    CHECK_THAT(array.reason(), Contains("object") && Contains("an array"));

    const ConfigError text = rejection(R"("frontends")");
    CHECK(text.path().empty());
    CHECK_THAT(text.reason(), Contains("object") && Contains("the string \"frontends\""));
}

TEST_CASE("frontends is required", "[config][structure]") {
    const ConfigError error = rejection("{}");
    CHECK(error.path().empty());
    CHECK(error.reason() == R"(missing required key "frontends")");
}

TEST_CASE("unknown top-level keys are rejected by name", "[config][structure]") {
    const ConfigError error =
        rejection(R"({"frontends": [{"port": 1, "backends": [2]}], "verbose": true})");
    CHECK(error.path() == "verbose");
    CHECK_THAT(error.reason(), StartsWith(R"(unknown key "verbose")"));
}

TEST_CASE("frontends must be a non-empty array", "[config][structure]") {
    const ConfigError object = rejection(R"({"frontends": {"port": 1, "backends": [2]}})");
    CHECK(object.path() == "frontends");
    CHECK_THAT(object.reason(), Contains("array") && Contains("an object"));

    const ConfigError empty = rejection(R"({"frontends": []})");
    CHECK(empty.path() == "frontends");
    CHECK_THAT(empty.reason(), Contains("at least one frontend"));
}

TEST_CASE("at most PORTMUX_MAX_FRONTENDS frontends", "[config][structure]") {
    // The count is checked before the elements, so empty objects do.
    std::string document = R"({"frontends": [)";
    for (int i = 0; i <= PORTMUX_MAX_FRONTENDS; ++i) {
        document += i > 0 ? ",{}" : "{}";
    }
    document += "]}";
    const ConfigError error = rejection(document);
    CHECK(error.path() == "frontends");
    CHECK_THAT(error.reason(), Contains("too many frontends") &&
                                   Contains(std::to_string(PORTMUX_MAX_FRONTENDS + 1)) &&
                                   Contains("at most " + std::to_string(PORTMUX_MAX_FRONTENDS)));
}

TEST_CASE("each frontend must be an object", "[config][structure]") {
    const ConfigError error = rejection(R"({"frontends": [{"port": 1, "backends": [2]}, 9875]})");
    CHECK(error.path() == "frontends[1]");
    CHECK_THAT(error.reason(), Contains("object") && Contains("got 9875"));
}

TEST_CASE("unknown frontend keys are rejected by name", "[config][structure]") {
    const ConfigError error = rejection(R"({"frontends": [{"port": 1, "backend": [2]}]})");
    CHECK(error.path() == "frontends[0].backend");
    CHECK_THAT(std::string(error.what()), StartsWith(R"(frontends[0].backend: unknown key "backend")"));
    CHECK_THAT(error.reason(), Contains(R"("port", "protocol", "backends", "affinity", )"
                                        R"("flow_idle_timeout", "reply_translation", "validate", "route", )"
                                        R"("first_data_timeout" or "proxy_protocol")"));
}

TEST_CASE("a key that is not a plain name is quoted in the path", "[config][structure]") {
    const ConfigError error = rejection(R"({"frontends": [{"port": 1, "backends": [2], "a.b": 0}]})");
    CHECK(error.path() == R"(frontends[0]["a.b"])");
    CHECK_THAT(error.reason(), StartsWith(R"(unknown key "a.b")"));
}

TEST_CASE("port and backends are required", "[config][structure]") {
    const ConfigError no_port = rejection(R"({"frontends": [{"backends": [2]}]})");
    CHECK(no_port.path() == "frontends[0]");
    CHECK(no_port.reason() == R"(missing required key "port")");

    const ConfigError no_backends =
        rejection(R"({"frontends": [{"port": 1, "backends": [2]}, {"port": 3}]})");
    CHECK(no_backends.path() == "frontends[1]");
    CHECK(no_backends.reason() == R"(missing required key "backends")");
}

TEST_CASE("a repeated key is rejected where it repeats", "[config][structure]") {
    // The nested arrays before it check that the path follows the nesting.
    const ConfigError in_frontend = rejection(R"({"frontends": [
        {"port": 1, "backends": [2, 3]},
        {"port": 4, "backends": [5], "port": 6}
    ]})");
    CHECK(in_frontend.path() == "frontends[1].port");
    CHECK(in_frontend.reason() == R"(duplicate key "port")");

    const ConfigError at_top =
        rejection(R"({"frontends": [{"port": 1, "backends": [2]}], "frontends": []})");
    CHECK(at_top.path() == "frontends");
    CHECK(at_top.reason() == R"(duplicate key "frontends")");
}

// ------------------------------------------------------------------ ports

TEST_CASE("a frontend port must be an integer from 1 to 65535", "[config][port]") {
    const std::string port = GENERATE(as<std::string>{}, "0", "65536", "-1", "-9875", "9875.5",
                                      "9875.0", "1e3", "\"9875\"", "true", "false", "null", "[9875]",
                                      "{}", "100000000000000000000000");
    CAPTURE(port);
    const ConfigError error = rejection(with_port(port));
    CHECK(error.path() == "frontends[0].port");
    CHECK_THAT(error.reason(), Contains("integer") && Contains("from 1 to 65535"));
}

TEST_CASE("the rejected port value is shown in the reason", "[config][port]") {
    CHECK_THAT(rejection(with_port("0")).reason(), Contains("got 0"));
    CHECK_THAT(rejection(with_port("65536")).reason(), Contains("got 65536"));
    CHECK_THAT(rejection(with_port("-1")).reason(), Contains("got -1"));
    CHECK_THAT(rejection(with_port("9875.0")).reason(), Contains("got 9875.0"));
    CHECK_THAT(rejection(with_port("\"9875\"")).reason(), Contains(R"(got the string "9875")"));
    CHECK_THAT(rejection(with_port("true")).reason(), Contains("got true"));
}

TEST_CASE("ports 1 and 65535 are accepted", "[config][port]") {
    // Separate documents: together, each backend would also be a frontend.
    const Config low = parse_config(R"({"frontends": [{"port": 1, "backends": [65535]}]})");
    REQUIRE(low.frontends.size() == 1);
    CHECK(low.frontends[0].port == 1);
    CHECK(low.frontends[0].backends == std::vector<portmux::Backend>{65535});

    const Config high = parse_config(R"({"frontends": [{"port": 65535, "backends": [1]}]})");
    REQUIRE(high.frontends.size() == 1);
    CHECK(high.frontends[0].port == 65535);
    CHECK(high.frontends[0].backends == std::vector<portmux::Backend>{1});
}

TEST_CASE("a backend port follows the same rules", "[config][port]") {
    const std::string port = GENERATE(as<std::string>{}, "0", "65536", "-1", "9876.5", "\"9876\"",
                                      "true", "null", "[9876]");
    CAPTURE(port);
    const ConfigError error = rejection(with_backends("[9001, " + port + "]"));
    CHECK(error.path() == "frontends[0].backends[1]");
    CHECK_THAT(error.reason(), Contains("integer") && Contains("from 1 to 65535"));
}

// ------------------------------------------------------------------ protocol

TEST_CASE("TCP frontends are accepted", "[config][protocol]") {
    const Config config =
        parse_config(R"({"frontends": [{"port": 80, "protocol": "tcp", "backends": [8080]}]})");
    REQUIRE(config.frontends.size() == 1);
    CHECK(config.frontends[0].protocol == Protocol::tcp);
    CHECK(config.frontends[0].backends == std::vector<portmux::Backend>{8080});
}

TEST_CASE("the same port may be a UDP and a TCP frontend", "[config][protocol]") {
    const Config config = parse_config(R"({"frontends": [
        {"port": 80, "protocol": "udp", "backends": [8080]},
        {"port": 80, "protocol": "tcp", "backends": [8080]}
    ]})");
    REQUIRE(config.frontends.size() == 2);
    CHECK(config.frontends[0].protocol == Protocol::udp);
    CHECK(config.frontends[1].protocol == Protocol::tcp);
}

TEST_CASE("a backend may be a frontend of the other protocol", "[config][protocol]") {
    const Config config = parse_config(R"({"frontends": [
        {"port": 9875, "protocol": "udp", "backends": [9876]},
        {"port": 9876, "protocol": "tcp", "backends": [9877]}
    ]})");
    CHECK(config.frontends.size() == 2);
}

TEST_CASE("an unknown protocol is named", "[config][protocol]") {
    const ConfigError sctp =
        rejection(R"({"frontends": [{"port": 80, "protocol": "sctp", "backends": [8080]}]})");
    CHECK(sctp.path() == "frontends[0].protocol");
    CHECK(sctp.reason() == R"(unknown protocol "sctp" (expected "udp" or "tcp"))");

    // Names are case-sensitive, as everywhere else in the file.
    const ConfigError upper =
        rejection(R"({"frontends": [{"port": 80, "protocol": "UDP", "backends": [8080]}]})");
    CHECK(upper.reason() == R"(unknown protocol "UDP" (expected "udp" or "tcp"))");
}

TEST_CASE("protocol must be a string", "[config][protocol]") {
    const ConfigError error =
        rejection(R"({"frontends": [{"port": 80, "protocol": 17, "backends": [8080]}]})");
    CHECK(error.path() == "frontends[0].protocol");
    CHECK_THAT(error.reason(), Contains(R"("udp" or "tcp")") && Contains("got 17"));
}

// ------------------------------------------------------------------ backends

TEST_CASE("backends must be a non-empty array", "[config][backends]") {
    const ConfigError number = rejection(with_backends("9001"));
    CHECK(number.path() == "frontends[0].backends");
    CHECK_THAT(number.reason(), Contains("array") && Contains("got 9001"));

    const ConfigError empty = rejection(with_backends("[]"));
    CHECK(empty.path() == "frontends[0].backends");
    CHECK_THAT(empty.reason(), Contains("at least one backend"));
}

TEST_CASE("more than PORTMUX_MAX_BACKENDS backends are rejected", "[config][backends]") {
    const ConfigError error = rejection(with_backends(port_list(10000, PORTMUX_MAX_BACKENDS + 1)));
    CHECK(error.path() == "frontends[0].backends");
    CHECK_THAT(error.reason(), Contains("too many backends") && Contains("65") &&
                                   Contains("at most 64"));
}

TEST_CASE("a backend listed twice names both places", "[config][backends]") {
    const ConfigError error = rejection(with_backends("[9001, 9002, 9003, 9002]"));
    CHECK(error.path() == "frontends[0].backends[3]");
    CHECK_THAT(error.reason(), Contains("duplicate backend 9002") &&
                                   Contains("frontends[0].backends[1]"));
}

TEST_CASE("a frontend's own port cannot be one of its backends", "[config][backends]") {
    const ConfigError error = rejection(with_backends("[9001, 9000]"));
    CHECK(error.path() == "frontends[0].backends[1]");
    CHECK_THAT(error.reason(), Contains("9000") && Contains("own port"));
}

TEST_CASE("a backend cannot be a frontend of the same protocol", "[config][backends]") {
    SECTION("the frontend comes later") {
        const ConfigError error = rejection(R"({"frontends": [
            {"port": 9875, "backends": [9876, 9877]},
            {"port": 7000, "backends": [7001]},
            {"port": 9877, "protocol": "udp", "backends": [9878]}
        ]})");
        CHECK(error.path() == "frontends[0].backends[1]");
        CHECK_THAT(error.reason(), Contains("9877") && Contains("udp frontend") &&
                                       Contains("frontends[2]"));
    }
    SECTION("the frontend comes earlier") {
        const ConfigError error = rejection(R"({"frontends": [
            {"port": 9875, "backends": [9876]},
            {"port": 7000, "backends": [7001, 9875]}
        ]})");
        CHECK(error.path() == "frontends[1].backends[1]");
        CHECK_THAT(error.reason(), Contains("9875") && Contains("frontends[0]"));
    }
}

// ------------------------------------------------------------------ between frontends

TEST_CASE("a frontend defined twice names the second and the first", "[config][frontends]") {
    // The second spells the default protocol out; it is still the same frontend.
    const ConfigError error = rejection(R"({"frontends": [
        {"port": 9875, "backends": [9876]},
        {"port": 7000, "backends": [7001]},
        {"port": 9875, "protocol": "udp", "backends": [9877]}
    ]})");
    CHECK(error.path() == "frontends[2]");
    CHECK_THAT(error.reason(), Contains("duplicate frontend 9875/udp") && Contains("frontends[0]"));
}

TEST_CASE("the whole document is validated, up to its last element", "[config]") {
    const ConfigError error = rejection(R"({"frontends": [
        {"port": 9875, "backends": [9876]},
        {"port": 7000, "backends": [7001]},
        {"port": 8000, "backends": [8001, 0]}
    ]})");
    CHECK(error.path() == "frontends[2].backends[1]");
}

TEST_CASE("of several mistakes the first in the document is reported", "[config]") {
    const ConfigError error = rejection(R"({"frontends": [
        {"port": 9875, "zebra": 1, "apple": 2, "backends": [0]}
    ]})");
    CHECK(error.path() == "frontends[0].zebra");
}

// ------------------------------------------------------------------ files

TEST_CASE("load_config reads a valid file", "[config][file]") {
    const TempDir dir;
    const auto file = dir.write("good.json", R"({"frontends": [{"port": 9875, "backends": [9876]}]})");
    const Config config = portmux::load_config(file);
    REQUIRE(config.frontends.size() == 1);
    CHECK(config.frontends[0].backends == std::vector<portmux::Backend>{9876});
}

TEST_CASE("load_config prefixes errors with the file name only in what()", "[config][file]") {
    const TempDir dir;
    const auto file = dir.write("bad.json", R"({"frontends": [
        {"port": 9875, "backends": [9876]},
        {"port": 7000, "backends": [7001]},
        {"port": 8000, "backends": [8001, 8001]}
    ]})");
    try {
        (void)portmux::load_config(file);
        FAIL("bad.json was accepted");
    } catch (const ConfigError& error) {
        CHECK(error.path() == "frontends[2].backends[1]");
        CHECK_THAT(error.reason(), StartsWith("duplicate backend 8001"));
        CHECK(std::string(error.what()) ==
              file.string() + ": frontends[2].backends[1]: " + error.reason());
    }
}

TEST_CASE("load_config prefixes syntax errors with the file name", "[config][file]") {
    const TempDir dir;
    const auto file = dir.write("broken.json", "{\n  \"frontends\": [\n    oops\n  ]\n}\n");
    try {
        (void)portmux::load_config(file);
        FAIL("broken.json was accepted");
    } catch (const ConfigError& error) {
        CHECK(error.path().empty());
        CHECK_THAT(error.reason(), StartsWith("line 3, column 5: "));
        CHECK(std::string(error.what()) == file.string() + ": " + error.reason());
    }
}

TEST_CASE("load_config names a missing file and the cause", "[config][file]") {
    const TempDir dir;
    const auto missing = dir.path() / "missing.json";
    try {
        (void)portmux::load_config(missing);
        FAIL("a missing file was accepted");
    } catch (const ConfigError& error) {
        CHECK(error.path().empty());
        CHECK_THAT(std::string(error.what()),
                   StartsWith(missing.string() + ": ") && Contains("No such file or directory"));
    }
}

TEST_CASE("load_config names a directory given as the file", "[config][file]") {
    const TempDir dir;
    try {
        (void)portmux::load_config(dir.path());
        FAIL("a directory was accepted");
    } catch (const ConfigError& error) {
        CHECK_THAT(std::string(error.what()),
                   StartsWith(dir.path().string() + ": ") && Contains("Is a directory"));
    }
}

#ifdef PORTMUX_SOURCE_DIR
TEST_CASE("the shipped example config is valid", "[config][file]") {
    const Config config =
        portmux::load_config(std::filesystem::path(PORTMUX_SOURCE_DIR) / "examples/udp-roundrobin.json");
    REQUIRE(config.frontends.size() == 1);
    CHECK(config.frontends[0].port == 9875);
    CHECK(config.frontends[0].protocol == Protocol::udp);
    CHECK(config.frontends[0].backends == std::vector<portmux::Backend>{9876, 9877, 9878});
}
#endif
