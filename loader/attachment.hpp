// Attaching the data path to an interface, finding it again, removing it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bpf_handles.hpp"
#include "config.hpp"
#include "maps.hpp"
#include "pins.hpp"
#include "state_lock.hpp"

namespace portmux {

enum class AttachMode { native, generic, automatic };

struct AttachOutcome {
    std::string mode;            // "native" or "generic"
    std::string attachment;      // "libxdp dispatcher", "bpf_link" or "legacy (single program)"
    std::string tc_attachment;   // "tcx link", "clsact filter", or "" when no frontend needs it
    std::uint32_t program_id = 0;
    std::string fallback_note;   // set when auto mode fell back to generic
    std::string object;          // the data path object: "standard" or "frags-aware"
};

// Validates nothing about `config` (the caller did); loads and attaches the
// program, pins its maps, writes the config. On any failure the interface
// and bpffs are left as they were. Throws std::runtime_error.
// The caller holds LOCK.
AttachOutcome attach(const StateLock& lock, const std::string& iface, const Config& config,
                     AttachMode mode);

// Removes the program from the interface (if the interface still exists)
// and the pins; throws NotAttached when there is neither. The caller holds LOCK.
void detach(const StateLock& lock, const std::string& iface);

struct InterfaceStatus {
    std::string iface;
    bool interface_exists = true;
    bool program_attached = false;  // false: pins left behind without a program
    std::string mode;
    std::string attachment;
    std::uint32_t program_id = 0;
    bool tc_attached = false;       // the reply translator on TC egress
    bool tc_needed = false;         // some frontend translates replies
    std::uint32_t tc_program_id = 0;
    std::string tc_attachment;      // "tcx link" or "clsact filter"
    std::vector<Frontend> frontends;
    std::uint32_t flow_table_size = 0;  // 0 when the maps cannot be read
    std::string incomplete;  // why the pins cannot be read, when they cannot
};

// Puts IFACE's pinned TC egress program on the interface when NEEDED (a
// tcx link pinned beside the maps where attach would use one, else a clsact
// filter) and takes it off when not; nothing when it already is as wanted.
// A reload calls it so the program runs only while some frontend translates
// replies. Throws std::runtime_error. The caller holds LOCK.
void set_tc_egress(const StateLock& lock, const std::string& iface, bool needed);

// Checks, before a verb writes MAPS (opened from IFACE's pins), that they
// are the maps of IFACE's pinned program and that this program is the one
// attached to IFACE. Throws std::runtime_error saying what is wrong.
void require_live_attachment(const std::string& iface, const PinnedMaps& maps);

// The interfaces that have portmux pins.
std::vector<std::string> attached_interfaces();

// Id of a portmux XDP program on IFACE found by name, 0 when there is none:
// tells "not attached" from "attached, but its pins are not in this bpffs".
std::uint32_t program_on_interface(const std::string& iface);

// Status of one interface; std::nullopt when portmux is not attached there.
std::optional<InterfaceStatus> query_status(const std::string& iface);

}  // namespace portmux
