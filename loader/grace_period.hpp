// Waiting until no BPF program still reads what the loader is about to
// overwrite.
#pragma once

namespace portmux {

// Returns once every BPF program (XDP, TC, any non-sleepable one) that was
// running anywhere when it was called has finished: an RCU grace period.
// A program that starts afterwards sees every map write made before the
// call. Use it between making a map element unreachable (flipping the
// `ports` entry to a frontend's other config buffer, say) and writing that
// element again.
//
// How: a successful update of a BPF_MAP_TYPE_ARRAY_OF_MAPS element makes the
// bpf() syscall call synchronize_rcu() before it returns
// (kernel/bpf/syscall.c, map_update_elem -> maybe_wait_bpf_programs, since
// Linux 4.20; on 6.x only when the update succeeded). Each call creates a
// one-entry array of maps and its inner map, updates the entry, and closes
// both: no state is kept, so any process may call it. Typically a few
// milliseconds; tens on a busy machine.
//
// Throws std::system_error naming the step that failed (map creation needs
// CAP_BPF, as every other map operation of the loader does).
void wait_for_bpf_readers();

}  // namespace portmux
