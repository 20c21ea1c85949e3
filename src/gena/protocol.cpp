// GENA header rules (see protocol.hpp).
#include "uvgena/gena/protocol.hpp"

#include "uvgena/core/version.hpp"

#include <array>
#include <charconv>
#include <cstddef>
#include <limits>

#include "uvgena/core/random.hpp"
#include "uvgena/core/strings.hpp"

namespace uvgena::gena {
namespace {

using namespace std::chrono_literals;

bool all_digits(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
    }
    return true;
}

/// Decimal digits to a value capped at `cap` (no overflow whatever the length).
std::uint64_t digits_capped(std::string_view s, std::uint64_t cap) noexcept {
    std::uint64_t v = 0;
    for (char c : s) {
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
        if (v > cap) return cap;
    }
    return v;
}

constexpr std::uint64_t max_timeout_seconds = std::numeric_limits<std::int32_t>::max();

void set_common(http::Request& r, const http::Url& url, std::string_view method,
                std::string_view user_agent) {
    r.method = std::string(method);
    r.target = url.target();
    r.headers.reserve(6);
    r.headers.add("HOST", url.host_header());
    r.headers.add("USER-AGENT",
                  user_agent.empty() ? default_user_agent() : std::string(user_agent));
}

// Out of line and reached only for an engaged timeout: inlined into one `timeout &&
// timeout->count() <= 0` test, GCC -O2 compares the payload before the engaged flag, which is
// legal but is a jump on an uninitialised value for valgrind.
[[gnu::noinline]] void check_positive(std::chrono::seconds timeout) {
    if (timeout.count() <= 0) {
        throw_error(uvgena::errc::invalid_argument, "subscription timeout must be positive");
    }
}

void check_timeout(const std::optional<std::chrono::seconds>& timeout) {
    if (timeout) check_positive(*timeout);
}

}  // namespace

// --- TIMEOUT / SEQ ----------------------------------------------------------------------

Result<Timeout> parse_timeout(std::string_view value) {
    value = trim(value);
    if (http::iequals(value, "infinite")) return Timeout{true, 0s};
    if (!istarts_with(value, "Second-")) return fail(errc::bad_timeout);
    std::string_view rest = trim(value.substr(7));
    if (http::iequals(rest, "infinite")) return Timeout{true, 0s};
    std::uint64_t seconds = 0;
    auto colon = rest.find(':');
    if (colon != std::string_view::npos) {
        // "Second-0:30:00" (H:MM:SS), shipped by some peers.
        auto colon2 = rest.find(':', colon + 1);
        if (colon2 == std::string_view::npos) return fail(errc::bad_timeout);
        auto h = rest.substr(0, colon), m = rest.substr(colon + 1, colon2 - colon - 1),
             s = rest.substr(colon2 + 1);
        if (!all_digits(h) || !all_digits(m) || !all_digits(s) || m.size() > 2 || s.size() > 2) {
            return fail(errc::bad_timeout);
        }
        seconds = digits_capped(h, max_timeout_seconds) * 3600 + digits_capped(m, 99) * 60 +
                  digits_capped(s, 99);
    } else {
        // "Second-540.0": a fraction is dropped.
        auto dot = rest.find('.');
        std::string_view whole = rest.substr(0, dot);
        if (!all_digits(whole)) return fail(errc::bad_timeout);
        if (dot != std::string_view::npos && !all_digits(rest.substr(dot + 1))) {
            return fail(errc::bad_timeout);
        }
        seconds = digits_capped(whole, max_timeout_seconds);
    }
    if (seconds == 0) return fail(errc::bad_timeout);
    if (seconds > max_timeout_seconds) seconds = max_timeout_seconds;
    return Timeout{false, std::chrono::seconds(static_cast<std::int64_t>(seconds))};
}

std::string format_timeout(std::chrono::seconds seconds) {
    return "Second-" + std::to_string(seconds.count());
}

