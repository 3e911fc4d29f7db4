#include "bpf_helpers.hpp"

#include <bpf/libbpf.h>
#include <elf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace portmux {
namespace {

// Ids come from <linux/bpf.h>; the versions are those of the kernel's
// mainline release that added each helper.
constexpr HelperInfo kHelpers[] = {
    {BPF_FUNC_map_lookup_elem, "bpf_map_lookup_elem", 3, 19},
    {BPF_FUNC_map_update_elem, "bpf_map_update_elem", 3, 19},
    {BPF_FUNC_map_delete_elem, "bpf_map_delete_elem", 3, 19},
    {BPF_FUNC_ktime_get_ns, "bpf_ktime_get_ns", 4, 1},
    {BPF_FUNC_trace_printk, "bpf_trace_printk", 4, 1},
    {BPF_FUNC_get_prandom_u32, "bpf_get_prandom_u32", 4, 1},
    {BPF_FUNC_get_smp_processor_id, "bpf_get_smp_processor_id", 4, 1},
    {BPF_FUNC_skb_store_bytes, "bpf_skb_store_bytes", 4, 1},
    {BPF_FUNC_l3_csum_replace, "bpf_l3_csum_replace", 4, 1},
    {BPF_FUNC_l4_csum_replace, "bpf_l4_csum_replace", 4, 1},
    {BPF_FUNC_tail_call, "bpf_tail_call", 4, 2},
    {BPF_FUNC_redirect, "bpf_redirect", 4, 4},
    {BPF_FUNC_skb_load_bytes, "bpf_skb_load_bytes", 4, 5},
    {BPF_FUNC_csum_diff, "bpf_csum_diff", 4, 6},
    {BPF_FUNC_skb_pull_data, "bpf_skb_pull_data", 4, 9},
    {BPF_FUNC_xdp_adjust_head, "bpf_xdp_adjust_head", 4, 10},
    {BPF_FUNC_redirect_map, "bpf_redirect_map", 4, 14},
    {BPF_FUNC_xdp_adjust_meta, "bpf_xdp_adjust_meta", 4, 15},
    {BPF_FUNC_xdp_adjust_tail, "bpf_xdp_adjust_tail", 4, 18},
    {BPF_FUNC_fib_lookup, "bpf_fib_lookup", 4, 18},
    {BPF_FUNC_get_socket_cookie, "bpf_get_socket_cookie", 4, 12},
    {BPF_FUNC_sk_redirect_hash, "bpf_sk_redirect_hash", 4, 18},
    {BPF_FUNC_sk_lookup_tcp, "bpf_sk_lookup_tcp", 4, 20},
    {BPF_FUNC_sk_lookup_udp, "bpf_sk_lookup_udp", 4, 20},
    {BPF_FUNC_sk_release, "bpf_sk_release", 4, 20},
    {BPF_FUNC_skc_lookup_tcp, "bpf_skc_lookup_tcp", 5, 2},
    {BPF_FUNC_tcp_check_syncookie, "bpf_tcp_check_syncookie", 5, 2},
    {BPF_FUNC_tcp_gen_syncookie, "bpf_tcp_gen_syncookie", 5, 3},
    {BPF_FUNC_skb_adjust_room, "bpf_skb_adjust_room", 4, 13},
    {BPF_FUNC_jiffies64, "bpf_jiffies64", 5, 5},
    {BPF_FUNC_probe_read_kernel, "bpf_probe_read_kernel", 5, 5},
    {BPF_FUNC_ktime_get_boot_ns, "bpf_ktime_get_boot_ns", 5, 8},
    {BPF_FUNC_ringbuf_output, "bpf_ringbuf_output", 5, 8},
    {BPF_FUNC_ktime_get_coarse_ns, "bpf_ktime_get_coarse_ns", 5, 11},
    {BPF_FUNC_check_mtu, "bpf_check_mtu", 5, 12},
    {BPF_FUNC_loop, "bpf_loop", 5, 17},
    {BPF_FUNC_xdp_get_buff_len, "bpf_xdp_get_buff_len", 5, 18},
    {BPF_FUNC_xdp_load_bytes, "bpf_xdp_load_bytes", 5, 18},
    {BPF_FUNC_xdp_store_bytes, "bpf_xdp_store_bytes", 5, 18},
};

// Program type of a section, by libbpf's section names portmux uses.
std::uint32_t section_prog_type(std::string_view section) {
    if (section.starts_with("xdp")) {
        return BPF_PROG_TYPE_XDP;
    }
    if (section.starts_with("tc") || section.starts_with("classifier")) {
        return BPF_PROG_TYPE_SCHED_CLS;
    }
    if (section.starts_with("sk_skb")) {
        return BPF_PROG_TYPE_SK_SKB;
    }
    // .text: global subprograms (balance_parsed_frame, which only the XDP
    // program calls; first_missing_helper probes them as XDP).
    return BPF_PROG_TYPE_UNSPEC;
}

template <typename T>
T read_at(std::span<const std::uint8_t> bytes, std::size_t offset) {
    if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) {
        throw std::runtime_error("truncated ELF object");
    }
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof value);
    return value;
}

}  // namespace

