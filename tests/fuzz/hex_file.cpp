#include "hex_file.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace portmux::fuzz {

std::vector<std::uint8_t> read_hex_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + file.string());
    }
    std::vector<std::uint8_t> bytes;
    std::string line;
    int pending = -1;
    while (std::getline(in, line)) {
        for (const char c : line) {
            if (c == '#') {
                break;
            }
            if (std::isspace(static_cast<unsigned char>(c))) {
                continue;
            }
            if (!std::isxdigit(static_cast<unsigned char>(c))) {
                throw std::runtime_error(file.string() + ": not a hex digit: '" + std::string(1, c) + "'");
            }
            const int digit = std::isdigit(static_cast<unsigned char>(c))
                                  ? c - '0'
                                  : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
            if (pending < 0) {
                pending = digit;
            } else {
                bytes.push_back(static_cast<std::uint8_t>(pending << 4 | digit));
                pending = -1;
            }
        }
    }
    if (pending >= 0) {
        throw std::runtime_error(file.string() + ": odd number of hex digits");
    }
    return bytes;
}

void write_hex_file(const std::filesystem::path& file, const std::string& comment,
                    const std::vector<std::uint8_t>& bytes) {
    std::ostringstream out;
    std::istringstream lines(comment);
    std::string line;
    while (std::getline(lines, line)) {
        out << "# " << line << '\n';
    }
    static constexpr char kDigits[] = "0123456789abcdef";
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        out << kDigits[bytes[i] >> 4] << kDigits[bytes[i] & 15];
        out << ((i % 16 == 15 || i + 1 == bytes.size()) ? '\n' : ' ');
    }
    std::filesystem::create_directories(file.parent_path());
    std::ofstream f(file, std::ios::binary | std::ios::trunc);
    f << out.str();
    if (!f) {
        throw std::runtime_error("cannot write " + file.string());
    }
}

std::vector<std::filesystem::path> hex_files_in(const std::filesystem::path& directory) {
    std::vector<std::filesystem::path> files;
    std::error_code error;
    if (!std::filesystem::is_directory(directory, error)) {
        return files;
    }
    for (const auto& entry : std::filesystem::directory_iterator(directory)) {
        if (entry.is_regular_file() && entry.path().extension() == ".hex") {
            files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace portmux::fuzz
