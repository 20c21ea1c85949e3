// Error model of uvgena.
//
// The public coroutine API throws `uvgena::Error` (a std::system_error); inner layers return
// `Result<T>` (result.hpp) carrying a std::error_code. Each layer has its own category:
// libuv status codes (uv_category), the library's own conditions (errc, here), HTTP
// (uvgena/http/error.hpp) and GENA (uvgena/gena/error.hpp).
#pragma once

#include <string>
#include <system_error>

#include "uvgena/core/export.hpp"

namespace uvgena {

/// The library's own error conditions, independent of any layer.
enum class errc {
    cancelled = 1,     ///< The operation was cancelled through a stop token or scope.
    timed_out,         ///< A deadline or `with_timeout` expired.
    closed,            ///< The object (channel, stream, listener) was closed.
    loop_drained,      ///< `run()` found the loop empty while the task was still suspended.
    invalid_argument,  ///< A caller passed a value the function cannot use.
    wrong_thread,      ///< A blocking call was made on the loop's own thread.
    queue_full,        ///< A bounded queue refused an item.
    not_running,       ///< The object was stopped or never started.
};

/// Category of `errc`.
UVGENA_API const std::error_category& uvgena_category() noexcept;

/// Category of libuv status codes; the value is libuv's negative `UV_E*` code.
UVGENA_API const std::error_category& uv_category() noexcept;

/// Makes an error_code from a uvgena condition.
UVGENA_API std::error_code make_error_code(errc e) noexcept;

/// Makes an error_code from a libuv status (negative `UV_E*`).
UVGENA_API std::error_code uv_error(int status) noexcept;

/// The exception type of the public API: a std::system_error whose `what()` names the
/// operation that failed (e.g. "connect to 10.0.0.2:1400: connection refused").
class UVGENA_API Error : public std::system_error {
  public:
    /// Creates an error for `code`, with `context` naming what was being done.
    Error(std::error_code code, const std::string& context) : std::system_error(code, context) {}
    /// Creates an error for `code` with no context.
    explicit Error(std::error_code code) : std::system_error(code) {}
};

/// The context part of a system_error's what(): what() without the ": <message>" that
/// std::system_error appends, and empty when what() is the message alone. For rethrowing an
/// error with more context without printing its message twice.
UVGENA_API std::string context_of(const std::system_error& e);

/// Throws `Error(code, context)`.
[[noreturn]] UVGENA_API void throw_error(std::error_code code, const std::string& context = {});

/// True if `code` means the operation was cancelled (uvgena's or libuv's UV_ECANCELED).
UVGENA_API bool is_cancelled(std::error_code code) noexcept;

/// True if `code` means a timeout (uvgena's or libuv's UV_ETIMEDOUT).
UVGENA_API bool is_timeout(std::error_code code) noexcept;

}  // namespace uvgena

template <>
struct std::is_error_code_enum<uvgena::errc> : std::true_type {};
