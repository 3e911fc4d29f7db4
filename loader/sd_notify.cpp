#include "sd_notify.hpp"

#include <sys/socket.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "bpf_handles.hpp"

namespace portmux {

bool notify_address(std::string_view name, sockaddr_un& address, socklen_t& length) {
    address = {};
    address.sun_family = AF_UNIX;
    if (name.empty() || name.size() >= sizeof address.sun_path) {
        return false;
    }
    if (name[0] != '/' && name[0] != '@') {
        return false;
    }
    std::memcpy(address.sun_path, name.data(), name.size());
    if (name[0] == '@') {
        address.sun_path[0] = '\0';  // abstract: the length, not a NUL, ends the name
        length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    } else {
        length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
    }
    return true;
}

bool sd_notify_state(std::string_view state) {
    const char* name = std::getenv("NOTIFY_SOCKET");
    if (!name || !*name) {
        return true;
    }
    sockaddr_un address{};
    socklen_t length = 0;
    if (!notify_address(name, address, length)) {
        return false;
    }
    UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return false;
    }
    return sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                  reinterpret_cast<const sockaddr*>(&address), length) ==
           static_cast<ssize_t>(state.size());
}

}  // namespace portmux
