/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one contract between the BPF data path (xdp/) and the loader
 * (loader/): map keys, map values and limits. Every field has a fixed
 * width and every struct is laid out without implicit padding, so both
 * compilers agree byte for byte; loader/shared_layout.cpp static_asserts
 * the sizes and offsets.
 *
 * Ports are stored in network byte order so the data path compares and
 * writes them without a byte swap, and the incremental checksum update
 * works directly on the wire values.
 */
#ifndef PORTMUX_SHARED_H
#define PORTMUX_SHARED_H

#include <linux/types.h>

#define PORTMUX_MAX_BACKENDS 64
/* Round-robin order table: backends repeated by weight, drained ones left out. */
#define PORTMUX_RR_SLOTS 256
/* Frontends of one config at most: one per (port, protocol) pair. */
#define PORTMUX_MAX_FRONTENDS 65536
/* Route tags of one config at most, all frontends together. The `routes`
 * map holds PORTMUX_CONFIG_BUFFERS times as many: a reload writes the new
 * config's routes while the old config's are still in use. */
#define PORTMUX_MAX_ROUTES 65536
/* Default size of the per-CPU frontend_state array (the loader may raise it). */
#define PORTMUX_DEFAULT_STATE_SLOTS 1024
/* Default size of the flow and direct-client tables. */
#define PORTMUX_DEFAULT_FLOW_TABLE_SIZE 65536

/*
 * Version of everything below as pinned maps hold it. Pins carry it in the
 * `meta` map; a portmux with another version refuses the attachment instead
 * of misreading it. Bump it with every change to a map key or value.
 */
#define PORTMUX_LAYOUT_VERSION 9

/* Address families, as indexes of the per-family fields of a frontend. */
#define PORTMUX_FAMILY_V4 0
#define PORTMUX_FAMILY_V6 1
#define PORTMUX_FAMILIES 2

#define PORTMUX_PROTO_TCP 6
#define PORTMUX_PROTO_UDP 17

/*
 * `ports` array: one entry per (protocol, port), UDP ports first, then TCP.
 * A packet to a port whose entry is zero is not portmux's: its bit in
 * `port_bits` is clear, and it passes after a few loads.
 */
#define PORTMUX_PORT_ENTRIES (2 * 65536)
#define PORTMUX_TCP_PORT_BASE 65536
/* portmux_port.flags */
#define PORTMUX_PORT_FRONTEND (1 << 0) /* a frontend: .config indexes `frontend_configs` */
#define PORTMUX_PORT_BACKEND (1 << 1)  /* a backend: .reply_port, direct clients are noted */

/*
 * `frontend_configs` array: two buffers per frontend slot, the config at
 * index slot * 2 + buffer. A reload writes a frontend's new config into the
 * buffer readers are not using, then points the frontend's `ports` entry at
 * it; the loader waits for a grace period before it writes that other
 * buffer again (loader/grace_period.hpp), so no reader ever sees a config
 * being written.
 */
#define PORTMUX_CONFIG_BUFFERS 2

/*
 * Per-backend counter slots of a frontend (portmux_frontend_state.backends).
 * A backend counts into the slot its config names (counter_slots[]) and keeps
 * it across reloads while it stays; a new backend takes a slot neither the
 * live config nor the new one uses, so twice the backends always suffice.
 */
#define PORTMUX_COUNTER_SLOTS (2 * PORTMUX_MAX_BACKENDS)

/* Payload inspection bounds (validation matches and routing tags). */
#define PORTMUX_MAX_MATCHES 4
#define PORTMUX_MAX_MATCH_LEN 16
#define PORTMUX_MAX_TAG_LEN 16
#define PORTMUX_MAX_PAYLOAD_OFFSET 1500 /* offset + length may not exceed this */

/* portmux_frontend.flags */
#define PORTMUX_F_FLOW_AFFINITY (1 << 0)   /* UDP: a client sticks to one backend */
#define PORTMUX_F_VALIDATE (1 << 1)        /* payload rules in .validation */
#define PORTMUX_F_ROUTE (1 << 2)           /* backend chosen by a payload tag */
#define PORTMUX_F_ROUTE_UNKNOWN_RR (1 << 3) /* unknown tag: round robin, else drop */
#define PORTMUX_F_NO_REPLIES (1 << 4)      /* UDP, one way: its backends' replies keep their port */
/* UDP and TCP: a client address sticks to one backend for all its datagrams and
 * connections until idle for flow_idle_seconds; its entry in `flows` has client_port 0. */
