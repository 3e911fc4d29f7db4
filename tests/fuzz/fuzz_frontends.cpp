#include "fuzz_frontends.hpp"

#include <algorithm>

namespace portmux::fuzz {
namespace {

Bytes text(const char* s) {
    return Bytes(s, s + std::char_traits<char>::length(s));
}

std::vector<FrontendSpec> build_specs() {
    std::vector<FrontendSpec> specs;

    FrontendSpec rr;
    rr.name = "udp-rr";
    rr.port = 9000;
    rr.protocol = kProtoUdp;
    rr.backends = {{9001, 1}, {9002, 2}, {9003, 1}};
    specs.push_back(rr);

    FrontendSpec wide;
    wide.name = "udp-rr-64";
    wide.port = 9800;
    wide.protocol = kProtoUdp;
    for (std::uint16_t i = 0; i < 64; ++i) {
        wide.backends.push_back({static_cast<std::uint16_t>(10000 + i),
                                 static_cast<std::uint16_t>(i % 4 + 1)});  // weights sum to 160
    }
    specs.push_back(wide);

    FrontendSpec flow;
    flow.name = "udp-flow";
    flow.port = 9100;
    flow.protocol = kProtoUdp;
    flow.flow_affinity = true;
    flow.backends = {{9101, 1}, {9102, 1}, {9103, 1}};
    specs.push_back(flow);

    // Same port as the UDP round robin: the protocol is part of the key.
    FrontendSpec tcp;
    tcp.name = "tcp";
    tcp.port = 9000;
    tcp.protocol = kProtoTcp;
    tcp.backends = {{9201, 1}, {9202, 1}};
    specs.push_back(tcp);

    FrontendSpec tcp_validate;
    tcp_validate.name = "tcp-validate";
    tcp_validate.port = 9400;
    tcp_validate.protocol = kProtoTcp;
    tcp_validate.backends = {{9401, 1}, {9402, 1}};
    tcp_validate.validate = true;
    tcp_validate.min_payload = 3;
    tcp_validate.max_payload = 600;
    tcp_validate.matches = {{2, {0xca, 0xfe}, {}}};
    specs.push_back(tcp_validate);

    FrontendSpec validate;
    validate.name = "udp-validate";
    validate.port = 9500;
    validate.protocol = kProtoUdp;
    validate.backends = {{9501, 1}, {9502, 1}};
    validate.validate = true;
    validate.min_payload = 4;
    validate.max_payload = 64;
    validate.matches = {{0, text("PMUX"), {}}, {6, {0x10}, {0xf0}}};
    specs.push_back(validate);

    FrontendSpec far;
    far.name = "udp-validate-far";
    far.port = 9900;
    far.protocol = kProtoUdp;
    far.backends = {{9901, 1}, {9902, 1}};
    far.validate = true;
    far.min_payload = 1490;
    far.max_payload = 2400;
    far.matches = {{1484, text("far-away-magic!!"), {}}};  // ends exactly at 1500
    specs.push_back(far);

    FrontendSpec route;
    route.name = "udp-route";
    route.port = 9600;
    route.protocol = kProtoUdp;
    route.backends = {{9601, 1}, {9602, 1}, {9603, 0}};
    route.route = true;
    route.tag_offset = 2;
    route.tag_length = 4;
    route.tags = {{text("AAAA"), 9601}, {text("BBBB"), 9602}, {text("CCCC"), 9603},
                  {{0, 0, 0, 0}, 9602}};
    specs.push_back(route);

    // Only route targets, no listed backend (weight 0 each): nothing for
    // round robin, unknown tags drop.
    FrontendSpec route_only;
    route_only.name = "udp-route-only";
    route_only.port = 9650;
    route_only.protocol = kProtoUdp;
    route_only.backends = {{5001, 0}, {5002, 0}};
    route_only.route = true;
    route_only.tag_offset = 20;
    route_only.tag_length = 3;
    route_only.tags = {{text("600"), 5001}, {text("601"), 5002}};
    specs.push_back(route_only);

    FrontendSpec route_rr;
    route_rr.name = "udp-validate-route-rr";
    route_rr.port = 9700;
    route_rr.protocol = kProtoUdp;
    route_rr.backends = {{9701, 1}, {9702, 1}, {9703, 1}};
    route_rr.validate = true;
    route_rr.min_payload = 2;
    route_rr.max_payload = 1480;
    route_rr.matches = {{0, {0x80}, {0xc0}}};
    route_rr.route = true;
    route_rr.tag_offset = 0;
    route_rr.tag_length = 16;
    route_rr.tags = {{text("\x81 tenant-number1"), 9703}, {text("\x82 tenant-number2"), 9701}};
    route_rr.unknown_round_robin = true;
    specs.push_back(route_rr);

    return specs;
}

}  // namespace

int FrontendSpec::backend_index(std::uint16_t backend_port) const {
    for (std::size_t i = 0; i < backends.size(); ++i) {
        if (backends[i].port == backend_port) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

const std::vector<FrontendSpec>& fuzz_frontends() {
    static const std::vector<FrontendSpec> specs = build_specs();
    return specs;
}

const FrontendSpec* find_frontend(std::uint16_t port, std::uint8_t protocol) {
    for (const FrontendSpec& spec : fuzz_frontends()) {
        if (spec.port == port && spec.protocol == protocol) {
            return &spec;
        }
    }
    return nullptr;
}

Config to_config(const std::vector<FrontendSpec>& specs) {
    Config config;
    for (const FrontendSpec& spec : specs) {
        Frontend frontend;
        frontend.port = spec.port;
        frontend.protocol = spec.protocol == kProtoTcp ? Protocol::tcp : Protocol::udp;
        for (const BackendSpec& backend : spec.backends) {
            frontend.backends.emplace_back(backend.port, backend.weight);
        }
        frontend.affinity = spec.flow_affinity ? Affinity::flow : Affinity::packet;
        if (spec.validate) {
            Validation rules;
            rules.min_payload = spec.min_payload;
            rules.max_payload = spec.max_payload;
            for (const MatchSpec& match : spec.matches) {
                ByteMatch out;
                out.offset = match.offset;
                out.value = match.value;
                out.mask = match.mask;
                rules.matches.push_back(out);
            }
            frontend.validate = rules;
        }
        if (spec.route) {
            Route route;
            route.offset = spec.tag_offset;
            route.length = spec.tag_length;
            for (const TagSpec& tag : spec.tags) {
                RouteTag out;
                out.tag = tag.tag;
                out.backend_port = tag.backend_port;
                route.tags.push_back(out);
            }
            route.unknown = spec.unknown_round_robin ? UnknownTagAction::round_robin
                                                     : UnknownTagAction::drop;
            frontend.route = route;
        }
        config.frontends.push_back(std::move(frontend));
    }
    return config;
}

}  // namespace portmux::fuzz
