// The stream router's socket policies (loader/stream_sockets.cpp).
#include <catch2/catch.hpp>

#include "stream_sockets.hpp"

TEST_CASE("backend_congestion_control: reno instead of a pacing BBR, otherwise the default") {
    CHECK(portmux::backend_congestion_control("bbr") == "reno");
    CHECK(portmux::backend_congestion_control("bbr2") == "reno");
    CHECK(portmux::backend_congestion_control("cubic").empty());
    CHECK(portmux::backend_congestion_control("reno").empty());
    CHECK(portmux::backend_congestion_control("dctcp").empty());
    CHECK(portmux::backend_congestion_control("").empty());
}

TEST_CASE("deferred_handshake_time: the SYN-ACK retransmissions' doubling intervals, from 1 s") {
    using std::chrono::seconds;
    CHECK(portmux::deferred_handshake_time(0) == seconds(0));
    CHECK(portmux::deferred_handshake_time(1) == seconds(1));
    CHECK(portmux::deferred_handshake_time(2) == seconds(3));
    CHECK(portmux::deferred_handshake_time(3) == seconds(7));
    CHECK(portmux::deferred_handshake_time(7) == seconds(127));
    // Not a deferral the router set (over four minutes): nothing taken off.
    CHECK(portmux::deferred_handshake_time(8) == seconds(0));
    CHECK(portmux::deferred_handshake_time(255) == seconds(0));
    CHECK(portmux::deferred_handshake_time(~0U) == seconds(0));
}
