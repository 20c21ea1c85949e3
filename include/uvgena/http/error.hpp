// Errors of the http layer.
//
// Two categories: `http_category()` for protocol failures (a malformed message, a limit
// exceeded, a bad URL) and `http_status_category()` for "the peer answered with an error
// status", whose value is the status code itself (so `code.value() == 412` reads naturally).
//
// Failures that other categories already name are reported in those, so that the generic
// checks keep working: timeouts as `uvgena::errc::timed_out` (`uvgena::is_timeout`),
// cancellation as `uvgena::errc::cancelled` (`uvgena::is_cancelled`), socket failures such as
// a refused connection or a reset as libuv codes (`uv_error(UV_ECONNREFUSED)`, comparable to
// `std::errc::connection_refused`).
#pragma once

#include <system_error>

#include "uvgena/core/export.hpp"

namespace uvgena::http {

/// HTTP protocol failures.
enum class errc {
    malformed_start_line = 1,  ///< Request line or status line is not valid HTTP/1.x.
    bad_header,                ///< A header field is malformed (bad token, NUL, obs-fold, CR).
    invalid_content_length,    ///< Content-Length unparsable, duplicated with another value,
                               ///< or combined with Transfer-Encoding.
    bad_transfer_encoding,     ///< Transfer-Encoding a request cannot be framed with.
    bad_chunk,                 ///< A chunk size line or chunk terminator is malformed.
    truncated_body,            ///< The connection ended before the body was complete.
    unexpected_eof,            ///< The connection ended in the middle of the headers.
    header_too_large,          ///< The start line and header fields exceed the limit (431).
    body_too_large,            ///< The body exceeds the limit (413).
    response_too_large,        ///< A client's response exceeds its maximum size.
    malformed_message,         ///< Any other framing error reported by the parser.
    upgrade_not_supported,     ///< CONNECT or a protocol upgrade, which uvgena does not speak.
    bad_url,                   ///< A URL could not be parsed or resolved.
    missing_host,              ///< A request to serialise has no Host header.
    invalid_field,             ///< A header name or value to serialise is not valid (CR/LF,
                               ///< NUL, empty or non-token name): refused, not injected.
    resolve_failed,            ///< The host name could not be resolved.
    connection_closed,         ///< The peer closed the connection before any response.
    no_free_port,              ///< No port of the requested range could be bound.
};

/// Category of `http::errc`.
UVGENA_API const std::error_category& http_category() noexcept;

/// Category of HTTP error statuses answered by a peer; the value is the status code.
UVGENA_API const std::error_category& http_status_category() noexcept;

/// Makes an error_code from an http condition.
UVGENA_API std::error_code make_error_code(errc e) noexcept;

/// Makes an error_code for an error status (e.g. 412) answered by a peer.
UVGENA_API std::error_code status_error(int status) noexcept;

/// True if `code` is a status error (http_status_category); `status` tells which.
inline bool is_status_error(std::error_code code) noexcept {
    return code.category() == http_status_category();
}

}  // namespace uvgena::http

template <>
struct std::is_error_code_enum<uvgena::http::errc> : std::true_type {};
