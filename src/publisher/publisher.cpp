#include "uvgena/publisher/publisher.hpp"

#include <algorithm>
#include <deque>
#include <stop_token>
#include <unordered_map>
#include <utility>

#include "uvgena/co/async_event.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/core/strings.hpp"
#include "uvgena/gena/seq.hpp"
#include "uvgena/http/client.hpp"

namespace uvgena::gena {
namespace {

using std::chrono::milliseconds;
using EventBody = std::shared_ptr<const std::string>;

// The path of a request-target: the absolute form's authority and any query are dropped.
std::string_view path_of(std::string_view target) noexcept {
    if (target.size() > 7 && istarts_with(target, "http://")) {
        std::size_t slash = target.find('/', 7);
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    if (std::size_t q = target.find_first_of("?#"); q != std::string_view::npos) {
        target = target.substr(0, q);
    }
    return target;
}

// One delivery URL with its address resolved once (CALLBACK hosts are IP literals).
struct Target {
    http::Url url;
    SocketAddress address;
};

// One event waiting in a subscriber's queue. `skip` counts the dropped events just before
// it, whose SEQs it skips so that the subscriber sees the gap.
struct Queued {
    EventBody body;
    std::uint32_t skip = 0;
    bool full_state = false;
};

enum class Delivery { ok, failed, cancelled };

}  // namespace

namespace detail {

// One subscription. Shared by the registry, the service's list and the worker delivering to
// it; `removed` tells the others when it is gone.
struct Subscriber {
    std::string sid;
    Service::Impl* service = nullptr;
    std::size_t service_index = 0;
    std::vector<Target> callbacks;
    SocketAddress requester;
    std::string host_key;
    std::chrono::seconds timeout{0};
    Clock::time_point expires{};
    std::uint32_t next_seq = 0;
    std::deque<Queued> queue;
    bool active = false;   // the SUBSCRIBE response is on the wire
    bool ready = false;    // in the publisher's ready queue
    bool sending = false;  // a NOTIFY is in flight
    bool removed = false;
    std::stop_source stop;
    std::uint64_t delivered = 0, failed = 0, coalesced = 0, dropped = 0;
    unsigned consecutive_failures = 0;
    std::optional<Clock::time_point> failing_since;
};

}  // namespace detail

using detail::Subscriber;

struct Service::Impl {
    struct Variable {
        std::string name;
        std::string value;
        milliseconds min_interval{0};
        Clock::time_point last_emit = Clock::time_point::min();
        bool pending = false;
        bool is_last_change = false;
        bool multicast = false;
    };

    Publisher::Impl* publisher = nullptr;
    std::string event_path;
    std::vector<Variable> variables;
    std::optional<LastChangeState> last_change;
    milliseconds min_interval{0};
    MulticastSink multicast_sink;
    Clock::time_point last_emit = Clock::time_point::min();
    std::vector<std::shared_ptr<Subscriber>> subscribers;
    EventBody full_state;  // cache of the full-state property set; reset by every change
    std::optional<Clock::time_point> flush_at;
    std::stop_source flush_stop;

    Variable* find(std::string_view name) noexcept {
        for (Variable& v : variables) {
            if (v.name == name) return &v;
        }
        return nullptr;
    }

    Variable& require(std::string_view name) {
        Variable* v = find(name);
        if (v == nullptr) {
            throw_error(uvgena::errc::invalid_argument,
                        "service " + event_path + " has no evented variable '" +
                            std::string(name) + "'");
        }
        if (v->is_last_change) {
            throw_error(uvgena::errc::invalid_argument,
                        "LastChange of " + event_path + " is set through set_last_change");
        }
        return *v;
    }

    Variable& last_change_variable() {
        if (!last_change) {
            throw_error(uvgena::errc::invalid_argument,
                        "service " + event_path + " has no LastChange");
        }
        for (Variable& v : variables) {
            if (v.is_last_change) return v;
        }
        throw_error(uvgena::errc::invalid_argument, "service " + event_path + " has no LastChange");
    }

