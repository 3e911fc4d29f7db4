// Where portmux keeps its pins in bpffs, which of them it trusts, and the one
// table of pinned maps that both attach (pinning) and every later verb
// (opening) go by.
//
// A fresh bpffs is mode 1777, so any user could create /sys/fs/bpf/portmux
// (or a symlink there) before portmux does. Every directory portmux puts
// pins in is therefore checked before use: a real directory (not a
// symlink), on bpffs, owned by root (or by the user running portmux), mode
// 0700. Below such a directory no other user can create, rename or remove
// anything, so paths under it can be used safely once it is checked.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

#include "bpf_handles.hpp"
#include "maps.hpp"

namespace portmux {

// /sys/fs/bpf/portmux
std::filesystem::path pin_root();

// Where the pins of one interface live: /sys/fs/bpf/portmux/IFACE.
std::filesystem::path pin_directory(const std::string& iface);

// Pin names of the programs, beside the maps of kPinnedMaps.
inline constexpr const char* kXdpProgramPin = "xdp_program";
inline constexpr const char* kTcProgramPin = "tc_program";

// A pin directory (or something in its place) portmux will not use. The
// message says what is wrong and how to fix it.
class UntrustedPins : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Thrown when portmux is not attached to the interface (no pins, no program).
class NotAttached : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The pinned maps of one interface, opened for reading and writing.
struct PinnedMaps {
    UniqueFd frontend_configs;
    UniqueFd frontend_state;
    UniqueFd routes;
    UniqueFd flows;
    UniqueFd direct_clients;
    UniqueFd direct_ports;
    UniqueFd ports;
    UniqueFd syn_slots;
    UniqueFd meta;
    UniqueFd counter_bases;
    UniqueFd port_bits;

    DataPathMaps data_path() const {
        return {frontend_configs.get(), frontend_state.get(), routes.get(), ports.get(),
                meta.get(), counter_bases.get(), port_bits.get()};
    }
};

// Every map portmux pins. The pin name is the map's name in the BPF object
// (xdp/maps.h; object_name where it differs), so attach finds each map by it and pins it under it, and
// open_pinned_maps() opens each pin into its member. Adding a map means one
// member above and one line here.
struct PinnedMapEntry {
    const char* name;
    UniqueFd PinnedMaps::*fd;
    // Whether the XDP or TC program uses the map: then reload and drain check
    // that the pinned map is one of the pinned programs' own maps. A map only
    // the loader reads (meta) is in no program's map list.
    bool used_by_programs = true;
    // The map's name in the BPF object when it is not the pin name: global
    // data in a section of its own is a map named after the section.
    const char* object_name = nullptr;
};
inline constexpr PinnedMapEntry kPinnedMaps[] = {
    {"frontend_configs", &PinnedMaps::frontend_configs},
    {"frontend_state", &PinnedMaps::frontend_state},
    {"routes", &PinnedMaps::routes},
    {"flows", &PinnedMaps::flows},
    {"direct_clients", &PinnedMaps::direct_clients},
    {"direct_ports", &PinnedMaps::direct_ports},
    {"ports", &PinnedMaps::ports},
    {"syn_slots", &PinnedMaps::syn_slots},
    {kMetaPin, &PinnedMaps::meta, false},
    {"counter_bases", &PinnedMaps::counter_bases, false},
    {"port_bits", &PinnedMaps::port_bits, true, ".data.port_bits"},
};

// Refuses interface names that could leave the pin root ("..", "a/b") or
// that no interface can have. Throws std::runtime_error.
void require_interface_name(const std::string& iface);

// Opens the pin root, checked as described above. When it does not exist:
// with `create`, makes it (mode 0700) and checks what it opened; without,
// returns an empty UniqueFd. Throws UntrustedPins.
UniqueFd open_pin_root(bool create);

// Opens IFACE's directory under the checked ROOT_FD, checked the same way;
// an empty UniqueFd when it does not exist. Throws UntrustedPins.
UniqueFd open_interface_directory(int root_fd, const std::string& iface);

// Creates IFACE's directory under ROOT_FD (mode 0700); throws when it exists.
UniqueFd create_interface_directory(int root_fd, const std::string& iface);

// Removes the pins in IFACE's directory and the directory itself. Works on
// the checked directory by fd and never follows a link, so nothing outside
// bpffs is touched. Throws std::runtime_error naming what it could not remove.
void remove_interface_pins(int root_fd, const std::string& iface);

// Removes the pin root when nothing is left in it (so a machine portmux was
// removed from keeps no trace); does nothing otherwise.
void remove_pin_root_if_empty();

// Opens the pinned maps of IFACE (checking the directories on the way);
// throws NotAttached when there are none.
PinnedMaps open_pinned_maps(const std::string& iface);

// The names of the interfaces with a pin directory.
std::vector<std::string> pinned_interfaces();

}  // namespace portmux
