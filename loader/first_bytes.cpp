#include "first_bytes.hpp"

#include <algorithm>
#include <array>

namespace portmux {
namespace {

constexpr std::array<std::string_view, PORTMUX_REFUSAL_REASONS> refusal_names{
    "too_short", "timeout", "magic_mismatch", "unknown_tag", "backend_refused"};

bool match_holds(const ByteMatch& match, std::span<const std::uint8_t> bytes) {
    for (std::size_t i = 0; i < match.value.size(); ++i) {
        const std::uint8_t mask = match.mask.empty() ? 0xff : match.mask[i];
        if ((bytes[match.offset + i] & mask) != (match.value[i] & mask)) {
            return false;
        }
    }
    return true;
}

FirstBytesDecision refuse(Refusal refusal) {
    return {FirstBytesDecision::Kind::refuse, 0, refusal};
}

}  // namespace

std::string_view refusal_name(std::size_t reason) {
    return reason < refusal_names.size() ? refusal_names[reason] : "unknown";
}

std::size_t first_bytes_needed(const Frontend& frontend) {
    std::size_t needed = 0;
    if (frontend.validate) {
        needed = frontend.validate->min_payload;
        for (const ByteMatch& match : frontend.validate->matches) {
            needed = std::max(needed, std::size_t{match.offset} + match.value.size());
        }
    }
    if (frontend.route) {
        needed = std::max(needed, std::size_t{frontend.route->offset} + frontend.route->length);
    }
    return needed;
}

FirstBytesDecision decide_first_bytes(const Frontend& frontend, std::span<const std::uint8_t> bytes,
                                      bool stream_ended) {
    if (frontend.validate) {
        for (const ByteMatch& match : frontend.validate->matches) {
            const std::size_t end = std::size_t{match.offset} + match.value.size();
            if (bytes.size() >= end && !match_holds(match, bytes)) {
                return refuse(Refusal::magic_mismatch);
            }
        }
    }
    if (bytes.size() < first_bytes_needed(frontend)) {
        return stream_ended ? refuse(Refusal::too_short) : FirstBytesDecision{};
    }
    if (!frontend.route) {
        return {FirstBytesDecision::Kind::round_robin};
    }
    const Route& route = *frontend.route;
    const auto tag = bytes.subspan(route.offset, route.length);
    for (const RouteTag& candidate : route.tags) {
        if (std::equal(candidate.tag.begin(), candidate.tag.end(), tag.begin(), tag.end())) {
            return {FirstBytesDecision::Kind::route, candidate.backend_port};
        }
    }
    if (route.unknown == UnknownTagAction::round_robin) {
        return {FirstBytesDecision::Kind::round_robin};
    }
    return refuse(Refusal::unknown_tag);
}

}  // namespace portmux