    EventBody full_state_event() {
        if (!full_state) {
            std::string last_change_doc;
            std::vector<NameValue> values;
            values.reserve(variables.size());
            for (const Variable& v : variables) {
                if (v.is_last_change) {
                    last_change_doc = last_change->full_document();
                    values.push_back({v.name, last_change_doc});
                } else {
                    values.push_back({v.name, v.value});
                }
            }
            full_state = std::make_shared<const std::string>(build_property_set(values));
        }
        return full_state;
    }

    void changed(Variable& v) {
        v.pending = true;
        full_state.reset();
    }

    // Emits the pending variables that moderation lets out now (all of them when `force`),
    // as one event, and schedules a flush for the rest.
    void emit_due(bool force);
    void schedule_flush(Clock::time_point when);
    Task<void> flush_later(Clock::time_point when);
};

struct Publisher::Impl : std::enable_shared_from_this<Publisher::Impl> {
    Impl(uv_loop_t* l, PublisherOptions o)
        : loop(l), options(std::move(o)), idle_event(l, true), scope(std::make_unique<Scope>(l)) {
        options.max_queued_events = std::max<std::size_t>(options.max_queued_events, 2);
        options.max_concurrent_notifies = std::max<std::size_t>(options.max_concurrent_notifies, 1);
        options.max_consecutive_failures = std::max(options.max_consecutive_failures, 1u);
    }

    ~Impl() { shutdown(); }

    // Ends everything at once (destructor path).
    void shutdown() noexcept {
        stopped = true;
        server.reset();
        forget_all();
        scope.reset();
    }

    void forget_all() noexcept {
        while (!by_sid.empty()) remove(by_sid.begin()->second);
        ready.clear();
        for (auto& s : services) {
            s->impl_->flush_stop.request_stop();
            s->impl_->flush_at.reset();
        }
    }

    Service::Impl* find_service(std::string_view path) const noexcept {
        for (const auto& s : services) {
            if (s->impl_->event_path == path) return s->impl_.get();
        }
        return nullptr;
    }

    const std::vector<InterfaceNetwork>& interfaces() {
        Clock::time_point now = Clock::now();
        if (!interfaces_read || now - interfaces_read_at > std::chrono::seconds(10)) {
            interface_list = local_interface_networks();
            interfaces_read = true;
            interfaces_read_at = now;
        }
        return interface_list;
    }

    bool live(const Subscriber& s, const Service::Impl* service, Clock::time_point now) const {
        return !s.removed && s.service == service && s.expires > now;
    }

    http::Response handle(const http::Request& request, const http::RequestContext& context);
    http::Response subscribe(Service::Impl& service, SubscriptionDecision& decision,
                             const http::RequestContext& context);

    void remove(std::shared_ptr<Subscriber> sub) noexcept {
        if (sub->removed) return;
        sub->removed = true;
        sub->stop.request_stop();
        sub->queue.clear();
        by_sid.erase(sub->sid);
        if (auto it = per_host.find(sub->host_key); it != per_host.end()) {
            if (--it->second == 0) per_host.erase(it);
        }
        auto& list = sub->service->subscribers;
        std::size_t i = sub->service_index;
        if (i < list.size() && list[i] == sub) {
            if (i + 1 != list.size()) {
                list[i] = std::move(list.back());
                list[i]->service_index = i;
            }
            list.pop_back();
        }
    }

    void activate(const std::shared_ptr<Subscriber>& sub) {
        sub->active = true;
        make_ready(sub);
    }

