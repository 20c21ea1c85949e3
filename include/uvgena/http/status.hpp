// HTTP status codes: their reason phrases and which of them have no body. Its own header so
// that the error categories (http/error) and the messages (http/message) share it without
// including each other.
#pragma once

#include <string_view>

#include "uvgena/core/export.hpp"

namespace uvgena::http {

/// Standard reason phrase of `status` ("OK", "Precondition Failed"), or "Unknown".
UVGENA_API std::string_view reason_phrase(int status) noexcept;

/// True if a response with `status` never has a body (1xx, 204, 304).
constexpr bool status_has_no_body(int status) noexcept {
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

}  // namespace uvgena::http
