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

namespace portmux {

enum class AttachMode { native, generic, automatic };

// Where the maps of one interface are pinned.
std::filesystem::path pin_directory(const std::string& iface);

struct AttachOutcome {
    std::string mode;            // "native" or "generic"
    std::string attachment;      // "libxdp dispatcher" or "legacy (single program)"
    std::uint32_t program_id = 0;
    std::string fallback_note;   // set when auto mode fell back to generic
};

// Validates nothing about `config` (the caller did); loads and attaches the
// program, pins its maps, writes the config. On any failure the interface
// and bpffs are left as they were. Throws std::runtime_error.
AttachOutcome attach(const std::string& iface, const Config& config, AttachMode mode);

// Thrown by detach() when portmux is not attached to the interface.
class NotAttached : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Removes the program from the interface (if the interface still exists)
// and the pins.
void detach(const std::string& iface);

struct InterfaceStatus {
    std::string iface;
    bool program_attached = false;  // false: pins left behind without a program
    std::string mode;
    std::string attachment;
    std::uint32_t program_id = 0;
    bool tc_attached = false;       // the reply translator on TC egress
    std::uint32_t tc_program_id = 0;
    std::vector<Frontend> frontends;
    std::string incomplete;  // why the pins cannot be read, when they cannot
};

// The pinned maps of one interface, opened for reading and writing.
struct PinnedMaps {
    UniqueFd frontends;
    UniqueFd frontend_state;
    UniqueFd routes;
    UniqueFd flows;
    UniqueFd replies;
    UniqueFd backend_ports;

    DataPathMaps data_path() const {
        return {frontends.get(), frontend_state.get(), routes.get(), backend_ports.get()};
    }
};

// Opens the pinned maps of IFACE; throws NotAttached when there are none.
PinnedMaps open_pinned_maps(const std::string& iface);

// The interfaces that have portmux pins.
std::vector<std::string> attached_interfaces();

// Id of a portmux XDP program on IFACE found by name, 0 when there is none:
// tells "not attached" from "attached, but its pins are not in this bpffs".
std::uint32_t program_on_interface(const std::string& iface);

// Status of one interface; std::nullopt when portmux is not attached there.
std::optional<InterfaceStatus> query_status(const std::string& iface);

}  // namespace portmux