#define PORTMUX_F_CLIENT_AFFINITY (1 << 5)

/* Why a packet addressed to a frontend was dropped; indexes drops[]. */
enum portmux_drop_reason {
	PORTMUX_DROP_TOO_SHORT = 0,
	PORTMUX_DROP_TOO_LONG = 1,
	PORTMUX_DROP_MAGIC_MISMATCH = 2,
	PORTMUX_DROP_UNKNOWN_TAG = 3,
	PORTMUX_DROP_NO_BACKEND = 4,
	/* The first fragment of a datagram does not hold a match or the tag. */
	PORTMUX_DROP_BEYOND_FIRST_FRAGMENT = 5,
	PORTMUX_DROP_REASONS = 6,
};

/* A frontend's (port, protocol); part of the key of `routes`. */
struct portmux_frontend_key {
	__be16 port;     /* destination port clients dial */
	__u8 protocol;   /* PORTMUX_PROTO_UDP or PORTMUX_PROTO_TCP */
	__u8 pad;        /* always zero: part of the hashed key */
};

/* Bytes of the payload compared at a fixed offset, under a mask. */
struct portmux_byte_match {
	__u16 offset;    /* from the start of the L4 payload */
	__u8 length;     /* 1..PORTMUX_MAX_MATCH_LEN */
	__u8 pad;
	/* Right-aligned: the match is the last `length` bytes, zeros before. */
	__u8 value[PORTMUX_MAX_MATCH_LEN]; /* already masked */
	__u8 mask[PORTMUX_MAX_MATCH_LEN];
};

struct portmux_validation {
	__u16 min_payload; /* bytes, inclusive */
	__u16 max_payload; /* bytes, inclusive */
	__u8 match_count;  /* 0..PORTMUX_MAX_MATCHES */
	__u8 pad[3];
	struct portmux_byte_match matches[PORTMUX_MAX_MATCHES];
};

struct portmux_route_spec {
	__u16 tag_offset; /* from the start of the UDP payload */
	__u8 tag_length;  /* 1..PORTMUX_MAX_TAG_LEN */
	__u8 pad;
};

/* Value of the `frontend_configs` array: everything the data path needs. */
struct portmux_frontend {
	/*
	 * Index into the per-CPU `frontend_state` array, unique per frontend
	 * and chosen by the loader: round robin and counters never write to
	 * this shared entry (see docs/design.md).
	 */
	__u32 slot;
	/* Changes with every config write that changes the backend set, so a
	 * flow pinned before it re-checks that its backend still exists. */
	__u32 generation;
	__u16 flags;          /* PORTMUX_F_* */
	__u16 backend_count;  /* valid entries in backends[] */
	__u16 flow_idle_seconds; /* flow or client affinity: idle time before a rebalance */
	__u16 pad;
	/* Valid entries in rr_order[family]; 0: no backend takes new packets
	 * of that family. */
	__u16 rr_length[PORTMUX_FAMILIES];
	/* The frontend this config is for. The data path takes a config only
	 * when they match the packet: a `ports` entry read while the loader
	 * rewrites it (or one pointing at a stale buffer) then names no other
	 * frontend's config. */
	__be16 port;
	__u8 protocol;        /* PORTMUX_PROTO_*; 0: the buffer was never written */
	__u8 reserved0;
	/* Bit i: backends[i] takes no new flows or packets but keeps its
	 * connections. Kept here (not only in rr_order) so status, reload and
	 * undrain know it. */
	__u64 drained_mask;
	/* Bit i: no socket serves backends[i] for that address family (set by
	 * `portmux run` from the kernel's socket table). Such a backend takes
	 * no new choices of that family; established TCP flows stay. */
	__u64 down_mask[PORTMUX_FAMILIES];
	__be16 backends[PORTMUX_MAX_BACKENDS];
	__u16 weights[PORTMUX_MAX_BACKENDS]; /* as configured; rr_order is derived */
	/* Indices into backends[] by weight, leaving out backends drained or
	 * down for the family: one order per address family. */
	__u8 rr_order[PORTMUX_FAMILIES][PORTMUX_RR_SLOTS];
	/* Counter slot of backends[i] in frontend_state.backends[] (loader/reload_plan.hpp). */
	__u8 counter_slots[PORTMUX_MAX_BACKENDS];
	struct portmux_validation validation;
	struct portmux_route_spec route;
	/* This config's own index in frontend_configs (slot * 2 + buffer): its
	 * routes are keyed by it. Also keeps the size a multiple of 8. */
	__u32 config_index;
};

