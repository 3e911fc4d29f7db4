// Tests of loader/config_rules.cpp (and config_json.cpp) beyond plain round robin: flow_table_size, TCP
// frontends, weights, flow affinity, validate and route blocks. Every rule
// of docs/config.md, with the exact path each rejection names.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "portmux_shared.h"

namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using portmux::Affinity;
using portmux::Backend;
using portmux::ByteMatch;
using portmux::Config;
using portmux::ConfigError;
using portmux::Frontend;
using portmux::parse_config;
using portmux::Protocol;
using portmux::RouteTag;
using portmux::UnknownTagAction;
using Bytes = std::vector<std::uint8_t>;

ConfigError rejection(std::string_view json_text) {
    try {
        (void)parse_config(json_text);
    } catch (const ConfigError& error) {
        return error;
    }
    FAIL("config was accepted:\n" << json_text);
    throw std::logic_error("unreachable");
}

// One frontend: {"port": 9000, MEMBERS}.
std::string frontend(const std::string& members) {
    return R"({"frontends": [{"port": 9000, )" + members + "}]}";
}

// One UDP frontend on 9000 with backends [9001] and "validate": VALIDATE.
std::string with_validate(const std::string& validate) {
    return frontend(R"("backends": [9001], "validate": )" + validate);
}

// One UDP frontend on 9000 with BACKENDS and "route": ROUTE.
std::string with_route(const std::string& route, const std::string& backends = "[]") {
    return frontend(R"("backends": )" + backends + R"(, "route": )" + route);
}

// A route reading 3 bytes at offset 20, with TAGS and more MEMBERS.
std::string route(const std::string& tags, const std::string& members = "") {
    return R"({"offset": 20, "length": 3, )" + members + R"("tags": )" + tags + "}";
}

// How a reason shows the JSON value TEXT that was given.
std::string got(const std::string& text) {
    return (text.starts_with('"') ? "got the string " : "got ") + text;
}

// {"hex": "<VALUE as 4 hex digits>", "backend": BACKEND}
std::string fmt_hex_tag(int value, int backend) {
    static const char digits[] = "0123456789abcdef";
    std::string hex;
    for (int shift = 12; shift >= 0; shift -= 4) {
        hex += digits[(value >> shift) & 0xf];
    }
    return R"({"hex": ")" + hex + R"(", "backend": )" + std::to_string(backend) + "}";
}

Bytes bytes(std::string_view text) {
    return {text.begin(), text.end()};
}

}  // namespace

// ------------------------------------------------------------------ flow_table_size

TEST_CASE("flow_table_size defaults to PORTMUX_DEFAULT_FLOW_TABLE_SIZE", "[config][flow_table_size]") {
    const Config config = parse_config(R"({"frontends": [{"port": 1, "backends": [2]}]})");
    CHECK(config.flow_table_size == PORTMUX_DEFAULT_FLOW_TABLE_SIZE);
}

TEST_CASE("flow_table_size accepts 1024 to 16777216", "[config][flow_table_size]") {
    const std::uint32_t size = GENERATE(1024u, 65536u, 100000u, 16777216u);
    const Config config = parse_config(R"({"flow_table_size": )" + std::to_string(size) +
                                       R"(, "frontends": [{"port": 1, "backends": [2]}]})");
    CHECK(config.flow_table_size == size);
}

TEST_CASE("flow_table_size outside 1024 to 16777216 is rejected", "[config][flow_table_size]") {
    const std::string size = GENERATE(as<std::string>{}, "0", "1023", "16777217", "-1", "65536.0",
                                      "\"65536\"", "null");
    CAPTURE(size);
    const ConfigError error = rejection(R"({"frontends": [{"port": 1, "backends": [2]}], )"
                                        R"("flow_table_size": )" + size + "}");
    CHECK(error.path() == "flow_table_size");
    CHECK_THAT(error.reason(), Contains("from 1024 to 16777216") && Contains(got(size)));
}

TEST_CASE("top-level keys are validated in document order", "[config][flow_table_size]") {
    const ConfigError before =
        rejection(R"({"flow_table_size": 1, "frontends": [{"port": 0, "backends": [2]}]})");
    CHECK(before.path() == "flow_table_size");

    const ConfigError after =
        rejection(R"({"frontends": [{"port": 0, "backends": [2]}], "flow_table_size": 1})");
    CHECK(after.path() == "frontends[0].port");
}

TEST_CASE("an unknown top-level key names both known ones", "[config][structure]") {
    const ConfigError error =
        rejection(R"({"frontends": [{"port": 1, "backends": [2]}], "flow_table": 1024})");
    CHECK(error.path() == "flow_table");
    CHECK(error.reason() == R"(unknown key "flow_table" (expected "frontends" or "flow_table_size"))");
}

// ------------------------------------------------------------------ TCP

TEST_CASE("a TCP frontend is balanced per connection: affinity is rejected", "[config][tcp]") {
    const std::string affinity = GENERATE(as<std::string>{}, "\"flow\"", "\"packet\"", "7");
    CAPTURE(affinity);
    const ConfigError error = rejection(
        frontend(R"("protocol": "tcp", "backends": [9001], "affinity": )" + affinity));
    CHECK(error.path() == "frontends[0].affinity");
    CHECK_THAT(error.reason(), Contains("TCP") && Contains("always balanced per connection"));
}

TEST_CASE("a TCP frontend takes no flow_idle_timeout", "[config][tcp]") {
    const ConfigError error =
        rejection(frontend(R"("protocol": "tcp", "backends": [9001], "flow_idle_timeout": 30)"));
    CHECK(error.path() == "frontends[0].flow_idle_timeout");
    CHECK_THAT(error.reason(), Contains("TCP") && Contains("per connection"));
}

TEST_CASE("affinity client: UDP and TCP, with or without an idle timeout", "[config][affinity][client]") {
    const std::string protocol = GENERATE(as<std::string>{}, "udp", "tcp");
    CAPTURE(protocol);
    const Config defaulted = parse_config(
        frontend(R"("protocol": ")" + protocol + R"(", "affinity": "client", "backends": [9001, 9002])"));
    CHECK(defaulted.frontends[0].affinity == Affinity::client);
    CHECK(defaulted.frontends[0].flow_idle_seconds == portmux::kDefaultFlowIdleSeconds);
    // The timeout may come before the affinity and the protocol.
    const Config timed = parse_config(frontend(R"("flow_idle_timeout": 300, "affinity": "client", )"
                                               R"("backends": [9001], "protocol": ")" + protocol + "\""));
    CHECK(timed.frontends[0].affinity == Affinity::client);
    CHECK(timed.frontends[0].flow_idle_seconds == 300);
}