const HelperInfo* helper_info(std::uint32_t id) {
    const auto found = std::find_if(std::begin(kHelpers), std::end(kHelpers),
                                    [id](const HelperInfo& info) { return info.id == id; });
    return found == std::end(kHelpers) ? nullptr : found;
}

std::vector<HelperCall> helper_calls(std::span<const std::uint8_t> elf) {
    const auto header = read_at<Elf64_Ehdr>(elf, 0);
    if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64 ||
        header.e_ident[EI_DATA] != ELFDATA2LSB || header.e_machine != EM_BPF) {
        throw std::runtime_error("not a 64-bit little-endian BPF ELF object");
    }
    const auto section = [&](std::size_t index) {
        return read_at<Elf64_Shdr>(elf, header.e_shoff + index * sizeof(Elf64_Shdr));
    };
    const Elf64_Shdr names = section(header.e_shstrndx);
    std::vector<HelperCall> calls;
    for (std::size_t i = 0; i < header.e_shnum; ++i) {
        const Elf64_Shdr shdr = section(i);
        if (shdr.sh_type != SHT_PROGBITS || !(shdr.sh_flags & SHF_EXECINSTR)) {
            continue;
        }
        if (shdr.sh_name >= names.sh_size || names.sh_offset + names.sh_size > elf.size()) {
            throw std::runtime_error("ELF section name out of range");
        }
        const char* name_start = reinterpret_cast<const char*>(elf.data() + names.sh_offset + shdr.sh_name);
        const std::string name(name_start, strnlen(name_start, names.sh_size - shdr.sh_name));
        for (std::size_t at = 0; at + sizeof(bpf_insn) <= shdr.sh_size; at += sizeof(bpf_insn)) {
            const auto insn = read_at<bpf_insn>(elf, shdr.sh_offset + at);
            if (insn.code != (BPF_JMP | BPF_CALL) || insn.src_reg != 0) {
                continue;  // src_reg 1: a call to a subprogram, 2: a kfunc
            }
            const auto helper = static_cast<std::uint32_t>(insn.imm);
            const bool known = std::any_of(calls.begin(), calls.end(), [&](const HelperCall& c) {
                return c.helper == helper && c.section == name;
            });
            if (!known) {
                calls.push_back({helper, section_prog_type(name), name});
            }
        }
    }
    return calls;
}

std::optional<HelperCall> first_missing_helper(std::span<const std::uint8_t> elf) {
    for (const HelperCall& call : helper_calls(elf)) {
        const auto type = static_cast<bpf_prog_type>(
            call.prog_type == BPF_PROG_TYPE_UNSPEC ? std::uint32_t{BPF_PROG_TYPE_XDP} : call.prog_type);
        if (libbpf_probe_bpf_helper(type, static_cast<bpf_func_id>(call.helper), nullptr) == 0) {
            return call;
        }
    }
    return std::nullopt;
}

std::string missing_helper_message(const HelperCall& call, std::string_view purpose) {
    const HelperInfo* info = helper_info(call.helper);
    if (!info) {
        return fmt::format("this kernel lacks BPF helper #{}, needed by {}", call.helper, purpose);
    }
    return fmt::format("this kernel lacks BPF helper {} (Linux {}.{}, or a kernel with it backported), "
                       "needed by {}",
                       info->name, info->major, info->minor, purpose);
}

}  // namespace portmux
