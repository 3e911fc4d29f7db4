#include "grace_period.hpp"

#include <bpf/bpf.h>

#include <cerrno>
#include <system_error>

#include "bpf_handles.hpp"

namespace portmux {

void wait_for_bpf_readers() {
    const UniqueFd inner(bpf_map_create(BPF_MAP_TYPE_ARRAY, "portmux_grace", sizeof(__u32),
                                        sizeof(__u32), 1, nullptr));
    if (!inner) {
        throw std::system_error(errno, std::generic_category(),
                                "creating the inner map of the grace-period wait");
    }
    LIBBPF_OPTS(bpf_map_create_opts, outer_opts, .inner_map_fd = static_cast<__u32>(inner.get()));
    const UniqueFd outer(bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "portmux_grace_o", sizeof(__u32),
                                        sizeof(__u32), 1, &outer_opts));
    if (!outer) {
        throw std::system_error(errno, std::generic_category(),
                                "creating the map of maps of the grace-period wait");
    }
    const __u32 key = 0;
    const __u32 value = static_cast<__u32>(inner.get());
    // The kernel runs synchronize_rcu() before this returns success.
    if (bpf_map_update_elem(outer.get(), &key, &value, BPF_ANY) != 0) {
        throw std::system_error(errno, std::generic_category(),
                                "waiting for a grace period (updating a map of maps)");
    }
}

}  // namespace portmux
