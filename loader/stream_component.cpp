#include "stream_component.hpp"

#include <algorithm>

#include "event_log.hpp"

namespace portmux {

void StreamRouterComponent::apply(const Config& config) {
    if (!router_) {
        // No listener, no BPF object while no frontend needs them.
        if (std::none_of(config.frontends.begin(), config.frontends.end(), stream_frontend)) {
            return;
        }
        router_ = std::make_unique<StreamRouter>(default_stream_pin_directory());
    }
    router_->apply(config);
    // After the router took the rules: from this line on, new connections
    // follow them (run logs event=reloaded before its components apply).
    std::string ports;
    for (const std::uint16_t port : router_->listening_ports()) {
        ports += (ports.empty() ? "" : " ") + std::to_string(port);
    }
    log_event(LogLevel::info, "streams_applied",
              {{"ports", ports}, {"open_connections", std::to_string(router_->open_connections())}});
}

void StreamRouterComponent::stop() {
    if (router_) {
        router_->stop();
    }
}

}  // namespace portmux