/* Per-CPU state of one frontend slot: its round-robin cursor and counters. */
struct portmux_backend_counters {
	__u64 packets;
	__u64 bytes;   /* whole frames as received */
};

struct portmux_frontend_state {
	__u32 rr_cursor;
	__u32 pad;
	__u64 received; /* packets that matched the frontend */
	__u64 drops[PORTMUX_DROP_REASONS];
	/* By counter slot (portmux_frontend.counter_slots[]); never rewritten
	 * by the loader while a config names the slot, so no count is lost to
	 * a read-modify-write race. */
	struct portmux_backend_counters backends[PORTMUX_COUNTER_SLOTS];
};

/*
 * Value of the `counter_bases` array, keyed by frontend slot. Only the
 * loader reads and writes it (under its state lock): when it hands a
 * counter slot to a new backend it records the slot's count as the base
 * the new backend counts from, and moves what the slot counted for a
 * removed backend into `removed`. All values are sums over CPUs.
 */
struct portmux_counter_bases {
	struct portmux_backend_counters removed;
	struct portmux_backend_counters base[PORTMUX_COUNTER_SLOTS];
};

/*
 * Key of the `flows` and `direct_clients` LRU maps. In `flows` service_port
 * is the frontend port (client -> frontend: which backend); in
 * `direct_clients` it is the backend port the client talks to directly.
 */
struct portmux_flow_key {
	__be32 client_addr[4]; /* IPv4 in [0], the rest zero */
	__be16 client_port;
	__be16 service_port;
	__u8 protocol;
	__u8 family;           /* 4 or 6 */
	__u8 pad[2];
};

struct portmux_flow {
	__be16 backend_port;
	__u16 backend_index;   /* into portmux_frontend.backends[], valid for .generation */
	__u32 generation;      /* portmux_frontend.generation when last checked */
	__u64 created_ns;      /* tells a retransmitted SYN from a new connection */
	__u64 last_seen_ns;    /* UDP flow affinity: idle timeout, refreshed coarsely */
};

/* Value of `direct_clients`: nothing but presence (always 1). */
struct portmux_direct_client {
	__u32 seen;
};

/*
 * `syn_slots` array: the backend each recent SYN was sent to, one 8-byte
 * slot per hash of its flow key, overwritten in place (no allocation, no
 * lock, no eviction of anything else). A retransmitted SYN finds its
 * backend here, and so does the ACK that completes the handshake, which
 * then creates the connection's `flows` entry. A SYN never inserts into
 * `flows`, so a SYN flood cannot evict established connections' entries.
 */
#define PORTMUX_SYN_SLOTS 65536 /* a power of two: the slot is hash & (SLOTS - 1) */
/*
 * Seeds of the flow-key hash (xdp/flow.h): a SYN's slot is the hash with
 * PORTMUX_FLOW_HASH_SEED (which also balances TCP segments no socket
 * holds), its fingerprint the hash with PORTMUX_SYN_FINGERPRINT_SEED, | 1.
 */
#define PORTMUX_FLOW_HASH_SEED 0x9e3779b9u
#define PORTMUX_SYN_FINGERPRINT_SEED 0x2545f491u
/* portmux_syn_slot.stamp counts in units of 2^PORTMUX_SYN_STAMP_SHIFT ns (67 ms), mod 256. */
#define PORTMUX_SYN_STAMP_SHIFT 26

/* Value of `syn_slots`: written with one 8-byte store, so never read torn. */
struct portmux_syn_slot {
	__u32 fingerprint;   /* a second hash of the flow key, odd; 0: never written */
	__be16 backend_port;
	__u8 backend_index;  /* into portmux_frontend.backends[] when written */
	__u8 stamp;          /* when the SYN came, see PORTMUX_SYN_STAMP_SHIFT */
};

