// Control points: fetching service descriptions and calling actions over the http client.
//
//   control::Arguments in{{"InstanceID", "0"}, {"Channel", "Master"}};
//   auto out = co_await control::call_action(loop, control_url, service_type, "GetVolume", in);
//   // out == {{"CurrentVolume", "33"}}
//
// (A named argument list: g++ 12 cannot compile a braced list inside a co_await expression,
// "array used as initializer"; clang and later GCCs can. Likewise pass ActionOptions, which
// owns a stop_token, as a named variable, never as a braced temporary inside co_await: g++
// 12 copies such aggregates byte for byte and destroys both copies, README.)
//
// With an SCPD (given, or fetched through the overload taking a ssdp::ServiceInfo), the
// call is checked before anything is sent: an unknown action or argument, an out argument
// given, a missing one, a value not of its type, out of its range or not in its list is an
// Error with a control::errc (comparable to the UPnP error the device would answer, see
// error.hpp), and the arguments are sent in the SCPD's order.
//
// Errors (thrown as uvgena::Error, so std::system_error): a device's SOAP fault is an
// ActionError (code() in upnp_category(), the errorCode; error_description()); another
// non-200 status is http::status_error(status); a malformed answer a control::errc or a gena
// XML error; and the http client's errors (refused, timeouts as uvgena::errc::timed_out,
// http::errc::response_too_large beyond max_response_bytes, ...). what() names the action
// and the control URL.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "uvgena/co/task.hpp"
#include "uvgena/control/scpd.hpp"
#include "uvgena/control/soap.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/net/address.hpp"
#include "uvgena/ssdp/description.hpp"

namespace uvgena::control {

/// Options of fetch_scpd.
struct UVGENA_API ScpdFetchOptions {
    /// Time for the whole request.
    std::chrono::milliseconds timeout{5000};
    /// Bounds on the document (max_bytes bounds the HTTP response too).
    ScpdLimits limits{};
    /// Leave from this local address (to choose the interface).
    std::optional<SocketAddress> local_address{};
    /// Use (and fill) the process-wide cache; false fetches anew and replaces the entry.
    bool use_cache = true;
};

/// GETs the service description at `url` (an absolute SCPDURL) and parses it. Throws Error
/// naming the URL: the http layer's errors, an http status error for a non-2xx answer, or
/// those of parse_scpd.
///
/// Cached per URL for the process: the first success is kept and shared (immutable, so any
/// thread may read it) by every later call on any loop or thread, since a service's
/// description is fixed for a device's configuration and the blocking facade runs loops on
/// threads of their own. The cache holds at most 256 descriptions (the oldest go first) and
/// is guarded by a mutex never held across I/O: two concurrent first calls for one URL both
/// fetch, and the later result replaces the earlier. Call forget_scpd after a device
/// announced a new configuration (SSDP CONFIGID), or pass use_cache = false. A cached
/// description is returned whatever `options` say (it passed the bounds of its first fetch).
UVGENA_API Task<std::shared_ptr<const Scpd>> fetch_scpd(uv_loop_t* loop, std::string url,
                                                        ScpdFetchOptions options = {});

/// Drops the cached description of `url` (all of them when `url` is empty).
UVGENA_API void forget_scpd(std::string_view url = {});

/// Options of call_action.
struct UVGENA_API ActionOptions {
    /// Time for the whole exchange, from resolution to the last byte of the answer.
    std::chrono::milliseconds timeout{30'000};
    /// Time to establish the TCP connection.
    std::chrono::milliseconds connect_timeout{5'000};
    /// Maximum size of the answer's body (its header section has the http client's bound).
    std::size_t max_response_bytes = 1024 * 1024;
    /// Bounds on the answer's SOAP (max_bytes is raised to max_response_bytes if smaller).
    SoapLimits limits{};
    /// Leave from this local address (to choose the interface).
    std::optional<SocketAddress> local_address{};
    /// An extra cancellation token (the awaiting task's own is always observed).
    std::stop_token stop{};
    /// For the overload taking a ServiceInfo: how its SCPD is fetched.
    ScpdFetchOptions scpd{};
};

/// Calls `action` of the service `service_type` at `control_url` (absolute) with the in
/// arguments `in`, sent in the given order; returns the out arguments in the device's
/// order. Nothing is checked against a description. Throws as the top of this header says.
UVGENA_API Task<Arguments> call_action(uv_loop_t* loop, std::string control_url,
                                       std::string service_type, std::string action, Arguments in,
                                       ActionOptions options = {});

/// Same, checked against `scpd` first (check_arguments): a call that does not match it
/// throws Error(control::errc, naming the argument) without connecting.
UVGENA_API Task<Arguments> call_action(uv_loop_t* loop, std::string control_url,
                                       std::string service_type, std::string action, Arguments in,
                                       std::shared_ptr<const Scpd> scpd,
                                       ActionOptions options = {});

/// Same on a service of a device description: fetches its SCPD (fetch_scpd, cached), checks
/// the call against it, then sends it to its control URL.
UVGENA_API Task<Arguments> call_action(uv_loop_t* loop, ssdp::ServiceInfo service,
                                       std::string action, Arguments in,
                                       ActionOptions options = {});

}  // namespace uvgena::control
