// Reloads that cannot misroute or half-apply: routes belong to a config
// buffer (keyed by its index) and switch with it; a route resolves by
// backend identity; a reload that fails at any map write leaves the old
// config exactly; two full route sets fit side by side.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "fixtures.hpp"
#include "xdp_harness.hpp"

using namespace portmux;
using namespace portmux::test;

namespace {

constexpr std::uint16_t kRouted = 5060;
constexpr std::uint16_t kOther = 5080;

Bytes text(const std::string& s) {
    return Bytes(s.begin(), s.end());
}

RouteTag route_tag(const std::string& tag, std::uint16_t backend) {
    return {text(tag), backend};
}

// A frontend 5060 routing by the 4-byte tag at payload offset 2: `backends`
// in this order, each `tag_only` one with weight 0 (reached only by tag).
Frontend routed_frontend(const std::vector<std::uint16_t>& backends, const std::vector<std::uint16_t>& tag_only,
                         std::vector<RouteTag> tags) {
    Frontend frontend = make_frontend(kRouted, Protocol::udp, backends);
    for (Backend& backend : frontend.backends) {
        if (std::find(tag_only.begin(), tag_only.end(), backend.port) != tag_only.end()) backend.weight = 0;
    }
    Route route;
    route.offset = 2;
    route.length = 4;
    route.tags = std::move(tags);
    frontend.route = std::move(route);
    return frontend;
}

// Tags AAAA, AAAB, CCCC; 5071 and 5072 only by tag.
Frontend old_frontend() {
    return routed_frontend({5061, 5062, 5071, 5072}, {5071, 5072},
                           {route_tag("AAAA", 5071), route_tag("AAAB", 5072), route_tag("CCCC", 5061)});
}

// Reordered, 5062 replaced by 5063, one tag more; and a second frontend.
Config new_config() {
    const Frontend routed = routed_frontend(
        {5072, 5071, 5063, 5061}, {5071, 5072},
        {route_tag("AAAA", 5071), route_tag("AAAB", 5072), route_tag("CCCC", 5061), route_tag("DDDD", 5063)});
    return config_of({routed, make_frontend(kOther, Protocol::udp, {5081})});
}

Frame tagged_datagram(const std::string& tag, std::uint16_t client_port = kClientPort) {
    Bytes payload = text("..");
    const Bytes t = text(tag);
    payload.insert(payload.end(), t.begin(), t.end());
    payload.push_back('!');
    return ipv4_client().udp(client_port, kRouted).payload(payload).build();
}

// Every tag goes where CONFIG's route sends it; tags it lacks drop.
void require_routes_of(const Config& config) {
    const Route& route = *config.frontends[0].route;
    for (const std::string tag : {"AAAA", "AAAB", "CCCC", "DDDD"}) {
        INFO("tag " << tag);
        const auto known = std::find_if(route.tags.begin(), route.tags.end(),
                                        [&](const RouteTag& t) { return t.tag == text(tag); });
        if (known == route.tags.end()) {
            require_dropped(tagged_datagram(tag));
        } else {
            CHECK(forward(tagged_datagram(tag)) == known->backend_port);
        }
    }
}

// What status and stats show of the maps: every installed frontend as
// read back, with its slot, counter slots and counters.
std::string described_maps() {
    std::string out = "port_bits";
    for (const std::uint32_t index : data_path().port_bits_set()) {
        out += " " + std::to_string(index);
    }
    out += "\n";
    for (const InstalledFrontend& installed : read_frontends(data_path().maps())) {
        const Frontend& f = installed.frontend;
        out += std::to_string(f.port) + " slot " + std::to_string(installed.slot) + " backends";
        for (std::size_t i = 0; i < f.backends.size(); ++i) {
            out += " " + std::to_string(f.backends[i].port) + "/w" + std::to_string(f.backends[i].weight) +
                   "/c" + std::to_string(installed.counter_slots.at(i));
        }
        if (f.route) {
            out += " tags";
            for (const RouteTag& tag : f.route->tags) {
                out += " " + std::string(tag.tag.begin(), tag.tag.end()) + "->" + std::to_string(tag.backend_port);
            }
        }
        const FrontendStats stats = data_path().stats(f.port, f.protocol);
        out += " received " + std::to_string(stats.received) + " forwarded " + std::to_string(stats.forwarded()) +
               " removed " + std::to_string(stats.retired.packets) + " counts";
        for (const BackendStats& b : stats.backends) {
            out += " " + std::to_string(b.packets) + "/" + std::to_string(b.bytes);
        }
        out += "\n";
    }
    return out;
}

// Sets the fault hook for one reload.
struct FailMapWrite {
    explicit FailMapWrite(std::size_t nth) {
        ::setenv("PORTMUX_TEST_FAIL_MAP_WRITE", std::to_string(nth).c_str(), 1);
    }
    ~FailMapWrite() { ::unsetenv("PORTMUX_TEST_FAIL_MAP_WRITE"); }
};

std::size_t route_count() {
    return count_map_keys<portmux_route_key>(data_path().maps().routes);
}

}  // namespace

TEST_CASE("reload: routes switch with their config buffer, by backend identity", "[reload][routing]") {
    const Config old_config = config_of({old_frontend()});
    data_path().configure(old_config);
    require_routes_of(old_config);
    CHECK(route_count() == 3);
    const Config next = new_config();
    data_path().reload(next);
    require_routes_of(next);
    // Only the live buffer's routes are left.
    CHECK(route_count() == 4);
    data_path().reload(old_config);
    require_routes_of(old_config);
    CHECK(route_count() == 3);
}