/* Key of the `routes` hash map: a frontend config and a tag of its route spec. */
struct portmux_route_key {
	/* The config (index into frontend_configs) the routes belong to: a
	 * reload writes the routes of the new config buffer, flips, and
	 * removes the old buffer's routes after a grace period, so routes and
	 * backends always switch together. */
	__u32 config;
	__u8 tag[PORTMUX_MAX_TAG_LEN]; /* tag_length bytes right-aligned, zeros before */
};

struct portmux_route_target {
	/* The backend as flows name it: backends[backend_index] must be
	 * backend_port, or the data path drops the packet as no_backend. */
	__be16 backend_port;
	__u16 backend_index;
};

/*
 * Value of the `ports` array. The loader overwrites it in place (an array
 * element is not replaced under RCU): it holds only flags and small words,
 * each of which the data path checks against what it finds through it.
 */
struct portmux_port {
	__u8 flags;      /* PORTMUX_PORT_* */
	__u8 reserved;
	/* PORTMUX_PORT_BACKEND: the frontend port replies from this backend port
	 * show (0: its frontend translates no replies). */
	__be16 reply_port;
	/* PORTMUX_PORT_FRONTEND: index of its current config in
	 * `frontend_configs` (slot * PORTMUX_CONFIG_BUFFERS + buffer); the
	 * config records its own port and protocol, which the data path checks. */
	__u32 config;
};

/*
 * The single value of `port_bits`: one bit per `ports` entry (entry i is
 * bit i % 8 of bits[i / 8]), set for every entry whose flags are not zero.
 * XDP and TC egress test it before any parse, without a map lookup (it is
 * global data, which the programs address directly), and pass a frame whose
 * port's bit is clear: most traffic stops there. A set bit sends the frame
 * on to the full parse and the `ports` entry, so a bit may be set for a zero
 * entry but never clear for a flagged one: the loader sets bits before it
 * writes entries and clears them only after.
 */
struct portmux_port_bits {
	__u8 bits[PORTMUX_PORT_ENTRIES / 8];
};

/* The single entry of the `meta` array: what made these pins. */
struct portmux_meta {
	__u32 layout_version; /* PORTMUX_LAYOUT_VERSION of the portmux that attached */
	__u32 reserved;
};

/*
 * Stream splicing (sockmap/): a TCP frontend routed by its first bytes is
 * served by a user-space listener that picks the backend, then puts the
 * client and backend sockets in a sockhash whose sk_skb stream verdict
 * program redirects each side's data to the other.
 */
/* Sockets in the sockhash: two per spliced connection. */
#define PORTMUX_STREAM_MAX_SOCKETS 65536
/* (frontend, backend) pairs with byte counters. */
#define PORTMUX_STREAM_MAX_ROUTES 65536

/* Key of `stream_bytes`: which frontend and backend a connection joins
 * (host byte order: only user space and the verdict program read it). */
struct portmux_stream_route_key {
	__u16 frontend_port;
	__u16 backend_port;
};

/* Value of `stream_bytes`: what the verdict program redirected. */
struct portmux_stream_bytes {
	__u64 to_backend;
	__u64 to_client;
	/* Skbs whose head repeated bytes already handed on (a retransmitted
	 * segment overlapping earlier data): the program cut the repeat off
	 * (see portmux_stream_socket.next_seq). */
	__u64 overlaps_trimmed;
};

/*
 * Value of `stream_sockets_state`, keyed by the socket cookie of a spliced
 * socket. Written once by user space when the socket is spliced, then
 * only counted up by the verdict program (its peer is in `stream_peers`,
 * a separate map, so setting it never overwrites a count).
 */