TEST_CASE("affinity client: no route, and no TCP stream frontend", "[config][affinity][client]") {
    const ConfigError routed = rejection(frontend(
        R"("affinity": "client", "backends": [9001], "route": {"offset": 0, "length": 1, "tags": [{"tag": "a", "backend": 9001}]})"));
    CHECK(routed.path() == "frontends[0].route");
    CHECK_THAT(routed.reason(), Contains(R"("affinity": "client" cannot route by payload)"));
    const ConfigError streamed = rejection(frontend(
        R"("protocol": "tcp", "affinity": "client", "backends": [9001], "proxy_protocol": "v2")"));
    CHECK(streamed.path() == "frontends[0].affinity");
    CHECK_THAT(streamed.reason(), Contains("stream router") && Contains("takes no \"affinity\""));
    const ConfigError idle_tcp =
        rejection(frontend(R"("protocol": "tcp", "backends": [9001], "flow_idle_timeout": 30)"));
    CHECK(idle_tcp.reason() == R"(a TCP frontend takes no "flow_idle_timeout" without "affinity": "client": )"
                               "TCP is always balanced per connection");
}

TEST_CASE("the protocol is known before the keys that depend on it", "[config][tcp]") {
    // "protocol" written after "affinity" still makes the affinity the mistake.
    const ConfigError error =
        rejection(frontend(R"("affinity": "flow", "backends": [9001], "protocol": "tcp")"));
    CHECK(error.path() == "frontends[0].affinity");
}

TEST_CASE("a TCP frontend may validate its payload", "[config][tcp]") {
    const Config config = parse_config(frontend(
        R"("protocol": "tcp", "backends": [9001, {"port": 9002, "weight": 2}],
           "validate": {"min_length": 4, "match": [{"offset": 0, "value": "GET "}]})"));
    REQUIRE(config.frontends.size() == 1);
    const Frontend& tcp = config.frontends[0];
    CHECK(tcp.protocol == Protocol::tcp);
    CHECK(tcp.backends == std::vector<Backend>{{9001, 1}, {9002, 2}});
    REQUIRE(tcp.validate);
    CHECK(tcp.validate->min_payload == 4);
    REQUIRE(tcp.validate->matches.size() == 1);
    CHECK(tcp.validate->matches[0].value == bytes("GET "));
}

TEST_CASE("a TCP frontend needs backends", "[config][tcp]") {
    const ConfigError error = rejection(frontend(R"("protocol": "tcp", "backends": [])"));
    CHECK(error.path() == "frontends[0].backends");
    CHECK_THAT(error.reason(), Contains("at least one backend"));
}

// ------------------------------------------------------------------ weights

TEST_CASE("backends may be ports or objects with a weight", "[config][weights]") {
    const Config config = parse_config(
        frontend(R"("backends": [9876, {"port": 9877, "weight": 3}, {"port": 9878}])"));
    REQUIRE(config.frontends.size() == 1);
    const auto& backends = config.frontends[0].backends;
    REQUIRE(backends.size() == 3);
    CHECK(backends[0].port == 9876);
    CHECK(backends[0].weight == 1);
    CHECK(backends[1].port == 9877);
    CHECK(backends[1].weight == 3);
    CHECK(backends[2].port == 9878);
    CHECK(backends[2].weight == 1);
    CHECK_FALSE(backends[1].drained);
}

TEST_CASE("weights 1 and 256 are accepted", "[config][weights]") {
    const Config low = parse_config(frontend(R"("backends": [{"port": 9001, "weight": 1}])"));
    CHECK(low.frontends[0].backends[0].weight == 1);
    const Config high = parse_config(frontend(R"("backends": [{"port": 9001, "weight": 256}])"));
    CHECK(high.frontends[0].backends[0].weight == 256);
}

TEST_CASE("a weight outside 1 to 256 is rejected", "[config][weights]") {
    const std::string weight = GENERATE(as<std::string>{}, "0", "257", "-1", "1.5", "\"2\"", "null");
    CAPTURE(weight);
    const ConfigError error =
        rejection(frontend(R"("backends": [9001, {"port": 9002, "weight": )" + weight + "}]"));
    CHECK(error.path() == "frontends[0].backends[1].weight");
    CHECK_THAT(error.reason(), Contains("weight") && Contains("from 1 to 256") &&
                                   Contains(got(weight)));
}

TEST_CASE("weights adding up to 256 are accepted", "[config][weights]") {
    const Config config = parse_config(frontend(
        R"("backends": [{"port": 9001, "weight": 200}, {"port": 9002, "weight": 55}, 9003])"));
    CHECK(config.frontends[0].backends.size() == 3);
}

TEST_CASE("weights adding up to 257 are rejected on the backends", "[config][weights]") {
    const ConfigError error = rejection(frontend(
        R"("backends": [{"port": 9001, "weight": 200}, {"port": 9002, "weight": 56}, 9003])"));
    CHECK(error.path() == "frontends[0].backends");
    CHECK_THAT(error.reason(), Contains("weights add up to 257") && Contains("256"));
}

TEST_CASE("64 backends of weight 4 exactly fill the round-robin slots", "[config][weights]") {
    std::string list = "[";
    for (int i = 0; i < PORTMUX_MAX_BACKENDS; ++i) {
        list += (i > 0 ? ", " : "") + std::string(R"({"port": )") + std::to_string(10000 + i) +
                R"(, "weight": 4})";
    }
    const Config config = parse_config(frontend(R"("backends": )" + list + "]"));
    CHECK(config.frontends[0].backends.size() == PORTMUX_MAX_BACKENDS);
}

TEST_CASE("a backend object needs a valid port and nothing else", "[config][weights]") {
    const ConfigError missing = rejection(frontend(R"("backends": [9001, {"weight": 2}])"));
    CHECK(missing.path() == "frontends[0].backends[1]");
    CHECK(missing.reason() == R"(missing required key "port")");

    const ConfigError bad_port = rejection(frontend(R"("backends": [{"port": 0, "weight": 2}])"));
    CHECK(bad_port.path() == "frontends[0].backends[0].port");
    CHECK_THAT(bad_port.reason(), Contains("from 1 to 65535") && Contains("got 0"));

    const ConfigError unknown =
        rejection(frontend(R"("backends": [{"port": 9001, "weight": 2, "drained": true}])"));
    CHECK(unknown.path() == "frontends[0].backends[0].drained");
    CHECK(unknown.reason() == R"(unknown key "drained" (expected "port" or "weight"))");
}

TEST_CASE("a backend that is neither a port nor an object says both are possible",
          "[config][weights]") {
    const ConfigError error = rejection(frontend(R"("backends": ["9001"])"));
    CHECK(error.path() == "frontends[0].backends[0]");
    CHECK_THAT(error.reason(), Contains("port number") && Contains("object") &&
                                   Contains(R"(got the string "9001")"));
}

TEST_CASE("backend objects follow the duplicate, own-port and frontend rules", "[config][weights]") {
    const ConfigError duplicate =
        rejection(frontend(R"("backends": [9001, {"port": 9001, "weight": 2}])"));
    CHECK(duplicate.path() == "frontends[0].backends[1]");
    CHECK_THAT(duplicate.reason(),
               Contains("duplicate backend 9001") && Contains("frontends[0].backends[0]"));

    const ConfigError own = rejection(frontend(R"("backends": [{"port": 9000, "weight": 2}])"));
    CHECK(own.path() == "frontends[0].backends[0]");
    CHECK_THAT(own.reason(), Contains("own port"));

    const ConfigError is_frontend = rejection(R"({"frontends": [
        {"port": 9000, "backends": [9001, {"port": 7000, "weight": 2}]},
        {"port": 7000, "backends": [7001]}
    ]})");
    CHECK(is_frontend.path() == "frontends[0].backends[1]");
    CHECK_THAT(is_frontend.reason(), Contains("7000") && Contains("udp frontend") &&
                                         Contains("frontends[1]"));
}

