// The TC (clsact) egress filter that gives replies the frontend port back.
// It is identified by a fixed handle and priority, so portmux removes its
// own filter and never the clsact hook, which other tools' filters share.
#pragma once

#include <cstdint>

namespace portmux {

inline constexpr std::uint32_t kTcHandle = 0x504d;    // "PM"
inline constexpr std::uint32_t kTcPriority = 0x504d;

// Creates the clsact hook if missing and attaches the program; throws.
void attach_tc_egress(unsigned ifindex, int program_fd);

// Removes portmux's filter; a missing filter is not an error.
void detach_tc_egress(unsigned ifindex);

// Id of the program in portmux's egress filter, 0 when there is none.
std::uint32_t tc_egress_program_id(unsigned ifindex);

}  // namespace portmux
