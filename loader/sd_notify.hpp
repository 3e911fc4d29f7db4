// systemd's readiness protocol without libsystemd: one datagram with
// "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET.
#pragma once

#include <string>
#include <string_view>

#include <sys/socket.h>
#include <sys/un.h>

namespace portmux {

// The address NOTIFY_SOCKET names: a path, or an abstract name when it starts
// with '@' (sent as a leading NUL byte). False when the name is empty, too
// long, or neither form.
bool notify_address(std::string_view name, sockaddr_un& address, socklen_t& length);

// Sends STATE (e.g. "READY=1") when NOTIFY_SOCKET is set. Returns false when
// it is set but the message could not be sent; true otherwise.
bool sd_notify_state(std::string_view state);

}  // namespace portmux
