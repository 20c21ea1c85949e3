#include "uvgena/http/message.hpp"

#include <doctest/doctest.h>

#include <string>

#include "uvgena/core/error.hpp"
#include "uvgena/http/error.hpp"

using namespace uvgena::http;

namespace {

std::error_code serialize_error(const Request& r) {
    try {
        (void)serialize(r);
    } catch (const uvgena::Error& e) {
        return e.code();
    }
    return {};
}

}  // namespace

TEST_SUITE("http.message") {
    TEST_CASE("headers keep order and spelling and look up ignoring case") {
        Headers h;
        h.add("SID", "uuid:1");
        h.add("Set-Cookie", "a=1");
        h.add("set-cookie", "b=2");
        CHECK(h.size() == 3);
        CHECK(h.get("sid") == std::string_view("uuid:1"));
        CHECK(h.get("SET-COOKIE") == std::string_view("a=1"));
        CHECK(h.get_all("Set-Cookie") == std::vector<std::string_view>{"a=1", "b=2"});
        CHECK(h.count("set-cookie") == 2);
        CHECK(h.contains("Sid"));
        CHECK_FALSE(h.get("NT").has_value());
        CHECK(h.begin()->name == "SID");
    }

    TEST_CASE("set replaces every field of the name in place and remove drops them all") {
        Headers h;
        h.add("A", "1");
        h.add("B", "2");
        h.add("a", "3");
        h.set("A", "9");
        REQUIRE(h.size() == 2);
        CHECK(h.begin()->name == "A");
        CHECK(h.begin()->value == "9");
        h.set("C", "new");
        CHECK(h.get("c") == std::string_view("new"));
        h.remove("b");
        CHECK(h.size() == 2);
        CHECK_FALSE(h.contains("B"));
        h.remove("missing");
        CHECK(h.size() == 2);
    }

    TEST_CASE("keep-alive follows the HTTP version and the Connection tokens") {
        Request r;
        CHECK(r.keep_alive());
        r.headers.add("Connection", "Upgrade, Close");
        CHECK_FALSE(r.keep_alive());
        Request old;
        old.version_minor = 0;
        CHECK_FALSE(old.keep_alive());
        old.headers.add("connection", "Keep-Alive");
        CHECK(old.keep_alive());
        Response resp;
        resp.headers.add("Connection", "keep-alive");
        CHECK(resp.keep_alive());
        resp.headers.add("Connection", "close");
        CHECK_FALSE(resp.keep_alive());
    }

    TEST_CASE("a request is serialised with a computed Content-Length replacing the caller's") {
        Request r;
        r.method = "NOTIFY";
        r.target = "/event/3";
        r.headers.add("Host", "127.0.0.1:8080");
        r.headers.add("Content-Length", "999");
        r.headers.add("Transfer-Encoding", "chunked");
        r.headers.add("SEQ", "0");
        r.body = "<e/>";
        CHECK(serialize(r) ==
              "NOTIFY /event/3 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nSEQ: 0\r\n"
              "Content-Length: 4\r\n\r\n<e/>");
    }

    TEST_CASE("a request without Host or with an injected line is refused") {
        Request r;
        r.method = "GET";
        r.target = "/";
        CHECK(serialize_error(r) == make_error_code(errc::missing_host));
        r.headers.add("Host", "a\r\nX-Evil: 1");
        CHECK(serialize_error(r) == make_error_code(errc::invalid_field));
        r.headers.set("Host", "a");
        r.headers.add("Bad Name", "x");
        CHECK(serialize_error(r) == make_error_code(errc::invalid_field));
        r.headers.remove("Bad Name");
        r.target = "/a b";
        CHECK(serialize_error(r) == make_error_code(errc::invalid_field));
        r.target = "/";
        r.method = "GE T";
        CHECK(serialize_error(r) == make_error_code(errc::invalid_field));
    }

    TEST_CASE("a response gets the standard reason and a Content-Length, none for 204") {
        Response ok;
        ok.status = 412;
        ok.body = "no";
        CHECK(serialize(ok) == "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 2\r\n\r\nno");
        Response empty;
        empty.status = 204;
        empty.reason = "Nothing";
        CHECK(serialize(empty) == "HTTP/1.1 204 Nothing\r\n\r\n");
        empty.body = "x";
        CHECK_THROWS_AS((void)serialize(empty), uvgena::Error);
        Response head;
        head.body = "hello";
        std::string out = "prefix|";
        serialize_into(out, head, false);
        CHECK(out == "prefix|HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    }

    TEST_CASE("the bare 200 (a NOTIFY's answer) is the same bytes as the general path's") {
        Response bare;
        std::string out = "prefix|";
        serialize_into(out, bare, false);
        CHECK(out == "prefix|HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        // The same response through the general path (an explicit reason) and its variants.
        Response spelled;
        spelled.reason = "OK";
        CHECK(serialize(spelled) == serialize(bare));
        Response http10;
        http10.version_minor = 0;
        CHECK(serialize(http10) == "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        Response with_field;
        with_field.headers.add("Connection", "close");
        CHECK(serialize(with_field) ==
              "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    }

    TEST_CASE("status errors carry the status as their value") {
        auto code = status_error(412);
        CHECK(code.value() == 412);
        CHECK(is_status_error(code));
        CHECK(code.message() == "HTTP 412 Precondition Failed");
        CHECK_FALSE(is_status_error(make_error_code(errc::bad_header)));
        CHECK(make_error_code(errc::bad_url) == std::errc::invalid_argument);
    }
}
