#include "maps.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <system_error>
#include <tuple>

#include <fmt/format.h>

#include "grace_period.hpp"
#include "reload_plan.hpp"

namespace portmux {
namespace {

using KeyTuple = std::tuple<std::uint16_t, std::uint8_t>;

KeyTuple key_tuple(const portmux_frontend_key& key) {
    return {key.port, key.protocol};
}

portmux_frontend_key make_key(const Frontend& frontend) {
    portmux_frontend_key key{};
    key.port = htons(frontend.port);
    key.protocol = static_cast<std::uint8_t>(frontend.protocol);
    return key;
}

[[noreturn]] void throw_map_error(int err, std::string_view what) {
    throw std::system_error(err, std::generic_category(), std::string(what));
}

template <typename Key>
std::vector<Key> list_keys(int map_fd, std::string_view map_name) {
    std::vector<Key> keys;
    Key next{};
    while (bpf_map_get_next_key(map_fd, keys.empty() ? nullptr : &keys.back(), &next) == 0) {
        keys.push_back(next);
    }
    if (errno != ENOENT) {
        throw_map_error(errno, fmt::format("listing the {} map", map_name));
    }
    return keys;
}

// Same backends in the same order, same generation: flows stay valid.
std::uint32_t backend_generation(const Frontend& frontend) {
    std::uint32_t hash = 2166136261u;  // FNV-1a
    for (const Backend& backend : frontend.backends) {
        for (int shift : {8, 0}) {
            hash ^= (backend.port >> shift) & 0xff;
            hash *= 16777619u;
        }
    }
    return hash;
}

std::uint32_t state_capacity(int frontend_state_fd) {
    bpf_map_info info{};
    __u32 length = sizeof info;
    if (bpf_obj_get_info_by_fd(frontend_state_fd, &info, &length) != 0) {
        throw_map_error(errno, "reading the frontend_state map's size");
    }
    return info.max_entries;
}

void zero_state(int frontend_state_fd, std::uint32_t slot) {
    // A per-CPU array is written for every possible CPU at once.
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) {
        throw_map_error(-cpus, "counting possible CPUs");
    }
    const std::vector<portmux_frontend_state> zeros(static_cast<std::size_t>(cpus));
    if (bpf_map_update_elem(frontend_state_fd, &slot, zeros.data(), BPF_ANY) != 0) {
        throw_map_error(errno, fmt::format("resetting the state of frontend slot {}", slot));
    }
}

std::uint32_t map_capacity(int map_fd, std::string_view map_name) {
    bpf_map_info info{};
    __u32 length = sizeof info;
    if (bpf_obj_get_info_by_fd(map_fd, &info, &length) != 0) {
        throw_map_error(errno, fmt::format("reading the {} map's size", map_name));
    }
    return info.max_entries;
}

std::uint32_t port_index(Protocol protocol, std::uint16_t port) {
    return (protocol == Protocol::tcp ? PORTMUX_TCP_PORT_BASE : 0) + port;
}

// A frontend already installed: the config its `ports` entry points at.
struct InstalledEntry {
    std::uint32_t config_index = 0;  // slot * PORTMUX_CONFIG_BUFFERS + buffer
    portmux_frontend value{};
    Frontend ports_only;  // protocol, port and backend ports, for the ports map
};

// Every frontend the maps serve: a config buffer that records a frontend
// whose `ports` entry points at that very buffer. The other buffer of a
// slot, and buffers of removed frontends, are stale copies nobody reaches.
bool written(const portmux_frontend& value) {
    return value.protocol == PORTMUX_PROTO_UDP || value.protocol == PORTMUX_PROTO_TCP;
}

// The config buffers ever written, by index. Read in batches of 1,024: one
// bpf() call per batch rather than one per buffer (2,048 with the default
// 1,024 slots), which kept every status and reload busy for no reason.
std::vector<std::pair<std::uint32_t, portmux_frontend>> written_configs(int configs_fd) {
    constexpr __u32 kBatch = 1024;
    std::vector<std::pair<std::uint32_t, portmux_frontend>> found;
    std::vector<__u32> keys(kBatch);
    std::vector<portmux_frontend> values(kBatch);
    __u32 in_batch = 0;
    __u32 out_batch = 0;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    for (bool first = true;; first = false) {
        __u32 count = kBatch;
        const int err = bpf_map_lookup_batch(configs_fd, first ? nullptr : &in_batch, &out_batch,
                                             keys.data(), values.data(), &count, &opts);
        for (__u32 i = 0; i < count && i < kBatch; ++i) {
            if (written(values[i])) {
                found.emplace_back(keys[i], values[i]);
            }
        }
        if (err != 0) {
            if (err == -ENOENT || errno == ENOENT) {
                return found;  // that was the last batch
            }
            throw_map_error(err < 0 ? -err : errno, "reading the frontend_configs map");
        }
        in_batch = out_batch;
    }
}

std::map<KeyTuple, InstalledEntry> installed_entries(const DataPathMaps& maps) {
    std::map<KeyTuple, InstalledEntry> entries;
    for (const auto& [index, value] : written_configs(maps.frontend_configs)) {
        const auto protocol = static_cast<Protocol>(value.protocol);
        const std::uint32_t port = port_index(protocol, ntohs(value.port));
        portmux_port entry{};
        if (bpf_map_lookup_elem(maps.ports, &port, &entry) != 0) {
            throw_map_error(errno, "reading the ports map");
        }
        if (!(entry.flags & PORTMUX_PORT_FRONTEND) || entry.config != index) {
            continue;
        }
        InstalledEntry& installed = entries[{value.port, value.protocol}];
        installed.config_index = index;
        installed.value = value;
        installed.ports_only.protocol = protocol;
        installed.ports_only.port = ntohs(value.port);
        installed.ports_only.reply_translation = !(value.flags & PORTMUX_F_NO_REPLIES);
        const auto count = std::min<std::size_t>(value.backend_count, PORTMUX_MAX_BACKENDS);
        for (std::size_t i = 0; i < count; ++i) {
            installed.ports_only.backends.push_back(Backend(ntohs(value.backends[i])));
        }
    }
    return entries;
}

portmux_route_key make_route_key(std::uint32_t config_index, const std::vector<std::uint8_t>& tag) {
    // Right-aligned, zero before: the data path reads a fixed window that
    // ends where the tag ends (xdp/payload.h).
    portmux_route_key key{};
    key.config = config_index;
    const std::size_t length = std::min<std::size_t>(tag.size(), PORTMUX_MAX_TAG_LEN);
    std::copy_n(tag.begin(), length, key.tag + PORTMUX_MAX_TAG_LEN - length);
    return key;
}

std::uint32_t backend_index(const Frontend& frontend, std::uint16_t port) {
    const auto found = std::find_if(frontend.backends.begin(), frontend.backends.end(),
                                    [port](const Backend& b) { return b.port == port; });
    return static_cast<std::uint32_t>(found - frontend.backends.begin());
}


}  // namespace

