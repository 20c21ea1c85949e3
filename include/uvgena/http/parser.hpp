// Incremental HTTP/1.x parsing on llhttp, sans-IO: bytes in any pieces, messages out.
//
// The caller feeds whatever the socket produced; `feed` consumes bytes until one message is
// complete (then it stops, so that pipelined messages are handed over one at a time), until
// the server must decide about `Expect: 100-continue`, until an error, or until the bytes run
// out. Unconsumed bytes must be fed again after `take()`. At end of stream, call `finish()`:
// it completes a close-delimited response body or reports a truncated message.
//
// llhttp's lenient flags are never enabled: ambiguous framing (Content-Length with
// Transfer-Encoding, duplicate lengths, obs-fold, bare LF) is an error, not a guess.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <system_error>

#include "uvgena/core/export.hpp"
#include "uvgena/http/message.hpp"

namespace uvgena::http {

/// Bounds on what one message may make the parser hold.
struct UVGENA_API ParserLimits {
    /// Start line plus header fields (and trailers), counted as received; a server answers
    /// 431 when it is exceeded.
    std::size_t max_header_bytes = 8 * 1024;
    /// Decoded body; a server answers 413 when it is exceeded. A Content-Length above it
    /// fails as soon as the headers are complete, before any body byte is read.
    std::size_t max_body_bytes = 1024 * 1024;
};

/// Why `feed` or `finish` returned.
enum class ParseEvent {
    need_more,        ///< Every byte was consumed; no complete message yet.
    message,          ///< A complete message is ready: `take()` it, then feed the rest.
    expect_continue,  ///< Request headers with `Expect: 100-continue` are complete and the
                      ///< body has not been read: answer 100 (or 417/413) then feed the rest.
    error,            ///< Parsing failed; `error()` says why. The parser stays failed.
};

/// The outcome of one `feed` or `finish` call.
struct UVGENA_API FeedResult {
    std::size_t consumed = 0;  ///< Bytes of the input that were consumed.
    ParseEvent event = ParseEvent::need_more;
};

namespace detail {
class ParserCore;
}

/// Parses requests, as a server receives them (pipelined requests one at a time).
class UVGENA_API RequestParser {
  public:
    /// A parser bounded by `limits`.
    explicit RequestParser(ParserLimits limits = {});
    ~RequestParser();
    RequestParser(const RequestParser&) = delete;
    RequestParser& operator=(const RequestParser&) = delete;
    RequestParser(RequestParser&&) noexcept;
    RequestParser& operator=(RequestParser&&) noexcept;

    /// Consumes bytes of `data` until an event; see ParseEvent.
    FeedResult feed(std::string_view data);
    /// Signals end of stream: `error` with errc::truncated_body or errc::unexpected_eof if a
    /// request was in progress, else `need_more` (a clean close between requests).
    FeedResult finish();
    /// Moves the complete request out (after ParseEvent::message).
    Request take();
    /// Moves the complete request into `request` and keeps `request`'s former storage (body
    /// and header capacity) for the next one: no allocation per request for a caller that
    /// passes the same object each time.
    void take_into(Request& request);
    /// The request in progress: after ParseEvent::expect_continue, or after an error, what
    /// was parsed so far (method, target, headers) for the server's decision.
    const Request& current() const noexcept;
    /// The error after ParseEvent::error; empty otherwise.
    std::error_code error() const noexcept;
    /// True once a byte of a request has arrived and until that request is taken (a server
    /// uses it to tell a slow request from an idle keep-alive connection).
    bool in_message() const noexcept;
    /// True once the current request's header section is complete.
    bool headers_complete() const noexcept;
    /// Forgets all state (the next byte starts a new request).
    void reset();

  private:
    std::unique_ptr<detail::ParserCore> core_;
};

/// Parses responses, as a client receives them. Interim 1xx responses are skipped.
class UVGENA_API ResponseParser {
  public:
    /// A parser bounded by `limits`.
    explicit ResponseParser(ParserLimits limits = {});
    ~ResponseParser();
    ResponseParser(const ResponseParser&) = delete;
    ResponseParser& operator=(const ResponseParser&) = delete;
    ResponseParser(ResponseParser&&) noexcept;
    ResponseParser& operator=(ResponseParser&&) noexcept;

    /// Tells the parser the method of the request being answered: a response to HEAD has
    /// headers only (its Content-Length describes the body a GET would get).
    void set_request_method(std::string_view method);
    /// Consumes bytes of `data` until an event; see ParseEvent.
    FeedResult feed(std::string_view data);
    /// Signals end of stream: completes a close-delimited body (ParseEvent::message), fails
    /// with errc::truncated_body / errc::unexpected_eof if a response was cut short, or
    /// returns `need_more` if no byte of a response had arrived.
    FeedResult finish();
    /// Moves the complete response out (after ParseEvent::message).
    Response take();
    /// What was parsed so far of the response in progress.
    const Response& current() const noexcept;
    /// The error after ParseEvent::error; empty otherwise.
    std::error_code error() const noexcept;
    /// True once a byte of a (final) response has arrived and until it is taken.
    bool in_message() const noexcept;
    /// Forgets all state.
    void reset();

  private:
    std::unique_ptr<detail::ParserCore> core_;
};

}  // namespace uvgena::http
