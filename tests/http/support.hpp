// Helpers of the http tests: raw connections that speak HTTP byte by byte, so that the
// server is tested with exactly the bytes a test chooses.
#pragma once

#include <csignal>
#include <string>
#include <string_view>

#include "uvgena/http/parser.hpp"
#include "uvgena/net/tcp.hpp"

namespace httptest {

/// Writing to a connection the peer closed raises SIGPIPE; like every libuv program, the
/// test program ignores it (the library installs no signal handler).
inline const bool sigpipe_ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();

/// Reads until one response is complete; returns it. Fails the test on a parse error.
inline uvgena::Task<uvgena::http::Response> read_response(uvgena::TcpStream& stream,
                                                          uvgena::http::ResponseParser& parser,
                                                          std::string& leftover) {
    using uvgena::http::ParseEvent;
    for (;;) {
        if (leftover.empty()) {
            std::string_view data = co_await stream.read_some();
            if (data.empty()) {
                auto r = parser.finish();
                if (r.event == ParseEvent::message) co_return parser.take();
                throw uvgena::Error(make_error_code(uvgena::errc::closed), "EOF before a response");
            }
            leftover.assign(data);
        }
        auto r = parser.feed(leftover);
        leftover.erase(0, r.consumed);
        if (r.event == ParseEvent::message) co_return parser.take();
        if (r.event == ParseEvent::error) throw uvgena::Error(parser.error(), "bad response");
    }
}

/// Reads until end of stream (or a reset, which counts as the end); returns every byte.
inline uvgena::Task<std::string> read_to_end(uvgena::TcpStream& stream) {
    std::string all;
    try {
        for (;;) {
            std::string_view data = co_await stream.read_some();
            if (data.empty()) break;
            all.append(data);
        }
    } catch (const uvgena::Error&) {
    }
    co_return all;
}

/// A minimal GET request for `target`.
inline std::string get(std::string_view target, std::string_view extra = {}) {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra) +
           "\r\n";
}

}  // namespace httptest
