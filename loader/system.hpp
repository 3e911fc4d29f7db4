// What the machine must offer before portmux touches the kernel.
#pragma once

#include <string>

namespace portmux {

// Throws std::runtime_error naming the missing capability (CAP_BPF or
// CAP_SYS_ADMIN, and CAP_NET_ADMIN) for `action`.
void require_bpf_privileges(const std::string& action);

// Mounts bpffs on /sys/fs/bpf when it is not mounted there; throws when
// that is impossible.
void ensure_bpffs();

// The index of a network interface; throws "no such interface: NAME".
unsigned interface_index(const std::string& iface);

}  // namespace portmux
