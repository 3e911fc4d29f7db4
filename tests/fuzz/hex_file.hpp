// Frames stored as hex text: '#' starts a comment that runs to the end of
// the line, whitespace is ignored, every other character is a hex digit.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace portmux::fuzz {

// Throws std::runtime_error naming the file for unreadable or malformed text.
std::vector<std::uint8_t> read_hex_file(const std::filesystem::path& file);

// Writes `comment` (each line prefixed with "# ") then the bytes, 16 a line.
void write_hex_file(const std::filesystem::path& file, const std::string& comment,
                    const std::vector<std::uint8_t>& bytes);

// The *.hex files of `directory`, sorted; none when it does not exist.
std::vector<std::filesystem::path> hex_files_in(const std::filesystem::path& directory);

}  // namespace portmux::fuzz
