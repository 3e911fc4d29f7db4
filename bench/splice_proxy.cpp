// The splice(2) TCP relay of the first-bytes benchmarks: socket -> pipe ->
// socket with splice(), one pipe per direction, so payload pages move
// between the sockets without a copy into user space, but every chunk still
// costs two syscalls and a wake-up of this process (what sockmap avoids).
// Event loop, backpressure and half-close: relay.hpp.
#include "relay.hpp"

namespace {

struct Splice {
    struct State {
        int pipe_r = -1, pipe_w = -1;
        std::size_t in_pipe = 0;
    };
    explicit Splice(std::size_t size) : size_(size) {}
    void init(State& s) const {
        int fds[2];
        if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) relay::die("pipe2");
        // The pipe is this direction's buffer: as large as the naive proxy's.
        fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(size_));
        s.pipe_r = fds[0];
        s.pipe_w = fds[1];
    }
    void release(State& s) const {
        if (s.pipe_r >= 0) close(s.pipe_r);
        if (s.pipe_w >= 0) close(s.pipe_w);
        s.pipe_r = s.pipe_w = -1;
    }
    std::size_t pending(const State& s) const { return s.in_pipe; }
    ssize_t fill(State& s, int from) const {
        const ssize_t r = splice(from, nullptr, s.pipe_w, nullptr, size_, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (r > 0) s.in_pipe += static_cast<std::size_t>(r);
        return r;
    }
    ssize_t drain(State& s, int to) const {
        const ssize_t w = splice(s.pipe_r, nullptr, to, nullptr, s.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (w > 0) s.in_pipe -= static_cast<std::size_t>(w);
        return w;
    }
    std::size_t size_;
};

}  // namespace

int main(int argc, char** argv) { return relay::main_with<Splice>(argc, argv); }
