// Tests of loader/first_bytes.cpp: what a TCP frontend routed by its first
// bytes decides for every prefix a client may have sent so far.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "first_bytes.hpp"

namespace {

using portmux::ByteMatch;
using portmux::decide_first_bytes;
using portmux::first_bytes_needed;
using portmux::FirstBytesDecision;
using portmux::Frontend;
using portmux::Protocol;
using portmux::Refusal;
using portmux::Route;
using portmux::RouteTag;
using portmux::UnknownTagAction;
using portmux::Validation;
using Kind = FirstBytesDecision::Kind;
using Bytes = std::vector<std::uint8_t>;

Bytes bytes_of(std::string_view text) {
    return {text.begin(), text.end()};
}

// The mplex case: magic "MPLX" at 0, a 3-byte tag at offset 20, 24..64 bytes.
Frontend mplex_frontend(UnknownTagAction unknown = UnknownTagAction::drop) {
    Frontend frontend;
    frontend.port = 9000;
    frontend.protocol = Protocol::tcp;
    frontend.backends = {{5001, 0}, {5002, 0}, {5003, 0}};
    Validation validation;
    validation.min_payload = 24;
    validation.matches.push_back(ByteMatch{0, bytes_of("MPLX"), {}});
    frontend.validate = validation;
    Route route;
    route.offset = 20;
    route.length = 3;
    route.tags = {RouteTag{bytes_of("aaa"), 5001}, RouteTag{bytes_of("bbb"), 5002},
                  RouteTag{bytes_of("ccc"), 5003}};
    route.unknown = unknown;
    frontend.route = route;
    return frontend;
}

// 24 bytes: magic, 16 filler bytes, the tag, one more byte.
Bytes mplex_request(std::string_view tag, std::string_view magic = "MPLX") {
    return bytes_of(std::string(magic) + "0123456789abcdef" + std::string(tag) + "!");
}

FirstBytesDecision decide(const Frontend& frontend, const Bytes& bytes, std::size_t count,
                          bool ended = false) {
    return decide_first_bytes(frontend, std::span(bytes).first(count), ended);
}

}  // namespace

TEST_CASE("first_bytes_needed is the largest of min_length, match ends and the tag end") {
    Frontend frontend = mplex_frontend();
    CHECK(first_bytes_needed(frontend) == 24);
    frontend.validate->min_payload = 10;
    CHECK(first_bytes_needed(frontend) == 23);  // the tag ends at 23
    frontend.validate->matches.push_back(ByteMatch{30, bytes_of("zz"), {}});
    CHECK(first_bytes_needed(frontend) == 32);
    frontend.validate.reset();
    CHECK(first_bytes_needed(frontend) == 23);
    frontend.route.reset();
    CHECK(first_bytes_needed(frontend) == 0);
}

TEST_CASE("each known tag routes to its backend once the window's minimum has arrived") {
    const Frontend frontend = mplex_frontend();
    const std::vector<std::pair<std::string, std::uint16_t>> cases{
        {"aaa", 5001}, {"bbb", 5002}, {"ccc", 5003}};
    for (const auto& [tag, port] : cases) {
        const Bytes request = mplex_request(tag);
        // One byte at a time, as a client sending one byte per segment.
        for (std::size_t count = 0; count < 24; ++count) {
            INFO(tag << " after " << count << " bytes");
            CHECK(decide(frontend, request, count) == FirstBytesDecision{});
        }
        CHECK(decide(frontend, request, 24) == FirstBytesDecision{Kind::route, port});
    }
}

TEST_CASE("bytes after the decision's window do not change it") {
    const Frontend frontend = mplex_frontend();
    Bytes request = mplex_request("bbb");
    request.resize(4096, 'x');
    CHECK(decide(frontend, request, request.size()) == FirstBytesDecision{Kind::route, 5002});
}

TEST_CASE("a wrong magic is refused as soon as its bytes are in") {
    const Frontend frontend = mplex_frontend();
    const Bytes request = mplex_request("aaa", "MPLY");
    CHECK(decide(frontend, request, 3).kind == Kind::need_more);
    const FirstBytesDecision refused{Kind::refuse, 0, Refusal::magic_mismatch};
    CHECK(decide(frontend, request, 4) == refused);
    CHECK(decide(frontend, request, 24) == refused);
    CHECK(decide(frontend, request, 2, true).refusal == Refusal::too_short);
    CHECK(decide(frontend, request, 4, true) == refused);
}

TEST_CASE("a masked match compares only the bits of its mask") {
    Frontend frontend = mplex_frontend();
    frontend.validate->matches = {ByteMatch{0, {0x40}, {0xf0}}};  // 'M' is 0x4d
    const Bytes request = mplex_request("aaa");
    CHECK(decide(frontend, request, 24) == FirstBytesDecision{Kind::route, 5001});
    frontend.validate->matches = {ByteMatch{0, {0x50}, {0xf0}}};
    CHECK(decide(frontend, request, 1).refusal == Refusal::magic_mismatch);
}

TEST_CASE("an unknown tag is refused, or goes round robin when the route says so") {
    const Bytes request = mplex_request("zzz");
    CHECK(decide(mplex_frontend(), request, 24) ==
          FirstBytesDecision{Kind::refuse, 0, Refusal::unknown_tag});
    CHECK(decide(mplex_frontend(UnknownTagAction::round_robin), request, 24) ==
          FirstBytesDecision{Kind::round_robin});
}

TEST_CASE("a client that ends before the window is full is too short") {
    const Frontend frontend = mplex_frontend();
    const Bytes request = mplex_request("aaa");
    for (const std::size_t count : {0, 1, 20, 23}) {
        CHECK(decide(frontend, request, count, true) ==
              FirstBytesDecision{Kind::refuse, 0, Refusal::too_short});
    }
    // Ending right after a complete window is not too short: the
    // connection is served (through the splice(2) fallback).
    CHECK(decide(frontend, request, 24, true) == FirstBytesDecision{Kind::route, 5001});
}

TEST_CASE("a frontend with only validate goes round robin; with nothing it decides at once") {
    Frontend frontend = mplex_frontend();
    frontend.route.reset();
    const Bytes request = mplex_request("aaa");
    CHECK(decide(frontend, request, 23).kind == Kind::need_more);
    CHECK(decide(frontend, request, 24) == FirstBytesDecision{Kind::round_robin});
    frontend.validate.reset();
    CHECK(decide(frontend, request, 0) == FirstBytesDecision{Kind::round_robin});
}

TEST_CASE("refusal names are the ones stats print") {
    CHECK(portmux::refusal_name(PORTMUX_REFUSED_TOO_SHORT) == "too_short");
    CHECK(portmux::refusal_name(PORTMUX_REFUSED_TIMEOUT) == "timeout");
    CHECK(portmux::refusal_name(PORTMUX_REFUSED_MAGIC_MISMATCH) == "magic_mismatch");
    CHECK(portmux::refusal_name(PORTMUX_REFUSED_UNKNOWN_TAG) == "unknown_tag");
    CHECK(portmux::refusal_name(PORTMUX_REFUSED_BACKEND_REFUSED) == "backend_refused");
}
