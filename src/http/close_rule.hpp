// What the http::Server does with a connection once a response is written, sans-IO: kept
// apart from the server so that the rule can be tested without sockets
// (tests/http/server_test.cpp, "the rule after a response").
//
// The close grace (ServerOptions::close_grace) exists so that the client, not the server,
// closes first and keeps the connection's TIME_WAIT. A client that asked to close
// (`Connection: close`, as most devices send their NOTIFYs) gets the close at once instead
// (RFC 9112 9.6: the server initiates it after its response): waiting for the client's end
// of stream costs the server a read and often a loop wake-up per connection (issue 23).
#pragma once

namespace uvgena::http::detail {

/// The server's next step on a connection whose response was just written.
enum class AfterResponse {
    next_request,  ///< Keep-alive: read the next request.
    linger,        ///< Half-close, read and drop what the client still sends, then close.
    close_now,     ///< Close at once.
    close_grace,   ///< Wait up to the close grace for the client's close, then close.
};

/// The rule. `keep`: the connection stays open (client and handler want keep-alive, the
/// server is not stopping). `client_asked_close`: the request said `Connection: close`, or
/// was HTTP/1.0 without keep-alive. `unread_input`: bytes after the request were already
/// received (pipelined, or a client sending on despite its own close): closing with them
/// unread would reset the connection, which can destroy the response before the client
/// read it. `grace`: ServerOptions::close_grace is not zero.
constexpr AfterResponse after_response(bool keep, bool client_asked_close, bool unread_input,
                                       bool grace) noexcept {
    if (keep) return AfterResponse::next_request;
    if (unread_input) return AfterResponse::linger;
    if (client_asked_close || !grace) return AfterResponse::close_now;
    return AfterResponse::close_grace;
}

}  // namespace uvgena::http::detail
