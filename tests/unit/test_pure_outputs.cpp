// The loader's pure functions, without root or a kernel: the round-robin
// order, the frontend map value, the Prometheus text, the rates table, the
// status table, and `status --json` read back as a config (a round trip).
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <string>
#include <vector>

#include "attachment.hpp"
#include "config.hpp"
#include "maps.hpp"
#include "stats.hpp"
#include "status_report.hpp"

namespace {

using Catch::Matchers::Contains;
using portmux::Backend;
using portmux::Config;
using portmux::FrontendStats;
using portmux::InterfaceStats;
using portmux::InterfaceStatus;

std::vector<std::uint16_t> ports_in_order(const std::vector<Backend>& backends) {
    std::vector<std::uint16_t> ports;
    for (const std::uint8_t index : portmux::round_robin_order(backends)) {
        ports.push_back(backends.at(index).port);
    }
    return ports;
}

FrontendStats sample_stats(std::uint64_t scale) {
    FrontendStats stats;
    stats.port = 9875;
    stats.protocol = portmux::Protocol::udp;
    stats.received = 10 * scale;
    stats.backends = {{9876, 4 * scale, 400 * scale}, {9877, 5 * scale, 500 * scale}};
    stats.drops[0] = 1 * scale;  // too_short
    return stats;
}

// A config using every feature status shows.
constexpr const char* kRichConfig = R"({
  "flow_table_size": 4096,
  "frontends": [
    { "port": 9875, "backends": [9876, { "port": 9877, "weight": 3 }] },
    { "port": 9885, "affinity": "flow", "flow_idle_timeout": 7, "reply_translation": false,
      "backends": [9886, 9887] },
    { "port": 8080, "protocol": "tcp", "backends": [8081, 8082] },
    { "port": 7000, "validate": { "min_length": 23, "max_length": 512,
                                  "match": [ { "offset": 0, "value": "PM" },
                                             { "offset": 4, "hex": "0a0b", "mask": "ff0f" } ] },
      "route": { "offset": 20, "length": 3, "unknown": "round-robin",
                 "tags": [ { "tag": "600", "backend": 5001 }, { "hex": "000102", "backend": 5002 } ] },
      "backends": [5001, 5003] }
  ]
})";

InterfaceStatus status_of(const Config& config, const std::string& iface) {
    InterfaceStatus status;
    status.iface = iface;
    status.program_attached = true;
    status.mode = "generic";
    status.attachment = "bpf_link";
    status.program_id = 42;
    status.tc_attached = true;
    status.tc_program_id = 43;
    status.tc_attachment = "tcx link";
    status.frontends = config.frontends;
    status.flow_table_size = config.flow_table_size;
    return status;
}

}  // namespace

TEST_CASE("round_robin_order: weights, smooth spreading, drained and route-only backends",
          "[pure][maps]") {
    CHECK(ports_in_order({Backend(1), Backend(2), Backend(3)}) ==
          std::vector<std::uint16_t>{1, 2, 3});
    CHECK(ports_in_order({Backend(1, 3), Backend(2, 1)}) == std::vector<std::uint16_t>{1, 1, 2, 1});
    Backend drained(2, 5);
    drained.drained = true;
    CHECK(ports_in_order({Backend(1, 2), drained, Backend(3)}) == std::vector<std::uint16_t>{1, 3, 1});
    CHECK(ports_in_order({Backend(1), Backend(9, 0)}) == std::vector<std::uint16_t>{1});
    CHECK(portmux::round_robin_order({Backend(7, 0)}).empty());
}

TEST_CASE("encode_frontend: slot, ports in network order, drained bits", "[pure][maps]") {
    portmux::Frontend frontend;
    frontend.port = 9875;
    frontend.backends = {Backend(9876), Backend(9877, 2), Backend(9878)};
    frontend.backends[2].drained = true;
    const portmux_frontend value = portmux::encode_frontend(frontend, 5);
    CHECK(value.slot == 5);
    CHECK(value.backend_count == 3);
    CHECK(value.backends[0] == htons(9876));
    CHECK(value.backends[1] == htons(9877));
    CHECK(value.backends[2] == htons(9878));
    CHECK(value.drained_mask == 0b100);
    // A different backend set is a different generation, the same one is not.
    portmux::Frontend other = frontend;
    CHECK(portmux::encode_frontend(other, 9).generation == value.generation);
    other.backends[0].port = 9999;
    CHECK(portmux::encode_frontend(other, 5).generation != value.generation);
}

