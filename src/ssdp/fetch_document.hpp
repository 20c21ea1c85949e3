// GET of an XML document a device serves (its description, a service's SCPD), shared by
// ssdp::fetch_description and control::fetch_scpd so that both bound and report it alike.
// Defined in discovery.cpp, next to fetch_description.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "uvgena/co/task.hpp"
#include "uvgena/net/address.hpp"

namespace uvgena::ssdp::detail {

/// GETs `url` within `timeout` (connecting within at most 5 s of it) and `max_bytes` of
/// body, leaving from `local_address` when given, and returns the body of a 2xx answer.
/// Throws Error whose context is "`what` `url`": the http layer's errors (refused, timeout,
/// http::errc::response_too_large, ...) and http::status_error for any other status.
Task<std::string> fetch_document(uv_loop_t* loop, std::string url, std::string what,
                                 std::chrono::milliseconds timeout, std::size_t max_bytes,
                                 std::optional<SocketAddress> local_address);

}  // namespace uvgena::ssdp::detail