Result<std::uint32_t> parse_seq(std::string_view value) {
    value = trim(value);
    if (!all_digits(value)) return fail(errc::bad_seq);
    while (value.size() > 1 && value.front() == '0') value.remove_prefix(1);
    if (value.size() > 10) return fail(errc::bad_seq);
    std::uint64_t v = digits_capped(value, std::uint64_t{1} << 33);
    if (v > 0xFFFFFFFFu) return fail(errc::bad_seq);
    return static_cast<std::uint32_t>(v);
}

const std::string& default_user_agent() {
    return product_token();
}

// --- subscriber side ---------------------------------------------------------------------

http::Request make_subscribe(const http::Url& event_url, const SubscribeParams& params) {
    if (params.callbacks.empty()) throw_error(errc::bad_callback, "SUBSCRIBE needs a callback");
    check_timeout(params.timeout);
    std::string callback;
    for (const auto& url : params.callbacks) {
        if (!istarts_with(url, "http://") || url.find_first_of("<> \t\r\n") != std::string::npos ||
            !http::Url::try_parse(url)) {
            throw_error(errc::bad_callback, "callback URL not usable: " + url);
        }
        callback += '<';
        callback += url;
        callback += '>';
    }
    http::Request r;
    set_common(r, event_url, "SUBSCRIBE", params.user_agent);
    r.headers.add("CALLBACK", std::move(callback));
    r.headers.add("NT", "upnp:event");
    if (params.timeout) r.headers.add("TIMEOUT", format_timeout(*params.timeout));
    return r;
}

http::Request make_renewal(const http::Url& event_url, std::string_view sid,
                           std::optional<std::chrono::seconds> timeout,
                           std::string_view user_agent) {
    check_timeout(timeout);
    http::Request r;
    set_common(r, event_url, "SUBSCRIBE", user_agent);
    r.headers.add("SID", std::string(sid));
    if (timeout) r.headers.add("TIMEOUT", format_timeout(*timeout));
    return r;
}

http::Request make_unsubscribe(const http::Url& event_url, std::string_view sid,
                               std::string_view user_agent) {
    http::Request r;
    set_common(r, event_url, "UNSUBSCRIBE", user_agent);
    r.headers.add("SID", std::string(sid));
    return r;
}

std::error_code status_error(int status) noexcept {
    if (status == 200) return {};
    if (status == 400) return errc::bad_request;
    if (status == 412) return errc::precondition_failed;
    if (status >= 500 && status <= 599) return errc::server_error;
    return errc::unexpected_status;
}

Result<SubscribeAnswer> read_subscribe_response(const http::Response& response,
                                                std::optional<std::chrono::seconds> requested) {
    if (auto ec = status_error(response.status)) return fail(ec);
    SubscribeAnswer answer;
    auto sid = response.headers.get("SID");
    if (!sid || trim(*sid).empty()) return fail(errc::missing_sid);
    answer.sid = std::string(trim(*sid));
    Timeout assumed{false, requested.value_or(default_subscription_timeout)};
    if (auto t = response.headers.get("TIMEOUT")) {
        if (auto parsed = parse_timeout(*t)) {
            answer.timeout = *parsed;
            answer.source = TimeoutSource::granted;
        } else {
            answer.timeout = assumed;
            answer.source = TimeoutSource::malformed;
        }
    } else {
        answer.timeout = assumed;
        answer.source = TimeoutSource::missing;
    }
    return answer;
}

Result<void> read_unsubscribe_response(const http::Response& response) {
    if (auto ec = status_error(response.status)) return fail(ec);
    return {};
}

// --- listener side -----------------------------------------------------------------------

