#include "stream_sockets.hpp"

namespace portmux {

std::string backend_congestion_control(std::string_view system_default) {
    return system_default.starts_with("bbr") ? std::string("reno") : std::string();
}

std::chrono::seconds deferred_handshake_time(unsigned syn_ack_retransmissions) {
    if (syn_ack_retransmissions == 0 || syn_ack_retransmissions >= 8) {
        return std::chrono::seconds(0);
    }
    return std::chrono::seconds((1U << syn_ack_retransmissions) - 1);
}

}  // namespace portmux
