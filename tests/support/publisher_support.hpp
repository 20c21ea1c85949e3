// Helpers of the publisher tests: an in-test NOTIFY receiver (an http::Server recording what
// it gets) and a raw SUBSCRIBE sender, so that the publisher is tested with uvgena's own
// http layer and the sans-IO GENA rules, independently of the subscription client.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "uvgena/co/channel.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/gena/event_body.hpp"
#include "uvgena/gena/protocol.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/http/server.hpp"

namespace pubtest {

inline const bool sigpipe_ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();

/// One NOTIFY as a receiver got it.
struct Notify {
    std::string path;  ///< The request path (which callback URL was used).
    std::string sid;
    std::uint32_t seq = 0;
    std::string nt, nts;
    std::string body;
    uvgena::gena::PropertySet properties;        ///< The parsed body.
    std::chrono::steady_clock::time_point at{};  ///< When the whole request had arrived.
};

/// An http::Server on 127.0.0.1 that records every NOTIFY in a channel and answers
/// `status` after `delay`.
class Receiver {
  public:
    explicit Receiver(uv_loop_t* loop, int status = 200,
                      std::chrono::milliseconds delay = std::chrono::milliseconds(0))
        : loop_(loop),
          status_(status),
          delay_(delay),
          notifies_(loop),
          server_(
              loop,
              [this](const uvgena::http::Request& r, const uvgena::http::RequestContext&) {
                  return answer(r);
              },
              options()) {
        server_.listen();
    }

    /// The callback URL for `path`.
    std::string url(std::string_view path = "/notify") const {
        return "http://" + server_.local_address().to_string() + std::string(path);
    }
    /// The NOTIFYs received, in arrival order.
    uvgena::Channel<Notify>& notifies() noexcept { return notifies_; }
    /// Every NOTIFY received so far (also those taken from the channel).
    std::size_t count() const noexcept { return count_; }
    /// Changes the answer (e.g. to make a subscriber fail or slow).
    void set_status(int status) noexcept { status_ = status; }
    /// Changes the delay before answering.
    void set_delay(std::chrono::milliseconds delay) noexcept { delay_ = delay; }
    /// The server.
    uvgena::http::Server& server() noexcept { return server_; }

    /// `co_await receiver.next(limit)`: the next NOTIFY, or throws timed_out.
    uvgena::Task<Notify> next(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        auto item = co_await uvgena::with_timeout(loop_, take(), limit);
        co_return std::move(item);
    }

  private:
    static uvgena::http::ServerOptions options() {
        uvgena::http::ServerOptions o;
        o.address = uvgena::SocketAddress::ipv4_loopback(0);
        return o;
    }

    uvgena::Task<Notify> take() {
        auto item = co_await notifies_.next();
        if (!item) throw uvgena::Error(make_error_code(uvgena::errc::closed), "receiver closed");
        co_return std::move(*item);
    }

    uvgena::Task<uvgena::http::Response> answer(const uvgena::http::Request& r) {
        Notify n;
        n.at = std::chrono::steady_clock::now();
        n.path = r.target;
        n.sid = std::string(r.headers.get("SID").value_or(""));
        n.seq = uvgena::gena::parse_seq(r.headers.get("SEQ").value_or("x")).value_or(99999);
        n.nt = std::string(r.headers.get("NT").value_or(""));
        n.nts = std::string(r.headers.get("NTS").value_or(""));
        n.body = r.body;
        n.properties =
            uvgena::gena::PropertySet::parse(r.body).value_or(uvgena::gena::PropertySet{});
        std::chrono::milliseconds delay = delay_;
        int status = status_;
        ++count_;
        notifies_.push(std::move(n));
        if (delay.count() > 0) co_await uvgena::sleep_for(loop_, delay);
        uvgena::http::Response response;
        response.status = status;
        co_return response;
    }

    uv_loop_t* loop_;
    int status_;
    std::chrono::milliseconds delay_;
    std::size_t count_ = 0;
    uvgena::Channel<Notify> notifies_;
    uvgena::http::Server server_;
};

/// Sends a raw request built by the GENA rules to the publisher's server.
inline uvgena::Task<uvgena::http::Response> send(uv_loop_t* loop, uvgena::SocketAddress address,
                                                 uvgena::http::Request request) {
    auto r = co_await uvgena::http::try_send(loop, address, std::move(request));
    co_return std::move(r).value();
}

/// SUBSCRIBE to `event_url` with `callbacks`.
inline uvgena::Task<uvgena::http::Response> subscribe(
    uv_loop_t* loop, const uvgena::http::Url& event_url, std::vector<std::string> callbacks,
    std::optional<std::chrono::seconds> timeout = std::chrono::seconds(300)) {
    uvgena::gena::SubscribeParams params;
    params.callbacks = std::move(callbacks);
    params.timeout = timeout;
    auto address = uvgena::SocketAddress::parse(event_url.host, event_url.port);
    co_return co_await send(loop, address, uvgena::gena::make_subscribe(event_url, params));
}

}  // namespace pubtest