TEST_CASE("reload: a route whose target is not backends[index] drops as no_backend", "[reload][routing]") {
    data_path().configure(config_of({old_frontend()}));
    const auto config = installed_config(data_path().maps(), Protocol::udp, kRouted);
    REQUIRE(config.has_value());
    // AAAA's route, pointing at index 3 (5072) but naming 5071: a mismatch.
    portmux_route_key key{};
    key.config = config->config_index;
    const Bytes tag = text("AAAA");
    std::copy(tag.begin(), tag.end(), key.tag + PORTMUX_MAX_TAG_LEN - tag.size());
    portmux_route_target target{};
    REQUIRE(bpf_map_lookup_elem(data_path().maps().routes, &key, &target) == 0);
    CHECK(ntohs(target.backend_port) == 5071);
    CHECK(target.backend_index == 2);
    target.backend_index = 3;
    REQUIRE(bpf_map_update_elem(data_path().maps().routes, &key, &target, BPF_EXIST) == 0);
    require_dropped(tagged_datagram("AAAA"));
    CHECK(data_path().stats(kRouted, Protocol::udp).drops[PORTMUX_DROP_NO_BACKEND] == 1);
    // Routes of another buffer are not this config's: a route keyed by the
    // other buffer of the slot is never looked up.
    key.config = config->config_index ^ 1;
    target = {htons(5061), 0};
    REQUIRE(bpf_map_update_elem(data_path().maps().routes, &key, &target, BPF_ANY) == 0);
    require_dropped(tagged_datagram("AAAA"));
    CHECK(data_path().stats(kRouted, Protocol::udp).drops[PORTMUX_DROP_NO_BACKEND] == 2);
    // The next reload removes the stray route with the other stale ones.
    data_path().reload(config_of({old_frontend()}));
    CHECK(route_count() == 3);
}

TEST_CASE("reload: a failure at any map write leaves the old config exactly; then it applies", "[reload][routing]") {
    const Config old_config = config_of({old_frontend()});
    const Config next = new_config();
    data_path().configure(old_config);
    for (int i = 0; i < 4; ++i) {
        forward(tagged_datagram("CCCC", static_cast<std::uint16_t>(40000 + i)));
    }
    std::size_t failed_before_flip = 0;
    std::size_t failed_after_flip = 0;
    std::size_t nth = 1;
    for (; nth < 500; ++nth) {
        INFO("map write " << nth << " fails");
        const std::string before = described_maps();
        const std::size_t routes_before = route_count();
        bool threw = false;
        std::string message;
        {
            FailMapWrite fault(nth);
            try {
                data_path().reload(next);
            } catch (const std::system_error& e) {
                threw = true;
                message = e.what();
            }
        }
        if (!threw) {
            break;  // past the reload's last write: it applied
        }
        INFO(message);
        if (message.find("in force") != std::string::npos) {
            // Failed cleaning up after the flip: the new config serves.
            ++failed_after_flip;
            require_routes_of(next);
            data_path().reload(old_config);
            require_routes_of(old_config);
            continue;
        }
        ++failed_before_flip;
        CHECK(described_maps() == before);
        CHECK(route_count() == routes_before);
        require_routes_of(old_config);
    }
    CHECK(nth < 500);
    CHECK(failed_before_flip >= 6);  // meta, bases, routes, configs, ports
    CHECK(failed_after_flip >= 1);   // the old buffer's route deletes
    require_routes_of(next);
    CHECK(route_count() == 4);
}

TEST_CASE("reload: 65,536 tags to 65,536 other tags applies whole", "[reload][routing]") {
    constexpr std::size_t kTags = PORTMUX_MAX_ROUTES;
    auto frontend_with_tags = [&](std::uint8_t first_byte, std::size_t shift) {
        Frontend frontend = make_frontend(kRouted, Protocol::udp, {5061, 5062});
        Route route;
        route.offset = 0;
        route.length = 3;
        for (std::size_t i = 0; i < kTags; ++i) {
            route.tags.push_back({{first_byte, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)},
                                  static_cast<std::uint16_t>(5061 + (i + shift) % 2)});
        }
        frontend.route = std::move(route);
        return frontend;
    };
    auto datagram_for = [](std::uint8_t first_byte, std::size_t i) {
        return ipv4_client()
            .udp(kClientPort, kRouted)
            .payload(Bytes{first_byte, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i), '!'})
            .build();
    };
    data_path().configure(config_of({frontend_with_tags(0, 0)}));
    CHECK(route_count() == kTags);
    data_path().reload(config_of({frontend_with_tags(1, 1)}));
    CHECK(route_count() == kTags);
    // Every 97th tag and the last: the new tags route by the new rule,
    // the old ones are unknown now.
    std::vector<std::size_t> sample;
    for (std::size_t i = 0; i < kTags; i += 97) sample.push_back(i);
    sample.push_back(kTags - 1);
    for (const std::size_t i : sample) {
        INFO("tag " << i);
        CHECK(forward(datagram_for(1, i)) == 5061 + (i + 1) % 2);
        require_dropped(datagram_for(0, i));
    }
}