namespace {

// Smooth weighted round robin over the backends `takes` admits: every step
// each backend earns its weight, the richest is picked and pays the total.
// Heavy backends are interleaved with light ones instead of sent in bursts.
template <typename Admits>
std::vector<std::uint8_t> weighted_order(const std::vector<Backend>& backends, Admits takes) {
    auto share = [&](const Backend& backend) -> std::uint32_t {
        return takes(backend) ? backend.weight : 0;
    };
    std::uint32_t total = 0;
    for (const Backend& backend : backends) {
        total += share(backend);
    }
    std::vector<std::int64_t> credit(backends.size(), 0);
    std::vector<std::uint8_t> order;
    order.reserve(total);
    for (std::uint32_t step = 0; step < total; ++step) {
        std::size_t best = 0;
        for (std::size_t i = 0; i < backends.size(); ++i) {
            credit[i] += share(backends[i]);
            if (credit[i] > credit[best]) {
                best = i;
            }
        }
        credit[best] -= total;
        order.push_back(static_cast<std::uint8_t>(best));
    }
    return order;
}

}  // namespace

std::vector<std::uint8_t> round_robin_order(const std::vector<Backend>& backends) {
    return weighted_order(backends, [](const Backend& backend) { return !backend.drained; });
}

std::vector<std::uint8_t> round_robin_order(const std::vector<Backend>& backends, AddressFamily family) {
    return weighted_order(backends, [family](const Backend& backend) {
        return !backend.drained && (family == AddressFamily::v4 ? backend.up_v4 : backend.up_v6);
    });
}

void check_layout_version(int meta_fd, const std::string& where) {
    const std::uint32_t zero = 0;
    portmux_meta meta{};
    if (bpf_map_lookup_elem(meta_fd, &zero, &meta) != 0) {
        throw LayoutMismatch(fmt::format("reading the layout version of {}: {}", where,
                                         std::strerror(errno)));
    }
    if (meta.layout_version != PORTMUX_LAYOUT_VERSION) {
        throw LayoutMismatch(fmt::format(
            "{} was attached by a portmux with map layout {}, this one uses layout {}; detach it "
            "with that portmux (or `ip link set dev IFACE xdp off` and remove the pins) and attach "
            "again",
            where, meta.layout_version, PORTMUX_LAYOUT_VERSION));
    }
}

