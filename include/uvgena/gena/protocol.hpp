// The header rules of GENA (UPnP Device Architecture 1.1, section 4): building and reading
// SUBSCRIBE / renewal / UNSUBSCRIBE / NOTIFY messages, for both sides. Sans-IO: values in,
// http::Request / http::Response or decisions out; the caller does the I/O.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"
#include "uvgena/gena/error.hpp"
#include "uvgena/http/message.hpp"
#include "uvgena/http/url.hpp"

namespace uvgena::gena {

// ---------------------------------------------------------------------------------------
// TIMEOUT and SEQ headers

/// A subscription duration as carried by TIMEOUT: a number of seconds or infinite.
struct UVGENA_API Timeout {
    bool infinite = false;            ///< "Second-infinite" (UDA 1.0) or bare "infinite".
    std::chrono::seconds seconds{0};  ///< The duration when not infinite.

    /// Equal if both infinite or both the same number of seconds.
    friend bool operator==(const Timeout&, const Timeout&) = default;
};

/// Reads a TIMEOUT value, case-insensitive, surrounding whitespace ignored:
/// "Second-1800" -> 1800 s; "Second-infinite" and bare "infinite" -> infinite; leniently,
/// "Second-540.0" -> 540 s (fraction dropped) and "Second-0:30:00" -> 1800 s (H:MM:SS), two
/// forms shipped by real peers. Values above 2^31-1 are capped there. Anything else,
/// including "Second-0", "Second--5" and "Second-", fails with errc::bad_timeout.
UVGENA_API Result<Timeout> parse_timeout(std::string_view value);

/// "Second-<n>": the only form uvgena ever sends.
UVGENA_API std::string format_timeout(std::chrono::seconds seconds);

/// Reads a SEQ value: an unsigned 32-bit decimal integer, leading zeros ignored, surrounding
/// whitespace ignored. Missing digits, any other character, or a value above 4294967295 fail
/// with errc::bad_seq.
UVGENA_API Result<std::uint32_t> parse_seq(std::string_view value);

/// The USER-AGENT / SERVER value per UDA: "OS/version UPnP/1.1 product/version", e.g.
/// "Linux/6.1.0 UPnP/1.1 uvgena/0.1.0" (OS from uname, computed once).
UVGENA_API const std::string& default_user_agent();

// ---------------------------------------------------------------------------------------
// Subscriber side: requests to the device and reading its answers

/// What to put in an initial SUBSCRIBE.
struct UVGENA_API SubscribeParams {
    /// Delivery URLs, tried by the device in order (CALLBACK: <url1><url2>). At least one;
    /// each must be an http:// URL (checked, see make_subscribe).
    std::vector<std::string> callbacks;
    /// Requested duration (TIMEOUT: Second-N); nullopt sends no TIMEOUT header.
    std::optional<std::chrono::seconds> timeout = std::chrono::seconds(1800);
    /// USER-AGENT; empty uses default_user_agent().
    std::string user_agent;
};

/// Builds an initial SUBSCRIBE to `event_url` (HOST, USER-AGENT, CALLBACK, NT: upnp:event,
/// TIMEOUT). Throws uvgena::Error(errc::bad_callback) if there is no callback or one is not
/// an http:// URL or contains '<' / '>', and (uvgena::errc::invalid_argument) for a
/// non-positive timeout.
UVGENA_API http::Request make_subscribe(const http::Url& event_url, const SubscribeParams& params);

/// Builds a renewal: SUBSCRIBE with SID and TIMEOUT, no CALLBACK and no NT (UDA 4.1.3).
UVGENA_API http::Request make_renewal(const http::Url& event_url, std::string_view sid,
                                      std::optional<std::chrono::seconds> timeout,
                                      std::string_view user_agent = {});

/// Builds an UNSUBSCRIBE with SID (UDA 4.1.4).
UVGENA_API http::Request make_unsubscribe(const http::Url& event_url, std::string_view sid,
                                          std::string_view user_agent = {});

/// Where the granted duration of a subscription came from.
enum class TimeoutSource {
    granted,    ///< A readable TIMEOUT header (seconds or infinite).
    missing,    ///< No TIMEOUT header: the requested value is assumed (else 1800 s).
    malformed,  ///< An unreadable TIMEOUT header: handled like a missing one.
};

/// A successful answer to SUBSCRIBE or to a renewal.
struct UVGENA_API SubscribeAnswer {
    /// The subscription id (SID header, whitespace trimmed). A renewal may return a
    /// different SID than the one sent: this is the one to use from now on.
    std::string sid;
    /// The duration that counts: the granted one (even if it differs from the request), or
    /// the assumed one when the header is missing or malformed (see `source`).
    Timeout timeout;
    /// How `timeout` was obtained.
    TimeoutSource source = TimeoutSource::granted;
};

/// The default duration assumed when a device grants none: UDA's recommended 1800 s.
inline constexpr std::chrono::seconds default_subscription_timeout{1800};

/// Maps an HTTP status of a GENA answer to an error: 200 -> success (empty code),
/// 400 -> bad_request, 412 -> precondition_failed (subscription unknown or expired),
/// 5xx -> server_error, anything else -> unexpected_status.
UVGENA_API std::error_code status_error(int status) noexcept;

/// Reads the answer to a SUBSCRIBE or renewal. Non-200 statuses give status_error();
/// a 200 without a non-empty SID fails with errc::missing_sid. `requested` is the duration
/// that was asked for, assumed when the device grants none (else 1800 s).
UVGENA_API Result<SubscribeAnswer> read_subscribe_response(
    const http::Response& response, std::optional<std::chrono::seconds> requested);

/// Reads the answer to an UNSUBSCRIBE: success on 200, else status_error().
UVGENA_API Result<void> read_unsubscribe_response(const http::Response& response);

// ---------------------------------------------------------------------------------------
// Listener side: checking a received NOTIFY

/// The listener's decision on one NOTIFY, to be turned into a response with
/// make_notify_response.
struct UVGENA_API NotifyDecision {
    int status = 200;        ///< 200 accept, 400 bad request, 412 precondition failed,
                             ///< 405 not a NOTIFY.
    std::error_code reason;  ///< Empty when accepted, else the GENA error saying why.
    std::string sid;         ///< The SID (trimmed) when present.
    std::uint32_t seq = 0;   ///< The SEQ when accepted.

