// Delivery: each subscriber's bounded event queue (coalesce or drop-oldest), the ready
// queue, and the worker tasks that send one NOTIFY per subscriber at a time, in SEQ order,
// up to max_concurrent_notifies at once.
#include <algorithm>

#include "publisher/publisher_impl.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/gena/seq.hpp"
#include "uvgena/http/client.hpp"

namespace uvgena::gena {

using detail::Delivery;
using detail::Queued;
using detail::Target;

void Publisher::Impl::activate(const std::shared_ptr<Subscriber>& sub) {
    sub->active = true;
    make_ready(sub);
}

void Publisher::Impl::activate_later(const std::shared_ptr<Subscriber>& sub) {
    if (stopped || sub->removed) return;
    if (options.initial_event_delay.count() <= 0) {
        activate(sub);
        return;
    }
    ++activating;
    idle_event.reset();
    scope->spawn(with_stop_token(activate_after_delay(sub), sub->stop.get_token()));
}

Task<void> Publisher::Impl::activate_after_delay(std::shared_ptr<Subscriber> sub) {
    struct Leave {
        Impl* impl;
        ~Leave() {
            --impl->activating;
            impl->maybe_idle();
        }
    } leave{this};
    try {
        co_await sleep_for(loop, options.initial_event_delay);
    } catch (const Error& e) {
        if (is_cancelled(e.code())) co_return;
        throw;
    }
    if (!sub->removed && !stopped) activate(sub);
}

void Publisher::Impl::enqueue(const std::shared_ptr<Subscriber>& sub, const EventBody& body) {
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

void Publisher::Impl::make_ready(const std::shared_ptr<Subscriber>& sub) {
    if (!sub->active || sub->ready || sub->parked || sub->sending || sub->removed ||
        sub->queue.empty() || stopped) {
        return;
    }
    sub->ready = true;
    ready.push_back(sub);
    idle_event.reset();
    ensure_workers();
}

void Publisher::Impl::ensure_workers() {
    while (!stopped && ready.size() > workers - busy && workers < options.max_concurrent_notifies) {
        ++workers;
        scope->spawn(worker());
    }
}

// ---------------------------------------------------------------------------------------
// Per-host limits: a host's share of the NOTIFY slots halves with each strike (a timeout,
// a subscriber of it dropped), and it backs off after one. Strikes fade 10 minutes after the
// last one; a success takes one back.

namespace {
constexpr auto strike_memory = std::chrono::minutes(10);
constexpr unsigned max_strikes = 16;
constexpr std::size_t max_remembered_hosts = 4096;
}  // namespace

std::size_t Publisher::Impl::host_slots(const detail::HostState& h) const noexcept {
    std::size_t slots = options.max_notifies_per_host >> std::min(h.strikes, 16u);
    return std::max<std::size_t>(slots, 1);
}

bool Publisher::Impl::may_start(detail::HostState& h, Clock::time_point now) noexcept {
    if (h.strikes > 0 && now - h.last_strike > strike_memory) h.strikes = 0;
    return h.in_flight < host_slots(h) && h.connecting < options.max_connects_per_host &&
           now >= h.backoff_until;
}

void Publisher::Impl::park(const std::shared_ptr<Subscriber>& sub, detail::HostState& h,
                           const std::string& key) {
    sub->parked = true;
    h.parked.push_back(sub);
    ++parked;
    if (h.backoff_until > Clock::now() && !h.wake_scheduled && !stopped) {
        h.wake_scheduled = true;
        scope->spawn(wake_host(key, h.backoff_until));
    }
}

// Moves the host's waiting subscribers back to the ready queue, as many as it may start now.
void Publisher::Impl::unpark(const std::string& key) {
    auto it = hosts.find(key);
    if (it == hosts.end()) return;
    detail::HostState& h = it->second;
    Clock::time_point now = Clock::now();
    std::size_t room = 0;
    if (may_start(h, now)) {
        std::size_t slots = host_slots(h);
        room = slots > h.in_flight ? slots - h.in_flight : 0;
    }
    while (!h.parked.empty() && room > 0) {
        std::shared_ptr<Subscriber> sub = std::move(h.parked.front());
        h.parked.pop_front();
        --parked;
        sub->parked = false;
        if (sub->removed || sub->queue.empty()) continue;
        sub->ready = true;
        ready.push_back(sub);
        --room;
    }
    if (!h.parked.empty() && h.backoff_until > now && !h.wake_scheduled && !stopped) {
        h.wake_scheduled = true;
        scope->spawn(wake_host(key, h.backoff_until));
    }
    ensure_workers();
    maybe_idle();
}

Task<void> Publisher::Impl::wake_host(std::string key, Clock::time_point when) {
    try {
        co_await sleep_until(loop, when);
    } catch (const Error& e) {
        if (is_cancelled(e.code())) co_return;
        throw;
    }
    if (auto it = hosts.find(key); it != hosts.end()) it->second.wake_scheduled = false;
    unpark(key);
}

void Publisher::Impl::strike(const std::string& key, unsigned count) {
    detail::HostState& h = host(key);
    Clock::time_point now = Clock::now();
    if (h.strikes > 0 && now - h.last_strike > strike_memory) h.strikes = 0;
    h.strikes = std::min(h.strikes + count, max_strikes);
    h.last_strike = now;
    auto backoff = options.host_backoff;
    for (unsigned i = 1; i < h.strikes && backoff < options.max_host_backoff; ++i) backoff *= 2;
    backoff = std::min(backoff, options.max_host_backoff);
    h.backoff_until = std::max(h.backoff_until, now + backoff);
}

// A host no subscription delivers to is forgotten unless it has strikes (then it is kept
// while the table is small, so that a dropped tarpit resubscribing starts limited).
void Publisher::Impl::forget_host_if_unused(const std::string& key) {
    auto it = hosts.find(key);
    if (it == hosts.end()) return;
    const detail::HostState& h = it->second;
    if (h.subscribers != 0 || h.in_flight != 0 || h.connecting != 0 || !h.parked.empty() ||
        h.wake_scheduled) {
        return;
    }
    if (h.strikes == 0 || hosts.size() > max_remembered_hosts) hosts.erase(it);
}

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
        std::string key = sub->delivery_host;
        detail::HostState& h = host(key);
        if (!may_start(h, Clock::now())) {
            park(sub, h, key);
            continue;
        }
        Queued item = std::move(sub->queue.front());
        sub->queue.pop_front();
        for (std::uint32_t i = 0; i < item.skip; ++i) sub->next_seq = next_seq(sub->next_seq);
        std::uint32_t seq = sub->next_seq;
        sub->next_seq = next_seq(seq);
        sub->sending = true;
        ++busy;
        ++h.in_flight;
        ++h.connecting;
        // Cleared by the first connection (or the end of the exchange), whichever comes first.
        auto connecting = std::make_shared<bool>(true);
        auto connected = [this, key, connecting] {
            if (!*connecting) return;
            *connecting = false;
            if (auto it = hosts.find(key); it != hosts.end()) --it->second.connecting;
            unpark(key);
        };
        Delivery result = Delivery::cancelled;
        std::exception_ptr failure;
        try {
            result = co_await deliver(sub, seq, std::move(item.body), connected);
        } catch (...) {
            failure = std::current_exception();
        }
        --busy;
        sub->sending = false;
        if (*connecting) {
            *connecting = false;
            --hosts[key].connecting;
        }
        --hosts[key].in_flight;
        if (failure) std::rethrow_exception(failure);
        record(sub, result);
        if (!sub->removed && !sub->queue.empty() && !stopped) {
            sub->ready = true;
            ready.push_back(sub);
        }
        unpark(key);
        forget_host_if_unused(key);
    }
}

