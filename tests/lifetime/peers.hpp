// Peers of the teardown harness: raw loopback TCP endpoints that follow the protocol up to a
// chosen request and then stall at a chosen step of the exchange, so that the object under
// test is suspended exactly there when the harness starts destroying things.
#pragma once

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/net/tcp.hpp"

namespace lifetime {

/// Every timeout and bound of the harness, stretched 10x under valgrind (CI runs each suite
/// under memcheck too), so that the stalls are still reached before any timeout fires there.
inline std::chrono::milliseconds slow(std::chrono::milliseconds d) {
    static const int factor = [] {
        const char* preload = std::getenv("LD_PRELOAD");
        return preload != nullptr &&
                       std::string_view(preload).find("vgpreload") != std::string_view::npos
                   ? 10
                   : 1;
    }();
    return d * factor;
}

inline const bool sigpipe_ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();

/// Where an exchange stops. The same steps apply to a peer answering a request (server
/// side) and to a peer sending one (client side).
enum class Step {
    silent,        ///< Connected, nothing sent back.
    mid_headers,   ///< Half of the head, no blank line.
    headers_only,  ///< A complete head announcing a body that never comes.
    half_body,     ///< Half of the announced body.
    close_mid,     ///< Half of the head, then the connection closes.
};
inline constexpr Step kSteps[] = {Step::silent, Step::mid_headers, Step::headers_only,
                                  Step::half_body, Step::close_mid};

inline const char* to_string(Step s) {
    switch (s) {
        case Step::silent:
            return "silent";
        case Step::mid_headers:
            return "mid_headers";
        case Step::headers_only:
            return "headers_only";
        case Step::half_body:
            return "half_body";
        case Step::close_mid:
            return "close_mid";
    }
    return "?";
}

/// A minimal valid device description (for fetch_description).
inline std::string description_xml() {
    return R"(<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
  <specVersion><major>1</major><minor>0</minor></specVersion>
  <device>
    <deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType>
    <friendlyName>lifetime</friendlyName>
    <UDN>uuid:00000000-0000-0000-0000-00000000cafe</UDN>
    <serviceList><service>
      <serviceType>urn:schemas-upnp-org:service:RenderingControl:1</serviceType>
      <serviceId>urn:upnp-org:serviceId:RenderingControl</serviceId>
      <SCPDURL>/rc.xml</SCPDURL><controlURL>/rc/control</controlURL>
      <eventSubURL>/event</eventSubURL>
    </service></serviceList>
  </device>
</root>
)";
}

inline std::string property_set(int value) {
    return "<?xml version=\"1.0\"?><e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\">"
           "<e:property><Volume>" +
           std::to_string(value) + "</Volume></e:property></e:propertyset>";
}

/// Reads one request or response head plus its Content-Length body; "" on EOF first.
inline uvgena::Task<std::string> read_message(uvgena::TcpStream& s) {
    std::string buf;
    std::size_t head_end = std::string::npos;
    std::size_t want = 0;
    for (;;) {
        if (head_end == std::string::npos) {
            head_end = buf.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                head_end += 4;
                std::string lower = buf.substr(0, head_end);
                for (char& c : lower) c = static_cast<char>(std::tolower(c));
                auto at = lower.find("content-length:");
                if (at != std::string::npos) want = std::stoul(lower.substr(at + 15));
            }
        }
        if (head_end != std::string::npos && buf.size() >= head_end + want) co_return buf;
        std::string_view v = co_await s.read_some();
        if (v.empty()) co_return std::string{};
        buf.append(v);
    }
}

inline std::string header_value(const std::string& message, std::string_view name) {
    std::string lower = message;
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    std::string key = "\r\n" + std::string(name) + ":";
    auto at = lower.find(key);
    if (at == std::string::npos) return {};
    auto start = at + key.size();
    auto end = message.find("\r\n", start);
    std::string v = message.substr(start, end - start);
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    return v;
}

/// A device (or a NOTIFY receiver): answers requests number 0 .. stall_at-1 (counted over
/// every connection) as a well-behaved peer, and stops at `step` on request `stall_at`.
/// A SUBSCRIBE answered in full is followed by an initial NOTIFY to its CALLBACK; on
/// reaching the stall it sends two more NOTIFYs (accepted in one turn by the listener), so
/// that events are in flight while the harness destroys things.
class StallPeer {
  public:
    StallPeer(uv_loop_t* loop, Step step, int stall_at)
        : loop_(loop),
          step_(step),
          stall_at_(stall_at),
          listener_(uvgena::TcpListener::bind(loop, uvgena::SocketAddress::ipv4_loopback(0))),
          scope_(loop, [](std::exception_ptr) {}) {
        scope_.spawn(accept_all(this));
    }
    std::string url(std::string_view path = "/event") const {
        return "http://127.0.0.1:" + std::to_string(listener_.port()) + std::string(path);
    }
    /// Times the stall was reached.
    int stalled() const noexcept { return stalled_.load(); }
    /// Requests answered in full.
    int answered() const noexcept { return answered_.load(); }
    /// Closes everything (what a peer that gives up does) and waits for its tasks.
    uvgena::Task<void> close() {
        listener_.close();
        for (auto& s : held_) s->close();
        scope_.request_stop();
        co_await scope_.join();
        held_.clear();
    }

