// A small GENA device for end-to-end tests, on uvgena's http::Server and the gena sans-IO
// device-side functions: it accepts SUBSCRIBE / renewal / UNSUBSCRIBE, sends the initial
// event (SEQ 0) and later events, and its behaviour can be bent to provoke each failure
// path (refusals, 412 on renewal, an initial event that overtakes the SUBSCRIBE answer, ...).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/gena/event_builder.hpp"
#include "uvgena/gena/protocol.hpp"
#include "uvgena/gena/seq.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/http/server.hpp"
#include "uvgena/subscriber/listener.hpp"

namespace gena_test {

/// Options of a NOTIFY listener on loopback, on any free port.
inline uvgena::gena::ListenerOptions loopback() {
    uvgena::gena::ListenerOptions o;
    o.listen_host = "127.0.0.1";
    o.port = 0;
    return o;
}

/// One subscription as the device sees it.
struct DeviceSubscription {
    std::string sid;
    uvgena::http::Url callback;
    std::uint32_t next_seq = 0;
    std::chrono::seconds timeout{0};
};

/// A hand-made GENA device serving one event URL (`/event`) on 127.0.0.1, scripted by each
/// test (SIDs, SEQs, refusals, stalls): not built on the publisher, so that it can misbehave.
/// (uvtest::TestDevice is the well-behaved demo renderer.)
class ScriptedDevice {
  public:
    explicit ScriptedDevice(uv_loop_t* loop, std::uint16_t port = 0)
        : ScriptedDevice(loop, uvgena::SocketAddress::ipv4_loopback(port)) {}

    /// A device listening on `address` (e.g. [::1]:0).
    ScriptedDevice(uv_loop_t* loop, uvgena::SocketAddress address)
        : loop_(loop),
          scope_(loop),
          server_(
              loop,
              [this](const uvgena::http::Request& r, const uvgena::http::RequestContext&) {
                  return handle(this, r);
              },
              options(address)) {
        server_.listen();
    }

    /// The event subscription URL.
    std::string event_url() const {
        auto local = server_.local_address();
        std::string host = local.is_ipv6() ? "[" + local.ip() + "]" : local.ip();
        return "http://" + host + ":" + std::to_string(server_.port()) + "/event";
    }
    /// The port.
    std::uint16_t port() const { return server_.port(); }

    // --- behaviour --------------------------------------------------------------------
    /// The evented variables (the initial event carries all of them).
    std::vector<std::pair<std::string, std::string>> variables{{"Volume", "10"}};
    /// Send the initial event after accepting a SUBSCRIBE.
    bool initial_event = true;
    /// Send it (and wait for its answer) before answering the SUBSCRIBE, as single-threaded
    /// devices do.
    bool initial_before_answer = false;
    /// SEQs to send (in this order) before answering a SUBSCRIBE, instead of the initial
    /// event alone (e.g. {1, 0}: two events that both overtake the answer, out of order).
    std::vector<std::uint32_t> seqs_before_answer;
    /// Before answering, also send a NOTIFY with a SID that will never be granted.
    bool foreign_before_answer = false;
    /// Answer renewals with a new SID (the old one is forgotten).
    bool renew_new_sid = false;
    /// Send NOTIFYs from this local address (e.g. 127.0.0.2 to look like another host).
    std::optional<uvgena::SocketAddress> send_from;
    /// Status to answer SUBSCRIBE with (200: accept).
    int subscribe_status = 200;
    /// Status to answer renewals with (200: accept; 412 forgets the subscription).
    int renew_status = 200;
    /// Time taken to answer each renewal (to keep renewals in flight).
    std::chrono::milliseconds renew_delay{0};
    /// Duration granted when the request asks for none.
    std::chrono::seconds default_grant{300};
    /// Smallest duration granted.
    std::chrono::seconds min_grant{1};

    // --- what happened ----------------------------------------------------------------
    std::vector<DeviceSubscription> subscriptions;
    int subscribes = 0, renewals = 0, unsubscribes = 0;
    int renewals_in_progress = 0, max_renewals_in_progress = 0;
    std::vector<int> notify_statuses;  ///< Answers to every NOTIFY sent.
    std::vector<std::string> callbacks_seen;
    std::vector<std::optional<std::string>> timeouts_requested;

    /// Sends an event with `vars` to every subscription (SEQ in order); returns when each
    /// NOTIFY was answered.
    uvgena::Task<void> notify_all(std::vector<std::pair<std::string, std::string>> vars) {
        std::string body = body_of(vars);
        for (std::size_t i = 0; i < subscriptions.size(); ++i) {
            co_await notify(subscriptions[i], body);
        }
    }

    /// Sends one NOTIFY with `body` to `sub` (SEQ `seq`, else the next); returns the status.
    uvgena::Task<int> notify(DeviceSubscription& sub, std::string body,
                             std::optional<std::uint32_t> seq = std::nullopt) {
        std::uint32_t s = seq.value_or(sub.next_seq);
        if (!seq) sub.next_seq = uvgena::gena::next_seq(sub.next_seq);
        co_return co_await send(sub.callback, sub.sid, s, std::move(body));
    }