    void enqueue(const std::shared_ptr<Subscriber>& sub, const EventBody& body) {
        if (sub->removed) return;
        if (sub->queue.size() >= options.max_queued_events) {
            if (options.overflow == QueueOverflow::coalesce) {
                // The full state already holds this change (values are set before events).
                std::size_t merged = sub->queue.size();
                sub->coalesced += merged;
                stats.events_coalesced += merged;
                sub->queue.clear();
                sub->queue.push_back({sub->service->full_state_event(), 0, true});
                make_ready(sub);
                return;
            }
            // Never drop an initial event that has not been sent: SEQ 0 must carry the state.
            std::size_t victim = sub->queue.front().full_state && sub->next_seq == 0 ? 1 : 0;
            std::uint32_t skipped = sub->queue[victim].skip + 1;
            sub->queue.erase(sub->queue.begin() + static_cast<std::ptrdiff_t>(victim));
            ++sub->dropped;
            ++stats.events_dropped;
            if (victim < sub->queue.size()) {
                sub->queue[victim].skip += skipped;
            } else {
                sub->queue.push_back({body, skipped, false});
                make_ready(sub);
                return;
            }
        }
        sub->queue.push_back({body, 0, false});
        make_ready(sub);
    }

    void make_ready(const std::shared_ptr<Subscriber>& sub) {
        if (!sub->active || sub->ready || sub->sending || sub->removed || sub->queue.empty() ||
            stopped) {
            return;
        }
        sub->ready = true;
        ready.push_back(sub);
        idle_event.reset();
        if (ready.size() > workers - busy && workers < options.max_concurrent_notifies) {
            ++workers;
            scope->spawn(worker());
        }
    }

    bool is_idle() const noexcept { return ready.empty() && workers == 0; }

    void maybe_idle() noexcept {
        if (is_idle()) idle_event.set();
    }

    Task<void> worker();
    Task<Delivery> deliver(std::shared_ptr<Subscriber> sub, std::uint32_t seq, EventBody body);
    void record(const std::shared_ptr<Subscriber>& sub, Delivery result);
    Task<void> sweep();
    void ensure_sweeping() {
        if (sweeping || stopped) return;
        sweeping = true;
        scope->spawn(sweep());
    }

