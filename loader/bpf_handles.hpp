// RAII owners for the kernel and library handles the loader holds.
#pragma once

#include <unistd.h>

#include <memory>
#include <utility>

#include <xdp/libxdp.h>

namespace portmux {

// A file descriptor closed on destruction.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset(std::exchange(other.fd_, -1));
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

struct XdpProgramCloser {
    void operator()(xdp_program* program) const noexcept { xdp_program__close(program); }
};
using XdpProgramPtr = std::unique_ptr<xdp_program, XdpProgramCloser>;

struct XdpMultiprogCloser {
    void operator()(xdp_multiprog* multiprog) const noexcept { xdp_multiprog__close(multiprog); }
};
using XdpMultiprogPtr = std::unique_ptr<xdp_multiprog, XdpMultiprogCloser>;

}  // namespace portmux
