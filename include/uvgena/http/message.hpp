// HTTP/1.x messages as plain values: Headers, Request, Response, and their serialisation.
//
// Everything here is sans-IO: no libuv, no sockets. The parser (parser.hpp) produces these
// values from bytes; `serialize` turns them back into bytes with framing that is always
// correct (Content-Length is computed, never trusted from the caller).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "uvgena/core/export.hpp"
#include "uvgena/core/strings.hpp"
#include "uvgena/http/status.hpp"

namespace uvgena::http {

/// One header field as received or as to be sent.
struct UVGENA_API Field {
    std::string name;   ///< Field name in its original spelling.
    std::string value;  ///< Field value without surrounding whitespace.
};

/// True if `a` and `b` are equal ignoring ASCII case (header names, tokens): the one of
/// core/strings.hpp, named here too for the code that has always called http::iequals.
using uvgena::iequals;

/// True if the comma-separated list `list` contains `token`, ignoring ASCII case and
/// surrounding whitespace (e.g. `Connection: keep-alive, Upgrade` contains "upgrade").
UVGENA_API bool has_token(std::string_view list, std::string_view token) noexcept;

/// Header fields in received order and spelling; lookup is case-insensitive; repeats kept.
class UVGENA_API Headers {
  public:
    using const_iterator = std::vector<Field>::const_iterator;

    /// Appends a field (a repeat of an existing name is kept as a separate field).
    void add(std::string name, std::string value);
    /// Replaces every field named `name` by one field with `value` (appends if none).
    void set(std::string_view name, std::string value);
    /// Value of the first field named `name`, if any.
    std::optional<std::string_view> get(std::string_view name) const;
    /// Values of every field named `name`, in order.
    std::vector<std::string_view> get_all(std::string_view name) const;
    /// True if some field is named `name`.
    bool contains(std::string_view name) const;
    /// Number of fields named `name`.
    std::size_t count(std::string_view name) const;
    /// Removes every field named `name`.
    void remove(std::string_view name);
    /// Number of fields.
    std::size_t size() const noexcept { return fields_.size(); }
    /// True if there are no fields.
    bool empty() const noexcept { return fields_.empty(); }
    /// Removes every field (keeps the storage for reuse).
    void clear() noexcept { fields_.clear(); }
    /// Reserves room for `n` fields.
    void reserve(std::size_t n) { fields_.reserve(n); }
    /// First field, in order.
    const_iterator begin() const noexcept { return fields_.begin(); }
    /// Past the last field.
    const_iterator end() const noexcept { return fields_.end(); }

    /// Equal if the same fields are in the same order (names compared ignoring case).
    friend bool operator==(const Headers& a, const Headers& b) noexcept;

  private:
    std::vector<Field> fields_;
};

/// An HTTP request (any method token: GET, SUBSCRIBE, UNSUBSCRIBE, NOTIFY, ...).
// (A member added here must also be swapped in ParserCore::take_request_into.)
struct UVGENA_API Request {
    std::string method;
    std::string target;  ///< request-target as sent, e.g. "/event/3" or "*"
    int version_major = 1, version_minor = 1;
    Headers headers;
    std::string body;
    /// Trailer fields of a chunked body (empty otherwise). Not serialised.
    Headers trailers;

    /// HTTP/1.1: keep-alive unless "Connection: close"; HTTP/1.0: only with
    /// "Connection: keep-alive".
    bool keep_alive() const;
};

/// An HTTP response.
struct UVGENA_API Response {
    int status = 200;
    std::string reason;  ///< empty: the standard phrase for status is used when serialised
    int version_major = 1, version_minor = 1;
    Headers headers;
    std::string body;
    /// Trailer fields of a chunked body (empty otherwise). Not serialised.
    Headers trailers;
    /// Set by a handler that must act only once its answer is on the wire (GENA's initial
    /// event must follow the SUBSCRIBE response): http::Server calls it after the response
    /// was handed to the kernel (empty code), or with the error that kept it from being
    /// written. Not serialised; it must not throw.
    std::function<void(std::error_code)> on_written;

    /// Same rules as Request::keep_alive().
    bool keep_alive() const;
};

/// Serialises a request: the caller's Content-Length and Transfer-Encoding fields are
/// replaced by `Content-Length: body.size()`. Throws `uvgena::Error` with
/// `errc::missing_host` if there is no Host field, `errc::invalid_field` if a name is not a
/// token or a value contains CR, LF or NUL, or if method or target are malformed.
UVGENA_API std::string serialize(const Request& r);

/// Serialises a response with a correct Content-Length (none for 1xx/204/304, whose body
/// must be empty). Throws `uvgena::Error` with `errc::invalid_field` on a bad field.
UVGENA_API std::string serialize(const Response& r);

/// Appends the serialised request to `out` (reuses `out`'s storage). Same rules and
/// errors as `serialize(const Request&)`.
UVGENA_API void serialize_into(std::string& out, const Request& r);

/// Appends the serialised response to `out` (reuses `out`'s storage). With
/// `include_body == false` the body is left out but Content-Length still announces it (the
/// answer to a HEAD request). Same errors as `serialize(const Response&)`.
UVGENA_API void serialize_into(std::string& out, const Response& r, bool include_body = true);

}  // namespace uvgena::http
