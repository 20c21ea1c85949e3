#include "uvgena/http/client.hpp"

#include <doctest/doctest.h>

#include <string>

#include "support.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/http/error.hpp"
#include "uvgena/http/server.hpp"
#include "uvgena/net/tcp.hpp"

using namespace uvgena;
using namespace uvgena::http;
using namespace std::chrono_literals;

namespace {

// A one-shot raw server: accepts one connection, reads the request head, writes `answer`
// verbatim, then closes (or keeps the connection open without answering if `answer` is
// empty, until the client gives up).
Task<std::string> raw_server(TcpListener& listener, std::string answer) {
    TcpStream stream = co_await listener.accept();
    std::string request;
    while (request.find("\r\n\r\n") == std::string::npos) {
        std::string_view data = co_await stream.read_some();
        if (data.empty()) co_return request;
        request.append(data);
    }
    if (answer.empty()) {
        co_await httptest::read_to_end(stream);
        co_return request;
    }
    co_await stream.write(std::string_view(answer));
    co_return request;
}

// Runs a client request against a raw server answering `answer`; returns the client's
// error (empty on success) and stores the response and the request the server saw.
std::error_code exchange_with(uvtest::TestLoop& loop, std::string answer, Response* response,
                              std::string* seen = nullptr, ClientOptions options = {}) {
    TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
    std::string url = "http://127.0.0.1:" + std::to_string(listener.port()) + "/dev";
    auto scenario = [](uv_loop_t* l, TcpListener& li, std::string a, std::string u, ClientOptions o,
                       Response* out, std::string* s) -> Task<std::error_code> {
        Scope scope(l);
        std::string request_seen;
        scope.spawn([](TcpListener& li2, std::string a2, std::string* into) -> Task<void> {
            *into = co_await raw_server(li2, std::move(a2));
        }(li, std::move(a), &request_seen));
        Result<Response> r = co_await try_request(l, "SUBSCRIBE", Url::parse(u), {}, {}, o);
        li.close();
        co_await scope.join();
        if (s) *s = request_seen;
        if (!r) co_return r.error();
        *out = std::move(r).value();
        co_return std::error_code();
    };
    return run(loop, scenario(loop, listener, std::move(answer), url, options, response, seen));
}

std::uint16_t closed_port(uv_loop_t* loop) {
    TcpListener l = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
    std::uint16_t port = l.port();
    l.close();
    uv_run(loop, UV_RUN_NOWAIT);
    return port;
}

}  // namespace

