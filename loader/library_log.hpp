// libbpf and libxdp report through print callbacks. Their messages are kept
// in memory and shown only with --verbose: a failed attach prints a dozen
// lines of them before the one that matters. That one line, the kernel's own
// reason (netlink extack, e.g. "veth: Peer MTU is too large to set XDP"), is
// taken out with last_kernel_message() and put into portmux's error.
#pragma once

#include <string>

namespace portmux {

void capture_library_logs(bool verbose);

// Everything captured since the last call.
std::string take_library_log();

// The last "Kernel error message" libbpf reported since the last
// take_library_log(), without that prefix; empty when there was none.
std::string last_kernel_message();

}  // namespace portmux
