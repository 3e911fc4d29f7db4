// Which frontends the XDP data path leaves to the stream router.
#include "config.hpp"

namespace portmux {

bool stream_frontend(const Frontend& frontend) {
    return frontend.protocol == Protocol::tcp &&
           (frontend.route || frontend.validate || frontend.proxy_protocol_v2);
}

Config xdp_frontends(const Config& config) {
    Config installed = config;
    std::erase_if(installed.frontends, stream_frontend);
    return installed;
}

}  // namespace portmux