    uv_loop_t* loop;
    PublisherOptions options;
    PublisherStats stats;
    std::vector<std::unique_ptr<Service>> services;
    std::unordered_map<std::string, std::shared_ptr<Subscriber>> by_sid;
    std::unordered_map<std::string, std::size_t> per_host;
    std::deque<std::shared_ptr<Subscriber>> ready;
    std::size_t workers = 0;  // worker tasks alive (started or about to start)
    std::size_t busy = 0;     // workers with a NOTIFY in flight
    bool sweeping = false;
    bool stopped = false;
    bool interfaces_read = false;
    Clock::time_point interfaces_read_at{};
    std::vector<InterfaceNetwork> interface_list;
    AsyncEvent idle_event;
    std::unique_ptr<http::Server> server;
    std::unique_ptr<Scope> scope;  // last: its tasks use everything above
};

// ---------------------------------------------------------------------------------------
// Service: moderation and event building

void Service::Impl::emit_due(bool force) {
    Clock::time_point now = Clock::now();
    Publisher::Impl& pub = *publisher;
    std::vector<Variable*> due;
    std::optional<Clock::time_point> next;
    Clock::time_point service_ready = last_emit + min_interval;
    for (Variable& v : variables) {
        if (!v.pending) continue;
        Clock::time_point at = std::max(service_ready, v.last_emit + v.min_interval);
        if (force || at <= now) {
            due.push_back(&v);
        } else if (!next || at < *next) {
            next = at;
        }
    }
    if (!due.empty()) {
        std::vector<NameValue> values;
        values.reserve(due.size());
        std::vector<NameValue> multicast_values;
        std::string last_change_doc;
        for (Variable* v : due) {
            v->pending = false;
            v->last_emit = now;
            if (v->is_last_change) {
                last_change_doc = last_change->take_changes();
                values.push_back({v->name, last_change_doc});
            } else {
                values.push_back({v->name, v->value});
            }
            if (v->multicast) multicast_values.push_back(values.back());
        }
        if (!multicast_values.empty() && multicast_sink) {
            multicast_sink(build_property_set(multicast_values));
        }
        last_emit = now;
        ++pub.stats.events;
        if (!subscribers.empty()) {
            auto body = std::make_shared<const std::string>(build_property_set(values));
            // By index: enqueue never removes a subscriber, but keep the loop independent of it.
            for (std::size_t i = 0; i < subscribers.size(); ++i) pub.enqueue(subscribers[i], body);
        }
        // The service's moderation now holds back whatever is still pending.
        if (next && min_interval.count() > 0) next = std::max(*next, now + min_interval);
    }
    if (next) schedule_flush(*next);
}

void Service::Impl::schedule_flush(Clock::time_point when) {
    if (publisher->stopped) return;
    if (flush_at && *flush_at <= when) return;  // an earlier flush re-evaluates everything
    flush_stop.request_stop();
    flush_stop = std::stop_source();
    flush_at = when;
    publisher->scope->spawn(with_stop_token(flush_later(when), flush_stop.get_token()));
}

Task<void> Service::Impl::flush_later(Clock::time_point when) {
    try {
        co_await sleep_until(publisher->loop, when);
    } catch (const Error& e) {
        if (is_cancelled(e.code())) co_return;
        throw;
    }
    flush_at.reset();
    emit_due(false);
}

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Service::~Service() = default;

const std::string& Service::event_path() const noexcept { return impl_->event_path; }

void Service::set(std::string_view name, std::string value) {
    Impl::Variable& v = impl_->require(name);
    v.value = std::move(value);
    impl_->changed(v);
    impl_->emit_due(false);
}

void Service::set_many(std::span<const NameValue> variables) {
    // Check every name first: all or nothing.
    for (const NameValue& nv : variables) impl_->require(nv.name);
    for (const NameValue& nv : variables) {
        Impl::Variable& v = impl_->require(nv.name);
        v.value = std::string(nv.value);
        impl_->changed(v);
    }
    impl_->emit_due(false);
}

void Service::set_many(std::initializer_list<NameValue> variables) {
    set_many(std::span<const NameValue>(variables.begin(), variables.size()));
}

void Service::set_last_change(std::string_view instance, std::string_view name,
                              std::string_view value,
                              std::initializer_list<NameValue> attributes) {
    Impl::Variable& v = impl_->last_change_variable();
    impl_->last_change->set(instance, name, value, attributes);
    impl_->changed(v);
    impl_->emit_due(false);
}

void Service::update_last_change(const std::function<void(LastChangeState&)>& edit) {
    Impl::Variable& v = impl_->last_change_variable();
    edit(*impl_->last_change);
    if (!impl_->last_change->has_changes()) return;
    impl_->changed(v);
    impl_->emit_due(false);
}

const LastChangeState* Service::last_change() const noexcept {
    return impl_->last_change ? &*impl_->last_change : nullptr;
}

std::optional<std::string> Service::value(std::string_view name) const {
    const Impl::Variable* v = impl_->find(name);
    if (v == nullptr) return std::nullopt;
    if (v->is_last_change) return impl_->last_change->full_document();
    return v->value;
}

void Service::flush() { impl_->emit_due(true); }

std::size_t Service::subscriber_count() const noexcept { return impl_->subscribers.size(); }

// ---------------------------------------------------------------------------------------
// Publisher: requests

http::Response Publisher::Impl::handle(const http::Request& request,
                                       const http::RequestContext& context) {
    Service::Impl* service = find_service(path_of(request.target));
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
            log(LogLevel::debug, "gena publisher: ", request.method, " ", request.target,
                " from ", context.peer, " refused with ", decision.status, ": ",
                decision.reason.message());
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
            return make_subscribe_response(sub->sid, decision.timeout, options.server);
        }
        case SubscriptionAction::unsubscribe: {
            remove(by_sid.at(decision.sid));
            ++stats.unsubscribes;
            return http::Response{};
        }
    }
    return make_error_response(500);
}

