// Whether this kernel's sockmap carries a stream and its end the way the
// stream router needs, found by doing it once rather than by reading the
// kernel version (distributions backport fixes; a version says little).
//
// Before Linux 6.4 the sk_skb verdict path mishandled the end of a stream
// (the series that fixed it includes "bpf, sockmap: Handle fin correctly"
// and "bpf, sockmap: Incorrectly handling copied_seq"): the router could
// not see a FIN on a spliced socket, or count its bytes, and the tail of
// the stream or its end was lost. The probe splices two loopback TCP
// connections with the router's own verdict program, sends bytes and a
// FIN through them and checks what the router relies on: the bytes reach
// the peer, the FIN shows as EPOLLRDHUP after them, the counts agree.
#pragma once

#include <string>

#include "event_log.hpp"

namespace portmux {

struct SockmapProbe {
    bool splices = false;  // the router may use sockmap
    // When the self-test failed or could not run: the one log line that
    // says so (event_log.hpp), naming the kernel feature and how streams
    // are relayed. Empty event: nothing to say.
    LogLevel level = LogLevel::warning;
    std::string event;
    LogFields fields;
};

enum class SockmapProbeVerdict { passed, failed, unavailable };

// What the router does after the self-test: pure, for the unit tests.
// DETAIL says what failed, or why the test could not run; RELEASE is the
// kernel's (uname -r), which decides only when the test could not run.
SockmapProbe judge_sockmap_probe(SockmapProbeVerdict verdict, const std::string& detail,
                                 const std::string& release);

// Takes a few milliseconds when the kernel passes (up to 2 s when it does
// not). Needs what the router needs (CAP_BPF, CAP_NET_ADMIN) and loopback.
// A probe that cannot run at all (no loopback, the program does not load)
// decides by the kernel version instead, and says so.
//
// Test hook: with PORTMUX_TEST_SOCKMAP_PROBE=fail in the environment the
// self-test is not run and counts as failed, as on a kernel without the
// fix: every stream connection then goes through the splice(2) fallback
// (e2e stream_fallback.sh).
SockmapProbe probe_sockmap_splicing();

}  // namespace portmux
