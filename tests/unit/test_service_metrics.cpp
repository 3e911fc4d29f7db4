// Tests of what `portmux run` serves on /metrics (loader/service_metrics.cpp)
// and of apply_liveness, from snapshots built here: no maps, no root.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "liveness.hpp"
#include "service_metrics.hpp"

namespace {

using Catch::Matchers::Contains;
using portmux::Backend;
using portmux::Protocol;

portmux::MetricsSnapshot two_backend_snapshot() {
    portmux::MetricsSnapshot snapshot;
    snapshot.iface = "eth0";
    snapshot.version = "1.2.3";
    snapshot.attached = true;
    snapshot.mode = "native";
    snapshot.attachment = "legacy (single program)";
    portmux::Frontend frontend;
    frontend.port = 9000;
    frontend.protocol = Protocol::udp;
    Backend up(9001, 3);
    Backend down(9002, 1);
    down.up_v4 = false;
    down.drained = true;
    frontend.backends = {up, down};
    snapshot.frontends.push_back({frontend, 0, {}});
    portmux::FrontendStats stats;
    stats.port = 9000;
    stats.protocol = Protocol::udp;
    stats.received = 10;
    stats.backends = {{9001, 7, 700}, {9002, 3, 300}};
    snapshot.stats.push_back(stats);
    snapshot.flows = portmux::TableFill{12, 65536};
    snapshot.direct_clients = portmux::TableFill{5, 65536};
    snapshot.counters.reloads = 4;
    snapshot.counters.reload_failures = 1;
    snapshot.counters.last_reload_ok = false;
    snapshot.counters.last_reload_success = 1700000000.5;
    return snapshot;
}

}  // namespace

TEST_CASE("metrics: the stats counters plus the service's own state") {
    const std::string text = portmux::render_metrics(two_backend_snapshot());
    const char* labels = "iface=\"eth0\",frontend=\"9000\",protocol=\"udp\"";
    CHECK_THAT(text, Contains(std::string("portmux_received_packets_total{") + labels + "} 10\n"));
    CHECK_THAT(text, Contains(std::string("portmux_forwarded_packets_total{") + labels +
                              ",backend=\"9002\"} 3\n"));
    CHECK_THAT(text, Contains("portmux_attached{iface=\"eth0\",mode=\"native\",attachment=\"legacy "
                              "(single program)\"} 1\n"));
    CHECK_THAT(text, Contains(std::string("portmux_backend_up{") + labels +
                              ",backend=\"9001\",family=\"ipv4\"} 1\n"));
    CHECK_THAT(text, Contains(std::string("portmux_backend_up{") + labels +
                              ",backend=\"9002\",family=\"ipv4\"} 0\n"));
    CHECK_THAT(text, Contains(std::string("portmux_backend_up{") + labels +
                              ",backend=\"9002\",family=\"ipv6\"} 1\n"));
    CHECK_THAT(text, Contains(std::string("portmux_backend_drained{") + labels +
                              ",backend=\"9002\"} 1\n"));
    CHECK_THAT(text, Contains(std::string("portmux_backend_drained{") + labels +
                              ",backend=\"9001\"} 0\n"));
    CHECK_THAT(text, Contains(std::string("portmux_backend_weight{") + labels +
                              ",backend=\"9001\"} 3\n"));
    CHECK_THAT(text, Contains("portmux_table_entries{iface=\"eth0\",table=\"flows\"} 12\n"));
    CHECK_THAT(text, Contains("portmux_table_capacity{iface=\"eth0\",table=\"direct_clients\"} 65536\n"));
    CHECK_THAT(text, Contains("portmux_reloads_total{iface=\"eth0\"} 4\n"));
    CHECK_THAT(text, Contains("portmux_reload_failures_total{iface=\"eth0\"} 1\n"));
    CHECK_THAT(text, Contains("portmux_last_reload_successful{iface=\"eth0\"} 0\n"));
    CHECK_THAT(text, Contains(
                         "portmux_last_reload_success_timestamp_seconds{iface=\"eth0\"} 1700000000.500\n"));
    CHECK_THAT(text, Contains("portmux_build_info{version=\"1.2.3\"} 1\n"));
}

