#include "stream_component.hpp"

#include <algorithm>

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
}

void StreamRouterComponent::stop() {
    if (router_) {
        router_->stop();
    }
}

}  // namespace portmux
