// libbpf and libxdp report through print callbacks. Their messages are kept
// in memory and shown when an operation fails (the verifier log among them)
// or always with --verbose, instead of interleaving with portmux's output.
#pragma once

#include <string>

namespace portmux {

void capture_library_logs(bool verbose);

// Everything captured since the last call.
std::string take_library_log();

}  // namespace portmux
