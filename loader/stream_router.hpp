// The stream router: serves TCP frontends routed by their first bytes.
//
// For each such frontend (stream_frontend() in config.hpp) it owns a
// listening socket. A client's first bytes are read until the rules can
// decide (first_bytes.hpp) or first_data_timeout passes; then the router
// connects to the chosen backend on this host, writes the bytes it read
// (after a PROXY v2 header when configured) and copies the backend's first
// reply back. At the next bytes from either side it hands both sockets to
// the sockhash of sockmap/stream_verdict.bpf.c, which relays every further
// byte inside the kernel; a connection that ends after its first exchange
// is never spliced (counted as unspliced). A client that already
// half-closed cannot be put in a sockmap and is relayed with splice(2)
// instead, counted as fallback.
//
// One thread runs the event loop; apply() and stop() may be called from
// any other thread. docs/design.md ("Stream frontends") explains the
// ordering rules that keep the stream whole.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "portmux_shared.h"

namespace portmux {

// Counters of one stream frontend, as stats show them.
struct StreamBackendStats {
    std::uint16_t port = 0;
    std::uint64_t routed = 0;
    std::uint64_t refused = 0;      // backend_refused for this backend
    std::uint64_t bytes_to_backend = 0;  // all of them, however they went
    std::uint64_t bytes_to_client = 0;
    // Of those, the bytes the router copied itself: a connection the
    // sockmap could not take (splice(2)), or bytes held under backpressure.
    std::uint64_t copied_to_backend = 0;
    std::uint64_t copied_to_client = 0;
    // Retransmitted segments whose repeated head the verdict program cut
    // off (sockmap/stream_verdict.bpf.c): each would have been a repeat.
    std::uint64_t overlaps_trimmed = 0;
};

struct StreamFrontendStats {
    std::uint16_t port = 0;
    std::uint64_t accepted = 0;
    std::uint64_t spliced = 0;
    std::uint64_t fallback = 0;
    std::uint64_t unspliced = 0;  // ended after one exchange, never spliced
    std::uint64_t refused[PORTMUX_REFUSAL_REASONS] = {};
    std::vector<StreamBackendStats> backends;  // sorted by port
};

// Reads the counters from the router's maps (its own, or pinned ones
// opened by another process): `stream_connections` and `stream_bytes`.
std::vector<StreamFrontendStats> read_stream_stats(int connections_map_fd, int bytes_map_fd);

// The pinned counter maps of a running router, when there is one.
// Returns an empty vector when nothing is pinned at DIR.
std::vector<StreamFrontendStats> read_pinned_stream_stats(const std::filesystem::path& dir);

// Where a router pins its counter maps unless told otherwise.
std::filesystem::path default_stream_pin_directory();

class StreamRouter {
public:
    // Loads the verdict program and attaches it to the sockhash; pins the
    // counter maps at PIN_DIR when it is not empty (removed on stop).
    // Raises the open-files limit to its hard limit (two descriptors per
    // connection). Starts the event loop thread. Throws std::runtime_error.
    explicit StreamRouter(std::filesystem::path pin_dir = {});
    ~StreamRouter();
    StreamRouter(const StreamRouter&) = delete;
    StreamRouter& operator=(const StreamRouter&) = delete;

    // Serves the stream frontends of CONFIG (others are ignored): opens the
    // listeners of new ports (throws naming the port when one cannot be
    // opened, and then changes nothing), closes those of removed ports.
    // Connections already spliced carry on; new ones use the new rules.
    void apply(const Config& config);

    // Stops accepting, closes every connection, unpins. Idempotent.
    void stop();

    // The ports listened on now (for tests and logs).
    std::vector<std::uint16_t> listening_ports() const;

    // Connections open now, in any state.
    std::size_t open_connections() const;

    std::vector<StreamFrontendStats> stats() const;

    class Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace portmux
