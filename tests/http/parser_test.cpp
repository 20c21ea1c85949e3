#include "uvgena/http/parser.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "uvgena/http/error.hpp"

using namespace uvgena::http;

namespace {

bool same(const Request& a, const Request& b) {
    return a.method == b.method && a.target == b.target && a.version_major == b.version_major &&
           a.version_minor == b.version_minor && a.headers == b.headers && a.body == b.body &&
           a.trailers == b.trailers;
}

bool same(const Response& a, const Response& b) {
    return a.status == b.status && a.reason == b.reason && a.version_major == b.version_major &&
           a.version_minor == b.version_minor && a.headers == b.headers && a.body == b.body &&
           a.trailers == b.trailers;
}

template <typename Message>
struct Outcome {
    std::vector<Message> messages;
    std::error_code error;
    int continues = 0;

    bool operator==(const Outcome& other) const {
        if (messages.size() != other.messages.size() || error != other.error ||
            continues != other.continues) {
            return false;
        }
        for (std::size_t i = 0; i < messages.size(); ++i) {
            if (!same(messages[i], other.messages[i])) return false;
        }
        return true;
    }
};

// Feeds the pieces in order the way a connection would: unconsumed bytes are fed again after
// each message is taken; at the end, end of stream if `eof`.
template <typename Parser, typename Message = decltype(std::declval<Parser&>().take())>
Outcome<Message> drive(Parser& parser, const std::vector<std::string_view>& pieces,
                       bool eof = true) {
    Outcome<Message> out;
    for (std::string_view rest : pieces) {
        for (;;) {
            FeedResult r = parser.feed(rest);
            REQUIRE(r.consumed <= rest.size());
            rest.remove_prefix(r.consumed);
            if (r.event == ParseEvent::message) {
                out.messages.push_back(parser.take());
            } else if (r.event == ParseEvent::expect_continue) {
                ++out.continues;
            } else if (r.event == ParseEvent::error) {
                out.error = parser.error();
                return out;
            } else {
                REQUIRE(rest.empty());
                break;
            }
        }
    }
    if (eof) {
        FeedResult r = parser.finish();
        if (r.event == ParseEvent::message) out.messages.push_back(parser.take());
        if (r.event == ParseEvent::error) out.error = parser.error();
    }
    return out;
}

template <typename Parser>
auto parse_whole(std::string_view input, ParserLimits limits = {}, bool eof = true) {
    Parser parser(limits);
    return drive(parser, {input}, eof);
}

// Checks that every two-piece split and the byte-by-byte feed give the unsplit outcome.
template <typename Parser>
auto check_every_split(std::string_view input, ParserLimits limits = {}) {
    auto whole = parse_whole<Parser>(input, limits);
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        CAPTURE(cut);
        Parser parser(limits);
        auto split = drive(parser, {input.substr(0, cut), input.substr(cut)});
        CHECK(split == whole);
    }
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
    Parser parser(limits);
    CHECK(drive(parser, bytes) == whole);
    return whole;
}

std::error_code request_error(std::string_view input, ParserLimits limits = {}) {
    auto out = check_every_split<RequestParser>(input, limits);
    return out.error;
}

std::error_code response_error(std::string_view input, ParserLimits limits = {}) {
    auto out = check_every_split<ResponseParser>(input, limits);
    return out.error;
}

const std::string kNotify =
    "NOTIFY /event/3 HTTP/1.1\r\n"
    "HOST: 192.168.1.10:49152\r\n"
    "CONTENT-TYPE: text/xml; charset=\"utf-8\"\r\n"
    "NT: upnp:event\r\n"
    "NTS: upnp:propchange\r\n"
    "SID: uuid:6bd5eabd-b8e8-4f46-ab12-123456789abc\r\n"
    "SEQ: 7\r\n"
    "Content-Length: 59\r\n"
    "\r\n"
    "<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\"/>\r\n";

}  // namespace