    /// True for status 200.
    bool accepted() const noexcept { return status == 200; }
};

/// Tells whether a SID belongs to a live subscription (the registry lookup, injected).
using SidPredicate = std::function<bool(std::string_view sid)>;

/// Checks a NOTIFY per UDA 4.3.2, in this order: method NOTIFY (else 405); none of NT, NTS,
/// SID, SEQ repeated (else 400 repeated_header); NT and NTS
/// present (else 400 missing_nt / missing_nts); NT "upnp:event" and NTS "upnp:propchange",
/// case-insensitive (else 412 bad_nt / bad_nts); SID present and `sid_known(sid)` (else 412
/// unknown_sid); SEQ a valid 32-bit unsigned (else 400 bad_seq). The body is not looked at.
UVGENA_API NotifyDecision check_notify(const http::Request& request, const SidPredicate& sid_known);

/// The response for a decision: status, empty body, "Connection: close" unless accepted.
UVGENA_API http::Response make_notify_response(const NotifyDecision& decision);

// ---------------------------------------------------------------------------------------
// Device side (publisher): checking SUBSCRIBE / renewal / UNSUBSCRIBE, building NOTIFY

/// Bounds the publisher applies to subscription requests.
struct UVGENA_API SubscriptionPolicy {
    std::chrono::seconds default_timeout{1800};  ///< Granted when none is asked for.
    std::chrono::seconds min_timeout{60};        ///< Shorter requests are raised to this.
    std::chrono::seconds max_timeout{86400};     ///< Longer (and infinite) are cut to this.
    std::size_t max_callbacks = 8;               ///< CALLBACK URLs kept (the rest ignored).
    std::size_t max_callback_length = 512;       ///< Longer URLs are rejected.
    std::size_t max_callback_header = 4096;      ///< A longer CALLBACK header is rejected.
};

/// Reads a CALLBACK header "<url1><url2>...": each URL inside angle brackets, http:// only
/// (case-insensitive scheme, host required), at most `max_count` kept, each at most
/// `max_length` bytes. URLs that are not http:// (or do not parse) are skipped; the header
/// fails with errc::bad_callback if it is longer than `max_header`, has an unterminated
/// '<', text other than whitespace between entries, or yields no usable URL.
UVGENA_API Result<std::vector<http::Url>> parse_callback(std::string_view header,
                                                         std::size_t max_count = 8,
                                                         std::size_t max_length = 512,
                                                         std::size_t max_header = 4096);

/// What a subscription request asks for.
enum class SubscriptionAction {
    subscribe,    ///< SUBSCRIBE with CALLBACK and NT: a new subscription.
    renew,        ///< SUBSCRIBE with SID: a renewal.
    unsubscribe,  ///< UNSUBSCRIBE with SID.
};

/// The publisher's decision on a SUBSCRIBE / renewal / UNSUBSCRIBE.
struct UVGENA_API SubscriptionDecision {
    int status = 200;        ///< 200, 400, 412, or 405 (another method).
    std::error_code reason;  ///< Empty when accepted, else why not.
    SubscriptionAction action = SubscriptionAction::subscribe;
    std::string sid;                   ///< The SID (renew / unsubscribe), trimmed.
    std::vector<http::Url> callbacks;  ///< Delivery URLs (subscribe).
    std::chrono::seconds timeout{0};   ///< Granted duration (subscribe / renew), clamped.

