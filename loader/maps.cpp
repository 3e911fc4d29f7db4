#include "maps.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <system_error>
#include <tuple>

#include <fmt/format.h>

#include "portmux_shared.h"

namespace portmux {
namespace {

portmux_frontend_key make_key(const Frontend& frontend) {
    portmux_frontend_key key{};
    key.port = htons(frontend.port);
    key.protocol = static_cast<std::uint8_t>(frontend.protocol);
    return key;
}

portmux_backend_set make_backend_set(const Frontend& frontend, std::uint32_t cursor_slot) {
    portmux_backend_set set{};
    set.cursor_slot = cursor_slot;
    set.count = static_cast<std::uint16_t>(frontend.backends.size());
    std::transform(frontend.backends.begin(), frontend.backends.end(), set.ports,
                   [](std::uint16_t port) { return htons(port); });
    return set;
}

[[noreturn]] void throw_map_error(int err, std::string_view what) {
    throw std::system_error(err, std::generic_category(), std::string(what));
}

std::vector<portmux_frontend_key> list_keys(int frontends_fd) {
    std::vector<portmux_frontend_key> keys;
    portmux_frontend_key next{};
    while (bpf_map_get_next_key(frontends_fd, keys.empty() ? nullptr : &keys.back(), &next) == 0) {
        keys.push_back(next);
    }
    if (errno != ENOENT) {
        throw_map_error(errno, "listing the frontends map");
    }
    return keys;
}

void reset_cursor(int rr_cursors_fd, std::uint32_t slot) {
    // A per-CPU array is written for every possible CPU at once.
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) {
        throw_map_error(-cpus, "counting possible CPUs");
    }
    const std::vector<std::uint32_t> zeros(static_cast<std::size_t>(cpus), 0);
    if (bpf_map_update_elem(rr_cursors_fd, &slot, zeros.data(), BPF_ANY) != 0) {
        throw_map_error(errno, fmt::format("resetting round-robin cursor {}", slot));
    }
}

}  // namespace

void write_config(const DataPathMaps& maps, const Config& config) {
    std::set<std::tuple<std::uint16_t, std::uint8_t>> wanted;
    for (std::uint32_t slot = 0; slot < config.frontends.size(); ++slot) {
        const Frontend& frontend = config.frontends[slot];
        const portmux_frontend_key key = make_key(frontend);
        const portmux_backend_set set = make_backend_set(frontend, slot);
        reset_cursor(maps.rr_cursors_fd, slot);
        if (bpf_map_update_elem(maps.frontends_fd, &key, &set, BPF_ANY) != 0) {
            throw_map_error(errno, fmt::format("writing frontend {}/{} to the frontends map",
                                               frontend.port, to_string(frontend.protocol)));
        }
        wanted.emplace(key.port, key.protocol);
    }
    // Stale entries go last, so a frontend that stays is never missing.
    for (const portmux_frontend_key& key : list_keys(maps.frontends_fd)) {
        if (!wanted.contains({key.port, key.protocol}) &&
            bpf_map_delete_elem(maps.frontends_fd, &key) != 0 && errno != ENOENT) {
            throw_map_error(errno, fmt::format("removing frontend {} from the frontends map",
                                               ntohs(key.port)));
        }
    }
}

std::vector<Frontend> read_frontends(int frontends_fd) {
    std::vector<Frontend> frontends;
    for (const portmux_frontend_key& key : list_keys(frontends_fd)) {
        portmux_backend_set set{};
        if (bpf_map_lookup_elem(frontends_fd, &key, &set) != 0) {
            if (errno == ENOENT) {
                continue;  // removed since we listed it
            }
            throw_map_error(errno, "reading the frontends map");
        }
        Frontend frontend;
        frontend.port = ntohs(key.port);
        frontend.protocol = static_cast<Protocol>(key.protocol);
        const auto count = std::min<std::size_t>(set.count, PORTMUX_MAX_BACKENDS);
        for (std::size_t i = 0; i < count; ++i) {
            frontend.backends.push_back(ntohs(set.ports[i]));
        }
        frontends.push_back(std::move(frontend));
    }
    std::sort(frontends.begin(), frontends.end(), [](const Frontend& a, const Frontend& b) {
        return std::tie(a.protocol, a.port) < std::tie(b.protocol, b.port);
    });
    return frontends;
}

}  // namespace portmux