NotifyDecision check_notify(const http::Request& request, const SidPredicate& sid_known) {
    NotifyDecision d;
    auto reject = [&d](int status, errc why) {
        d.status = status;
        d.reason = why;
        return d;
    };
    if (request.method != "NOTIFY") return reject(405, errc::bad_method);
    // One pass over the fields. A repeated field is ambiguous (a proxy or a parser may pick
    // another copy than we do): refused rather than guessed, as the HTTP layer does for
    // Content-Length.
    std::optional<std::string_view> nt, nts, sid, seq_header;
    for (const auto& field : request.headers) {
        std::optional<std::string_view>* slot = nullptr;
        const std::string_view name = field.name;
        if (name.size() == 2) {
            if (http::iequals(name, "NT")) slot = &nt;
        } else if (name.size() == 3) {
            if (http::iequals(name, "NTS")) {
                slot = &nts;
            } else if (http::iequals(name, "SID")) {
                slot = &sid;
            } else if (http::iequals(name, "SEQ")) {
                slot = &seq_header;
            }
        }
        if (slot == nullptr) continue;
        if (*slot) return reject(400, errc::repeated_header);
        *slot = std::string_view(field.value);
    }
    if (!nt) return reject(400, errc::missing_nt);
    if (!nts) return reject(400, errc::missing_nts);
    if (!http::iequals(trim(*nt), "upnp:event")) return reject(412, errc::bad_nt);
    if (!http::iequals(trim(*nts), "upnp:propchange")) return reject(412, errc::bad_nts);
    if (sid) d.sid = std::string(trim(*sid));
    if (d.sid.empty() || !sid_known || !sid_known(d.sid)) return reject(412, errc::unknown_sid);
    if (!seq_header) return reject(400, errc::bad_seq);
    auto seq = parse_seq(*seq_header);
    if (!seq) return reject(400, errc::bad_seq);
    d.seq = *seq;
    return d;
}

http::Response make_notify_response(const NotifyDecision& decision) {
    if (decision.accepted()) {
        http::Response r;
        r.status = 200;
        return r;
    }
    return make_error_response(decision.status);
}

// --- device side -------------------------------------------------------------------------

Result<std::vector<http::Url>> parse_callback(std::string_view header, std::size_t max_count,
                                              std::size_t max_length, std::size_t max_header) {
    if (header.size() > max_header) return fail(errc::bad_callback);
    std::vector<http::Url> urls;
    std::size_t i = 0;
    while (i < header.size()) {
        char c = header[i];
        if (c == ' ' || c == '\t') {
            ++i;
            continue;
        }
        if (c != '<') return fail(errc::bad_callback);
        auto close = header.find('>', i + 1);
        if (close == std::string_view::npos) return fail(errc::bad_callback);
        std::string_view url = trim(header.substr(i + 1, close - i - 1));
        i = close + 1;
        if (urls.size() >= max_count) continue;  // bounded: extra URLs are ignored
        if (url.size() > max_length || !istarts_with(url, "http://") ||
            url.find('<') != std::string_view::npos) {
            continue;
        }
        auto parsed = http::Url::try_parse(url);
        if (!parsed || parsed->scheme != "http" || parsed->host.empty()) continue;
        urls.push_back(std::move(parsed).value());
    }
    if (urls.empty()) return fail(errc::bad_callback);
    return urls;
}

namespace {

std::chrono::seconds clamp_timeout(const http::Headers& headers, const SubscriptionPolicy& policy) {
    std::chrono::seconds asked = policy.default_timeout;
    if (auto t = headers.get("TIMEOUT")) {
        if (auto parsed = parse_timeout(*t)) {
            asked = parsed->infinite ? policy.max_timeout : parsed->seconds;
        }
    }
    if (asked < policy.min_timeout) asked = policy.min_timeout;
    if (asked > policy.max_timeout) asked = policy.max_timeout;
    return asked;
}

}  // namespace

