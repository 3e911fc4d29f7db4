// What the machine must offer before portmux touches the kernel.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace portmux {

// Whether this process has CAPABILITY (CAP_SYS_ADMIN...) in its effective set.
bool has_capability(int capability);

// Checks up front that this process has what every privileged verb needs:
// CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (CAP_SYS_ADMIN standing in for
// CAP_BPF and CAP_PERFMON, as the kernel allows). Throws std::runtime_error
// naming each missing capability for `action`.
void require_bpf_privileges(const std::string& action);

// Mounts bpffs on /sys/fs/bpf when it is not mounted there; throws when
// that is impossible.
void ensure_bpffs();

// The index of a network interface; throws "no such interface: NAME".
unsigned interface_index(const std::string& iface);

// Replaces FILE with TEXT so that readers see the old content or the new,
// never part of it: a temporary file in the same directory, fsync, rename.
// Throws std::system_error naming the file.
void write_file_atomically(const std::filesystem::path& file, std::string_view text);

}  // namespace portmux
