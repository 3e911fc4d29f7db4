// Tests of the config keys of TCP frontends routed by their first bytes
// (served by the stream router): route and validate on TCP,
// first_data_timeout and proxy_protocol, with the path each error names.
#include <catch2/catch.hpp>

#include <string>

#include "config.hpp"

namespace {

using Catch::Matchers::Contains;
using portmux::Config;
using portmux::ConfigError;
using portmux::parse_config;

ConfigError rejection(const std::string& json_text) {
    try {
        (void)parse_config(json_text);
    } catch (const ConfigError& error) {
        return error;
    }
    FAIL("config was accepted:\n" << json_text);
    throw std::logic_error("unreachable");
}

// One frontend on 9000: {"port": 9000, MEMBERS}.
std::string frontend(const std::string& members) {
    return R"({"frontends": [{"port": 9000, )" + members + "}]}";
}

const std::string mplex_route =
    R"({"offset": 20, "length": 3, "tags": [{"tag": "aaa", "backend": 5001},
        {"tag": "bbb", "backend": 5002}, {"tag": "ccc", "backend": 5003}]})";

}  // namespace

TEST_CASE("a TCP frontend may route by its first bytes, in a length window", "[config][stream]") {
    const Config config = parse_config(frontend(
        R"("protocol": "tcp", "backends": [], "route": )" + mplex_route +
        R"(, "validate": {"min_length": 24, "match": [{"offset": 0, "value": "MPLX"}]},
            "first_data_timeout": 2, "proxy_protocol": "v2")"));
    REQUIRE(config.frontends.size() == 1);
    const portmux::Frontend& frontend = config.frontends[0];
    CHECK(portmux::stream_frontend(frontend));
    CHECK(frontend.route->tags.size() == 3);
    CHECK(frontend.validate->min_payload == 24);
    CHECK(frontend.first_data_timeout_seconds == 2);
    CHECK(frontend.proxy_protocol_v2);
    CHECK(frontend.backends.size() == 3);  // the route targets, weight 0
    CHECK(portmux::xdp_frontends(config).frontends.empty());
}

TEST_CASE("stream frontend defaults: 5 s for the first data, no PROXY header", "[config][stream]") {
    const Config config = parse_config(
        frontend(R"("protocol": "tcp", "backends": [9001], "validate": {"min_length": 1})"));
    CHECK(config.frontends[0].first_data_timeout_seconds == 5);
    CHECK_FALSE(config.frontends[0].proxy_protocol_v2);
    CHECK(portmux::stream_frontend(config.frontends[0]));
}

TEST_CASE("a plain TCP frontend stays with XDP", "[config][stream]") {
    const Config config = parse_config(
        R"({"frontends": [{"port": 9000, "protocol": "tcp", "backends": [9001]},
                          {"port": 9100, "protocol": "tcp", "backends": [9101], "proxy_protocol": "v2"},
                          {"port": 9000, "backends": [9001], "route": )" +
        mplex_route + "}]}");
    CHECK_FALSE(portmux::stream_frontend(config.frontends[0]));
    CHECK(portmux::stream_frontend(config.frontends[1]));
    CHECK_FALSE(portmux::stream_frontend(config.frontends[2]));  // UDP
    const Config xdp = portmux::xdp_frontends(config);
    REQUIRE(xdp.frontends.size() == 2);
    CHECK(xdp.frontends[0].port == 9000);
    CHECK(xdp.frontends[1].protocol == portmux::Protocol::udp);
}

TEST_CASE("max_length is rejected on TCP, saying why", "[config][stream]") {
    const ConfigError error = rejection(frontend(
        R"("protocol": "tcp", "backends": [9001], "validate": {"min_length": 4, "max_length": 64})"));
    CHECK(error.path() == "frontends[0].validate.max_length");
    CHECK_THAT(error.reason(), Contains("TCP") && Contains("stream") && Contains("min_length"));
}

TEST_CASE("min_length on TCP is bounded by what the router reads", "[config][stream]") {
    const ConfigError error = rejection(
        frontend(R"("protocol": "tcp", "backends": [9001], "validate": {"min_length": 1501})"));
    CHECK(error.path() == "frontends[0].validate.min_length");
    CHECK_THAT(error.reason(), Contains("from 0 to 1500") && Contains("1501"));
}

TEST_CASE("first_data_timeout: TCP stream frontends only, 1 to 3600 s", "[config][stream]") {
    SECTION("UDP") {
        const ConfigError error =
            rejection(frontend(R"("backends": [9001], "first_data_timeout": 5)"));
        CHECK(error.path() == "frontends[0].first_data_timeout");
        CHECK_THAT(error.reason(), Contains("UDP"));
    }
    SECTION("a TCP frontend XDP balances") {
        const ConfigError error = rejection(
            frontend(R"("protocol": "tcp", "backends": [9001], "first_data_timeout": 5)"));
        CHECK(error.path() == "frontends[0].first_data_timeout");
        CHECK_THAT(error.reason(), Contains("route") && Contains("validate"));
    }
    SECTION("out of range") {
        const std::string value = GENERATE(as<std::string>{}, "0", "3601", "1.5", "\"5\"");
        const ConfigError error = rejection(frontend(
            R"("protocol": "tcp", "backends": [9001], "proxy_protocol": "v2", "first_data_timeout": )" +
            value));
        CHECK(error.path() == "frontends[0].first_data_timeout");
        CHECK_THAT(error.reason(), Contains("from 1 to 3600"));
    }
}

TEST_CASE("proxy_protocol takes only \"v2\" and only on TCP", "[config][stream]") {
    SECTION("v1") {
        const ConfigError error =
            rejection(frontend(R"("protocol": "tcp", "backends": [9001], "proxy_protocol": "v1")"));
        CHECK(error.path() == "frontends[0].proxy_protocol");
        CHECK_THAT(error.reason(), Contains("\"v1\"") && Contains("\"v2\""));
    }
    SECTION("UDP") {
        const ConfigError error =
            rejection(frontend(R"("backends": [9001], "proxy_protocol": "v2")"));
        CHECK(error.path() == "frontends[0].proxy_protocol");
        CHECK_THAT(error.reason(), Contains("UDP"));
    }
}

TEST_CASE("a TCP route is checked like a UDP one", "[config][stream]") {
    const ConfigError error = rejection(frontend(
        R"("protocol": "tcp", "backends": [], "route": {"offset": 20, "length": 3, "tags": [{"tag": "aa", "backend": 5001}]})"));
    CHECK(error.path() == "frontends[0].route.tags[0]");
    CHECK_THAT(error.reason(), Contains("2 bytes long"));
}
