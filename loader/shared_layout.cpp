// The BPF program and the loader share common/portmux_shared.h; these
// asserts pin the layout the BPF compiler produced (see `bpftool btf dump`)
// so a change that introduces padding or reorders fields fails the build.
#include <cstddef>

#include "portmux_shared.h"

static_assert(sizeof(portmux_frontend_key) == 4);
static_assert(offsetof(portmux_frontend_key, port) == 0);
static_assert(offsetof(portmux_frontend_key, protocol) == 2);
static_assert(offsetof(portmux_frontend_key, pad) == 3);

static_assert(sizeof(portmux_byte_match) == 36);
static_assert(offsetof(portmux_byte_match, value) == 4);
static_assert(offsetof(portmux_byte_match, mask) == 4 + PORTMUX_MAX_MATCH_LEN);

static_assert(sizeof(portmux_validation) == 8 + PORTMUX_MAX_MATCHES * sizeof(portmux_byte_match));
static_assert(offsetof(portmux_validation, matches) == 8);

static_assert(sizeof(portmux_route_spec) == 4);

static_assert(offsetof(portmux_frontend, slot) == 0);
static_assert(offsetof(portmux_frontend, generation) == 4);
static_assert(offsetof(portmux_frontend, flags) == 8);
static_assert(offsetof(portmux_frontend, backend_count) == 10);
static_assert(offsetof(portmux_frontend, flow_idle_seconds) == 12);
static_assert(offsetof(portmux_frontend, rr_length) == 16);
static_assert(offsetof(portmux_frontend, port) == 20);
static_assert(offsetof(portmux_frontend, protocol) == 22);
static_assert(offsetof(portmux_frontend, drained_mask) == 24);
static_assert(offsetof(portmux_frontend, down_mask) == 32);
static_assert(offsetof(portmux_frontend, backends) == 48);
static_assert(offsetof(portmux_frontend, weights) == 48 + 2 * PORTMUX_MAX_BACKENDS);
static_assert(offsetof(portmux_frontend, rr_order) == 48 + 4 * PORTMUX_MAX_BACKENDS);
static_assert(offsetof(portmux_frontend, counter_slots) ==
              48 + 4 * PORTMUX_MAX_BACKENDS + PORTMUX_FAMILIES * PORTMUX_RR_SLOTS);
static_assert(offsetof(portmux_frontend, validation) ==
              offsetof(portmux_frontend, counter_slots) + PORTMUX_MAX_BACKENDS);
// counter_slots[] values index backends[] of the state; the data path masks them.
static_assert(PORTMUX_COUNTER_SLOTS == 128 && (PORTMUX_COUNTER_SLOTS & (PORTMUX_COUNTER_SLOTS - 1)) == 0);
static_assert(offsetof(portmux_frontend, route) ==
              offsetof(portmux_frontend, validation) + sizeof(portmux_validation));
static_assert(offsetof(portmux_frontend, config_index) ==
              offsetof(portmux_frontend, route) + sizeof(portmux_route_spec));
static_assert(sizeof(portmux_frontend) == offsetof(portmux_frontend, config_index) + 4);
static_assert(sizeof(portmux_frontend) % 8 == 0);

// Drop reasons index drops[] and name stats keys (loader/stats.cpp): the
// data path counts the newest at 5.
static_assert(PORTMUX_DROP_BEYOND_FIRST_FRAGMENT == 5 && PORTMUX_DROP_REASONS == 6);
static_assert(PORTMUX_LAYOUT_VERSION == 9, "bump with every map key or value change");

static_assert(sizeof(portmux_backend_counters) == 16);
static_assert(offsetof(portmux_frontend_state, received) == 8);
static_assert(offsetof(portmux_frontend_state, drops) == 16);
static_assert(offsetof(portmux_frontend_state, backends) == 16 + 8 * PORTMUX_DROP_REASONS);
static_assert(sizeof(portmux_frontend_state) ==
              16 + 8 * PORTMUX_DROP_REASONS + 16 * PORTMUX_COUNTER_SLOTS);
