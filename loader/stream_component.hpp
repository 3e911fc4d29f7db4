// The stream router as a component of `portmux run` (run_service.hpp):
// created with the first config that has a stream frontend, given every
// config run installs, stopped when run stops.
#pragma once

#include <memory>

#include "run_service.hpp"
#include "stream_router.hpp"

namespace portmux {

class StreamRouterComponent : public RunComponent {
public:
    std::string name() const override { return "stream_router"; }
    void apply(const Config& config) override;
    void stop() override;

private:
    std::unique_ptr<StreamRouter> router_;
};

}  // namespace portmux
