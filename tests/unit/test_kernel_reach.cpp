// Kernel reach: every BPF helper each embedded object calls, read from the
// object's own instructions, checked against the kernel that introduced it.
// The standard object must load on 5.15 (Ubuntu 22.04); the frags-aware one
// needs 5.18 for xdp.frags and bpf_xdp_load_bytes anyway.
#include <catch2/catch.hpp>

#include <linux/bpf.h>

#include <set>
#include <string>
#include <utility>

#include "bpf_helpers.hpp"
#include "portmux_stream_bpf.skel.h"
#include "skeleton.hpp"

using namespace portmux;

namespace {

std::pair<int, int> newest_helper(DataPathObject object, std::set<std::string>& names) {
    std::pair<int, int> newest{0, 0};
    const auto calls = helper_calls(object_bytes(object));
    REQUIRE_FALSE(calls.empty());
    for (const HelperCall& call : calls) {
        const HelperInfo* info = helper_info(call.helper);
        INFO(to_string(object) << " object, section " << call.section << ": helper #" << call.helper
                               << " is not in the table of loader/bpf_helpers.cpp; add it with the "
                                  "kernel that introduced it");
        REQUIRE(info != nullptr);
        names.insert(info->name);
        newest = std::max(newest, std::pair{info->major, info->minor});
    }
    return newest;
}

}  // namespace

TEST_CASE("kernel reach: the standard object calls no helper newer than 5.15", "[kernel-reach]") {
    std::set<std::string> names;
    const auto newest = newest_helper(DataPathObject::standard, names);
    INFO("helpers: " << Catch::Detail::stringify(std::vector<std::string>(names.begin(), names.end())));
    CHECK(newest <= std::pair{5, 15});
    CHECK_FALSE(names.contains("bpf_xdp_load_bytes"));
    // What it needs, so a change that drops a helper by accident shows too.
    CHECK(names.contains("bpf_map_lookup_elem"));
    CHECK(names.contains("bpf_l4_csum_replace"));  // TC egress
    // TCP affinity from the socket table (xdp/tcp_affinity.h): 5.2, and
    // bpf_sk_release 4.20.
    CHECK(names.contains("bpf_skc_lookup_tcp"));
    CHECK(names.contains("bpf_tcp_check_syncookie"));
    CHECK(names.contains("bpf_sk_release"));
    CHECK(names.contains("bpf_ktime_get_coarse_ns"));  // 5.11: SYN slots, flow ages
}

TEST_CASE("kernel reach: the frags-aware object needs 5.18 and reads payload with bpf_xdp_load_bytes",
          "[kernel-reach]") {
    std::set<std::string> names;
    const auto newest = newest_helper(DataPathObject::frags, names);
    CHECK(newest == std::pair{5, 18});
    CHECK(names.contains("bpf_xdp_load_bytes"));
}

TEST_CASE("kernel reach: helper_calls finds calls and tells helpers from subprogram calls",
          "[kernel-reach]") {
    // Each object's calls name its program sections.
    for (DataPathObject object : {DataPathObject::standard, DataPathObject::frags}) {
        std::set<std::string> sections;
        for (const HelperCall& call : helper_calls(object_bytes(object))) {
            sections.insert(call.section);
            if (call.section == "tc") {
                CHECK(call.prog_type == BPF_PROG_TYPE_SCHED_CLS);
            } else if (call.section == ".text") {
                // Global functions (verified on their own, called from XDP:
                // balance_parsed_frame, the TCP choice): probed as XDP by
                // first_missing_helper().
                CHECK(call.prog_type == BPF_PROG_TYPE_UNSPEC);
            } else {
                CHECK(call.prog_type == BPF_PROG_TYPE_XDP);
            }
        }
        CHECK(sections.contains("tc"));
        // The XDP program itself calls no helper: its check before the full
        // parse reads port_bits directly; the rest are global functions.
        CHECK_FALSE(sections.contains(object == DataPathObject::frags ? "xdp.frags" : "xdp"));
        CHECK(sections.contains(".text"));
    }
    const std::vector<std::uint8_t> not_elf(64, 0);
    CHECK_THROWS_WITH(helper_calls(not_elf), Catch::Contains("not a 64-bit little-endian BPF ELF"));
}

TEST_CASE("kernel reach: a missing helper is one line naming it and its kernel", "[kernel-reach]") {
    const HelperCall call{BPF_FUNC_xdp_load_bytes, BPF_PROG_TYPE_XDP, "xdp.frags"};
    CHECK(missing_helper_message(call, "multi-buffer XDP") ==
          "this kernel lacks BPF helper bpf_xdp_load_bytes (Linux 5.18, or a kernel with it "
          "backported), needed by multi-buffer XDP");
}

TEST_CASE("kernel reach: the stream verdict object's helpers are all known and older than the 6.4 "
          "it needs anyway",
          "[kernel-reach]") {
    std::size_t size = 0;
    const void* bytes = portmux_stream_bpf__elf_bytes(&size);
    const auto calls =
        helper_calls(std::span<const std::uint8_t>(static_cast<const std::uint8_t*>(bytes), size));
    REQUIRE_FALSE(calls.empty());
    std::set<std::string> names;
    for (const HelperCall& call : calls) {
        INFO("section " << call.section << ": helper #" << call.helper);
        const HelperInfo* info = helper_info(call.helper);
        REQUIRE(info != nullptr);
        names.insert(info->name);
        CHECK(std::pair{info->major, info->minor} <= std::pair{6, 4});
        CHECK(call.prog_type == BPF_PROG_TYPE_SK_SKB);
    }
    CHECK(names.contains("bpf_sk_redirect_hash"));
    CHECK(names.contains("bpf_ringbuf_output"));
    CHECK(names.contains("bpf_skb_adjust_room"));  // trims retransmitted overlaps
}