// ------------------------------------------------------------------ affinity

TEST_CASE("affinity defaults to packet with the default idle timeout", "[config][affinity]") {
    const Config config = parse_config(frontend(R"("backends": [9001])"));
    CHECK(config.frontends[0].affinity == Affinity::packet);
    CHECK(config.frontends[0].flow_idle_seconds == portmux::kDefaultFlowIdleSeconds);
}

TEST_CASE("affinity flow with and without an idle timeout", "[config][affinity]") {
    const Config defaulted = parse_config(frontend(R"("affinity": "flow", "backends": [9001])"));
    CHECK(defaulted.frontends[0].affinity == Affinity::flow);
    CHECK(defaulted.frontends[0].flow_idle_seconds == 30);

    const Config explicit_packet =
        parse_config(frontend(R"("affinity": "packet", "backends": [9001])"));
    CHECK(explicit_packet.frontends[0].affinity == Affinity::packet);

    const std::uint16_t seconds = GENERATE(std::uint16_t{1}, std::uint16_t{120}, std::uint16_t{65535});
    // The timeout may come before the affinity it depends on.
    const Config timed = parse_config(frontend(R"("flow_idle_timeout": )" +
                                               std::to_string(seconds) +
                                               R"(, "affinity": "flow", "backends": [9001])"));
    CHECK(timed.frontends[0].affinity == Affinity::flow);
    CHECK(timed.frontends[0].flow_idle_seconds == seconds);
}

TEST_CASE("an unknown affinity is named", "[config][affinity]") {
    const ConfigError unknown = rejection(frontend(R"("affinity": "sticky", "backends": [9001])"));
    CHECK(unknown.path() == "frontends[0].affinity");
    CHECK(unknown.reason() == R"(unknown affinity "sticky" (expected "packet", "flow" or "client"))");

    const ConfigError number = rejection(frontend(R"("affinity": true, "backends": [9001])"));
    CHECK(number.path() == "frontends[0].affinity");
    CHECK(number.reason() == R"(expected "packet", "flow" or "client", got true)");
}

TEST_CASE("flow_idle_timeout outside 1 to 65535 is rejected", "[config][affinity]") {
    const std::string seconds = GENERATE(as<std::string>{}, "0", "65536", "-5", "2.5", "\"30\"");
    CAPTURE(seconds);
    const ConfigError error = rejection(
        frontend(R"("affinity": "flow", "flow_idle_timeout": )" + seconds + R"(, "backends": [9001])"));
    CHECK(error.path() == "frontends[0].flow_idle_timeout");
    CHECK_THAT(error.reason(), Contains("seconds") && Contains("from 1 to 65535") &&
                                   Contains(got(seconds)));
}

TEST_CASE("flow_idle_timeout needs affinity flow", "[config][affinity]") {
    const std::string affinity = GENERATE(as<std::string>{}, "", R"("affinity": "packet", )");
    CAPTURE(affinity);
    const ConfigError error =
        rejection(frontend(affinity + R"("flow_idle_timeout": 30, "backends": [9001])"));
    CHECK(error.path() == "frontends[0].flow_idle_timeout");
    CHECK_THAT(error.reason(), Contains(R"("affinity": "flow")"));
}

