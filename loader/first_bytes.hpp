// Deciding a TCP connection's fate from the first bytes its client sends:
// pure logic, no sockets, so every rule is unit-tested without root.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "config.hpp"
#include "portmux_shared.h"

namespace portmux {

enum class Refusal : std::uint8_t {
    too_short = PORTMUX_REFUSED_TOO_SHORT,
    timeout = PORTMUX_REFUSED_TIMEOUT,
    magic_mismatch = PORTMUX_REFUSED_MAGIC_MISMATCH,
    unknown_tag = PORTMUX_REFUSED_UNKNOWN_TAG,
    backend_refused = PORTMUX_REFUSED_BACKEND_REFUSED,
};

// "too_short", "timeout", ... as stats show them.
std::string_view refusal_name(std::size_t reason);

struct FirstBytesDecision {
    enum class Kind {
        need_more,    // wait for more bytes (or the timeout)
        route,        // connect to backend_port
        round_robin,  // connect to the next backend of the frontend's round robin
        refuse,       // close the connection, counted under `refusal`
    };
    Kind kind = Kind::need_more;
    std::uint16_t backend_port = 0;       // route
    Refusal refusal = Refusal::too_short; // refuse

    friend bool operator==(const FirstBytesDecision&, const FirstBytesDecision&) = default;
};

// How many bytes the rules of FRONTEND must see before they can pick a
// backend: validate's min_length, the end of every match and of the tag.
// 0 when the frontend has neither (server-first protocols work then).
std::size_t first_bytes_needed(const Frontend& frontend);

// The decision for a client that has sent BYTES so far; STREAM_ENDED when
// it has half-closed (no more bytes will come). A match whose bytes have
// all arrived and differ refuses at once; otherwise the decision waits for
// first_bytes_needed() bytes. Only the bytes up to that count are read:
// later ones belong to the stream the backend gets.
FirstBytesDecision decide_first_bytes(const Frontend& frontend, std::span<const std::uint8_t> bytes,
                                      bool stream_ended);

}  // namespace portmux