static_assert(sizeof(portmux_frontend_state) == 2112);
static_assert(offsetof(portmux_counter_bases, base) == 16);
static_assert(sizeof(portmux_counter_bases) == 16 + 16 * PORTMUX_COUNTER_SLOTS);

static_assert(sizeof(portmux_flow_key) == 24);
static_assert(offsetof(portmux_flow_key, client_port) == 16);
static_assert(offsetof(portmux_flow_key, service_port) == 18);
static_assert(offsetof(portmux_flow_key, protocol) == 20);
static_assert(offsetof(portmux_flow_key, family) == 21);

static_assert(sizeof(portmux_flow) == 24);
static_assert(offsetof(portmux_flow, generation) == 4);
static_assert(offsetof(portmux_flow, created_ns) == 8);
static_assert(offsetof(portmux_flow, last_seen_ns) == 16);

static_assert(sizeof(portmux_direct_client) == 4);

// One 8-byte store writes a whole slot (xdp/tcp_affinity.h).
static_assert(sizeof(portmux_syn_slot) == 8);
static_assert(offsetof(portmux_syn_slot, backend_port) == 4);
static_assert(offsetof(portmux_syn_slot, backend_index) == 6);
static_assert(offsetof(portmux_syn_slot, stamp) == 7);
static_assert((PORTMUX_SYN_SLOTS & (PORTMUX_SYN_SLOTS - 1)) == 0);
static_assert(sizeof(portmux_route_key) == 4 + PORTMUX_MAX_TAG_LEN);
static_assert(offsetof(portmux_route_key, config) == 0);
static_assert(offsetof(portmux_route_key, tag) == 4);
static_assert(sizeof(portmux_route_target) == 4);
static_assert(offsetof(portmux_route_target, backend_port) == 0);
static_assert(offsetof(portmux_route_target, backend_index) == 2);

static_assert(sizeof(portmux_meta) == 8);
static_assert(sizeof(portmux_port_bits) * 8 == PORTMUX_PORT_ENTRIES);
// The config index is one aligned 4-byte word (a reload flips it in place).
static_assert(sizeof(portmux_port) == 8);
static_assert(offsetof(portmux_port, reply_port) == 2);
static_assert(offsetof(portmux_port, config) == 4);
static_assert(sizeof(portmux_stream_route_key) == 4);
static_assert(offsetof(portmux_stream_route_key, backend_port) == 2);
static_assert(sizeof(portmux_stream_bytes) == 24);
static_assert(offsetof(portmux_stream_bytes, overlaps_trimmed) == 16);
static_assert(sizeof(portmux_stream_socket) == 32);
static_assert(offsetof(portmux_stream_socket, passed_bytes) == 8);
static_assert(offsetof(portmux_stream_socket, route) == 16);
static_assert(offsetof(portmux_stream_socket, to_backend) == 20);
static_assert(offsetof(portmux_stream_socket, seq_known) == 21);
static_assert(offsetof(portmux_stream_socket, next_seq) == 24);
static_assert(sizeof(portmux_stream_peer) == 32);
static_assert(offsetof(portmux_stream_peer, notify_at) == 8);
static_assert(offsetof(portmux_stream_peer, released) == 16);
static_assert(offsetof(portmux_stream_peer, hold) == 24);
static_assert(sizeof(portmux_stream_connections) == 8 * (7 + PORTMUX_REFUSAL_REASONS));
static_assert(offsetof(portmux_stream_connections, unspliced) == 8 * (6 + PORTMUX_REFUSAL_REASONS));
static_assert(offsetof(portmux_stream_connections, refused) == 32);
static_assert(sizeof(portmux_stream_frontend) == 8 + 2 * PORTMUX_MAX_BACKENDS);
static_assert(offsetof(portmux_stream_frontend, flags) == 4);
static_assert(offsetof(portmux_stream_frontend, backends) == 8);