TEST_CASE("a frontend with affinity flow cannot route by payload", "[config][affinity]") {
    const ConfigError error = rejection(frontend(
        R"("affinity": "flow", "backends": [9001],
           "route": {"offset": 0, "length": 1, "tags": [{"tag": "a", "backend": 9002}]})"));
    CHECK(error.path() == "frontends[0].route");
    CHECK_THAT(error.reason(), Contains("flow") && Contains("route by payload"));
}

// ------------------------------------------------------------------ validate

TEST_CASE("a validate block is parsed with its defaults", "[config][validate]") {
    const Config empty = parse_config(with_validate("{}"));
    REQUIRE(empty.frontends[0].validate);
    CHECK(empty.frontends[0].validate->min_payload == 0);
    CHECK(empty.frontends[0].validate->max_payload == 65535);
    CHECK(empty.frontends[0].validate->matches.empty());

    const Config none = parse_config(frontend(R"("backends": [9001])"));
    CHECK_FALSE(none.frontends[0].validate);
}

TEST_CASE("a full validate block", "[config][validate]") {
    const Config config = parse_config(with_validate(R"({
        "min_length": 24, "max_length": 512,
        "match": [ { "offset": 0, "value": "PMUX" },
                   { "offset": 4, "hex": "0102", "mask": "ff0F" },
                   { "mask": "F0", "hex": "aB", "offset": 500 } ] })"));
    REQUIRE(config.frontends[0].validate);
    const portmux::Validation& rules = *config.frontends[0].validate;
    CHECK(rules.min_payload == 24);
    CHECK(rules.max_payload == 512);
    REQUIRE(rules.matches.size() == 3);
    CHECK(rules.matches[0] == ByteMatch{0, bytes("PMUX"), {}});
    CHECK(rules.matches[1] == ByteMatch{4, {0x01, 0x02}, {0xff, 0x0f}});
    CHECK(rules.matches[2] == ByteMatch{500, {0xab}, {0xf0}});
}

TEST_CASE("max_length 512 with a match up to it", "[config][validate]") {
    // offset + length == max_length: the last byte is the 512th.
    const Config config = parse_config(with_validate(
        R"({"max_length": 512, "match": [{"offset": 508, "value": "TAIL"}]})"));
    CHECK(config.frontends[0].validate->matches.size() == 1);
}

TEST_CASE("value bytes are taken as written, escapes and UTF-8 included", "[config][validate]") {
    const Config config = parse_config(
        with_validate(R"({"match": [{"offset": 0, "value": "\u0000\n\u00e9"}]})"));
    CHECK(config.frontends[0].validate->matches[0].value == Bytes{0x00, 0x0a, 0xc3, 0xa9});
}

TEST_CASE("validate must be an object of known keys", "[config][validate]") {
    const ConfigError array = rejection(with_validate("[]"));
    CHECK(array.path() == "frontends[0].validate");
    CHECK_THAT(array.reason(), Contains("object") && Contains("got an array"));

    const ConfigError unknown = rejection(with_validate(R"({"min_len": 3})"));
    CHECK(unknown.path() == "frontends[0].validate.min_len");
    CHECK(unknown.reason() ==
          R"(unknown key "min_len" (expected "min_length", "max_length" or "match"))");
}

TEST_CASE("min_length and max_length are 0 to 65535", "[config][validate]") {
    const std::string key = GENERATE(as<std::string>{}, "min_length", "max_length");
    const std::string length = GENERATE(as<std::string>{}, "65536", "-1", "1.0", "\"8\"");
    CAPTURE(key, length);
    const ConfigError error = rejection(with_validate(R"({")" + key + R"(": )" + length + "}"));
    CHECK(error.path() == "frontends[0].validate." + key);
    CHECK_THAT(error.reason(), Contains("from 0 to 65535") && Contains(got(length)));
}

TEST_CASE("min_length 0 and max_length 65535 and equal bounds are fine", "[config][validate]") {
    CHECK(parse_config(with_validate(R"({"min_length": 0, "max_length": 65535})"))
              .frontends[0].validate->max_payload == 65535);
    CHECK(parse_config(with_validate(R"({"min_length": 100, "max_length": 100})"))
              .frontends[0].validate->min_payload == 100);
}

TEST_CASE("min_length above max_length is reported on max_length", "[config][validate]") {
    // Wherever max_length is written.
    const std::string block = GENERATE(as<std::string>{}, R"({"min_length": 20, "max_length": 10})",
                                       R"({"max_length": 10, "min_length": 20})");
    CAPTURE(block);
    const ConfigError error = rejection(with_validate(block));
    CHECK(error.path() == "frontends[0].validate.max_length");
    CHECK(error.reason() == "max_length 10 is less than min_length 20");
}

TEST_CASE("match is an array of at most PORTMUX_MAX_MATCHES", "[config][validate]") {
    const ConfigError object = rejection(with_validate(R"({"match": {"offset": 0, "value": "a"}})"));
    CHECK(object.path() == "frontends[0].validate.match");
    CHECK_THAT(object.reason(), Contains("array") && Contains("got an object"));

    STATIC_REQUIRE(PORTMUX_MAX_MATCHES == 4);
    const std::string one = R"({"offset": 0, "value": "a"})";
    const Config four = parse_config(
        with_validate(R"({"match": [)" + one + "," + one + "," + one + "," + one + "]}"));
    CHECK(four.frontends[0].validate->matches.size() == 4);

    const ConfigError five = rejection(
        with_validate(R"({"match": [)" + one + "," + one + "," + one + "," + one + "," + one + "]}"));
    CHECK(five.path() == "frontends[0].validate.match");
    CHECK(five.reason() == "too many matches: 5 (at most 4)");
}

TEST_CASE("a match is an object with an offset and one of value or hex", "[config][validate]") {
    const ConfigError number = rejection(with_validate(R"({"match": [7]})"));
    CHECK(number.path() == "frontends[0].validate.match[0]");
    CHECK_THAT(number.reason(), Contains("object") && Contains("got 7"));

    const ConfigError unknown =
        rejection(with_validate(R"({"match": [{"offset": 0, "value": "a", "bytes": "a"}]})"));
    CHECK(unknown.path() == "frontends[0].validate.match[0].bytes");
    CHECK_THAT(unknown.reason(), StartsWith(R"(unknown key "bytes")"));

    const ConfigError no_offset = rejection(with_validate(R"({"match": [{"value": "a"}]})"));
    CHECK(no_offset.path() == "frontends[0].validate.match[0]");
    CHECK(no_offset.reason() == R"(missing required key "offset")");

    const ConfigError neither = rejection(with_validate(R"({"match": [{"offset": 0}]})"));
    CHECK(neither.path() == "frontends[0].validate.match[0]");
    CHECK(neither.reason() == R"(missing required key "value" or "hex")");

    const ConfigError both =
        rejection(with_validate(R"({"match": [{"offset": 0, "hex": "61", "value": "a"}]})"));
    CHECK(both.path() == "frontends[0].validate.match[0].value");  // the second one written
    CHECK_THAT(both.reason(), Contains(R"("value" and "hex")") && Contains("one of them"));
}

TEST_CASE("a match offset is 0 to 1500", "[config][validate]") {
    const std::string offset = GENERATE(as<std::string>{}, "1501", "-1", "0.5", "\"0\"");
    CAPTURE(offset);
    const ConfigError error =
        rejection(with_validate(R"({"match": [{"offset": )" + offset + R"(, "value": "a"}]})"));
    CHECK(error.path() == "frontends[0].validate.match[0].offset");
    CHECK_THAT(error.reason(), Contains("from 0 to 1500") && Contains(got(offset)));
}

TEST_CASE("a match value is a non-empty string of at most 16 bytes", "[config][validate]") {
    const std::string value = GENERATE(as<std::string>{}, "\"\"", "7", "[97]");
    CAPTURE(value);
    const ConfigError bad =
        rejection(with_validate(R"({"match": [{"offset": 0, "value": )" + value + "}]}"));
    CHECK(bad.path() == "frontends[0].validate.match[0].value");
    CHECK_THAT(bad.reason(), Contains("non-empty string"));

    CHECK(parse_config(with_validate(R"({"match": [{"offset": 0, "value": "0123456789abcdef"}]})"))
              .frontends[0].validate->matches[0].value.size() == 16);
    const ConfigError long_value =
        rejection(with_validate(R"({"match": [{"offset": 0, "value": "0123456789abcdefg"}]})"));
    CHECK(long_value.path() == "frontends[0].validate.match[0].value");
    CHECK_THAT(long_value.reason(), Contains("17 bytes") && Contains("16"));

    const ConfigError long_hex = rejection(with_validate(
        R"({"match": [{"offset": 0, "hex": "000102030405060708090a0b0c0d0e0f10"}]})"));
    CHECK(long_hex.path() == "frontends[0].validate.match[0].hex");
    CHECK_THAT(long_hex.reason(), Contains("17 bytes") && Contains("16"));
}

TEST_CASE("hex is an even, non-empty run of hex digits", "[config][validate]") {
    SECTION("not hex") {
        const std::string hex = GENERATE(as<std::string>{}, "\"0x01\"", "\"01 02\"", "\"zz\"",
                                         "\" 01\"", "\"01\\n\"");
        CAPTURE(hex);
        const ConfigError error =
            rejection(with_validate(R"({"match": [{"offset": 0, "hex": )" + hex + "}]}"));
        CHECK(error.path() == "frontends[0].validate.match[0].hex");
        CHECK_THAT(error.reason(), Contains("hex digits only"));
    }
    SECTION("odd") {
        const ConfigError error = rejection(with_validate(R"({"match": [{"offset": 0, "hex": "010"}]})"));
        CHECK(error.path() == "frontends[0].validate.match[0].hex");
        CHECK(error.reason() == "odd number of hex digits (3): each byte takes two");
    }
    SECTION("empty") {
        const ConfigError error = rejection(with_validate(R"({"match": [{"offset": 0, "hex": ""}]})"));
        CHECK(error.path() == "frontends[0].validate.match[0].hex");
        CHECK_THAT(error.reason(), Contains("at least one byte"));
    }
    SECTION("not a string") {
        const ConfigError error = rejection(with_validate(R"({"match": [{"offset": 0, "hex": 1}]})"));
        CHECK(error.path() == "frontends[0].validate.match[0].hex");
        CHECK_THAT(error.reason(), Contains("string of hex digits") && Contains("got 1"));
    }
}

TEST_CASE("a mask is hex of the value's length", "[config][validate]") {
    const ConfigError short_mask =
        rejection(with_validate(R"({"match": [{"offset": 0, "hex": "0102", "mask": "ff"}]})"));
    CHECK(short_mask.path() == "frontends[0].validate.match[0].mask");
    CHECK(short_mask.reason() == R"(the mask is 1 byte long but the "hex" is 2 bytes)");

    const ConfigError long_mask =
        rejection(with_validate(R"({"match": [{"offset": 0, "mask": "ffff", "value": "a"}]})"));
    CHECK(long_mask.path() == "frontends[0].validate.match[0].mask");
    CHECK_THAT(long_mask.reason(), Contains("2 bytes") && Contains(R"("value" is 1 byte)"));

    const ConfigError not_hex =
        rejection(with_validate(R"({"match": [{"offset": 0, "value": "a", "mask": "fg"}]})"));
    CHECK(not_hex.path() == "frontends[0].validate.match[0].mask");
    CHECK_THAT(not_hex.reason(), Contains("hex digits only"));

    const Config masked =
        parse_config(with_validate(R"({"match": [{"offset": 0, "value": "ab", "mask": "dfdf"}]})"));
    CHECK(masked.frontends[0].validate->matches[0].mask == Bytes{0xdf, 0xdf});
}

TEST_CASE("a match must end within the first 1500 payload bytes", "[config][validate]") {
    CHECK(parse_config(with_validate(R"({"match": [{"offset": 1496, "value": "PMUX"}]})"))
              .frontends[0].validate->matches[0].offset == 1496);

    const ConfigError error =
        rejection(with_validate(R"({"match": [{"offset": 1497, "value": "PMUX"}]})"));
    CHECK(error.path() == "frontends[0].validate.match[0]");
    CHECK_THAT(error.reason(), Contains("1501") && Contains("1500"));
}

TEST_CASE("a match past max_length can never be satisfied", "[config][validate]") {
    const std::string block = GENERATE(
        as<std::string>{},
        R"({"max_length": 512, "match": [{"offset": 0, "value": "a"}, {"offset": 510, "value": "PMUX"}]})",
        R"({"match": [{"offset": 0, "value": "a"}, {"offset": 510, "value": "PMUX"}], "max_length": 512})");
    CAPTURE(block);
    const ConfigError error = rejection(with_validate(block));
    CHECK(error.path() == "frontends[0].validate.match[1]");
    CHECK_THAT(error.reason(), Contains("never match") && Contains("514 bytes") &&
                                   Contains("max_length is 512"));
}

TEST_CASE("errors inside a validate block come in document order", "[config][validate]") {
    const ConfigError error = rejection(
        with_validate(R"({"match": [{"offset": 0, "hex": "x"}], "min_length": -1})"));
    CHECK(error.path() == "frontends[0].validate.match[0].hex");
}

// ------------------------------------------------------------------ route

TEST_CASE("a route with text and hex tags", "[config][route]") {
    const Config config = parse_config(with_route(
        route(R"([{"tag": "600", "backend": 5001}, {"hex": "363031", "backend": 5002}])")));
    REQUIRE(config.frontends.size() == 1);
    const Frontend& routed = config.frontends[0];
    REQUIRE(routed.route);
    CHECK(routed.route->offset == 20);
    CHECK(routed.route->length == 3);
    CHECK(routed.route->unknown == UnknownTagAction::drop);
    CHECK(routed.route->tags == std::vector<RouteTag>{{bytes("600"), 5001}, {bytes("601"), 5002}});
    // Both targets were not listed: they follow with weight 0.
    CHECK(routed.backends == std::vector<Backend>{{5001, 0}, {5002, 0}});
}

TEST_CASE("route targets not listed are appended with weight 0, once", "[config][route]") {
    const Config config = parse_config(with_route(
        route(R"([{"tag": "aaa", "backend": 5003}, {"tag": "bbb", "backend": 9002},
                  {"tag": "ccc", "backend": 5003}, {"tag": "ddd", "backend": 5004}])",
              R"("unknown": "round-robin", )"),
        R"([9001, {"port": 9002, "weight": 5}])"));
    const Frontend& routed = config.frontends[0];
    CHECK(routed.route->unknown == UnknownTagAction::round_robin);
    // Listed ones keep their place and weight; targets follow in tag order.
    CHECK(routed.backends ==
          std::vector<Backend>{{9001, 1}, {9002, 5}, {5003, 0}, {5004, 0}});
}