TEST_SUITE("http.parser") {
    TEST_CASE("a NOTIFY request split at every byte boundary parses the same") {
        auto out = check_every_split<RequestParser>(kNotify);
        REQUIRE(out.messages.size() == 1);
        CHECK_FALSE(out.error);
        const Request& r = out.messages[0];
        CHECK(r.method == "NOTIFY");
        CHECK(r.target == "/event/3");
        CHECK(r.version_minor == 1);
        CHECK(r.headers.size() == 7);
        CHECK(r.headers.get("sid") ==
              std::string_view("uuid:6bd5eabd-b8e8-4f46-ab12-123456789abc"));
        CHECK(r.headers.get("Content-Type") == std::string_view("text/xml; charset=\"utf-8\""));
        CHECK(r.body.size() == 59);
        CHECK(r.body.substr(0, 15) == "<e:propertyset ");
        CHECK(r.keep_alive());
    }

    TEST_CASE("header values lose surrounding whitespace and empty values are kept") {
        auto out = check_every_split<RequestParser>(
            "GET / HTTP/1.1\r\nHost:  h \t\r\nX-Empty:\r\nX-Also-Empty:   \r\nX-Last: v\r\n\r\n");
        REQUIRE(out.messages.size() == 1);
        const Headers& h = out.messages[0].headers;
        REQUIRE(h.size() == 4);
        CHECK(h.get("host") == std::string_view("h"));
        CHECK(h.get("x-empty") == std::string_view(""));
        CHECK(h.get("x-also-empty") == std::string_view(""));
        CHECK(h.get("x-last") == std::string_view("v"));
    }

    TEST_CASE("a chunked body with extensions and trailers is decoded") {
        auto out = check_every_split<RequestParser>(
            "NOTIFY /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5;name=value\r\nhello\r\n"
            "6\r\n world\r\n"
            "0\r\nX-Checksum: abc\r\n\r\n");
        REQUIRE(out.messages.size() == 1);
        CHECK(out.messages[0].body == "hello world");
        CHECK(out.messages[0].trailers.get("x-checksum") == std::string_view("abc"));
        CHECK_FALSE(out.messages[0].headers.contains("X-Checksum"));
    }

    TEST_CASE("pipelined requests are handed over one at a time in order") {
        std::string input = kNotify + "GET /a HTTP/1.1\r\nHost: h\r\n\r\n" +
                            "SUBSCRIBE /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        RequestParser parser;
        FeedResult first = parser.feed(input);
        CHECK(first.event == ParseEvent::message);
        CHECK(first.consumed == kNotify.size());
        auto out = check_every_split<RequestParser>(input);
        REQUIRE(out.messages.size() == 3);
        CHECK(out.messages[0].method == "NOTIFY");
        CHECK(out.messages[1].target == "/a");
        CHECK(out.messages[2].method == "SUBSCRIBE");
        CHECK_FALSE(out.messages[2].keep_alive());
    }

    TEST_CASE("HTTP/1.0 requests close unless they ask for keep-alive") {
        auto out = check_every_split<RequestParser>(
            "GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n"
            "GET /ignored HTTP/1.0\r\n\r\n");
        // Bytes after a request that closes the connection are not another request.
        REQUIRE(out.messages.size() == 2);
        CHECK(out.messages[0].version_minor == 0);
        CHECK(out.messages[0].keep_alive());
        CHECK_FALSE(out.messages[1].keep_alive());
    }

    TEST_CASE("Expect 100-continue stops after the headers so the server can answer") {
        std::string input =
            "NOTIFY /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
            "abc";
        RequestParser parser;
        FeedResult r = parser.feed(input);
        CHECK(r.event == ParseEvent::expect_continue);
        CHECK(r.consumed == input.size() - 3);
        CHECK(parser.headers_complete());
        CHECK(parser.current().target == "/e");
        auto out = check_every_split<RequestParser>(input);
        CHECK(out.continues == 1);
        REQUIRE(out.messages.size() == 1);
        CHECK(out.messages[0].body == "abc");
        auto no_body = check_every_split<RequestParser>(
            "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n");
        CHECK(no_body.continues == 0);
    }

    TEST_CASE("in_message tells a request in progress from an idle connection") {
        RequestParser parser;
        CHECK_FALSE(parser.in_message());
        CHECK(parser.feed("GET / HT").event == ParseEvent::need_more);
        CHECK(parser.in_message());
        CHECK_FALSE(parser.headers_complete());
        CHECK(parser.feed("TP/1.1\r\nHost: h\r\n\r\n").event == ParseEvent::message);
        (void)parser.take();
        CHECK_FALSE(parser.in_message());
        CHECK(parser.finish().event == ParseEvent::need_more);
    }

    TEST_CASE("responses with Content-Length, chunked and close-delimited bodies") {
        auto sized = check_every_split<ResponseParser>(
            "HTTP/1.1 200 OK\r\nSID: uuid:1\r\nTIMEOUT: Second-1800\r\nContent-Length: "
            "2\r\n\r\nok");
        REQUIRE(sized.messages.size() == 1);
        CHECK(sized.messages[0].status == 200);
        CHECK(sized.messages[0].reason == "OK");
        CHECK(sized.messages[0].body == "ok");
        auto chunked = check_every_split<ResponseParser>(
            "HTTP/1.1 412 Precondition Failed\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n0\r\n\r\n");
        REQUIRE(chunked.messages.size() == 1);
        CHECK(chunked.messages[0].status == 412);
        CHECK(chunked.messages[0].body == "abc");
        auto until_eof = check_every_split<ResponseParser>(
            "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of it until the end");
        REQUIRE(until_eof.messages.size() == 1);
        CHECK(until_eof.messages[0].body == "all of it until the end");
        CHECK_FALSE(until_eof.error);
    }

    TEST_CASE("responses to HEAD, 204 and 304 have no body and interim 1xx are skipped") {
        ResponseParser head;
        head.set_request_method("HEAD");
        auto out = drive(head, {"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"}, false);
        REQUIRE(out.messages.size() == 1);
        CHECK(out.messages[0].body.empty());
        auto no_content = check_every_split<ResponseParser>(
            "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n");
        REQUIRE(no_content.messages.size() == 2);
        CHECK(no_content.messages[0].status == 204);
        CHECK(no_content.messages[1].status == 304);
        auto interim = check_every_split<ResponseParser>(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz");
        REQUIRE(interim.messages.size() == 1);
        CHECK(interim.messages[0].status == 200);
        CHECK_FALSE(interim.messages[0].headers.contains("link"));
        CHECK(interim.messages[0].body == "z");
    }

    TEST_CASE("a malformed start line is reported as such") {
        CHECK(request_error("GET\r\n\r\n") == errc::malformed_start_line);
        CHECK(request_error("GET / HTTP/9.x\r\n\r\n") == errc::malformed_start_line);
        CHECK(request_error("G@T / HTTP/1.1\r\n\r\n") == errc::malformed_start_line);
        CHECK(request_error("GET /a b HTTP/1.1\r\n\r\n") == errc::malformed_start_line);
        CHECK(request_error("GET / HTTP/1.1 extra\r\n\r\n") == errc::malformed_start_line);
        CHECK(response_error("HTTP/1.1 2x0 OK\r\n\r\n") == errc::malformed_start_line);
        CHECK(response_error("HTTQ/1.1 200 OK\r\n\r\n") == errc::malformed_start_line);
    }

    TEST_CASE("malformed header fields, NUL bytes and obs-fold are bad headers") {
        using namespace std::string_literals;
        CHECK(request_error("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n") == errc::bad_header);
        CHECK(request_error("GET / HTTP/1.1\r\nNoColon\r\n\r\n") == errc::bad_header);
        CHECK(request_error("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"s) == errc::bad_header);
        CHECK(request_error("GET / HTTP/1.1\r\nX\0: ab\r\n\r\n"s) == errc::bad_header);
        CHECK(request_error("GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n") == errc::bad_header);
        CHECK(request_error("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n") == errc::bad_header);
        CHECK(request_error("GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n") ==
              errc::bad_header);
        CHECK(request_error("GET / HTTP/1.1\r\n\tX: a\r\n\r\n") == errc::bad_header);
        CHECK(request_error("GET / HTTP/1.1\r\nX:\r\n folded\r\n\r\n") == errc::bad_header);
        CHECK(response_error("HTTP/1.1 200 OK\r\nX: a\r\n\tb\r\n\r\n") == errc::bad_header);
        CHECK(response_error("HTTP/1.1 200 OK\r\n: empty-name\r\n\r\n") == errc::bad_header);
    }

    TEST_CASE("conflicting framing is refused") {
        CHECK(request_error(
                  "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd") ==
              errc::invalid_content_length);
        CHECK(
            request_error("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc") ==
            errc::invalid_content_length);
        CHECK(request_error("POST / HTTP/1.1\r\nContent-Length: 3x\r\n\r\nabc") ==
              errc::invalid_content_length);
        CHECK(request_error("POST / HTTP/1.1\r\nContent-Length: 3\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n") ==
              errc::invalid_content_length);
        CHECK(request_error("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n") ==
              errc::bad_transfer_encoding);
    }

    TEST_CASE("a malformed chunk is a bad chunk") {
        const char* head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        CHECK(request_error(std::string(head) + "zz\r\nabc\r\n0\r\n\r\n") == errc::bad_chunk);
        CHECK(request_error(std::string(head) + "3\r\nabcX\r\n0\r\n\r\n") == errc::bad_chunk);
        CHECK(request_error(std::string(head) + "3\rabc\r\n0\r\n\r\n") == errc::bad_chunk);
        CHECK(request_error(std::string(head) + "fffffffffffffffff\r\n") == errc::bad_chunk);
    }

    TEST_CASE("end of stream inside a message is reported as truncation") {
        CHECK(request_error("NOTIFY / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc") ==
              errc::truncated_body);
        CHECK(request_error("NOTIFY / HTTP/1.1\r\nHost: h\r\nSI") == errc::unexpected_eof);
        CHECK(request_error("NOT") == errc::unexpected_eof);
        CHECK(response_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab") ==
              errc::truncated_body);
        CHECK(response_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab") ==
              errc::truncated_body);
        ResponseParser nothing;
        CHECK(nothing.finish().event == ParseEvent::need_more);
    }

    TEST_CASE("the header limit counts every fragment, wherever the input is split") {
        ParserLimits limits;
        limits.max_header_bytes = 100;
        std::string fits = "GET / HTTP/1.1\r\nX: " + std::string(60, 'a') + "\r\n\r\n";
        CHECK_FALSE(request_error(fits, limits));
        std::string long_value = "GET / HTTP/1.1\r\nX: " + std::string(200, 'a') + "\r\n\r\n";
        CHECK(request_error(long_value, limits) == errc::header_too_large);
        std::string many = "GET / HTTP/1.1\r\n";
        for (int i = 0; i < 20; ++i) many += "X" + std::to_string(i) + ": v\r\n";
        CHECK(request_error(many + "\r\n", limits) == errc::header_too_large);
        std::string long_target = "GET /" + std::string(200, 'p') + " HTTP/1.1\r\n\r\n";
        CHECK(request_error(long_target, limits) == errc::header_too_large);
        CHECK(response_error("HTTP/1.1 200 " + std::string(200, 'r') + "\r\n\r\n", limits) ==
              errc::header_too_large);
    }

    TEST_CASE("the default header limit is 8 KiB") {
        std::string big = "GET / HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n";
        RequestParser parser;
        CHECK(parser.feed(big).event == ParseEvent::error);
        CHECK(parser.error() == errc::header_too_large);
    }

    TEST_CASE("the body limit stops announced and chunked bodies") {
        ParserLimits limits;
        limits.max_body_bytes = 10;
        RequestParser announced(limits);
        FeedResult r = announced.feed("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
        CHECK(r.event == ParseEvent::error);
        CHECK(announced.error() == errc::body_too_large);
        CHECK(request_error("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", limits) ==
              std::error_code());
        CHECK(request_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n",
                            limits) == errc::body_too_large);
        CHECK(response_error("HTTP/1.0 200 OK\r\n\r\n" + std::string(11, 'x'), limits) ==
              errc::body_too_large);
        RequestParser defaults;
        defaults.feed("POST / HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n");
        CHECK(defaults.error() == errc::body_too_large);
    }

    TEST_CASE("CONNECT and protocol upgrades are refused") {
        CHECK(request_error("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n") ==
              errc::upgrade_not_supported);
        CHECK(
            request_error("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n") ==
            errc::upgrade_not_supported);
        CHECK(response_error("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                             "Upgrade: h2c\r\n\r\n") == errc::upgrade_not_supported);
    }

    TEST_CASE("take_into hands over each request without leaking the previous one's fields") {
        RequestParser parser;
        Request request;
        std::string input = kNotify + "GET /second HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" +
                            kNotify + "PUT /fourth HTTP/1.1\r\nContent-Length: 1\r\n\r\nz";
        std::vector<std::string> seen;
        std::string_view rest = input;
        while (!rest.empty()) {
            FeedResult r = parser.feed(rest);
            REQUIRE(r.event == ParseEvent::message);
            rest.remove_prefix(r.consumed);
            // The parser gets this object's former storage back for the next request.
            parser.take_into(request);
            seen.push_back(request.method + " " + request.target + " 1." +
                           std::to_string(request.version_minor) + " " +
                           std::to_string(request.headers.size()) + " " +
                           request.body.substr(0, 3));
        }
        CHECK(seen == std::vector<std::string>{"NOTIFY /event/3 1.1 7 <e:", "GET /second 1.0 1 ",
                                               "NOTIFY /event/3 1.1 7 <e:", "PUT /fourth 1.1 1 z"});
    }

    TEST_CASE("a failed parser stays failed until reset") {
        RequestParser parser;
        CHECK(parser.feed("BAD LINE\r\n").event == ParseEvent::error);
        CHECK(parser.feed("GET / HTTP/1.1\r\n\r\n").event == ParseEvent::error);
        parser.reset();
        CHECK(parser.feed("GET / HTTP/1.1\r\n\r\n").event == ParseEvent::message);
        CHECK(parser.take().target == "/");
    }
}