void check_layout_version(const std::filesystem::path& pin_dir) {
    const std::filesystem::path pin = pin_dir / kMetaPin;
    const int fd = bpf_obj_get(pin.c_str());
    if (fd < 0) {
        if (errno == ENOENT) {
            throw LayoutMismatch(fmt::format(
                "the pins in {} have no layout version (made by an older portmux, or an attach "
                "interrupted before it pinned everything); detach it and attach again",
                pin_dir.string()));
        }
        throw LayoutMismatch(
            fmt::format("opening pinned map {}: {}", pin.string(), std::strerror(errno)));
    }
    try {
        check_layout_version(fd, fmt::format("the attachment pinned in {}", pin_dir.string()));
    } catch (...) {
        close(fd);
        throw;
    }
    close(fd);
}

portmux_frontend encode_frontend(const Frontend& frontend, std::uint32_t slot,
                                 std::uint32_t config_index,
                                 std::span<const std::uint8_t> counter_slots) {
    portmux_frontend value{};
    value.slot = slot;
    value.config_index = config_index;
    value.port = htons(frontend.port);
    value.protocol = static_cast<std::uint8_t>(frontend.protocol);
    value.generation = backend_generation(frontend);
    value.backend_count = static_cast<std::uint16_t>(frontend.backends.size());
    for (std::size_t i = 0; i < frontend.backends.size(); ++i) {
        value.backends[i] = htons(frontend.backends[i].port);
        value.counter_slots[i] = i < counter_slots.size() ? counter_slots[i] : static_cast<std::uint8_t>(i);
        value.weights[i] = frontend.backends[i].weight;
        if (frontend.backends[i].drained) {
            value.drained_mask |= std::uint64_t{1} << i;
        }
        if (!frontend.backends[i].up_v4) {
            value.down_mask[PORTMUX_FAMILY_V4] |= std::uint64_t{1} << i;
        }
        if (!frontend.backends[i].up_v6) {
            value.down_mask[PORTMUX_FAMILY_V6] |= std::uint64_t{1} << i;
        }
    }
    for (const auto& [family, index] :
         {std::pair{AddressFamily::v4, PORTMUX_FAMILY_V4}, std::pair{AddressFamily::v6, PORTMUX_FAMILY_V6}}) {
        const std::vector<std::uint8_t> order = round_robin_order(frontend.backends, family);
        value.rr_length[index] = static_cast<std::uint16_t>(order.size());
        std::copy(order.begin(), order.end(), value.rr_order[index]);
    }

    if (frontend.affinity == Affinity::flow) {
        value.flags |= PORTMUX_F_FLOW_AFFINITY;
    } else if (frontend.affinity == Affinity::client) {
        value.flags |= PORTMUX_F_CLIENT_AFFINITY;
    }
    value.flow_idle_seconds = frontend.flow_idle_seconds;
    if (!frontend.reply_translation) {
        value.flags |= PORTMUX_F_NO_REPLIES;
    }

    if (frontend.validate) {
        value.flags |= PORTMUX_F_VALIDATE;
        portmux_validation& rules = value.validation;
        rules.min_payload = frontend.validate->min_payload;
        rules.max_payload = frontend.validate->max_payload;
        rules.match_count = static_cast<std::uint8_t>(frontend.validate->matches.size());
        for (std::size_t i = 0; i < frontend.validate->matches.size(); ++i) {
            const ByteMatch& match = frontend.validate->matches[i];
            portmux_byte_match& out = rules.matches[i];
            out.offset = match.offset;
            out.length = static_cast<std::uint8_t>(match.value.size());
            // Right-aligned (the data path reads a window that ends where
            // the match ends); the bytes before it stay zero in value and
            // mask, so all of them are compared without a branch per byte.
            const std::size_t skip = PORTMUX_MAX_MATCH_LEN - match.value.size();
            for (std::size_t b = 0; b < match.value.size(); ++b) {
                out.mask[skip + b] = match.mask.empty() ? 0xff : match.mask[b];
                out.value[skip + b] = match.value[b] & out.mask[skip + b];
            }
        }
    }
    if (frontend.route) {
        value.flags |= PORTMUX_F_ROUTE;
        if (frontend.route->unknown == UnknownTagAction::round_robin) {
            value.flags |= PORTMUX_F_ROUTE_UNKNOWN_RR;
        }
        value.route.tag_offset = frontend.route->offset;
        value.route.tag_length = frontend.route->length;
    }
    return value;
}

namespace {

bool frontend_translates_replies(const Frontend& frontend) {
    return frontend.protocol == Protocol::tcp || frontend.reply_translation;
}

}  // namespace

