#include "library_log.hpp"

#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include <cstdarg>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

namespace portmux {
namespace {

std::string captured;
bool echo_everything = false;

int append_message(bool is_debug, const char* format, va_list args) {
    if (is_debug && !echo_everything) {
        return 0;
    }
    // Verifier logs arrive as one long message: size it first.
    va_list measure;
    va_copy(measure, args);
    const int length = std::vsnprintf(nullptr, 0, format, measure);
    va_end(measure);
    if (length < 0) {
        return length;
    }
    std::string message(static_cast<std::size_t>(length) + 1, '\0');
    std::vsnprintf(message.data(), message.size(), format, args);
    message.pop_back();
    if (echo_everything) {
        std::fputs(message.c_str(), stderr);
    }
    captured += message;
    return length;
}

int libbpf_message(enum libbpf_print_level level, const char* format, va_list args) {
    return append_message(level == LIBBPF_DEBUG, format, args);
}

int libxdp_message(enum libxdp_print_level level, const char* format, va_list args) {
    return append_message(level == LIBXDP_DEBUG, format, args);
}

}  // namespace

void capture_library_logs(bool verbose) {
    echo_everything = verbose;
    libbpf_set_print(libbpf_message);
    libxdp_set_print(libxdp_message);
}

std::string take_library_log() {
    return std::exchange(captured, std::string());
}

std::string last_kernel_message() {
    static constexpr std::string_view marker = "Kernel error message: ";
    const std::size_t found = captured.rfind(marker);
    if (found == std::string::npos) {
        return {};
    }
    const std::size_t start = found + marker.size();
    const std::size_t end = captured.find('\n', start);
    return captured.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

}  // namespace portmux
