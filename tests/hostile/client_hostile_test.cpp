// A hostile or broken device answering the subscription client, over real loopback sockets:
// each scripted answer to SUBSCRIBE and its expected outcome (a clear error, or a usable
// subscription with the damage contained).
#include <doctest/doctest.h>

#include <csignal>

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/http/error.hpp"
#include "uvgena/net/tcp.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

// The scripted device writes to a client that may have given up; as in every libuv program,
// SIGPIPE must be ignored (see SECURITY.md).
[[maybe_unused]] const bool sigpipe_ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();

// What the scripted device does with a request it has read completely.
struct Script {
    std::string subscribe_answer;      // raw bytes written to a SUBSCRIBE
    bool answer_subscribe = true;      // false: read it, then never answer (until stopped)
    bool close_after_partial = false;  // write half of the answer, then close
};

// A fake device on 127.0.0.1: answers SUBSCRIBE with the script, UNSUBSCRIBE with 200.
class ScriptedDevice {
  public:
    ScriptedDevice(uv_loop_t* loop, Script script)
        : script_(std::move(script)),
          listener_(TcpListener::bind(loop, SocketAddress::ipv4_loopback(0))),
          scope_(loop) {
        scope_.spawn(accept_loop(this));
    }

    std::string url() const {
        return "http://127.0.0.1:" + std::to_string(listener_.port()) + "/event";
    }
    int subscribes = 0;
    int unsubscribes = 0;

    Task<void> stop() {
        listener_.close();
        for (TcpStream* s : open_) s->close();
        co_await scope_.join();
    }

  private:
    static Task<void> accept_loop(ScriptedDevice* self) {
        while (true) {
            TcpStream stream;
            try {
                stream = co_await self->listener_.accept();
            } catch (const Error&) {
                co_return;  // closed by stop()
            }
            self->scope_.spawn(serve(self, std::make_unique<TcpStream>(std::move(stream))));
        }
    }

    static Task<void> serve(ScriptedDevice* self, std::unique_ptr<TcpStream> stream) {
        self->open_.push_back(stream.get());
        std::string request;
        std::vector<char> buf(4096);
        try {
            while (request.find("\r\n\r\n") == std::string::npos) {
                std::size_t n = co_await stream->read(std::span<char>(buf));
                if (n == 0) break;
                request.append(buf.data(), n);
            }
            if (request.starts_with("UNSUBSCRIBE")) {
                ++self->unsubscribes;
                co_await stream->write(
                    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            } else if (request.starts_with("SUBSCRIBE")) {
                ++self->subscribes;
                const Script& s = self->script_;
                if (!s.answer_subscribe) {
                    // Hold the connection without a byte of answer until stop() closes it.
                    (void)co_await stream->read(std::span<char>(buf));
                } else if (s.close_after_partial) {
                    co_await stream->write(
                        s.subscribe_answer.substr(0, s.subscribe_answer.size() / 2));
                } else {
                    co_await stream->write(std::string_view(s.subscribe_answer));
                }
            }
        } catch (const Error&) {
        }
        std::erase(self->open_, stream.get());
        stream->close();
    }

    Script script_;
    TcpListener listener_;
    std::vector<TcpStream*> open_;
    Scope scope_;
};

ListenerOptions loopback() {
    ListenerOptions o;
    o.listen_host = "127.0.0.1";
    o.port = 0;
    return o;
}

std::string answer(const std::string& status_line, const std::string& headers,
                   const std::string& body = {}) {
    return "HTTP/1.1 " + status_line + "\r\n" + headers +
           "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
           body;
}

// Subscribes to a device following `script`; returns the error code (empty on success,
// then the subscription's granted timeout is in `granted`).
std::error_code try_subscribe(Script script, gena::Timeout* granted = nullptr) {
    uvtest::TestLoop loop;
    std::error_code result;
    run(loop, [](uv_loop_t* l, Script s, std::error_code* out, gena::Timeout* g) -> Task<void> {
        ScriptedDevice device(l, std::move(s));
        EventListener listener(l, loopback());
        try {
            Subscription sub = co_await subscribe(
                l, device.url(),
                {.requested_timeout = 300s, .listener = &listener, .timeout = 500ms});
            if (g != nullptr) *g = sub.timeout();
            co_await sub.unsubscribe(false);
        } catch (const Error& e) {
            *out = e.code();
            CHECK(std::string(e.what()).find(device.url()) != std::string::npos);
        }
        CHECK(listener.subscription_count() == 0);
        co_await listener.stop();
        co_await device.stop();
    }(loop, std::move(script), &result, granted));
    return result;
}

}  // namespace

TEST_SUITE("hostile.client") {
    TEST_CASE("a 200 without SID fails subscribe with missing_sid") {
        CHECK(try_subscribe({answer("200 OK", "TIMEOUT: Second-300\r\n")}) ==
              gena::errc::missing_sid);
        CHECK(try_subscribe({answer("200 OK", "SID:   \r\nTIMEOUT: Second-300\r\n")}) ==
              gena::errc::missing_sid);
    }

    TEST_CASE("a huge TIMEOUT is capped and a negative one is taken as the requested value") {
        gena::Timeout granted;
        CHECK_FALSE(try_subscribe(
            {answer("200 OK", "SID: uuid:a\r\nTIMEOUT: Second-99999999999999999999\r\n")},
            &granted));
        CHECK_FALSE(granted.infinite);
        CHECK(granted.seconds == std::chrono::seconds(2147483647));
        CHECK_FALSE(
            try_subscribe({answer("200 OK", "SID: uuid:a\r\nTIMEOUT: Second--5\r\n")}, &granted));
        CHECK(granted == gena::Timeout{false, 300s});
        CHECK_FALSE(
            try_subscribe({answer("200 OK", "SID: uuid:a\r\nTIMEOUT: Second-0\r\n")}, &granted));
        CHECK(granted == gena::Timeout{false, 300s});
    }

    TEST_CASE("a garbage answer fails subscribe with an HTTP parse error") {
        std::error_code e = try_subscribe({"HTTP/1.1 200 OK\r\nSID uuid:no-colon\r\n\r\n"});
        CHECK(e);
        CHECK(e.category() == http::http_category());
        static constexpr char kJunk[] = "\x00\x01\xff garbage\r\n\r\n";
        std::error_code junk = try_subscribe({std::string(kJunk, sizeof kJunk - 1)});
        CHECK(junk);
        CHECK(junk.category() == http::http_category());
    }

    TEST_CASE("a device that accepts and never answers fails subscribe at the exchange timeout") {
        Script s;
        s.answer_subscribe = false;
        std::error_code e = try_subscribe(s);
        CHECK(is_timeout(e));
    }

    TEST_CASE("a device that closes mid-response fails subscribe as truncated") {
        Script s{answer("200 OK", "SID: uuid:a\r\nTIMEOUT: Second-300\r\n", std::string(64, 'b'))};
        s.close_after_partial = true;
        std::error_code e = try_subscribe(s);
        CHECK(e);
        CHECK(e.category() == http::http_category());
    }

    TEST_CASE("500, 503 and 412 answers fail subscribe with the matching GENA error") {
        CHECK(try_subscribe({answer("500 Internal Server Error", "")}) == gena::errc::server_error);
        CHECK(try_subscribe({answer("503 Service Unavailable", "")}) == gena::errc::server_error);
        CHECK(try_subscribe({answer("412 Precondition Failed", "")}) ==
              gena::errc::precondition_failed);
    }
}
