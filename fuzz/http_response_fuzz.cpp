// Fuzzes the HTTP response parser as the subscription client uses it on a device's answer
// to SUBSCRIBE / renewal / UNSUBSCRIBE (the device may be malicious), in arbitrary pieces,
// then reads the answer with the GENA rules.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "uvgena/gena/protocol.hpp"
#include "uvgena/http/parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace uvgena;
    if (size == 0) return 0;
    unsigned split_seed = data[0];
    std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    http::ResponseParser parser(
        http::ParserLimits{.max_header_bytes = 2048, .max_body_bytes = 4096});
    if (split_seed & 1u) parser.set_request_method("HEAD");
    auto examine = [](const http::Response& response) {
        (void)response.keep_alive();
        (void)gena::read_subscribe_response(response, std::chrono::seconds(300));
        (void)gena::read_subscribe_response(response, std::nullopt);
        (void)gena::read_unsubscribe_response(response);
        (void)gena::status_error(response.status);
    };
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        std::size_t piece = 1 + (split_seed % 64);
        split_seed = split_seed * 1103515245u + 12345u;
        std::string_view chunk = bytes.substr(pos, piece);
        pos += chunk.size();
        while (!chunk.empty()) {
            http::FeedResult r = parser.feed(chunk);
            chunk.remove_prefix(r.consumed);
            if (r.event == http::ParseEvent::message) {
                examine(parser.take());
            } else if (r.event == http::ParseEvent::error) {
                (void)parser.error().message();
                (void)parser.current();
                return 0;
            } else if (r.consumed == 0) {
                break;
            }
        }
    }
    if (parser.finish().event == http::ParseEvent::message) examine(parser.take());
    return 0;
}