TEST_CASE("stats_prometheus: exact exposition text, labels escaped", "[pure][stats]") {
    const std::string text = portmux::stats_prometheus({{"lo", {sample_stats(1)}}});
    CHECK_THAT(text, Contains("# TYPE portmux_received_packets_total counter\n"
                              "portmux_received_packets_total{iface=\"lo\",frontend=\"9875\","
                              "protocol=\"udp\"} 10\n"));
    CHECK_THAT(text, Contains("portmux_forwarded_packets_total{iface=\"lo\",frontend=\"9875\","
                              "protocol=\"udp\",backend=\"9877\"} 5\n"));
    CHECK_THAT(text, Contains("portmux_forwarded_bytes_total{iface=\"lo\",frontend=\"9875\","
                              "protocol=\"udp\",backend=\"9876\"} 400\n"));
    CHECK_THAT(text, Contains("portmux_dropped_packets_total{iface=\"lo\",frontend=\"9875\","
                              "protocol=\"udp\",reason=\"too_short\"} 1\n"));
    const std::string odd = portmux::stats_prometheus({{"a\"b\\c\nd", {sample_stats(1)}}});
    CHECK_THAT(odd, Contains("iface=\"a\\\"b\\\\c\\nd\""));
}

TEST_CASE("rates_table: per-second rates between two readings", "[pure][stats]") {
    const std::vector<InterfaceStats> before{{"lo", {sample_stats(1)}}};
    const std::vector<InterfaceStats> after{{"lo", {sample_stats(3)}}};
    const std::string table = portmux::rates_table(before, after, 2.0);
    // forwarded 9 -> 27 packets in 2 s: 9 p/s; backend 9877 5 -> 15: 5 p/s,
    // 500 -> 1500 bytes: 4000 b/s; too_short 1 -> 3: 1 p/s.
    CHECK_THAT(table, Contains("9.0 p/s"));
    CHECK_THAT(table, Contains("5.0 p/s"));
    CHECK_THAT(table, Contains("4.0 kb/s"));
    CHECK_THAT(table, Contains("too_short"));
    CHECK_THAT(table, Contains("1.0 p/s"));
    // A frontend that appeared since the first reading counts from zero.
    const std::string fresh = portmux::rates_table({}, after, 3.0);
    CHECK_THAT(fresh, Contains("9.0 p/s"));  // 27 forwarded in 3 s
}

TEST_CASE("status_table: what an operator reads", "[pure][status]") {
    Config config = portmux::parse_config(
        R"({"frontends": [{"port": 9875, "backends": [9876, {"port": 9877, "weight": 3}]}]})");
    config.frontends[0].backends[0].drained = true;
    const std::string table = portmux::status_table({status_of(config, "lo")});
    CHECK(table ==
          "lo: XDP attached, generic mode, bpf_link attachment, program id 42\n"
          "  TC egress reply translation attached (tcx link), program id 43\n"
          "  FRONTEND   PROTO  BACKENDS\n"
          "  9875       udp    9876 (drained), 9877 (weight 3)\n");
    CHECK(portmux::status_table({}) == "portmux is not attached to any interface\n");
    InterfaceStatus gone = status_of(config, "eth9");
    gone.program_attached = false;
    CHECK_THAT(portmux::status_table({gone}), Contains("pins present but no portmux XDP program"));
}

TEST_CASE("status --json reads back as the same config", "[pure][status][json]") {
    const Config original = portmux::parse_config(kRichConfig);
    const nlohmann::json status = portmux::status_json({status_of(original, "lo")});
    const Config again = portmux::parse_config(status.dump());
    CHECK(again.flow_table_size == 4096);
    CHECK(portmux::status_json({status_of(again, "lo")}) == status);

    SECTION("drained backends come back undrained: drain is runtime state") {
        Config drained = original;
        drained.frontends[0].backends[1].drained = true;
        const Config read = portmux::parse_config(portmux::status_json({status_of(drained, "lo")}).dump());
        CHECK_FALSE(read.frontends[0].backends[1].drained);
    }
    SECTION("of several interfaces, the one named") {
        Config other = portmux::parse_config(R"({"frontends": [{"port": 1, "backends": [2]}]})");
        const std::string both =
            portmux::status_json({status_of(other, "eth0"), status_of(original, "lo")}).dump();
        CHECK(portmux::parse_config(both, "lo").frontends.size() == 4);
        CHECK(portmux::parse_config(both, "eth0").frontends.size() == 1);
        try {
            (void)portmux::parse_config(both);
            FAIL("a status of two interfaces was accepted without a name");
        } catch (const portmux::ConfigError& error) {
            CHECK(error.path() == "interfaces");
            CHECK_THAT(error.reason(), Contains("2 interfaces"));
        }
    }
    SECTION("errors name the status document's paths") {
        nlohmann::json broken = status;
        broken["interfaces"][0]["frontends"][2]["backends"][1]["port"] = 0;
        try {
            (void)portmux::parse_config(broken.dump());
            FAIL("a broken status document was accepted");
        } catch (const portmux::ConfigError& error) {
            CHECK(error.path() == "interfaces[0].frontends[2].backends[1].port");
        }
    }
}