TEST_CASE("a route may come before the backends and with a validate block", "[config][route]") {
    const Config config = parse_config(frontend(
        R"("route": {"tags": [{"backend": 5001, "tag": "600"}], "unknown": "drop", "length": 3, "offset": 20},
           "validate": {"min_length": 23, "max_length": 23},
           "backends": [])"));
    const Frontend& routed = config.frontends[0];
    REQUIRE(routed.validate);
    REQUIRE(routed.route);
    CHECK(routed.backends == std::vector<Backend>{{5001, 0}});
}

TEST_CASE("empty backends need a route that drops unknown tags", "[config][route]") {
    const ConfigError no_route = rejection(frontend(R"("backends": [])"));
    CHECK(no_route.path() == "frontends[0].backends");
    CHECK_THAT(no_route.reason(), StartsWith("must list at least one backend"));

    const ConfigError round_robin = rejection(with_route(
        route(R"([{"tag": "600", "backend": 5001}])", R"("unknown": "round-robin", )")));
    CHECK(round_robin.path() == "frontends[0].backends");
    CHECK_THAT(round_robin.reason(),
               Contains("at least one backend") && Contains("round robin") && Contains("needs backends"));
}

TEST_CASE("route must be an object with offset, length and tags", "[config][route]") {
    const ConfigError array = rejection(with_route("[]"));
    CHECK(array.path() == "frontends[0].route");
    CHECK_THAT(array.reason(), Contains("object") && Contains("got an array"));

    const auto [missing, block] = GENERATE(table<std::string, std::string>({
        {"offset", R"({"length": 3, "tags": [{"tag": "600", "backend": 5001}]})"},
        {"length", R"({"offset": 20, "tags": [{"tag": "600", "backend": 5001}]})"},
        {"tags", R"({"offset": 20, "length": 3})"},
    }));
    CAPTURE(block);
    const ConfigError error = rejection(with_route(block));
    CHECK(error.path() == "frontends[0].route");
    CHECK(error.reason() == R"(missing required key ")" + missing + "\"");

    const ConfigError unknown =
        rejection(with_route(route(R"([{"tag": "600", "backend": 5001}])", R"("default": 5001, )")));
    CHECK(unknown.path() == "frontends[0].route.default");
    CHECK(unknown.reason() ==
          R"(unknown key "default" (expected "offset", "length", "tags" or "unknown"))");
}

