#include "skeleton.hpp"

#include <cerrno>
#include <system_error>

namespace portmux {

SkeletonPtr open_skeleton() {
    SkeletonPtr skeleton(portmux_bpf__open());
    if (!skeleton) {
        throw std::system_error(errno, std::generic_category(), "opening the embedded BPF object");
    }
    return skeleton;
}

DataPathMaps data_path_maps(const portmux_bpf& skeleton) {
    return {bpf_map__fd(skeleton.maps.frontends), bpf_map__fd(skeleton.maps.frontend_state),
            bpf_map__fd(skeleton.maps.routes), bpf_map__fd(skeleton.maps.backend_ports),
            bpf_map__fd(skeleton.maps.meta)};
}

SkeletonPtr open_and_load_skeleton() {
    SkeletonPtr skeleton = open_skeleton();
    if (int err = portmux_bpf__load(skeleton.get()); err) {
        throw std::system_error(-err, std::generic_category(),
                                "loading the BPF object (see the verifier log above)");
    }
    return skeleton;
}

}  // namespace portmux