    /// True for status 200.
    bool accepted() const noexcept { return status == 200; }
};

/// Checks a subscription request per UDA 4.1: SUBSCRIBE with SID and also NT or CALLBACK ->
/// 400 (sid_with_nt_or_callback); SUBSCRIBE with SID unknown to `sid_known` -> 412
/// (unknown_sid); SUBSCRIBE without SID: NT not "upnp:event" -> 412 (bad_nt), CALLBACK
/// missing or invalid -> 412 (bad_callback); UNSUBSCRIBE with NT or CALLBACK -> 400,
/// without a known SID -> 412. The TIMEOUT asked for is clamped to the policy range, the
/// default used when it is missing or unreadable, the maximum for "infinite".
UVGENA_API SubscriptionDecision check_subscription_request(const http::Request& request,
                                                           const SubscriptionPolicy& policy,
                                                           const SidPredicate& sid_known);

/// A new subscription id: "uuid:" + a random (version 4) UUID whose 122 random bits come
/// from the OS CSPRNG (getrandom(2)): a SID is the only credential for renewing and
/// cancelling a subscription, so it must not be predictable. Also used for generated UDNs.
UVGENA_API std::string make_sid();

/// The UUID text ("xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx", lower case) of 16 random
/// bytes, with the version (4) and variant (10) bits set. Pure formatting, no randomness.
UVGENA_API std::string format_uuid_v4(std::span<const std::byte, 16> random);

/// The 200 answer to SUBSCRIBE / renewal: SID, TIMEOUT: Second-N, SERVER, empty body.
UVGENA_API http::Response make_subscribe_response(std::string_view sid,
                                                  std::chrono::seconds timeout,
                                                  std::string_view server = {});

/// An error answer (400 / 412 / 405 / 5xx) with empty body and "Connection: close".
UVGENA_API http::Response make_error_response(int status);

/// Builds an event NOTIFY to `callback`: HOST, CONTENT-TYPE text/xml; charset="utf-8",
/// NT: upnp:event, NTS: upnp:propchange, SID, SEQ, and `body` (a property set).
UVGENA_API http::Request make_notify(const http::Url& callback, std::string_view sid,
                                     std::uint32_t seq, std::string body);

}  // namespace uvgena::gena
