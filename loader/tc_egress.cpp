#include "tc_egress.hpp"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace portmux {
namespace {

bpf_tc_hook egress_hook(unsigned ifindex) {
    bpf_tc_hook hook{};
    hook.sz = sizeof hook;
    hook.ifindex = static_cast<int>(ifindex);
    hook.attach_point = BPF_TC_EGRESS;
    return hook;
}

bpf_tc_opts portmux_filter() {
    bpf_tc_opts opts{};
    opts.sz = sizeof opts;
    opts.handle = kTcHandle;
    opts.priority = kTcPriority;
    return opts;
}

}  // namespace

void attach_tc_egress(unsigned ifindex, int program_fd) {
    bpf_tc_hook hook = egress_hook(ifindex);
    if (int err = bpf_tc_hook_create(&hook); err && err != -EEXIST) {
        throw std::runtime_error(
            fmt::format("creating the clsact qdisc for TC egress: {}", std::strerror(-err)));
    }
    bpf_tc_opts opts = portmux_filter();
    opts.prog_fd = program_fd;
    if (int err = bpf_tc_attach(&hook, &opts); err) {
        throw std::runtime_error(fmt::format(
            "attaching the TC egress program (handle {:#x}, priority {:#x}): {}", kTcHandle,
            kTcPriority, std::strerror(-err)));
    }
}

void detach_tc_egress(unsigned ifindex) {
    const bpf_tc_hook hook = egress_hook(ifindex);
    const bpf_tc_opts opts = portmux_filter();
    if (int err = bpf_tc_detach(&hook, &opts); err && err != -ENOENT && err != -EINVAL) {
        throw std::runtime_error(
            fmt::format("removing the TC egress program: {}", std::strerror(-err)));
    }
}

std::uint32_t tc_egress_program_id(unsigned ifindex) {
    const bpf_tc_hook hook = egress_hook(ifindex);
    bpf_tc_opts opts = portmux_filter();
    if (bpf_tc_query(&hook, &opts) != 0) {
        return 0;
    }
    return opts.prog_id;
}

}  // namespace portmux
