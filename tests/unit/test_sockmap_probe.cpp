// Tests of judge_sockmap_probe (loader/sockmap_probe.cpp): what the stream
// router does after its sockmap self-test, and the one log line it writes.
#include <catch2/catch.hpp>

#include "event_log.hpp"
#include "sockmap_probe.hpp"

namespace {

std::string line_of(const portmux::SockmapProbe& probe) {
    return portmux::format_event(probe.level, probe.event, probe.fields, false);
}

}  // namespace

TEST_CASE("sockmap self-test passed: splice with sockmap, say nothing") {
    const portmux::SockmapProbe probe =
        portmux::judge_sockmap_probe(portmux::SockmapProbeVerdict::passed, "", "6.18.0");
    CHECK(probe.splices);
    CHECK(probe.event.empty());
    CHECK(probe.fields.empty());
}

TEST_CASE("sockmap self-test failed: relay with splice(2), one line naming the feature") {
    const portmux::SockmapProbe probe = portmux::judge_sockmap_probe(
        portmux::SockmapProbeVerdict::failed, "the FIN of a spliced socket never showed (no EPOLLRDHUP)",
        "6.1.0-13-amd64");
    CHECK_FALSE(probe.splices);
    CHECK(line_of(probe) ==
          "level=warning event=sockmap_self_test_failed kernel=6.1.0-13-amd64 "
          "feature=\"sockmap sk_skb stream verdict FIN handling (Linux 6.4)\" "
          "reason=\"the FIN of a spliced socket never showed (no EPOLLRDHUP)\" relay=splice");
}

TEST_CASE("sockmap self-test failed on a new kernel: still splice(2), the test decides") {
    CHECK_FALSE(portmux::judge_sockmap_probe(portmux::SockmapProbeVerdict::failed, "x", "6.18.0").splices);
}

TEST_CASE("sockmap self-test could not run: the kernel version decides, and the line says so") {
    const portmux::SockmapProbe old_kernel = portmux::judge_sockmap_probe(
        portmux::SockmapProbeVerdict::unavailable, "loading the verdict program: Operation not permitted",
        "5.15.0-91-generic");
    CHECK_FALSE(old_kernel.splices);
    CHECK(line_of(old_kernel) ==
          "level=warning event=sockmap_self_test_not_run kernel=5.15.0-91-generic "
          "feature=\"sockmap sk_skb stream verdict FIN handling (Linux 6.4)\" "
          "reason=\"loading the verdict program: Operation not permitted\" relay=splice");
    const portmux::SockmapProbe new_kernel =
        portmux::judge_sockmap_probe(portmux::SockmapProbeVerdict::unavailable, "x", "6.4.0");
    CHECK(new_kernel.splices);
    CHECK(new_kernel.event == "sockmap_self_test_not_run");
    REQUIRE_FALSE(new_kernel.fields.empty());
    CHECK(new_kernel.fields.back() == std::pair<std::string, std::string>{"relay", "sockmap"});
    CHECK_FALSE(portmux::judge_sockmap_probe(portmux::SockmapProbeVerdict::unavailable, "x", "6.3.13").splices);
    CHECK(portmux::judge_sockmap_probe(portmux::SockmapProbeVerdict::unavailable, "x", "7.0").splices);
    // A release it cannot read lets the router try sockmap.
    CHECK(portmux::judge_sockmap_probe(portmux::SockmapProbeVerdict::unavailable, "x", "unknown").splices);
}
