// The crafted seed corpus of tests/fuzz/packet_seeds/: one frame per
// corner of the parser and of each frontend policy (see fuzz_frontends.hpp).
// `packet_fuzz --write-seeds DIR` writes them; every run replays the
// committed files, so they are regression tests of their own.
#pragma once

#include <string>
#include <vector>

#include "fuzz_frontends.hpp"

namespace portmux::fuzz {

struct SeedFrame {
    std::string name;     // file name without .hex
    std::string comment;  // what it is and what the data path must do
    Bytes bytes;
};

std::vector<SeedFrame> seed_frames();

}  // namespace portmux::fuzz
