// Helpers shared by the hostile, fault and soak tests: SIGPIPE ignored (attackers and devices
// in the same process write to peers that closed), a bounded wait for a condition, and a
// peer that accepts connections and never answers (a CALLBACK URL or a device that hangs, or
// a witness that must never be contacted).
#pragma once

#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/net/tcp.hpp"

namespace peers {

/// Every test program that includes this ignores SIGPIPE, as every libuv program must.
inline const bool sigpipe_ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();

/// Polls `done` every 5 ms; false if it is still false after `limit`.
template <typename Pred>
uvgena::Task<bool> eventually(uv_loop_t* loop, Pred done,
                              std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto deadline = uvgena::Clock::now() + limit;
    while (!done()) {
        if (uvgena::Clock::now() >= deadline) co_return false;
        co_await uvgena::sleep_for(loop, std::chrono::milliseconds(5));
    }
    co_return true;
}

/// Listens on `address`, accepts every connection and holds it without reading or
/// answering, until close().
class SilentPeer {
  public:
    SilentPeer(uv_loop_t* loop, const uvgena::SocketAddress& address)
        : listener_(uvgena::TcpListener::bind(loop, address)), scope_(loop) {
        scope_.spawn(accept_all(this));
    }
    /// Connections accepted so far.
    std::size_t connections() const noexcept { return held_.size(); }
    /// http://ip:port/cb
    std::string url() const { return "http://" + listener_.local_address().to_string() + "/cb"; }
    /// The bound port.
    std::uint16_t port() const { return listener_.port(); }
    /// Stops listening and closes every held connection.
    uvgena::Task<void> close() {
        listener_.close();
        for (auto& s : held_) s->close();
        co_await scope_.join();
    }

  private:
    static uvgena::Task<void> accept_all(SilentPeer* self) {
        try {
            for (;;) {
                self->held_.push_back(
                    std::make_unique<uvgena::TcpStream>(co_await self->listener_.accept()));
            }
        } catch (const uvgena::Error&) {
            // closed
        }
    }

    uvgena::TcpListener listener_;
    std::vector<std::unique_ptr<uvgena::TcpStream>> held_;
    uvgena::Scope scope_;
};

}  // namespace peers
