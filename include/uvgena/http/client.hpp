// http client: one request per connection (resolve, connect, send, read the whole response,
// close), as GENA's SUBSCRIBE/UNSUBSCRIBE and a publisher's NOTIFY need.
//
// Errors (thrown as `uvgena::Error` by `request`, returned by `try_request`):
//  - errc::bad_url (http category) for a URL that does not parse or is not http;
//  - errc::resolve_failed (http) when the host name does not resolve;
//  - libuv codes for socket failures: UV_ECONNREFUSED (== std::errc::connection_refused),
//    UV_ECONNRESET, UV_ENETUNREACH, ... and UV_EADDRNOTAVAIL for a bad local address;
//  - uvgena::errc::timed_out for either time limit (`uvgena::is_timeout`), the context says
//    which; uvgena::errc::cancelled when the stop token fired (`uvgena::is_cancelled`);
//  - http errc::malformed_start_line, bad_header, ..., truncated_body, connection_closed
//    for a malformed or cut response; errc::response_too_large beyond max_response_bytes.
// Error statuses (4xx, 5xx) are not errors here: the Response is returned; use
// `status_error(response.status)` to make one.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"
#include "uvgena/http/message.hpp"
#include "uvgena/http/url.hpp"
#include "uvgena/net/address.hpp"

namespace uvgena::http {

/// Options of one client request.
struct UVGENA_API ClientOptions {
    /// Time to establish the TCP connection (all resolved addresses together).
    std::chrono::milliseconds connect_timeout{5'000};
    /// Time for the whole exchange, from resolution to the last byte of the response.
    std::chrono::milliseconds timeout{30'000};
    /// Maximum size of the response's header section.
    std::size_t max_header_bytes = 64 * 1024;
    /// Maximum size of the response body.
    std::size_t max_response_bytes = 1024 * 1024;
    /// Bind the connection to this local address first (port 0: any), to choose the
    /// interface the request leaves from.
    std::optional<SocketAddress> local_address;
    /// An extra cancellation token (the awaiting task's own token is always observed).
    std::stop_token stop;
    /// Called once the TCP connection is established (before the request is written), so
    /// that a caller can bound connects pending apart from exchanges in flight (the
    /// publisher's per-host limits).
    std::function<void()> on_connected;
};

/// Sends `method url` with `headers` and `body` and returns the whole response. Adds `Host`
/// (from the URL) unless present, `Connection: close` unless a Connection field is present,
/// and a correct Content-Length. A response to HEAD has no body. Throws `uvgena::Error`
/// (see the top of this header).
UVGENA_API Task<Response> request(uv_loop_t* loop, std::string method, Url url,
                                  Headers headers = {}, std::string body = {},
                                  ClientOptions options = {});

/// Same, parsing `url` first.
UVGENA_API Task<Response> request(uv_loop_t* loop, std::string method, std::string_view url,
                                  Headers headers = {}, std::string body = {},
                                  ClientOptions options = {});

/// Same as `request` but reports failure as a Result instead of throwing (for senders of
/// many requests, such as a publisher's NOTIFYs).
UVGENA_API Task<Result<Response>> try_request(uv_loop_t* loop, std::string method, Url url,
                                              Headers headers = {}, std::string body = {},
                                              ClientOptions options = {});

/// Sends a prepared request (its Host field is required) to `address`, skipping URL parsing
/// and name resolution. Adds `Connection: close` unless a Connection field is present.
/// Failures as in `request`, returned instead of thrown.
UVGENA_API Task<Result<Response>> try_send(uv_loop_t* loop, SocketAddress address, Request request,
                                           ClientOptions options = {});

/// The address (host and port) of `url` when its host is an IP literal, zone included;
/// empty for a name. No lookup: for URLs that must name an address (a GENA CALLBACK).
UVGENA_API std::optional<SocketAddress> literal_address(const Url& url);

/// The addresses of `url`'s host and port: the IP literal at once, else a name lookup, in the
/// resolver's order. Throws Error: errc::bad_url for an IPv6 literal that does not parse,
/// errc::resolve_failed when the lookup fails or finds nothing, errc::cancelled when stopped.
UVGENA_API Task<std::vector<SocketAddress>> resolve_url(uv_loop_t* loop, const Url& url);

}  // namespace uvgena::http