std::map<std::uint32_t, portmux_port> port_entries(const Config& config,
                                                   std::span<const std::uint32_t> config_indices) {
    std::map<std::uint32_t, portmux_port> entries;
    for (std::size_t i = 0; i < config.frontends.size(); ++i) {
        const Frontend& frontend = config.frontends[i];
        portmux_port& own = entries[port_index(frontend.protocol, frontend.port)];
        own.flags |= PORTMUX_PORT_FRONTEND;
        own.config = i < config_indices.size() ? config_indices[i] : 0;
        for (const Backend& backend : frontend.backends) {
            portmux_port& entry = entries[port_index(frontend.protocol, backend.port)];
            entry.flags |= PORTMUX_PORT_BACKEND;
            if (frontend_translates_replies(frontend)) {
                entry.reply_port = htons(frontend.port);
            }
        }
    }
    return entries;
}

portmux_port_bits port_bits_of(const std::map<std::uint32_t, portmux_port>& entries) {
    portmux_port_bits bits{};
    for (const auto& [index, entry] : entries) {
        if (entry.flags != 0 && index < PORTMUX_PORT_ENTRIES) {
            bits.bits[index / 8] |= static_cast<std::uint8_t>(1u << (index % 8));
        }
    }
    return bits;
}

bool translates_replies(const Config& config) {
    return std::any_of(config.frontends.begin(), config.frontends.end(), frontend_translates_replies);
}

namespace {

bool same_port_entry(const portmux_port& a, const portmux_port& b) {
    return std::memcmp(&a, &b, sizeof a) == 0;
}

// The map writes of one write_config(): each counted (for the fault hook)
// and, until disarm(), undone by the destructor in reverse: `ports` entries
// written back to what they held, routes added removed (after a grace
// period when an entry had been flipped). Config buffers, counter bases and
// the state of fresh slots need no undo: no `ports` entry points at them.
class ReloadWrites {
public:
    ReloadWrites(const DataPathMaps& maps) : maps_(maps) {
        if (const char* fault = std::getenv("PORTMUX_TEST_FAIL_MAP_WRITE")) {
            fail_at_ = std::strtoull(fault, nullptr, 10);
        }
    }
    ReloadWrites(const ReloadWrites&) = delete;
    ReloadWrites& operator=(const ReloadWrites&) = delete;

    ~ReloadWrites() {
        if (!armed_) {
            return;
        }
        // Best effort, and never throwing: the error that got us here is
        // the one the caller reports.
        for (auto it = ports_before_.rbegin(); it != ports_before_.rend(); ++it) {
            bpf_map_update_elem(maps_.ports, &it->first, &it->second, BPF_ANY);
        }
        if (bits_before_) {  // the entries are back: so may their bits be
            const std::uint32_t zero = 0;
            bpf_map_update_elem(maps_.port_bits, &zero, &*bits_before_, BPF_ANY);
        }
        if (!ports_before_.empty()) {
            try {
                wait_for_bpf_readers();
            } catch (const std::exception&) {
                return;  // the routes stay; the next reload removes them (stale_routes)
            }
        }
        for (const portmux_route_key& key : routes_added_) {
            bpf_map_delete_elem(maps_.routes, &key);
        }
    }

    void disarm() { armed_ = false; }

    // A write with no undo (unreachable data); throws naming WHAT.
    template <typename Key, typename Value>
    void update(int fd, const Key& key, const Value& value, std::string_view what) {
        if (fault() || bpf_map_update_elem(fd, &key, &value, BPF_ANY) != 0) {
            throw_map_error(errno, what);
        }
    }

    void add_route(const portmux_route_key& key, const portmux_route_target& target,
                   std::string_view what) {
        update(maps_.routes, key, target, what);
        routes_added_.push_back(key);
    }

    void delete_route(const portmux_route_key& key) {
        if ((fault() || bpf_map_delete_elem(maps_.routes, &key) != 0) && errno != ENOENT) {
            throw_map_error(errno, "removing a stale route from the routes map");
        }
    }

    // BEFORE: what the entry holds now (the installed config's entry, or zero).
    void write_port(std::uint32_t index, const portmux_port& entry, const portmux_port& before) {
        update(maps_.ports, index, entry, "writing the ports map");
        ports_before_.emplace_back(index, before);
    }

    bool flipped() const { return !ports_before_.empty(); }