TEST_CASE("route offset is 0 to 1500 and length 1 to 16", "[config][route]") {
    const std::string offset = GENERATE(as<std::string>{}, "1501", "-1", "\"20\"");
    CAPTURE(offset);
    const ConfigError bad_offset = rejection(with_route(
        R"({"offset": )" + offset + R"(, "length": 1, "tags": [{"tag": "a", "backend": 5001}]})"));
    CHECK(bad_offset.path() == "frontends[0].route.offset");
    CHECK_THAT(bad_offset.reason(), Contains("from 0 to 1500") && Contains(got(offset)));

    const std::string length = GENERATE(as<std::string>{}, "0", "17", "3.0");
    CAPTURE(length);
    const ConfigError bad_length = rejection(with_route(
        R"({"offset": 0, "length": )" + length + R"(, "tags": [{"tag": "a", "backend": 5001}]})"));
    CHECK(bad_length.path() == "frontends[0].route.length");
    CHECK_THAT(bad_length.reason(), Contains("tag length") && Contains("from 1 to 16") &&
                                        Contains(got(length)));
}

TEST_CASE("a route tag must end within the first 1500 payload bytes", "[config][route]") {
    const Config fits = parse_config(with_route(
        R"({"offset": 1484, "length": 16, "tags": [{"tag": "0123456789abcdef", "backend": 5001}]})"));
    CHECK(fits.frontends[0].route->offset == 1484);

    const ConfigError error = rejection(with_route(
        R"({"offset": 1485, "length": 16, "tags": [{"tag": "0123456789abcdef", "backend": 5001}]})"));
    CHECK(error.path() == "frontends[0].route");
    CHECK_THAT(error.reason(), Contains("1485") && Contains("16") && Contains("1501") &&
                                   Contains("1500"));
}

