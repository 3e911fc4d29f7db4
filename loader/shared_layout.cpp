// The BPF program and the loader share common/portmux_shared.h; these
// asserts pin the layout the BPF compiler produced (see `bpftool btf dump`)
// so a change that introduces padding or reorders fields fails the build.
#include <cstddef>

#include "portmux_shared.h"

static_assert(sizeof(portmux_frontend_key) == 4);
static_assert(offsetof(portmux_frontend_key, port) == 0);
static_assert(offsetof(portmux_frontend_key, protocol) == 2);
static_assert(offsetof(portmux_frontend_key, pad) == 3);

static_assert(sizeof(portmux_backend_set) == 8 + 2 * PORTMUX_MAX_BACKENDS);
static_assert(offsetof(portmux_backend_set, cursor_slot) == 0);
static_assert(offsetof(portmux_backend_set, count) == 4);
static_assert(offsetof(portmux_backend_set, flags) == 6);
static_assert(offsetof(portmux_backend_set, ports) == 8);