SubscriptionDecision check_subscription_request(const http::Request& request,
                                                const SubscriptionPolicy& policy,
                                                const SidPredicate& sid_known) {
    SubscriptionDecision d;
    auto reject = [&d](int status, errc why) {
        d.status = status;
        d.reason = why;
        d.callbacks.clear();
        d.timeout = std::chrono::seconds(0);
        return d;
    };
    const bool is_subscribe = request.method == "SUBSCRIBE";
    const bool is_unsubscribe = request.method == "UNSUBSCRIBE";
    if (!is_subscribe && !is_unsubscribe) return reject(405, errc::bad_method);
    auto sid = request.headers.get("SID");
    const bool has_nt = request.headers.contains("NT");
    const bool has_callback = request.headers.contains("CALLBACK");
    if (sid) d.sid = std::string(trim(*sid));

    if (is_unsubscribe) {
        d.action = SubscriptionAction::unsubscribe;
        if (sid && (has_nt || has_callback)) return reject(400, errc::sid_with_nt_or_callback);
        if (d.sid.empty() || !sid_known || !sid_known(d.sid)) {
            return reject(412, errc::unknown_sid);
        }
        return d;
    }
    if (sid) {
        d.action = SubscriptionAction::renew;
        if (has_nt || has_callback) return reject(400, errc::sid_with_nt_or_callback);
        if (d.sid.empty() || !sid_known || !sid_known(d.sid)) {
            return reject(412, errc::unknown_sid);
        }
        d.timeout = clamp_timeout(request.headers, policy);
        return d;
    }
    d.action = SubscriptionAction::subscribe;
    auto nt = request.headers.get("NT");
    if (!nt || !http::iequals(trim(*nt), "upnp:event")) return reject(412, errc::bad_nt);
    auto callback = request.headers.get("CALLBACK");
    if (!callback) return reject(412, errc::bad_callback);
    auto urls = parse_callback(*callback, policy.max_callbacks, policy.max_callback_length,
                               policy.max_callback_header);
    if (!urls) return reject(412, errc::bad_callback);
    d.callbacks = std::move(urls).value();
    d.timeout = clamp_timeout(request.headers, policy);
    return d;
}

std::string format_uuid_v4(std::span<const std::byte, 16> random) {
    static constexpr char hex[] = "0123456789abcdef";
    std::array<unsigned char, 16> b{};
    for (std::size_t i = 0; i < 16; ++i) b[i] = std::to_integer<unsigned char>(random[i]);
    b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // variant 10
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < 16; ++i) {
        out.push_back(hex[b[i] >> 4]);
        out.push_back(hex[b[i] & 0x0F]);
        if (i == 3 || i == 5 || i == 7 || i == 9) out.push_back('-');
    }
    return out;
}

// The randomness comes from the kernel (core/random: getrandom(2)); only the formatting is
// done here, so this layer stays sans-IO.
std::string make_sid() {
    return "uuid:" + format_uuid_v4(os_random_16());
}

http::Response make_subscribe_response(std::string_view sid, std::chrono::seconds timeout,
                                       std::string_view server) {
    http::Response r;
    r.status = 200;
    r.headers.add("SERVER", server.empty() ? default_user_agent() : std::string(server));
    r.headers.add("SID", std::string(sid));
    r.headers.add("TIMEOUT", format_timeout(timeout));
    return r;
}

http::Response make_error_response(int status) {
    http::Response r;
    r.status = status;
    r.headers.add("Connection", "close");
    return r;
}

http::Request make_notify(const http::Url& callback, std::string_view sid, std::uint32_t seq,
                          std::string body) {
    http::Request r;
    r.method = "NOTIFY";
    r.target = callback.target();
    r.headers.reserve(6);
    r.headers.add("HOST", callback.host_header());
    r.headers.add("CONTENT-TYPE", "text/xml; charset=\"utf-8\"");
    r.headers.add("NT", "upnp:event");
    r.headers.add("NTS", "upnp:propchange");
    r.headers.add("SID", std::string(sid));
    r.headers.add("SEQ", std::to_string(seq));
    r.body = std::move(body);
    return r;
}

}  // namespace uvgena::gena