struct portmux_stream_socket {
	/* Bytes received on this socket and redirected to the peer: user space
	 * shuts the peer's write side only once all of them are in the peer's
	 * send queue, or the tail of the stream would be lost. */
	__u64 redirected_bytes;
	/* Bytes the program left in the socket (SK_PASS) for user space to
	 * forward: received while it had no peer yet, or while held. */
	__u64 passed_bytes;
	struct portmux_stream_route_key route;
	__u8 to_backend;  /* 1 on the client socket */
	__u8 seq_known;   /* next_seq is set (the program saw an skb) */
	__u8 pad[2];
	/* TCP sequence number just past the last byte the program handed on
	 * (redirected or passed). The kernel can hand the program an skb that
	 * starts before it: a retransmitted segment that overlaps bytes
	 * already received is queued whole, and the verdict path reads whole
	 * skbs, so the overlap would reach the peer twice. The program trims
	 * it (see sockmap/stream_verdict.bpf.c). At the first skb it starts
	 * from the socket's copied_seq: what user space read before insertion
	 * counts as handed on. */
	__u32 next_seq;
	__u32 reserved;
};

/*
 * Value of `stream_peers`, keyed by socket cookie; written by user space.
 * The verdict program sends one event (the socket's cookie, to
 * `stream_events`) when the socket's redirected_bytes reach notify_at, so
 * user space can look at the peer's queue every so many bytes: the kernel
 * queues redirected data for a slow peer without limit, and user space
 * pauses the sender when too much waits (see stream_router.cpp).
 */
struct portmux_stream_peer {
	__u64 peer_cookie;  /* 0: no peer yet, the data stays in this socket */
	__u64 notify_at;    /* redirected_bytes that trigger an event; ~0: none */
	/* Of this socket's passed_bytes, how many user space has written to
	 * the peer. The program redirects only while the two are equal: a
	 * redirect before would overtake the bytes still held. */
	__u64 released;
	/* Nonzero: user space holds this socket's data back (its peer reads
	 * too slowly); it stays in the socket, charged to its receive buffer,
	 * and TCP's window stops the sender. */
	__u32 hold;
	__u32 reserved;
};

/* Why the stream service closed a connection without splicing it. */
enum portmux_stream_refusal {
	PORTMUX_REFUSED_TOO_SHORT = 0,       /* the client ended before the rules could decide */
	PORTMUX_REFUSED_TIMEOUT = 1,         /* nothing decisive within first_data_timeout */
	PORTMUX_REFUSED_MAGIC_MISMATCH = 2,  /* a validate match failed */
	PORTMUX_REFUSED_UNKNOWN_TAG = 3,     /* the route has no such tag and drops unknown ones */
	PORTMUX_REFUSED_BACKEND_REFUSED = 4, /* the backend could not be connected */
	PORTMUX_REFUSAL_REASONS = 5,
};

/* Value of `stream_connections`, written by user space only. Keyed by
 * (frontend, 0) for a frontend's totals and (frontend, backend) for the
 * connections routed to one backend. */
struct portmux_stream_connections {
	__u64 accepted;   /* frontend: connections accepted */
	__u64 routed;     /* backend: connections handed to it */
	__u64 spliced;    /* of those, served by the verdict program */
	__u64 fallback;   /* of those, served by splice(2) (client half-closed) */
	__u64 refused[PORTMUX_REFUSAL_REASONS];
	/* Bytes the router moved itself with splice(2): the fallback, and
	 * the tail of a side whose FIN came while it was paused. */
	__u64 splice_bytes_to_backend;
	__u64 splice_bytes_to_client;
	/* Of the routed, those that ended in their first exchange (request and
	 * reply, or a reset), before either side needed splicing: the router
	 * copied the backend's reply itself. */
	__u64 unspliced;
};

/*
 * Value of `stream_frontends`, keyed by the frontend port (__u32): what the
 * stream router serves, for `portmux status` and `portmux drain` in other
 * processes. Written by the router on every apply; no BPF program reads it.
 */
#define PORTMUX_STREAM_ROUTED 0x1     /* the frontend has a route */
#define PORTMUX_STREAM_VALIDATED 0x2  /* ... a validate block */
#define PORTMUX_STREAM_PROXY_V2 0x4   /* ... "proxy_protocol": "v2" */
struct portmux_stream_frontend {
	__u16 backend_count;      /* listed backends, then route targets */
	__u16 first_data_timeout; /* seconds */
	__u8 flags;               /* PORTMUX_STREAM_* */
	__u8 pad[3];
	__u16 backends[PORTMUX_MAX_BACKENDS];
};

#endif /* PORTMUX_SHARED_H */
