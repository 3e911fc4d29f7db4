// Reading JSON text for the config; see config_json.hpp.
#include "config_json.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace portmux {
namespace config_json {
namespace {

bool is_plain_key(std::string_view key) {
    return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

}  // namespace

// JSON text for TEXT, escapes included, so that whatever a user typed is
// printed unambiguously and without raw control characters.
std::string json_string(std::string_view text) {
    return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// `parent.key`; keys that would make the path ambiguous (dots, brackets,
// spaces...) are written as `parent["a.b"]` instead.
std::string member_path(std::string_view parent, std::string_view key) {
    if (!is_plain_key(key)) {
        return fmt::format("{}[{}]", parent, json_string(key));
    }
    return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

std::string element_path(std::string_view parent, std::size_t index) {
    return fmt::format("{}[{}]", parent, index);
}

// What the user wrote instead of what was expected, for the end of a reason.
std::string describe(const Json& value) {
    switch (value.type()) {
    case Json::value_t::object:
        return "an object";
    case Json::value_t::array:
        return "an array";
    case Json::value_t::string:
        return fmt::format("the string {}", json_string(value.get_ref<const std::string&>()));
    default:  // numbers, booleans and null read best exactly as written
        return value.dump();
    }
}

namespace {

// ---------------------------------------------------------------- syntax

struct TextPosition {
    std::size_t line = 1;
    std::size_t column = 1;
};

// nlohmann reports a parse error as a count of bytes read, the offending
// byte included (end of input counting as one more); people and editors
// want a line and column. Columns count characters, not bytes, so a
// non-ASCII name earlier on the line does not push them to the right.
TextPosition position_of(std::string_view text, std::size_t bytes_read) {
    const std::size_t offset = std::min(bytes_read == 0 ? 0 : bytes_read - 1, text.size());
    TextPosition position;
    for (const char c : text.substr(0, offset)) {
        if (c == '\n') {
            ++position.line;
            position.column = 1;
        } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {  // not a UTF-8 continuation
            ++position.column;
        }
    }
    return position;
}

// nlohmann's message without its "[json.exception...] parse error at line
// L, column C: " prefix, whose position we compute ourselves.
std::string parse_error_detail(std::string_view message) {
    const std::size_t start = message.find("parse error");
    const std::size_t colon = start == std::string_view::npos ? start : message.find(": ", start);
    return std::string(colon == std::string_view::npos ? message : message.substr(colon + 2));
}

ConfigError syntax_error(std::string_view text, std::size_t bytes_read, std::string_view message) {
    const TextPosition position = position_of(text, bytes_read);
    return ConfigError({}, fmt::format("line {}, column {}: {}", position.line, position.column,
                                       parse_error_detail(message)));
}

// nlohmann silently keeps the last of repeated keys; in a config a second
// "port" is a mistake, not an override. A first SAX pass over the text
// follows the path so the repetition is reported where it is, and reports
// syntax errors and nesting deeper than kMaxNestingDepth (before nlohmann
// builds a document of it). (A SAX pass, not a parse callback: nlohmann's
// callback parser rescans the enclosing array at the end of every object,
// which makes a large array of objects quadratic.)
//
// Memory stays proportional to the text: each open container keeps its own
// keys and the key or index it is at, and the full path is put together
// only for an error.
class DuplicateKeyDetector : public nlohmann::json_sax<Json> {
public:
    explicit DuplicateKeyDetector(std::string_view text) : text_(text) {}

    bool null() override { return value(); }
    bool boolean(bool /*unused*/) override { return value(); }
    bool number_integer(number_integer_t /*unused*/) override { return value(); }
    bool number_unsigned(number_unsigned_t /*unused*/) override { return value(); }
    bool number_float(number_float_t /*unused*/, const string_t& /*unused*/) override {
        return value();
    }
    bool string(string_t& /*unused*/) override { return value(); }
    bool binary(binary_t& /*unused*/) override { return value(); }

    bool start_object(std::size_t /*unused*/) override { return start(false); }
    bool start_array(std::size_t /*unused*/) override { return start(true); }
    bool end_object() override { return end(); }
    bool end_array() override { return end(); }

    bool key(string_t& name) override {
        Container& object = containers_.back();
        const auto [where, inserted] = object.keys.insert(name);
        object.current_key = &*where;
        if (!inserted) {
            throw ConfigError(path_to(containers_.size()),
                              fmt::format("duplicate key {}", json_string(name)));
        }
        return true;
    }

    bool parse_error(std::size_t position, const std::string& /*last_token*/,
                     const nlohmann::detail::exception& error) override {
        throw syntax_error(text_, position, error.what());
    }

private:
    struct Container {
        explicit Container(bool array) : is_array(array) {}

        bool is_array = false;
        std::size_t next_index = 0;                 // arrays
        const std::string* current_key = nullptr;   // objects: points into keys
        std::set<std::string> keys;                 // objects
    };

    bool value() {
        child_done();
        return true;
    }

    bool start(bool array) {
        if (containers_.size() == kMaxNestingDepth) {
            throw ConfigError(path_to(containers_.size()),
                              fmt::format("nested deeper than {} levels of arrays and objects",
                                          kMaxNestingDepth));
        }
        containers_.emplace_back(array);
        return true;
    }

    bool end() {
        containers_.pop_back();
        child_done();
        return true;
    }

    // The path of the element the first COUNT open containers lead to:
    // with COUNT = all of them, the element being read now.
    std::string path_to(std::size_t count) const {
        std::string path;
        for (std::size_t level = 0; level < count; ++level) {
            const Container& container = containers_[level];
            if (container.is_array) {
                path = element_path(path, container.next_index);
            } else if (container.current_key) {
                path = member_path(path, *container.current_key);
            }
        }
        return path;
    }

    void child_done() {
        if (!containers_.empty() && containers_.back().is_array) {
            ++containers_.back().next_index;
        }
    }

    std::string_view text_;
    std::vector<Container> containers_;
};

// ---------------------------------------------------------------- files

ConfigError unreadable(const std::filesystem::path& file, const std::string& cause) {
    return ConfigError({}, fmt::format("cannot read config file: {}", cause)).in_file(file);
}

ConfigError unreadable(const std::filesystem::path& file, int error) {
    return unreadable(file, error != 0 ? std::generic_category().message(error)
                                       : std::string("read error"));
}

struct FileDescriptor {
    explicit FileDescriptor(int descriptor) : fd(descriptor) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() {
        if (fd >= 0) {
            close(fd);
        }
    }
    int get() const { return fd; }
    int fd;
};

// What a file that is not a regular file is, for the message.
const char* file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

std::string compose_message(const std::string& path, const std::string& reason) {
    return path.empty() ? reason : fmt::format("{}: {}", path, reason);
}

}  // namespace

Json parse_json(std::string_view text) {
    DuplicateKeyDetector detector(text);
    (void)Json::sax_parse(text, &detector);  // throws on the first mistake
    try {
        return Json::parse(text);
    } catch (const nlohmann::json::parse_error& error) {  // not expected after the first pass
        throw syntax_error(text, error.byte, error.what());
    }
}

std::string read_config_text(const std::filesystem::path& file) {
    // Non-blocking, so that opening a FIFO returns at once (and is then
    // refused) instead of waiting for a writer; only a regular file is read,
    // so /dev/zero or a pipe cannot feed it without end.
    const FileDescriptor fd(open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (fd.get() < 0) {
        throw unreadable(file, errno);
    }
    struct stat info {};
    if (fstat(fd.get(), &info) != 0) {
        throw unreadable(file, errno);
    }
    if (!S_ISREG(info.st_mode)) {
        if (S_ISDIR(info.st_mode)) {
            throw unreadable(file, EISDIR);
        }
        throw unreadable(file, fmt::format("it is {}, not a regular file", file_kind(info.st_mode)));
    }
    const auto too_large = [&file] {
        return unreadable(file, fmt::format("larger than {} bytes ({} MiB), the most a config may "
                                            "be",
                                            kMaxConfigBytes, kMaxConfigBytes >> 20));
    };
    if (static_cast<std::uint64_t>(info.st_size) > kMaxConfigBytes) {
        throw too_large();
    }
    // Read until the end, but never past the cap: the file may grow meanwhile.
    std::string text(static_cast<std::size_t>(info.st_size), '\0');
    std::size_t used = 0;
    for (;;) {
        if (used == text.size()) {
            if (text.size() > kMaxConfigBytes) {
                throw too_large();
            }
            text.resize(std::min<std::size_t>(std::max<std::size_t>(2 * text.size(), 4096),
                                              kMaxConfigBytes + 1));
        }
        const ssize_t count = read(fd.get(), text.data() + used, text.size() - used);
        if (count < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw unreadable(file, errno);
        }
        if (count == 0) {
            break;
        }
        used += static_cast<std::size_t>(count);
    }
    text.resize(used);
    return text;
}

}  // namespace config_json

ConfigError::ConfigError(std::string path, std::string reason)
    : std::runtime_error(config_json::compose_message(path, reason)),
      path_(std::move(path)),
      reason_(std::move(reason)) {}

ConfigError::ConfigError(std::string path, std::string reason, const std::string& message)
    : std::runtime_error(message), path_(std::move(path)), reason_(std::move(reason)) {}

ConfigError ConfigError::in_file(const std::filesystem::path& file) const {
    return ConfigError(path_, reason_,
                       fmt::format("{}: {}", file.string(), config_json::compose_message(path_, reason_)));
}


}  // namespace portmux
