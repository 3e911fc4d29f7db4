// What the stream router asks of the kernel's TCP for its sockets, decided
// from what it reads back: pure functions, unit-tested without root.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace portmux {

// The congestion control the router sets on a backend socket before it
// connects, given the system's default (TCP_CONGESTION of a new socket):
// "reno" in place of BBR (any "bbr..."), which paces in the TCP stack when
// the qdisc is not fq, empty (keep the default) for anything else. A
// backend is on this host's loopback: there is no path to pace for, and
// pacing the stream router's backend socket held spliced bytes back in its
// send queue (docs/design.md, "Where the CPU of a bulk stream goes"). Reno
// is built into every kernel and allowed without privileges.
std::string backend_congestion_control(std::string_view system_default);

// How long a listener with TCP_DEFER_ACCEPT held a client's completed
// handshake before accept() got it without a byte, from the accepted
// socket's tcpi_total_retrans: the kernel retransmits the SYN-ACK while it
// holds the handshake, 1 s after it first went out and then at doubling
// intervals, and the child socket inherits that count. So n retransmissions
// are 1 + 2 + ... + 2^(n-1) = 2^n - 1 seconds. Zero for none, and for 8 or
// more (over four minutes held, far past the 1 s deferral the router sets:
// not a deferral).
std::chrono::seconds deferred_handshake_time(unsigned syn_ack_retransmissions);

}  // namespace portmux
