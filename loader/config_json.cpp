// Reading JSON text for the config; see config_json.hpp.
#include "config_json.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <memory>
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
// syntax errors. (A SAX pass, not a parse callback: nlohmann's callback
// parser rescans the enclosing array at the end of every object, which
// makes a large array of objects quadratic.)
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
        object.current_key = name;
        if (!object.keys.insert(object.current_key).second) {
            throw ConfigError(member_path(object.path, object.current_key),
                              fmt::format("duplicate key {}", json_string(object.current_key)));
        }
        return true;
    }

    bool parse_error(std::size_t position, const std::string& /*last_token*/,
                     const nlohmann::detail::exception& error) override {
        throw syntax_error(text_, position, error.what());
    }

private:
    struct Container {
        Container(std::string container_path, bool array)
            : path(std::move(container_path)), is_array(array) {}

        std::string path;
        bool is_array = false;
        std::size_t next_index = 0;   // arrays
        std::string current_key;      // objects
        std::set<std::string> keys;   // objects
    };

    bool value() {
        child_done();
        return true;
    }

    bool start(bool array) {
        containers_.emplace_back(next_child_path(), array);
        return true;
    }

    bool end() {
        containers_.pop_back();
        child_done();
        return true;
    }

    std::string next_child_path() const {
        if (containers_.empty()) {
            return {};
        }
        const Container& parent = containers_.back();
        return parent.is_array ? element_path(parent.path, parent.next_index)
                               : member_path(parent.path, parent.current_key);
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

ConfigError unreadable(const std::filesystem::path& file, int error) {
    const std::string cause =
        error != 0 ? std::generic_category().message(error) : std::string("read error");
    return ConfigError({}, fmt::format("cannot read config file: {}", cause)).in_file(file);
}

std::string read_text_file_impl(const std::filesystem::path& file) {
    struct FileCloser {
        void operator()(std::FILE* stream) const noexcept { std::fclose(stream); }
    };
    errno = 0;
    const std::unique_ptr<std::FILE, FileCloser> stream(std::fopen(file.c_str(), "rb"));
    if (!stream) {
        throw unreadable(file, errno);
    }
    std::string text;
    std::array<char, 64 * 1024> chunk{};
    std::size_t count = 0;
    // A directory opens fine and fails here, with EISDIR.
    while ((count = std::fread(chunk.data(), 1, chunk.size(), stream.get())) > 0) {
        text.append(chunk.data(), count);
    }
    if (std::ferror(stream.get()) != 0) {
        throw unreadable(file, errno);
    }
    return text;
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
    return read_text_file_impl(file);
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
