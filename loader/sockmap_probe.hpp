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

namespace portmux {

struct SockmapProbe {
    bool splices = false;  // the router may use sockmap
    std::string line;      // when not: the one line to print, saying why
};

// Takes a few milliseconds when the kernel passes (up to 2 s when it does
// not). Needs what the router needs (CAP_BPF, CAP_NET_ADMIN) and loopback.
// A probe that cannot run at all (no loopback, the program does not load)
// decides by the kernel version instead, and says so.
SockmapProbe probe_sockmap_splicing();

}  // namespace portmux