    /// Sends a raw NOTIFY (any SID / SEQ) to `callback`; returns the status (0: no answer).
    uvgena::Task<int> send(uvgena::http::Url callback, std::string sid, std::uint32_t seq,
                           std::string body) {
        uvgena::http::Request request =
            uvgena::gena::make_notify(callback, sid, seq, std::move(body));
        auto address = uvgena::SocketAddress::parse(
            callback.zone.empty() ? callback.host : callback.host + "%" + callback.zone,
            callback.port);
        uvgena::http::ClientOptions options;
        options.local_address = send_from;
        auto response =
            co_await uvgena::http::try_send(loop_, address, std::move(request), options);
        int status = response ? response->status : 0;
        notify_statuses.push_back(status);
        co_return status;
    }

    /// The property set for `vars`.
    static std::string body_of(const std::vector<std::pair<std::string, std::string>>& vars) {
        std::vector<uvgena::gena::NameValue> nv;
        for (const auto& [n, v] : vars) nv.push_back({n, v});
        return uvgena::gena::build_property_set(nv);
    }

    /// The subscription with this SID, or nullptr.
    DeviceSubscription* find(std::string_view sid) {
        for (auto& s : subscriptions) {
            if (s.sid == sid) return &s;
        }
        return nullptr;
    }

    /// Forgets every subscription (a reboot).
    void forget_all() { subscriptions.clear(); }

    /// Stops the server and waits for background sends.
    uvgena::Task<void> stop() {
        co_await server_.stop(std::chrono::milliseconds(100));
        co_await scope_.join();
    }

  private:
    static uvgena::http::ServerOptions options(uvgena::SocketAddress address) {
        uvgena::http::ServerOptions o;
        o.address = address;
        return o;
    }

    static uvgena::Task<void> send_initial(ScriptedDevice* self, std::string sid) {
        DeviceSubscription* sub = self->find(sid);
        if (sub == nullptr) co_return;
        DeviceSubscription copy = *sub;
        sub->next_seq = 1;
        co_await self->send(copy.callback, copy.sid, 0, body_of(self->variables));
    }

    static uvgena::Task<uvgena::http::Response> handle(ScriptedDevice* self,
                                                       const uvgena::http::Request& request) {
        using namespace uvgena::gena;
        SubscriptionPolicy policy;
        policy.min_timeout = self->min_grant;
        policy.default_timeout = self->default_grant;
        SubscriptionDecision d = check_subscription_request(
            request, policy, [self](std::string_view sid) { return self->find(sid) != nullptr; });
        if (!d.accepted()) co_return make_error_response(d.status);
        switch (d.action) {
            case SubscriptionAction::subscribe: {
                ++self->subscribes;
                self->callbacks_seen.push_back(std::string(*request.headers.get("CALLBACK")));
                auto t = request.headers.get("TIMEOUT");
                self->timeouts_requested.push_back(t ? std::optional<std::string>(std::string(*t))
                                                     : std::nullopt);
                if (self->subscribe_status != 200) {
                    co_return make_error_response(self->subscribe_status);
                }
                DeviceSubscription sub{make_sid(), d.callbacks.front(), 0, d.timeout};
                self->subscriptions.push_back(sub);
                if (self->foreign_before_answer) {
                    co_await self->send(sub.callback, make_sid(), 0, body_of(self->variables));
                }
                if (!self->seqs_before_answer.empty()) {
                    std::string body = body_of(self->variables);
                    for (std::uint32_t seq : self->seqs_before_answer) {
                        co_await self->send(sub.callback, sub.sid, seq, body);
                        if (DeviceSubscription* s = self->find(sub.sid)) {
                            s->next_seq = std::max(s->next_seq, seq + 1);
                        }
                    }
                } else if (self->initial_event) {
                    if (self->initial_before_answer) {
                        co_await send_initial(self, sub.sid);
                    } else {
                        self->scope_.spawn(send_initial(self, sub.sid));
                    }
                }
                co_return make_subscribe_response(sub.sid, d.timeout);
            }
            case SubscriptionAction::renew: {
                ++self->renewals;
                if (self->renew_delay > std::chrono::milliseconds(0)) {
                    ++self->renewals_in_progress;
                    self->max_renewals_in_progress =
                        std::max(self->max_renewals_in_progress, self->renewals_in_progress);
                    co_await uvgena::sleep_for(self->loop_, self->renew_delay);
                    --self->renewals_in_progress;
                }
                if (self->renew_status != 200) {
                    if (self->renew_status == 412) {
                        std::erase_if(self->subscriptions,
                                      [&](const DeviceSubscription& s) { return s.sid == d.sid; });
                    }
                    co_return make_error_response(self->renew_status);
                }
                DeviceSubscription* sub = self->find(d.sid);
                if (sub == nullptr) co_return make_error_response(412);
                sub->timeout = d.timeout;
                if (self->renew_new_sid) sub->sid = make_sid();
                co_return make_subscribe_response(sub->sid, d.timeout);
            }
            case SubscriptionAction::unsubscribe: {
                ++self->unsubscribes;
                std::erase_if(self->subscriptions,
                              [&](const DeviceSubscription& s) { return s.sid == d.sid; });
                uvgena::http::Response ok;
                co_return ok;
            }
        }
        co_return make_error_response(500);
    }

    uv_loop_t* loop_;
    uvgena::Scope scope_;
    uvgena::http::Server server_;
};

}  // namespace gena_test