    // Before any `ports` entry is written: the bits set now (CURRENT) and
    // those of the entries to come (WANTED), so no entry is ever flagged
    // while its bit is clear. Undone with the entries.
    void widen_port_bits(const portmux_port_bits& current, const portmux_port_bits& wanted) {
        widened_ = current;
        for (std::size_t i = 0; i < sizeof widened_.bits; ++i) {
            widened_.bits[i] |= wanted.bits[i];
        }
        if (std::memcmp(&widened_, &current, sizeof current) != 0) {
            update(maps_.port_bits, std::uint32_t{0}, widened_, "writing the port_bits map");
            bits_before_ = current;
        }
    }

    // Once the new config is in force: the bits of the entries it cleared
    // (INSTALLED's, not WANTED's) go. Every other bit stays, also one left
    // by a reload killed midway: a bit set for a zero entry costs its
    // traffic the full parse, nothing more.
    void narrow_port_bits(const portmux_port_bits& installed, const portmux_port_bits& wanted) {
        portmux_port_bits narrowed = widened_;
        for (std::size_t i = 0; i < sizeof narrowed.bits; ++i) {
            narrowed.bits[i] &= static_cast<std::uint8_t>(~(installed.bits[i] & ~wanted.bits[i]));
        }
        if (std::memcmp(&narrowed, &widened_, sizeof narrowed) != 0) {
            update(maps_.port_bits, std::uint32_t{0}, narrowed, "clearing bits of the port_bits map");
        }
    }

private:
    bool fault() {
        if (++writes_ != fail_at_) {
            return false;
        }
        errno = EIO;
        return true;
    }

    const DataPathMaps& maps_;
    bool armed_ = true;
    std::uint64_t writes_ = 0;
    std::uint64_t fail_at_ = 0;  // 0: never
    std::vector<std::pair<std::uint32_t, portmux_port>> ports_before_;
    portmux_port_bits widened_{};                   // what widen_port_bits() left
    std::optional<portmux_port_bits> bits_before_;  // set once widen_port_bits() wrote
    std::vector<portmux_route_key> routes_added_;
};

// Sets the config's entries of the ports array and zeroes those of the
// installed config it no longer has: one write per entry that changes. A
// frontend's entry changes in one write, flags and config index together.
void write_ports(ReloadWrites& writes, const std::map<std::uint32_t, portmux_port>& wanted,
                 const std::map<std::uint32_t, portmux_port>& before) {
    std::map<std::uint32_t, portmux_port> changes;
    for (const auto& [index, entry] : wanted) {
        const auto old = before.find(index);
        if (old == before.end() || !same_port_entry(old->second, entry)) {
            changes.emplace(index, entry);
        }
    }
    for (const auto& [index, entry] : before) {
        if (!wanted.contains(index)) {
            changes.emplace(index, portmux_port{});
        }
    }
    for (const auto& [index, entry] : changes) {
        const auto old = before.find(index);
        writes.write_port(index, entry, old == before.end() ? portmux_port{} : old->second);
    }
}

SlotCounts summed_counts(int frontend_state_fd, std::uint32_t slot) {
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) {
        throw_map_error(-cpus, "counting possible CPUs");
    }
    std::vector<portmux_frontend_state> per_cpu(static_cast<std::size_t>(cpus));
    if (bpf_map_lookup_elem(frontend_state_fd, &slot, per_cpu.data()) != 0) {
        throw_map_error(errno, fmt::format("reading counters of frontend slot {}", slot));
    }
    SlotCounts counts{};
    for (const portmux_frontend_state& cpu : per_cpu) {
        for (std::size_t c = 0; c < PORTMUX_COUNTER_SLOTS; ++c) {
            counts[c].packets += cpu.backends[c].packets;
            counts[c].bytes += cpu.backends[c].bytes;
        }
    }
    return counts;
}

portmux_counter_bases read_bases(int counter_bases_fd, std::uint32_t slot) {
    portmux_counter_bases bases{};
    if (counter_bases_fd >= 0 && bpf_map_lookup_elem(counter_bases_fd, &slot, &bases) != 0) {
        throw_map_error(errno, fmt::format("reading the counter bases of frontend slot {}", slot));
    }
    return bases;
}

std::vector<portmux_route_key> route_keys(int routes_fd) {
    return list_keys<portmux_route_key>(routes_fd, "routes");
}

}  // namespace

