// The service's log: one line per event on stderr, as logfmt
// (`level=info event=reloaded iface=eth0 frontends=3`), which journald shows
// whole and tools split on key=value. Under journald (JOURNAL_STREAM names
// our stderr) each line also starts with a syslog priority prefix such as
// `<6>`, so `journalctl -p warning` filters by level.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portmux {

enum class LogLevel { error = 3, warning = 4, info = 6, debug = 7 };

using LogFields = std::vector<std::pair<std::string, std::string>>;

// One log line without its newline. Values with spaces, quotes, '=' or
// control characters are quoted with backslash escapes; empty values are "".
std::string format_event(LogLevel level, std::string_view event, const LogFields& fields,
                         bool priority_prefix);

// True when stderr is the stream journald gave us (JOURNAL_STREAM=dev:ino).
bool stderr_is_journal();

// Writes one event line to stderr in a single write (lines of concurrent
// threads never interleave).
void log_event(LogLevel level, std::string_view event, const LogFields& fields = {});

}  // namespace portmux