http::Response Publisher::Impl::subscribe(Service::Impl& service, SubscriptionDecision& decision,
                                          const http::RequestContext& context) {
    CallbackCheck check{context.peer, context.local, interfaces(), options.callback_scope,
                        options.allowed_callback_networks};
    std::vector<Target> targets;
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
    std::string host_key = context.peer.ip();
    if (service.subscribers.size() >= options.max_subscriptions_per_service) {
        ++stats.over_limit;
        log(LogLevel::warning, "gena publisher: ", service.event_path, " has ",
            service.subscribers.size(), " subscriptions: SUBSCRIBE from ", host_key,
            " refused");
        return make_error_response(503);
    }
    if (auto it = per_host.find(host_key);
        it != per_host.end() && it->second >= options.max_subscriptions_per_host) {
        ++stats.over_limit;
        log(LogLevel::warning, "gena publisher: ", host_key, " has ", it->second,
            " subscriptions: SUBSCRIBE refused");
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
    sub->timeout = decision.timeout;
    sub->expires = Clock::now() + decision.timeout;
    sub->queue.push_back({service.full_state_event(), 0, true});
    service.subscribers.push_back(sub);
    by_sid.emplace(sub->sid, sub);
    ++per_host[host_key];
    ++stats.subscribes;
    ensure_sweeping();

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
        self->activate(s);
    };
    return response;
}

// ---------------------------------------------------------------------------------------
// Publisher: delivery

Task<void> Publisher::Impl::worker() {
    struct Leave {
        Impl* impl;
        ~Leave() {
            --impl->workers;
            impl->maybe_idle();
        }
    } leave{this};
    while (!ready.empty() && !stopped) {
        std::shared_ptr<Subscriber> sub = std::move(ready.front());
        ready.pop_front();
        sub->ready = false;
        if (sub->removed || sub->queue.empty()) continue;
        Queued item = std::move(sub->queue.front());
        sub->queue.pop_front();
        for (std::uint32_t i = 0; i < item.skip; ++i) sub->next_seq = next_seq(sub->next_seq);
        std::uint32_t seq = sub->next_seq;
        sub->next_seq = next_seq(seq);
        sub->sending = true;
        ++busy;
        Delivery result = Delivery::cancelled;
        try {
            result = co_await deliver(sub, seq, std::move(item.body));
        } catch (...) {
            --busy;
            sub->sending = false;
            throw;
        }
        --busy;
        sub->sending = false;
        record(sub, result);
        if (!sub->removed && !sub->queue.empty() && !stopped) {
            sub->ready = true;
            ready.push_back(sub);
        }
    }
}

Task<Delivery> Publisher::Impl::deliver(std::shared_ptr<Subscriber> sub, std::uint32_t seq,
                                        EventBody body) {
    http::ClientOptions client;
    client.connect_timeout = options.notify_connect_timeout;
    client.timeout = options.notify_timeout;
    client.max_response_bytes = 64 * 1024;
    client.stop = sub->stop.get_token();
    for (const Target& target : sub->callbacks) {
        http::Request request = make_notify(target.url, sub->sid, seq, *body);
        Result<http::Response> answer =
            co_await http::try_send(loop, target.address, std::move(request), client);
        if (sub->removed || stopped) co_return Delivery::cancelled;
        if (answer && answer->status >= 200 && answer->status < 300) co_return Delivery::ok;
        if (!answer && is_cancelled(answer.error())) co_return Delivery::cancelled;
        ++stats.callback_failures;
        if (log_enabled(LogLevel::info)) {
            log(LogLevel::info, "gena publisher: NOTIFY SEQ ", seq, " to ", target.url.to_string(),
                " failed: ",
                answer ? "status " + std::to_string(answer->status) : answer.error().message());
        }
        // 412: the subscriber does not know the SID; its other URLs will not either.
        if (answer && answer->status == 412) break;
    }
    co_return Delivery::failed;
}

