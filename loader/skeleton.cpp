#include "skeleton.hpp"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "bpf_helpers.hpp"
#include "portmux_frags.skel.h"

namespace portmux {

const char* to_string(DataPathObject object) {
    return object == DataPathObject::frags ? "frags-aware" : "standard";
}

std::span<const std::uint8_t> object_bytes(DataPathObject object) {
    std::size_t size = 0;
    const void* bytes = object == DataPathObject::frags ? portmux_frags_bpf__elf_bytes(&size)
                                                        : portmux_bpf__elf_bytes(&size);
    return {static_cast<const std::uint8_t*>(bytes), size};
}

unsigned interface_mtu(const std::string& iface) {
    ifreq request{};
    if (iface.size() >= sizeof request.ifr_name) {
        throw std::runtime_error(fmt::format("no such interface: {}", iface));
    }
    std::memcpy(request.ifr_name, iface.c_str(), iface.size() + 1);
    const int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) {
        throw std::system_error(errno, std::generic_category(), "opening a socket to read the MTU");
    }
    const int result = ioctl(sock, SIOCGIFMTU, &request);
    const int err = errno;
    close(sock);
    if (result != 0) {
        throw std::runtime_error(fmt::format("reading the MTU of {}: {}", iface, std::strerror(err)));
    }
    return static_cast<unsigned>(request.ifr_mtu);
}

DataPathObject choose_data_path_object(unsigned mtu, const std::string& iface) {
    const DataPathObject object =
        mtu > kLargestSinglePageMtu ? DataPathObject::frags : DataPathObject::standard;
    if (const auto missing = first_missing_helper(object_bytes(object))) {
        const std::string purpose =
            object == DataPathObject::frags
                ? fmt::format("multi-buffer XDP (xdp.frags) for the MTU {} of {}; lower the MTU to "
                              "{} or less, or use a newer kernel",
                              mtu, iface, kLargestSinglePageMtu)
                : std::string("portmux's data path");
        throw std::runtime_error(missing_helper_message(*missing, purpose));
    }
    return object;
}

SkeletonPtr open_skeleton(DataPathObject object) {
    // The skeleton of the standard object, pointed at the chosen object's
    // bytes: maps and programs are found by name, and both objects have
    // the same ones.
    auto* raw = static_cast<portmux_bpf*>(calloc(1, sizeof(portmux_bpf)));
    if (!raw) {
        throw std::system_error(ENOMEM, std::generic_category(), "opening the embedded BPF object");
    }
    SkeletonPtr skeleton(raw);
    if (int err = portmux_bpf__create_skeleton(raw); err) {
        throw std::system_error(-err, std::generic_category(), "opening the embedded BPF object");
    }
    const std::span<const std::uint8_t> bytes = object_bytes(object);
    raw->skeleton->data = const_cast<std::uint8_t*>(bytes.data());
    raw->skeleton->data_sz = bytes.size();
    if (int err = bpf_object__open_skeleton(raw->skeleton, nullptr); err) {
        throw std::system_error(-err, std::generic_category(),
                                fmt::format("opening the embedded {} BPF object", to_string(object)));
    }
    return skeleton;
}

DataPathMaps data_path_maps(const portmux_bpf& skeleton) {
    return {bpf_map__fd(skeleton.maps.frontend_configs), bpf_map__fd(skeleton.maps.frontend_state),
            bpf_map__fd(skeleton.maps.routes), bpf_map__fd(skeleton.maps.ports),
            bpf_map__fd(skeleton.maps.meta), bpf_map__fd(skeleton.maps.counter_bases),
            bpf_map__fd(skeleton.maps.data_port_bits)};
}

SkeletonPtr open_and_load_skeleton(DataPathObject object) {
    SkeletonPtr skeleton = open_skeleton(object);
    if (int err = portmux_bpf__load(skeleton.get()); err) {
        throw std::system_error(-err, std::generic_category(),
                                "loading the BPF object (see the verifier log above)");
    }
    return skeleton;
}

}  // namespace portmux