Task<Delivery> Publisher::Impl::deliver(std::shared_ptr<Subscriber> sub, std::uint32_t seq,
                                        EventBody body, std::function<void()> connected) {
    http::ClientOptions client;
    client.connect_timeout = options.notify_connect_timeout;
    client.timeout = options.notify_timeout;
    client.max_response_bytes = 64 * 1024;
    client.stop = sub->stop.get_token();
    client.on_connected = std::move(connected);
    bool timed_out = false;
    for (const Target& target : sub->callbacks) {
        http::Request request = make_notify(target.url, sub->sid, seq, *body);
        Clock::time_point started = Clock::now();
        Result<http::Response> answer =
            co_await http::try_send(loop, target.address, std::move(request), client);
        if (sub->removed || stopped) co_return Delivery::cancelled;
        if (answer && answer->status >= 200 && answer->status < 300) {
            if (log_enabled(LogLevel::info)) {
                auto took =
                    std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
                log(LogLevel::info, "gena publisher: delivered SEQ ", seq, " of ",
                    sub->service->event_path, " to ", target.url.to_string(), " (", sub->sid,
                    "): ", answer->status, " in ", took.count() / 1000, ".",
                    (took.count() % 1000) / 100, " ms");
            }
            co_return Delivery::ok;
        }
        if (!answer && is_cancelled(answer.error())) co_return Delivery::cancelled;
        if (!answer && is_timeout(answer.error())) timed_out = true;
        ++stats.callback_failures;
        if (log_enabled(LogLevel::info)) {
            log(LogLevel::info, "gena publisher: NOTIFY SEQ ", seq, " to ", target.url.to_string(),
                " failed: ",
                answer ? "status " + std::to_string(answer->status) : answer.error().message());
        }
        // 412: the subscriber does not know the SID; its other URLs will not either.
        if (answer && answer->status == 412) break;
    }
    co_return timed_out ? Delivery::timed_out : Delivery::failed;
}

void Publisher::Impl::record(const std::shared_ptr<Subscriber>& sub, Delivery result) {
    if (result == Delivery::cancelled) return;
    if (result == Delivery::ok) {
        ++sub->delivered;
        ++stats.notifies_sent;
        sub->consecutive_failures = 0;
        sub->failing_since.reset();
        if (auto it = hosts.find(sub->delivery_host); it != hosts.end() && it->second.strikes > 0) {
            --it->second.strikes;
        }
        return;
    }
    ++sub->failed;
    ++stats.notifies_failed;
    ++sub->consecutive_failures;
    if (result == Delivery::timed_out) strike(sub->delivery_host, 1);
    Clock::time_point now = Clock::now();
    if (!sub->failing_since) sub->failing_since = now;
    if (sub->consecutive_failures >= options.max_consecutive_failures ||
        now - *sub->failing_since >= options.max_failing_time) {
        log(LogLevel::warning, "gena publisher: subscriber ", sub->sid, " of ",
            sub->service->event_path, " dropped after ", sub->consecutive_failures,
            " failed deliveries");
        ++stats.subscribers_dropped;
        // A host whose callbacks time out until its subscriber is dropped is limited further
        // (and remembered, should it resubscribe).
        if (result == Delivery::timed_out) strike(sub->delivery_host, 2);
        remove(sub);
    }
}

}  // namespace uvgena::gena
