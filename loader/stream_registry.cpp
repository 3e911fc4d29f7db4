#include "stream_registry.hpp"

#include <bpf/bpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <system_error>

#include <fmt/format.h>

#include "portmux_shared.h"

namespace portmux {
namespace {

constexpr std::uint32_t kPorts = 65536;
// An array's elements are 8-byte aligned in the kernel's memory, and so in
// the mapping: element I starts at byte I * 8.
constexpr std::size_t kDrainedStride = 8;
constexpr std::size_t kDrainedBytes = kPorts * kDrainedStride;

std::system_error os_error(int error, const std::string& what) {
    return std::system_error(error, std::generic_category(), what);
}

}  // namespace

StreamRegistry::StreamRegistry(const std::filesystem::path& pin_dir) : pin_dir_(pin_dir) {
    frontends_.reset(bpf_map_create(BPF_MAP_TYPE_HASH, "stream_frontends", sizeof(std::uint32_t),
                                    sizeof(portmux_stream_frontend), kPorts, nullptr));
    if (!frontends_) {
        throw os_error(errno, "creating the stream_frontends map");
    }
    LIBBPF_OPTS(bpf_map_create_opts, mmapable, .map_flags = BPF_F_MMAPABLE);
    drained_.reset(bpf_map_create(BPF_MAP_TYPE_ARRAY, "stream_drained", sizeof(std::uint32_t),
                                  sizeof(std::uint8_t), kPorts, &mmapable));
    if (!drained_) {
        throw os_error(errno, "creating the stream_drained map");
    }
    void* memory = ::mmap(nullptr, kDrainedBytes, PROT_READ, MAP_SHARED, drained_.get(), 0);
    if (memory == MAP_FAILED) {
        throw os_error(errno, "mapping the stream_drained map");
    }
    drained_memory_ = static_cast<const volatile std::uint8_t*>(memory);
    if (!pin_dir_.empty()) {
        for (const auto& [fd, name] : {std::pair{frontends_.get(), "stream_frontends"},
                                       std::pair{drained_.get(), "stream_drained"}}) {
            const std::filesystem::path path = pin_dir_ / name;
            (void)::unlink(path.c_str());
            if (bpf_obj_pin(fd, path.c_str()) != 0) {
                const int error = errno;
                unpin();
                throw os_error(error, fmt::format("pinning {}", path.string()));
            }
            pinned_ = true;
        }
    }
}

StreamRegistry::~StreamRegistry() {
    unpin();
    if (drained_memory_ != nullptr) {
        ::munmap(const_cast<std::uint8_t*>(drained_memory_), kDrainedBytes);
    }
}

void StreamRegistry::unpin() {
    if (pinned_) {
        (void)::unlink((pin_dir_ / "stream_frontends").c_str());
        (void)::unlink((pin_dir_ / "stream_drained").c_str());
        pinned_ = false;
    }
}

void StreamRegistry::publish(const std::vector<Frontend>& frontends) {
    std::vector<std::uint16_t> now;
    for (const Frontend& frontend : frontends) {
        portmux_stream_frontend value{};
        value.flags = static_cast<std::uint8_t>((frontend.route ? PORTMUX_STREAM_ROUTED : 0) |
                                                (frontend.validate ? PORTMUX_STREAM_VALIDATED : 0) |
                                                (frontend.proxy_protocol_v2 ? PORTMUX_STREAM_PROXY_V2 : 0));
        value.first_data_timeout = frontend.first_data_timeout_seconds;
        for (const Backend& backend : frontend.backends) {
            if (value.backend_count < PORTMUX_MAX_BACKENDS) {
                value.backends[value.backend_count++] = backend.port;
            }
        }
        const std::uint32_t key = frontend.port;
        (void)bpf_map_update_elem(frontends_.get(), &key, &value, BPF_ANY);
        now.push_back(frontend.port);
    }
    for (const std::uint16_t port : published_) {
        if (std::find(now.begin(), now.end(), port) == now.end()) {
            const std::uint32_t key = port;
            (void)bpf_map_delete_elem(frontends_.get(), &key);
        }
    }
    published_ = std::move(now);
}

bool StreamRegistry::drained(std::uint16_t port) const {
    return drained_memory_[std::size_t{port} * kDrainedStride] != 0;
}

std::vector<StreamFrontendStatus> read_pinned_stream_frontends(const std::filesystem::path& dir) {
    const UniqueFd frontends(bpf_obj_get((dir / "stream_frontends").c_str()));
    const UniqueFd drained(bpf_obj_get((dir / "stream_drained").c_str()));
    std::vector<StreamFrontendStatus> result;
    if (!frontends || !drained) {
        return result;
    }
    std::uint32_t key = 0;
    std::uint32_t next = 0;
    bool first = true;
    while (bpf_map_get_next_key(frontends.get(), first ? nullptr : &key, &next) == 0) {
        first = false;
        key = next;
        portmux_stream_frontend value{};
        if (bpf_map_lookup_elem(frontends.get(), &key, &value) != 0) {
            continue;
        }
        StreamFrontendStatus status;
        status.port = static_cast<std::uint16_t>(key);
        status.routed = (value.flags & PORTMUX_STREAM_ROUTED) != 0;
        status.validated = (value.flags & PORTMUX_STREAM_VALIDATED) != 0;
        status.proxy_v2 = (value.flags & PORTMUX_STREAM_PROXY_V2) != 0;
        status.first_data_timeout = value.first_data_timeout;
        for (std::uint16_t i = 0; i < std::min<std::uint16_t>(value.backend_count, PORTMUX_MAX_BACKENDS); ++i) {
            const std::uint32_t port = value.backends[i];
            std::uint8_t is_drained = 0;
            (void)bpf_map_lookup_elem(drained.get(), &port, &is_drained);
            status.backends.emplace_back(value.backends[i], is_drained != 0);
        }
        result.push_back(std::move(status));
    }
    std::sort(result.begin(), result.end(),
              [](const StreamFrontendStatus& a, const StreamFrontendStatus& b) { return a.port < b.port; });
    return result;
}

StreamDrainResult set_stream_drained(const std::filesystem::path& dir, std::uint16_t port,
                                     bool drained) {
    StreamDrainResult result;
    for (const StreamFrontendStatus& frontend : read_pinned_stream_frontends(dir)) {
        for (const auto& [backend, is_drained] : frontend.backends) {
            if (backend == port) {
                ++result.found;
                result.changed += is_drained != drained;
            }
        }
    }
    if (result.found == 0) {
        return result;
    }
    const UniqueFd map(bpf_obj_get((dir / "stream_drained").c_str()));
    const std::uint32_t key = port;
    const std::uint8_t value = drained ? 1 : 0;
    if (!map || bpf_map_update_elem(map.get(), &key, &value, BPF_ANY) != 0) {
        throw os_error(errno, fmt::format("setting the drain of backend {} in {}", port,
                                          (dir / "stream_drained").string()));
    }
    return result;
}

}  // namespace portmux
