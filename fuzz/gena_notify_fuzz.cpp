// Fuzzes the GENA header rules on a request as received by the listener (NOTIFY) and the
// publisher (SUBSCRIBE / renewal / UNSUBSCRIBE): the bytes are parsed as one HTTP request,
// then every check and header reader runs on it, and on the raw input as a header value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "uvgena/gena/protocol.hpp"
#include "uvgena/http/parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace uvgena;
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    // The raw bytes as a header value: the readers must cope with anything.
    (void)gena::parse_timeout(bytes);
    (void)gena::parse_seq(bytes);
    (void)gena::parse_callback(bytes);
    (void)gena::parse_callback(bytes, 2, 64, 256);

    http::RequestParser parser(
        http::ParserLimits{.max_header_bytes = 4096, .max_body_bytes = 4096});
    http::FeedResult r = parser.feed(bytes);
    if (r.event == http::ParseEvent::need_more) r = parser.finish();
    if (r.event != http::ParseEvent::message) return 0;
    http::Request request = parser.take();

    auto known = [](std::string_view sid) { return sid.size() > 5 && sid.substr(0, 5) == "uuid:"; };
    gena::NotifyDecision notify = gena::check_notify(request, known);
    (void)gena::make_notify_response(notify);
    gena::SubscriptionPolicy policy;
    gena::SubscriptionDecision sub = gena::check_subscription_request(request, policy, known);
    if (sub.accepted())
        (void)gena::make_subscribe_response("uuid:x", sub.timeout);
    else
        (void)gena::make_error_response(sub.status);
    for (const auto& field : request.headers) {
        (void)gena::parse_timeout(field.value);
        (void)gena::parse_seq(field.value);
        (void)gena::parse_callback(field.value);
    }
    return 0;
}