TEST_CASE("metrics: every family has one HELP and one TYPE line, before its samples") {
    const std::string text = portmux::render_metrics(two_backend_snapshot());
    std::istringstream lines(text);
    std::string line;
    std::map<std::string, int> helps;
    std::set<std::string> typed;
    while (std::getline(lines, line)) {
        if (line.rfind("# HELP ", 0) == 0) {
            ++helps[line.substr(7, line.find(' ', 7) - 7)];
        } else if (line.rfind("# TYPE ", 0) == 0) {
            typed.insert(line.substr(7, line.find(' ', 7) - 7));
        } else {
            const std::string name = line.substr(0, line.find('{'));
            INFO(line);
            CHECK(typed.contains(name));
        }
    }
    for (const auto& [name, count] : helps) {
        INFO(name);
        CHECK(count == 1);
    }
}

TEST_CASE("metrics: label values are escaped; unknown table fill is left out") {
    portmux::MetricsSnapshot snapshot = two_backend_snapshot();
    snapshot.iface = "we\"ird\\";
    snapshot.flows.reset();
    snapshot.direct_clients.reset();
    snapshot.attached = false;
    const std::string text = portmux::render_metrics(snapshot);
    CHECK_THAT(text, Contains("portmux_attached{iface=\"we\\\"ird\\\\\",mode=\"native\""));
    CHECK_THAT(text, !Contains("portmux_table_entries{"));
}

TEST_CASE("metrics: 1,000 frontends x 3 backends render in well under the scrape budget") {
    portmux::MetricsSnapshot snapshot = two_backend_snapshot();
    snapshot.frontends.clear();
    snapshot.stats.clear();
    for (std::uint16_t port = 10000; port < 11000; ++port) {
        portmux::Frontend frontend;
        frontend.port = port;
        frontend.backends = {Backend(20001), Backend(20002), Backend(20003)};
        snapshot.frontends.push_back({frontend, 0, {}});
        portmux::FrontendStats stats;
        stats.port = port;
        stats.backends = {{20001, 1, 1}, {20002, 2, 2}, {20003, 3, 3}};
        snapshot.stats.push_back(stats);
    }
    const std::string text = portmux::render_metrics(snapshot);
    // 1,000 received + 2 x 3,000 forwarded + one drop sample per reason
    // (PORTMUX_DROP_REASONS) per frontend + 6,000 up + 3,000 drained + 3,000
    // weight samples.
    std::size_t samples = 0;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        samples += !line.empty() && line[0] != '#';
    }
    CHECK(samples == 1000 + 6000 + 1000 * PORTMUX_DROP_REASONS + 6000 + 3000 + 3000 + 1 + 2 + 2 + 4 + 1);
}

TEST_CASE("apply_liveness sets both families of the backends the table knows") {
    portmux::Config config;
    portmux::Frontend udp;
    udp.port = 9000;
    udp.backends = {Backend(9001), Backend(9002)};
    portmux::Frontend tcp;
    tcp.port = 9000;
    tcp.protocol = Protocol::tcp;
    tcp.backends = {Backend(9001)};
    config.frontends = {udp, tcp};
    const portmux::LivenessTable table{{{Protocol::udp, 9001}, {false, true}},
                                       {{Protocol::tcp, 9001}, {true, true}}};
    CHECK(portmux::apply_liveness(config, table) == 1);
    CHECK_FALSE(config.frontends[0].backends[0].up_v4);
    CHECK(config.frontends[0].backends[0].up_v6);
    CHECK(config.frontends[0].backends[1].up_v4);  // not in the table: unchanged
    CHECK(config.frontends[1].backends[0].up_v4);  // TCP 9001 is another backend
    CHECK(portmux::apply_liveness(config, table) == 0);
}
