#include "uvgena/http/message.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "http/token.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/http/error.hpp"

namespace uvgena::http {
namespace {

using detail::is_token;

// A field value may hold HTAB, visible ASCII, space and obs-text, never other controls:
// a CR or LF here would let a caller's value inject header lines.
bool is_field_value(std::string_view s) noexcept {
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    return true;
}

bool is_target(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c == 0x7f) return false;
    }
    return true;
}

bool keep_alive_of(const Headers& headers, int major, int minor) {
    bool close = false;
    bool keep = false;
    for (const Field& f : headers) {
        if (!iequals(f.name, "connection")) continue;
        close = close || has_token(f.value, "close");
        keep = keep || has_token(f.value, "keep-alive");
    }
    if (major > 1 || (major == 1 && minor >= 1)) return !close;
    return keep && !close;
}

void append_number(std::string& out, std::size_t n) {
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, res.ptr);
}

void append_version(std::string& out, int major, int minor) {
    out += "HTTP/";
    out += static_cast<char>('0' + std::clamp(major, 0, 9));
    out += '.';
    out += static_cast<char>('0' + std::clamp(minor, 0, 9));
}

bool is_framing_field(std::string_view name) noexcept {
    return iequals(name, "content-length") || iequals(name, "transfer-encoding");
}

// Appends every field except the framing ones (which serialisation computes itself),
// checking each so that nothing can smuggle extra lines into the message.
void append_fields(std::string& out, const Headers& headers) {
    for (const Field& f : headers) {
        if (!is_token(f.name) || !is_field_value(f.value)) {
            throw_error(make_error_code(errc::invalid_field), "header field \"" + f.name + "\"");
        }
        if (is_framing_field(f.name)) continue;
        out += f.name;
        out += ": ";
        out += f.value;
        out += "\r\n";
    }
}

std::size_t fields_size(const Headers& headers) noexcept {
    std::size_t n = 0;
    for (const Field& f : headers) n += f.name.size() + f.value.size() + 4;
    return n;
}

}  // namespace

bool has_token(std::string_view list, std::string_view token) noexcept {
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        if (iequals(trim(list.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

void Headers::add(std::string name, std::string value) {
    fields_.push_back(Field{std::move(name), std::move(value)});
}

void Headers::set(std::string_view name, std::string value) {
    auto first = std::find_if(fields_.begin(), fields_.end(),
                              [&](const Field& f) { return iequals(f.name, name); });
    if (first == fields_.end()) {
        fields_.push_back(Field{std::string(name), std::move(value)});
        return;
    }
    first->name.assign(name);
    first->value = std::move(value);
    fields_.erase(std::remove_if(first + 1, fields_.end(),
                                 [&](const Field& f) { return iequals(f.name, name); }),
                  fields_.end());
}

std::optional<std::string_view> Headers::get(std::string_view name) const {
    for (const Field& f : fields_) {
        if (iequals(f.name, name)) return std::string_view(f.value);
    }
    return std::nullopt;
}

std::vector<std::string_view> Headers::get_all(std::string_view name) const {
    std::vector<std::string_view> values;
    for (const Field& f : fields_) {
        if (iequals(f.name, name)) values.emplace_back(f.value);
    }
    return values;
}

bool Headers::contains(std::string_view name) const {
    return get(name).has_value();
}

std::size_t Headers::count(std::string_view name) const {
    return static_cast<std::size_t>(std::count_if(
        fields_.begin(), fields_.end(), [&](const Field& f) { return iequals(f.name, name); }));
}

void Headers::remove(std::string_view name) {
    fields_.erase(std::remove_if(fields_.begin(), fields_.end(),
                                 [&](const Field& f) { return iequals(f.name, name); }),
                  fields_.end());
}

// Exported here: the header declares it as a friend, where UVGENA_API cannot go.
UVGENA_API bool operator==(const Headers& a, const Headers& b) noexcept {
    if (a.fields_.size() != b.fields_.size()) return false;
    for (std::size_t i = 0; i < a.fields_.size(); ++i) {
        if (!iequals(a.fields_[i].name, b.fields_[i].name) ||
            a.fields_[i].value != b.fields_[i].value) {
            return false;
        }
    }
    return true;
}

bool Request::keep_alive() const {
    return keep_alive_of(headers, version_major, version_minor);
}

bool Response::keep_alive() const {
    return keep_alive_of(headers, version_major, version_minor);
}

void serialize_into(std::string& out, const Request& r) {
    if (!is_token(r.method)) throw_error(make_error_code(errc::invalid_field), "request method");
    if (!is_target(r.target)) throw_error(make_error_code(errc::invalid_field), "request target");
    if (!r.headers.contains("host")) throw_error(make_error_code(errc::missing_host));
    out.reserve(out.size() + r.method.size() + r.target.size() + fields_size(r.headers) +
                r.body.size() + 48);
    out += r.method;
    out += ' ';
    out += r.target;
    out += ' ';
    append_version(out, r.version_major, r.version_minor);
    out += "\r\n";
    append_fields(out, r.headers);
    out += "Content-Length: ";
    append_number(out, r.body.size());
    out += "\r\n\r\n";
    out += r.body;
}

void serialize_into(std::string& out, const Response& r, bool include_body) {
    // The answer sent most often (to every NOTIFY), in one append: the same bytes as below.
    if (r.status == 200 && r.reason.empty() && r.headers.empty() && r.body.empty() &&
        r.version_major == 1 && r.version_minor == 1) {
        out += "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        return;
    }
    if (r.status < 100 || r.status > 999) {
        throw_error(make_error_code(errc::invalid_field), "response status");
    }
    std::string_view reason = r.reason.empty() ? reason_phrase(r.status) : r.reason;
    if (!is_field_value(reason)) throw_error(make_error_code(errc::invalid_field), "reason");
    bool no_body = status_has_no_body(r.status);
    if (no_body && !r.body.empty()) {
        throw_error(make_error_code(errc::invalid_field),
                    "a " + std::to_string(r.status) + " response cannot have a body");
    }
    out.reserve(out.size() + reason.size() + fields_size(r.headers) + r.body.size() + 48);
    append_version(out, r.version_major, r.version_minor);
    out += ' ';
    append_number(out, static_cast<std::size_t>(r.status));
    out += ' ';
    out += reason;
    out += "\r\n";
    append_fields(out, r.headers);
    if (!no_body) {
        out += "Content-Length: ";
        append_number(out, r.body.size());
        out += "\r\n";
    }
    out += "\r\n";
    if (include_body) out += r.body;
}

std::string serialize(const Request& r) {
    std::string out;
    serialize_into(out, r);
    return out;
}

std::string serialize(const Response& r) {
    std::string out;
    serialize_into(out, r);
    return out;
}

}  // namespace uvgena::http