void write_config(const DataPathMaps& maps, const Config& config) {
    if (maps.port_bits < 0) {
        throw std::invalid_argument("write_config: no port_bits map (the data path would pass every packet)");
    }
    ReloadWrites writes(maps);
    if (maps.meta >= 0) {
        const std::uint32_t zero = 0;
        const portmux_meta meta{PORTMUX_LAYOUT_VERSION, 0};
        writes.update(maps.meta, zero, meta, "writing the meta map");
    }
    const std::uint32_t capacity =
        std::min(state_capacity(maps.frontend_state),
                 map_capacity(maps.frontend_configs, "frontend_configs") / PORTMUX_CONFIG_BUFFERS);
    const std::map<KeyTuple, InstalledEntry> installed = installed_entries(maps);
    // Buffers (and their routes) are written below only where no `ports`
    // entry points: after a grace period, no program still reads one an
    // earlier write pointed away from (or one a portmux killed mid-reload
    // left behind).
    if (!installed.empty()) {
        wait_for_bpf_readers();
    }
    std::vector<std::uint32_t> live_configs;
    for (const auto& [key, entry] : installed) {
        live_configs.push_back(entry.config_index);
    }
    // Routes of buffers no entry points at: left by a reload killed or
    // failed midway. Removing them only frees room.
    std::vector<portmux_route_key> existing_routes = route_keys(maps.routes);
    for (const portmux_route_key& key : stale_routes(existing_routes, live_configs)) {
        writes.delete_route(key);
    }
    std::size_t new_routes = 0;
    for (const Frontend& frontend : config.frontends) {
        new_routes += frontend.route ? frontend.route->tags.size() : 0;
    }
    const std::size_t live_routes = existing_routes.size() - stale_routes(existing_routes, live_configs).size();
    const std::uint32_t route_capacity = map_capacity(maps.routes, "routes");
    if (live_routes + new_routes > route_capacity) {
        throw std::system_error(E2BIG, std::generic_category(),
                                fmt::format("the routes map holds {} routes: the {} in use and the new "
                                            "config's {} do not fit together",
                                            route_capacity, live_routes, new_routes));
    }

    // Slots: a staying frontend keeps its own, a new one takes a free one.
    // The buffer readers use, by slot, for every installed frontend (staying
    // or leaving: a leaving one's entry still points at it until the end).
    std::map<std::uint32_t, std::uint32_t> live_buffer;
    for (const auto& [key, entry] : installed) {
        live_buffer[entry.config_index / PORTMUX_CONFIG_BUFFERS] = entry.config_index % PORTMUX_CONFIG_BUFFERS;
    }
    std::set<KeyTuple> wanted;
    std::set<std::uint32_t> kept;
    for (const Frontend& frontend : config.frontends) {
        const KeyTuple key = key_tuple(make_key(frontend));
        wanted.insert(key);
        if (auto it = installed.find(key); it != installed.end()) {
            kept.insert(it->second.config_index / PORTMUX_CONFIG_BUFFERS);
        }
    }
    std::vector<std::uint32_t> slot_of(config.frontends.size());
    std::vector<const InstalledEntry*> staying(config.frontends.size(), nullptr);
    std::uint32_t next_free = 0;
    for (std::size_t i = 0; i < config.frontends.size(); ++i) {
        const KeyTuple key = key_tuple(make_key(config.frontends[i]));
        if (auto it = installed.find(key); it != installed.end()) {
            slot_of[i] = it->second.config_index / PORTMUX_CONFIG_BUFFERS;
            staying[i] = &it->second;
            continue;
        }
        // A leaving frontend's slot only when nothing else is free: its
        // readers count into that state until the flip and a grace period,
        // after zero_state() below, so the new frontend would start with
        // a few of the leaving one's packets.
        while (next_free < capacity && (kept.contains(next_free) || live_buffer.contains(next_free))) {
            ++next_free;
        }
        if (next_free >= capacity) {
            next_free = 0;
            while (kept.contains(next_free)) {
                ++next_free;
            }
        }
        if (next_free >= capacity) {
            throw std::system_error(ENOSPC, std::generic_category(),
                                    fmt::format("the config needs more than the {} frontend slots "
                                                "this attachment has; detach and attach again",
                                                capacity));
        }
        slot_of[i] = next_free;
        kept.insert(next_free);
    }
    // Each frontend's config goes to the buffer of its slot that no reader uses.
    std::vector<std::uint32_t> config_index(config.frontends.size());
    for (std::size_t i = 0; i < config.frontends.size(); ++i) {
        const auto live = live_buffer.find(slot_of[i]);
        const std::uint32_t buffer = live == live_buffer.end() ? 0 : (live->second + 1) % PORTMUX_CONFIG_BUFFERS;
        config_index[i] = slot_of[i] * PORTMUX_CONFIG_BUFFERS + buffer;
    }

    // Counter slots: a staying backend keeps its own; a slot handed to a
    // new backend is rebased now, while no config readers can reach uses it.
    // A new frontend's slot starts from zero.
    std::vector<std::vector<std::uint8_t>> counter_slots(config.frontends.size());
    for (std::size_t i = 0; i < config.frontends.size(); ++i) {
        std::vector<std::uint16_t> ports;
        for (const Backend& backend : config.frontends[i].backends) {
            ports.push_back(backend.port);
        }
        std::vector<BackendCounterSlot> live;
        if (staying[i]) {
            const portmux_frontend& value = staying[i]->value;
            const auto count = std::min<std::size_t>(value.backend_count, PORTMUX_MAX_BACKENDS);
            for (std::size_t b = 0; b < count; ++b) {
                live.push_back({ntohs(value.backends[b]), value.counter_slots[b]});
            }
        }
        CounterSlotPlan plan = assign_counter_slots(live, ports);
        counter_slots[i] = std::move(plan.slots);
        if (!staying[i]) {
            zero_state(maps.frontend_state, slot_of[i]);
            if (maps.counter_bases >= 0) {
                writes.update(maps.counter_bases, slot_of[i], portmux_counter_bases{},
                              fmt::format("resetting the counter bases of frontend slot {}", slot_of[i]));
            }
        } else if (!plan.taken.empty() && maps.counter_bases >= 0) {
            const SlotCounts counts = summed_counts(maps.frontend_state, slot_of[i]);
            portmux_counter_bases bases = read_bases(maps.counter_bases, slot_of[i]);
            for (const std::uint8_t slot : plan.taken) {
                rebase_counter_slot(bases, counts, slot);
            }
            writes.update(maps.counter_bases, slot_of[i], bases,
                          fmt::format("writing the counter bases of frontend slot {}", slot_of[i]));
        }
    }

    // The new buffers' routes and configs: nothing reaches them yet.
    for (std::size_t i = 0; i < config.frontends.size(); ++i) {
        const Frontend& frontend = config.frontends[i];
        if (!frontend.route) {
            continue;
        }
        for (const RouteTag& tag : frontend.route->tags) {
            const portmux_route_key key = make_route_key(config_index[i], tag.tag);
            const std::uint32_t index = backend_index(frontend, tag.backend_port);
            const portmux_route_target target{htons(tag.backend_port), static_cast<std::uint16_t>(index)};
            writes.add_route(key, target,
                             fmt::format("writing a route of frontend {} to the routes map", frontend.port));
        }
    }
    for (std::size_t i = 0; i < config.frontends.size(); ++i) {
        const Frontend& frontend = config.frontends[i];
        const portmux_frontend value =
            encode_frontend(frontend, slot_of[i], config_index[i], counter_slots[i]);
        writes.update(maps.frontend_configs, config_index[i], value,
                      fmt::format("writing frontend {}/{} to the frontend_configs map", frontend.port,
                                  to_string(frontend.protocol)));
    }

    // The flip: each frontend's ports entry now points at its new buffer;
    // entries of ports the config no longer uses are cleared.
    Config installed_config;
    std::vector<std::uint32_t> installed_index;
    for (const auto& [key, entry] : installed) {
        installed_config.frontends.push_back(entry.ports_only);
        installed_index.push_back(entry.config_index);
    }
    const std::map<std::uint32_t, portmux_port> wanted_ports = port_entries(config, config_index);
    const std::map<std::uint32_t, portmux_port> installed_ports =
        port_entries(installed_config, installed_index);
    const portmux_port_bits wanted_bits = port_bits_of(wanted_ports);
    const portmux_port_bits installed_bits = port_bits_of(installed_ports);
    portmux_port_bits current_bits{};
    const std::uint32_t zero = 0;
    if (bpf_map_lookup_elem(maps.port_bits, &zero, &current_bits) != 0) {
        throw_map_error(errno, "reading the port_bits map");
    }
    writes.widen_port_bits(current_bits, wanted_bits);
    write_ports(writes, wanted_ports, installed_ports);
    writes.disarm();

    // The new config is in force. The bits of cleared entries go; once no
    // program reads the old buffers, their routes go (a failure here leaves
    // them to the next reload).
    if (installed.empty()) {
        return;
    }
    try {
        writes.narrow_port_bits(installed_bits, wanted_bits);
        wait_for_bpf_readers();
        for (const portmux_route_key& key : stale_routes(route_keys(maps.routes), config_index)) {
            writes.delete_route(key);
        }
    } catch (const std::system_error& e) {
        throw CleanupDeferred(e.code(), fmt::format("the new config is in force, but its cleanup "
                                                    "failed (the next reload retries it): {}",
                                                    e.what()));
    }
}