TEST_CASE("a route tag past validate's max_length could never be read", "[config][route]") {
    const ConfigError error = rejection(frontend(
        R"("backends": [], "validate": {"max_length": 22},
           "route": {"offset": 20, "length": 3, "tags": [{"tag": "600", "backend": 5001}]})"));
    CHECK(error.path() == "frontends[0].route");
    CHECK_THAT(error.reason(), Contains("never be read") && Contains("23 bytes") &&
                                   Contains("max_length is 22"));
}

TEST_CASE("unknown is drop or round-robin", "[config][route]") {
    const ConfigError unknown = rejection(
        with_route(route(R"([{"tag": "600", "backend": 5001}])", R"("unknown": "rr", )"), "[9001]"));
    CHECK(unknown.path() == "frontends[0].route.unknown");
    CHECK(unknown.reason() == R"(unknown action "rr" (expected "drop" or "round-robin"))");

    const ConfigError number = rejection(
        with_route(route(R"([{"tag": "600", "backend": 5001}])", R"("unknown": 0, )"), "[9001]"));
    CHECK(number.path() == "frontends[0].route.unknown");
    CHECK(number.reason() == R"(expected "drop" or "round-robin", got 0)");
}

TEST_CASE("tags is a non-empty array", "[config][route]") {
    const ConfigError empty = rejection(with_route(route("[]")));
    CHECK(empty.path() == "frontends[0].route.tags");
    CHECK(empty.reason() == "must list at least one tag");

    const ConfigError object = rejection(with_route(route(R"({"tag": "600", "backend": 5001})")));
    CHECK(object.path() == "frontends[0].route.tags");
    CHECK_THAT(object.reason(), Contains("array") && Contains("got an object"));
}

TEST_CASE("each tag is an object with one of tag or hex, and a backend", "[config][route]") {
    const ConfigError text = rejection(with_route(route(R"(["600"])")));
    CHECK(text.path() == "frontends[0].route.tags[0]");
    CHECK_THAT(text.reason(), Contains("object") && Contains(R"(got the string "600")"));

    const ConfigError unknown =
        rejection(with_route(route(R"([{"tag": "600", "backend": 5001, "weight": 2}])")));
    CHECK(unknown.path() == "frontends[0].route.tags[0].weight");
    CHECK(unknown.reason() == R"(unknown key "weight" (expected "tag", "hex" or "backend"))");

    const ConfigError neither = rejection(with_route(route(R"([{"backend": 5001}])")));
    CHECK(neither.path() == "frontends[0].route.tags[0]");
    CHECK(neither.reason() == R"(missing required key "tag" or "hex")");

    const ConfigError both =
        rejection(with_route(route(R"([{"hex": "363030", "tag": "600", "backend": 5001}])")));
    CHECK(both.path() == "frontends[0].route.tags[0].tag");
    CHECK_THAT(both.reason(), Contains("cannot both be given"));

    const ConfigError no_backend = rejection(with_route(route(R"([{"tag": "600"}])")));
    CHECK(no_backend.path() == "frontends[0].route.tags[0]");
    CHECK(no_backend.reason() == R"(missing required key "backend")");

    const ConfigError bad_backend =
        rejection(with_route(route(R"([{"tag": "600", "backend": 0}])")));
    CHECK(bad_backend.path() == "frontends[0].route.tags[0].backend");
    CHECK_THAT(bad_backend.reason(), Contains("from 1 to 65535") && Contains("got 0"));

    const ConfigError empty_tag = rejection(with_route(route(R"([{"tag": "", "backend": 5001}])")));
    CHECK(empty_tag.path() == "frontends[0].route.tags[0].tag");
    CHECK_THAT(empty_tag.reason(), Contains("non-empty string"));

    const ConfigError bad_hex = rejection(with_route(route(R"([{"hex": "36303", "backend": 5001}])")));
    CHECK(bad_hex.path() == "frontends[0].route.tags[0].hex");
    CHECK_THAT(bad_hex.reason(), Contains("odd number of hex digits"));
}

TEST_CASE("every tag is as long as the route's length", "[config][route]") {
    const ConfigError longer = rejection(with_route(
        route(R"([{"tag": "600", "backend": 5001}, {"tag": "6010", "backend": 5002}])")));
    CHECK(longer.path() == "frontends[0].route.tags[1]");
    CHECK(longer.reason() == R"(tag "6010" is 4 bytes long but the route's length is 3)");

    const ConfigError shorter =
        rejection(with_route(route(R"([{"hex": "00ff", "backend": 5001}])")));
    CHECK(shorter.path() == "frontends[0].route.tags[0]");
    CHECK(shorter.reason() == R"(tag hex "00ff" is 2 bytes long but the route's length is 3)");
}

TEST_CASE("a tag listed twice names the first, whichever way it is written", "[config][route]") {
    const ConfigError error = rejection(with_route(route(
        R"([{"tag": "600", "backend": 5001}, {"tag": "601", "backend": 5002},
            {"hex": "363030", "backend": 5003}])")));
    CHECK(error.path() == "frontends[0].route.tags[2]");
    CHECK(error.reason() == R"(duplicate tag "600" (already listed at frontends[0].route.tags[0]))");
}

TEST_CASE("several tags may share a backend", "[config][route]") {
    const Config config = parse_config(with_route(
        route(R"([{"tag": "600", "backend": 5001}, {"tag": "601", "backend": 5001}])")));
    CHECK(config.frontends[0].route->tags.size() == 2);
    CHECK(config.frontends[0].backends == std::vector<Backend>{{5001, 0}});
}

TEST_CASE("a tag's backend is not the frontend's own port", "[config][route]") {
    const ConfigError error = rejection(with_route(
        route(R"([{"tag": "600", "backend": 5001}, {"tag": "601", "backend": 9000}])")));
    CHECK(error.path() == "frontends[0].route.tags[1].backend");
    CHECK(error.reason() == "backend 9000 is the frontend's own port");
}

TEST_CASE("a tag's backend is not another UDP frontend", "[config][route]") {
    const ConfigError error = rejection(R"({"frontends": [
        {"port": 9000, "backends": [],
         "route": {"offset": 0, "length": 1, "tags": [{"tag": "a", "backend": 5001},
                                                      {"tag": "b", "backend": 7000}]}},
        {"port": 7000, "backends": [7001]}
    ]})");
    CHECK(error.path() == "frontends[0].route.tags[1].backend");
    CHECK_THAT(error.reason(), Contains("backend 7000 is itself a udp frontend") &&
                               Contains("frontends[1]"));

    // A TCP frontend on that port is another service.
    const Config config = parse_config(R"({"frontends": [
        {"port": 9000, "backends": [],
         "route": {"offset": 0, "length": 1, "tags": [{"tag": "a", "backend": 7000}]}},
        {"port": 7000, "protocol": "tcp", "backends": [7001]}
    ]})");
    CHECK(config.frontends[0].backends == std::vector<Backend>{{7000, 0}});
}

TEST_CASE("listed backends and route targets together are at most 64", "[config][route]") {
    // 62 listed + 2 targets = 64: fine; a third target is the 65th.
    std::string listed = "[";
    for (int i = 0; i < PORTMUX_MAX_BACKENDS - 2; ++i) {
        listed += (i > 0 ? ", " : "") + std::to_string(10000 + i);
    }
    listed += "]";
    const std::string two = R"({"tag": "a", "backend": 5001}, {"tag": "b", "backend": 10000}, {"tag": "c", "backend": 5002})";
    const Config full = parse_config(with_route(
        R"({"offset": 0, "length": 1, "tags": [)" + two + "]}", listed));
    CHECK(full.frontends[0].backends.size() == PORTMUX_MAX_BACKENDS);
    CHECK(full.frontends[0].backends.back() == Backend{5002, 0});

    const ConfigError error = rejection(with_route(
        R"({"offset": 0, "length": 1, "tags": [)" + two + R"(, {"tag": "d", "backend": 5003}]})",
        listed));
    CHECK(error.path() == "frontends[0].route.tags[3].backend");
    CHECK_THAT(error.reason(), Contains("5003") && Contains("65") && Contains("at most 64"));
}

TEST_CASE("the routes map holds 65536 tags in all frontends together", "[config][route]") {
    // Every 2-byte tag on one frontend fills the map; one more anywhere is too many.
    std::string tags;
    for (int value = 0; value < 65536; ++value) {
        tags += fmt_hex_tag(value, 5001 + value % 8) + (value + 1 < 65536 ? "," : "");
    }
    const std::string full = R"({"port": 9000, "backends": [],
        "route": {"offset": 0, "length": 2, "tags": [)" + tags + "]}}";
    const Config config = parse_config(R"({"frontends": [)" + full + "]}");
    CHECK(config.frontends[0].route->tags.size() == 65536);
    CHECK(config.frontends[0].backends.size() == 8);

    const ConfigError error = rejection(R"({"frontends": [)" + full + R"(,
        {"port": 7000, "backends": [],
         "route": {"offset": 0, "length": 1, "tags": [{"tag": "a", "backend": 7001}]}}]})");
    CHECK(error.path() == "frontends[1].route.tags[0]");
    CHECK_THAT(error.reason(), Contains("too many route tags") && Contains("65536"));
}