  private:
    static uvgena::Task<void> accept_all(StallPeer* self) {
        for (;;) {
            auto s = std::make_unique<uvgena::TcpStream>(co_await self->listener_.accept());
            self->held_.push_back(std::move(s));
            self->scope_.spawn(serve(self, self->held_.back().get()));
        }
    }

    static uvgena::Task<void> serve(StallPeer* self, uvgena::TcpStream* s) {
        for (;;) {
            std::string req = co_await read_message(*s);
            if (req.empty()) co_return;
            int index = self->requests_++;
            std::string method = req.substr(0, req.find(' '));
            std::string callback = header_value(req, "callback");
            if (!callback.empty()) {
                self->callback_ = callback.substr(1, callback.find('>') - 1);
            }
            std::string sid = header_value(req, "sid");
            if (sid.empty()) sid = "uuid:lifetime-" + std::to_string(index + 1);
            if (index < self->stall_at_) {
                std::string answer;
                if (method == "GET") {
                    std::string body = description_xml();
                    answer = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body;
                } else if (method == "SUBSCRIBE") {
                    answer = "HTTP/1.1 200 OK\r\nSID: " + sid +
                             "\r\nTIMEOUT: Second-300\r\nContent-Length: 0\r\n\r\n";
                } else {
                    answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                }
                co_await s->write(std::move(answer));
                ++self->answered_;
                if (method == "SUBSCRIBE" && header_value(req, "sid").empty()) {
                    self->sid_ = sid;
                    self->scope_.spawn(notify(self, self->callback_, sid, self->seq_++));
                }
                continue;
            }
            // The stall. Events for the subscription (granted or about to be) first.
            if (!self->callback_.empty() && method != "NOTIFY") {
                std::string esid = self->sid_.empty() ? sid : self->sid_;
                self->scope_.spawn(notify(self, self->callback_, esid, self->seq_++));
                self->scope_.spawn(notify(self, self->callback_, esid, self->seq_++));
            }
            std::string head = "HTTP/1.1 200 OK\r\nSID: " + sid + "\r\nTIMEOUT: Second-300\r\n";
            switch (self->step_) {
                case Step::silent:
                    break;
                case Step::mid_headers:
                    co_await s->write(head.substr(0, 24));
                    break;
                case Step::headers_only:
                    co_await s->write(head + "Content-Length: 64\r\n\r\n");
                    break;
                case Step::half_body:
                    co_await s->write(head + "Content-Length: 64\r\n\r\n" + std::string(32, 'x'));
                    break;
                case Step::close_mid:
                    co_await s->write(head.substr(0, 24));
                    s->close();
                    break;
            }
            ++self->stalled_;
            // Hold the connection (no further reading) until close().
            co_await uvgena::sleep_for(self->loop_, std::chrono::hours(1));
        }
    }

    static uvgena::Task<void> notify(StallPeer* self, std::string url, std::string sid,
                                     std::uint32_t seq) {
        uvgena::http::Headers h;
        h.set("CONTENT-TYPE", "text/xml; charset=\"utf-8\"");
        h.set("NT", "upnp:event");
        h.set("NTS", "upnp:propchange");
        h.set("SID", sid);
        h.set("SEQ", std::to_string(seq));
        uvgena::http::ClientOptions o;
        o.connect_timeout = slow(std::chrono::milliseconds(100));
        o.timeout = slow(std::chrono::milliseconds(100));
        (void)co_await uvgena::http::try_request(self->loop_, "NOTIFY",
                                                 uvgena::http::Url::parse(url), std::move(h),
                                                 property_set(static_cast<int>(seq)), o);
    }

    uv_loop_t* loop_;
    Step step_;
    int stall_at_;
    uvgena::TcpListener listener_;
    std::vector<std::unique_ptr<uvgena::TcpStream>> held_;
    std::string callback_;
    std::string sid_;
    std::uint32_t seq_ = 0;
    int requests_ = 0;
    std::atomic<int> stalled_{0};
    std::atomic<int> answered_{0};
    uvgena::Scope scope_;
};

/// A client that connects to `port` and sends `request` only up to `step`, then holds the
/// connection (or closes it, for close_mid) until close().
class StallClient {
  public:
    StallClient(uv_loop_t* loop, std::uint16_t port, Step step, std::string request_head)
        : scope_(loop, [](std::exception_ptr) {}) {
        scope_.spawn(run(this, loop, port, step, std::move(request_head)));
    }
    bool stalled() const noexcept { return stalled_; }
    uvgena::Task<void> close() {
        stream_.close();
        scope_.request_stop();
        co_await scope_.join();
    }

  private:
    static uvgena::Task<void> run(StallClient* self, uv_loop_t* loop, std::uint16_t port, Step step,
                                  std::string head) {
        self->stream_ = co_await uvgena::connect(loop, uvgena::SocketAddress::ipv4_loopback(port));
        std::string full = head + "Content-Length: 200\r\n\r\n";
        switch (step) {
            case Step::silent:
                break;
            case Step::mid_headers:
                co_await self->stream_.write(head.substr(0, head.size() / 2));
                break;
            case Step::headers_only:
                co_await self->stream_.write(full);
                break;
            case Step::half_body:
                co_await self->stream_.write(full + std::string(100, 'x'));
                break;
            case Step::close_mid:
                co_await self->stream_.write(head.substr(0, head.size() / 2));
                self->stream_.close();
                break;
        }
        self->stalled_ = true;
    }

    uvgena::TcpStream stream_;
    bool stalled_ = false;
    uvgena::Scope scope_;
};

}  // namespace lifetime
