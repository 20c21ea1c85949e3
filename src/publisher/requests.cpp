// The publisher's HTTP front: SUBSCRIBE, renewal and UNSUBSCRIBE requests checked by the
// sans-IO rules (gena/protocol, gena/callback_policy) and applied to the subscription table.
#include "publisher/publisher_impl.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/core/strings.hpp"
#include "uvgena/http/client.hpp"

namespace uvgena::gena {

std::string_view detail::path_of(std::string_view target) noexcept {
    if (target.size() > 7 && istarts_with(target, "http://")) {
        std::size_t slash = target.find('/', 7);
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    if (std::size_t q = target.find_first_of("?#"); q != std::string_view::npos) {
        target = target.substr(0, q);
    }
    return target;
}

http::Response Publisher::Impl::handle(const http::Request& request,
                                       const http::RequestContext& context) {
    Service::Impl* service = find_service(detail::path_of(request.target));
    if (service == nullptr) {
        http::Response r;
        r.status = 404;
        return r;
    }
    if (stopped) return make_error_response(503);
    Clock::time_point now = Clock::now();
    SubscriptionDecision decision =
        check_subscription_request(request, options.policy, [&](std::string_view sid) {
            auto it = by_sid.find(std::string(sid));
            return it != by_sid.end() && live(*it->second, service, now);
        });
    if (!decision.accepted()) {
        ++stats.rejected;
        http::Response r = make_error_response(decision.status);
        if (decision.status == 405) r.headers.add("Allow", "SUBSCRIBE, UNSUBSCRIBE");
        if (log_enabled(LogLevel::debug)) {
            log(LogLevel::debug, "gena publisher: ", request.method, " ", request.target, " from ",
                context.peer, " refused with ", decision.status, ": ", decision.reason.message());
        }
        return r;
    }
    switch (decision.action) {
        case SubscriptionAction::subscribe:
            return subscribe(*service, decision, context);
        case SubscriptionAction::renew: {
            const std::shared_ptr<Subscriber>& sub = by_sid.at(decision.sid);
            sub->timeout = decision.timeout;
            sub->expires = now + decision.timeout;
            ++stats.renewals;
            if (log_enabled(LogLevel::info)) {
                log(LogLevel::info, "gena publisher: renewed ", sub->sid, " of ",
                    service->event_path, " from ", context.peer.ip(), " for ",
                    decision.timeout.count(), " s");
            }
            return make_subscribe_response(sub->sid, decision.timeout, options.server);
        }
        case SubscriptionAction::unsubscribe: {
            if (log_enabled(LogLevel::info)) {
                log(LogLevel::info, "gena publisher: unsubscribed ", decision.sid, " of ",
                    service->event_path, " from ", context.peer.ip());
            }
            remove(by_sid.at(decision.sid));
            ++stats.unsubscribes;
            return http::Response{};
        }
    }
    return make_error_response(500);
}

// The service is full. A requester holding fewer of its subscriptions than the host holding
// the most (by requesting address) still gets in: that host loses its subscription that
// expires first (it learns at its next renewal, 412, and may subscribe again while it is not
// the largest). A requester that is itself among the largest is refused (503).
bool Publisher::Impl::make_room(Service::Impl& service, const std::string& requester) {
    std::size_t own = 0;
    if (auto it = service.per_host.find(requester); it != service.per_host.end()) own = it->second;
    const std::string* largest = nullptr;
    std::size_t most = 0;
    for (const auto& [host, count] : service.per_host) {
        if (count > most) {
            most = count;
            largest = &host;
        }
    }
    if (largest == nullptr || most <= own + 1) return false;
    std::shared_ptr<Subscriber> victim;
    for (const auto& sub : service.subscribers) {
        if (sub->host_key == *largest && (!victim || sub->expires < victim->expires)) victim = sub;
    }
    if (!victim) return false;
    log(LogLevel::warning, "gena publisher: ", service.event_path, " full: subscription ",
        victim->sid, " of ", victim->host_key, " (", most, " subscriptions) evicted for ",
        requester, " (", own, ")");
    ++stats.evicted;
    remove(victim);
    return true;
}

http::Response Publisher::Impl::subscribe(Service::Impl& service, SubscriptionDecision& decision,
                                          const http::RequestContext& context) {
    CallbackCheck check{context.peer, context.local, interfaces.get(), options.callback_scope,
                        options.allowed_callback_networks};
    std::vector<detail::Target> targets;
    for (http::Url& url : decision.callbacks) {
        std::optional<SocketAddress> address = http::literal_address(url);
        if (!address || !callback_allowed(*address, check)) {
            log(LogLevel::warning, "gena publisher: CALLBACK ", url.to_string(), " from ",
                context.peer.ip(), " refused: ",
                address ? "host outside the allowed scope (CallStranger)"
                        : "host is not an IP address");
            continue;
        }
        targets.push_back({std::move(url), *address});
    }
    if (targets.empty()) {
        ++stats.refused_callbacks;
        return make_error_response(412);
    }
    std::string host_key = context.peer.unmapped().ip();
    if (auto it = per_host.find(host_key);
        it != per_host.end() && it->second >= options.max_subscriptions_per_host) {
        ++stats.over_limit;
        log(LogLevel::warning, "gena publisher: ", host_key, " has ", it->second,
            " subscriptions: SUBSCRIBE refused");
        return make_error_response(503);
    }
    if (service.subscribers.size() >= options.max_subscriptions_per_service &&
        !make_room(service, host_key)) {
        ++stats.over_limit;
        log(LogLevel::warning, "gena publisher: ", service.event_path, " has ",
            service.subscribers.size(), " subscriptions: SUBSCRIBE from ", host_key, " refused");
        return make_error_response(503);
    }

    auto sub = std::make_shared<Subscriber>();
    do {
        sub->sid = make_sid();
    } while (by_sid.count(sub->sid) != 0);
    sub->service = &service;
    sub->service_index = service.subscribers.size();
    sub->callbacks = std::move(targets);
    sub->requester = context.peer;
    sub->host_key = host_key;
    // Delivery limits count against the subscribing host too: keyed by a CALLBACK host, an
    // attacker could make a victim's address time out (a filtered port) and throttle the
    // victim's own subscriptions; keyed by requester, a tarpit only costs its own host.
    sub->delivery_host = host_key;
    sub->timeout = decision.timeout;
    sub->expires = Clock::now() + decision.timeout;
    sub->queue.push_back({service.full_state_event(), 0, true});
    service.subscribers.push_back(sub);
    by_sid.emplace(sub->sid, sub);
    ++per_host[host_key];
    ++service.per_host[host_key];
    ++host(sub->delivery_host).subscribers;
    ++stats.subscribes;
    ensure_sweeping();
    if (log_enabled(LogLevel::info)) {
        log(LogLevel::info, "gena publisher: subscribed ", sub->sid, " to ", service.event_path,
            " from ", context.peer.ip(), " for ", decision.timeout.count(), " s, CALLBACK ",
            sub->callbacks.front().url.to_string(),
            sub->callbacks.size() > 1 ? " (+" + std::to_string(sub->callbacks.size() - 1) + " more)"
                                      : std::string());
    }

    http::Response response = make_subscribe_response(sub->sid, decision.timeout, options.server);
    response.on_written = [weak_self = weak_from_this(),
                           weak_sub = std::weak_ptr<Subscriber>(sub)](std::error_code ec) {
        auto self = weak_self.lock();
        auto s = weak_sub.lock();
        if (!self || !s || s->removed) return;
        if (ec) {
            // The subscriber never learnt its SID: nobody would accept the events.
            ++self->stats.unanswered_subscribes;
            self->remove(s);
            return;
        }
        self->activate_later(s);
    };
    return response;
}

}  // namespace uvgena::gena