TEST_CASE("the example of the config format parses as documented", "[config]") {
    const Config config = parse_config(R"({
      "flow_table_size": 65536,
      "frontends": [
        { "port": 9875, "protocol": "udp", "backends": [9876, {"port": 9877, "weight": 3}] },
        { "port": 9880, "protocol": "udp", "affinity": "flow", "flow_idle_timeout": 30, "backends": [9881, 9882] },
        { "port": 8080, "protocol": "tcp", "backends": [8081, 8082, 8083] },
        { "port": 7000, "protocol": "udp",
          "validate": { "min_length": 24, "max_length": 512,
                        "match": [ { "offset": 0, "value": "PMUX" },
                                   { "offset": 4, "hex": "0102", "mask": "ff0f" } ] },
          "route": { "offset": 20, "length": 3, "unknown": "drop",
                     "tags": [ { "tag": "600", "backend": 5001 }, { "hex": "363031", "backend": 5002 } ] },
          "backends": [] }
      ]
    })");
    REQUIRE(config.frontends.size() == 4);
    CHECK(config.flow_table_size == 65536);
    CHECK(config.frontends[0].backends == std::vector<Backend>{{9876, 1}, {9877, 3}});
    CHECK(config.frontends[1].affinity == Affinity::flow);
    CHECK(config.frontends[1].flow_idle_seconds == 30);
    CHECK(config.frontends[2].protocol == Protocol::tcp);
    CHECK(config.frontends[3].backends == std::vector<Backend>{{5001, 0}, {5002, 0}});
    CHECK(config.frontends[3].validate->matches.size() == 2);
    CHECK(config.frontends[3].route->tags.size() == 2);
}

// ------------------------------------------------------------------ shipped examples

#ifdef PORTMUX_SOURCE_DIR
namespace {
Config example(const char* name) {
    return portmux::load_config(std::filesystem::path(PORTMUX_SOURCE_DIR) / "examples" / name);
}
}  // namespace

TEST_CASE("examples/udp-weighted.json", "[config][file]") {
    const Config config = example("udp-weighted.json");
    REQUIRE(config.frontends.size() == 1);
    CHECK(config.frontends[0].protocol == Protocol::udp);
    CHECK(config.frontends[0].backends.size() >= 2);
    CHECK(std::any_of(config.frontends[0].backends.begin(), config.frontends[0].backends.end(),
                      [](const Backend& backend) { return backend.weight > 1; }));
}

TEST_CASE("examples/udp-flow-affinity.json", "[config][file]") {
    const Config config = example("udp-flow-affinity.json");
    REQUIRE(config.frontends.size() == 1);
    CHECK(config.frontends[0].affinity == Affinity::flow);
}

TEST_CASE("examples/tcp-roundrobin.json", "[config][file]") {
    const Config config = example("tcp-roundrobin.json");
    REQUIRE(config.frontends.size() == 1);
    CHECK(config.frontends[0].port == 8080);
    CHECK(config.frontends[0].protocol == Protocol::tcp);
    CHECK(config.frontends[0].backends == std::vector<Backend>{8081, 8082, 8083});
}

TEST_CASE("examples/tcp-first-bytes.json", "[config][file]") {
    const Config config = example("tcp-first-bytes.json");
    REQUIRE(config.frontends.size() == 2);
    const Frontend& routed = config.frontends[0];
    CHECK(routed.protocol == Protocol::tcp);
    CHECK(portmux::stream_frontend(routed));
    CHECK(routed.first_data_timeout_seconds == 2);
    REQUIRE(routed.validate);
    CHECK(routed.validate->min_payload == 24);
    REQUIRE(routed.route);
    CHECK(routed.route->tags ==
          std::vector<RouteTag>{{bytes("aaa"), 5001}, {bytes("bbb"), 5002}, {bytes("ccc"), 5003}});
    const Frontend& proxied = config.frontends[1];
    CHECK(portmux::stream_frontend(proxied));
    CHECK(proxied.proxy_protocol_v2);
    CHECK(proxied.first_data_timeout_seconds == 5);
    // Neither is installed in the XDP data path.
    CHECK(portmux::xdp_frontends(config).frontends.empty());
}

TEST_CASE("examples/udp-tag-routing.json", "[config][file]") {
    const Config config = example("udp-tag-routing.json");
    REQUIRE(config.frontends.size() == 1);
    const Frontend& routed = config.frontends[0];
    CHECK(routed.port == 7000);
    CHECK(routed.protocol == Protocol::udp);
    REQUIRE(routed.validate);
    CHECK(routed.validate->min_payload == 23);
    CHECK(routed.validate->max_payload == 512);
    REQUIRE(routed.route);
    CHECK(routed.route->offset == 20);
    CHECK(routed.route->length == 3);
    CHECK(routed.route->unknown == UnknownTagAction::drop);
    CHECK(routed.route->tags ==
          std::vector<RouteTag>{{bytes("600"), 5001}, {bytes("601"), 5002}, {bytes("602"), 5003}});
    CHECK(routed.backends == std::vector<Backend>{{5001, 0}, {5002, 0}, {5003, 0}});
}

TEST_CASE("examples/udp-validate-magic.json", "[config][file]") {
    const Config config = example("udp-validate-magic.json");
    REQUIRE(config.frontends.size() == 1);
    const Frontend& checked = config.frontends[0];
    CHECK(checked.backends == std::vector<Backend>{9876, 9877, 9878});
    REQUIRE(checked.validate);
    CHECK(checked.validate->min_payload == 8);
    CHECK(checked.validate->max_payload == 1024);
    CHECK(checked.validate->matches == std::vector<ByteMatch>{{0, bytes("PMUX"), {}}});
}
#endif

TEST_CASE("reply_translation: UDP may turn it off, TCP may not", "[config][replies]") {
    const Config config = parse_config(
        R"({"frontends": [{"port": 514, "reply_translation": false, "backends": [5140, 5141]}]})");
    CHECK_FALSE(config.frontends[0].reply_translation);
    CHECK(parse_config(R"({"frontends": [{"port": 514, "backends": [5140]}]})")
              .frontends[0]
              .reply_translation);
    try {
        parse_config(R"({"frontends": [{"port": 514, "reply_translation": "no", "backends": [5140]}]})");
        FAIL("a string was accepted");
    } catch (const ConfigError& e) {
        CHECK(e.path() == "frontends[0].reply_translation");
        CHECK_THAT(e.reason(), Catch::Contains("true or false"));
    }
    try {
        parse_config(R"({"frontends": [{"port": 80, "protocol": "tcp", "reply_translation": false,
                                        "backends": [8080]}]})");
        FAIL("TCP without replies was accepted");
    } catch (const ConfigError& e) {
        CHECK(e.path() == "frontends[0].reply_translation");
        CHECK_THAT(e.reason(), Catch::Contains("TCP"));
    }
}
