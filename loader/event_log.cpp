#include "event_log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

namespace portmux {
namespace {

std::string_view level_name(LogLevel level) {
    switch (level) {
    case LogLevel::error:
        return "error";
    case LogLevel::warning:
        return "warning";
    case LogLevel::info:
        return "info";
    case LogLevel::debug:
        return "debug";
    }
    return "info";
}

bool needs_quotes(std::string_view value) {
    if (value.empty()) {
        return true;
    }
    for (char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= ' ' || byte == 0x7f || c == '"' || c == '=' || c == '\\') {
            return true;
        }
    }
    return false;
}

void append_value(std::string& out, std::string_view value) {
    if (!needs_quotes(value)) {
        out += value;
        return;
    }
    out += '"';
    for (char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (byte < ' ' || byte == 0x7f) {
            out += fmt::format("\\x{:02x}", byte);
        } else {
            out += c;
        }
    }
    out += '"';
}

}  // namespace

std::string format_event(LogLevel level, std::string_view event, const LogFields& fields,
                         bool priority_prefix) {
    std::string line;
    if (priority_prefix) {
        line += fmt::format("<{}>", static_cast<int>(level));
    }
    line += "level=";
    line += level_name(level);
    line += " event=";
    append_value(line, event);
    for (const auto& [key, value] : fields) {
        line += ' ';
        line += key;
        line += '=';
        append_value(line, value);
    }
    return line;
}

bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (!stream) {
        return false;
    }
    unsigned long long device = 0;
    unsigned long long inode = 0;
    if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) {
        return false;
    }
    struct stat info {};
    return fstat(STDERR_FILENO, &info) == 0 && info.st_dev == device && info.st_ino == inode;
}

void log_event(LogLevel level, std::string_view event, const LogFields& fields) {
    static const bool journal = stderr_is_journal();
    std::string line = format_event(level, event, fields, journal);
    line += '\n';
    // One write per line: stderr is unbuffered and shared with the metrics thread.
    std::size_t written = 0;
    while (written < line.size()) {
        const ssize_t n = ::write(STDERR_FILENO, line.data() + written, line.size() - written);
        if (n <= 0) {
            return;  // nowhere to log to; the service carries on
        }
        written += static_cast<std::size_t>(n);
    }
}

}  // namespace portmux