void Publisher::Impl::record(const std::shared_ptr<Subscriber>& sub, Delivery result) {
    if (result == Delivery::cancelled) return;
    if (result == Delivery::ok) {
        ++sub->delivered;
        ++stats.notifies_sent;
        sub->consecutive_failures = 0;
        sub->failing_since.reset();
        return;
    }
    ++sub->failed;
    ++stats.notifies_failed;
    ++sub->consecutive_failures;
    Clock::time_point now = Clock::now();
    if (!sub->failing_since) sub->failing_since = now;
    if (sub->consecutive_failures >= options.max_consecutive_failures ||
        now - *sub->failing_since >= options.max_failing_time) {
        log(LogLevel::warning, "gena publisher: subscriber ", sub->sid, " of ",
            sub->service->event_path, " dropped after ", sub->consecutive_failures,
            " failed deliveries");
        ++stats.subscribers_dropped;
        remove(sub);
    }
}

Task<void> Publisher::Impl::sweep() {
    struct Leave {
        Impl* impl;
        ~Leave() { impl->sweeping = false; }
    } leave{this};
    while (!by_sid.empty() && !stopped) {
        try {
            co_await sleep_for(loop, options.sweep_interval);
        } catch (const Error& e) {
            if (is_cancelled(e.code())) co_return;
            throw;
        }
        Clock::time_point now = Clock::now();
        std::vector<std::shared_ptr<Subscriber>> expired;
        for (const auto& [sid, sub] : by_sid) {
            if (sub->expires <= now) expired.push_back(sub);
        }
        for (auto& sub : expired) {
            if (log_enabled(LogLevel::info)) {
                log(LogLevel::info, "gena publisher: subscription ", sub->sid, " expired");
            }
            ++stats.expired;
            remove(std::move(sub));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Publisher: the public face

Publisher::Publisher(uv_loop_t* loop, PublisherOptions options)
    : impl_(std::make_shared<Impl>(loop, std::move(options))) {}

Publisher::~Publisher() { impl_->shutdown(); }

Service& Publisher::add_service(ServiceConfig config) {
    if (config.event_path.empty() || config.event_path.front() != '/' ||
        config.event_path.find_first_of("?# \t\r\n") != std::string::npos) {
        throw_error(uvgena::errc::invalid_argument,
                    "event path must be an absolute path: '" + config.event_path + "'");
    }
    if (impl_->find_service(config.event_path) != nullptr) {
        throw_error(uvgena::errc::invalid_argument,
                    "event path already published: " + config.event_path);
    }
    auto impl = std::make_unique<Service::Impl>();
    impl->publisher = impl_.get();
    impl->event_path = std::move(config.event_path);
    impl->min_interval = config.min_interval;
    impl->multicast_sink = std::move(config.multicast_sink);
    for (VariableConfig& v : config.variables) {
        if (!is_valid_variable_name(v.name)) {
            throw_error(uvgena::errc::invalid_argument,
                        "not a valid variable name: '" + v.name + "'");
        }
        if (impl->find(v.name) != nullptr) {
            throw_error(uvgena::errc::invalid_argument, "variable declared twice: " + v.name);
        }
        Service::Impl::Variable variable;
        variable.name = std::move(v.name);
        variable.value = std::move(v.value);
        variable.min_interval = v.min_interval;
        variable.multicast = v.multicast;
        impl->variables.push_back(std::move(variable));
    }
    if (!config.last_change_namespace.empty()) {
        impl->last_change.emplace(std::move(config.last_change_namespace));
        Service::Impl::Variable* v = impl->find("LastChange");
        if (v == nullptr) {
            Service::Impl::Variable variable;
            variable.name = "LastChange";
            impl->variables.push_back(std::move(variable));
            v = &impl->variables.back();
        }
        v->is_last_change = true;
        v->value.clear();
    }
    impl_->services.push_back(std::unique_ptr<Service>(new Service(std::move(impl))));
    return *impl_->services.back();
}

Service* Publisher::find_service(std::string_view event_path) noexcept {
    for (const auto& s : impl_->services) {
        if (s->impl_->event_path == event_path) return s.get();
    }
    return nullptr;
}

bool Publisher::handles(std::string_view target) const noexcept {
    return impl_->find_service(path_of(target)) != nullptr;
}

Task<http::Response> Publisher::handle(const http::Request& request,
                                       const http::RequestContext& context) {
    std::shared_ptr<Impl> keep = impl_;
    co_return keep->handle(request, context);
}

http::Handler Publisher::handler(http::Handler fallback) {
    return [weak = std::weak_ptr<Impl>(impl_), fallback = std::move(fallback)](
               const http::Request& request,
               const http::RequestContext& context) -> Task<http::Response> {
        if (std::shared_ptr<Impl> impl = weak.lock();
            impl && impl->find_service(path_of(request.target)) != nullptr) {
            return [](std::shared_ptr<Impl> self, const http::Request& r,
                      const http::RequestContext& c) -> Task<http::Response> {
                co_return self->handle(r, c);
            }(std::move(impl), request, context);
        }
        if (fallback) return fallback(request, context);
        return []() -> Task<http::Response> {
            http::Response r;
            r.status = 404;
            co_return r;
        }();
    };
}

void Publisher::listen(http::ServerOptions options, http::Handler fallback) {
    if (impl_->server || impl_->stopped) {
        throw_error(uvgena::errc::invalid_argument,
                    "Publisher::listen called twice or after stop");
    }
    auto server = std::make_unique<http::Server>(impl_->loop, handler(std::move(fallback)),
                                                 std::move(options));
    server->listen();
    impl_->server = std::move(server);
}

http::Server* Publisher::server() noexcept { return impl_->server.get(); }

Task<void> Publisher::stop(std::chrono::milliseconds grace) {
    std::shared_ptr<Impl> impl = impl_;
    if (impl->stopped) co_return;
    impl->stopped = true;
    if (impl->server) co_await impl->server->stop(grace);
    impl->forget_all();
    impl->scope->request_stop();
    co_await impl->scope->join();
    impl->maybe_idle();
}

Task<void> Publisher::idle() {
    std::shared_ptr<Impl> impl = impl_;
    while (!impl->is_idle()) co_await impl->idle_event.wait();
}

const PublisherStats& Publisher::stats() const noexcept { return impl_->stats; }

std::size_t Publisher::subscriber_count() const noexcept { return impl_->by_sid.size(); }

namespace {

SubscriberInfo info_of(const Subscriber& s) {
    SubscriberInfo info;
    info.sid = s.sid;
    info.event_path = s.service->event_path;
    for (const Target& t : s.callbacks) info.callbacks.push_back(t.url.to_string());
    info.requester = s.requester;
    info.timeout = s.timeout;
    info.expires = s.expires;
    info.next_seq = s.next_seq;
    info.queued = s.queue.size();
    info.active = s.active;
    info.delivered = s.delivered;
    info.failed = s.failed;
    info.consecutive_failures = s.consecutive_failures;
    info.coalesced = s.coalesced;
    info.dropped = s.dropped;
    return info;
}

}  // namespace

std::vector<SubscriberInfo> Publisher::subscribers() const {
    std::vector<SubscriberInfo> out;
    out.reserve(impl_->by_sid.size());
    for (const auto& s : impl_->services) {
        for (const auto& sub : s->impl_->subscribers) out.push_back(info_of(*sub));
    }
    return out;
}

std::optional<SubscriberInfo> Publisher::subscriber(std::string_view sid) const {
    auto it = impl_->by_sid.find(std::string(sid));
    if (it == impl_->by_sid.end()) return std::nullopt;
    return info_of(*it->second);
}

const PublisherOptions& Publisher::options() const noexcept { return impl_->options; }

uv_loop_t* Publisher::loop() const noexcept { return impl_->loop; }

bool Publisher::set_next_seq_for_testing(std::string_view sid, std::uint32_t seq) {
    auto it = impl_->by_sid.find(std::string(sid));
    if (it == impl_->by_sid.end()) return false;
    it->second->next_seq = seq;
    return true;
}

}  // namespace uvgena::gena
