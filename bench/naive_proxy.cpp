// The naive TCP relay of the first-bytes benchmarks: read() into a user-space
// buffer, write() it out. Every byte crosses into user space and back (two
// copies, two syscalls per chunk): the cost sockmap splicing removes.
// Event loop, backpressure and half-close: relay.hpp.
#include <memory>

#include "relay.hpp"

namespace {

struct ReadWrite {
    struct State {
        std::unique_ptr<char[]> buf;
        std::size_t off = 0, len = 0;
    };
    explicit ReadWrite(std::size_t size) : size_(size) {}
    void init(State& s) const { s.buf.reset(new char[size_]); }
    void release(State& s) const { s.buf.reset(); }
    std::size_t pending(const State& s) const { return s.len - s.off; }
    // Returns bytes read, 0 at EOF, -1 with errno.
    ssize_t fill(State& s, int from) const {
        const ssize_t r = read(from, s.buf.get(), size_);
        if (r > 0) {
            s.off = 0;
            s.len = static_cast<std::size_t>(r);
        }
        return r;
    }
    ssize_t drain(State& s, int to) const {
        const ssize_t w = write(to, s.buf.get() + s.off, s.len - s.off);
        if (w > 0) s.off += static_cast<std::size_t>(w);
        return w;
    }
    std::size_t size_;
};

}  // namespace

int main(int argc, char** argv) { return relay::main_with<ReadWrite>(argc, argv); }
