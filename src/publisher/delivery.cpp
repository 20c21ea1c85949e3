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

}  // namespace uvgena::gena