TEST_SUITE("http.client") {
    TEST_CASE("the request carries Host, Connection: close and a correct Content-Length") {
        uvtest::TestLoop loop;
        Response response;
        std::string seen;
        auto error = exchange_with(
            loop, "HTTP/1.1 200 OK\r\nSID: uuid:1\r\nContent-Length: 0\r\n\r\n", &response, &seen);
        CHECK_FALSE(error);
        CHECK(response.status == 200);
        CHECK(response.headers.get("sid") == std::string_view("uuid:1"));
        CHECK(seen.find("SUBSCRIBE /dev HTTP/1.1\r\n") == 0);
        CHECK(seen.find("\r\nHost: 127.0.0.1:") != std::string::npos);
        CHECK(seen.find("\r\nConnection: close\r\n") != std::string::npos);
        CHECK(seen.find("\r\nContent-Length: 0\r\n") != std::string::npos);
    }

    TEST_CASE("a close-delimited response body is read to the end") {
        uvtest::TestLoop loop;
        Response response;
        CHECK_FALSE(exchange_with(loop, "HTTP/1.0 200 OK\r\n\r\nuntil the end", &response));
        CHECK(response.body == "until the end");
    }

    TEST_CASE("malformed, truncated, missing and oversized responses are distinct errors") {
        uvtest::TestLoop loop;
        Response response;
        CHECK(exchange_with(loop, "HELLO\r\n\r\n", &response) == http::errc::malformed_start_line);
        CHECK(exchange_with(loop, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", &response) ==
              http::errc::truncated_body);
        CHECK(exchange_with(loop, "HTTP/1.1 200 OK\r\nContent-Le", &response) ==
              http::errc::unexpected_eof);
        ClientOptions small;
        small.max_response_bytes = 8;
        CHECK(exchange_with(loop, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789",
                            &response, nullptr, small) == http::errc::response_too_large);
        small.max_header_bytes = 64;
        CHECK(exchange_with(loop, "HTTP/1.1 200 OK\r\nX: " + std::string(100, 'x') + "\r\n\r\n",
                            &response, nullptr, small) == http::errc::response_too_large);
    }

    TEST_CASE("a server that closes without answering is a closed connection") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        auto scenario = [](uv_loop_t* l, TcpListener& li) -> Task<std::error_code> {
            Scope scope(l);
            scope.spawn([](TcpListener& li2) -> Task<void> {
                TcpStream s = co_await li2.accept();
                co_await s.read_some();
                s.close();
            }(li));
            std::string url = "http://127.0.0.1:" + std::to_string(li.port()) + "/";
            Result<Response> r = co_await try_request(l, "GET", Url::parse(url));
            co_await scope.join();
            co_return r.error();
        };
        CHECK(run(loop, scenario(loop, listener)) == http::errc::connection_closed);
    }

    TEST_CASE("a refused connection is ECONNREFUSED, thrown or returned") {
        uvtest::TestLoop loop;
        std::string url = "http://127.0.0.1:" + std::to_string(closed_port(loop)) + "/";
        try {
            run(loop, request(loop, "GET", url));
            FAIL("request to a closed port succeeded");
        } catch (const Error& e) {
            CHECK(e.code() == std::errc::connection_refused);
            std::string what = e.what();
            CHECK(what.find("connect to 127.0.0.1:") != std::string::npos);
            // The reason is said once, not once per layer that passed the error on.
            std::string reason = e.code().message();
            CHECK(what.find(reason) == what.rfind(reason));
        }
        Result<Response> r = run(loop, try_request(loop, "GET", Url::parse(url)));
        CHECK(r.error() == std::errc::connection_refused);
    }

    TEST_CASE("a silent server hits the total timeout") {
        uvtest::TestLoop loop;
        Response response;
        ClientOptions quick;
        quick.timeout = 100ms;
        std::error_code error = exchange_with(loop, "", &response, nullptr, quick);
        CHECK(is_timeout(error));
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        auto scenario = [](uv_loop_t* l, TcpListener& li, ClientOptions o) -> Task<std::string> {
            Scope scope(l);
            scope.spawn(raw_server(li, ""));
            std::string what;
            try {
                co_await request(l, "GET", "http://127.0.0.1:" + std::to_string(li.port()) + "/",
                                 {}, {}, o);
            } catch (const Error& e) {
                what = e.what();
            }
            li.close();
            co_await scope.join();
            co_return what;
        };
        CHECK(
            run(loop, scenario(loop, listener, quick)).find("no complete response within 100 ms") !=
            std::string::npos);
    }

    TEST_CASE("the stop token of the options cancels the request") {
        uvtest::TestLoop loop;
        TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
        auto scenario = [](uv_loop_t* l, TcpListener& li) -> Task<std::error_code> {
            Scope scope(l);
            scope.spawn(raw_server(li, ""));
            std::stop_source source;
            ClientOptions o;
            o.stop = source.get_token();
            scope.spawn([](uv_loop_t* l2, std::stop_source* s) -> Task<void> {
                co_await sleep_for(l2, 30ms);
                s->request_stop();
            }(l, &source));
            Result<Response> r = co_await try_request(
                l, "GET", Url::parse("http://127.0.0.1:" + std::to_string(li.port()) + "/"), {}, {},
                o);
            li.close();
            co_await scope.join();
            co_return r.error();
        };
        CHECK(is_cancelled(run(loop, scenario(loop, listener))));
    }

    TEST_CASE("a connection reset while waiting for the answer is ECONNRESET") {
        uvtest::TestLoop loop;
        // A raw libuv server that resets each connection once the request arrived.
        struct Raw {
            uv_tcp_t listener;
            uv_tcp_t conn;
            char buf[4096];
        };
        auto raw = std::make_unique<Raw>();
        uv_tcp_init(loop, &raw->listener);
        sockaddr_in addr;
        uv_ip4_addr("127.0.0.1", 0, &addr);
        REQUIRE(uv_tcp_bind(&raw->listener, reinterpret_cast<const sockaddr*>(&addr), 0) == 0);
        raw->listener.data = raw.get();
        REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&raw->listener), 8,
                          [](uv_stream_t* server, int) {
                              auto* r = static_cast<Raw*>(server->data);
                              uv_tcp_init(server->loop, &r->conn);
                              r->conn.data = r;
                              uv_accept(server, reinterpret_cast<uv_stream_t*>(&r->conn));
                              uv_read_start(
                                  reinterpret_cast<uv_stream_t*>(&r->conn),
                                  [](uv_handle_t* h, std::size_t, uv_buf_t* b) {
                                      auto* rr = static_cast<Raw*>(h->data);
                                      *b = uv_buf_init(rr->buf, sizeof rr->buf);
                                  },
                                  [](uv_stream_t* s, ssize_t, const uv_buf_t*) {
                                      uv_read_stop(s);
                                      uv_tcp_close_reset(reinterpret_cast<uv_tcp_t*>(s), nullptr);
                                  });
                          }) == 0);
        sockaddr_storage bound;
        int len = sizeof bound;
        uv_tcp_getsockname(&raw->listener, reinterpret_cast<sockaddr*>(&bound), &len);
        auto port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
        Result<Response> r = run(
            loop,
            try_request(loop, "GET", Url::parse("http://127.0.0.1:" + std::to_string(port) + "/")));
        CHECK(r.error() == std::errc::connection_reset);
        uv_close(reinterpret_cast<uv_handle_t*>(&raw->listener), nullptr);
        loop.close();
    }

    TEST_CASE("the local address chooses where the request leaves from") {
        uvtest::TestLoop loop;
        SocketAddress seen;
        ServerOptions so;
        so.address = SocketAddress::ipv4_loopback(0);
        Server server(
            loop,
            [&seen](const Request&, const RequestContext& c) -> Task<Response> {
                seen = c.peer;
                co_return Response{};
            },
            so);
        server.listen();
        ClientOptions options;
        options.local_address = SocketAddress::parse("127.0.0.2", 0);
        run(loop, request(loop, "GET", "http://" + server.local_address().to_string() + "/", {}, {},
                          options));
        CHECK(seen.ip() == "127.0.0.2");
        run(loop, server.stop());
    }

    TEST_CASE("names resolve, HEAD gets no body and try_send skips the URL") {
        uvtest::TestLoop loop;
        ServerOptions so;
        so.address = SocketAddress::ipv4_loopback(0);
        Server server(
            loop,
            [](const Request& r, const RequestContext&) -> Task<Response> {
                Response resp;
                resp.body = r.method + " " + r.target + " " +
                            std::string(r.headers.get("host").value_or(""));
                co_return resp;
            },
            so);
        server.listen();
        std::string port = std::to_string(server.port());
        // "localhost" comes from /etc/hosts: no name server is asked.
        Response named = run(loop, request(loop, "GET", "http://localhost:" + port + "/n"));
        CHECK(named.body == "GET /n localhost:" + port);
        Response head = run(loop, request(loop, "HEAD", "http://127.0.0.1:" + port + "/h"));
        CHECK(head.body.empty());
        CHECK(head.headers.get("content-length").has_value());
        Request prepared;
        prepared.method = "NOTIFY";
        prepared.target = "/evt";
        prepared.headers.add("Host", "device");
        Result<Response> sent = run(loop, try_send(loop, server.local_address(), prepared));
        REQUIRE(sent.ok());
        CHECK(sent->body == "NOTIFY /evt device");
        prepared.headers.remove("Host");
        CHECK(run(loop, try_send(loop, server.local_address(), prepared)).error() ==
              http::errc::missing_host);
        run(loop, server.stop());
    }

    TEST_CASE("bad and non-http URLs are refused before any connection") {
        uvtest::TestLoop loop;
        CHECK_THROWS_AS(run(loop, request(loop, "GET", std::string_view("not a url"))), Error);
        Result<Response> r = run(loop, try_request(loop, "GET", Url::parse("https://127.0.0.1/")));
        CHECK(r.error() == http::errc::bad_url);
    }
}
