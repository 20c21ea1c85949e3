// Fuzzes the HTTP request parser as the NOTIFY listener and the publisher use it: bytes from
// anyone on the LAN, arriving in arbitrary pieces, several requests pipelined on one
// connection. The first input byte chooses the split sizes, so that every framing path
// (headers split mid-field, chunk sizes split, body split) is reached.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "uvgena/http/parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace uvgena::http;
    if (size == 0) return 0;
    unsigned split_seed = data[0];
    std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    // Small limits so that the limit paths (431 / 413) are reached with small inputs.
    RequestParser parser(ParserLimits{.max_header_bytes = 2048, .max_body_bytes = 4096});
    Request request;
    std::size_t pos = 0;
    unsigned messages = 0;
    while (pos < bytes.size()) {
        std::size_t piece = 1 + (split_seed % 64);
        split_seed = split_seed * 1103515245u + 12345u;
        std::string_view chunk = bytes.substr(pos, piece);
        pos += chunk.size();
        while (!chunk.empty()) {
            FeedResult r = parser.feed(chunk);
            chunk.remove_prefix(r.consumed);
            if (r.event == ParseEvent::message) {
                parser.take_into(request);
                (void)request.keep_alive();
                (void)request.headers.get("SID");
                ++messages;
            } else if (r.event == ParseEvent::expect_continue) {
                (void)parser.current().headers.get("Expect");
            } else if (r.event == ParseEvent::error) {
                (void)parser.error().message();
                (void)parser.current();
                return 0;  // A server closes the connection here.
            } else if (r.consumed == 0) {
                break;
            }
        }
    }
    FeedResult end = parser.finish();
    if (end.event == ParseEvent::error) (void)parser.error().message();
    (void)messages;
    return 0;
}