std::optional<portmux_frontend> installed_config(const DataPathMaps& maps, Protocol protocol,
                                                 std::uint16_t port) {
    const std::uint32_t index = port_index(protocol, port);
    portmux_port entry{};
    if (bpf_map_lookup_elem(maps.ports, &index, &entry) != 0) {
        throw_map_error(errno, "reading the ports map");
    }
    if (!(entry.flags & PORTMUX_PORT_FRONTEND)) {
        return std::nullopt;
    }
    portmux_frontend value{};
    if (bpf_map_lookup_elem(maps.frontend_configs, &entry.config, &value) != 0) {
        throw_map_error(errno, "reading the frontend_configs map");
    }
    if (value.port != htons(port) || value.protocol != static_cast<std::uint8_t>(protocol)) {
        return std::nullopt;
    }
    return value;
}

std::vector<InstalledFrontend> read_frontends(const DataPathMaps& maps) {
    std::vector<InstalledFrontend> installed;
    std::optional<std::vector<portmux_route_key>> all_routes;
    for (const auto& [key_fields, entry] : installed_entries(maps)) {
        const portmux_frontend& value = entry.value;
        const portmux_frontend_key key{value.port, value.protocol, 0};
        Frontend frontend;
        frontend.port = ntohs(key.port);
        frontend.protocol = static_cast<Protocol>(key.protocol);
        const auto count = std::min<std::size_t>(value.backend_count, PORTMUX_MAX_BACKENDS);
        for (std::size_t i = 0; i < count; ++i) {
            Backend backend(ntohs(value.backends[i]), value.weights[i]);
            backend.drained = (value.drained_mask >> i) & 1;
            backend.up_v4 = !((value.down_mask[PORTMUX_FAMILY_V4] >> i) & 1);
            backend.up_v6 = !((value.down_mask[PORTMUX_FAMILY_V6] >> i) & 1);
            frontend.backends.push_back(backend);
        }
        frontend.affinity = (value.flags & PORTMUX_F_FLOW_AFFINITY)     ? Affinity::flow
                            : (value.flags & PORTMUX_F_CLIENT_AFFINITY) ? Affinity::client
                                                                        : Affinity::packet;
        frontend.flow_idle_seconds = value.flow_idle_seconds;
        frontend.reply_translation = !(value.flags & PORTMUX_F_NO_REPLIES);
        if (value.flags & PORTMUX_F_VALIDATE) {
            Validation rules;
            rules.min_payload = value.validation.min_payload;
            rules.max_payload = value.validation.max_payload;
            for (std::size_t i = 0;
                 i < std::min<std::size_t>(value.validation.match_count, PORTMUX_MAX_MATCHES); ++i) {
                const portmux_byte_match& match = value.validation.matches[i];
                const std::size_t length = std::min<std::size_t>(match.length, PORTMUX_MAX_MATCH_LEN);
                const std::size_t skip = PORTMUX_MAX_MATCH_LEN - length;
                rules.matches.push_back({match.offset,
                                         {match.value + skip, match.value + PORTMUX_MAX_MATCH_LEN},
                                         {match.mask + skip, match.mask + PORTMUX_MAX_MATCH_LEN}});
            }
            frontend.validate = std::move(rules);
        }
        if (value.flags & PORTMUX_F_ROUTE) {
            Route route;
            route.offset = value.route.tag_offset;
            route.length = value.route.tag_length;
            route.unknown = (value.flags & PORTMUX_F_ROUTE_UNKNOWN_RR)
                                ? UnknownTagAction::round_robin
                                : UnknownTagAction::drop;
            if (!all_routes) {
                all_routes = route_keys(maps.routes);
            }
            for (const auto& route_key : *all_routes) {
                portmux_route_target target{};
                // This config's own routes, to a backend it has.
                if (route_key.config != entry.config_index ||
                    bpf_map_lookup_elem(maps.routes, &route_key, &target) != 0 ||
                    target.backend_index >= count ||
                    value.backends[target.backend_index] != target.backend_port) {
                    continue;
                }
                const std::size_t tag_length = std::min<std::size_t>(route.length, PORTMUX_MAX_TAG_LEN);
                route.tags.push_back({{route_key.tag + PORTMUX_MAX_TAG_LEN - tag_length,
                                       route_key.tag + PORTMUX_MAX_TAG_LEN},
                                      frontend.backends[target.backend_index].port});
            }
            std::sort(route.tags.begin(), route.tags.end(),
                      [](const RouteTag& a, const RouteTag& b) { return a.tag < b.tag; });
            frontend.route = std::move(route);
        }
        installed.push_back({std::move(frontend), value.slot,
                             {value.counter_slots, value.counter_slots + count}});
    }
    std::sort(installed.begin(), installed.end(), [](const auto& a, const auto& b) {
        return std::tie(a.frontend.protocol, a.frontend.port) <
               std::tie(b.frontend.protocol, b.frontend.port);
    });
    return installed;
}

}  // namespace portmux
