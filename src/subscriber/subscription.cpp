// Subscriptions: the SUBSCRIBE / renewal / UNSUBSCRIBE exchanges, SEQ checks and delivery,
// and the background work driven by the schedule (auto-renewal, resubscription, watchdog).
#include "uvgena/subscriber/subscription.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "net/route.hpp"
#include "subscriber/subscription_impl.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/http/error.hpp"
#include "uvgena/net/tcp.hpp"

namespace uvgena::gena {

std::string_view to_string(SeqStatus status) noexcept {
    switch (status) {
        case SeqStatus::ok:
            return "ok";
        case SeqStatus::gap:
            return "gap";
        case SeqStatus::duplicate:
            return "duplicate";
        case SeqStatus::reset:
            return "reset";
        case SeqStatus::late:
            return "late";
        case SeqStatus::outlier:
            return "outlier";
    }
    return "ok";
}

namespace detail {
namespace {

using std::chrono::milliseconds;

// "412 Precondition Failed" for messages.
std::string status_text(const http::Response& response) {
    std::string text = std::to_string(response.status);
    text += ' ';
    text += response.reason.empty() ? std::string(http::reason_phrase(response.status))
                                    : response.reason;
    return text;
}

// "<context>: device answered" for an error status, with the status when the error's own
// message does not already name it ("412 Precondition Failed" does, "server error" not).
std::string answer_context(const std::string& context, const http::Response& response,
                           std::error_code error) {
    std::string status = std::to_string(response.status);
    if (error.message().rfind(status, 0) == 0) return context + ": device answered";
    return context + ": device answered " + status_text(response);
}

http::ClientOptions client_options(milliseconds timeout) {
    http::ClientOptions co;
    co.timeout = timeout;
    co.connect_timeout = std::min(timeout, milliseconds(5'000));
    return co;
}

// The addresses of the device: an IP literal directly, else a name lookup.
Task<SocketAddress> device_address_of(uv_loop_t* loop, const http::Url& url,
                                      const std::string& context) {
    try {
        co_return (co_await http::resolve_url(loop, url)).front();
    } catch (const Error& e) {
        if (is_cancelled(e.code())) throw;
        throw Error(e.code(), context + ": cannot resolve " + url.host);
    }
}

}  // namespace

Task<void> send_unsubscribe(uv_loop_t* loop, http::Url url, SocketAddress device, std::string sid,
                            milliseconds timeout, std::string user_agent, bool strict) {
    std::string context = "unsubscribe " + sid + " from " + url.to_string();
    http::Request request = make_unsubscribe(url, sid, user_agent);
    Result<http::Response> response =
        co_await http::try_send(loop, device, std::move(request), client_options(timeout));
    std::error_code error;
    std::string what;
    if (!response) {
        error = response.error();
        what = context;
    } else if (Result<void> answer = read_unsubscribe_response(*response); !answer) {
        error = answer.error();
        what = answer_context(context, *response, error);
    }
    if (!error) co_return;
    if (strict) throw Error(error, what);
    log(LogLevel::warning, "uvgena: ", what, " (ignored)");
}

SidText& SidText::operator=(std::string_view text) {
    if (text == view()) return *this;
    if (text.size() <= kInPlace) {
        release();
        std::memcpy(chars_, text.data(), text.size());
        size_ = static_cast<std::uint8_t>(text.size());
        return *this;
    }
    Heap h{new char[text.size()], text.size()};
    std::memcpy(h.data, text.data(), text.size());
    release();
    std::memcpy(chars_, &h, sizeof h);
    size_ = kOnHeap;
    return *this;
}

void SidText::release() noexcept {
    if (size_ == kOnHeap) delete[] heap().data;
    size_ = 0;
}

HandlerSet HandlerSet::make(SubscriptionHandlers handlers) {
    bool others = handlers.on_renew_failed || handlers.on_resubscribe || handlers.on_lost ||
                  handlers.on_silence;
    HandlerSet set;
    set.on_event = std::move(handlers.on_event);
    if (others) {
        handlers.on_event = nullptr;
        set.others = std::make_unique<const SubscriptionHandlers>(std::move(handlers));
    }
    return set;
}

SubscriptionHandlers HandlerSet::unpack() const {
    SubscriptionHandlers handlers;
    if (others) handlers = *others;
    handlers.on_event = on_event;
    return handlers;
}

SubConfig::SubConfig(http::Url parsed, std::string text, const SubscribeOptions& o)
    : url_text(std::move(text)),
      url(std::move(parsed)),
      user_agent(o.user_agent),
      requested_timeout(o.requested_timeout),
      timeout(o.timeout),
      silence_timeout(o.silence_timeout),
      queue_capacity(o.queue_capacity),
      backoff(o.backoff),
      overflow(o.overflow),
      auto_renew(o.auto_renew),
      auto_resubscribe(o.auto_resubscribe),
      keep_body(o.keep_body),
      deliver_duplicates(o.deliver_duplicates),
      resubscribe_on_gap(o.resubscribe_on_gap),
      resubscribe_on_silence(o.resubscribe_on_silence),
      check_source(o.check_source),
      reorder_window(o.reorder_window) {}

bool SubConfig::same_settings(const SubConfig& o) const noexcept {
    return url_text == o.url_text && user_agent == o.user_agent &&
           requested_timeout == o.requested_timeout && timeout == o.timeout &&
           silence_timeout == o.silence_timeout && queue_capacity == o.queue_capacity &&
           backoff.initial == o.backoff.initial && backoff.max == o.backoff.max &&
           backoff.factor == o.backoff.factor && backoff.jitter == o.backoff.jitter &&
           backoff.max_attempts == o.backoff.max_attempts && overflow == o.overflow &&
           auto_renew == o.auto_renew && auto_resubscribe == o.auto_resubscribe &&
           keep_body == o.keep_body && deliver_duplicates == o.deliver_duplicates &&
           resubscribe_on_gap == o.resubscribe_on_gap &&
           resubscribe_on_silence == o.resubscribe_on_silence && check_source == o.check_source &&
           reorder_window == o.reorder_window;
}

void CompactAddress::set(const SocketAddress& address) noexcept {
    storage_ = Storage{};
    if (address.is_ipv4()) {
        std::memcpy(&storage_.v4, address.sockaddr_ptr(), sizeof storage_.v4);
    } else if (address.is_ipv6()) {
        std::memcpy(&storage_.v6, address.sockaddr_ptr(), sizeof storage_.v6);
    }
}

SocketAddress CompactAddress::get() const {
    if (!has_value()) return SocketAddress();
    Result<SocketAddress> address =
        SocketAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&storage_));
    return address ? *address : SocketAddress();
}

namespace {
// When to renew within the granted duration: between 75% and 85% of it, spread by the
// subscription's id, so that subscriptions made (or renewed) together come due over a
// tenth of their duration instead of all at once.
double renew_fraction(std::uint64_t id) noexcept {
    std::uint64_t z = id * 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z ^= z >> 31;
    double unit = static_cast<double>(z >> 11) * 0x1.0p-53;
    return default_renew_fraction - 0.10 * unit;
}
}  // namespace

SubscriptionCore::SubscriptionCore(uv_loop_t* l, ListenerImpl* li,
                                   std::shared_ptr<const SubConfig> c, HandlerSet handlers)
    : listener(li), config(std::move(c)), handlers_(std::move(handlers)), ctx_(l) {
    timer_.fire = &SubscriptionCore::on_timer;
    timer_.owner = this;
    id = listener->new_id();
    listener->add(this);
    schedule = SubscriptionSchedule(
        config->auto_renew,
        config->silence_timeout ? std::optional<SteadyClock::duration>(*config->silence_timeout)
                                : std::nullopt,
        renew_fraction(id));
}

SubscriptionCore::~SubscriptionCore() {
    ctx_->remove_timer(&timer_);
    if (Reorder* r = reorder()) ctx_->remove_timer(&r->timer);
    if (listener != nullptr) listener->remove(id);
}

const std::string& SubscriptionCore::end_context() const noexcept {
    static const std::string empty;
    return extra_ ? extra_->end_context : empty;
}

std::string SubscriptionCore::callback_url() const {
    if (!callback_prefix_) return {};
    return *callback_prefix_ + std::to_string(id);
}

SubscriptionStats SubscriptionCore::stats() const noexcept {
    SubscriptionStats s = extra_ ? extra_->counters : SubscriptionStats{};
    s.events_received = events_received_;
    s.events_delivered = events_delivered_;
    s.renewals = renewals_;
    SeqWindowStats w = seq_state().stats;
    s.events_missed = w.missed;
    s.events_reordered = w.reordered;
    s.duplicates = w.duplicates;
    s.seq_resets = w.resets;
    s.seq_resyncs = w.resyncs;
    return s;
}

SubscriptionCore::Extra& SubscriptionCore::extra() {
    if (!extra_) extra_ = std::make_unique<Extra>();
    return *extra_;
}

namespace {
// True if every counter of `counters` (a struct of integers) is 0.
template <typename T>
bool all_zero(const T& counters) noexcept {
    static_assert(std::has_unique_object_representations_v<T>);  // no padding to compare
    static constexpr T zero{};
    return std::memcmp(&counters, &zero, sizeof(T)) == 0;
}
}  // namespace

void SubscriptionCore::trim_extra() noexcept {
    if (extra_ && !extra_->reorder && !extra_->end_error && extra_->end_context.empty() &&
        extra_->held.empty() && !extra_->backoff && all_zero(extra_->counters) &&
        all_zero(extra_->seq) && extra_->later_handlers.empty()) {
        extra_.reset();
    }
}

Backoff& SubscriptionCore::backoff() {
    Extra& e = extra();
    if (!e.backoff) {
        e.backoff = std::make_unique<Backoff>(config->backoff, 0x9e3779b97f4a7c15u ^ id);
    }
    return *e.backoff;
}

SeqLedgerState SubscriptionCore::seq_state() const noexcept {
    if (const Reorder* r = reorder()) return r->window.state();
    SeqLedgerState state;
    if (has_position_) state.position = position_;
    if (extra_) state.stats = extra_->seq;
    return state;
}

SeqWindowOptions SubscriptionCore::window_options() const noexcept {
    SeqWindowOptions wo;
    wo.window = std::max(config->reorder_window, milliseconds(0));
    return wo;
}

bool SubscriptionCore::drops_as_retransmission(std::string_view notify_sid,
                                               std::uint32_t seq) const noexcept {
    if (config->deliver_duplicates || notify_sid != sid) return false;
    if (const Reorder* r = reorder()) return r->window.is_retransmission(seq);
    // No event yet (or none since a new SID): nothing can be a retransmission.
    if (!has_position_) return false;
    // A quiet window (no gap open, nothing waiting), as the one that was let go.
    const SeqWindow<Event> quiet(window_options(), seq_state());
    return quiet.is_retransmission(seq);
}

void SubscriptionCore::keep_seq_state(const SeqLedgerState& state) {
    has_position_ = state.position.has_value();
    position_ = state.position.value_or(0);
    if (extra_) {
        extra_->seq = state.stats;
    } else if (!all_zero(state.stats)) {
        extra().seq = state.stats;
    }
}

void SubscriptionCore::settle_window() noexcept {
    Reorder* r = reorder();
    if (r == nullptr || !r->window.quiet() || r->timer.armed()) return;
    keep_seq_state(r->window.state());  // the Extra block exists: nothing to allocate
    extra_->reorder.reset();
    trim_extra();
}

Channel<Event>& SubscriptionCore::channel() {
    if (!events) {
        Overflow policy =
            config->overflow == Overflow::wait ? Overflow::reject_new : config->overflow;
        events = std::make_unique<Channel<Event>>(
            loop(), std::max<std::size_t>(config->queue_capacity, 1), policy);
        if (phase == Phase::ended) events->close();
    }
    return *events;
}

void SubscriptionCore::rearm() noexcept {
    ctx_->remove_timer(&timer_);
    if (phase == Phase::ended) return;
    if (auto next = schedule.next()) {
        timer_.deadline = *next;
        try {
            ctx_->add_timer(&timer_);
        } catch (const std::exception& e) {
            log(LogLevel::error, "uvgena: cannot arm the timer of ", url_text(), ": ", e.what());
        }
    }
}

void SubscriptionCore::on_timer(uvgena::detail::TimerNode* node) noexcept {
    static_cast<SubscriptionCore*>(node->owner)->on_deadline();
}

void SubscriptionCore::on_deadline() noexcept {
    // The state may end (and be released) by what runs here: keep it alive until we are done.
    std::shared_ptr<SubscriptionCore> self = shared_from_this();
    try {
        run_due_actions();
    } catch (const std::exception& e) {
        // Out of memory building a message or queueing a renewal: this runs from the loop's
        // timer and must not throw. A subscription whose deadline could not be handled is
        // not trusted any more: it ends with the error.
        log(LogLevel::error, "uvgena: ", url_text(), ": ", e.what());
        try {
            end(make_error_code(std::errc::not_enough_memory));
        } catch (...) {
        }
    }
    rearm();
}

void SubscriptionCore::run_due_actions() {
    SteadyClock::time_point now = SteadyClock::now();
    for (;;) {
        ScheduledAction action = schedule.take_due(now);
        if (action == ScheduledAction::none || phase == Phase::ended) break;
        switch (action) {
            case ScheduledAction::renew:
                if (!background_busy && phase == Phase::active && listener != nullptr) {
                    listener->queue_renewal(*this);
                }
                break;
            case ScheduledAction::expire:
                if (config->auto_renew) {
                    // The renewal did not succeed in time (failed, or still queued or in
                    // flight): that is a failed renewal too.
                    ++counters().renewal_failures;
                    Error failure(make_error_code(uvgena::errc::timed_out),
                                  "subscription " + sid.str() + " to " + url_text() +
                                      " expired before a renewal succeeded");
                    log(LogLevel::warning, "uvgena: ", failure.what());
                    // on_deadline keeps the core alive: the handler may drop the subscription.
                    {
                        HandlerCall call(*this);
                        const HandlerSet* h = call.handlers();
                        if (const RenewFailHandler* fn = h ? h->on_renew_failed() : nullptr) {
                            call_user(listener, "auto_renew_fail handler", [&] { (*fn)(failure); });
                        }
                    }
                    if (phase == Phase::ended) break;
                }
                lost(make_error_code(uvgena::errc::timed_out),
                     "subscription " + sid.str() + " to " + url_text() + " expired");
                break;
            case ScheduledAction::silence: {
                ++counters().silences;
                milliseconds silence = config->silence_timeout.value_or(milliseconds(0));
                log(LogLevel::warning, "uvgena: no event from ", url_text(), " for ",
                    silence.count(), " ms (is the callback address ", callback_url(),
                    " reachable from the device?)");
                // on_deadline keeps the core alive: the handler may drop the subscription.
                {
                    HandlerCall call(*this);
                    const HandlerSet* h = call.handlers();
                    if (const SilenceHandler* fn = h ? h->on_silence() : nullptr) {
                        call_user(listener, "silence handler", [&] { (*fn)(silence); });
                    }
                }
                if (config->resubscribe_on_silence) resubscribe_later(true);
                break;
            }
            case ScheduledAction::none:
                break;
        }
    }
}

void SubscriptionCore::start_background(Task<void> task) {
    if (listener == nullptr) return;
    try {
        listener->scope().spawn(std::move(task));
    } catch (const std::exception& e) {
        log(LogLevel::error, "uvgena: cannot start background work for ", url_text(), ": ",
            e.what());
    }
}

void SubscriptionCore::adopt(const SubscribeAnswer& answer, bool fresh) {
    // A resubscription's answer: the first event of the new SID is flagged (Event::
    // resubscribed), so that the application replaces its state with it.
    bool resync = phase == Phase::resubscribing;
    if (!sid.empty() && answer.sid != sid) {
        log(LogLevel::info, "uvgena: ", url_text(), ": SID ", sid, " is now ", answer.sid);
        fresh = true;
    }
    sid = answer.sid;
    granted_infinite_ = answer.timeout.infinite;
    granted_seconds_ = static_cast<std::uint32_t>(std::clamp<std::int64_t>(
        answer.timeout.seconds.count(), 0, std::numeric_limits<std::uint32_t>::max()));
    granted_at = SteadyClock::now();
    phase = Phase::active;
    if (fresh && (reorder() || has_position_)) {
        // A new SID starts its own SEQs: what the old one's window holds goes out first.
        flush_window();
        if (Reorder* r = reorder()) r->window.reset();
        has_position_ = false;
        delivered_any_ = false;
        arm_reorder();
        settle_window();
    }
    if (resync) resync_pending_ = true;
    schedule.on_granted(granted_at, granted());
    rearm();
    if (!extra_ || extra_->held.empty()) return;
    // NOTIFYs that overtook the answer: those for this SID, in SEQ order; others never will
    // be ours (an older SID, or garbage that guessed the path).
    std::vector<Event> pending = std::move(extra_->held);
    extra_->held = {};
    trim_extra();
    std::stable_sort(pending.begin(), pending.end(),
                     [](const Event& a, const Event& b) { return a.seq < b.seq; });
    for (Event& event : pending) {
        if (event.sid == sid && phase != Phase::ended) {
            accept(std::move(event));
        } else {
            if (listener != nullptr) listener->count_held_dropped(1);
            log(LogLevel::warning, "uvgena: dropped a held NOTIFY for SID ", event.sid, " SEQ ",
                event.seq, " at ", callback_url(), ": the subscription's SID is ", sid);
        }
    }
}

void SubscriptionCore::accept(Event&& event) {
    ++events_received_;
    if (event.parse_error) ++counters().parse_errors;
    SteadyClock::time_point now = SteadyClock::now();
    schedule.on_event(now);
    rearm();
    std::uint32_t seq = event.seq;
    if (Reorder* reorder = this->reorder()) {
        SeqWindow<Event>& window = reorder->window;
        window.push(seq, std::move(event), now, [this, &window](const SeqRelease& r, Event&& e) {
            release(window, r, std::move(e));
        });
        arm_reorder();
        settle_window();
        return;
    }
    // Nothing waits and no gap is open (the usual case): the window is rebuilt here from the
    // SEQ position, and kept only if the event makes it wait or remember a gap.
    SeqWindow<Event> local(window_options(), seq_state());
    try {
        local.push(seq, std::move(event), now, [this, &local](const SeqRelease& r, Event&& e) {
            release(local, r, std::move(e));
        });
    } catch (...) {
        // What went out before the failure stays out (its SEQs are not delivered again).
        if (local.quiet()) keep_seq_state(local.state());
        throw;
    }
    if (local.quiet()) {
        keep_seq_state(local.state());
        return;
    }
    Extra& extra = this->extra();
    extra.reorder = std::make_unique<Reorder>(std::move(local));
    extra.reorder->timer.fire = &SubscriptionCore::on_reorder_timer;
    extra.reorder->timer.owner = this;
    arm_reorder();
}

void SubscriptionCore::release(const SeqWindow<Event>& window, const SeqRelease& r,
                                Event&& event) {
    event.seq_order = r.check.order;
    event.missed = r.check.missed;
    switch (r.check.order) {
        case SeqOrder::first:
        case SeqOrder::expected:
            event.seq_status = SeqStatus::ok;
            break;
        case SeqOrder::gap:
            event.seq_status = SeqStatus::gap;
            log(LogLevel::warning, "uvgena: ", url_text(), ": ", r.check.missed,
                " event(s) missed before SEQ ", event.seq);
            break;
        case SeqOrder::late:
            event.seq_status = SeqStatus::late;
            ++counters().events_late;
            log(LogLevel::info, "uvgena: ", url_text(), ": SEQ ", event.seq,
                " arrived late (after its successors); delivered");
            break;
        case SeqOrder::resync:
            event.seq_status = SeqStatus::late;
            ++counters().events_late;
            log(LogLevel::warning, "uvgena: ", url_text(), ": SEQ ", r.outlier,
                " was an outlier (SEQs continue from ", event.seq,
                "): following the device's sequence again");
            break;
        case SeqOrder::outlier:
            event.seq_status = SeqStatus::outlier;
            log(LogLevel::warning, "uvgena: ", url_text(), ": SEQ ", event.seq,
                " is an outlier (the device's SEQs went on from ", window.position().value_or(0),
                "): delivered flagged, the sequence is unchanged");
            break;
        case SeqOrder::duplicate:
        case SeqOrder::stale:
            event.seq_status = SeqStatus::duplicate;
            log(LogLevel::info, "uvgena: ", url_text(), ": SEQ ", event.seq,
                config->deliver_duplicates ? " is a retransmission (delivered, flagged)"
                                           : " is a retransmission: dropped");
            break;
        case SeqOrder::reset:
            event.seq_status = SeqStatus::reset;
            log(LogLevel::info, "uvgena: ", url_text(),
                ": SEQ 0 again: the device restarted "
                "its counter");
            break;
    }
    bool gap = r.check.order == SeqOrder::gap && delivered_any_;
    if (r.check.deliver()) {
        delivered_any_ = true;
        if (resync_pending_) {
            event.resubscribed = true;
            resync_pending_ = false;
        }
    }
    if (r.check.deliver() || config->deliver_duplicates) {
        ++events_delivered_;
        if (callback() != nullptr && listener != nullptr) {
            listener->queue_callback(shared_from_this(), std::move(event));
        } else {
            enqueue(std::move(event));
        }
    }
    if (gap && config->resubscribe_on_gap) resubscribe_later(true);
}

void SubscriptionCore::flush_window() {
    Reorder* reorder = this->reorder();
    if (reorder == nullptr || reorder->window.pending() == 0) return;
    SeqWindow<Event>& window = reorder->window;
    window.flush(
        [this, &window](const SeqRelease& r, Event&& e) { release(window, r, std::move(e)); });
}

void SubscriptionCore::arm_reorder() noexcept {
    std::optional<SteadyClock::time_point> next;
    Reorder* reorder = this->reorder();
    if (reorder == nullptr) return;
    uvgena::detail::TimerNode& timer = reorder->timer;
    if (phase != Phase::ended) next = reorder->window.next_deadline();
    if (next && timer.armed() && timer.deadline == *next) return;
    ctx_->remove_timer(&timer);
    if (!next) return;
    timer.deadline = *next;
    try {
        ctx_->add_timer(&timer);
    } catch (const std::exception& e) {
        // Without the timer the waiting events would wait for the next NOTIFY: let them out.
        log(LogLevel::error, "uvgena: cannot arm the reorder timer of ", url_text(), ": ",
            e.what());
        try {
            flush_window();
        } catch (...) {
        }
    }
}

void SubscriptionCore::on_reorder_timer(uvgena::detail::TimerNode* node) noexcept {
    auto* self = static_cast<SubscriptionCore*>(node->owner);
    // Delivery may end (and release) the subscription: keep it alive until done.
    std::shared_ptr<SubscriptionCore> keep = self->shared_from_this();
    try {
        if (Reorder* reorder = self->reorder()) {
            SeqWindow<Event>& window = reorder->window;
            window.poll(SteadyClock::now(), [self, &window](const SeqRelease& r, Event&& e) {
                self->release(window, r, std::move(e));
            });
        }
    } catch (const std::exception& e) {
        log(LogLevel::error, "uvgena: ", self->url_text(), ": ", e.what());
    }
    self->arm_reorder();
    self->settle_window();
}

void SubscriptionCore::on_notify(Event&& event) {
    if (event.sid == sid) {
        accept(std::move(event));
    } else {
        hold(std::move(event));
    }
}

std::optional<Task<void>> SubscriptionCore::end_and_unsubscribe(bool strict) {
    bool send = subscribed() && device_address.has_value();
    std::string old_sid = sid.str();
    end({});
    if (!send) return std::nullopt;
    return send_unsubscribe(loop(), config->url, device_address.get(), std::move(old_sid),
                            config->timeout, config->user_agent, strict);
}

void SubscriptionCore::enqueue(Event&& event) {
    Channel<Event>& ch = channel();
    std::size_t dropped_before = ch.dropped();
    bool pushed = ch.push(std::move(event));
    if (!pushed || ch.dropped() != dropped_before) {
        ++counters().events_dropped;
        if (!pushed) --events_delivered_;
        log(LogLevel::warning, "uvgena: ", url_text(), ": event queue full, an event was dropped");
    }
}

void SubscriptionCore::hold(Event&& event) {
    std::size_t limit = listener != nullptr ? listener->max_held_events() : 0;
    if ((extra_ ? extra_->held.size() : 0) >= limit) {
        if (listener != nullptr) listener->count_held_dropped(1);
        log(LogLevel::warning, "uvgena: dropped a NOTIFY for unknown SID ", event.sid, " at ",
            callback_url(), ": too many held");
        return;
    }
    if (listener != nullptr) listener->count_held();
    extra().held.push_back(std::move(event));
}

void SubscriptionCore::end(std::error_code error, std::string context) {
    if (phase == Phase::ended) return;
    // Events accepted (answered 200) but still in the reorder window go out first: to the
    // queue, which stays readable after the end (a callback never runs after the end).
    try {
        flush_window();
    } catch (const std::exception& e) {
        log(LogLevel::error, "uvgena: ", url_text(), ": ", e.what());
    }
    if (phase == Phase::ended) return;
    phase = Phase::ended;
    if (Reorder* r = reorder()) ctx_->remove_timer(&r->timer);
    if (error || !context.empty()) {
        extra().end_error = error;
        extra().end_context = std::move(context);
    }
    schedule.clear();
    ctx_->remove_timer(&timer_);
    if (extra_ && !extra_->held.empty()) {
        if (listener != nullptr) listener->count_held_dropped(extra_->held.size());
        log(LogLevel::warning, "uvgena: dropped ", extra_->held.size(), " held NOTIFY(s) at ",
            callback_url(), ": their SID never became known");
        extra_->held = {};
        trim_extra();
    }
    if (listener != nullptr) {
        // No callback runs after the end: events handed to the callback but not yet
        // delivered are dropped with it (the caller that ended us may be that callback).
        // Their queue entries may hold the last reference to this state: keep it.
        std::shared_ptr<SubscriptionCore> keep = weak_from_this().lock();
        listener->drop_callbacks(*this);
        listener->remove(id);
        listener = nullptr;
    }
    // Dropped now (their captures released), or when the handler calls running are over;
    // destroyed last, since that may drop the last reference to this core.
    HandlerSet dropped;
    if (handler_calls_ == 0) {
        dropped = std::exchange(handlers_, HandlerSet{});
    } else {
        handlers_dropped_ = true;
    }
    if (error) log(LogLevel::warning, "uvgena: subscription ended: ", end_context());
    if (events) events->close();
}

HandlerSet SubscriptionCore::install_handlers(HandlerSet handlers) {
    if (handler_calls_ == 0) {
        // No call runs, so nothing is retired (settle_handlers ran when the last one ended).
        return std::exchange(handlers_, std::move(handlers));
    }
    // A handler runs (maybe the one being replaced): handlers_ stays as it is until the
    // calls are over.
    auto later = std::make_unique<HandlerSet>(std::move(handlers));
    extra().later_handlers.push_back(std::move(later));
    handlers_retired_ = true;
    return {};
}

void SubscriptionCore::settle_handlers() noexcept {
    if (!handlers_retired_ && !handlers_dropped_) return;
    // Destroyed at the return, after the state is consistent: their captures' destructors
    // may drop the last reference to this core.
    HandlerSet old = std::exchange(handlers_, HandlerSet{});
    std::vector<std::unique_ptr<HandlerSet>> later;
    if (extra_) later.swap(extra_->later_handlers);
    if (!handlers_dropped_ && !later.empty() && later.back()) handlers_ = std::move(*later.back());
    handlers_retired_ = false;
    handlers_dropped_ = false;
    trim_extra();
}

void SubscriptionCore::set_handlers(HandlerSet handlers) {
    if (phase == Phase::ended || listener == nullptr) return;
    bool had_callback = callback() != nullptr;
    // The old handlers stay alive until this returns (their captures' destructors may drop
    // the last reference to this core); while a handler runs they stay in place.
    HandlerSet old = install_handlers(std::move(handlers));
    bool has_callback = callback() != nullptr;
    if (had_callback && !has_callback) {
        // Back to queueing: the events handed to the callback but not delivered yet go to
        // the queue first, in order, so that a NOTIFY accepted later does not pass them.
        // They were counted delivered; the queue's drops and refusals are counted here.
        for (Event& event : listener->take_callbacks(*this)) enqueue(std::move(event));
    } else if (!had_callback && has_callback && events) {
        // The queued events go to the callback first.
        while (std::optional<Event> event = events->try_next()) {
            listener->queue_callback(shared_from_this(), std::move(*event));
        }
    }
}

void SubscriptionCore::lost(const std::error_code& error, const std::string& context) {
    if (config->auto_resubscribe && listener != nullptr) {
        log(LogLevel::warning, "uvgena: ", context, "; resubscribing");
        if (phase == Phase::resubscribing) return;
        // The callers keep the core alive: the handler may drop the subscription.
        {
            HandlerCall call(*this);
            const HandlerSet* h = call.handlers();
            if (const LostHandler* fn = h ? h->on_lost() : nullptr) {
                Error failure(error, context);
                call_user(listener, "lost handler", [&] { (*fn)(failure); });
            }
        }
        if (phase == Phase::ended) return;
        resubscribe_later(false);
    } else {
        end(error, context);
    }
}

void SubscriptionCore::resubscribe_later(bool unsubscribe_old) {
    if (phase == Phase::ended || phase == Phase::resubscribing || listener == nullptr) return;
    phase = Phase::resubscribing;
    schedule.clear();
    rearm();
    start_background(resubscribe_task(shared_from_this(), unsubscribe_old));
}

Task<void> SubscriptionCore::exchange_subscribe() {
    std::shared_ptr<const SubConfig> cfg = config;
    std::string error_context = cfg->error_context();
    SocketAddress device = co_await device_address_of(loop(), cfg->url, error_context);
    if (phase == Phase::ended || listener == nullptr) {
        throw Error(make_error_code(uvgena::errc::closed), error_context + ": ended");
    }
    device_address.set(device);
    Result<SocketAddress> local = net::local_address_towards(device);
    callback_prefix_ = listener->callback_prefix(local ? std::optional(*local) : std::nullopt);
    SubscribeParams params;
    params.callbacks = {callback_url()};
    params.timeout = cfg->requested_timeout;
    params.user_agent = cfg->user_agent;
    http::Request request = make_subscribe(cfg->url, params);
    Result<http::Response> response =
        co_await http::try_send(loop(), device, std::move(request), client_options(cfg->timeout));
    if (!response) {
        throw Error(response.error(), error_context);
    }
    Result<SubscribeAnswer> answer = read_subscribe_response(*response, cfg->requested_timeout);
    if (!answer) {
        throw Error(answer.error(), answer_context(error_context, *response, answer.error()));
    }
    if (phase == Phase::ended || listener == nullptr) {
        // Ended while the answer was on its way: give the device its UNSUBSCRIBE.
        uvgena::spawn(loop(), send_unsubscribe(loop(), cfg->url, device, answer->sid, cfg->timeout,
                                               cfg->user_agent, false));
        throw Error(make_error_code(uvgena::errc::closed), error_context + ": ended meanwhile");
    }
    adopt(*answer, true);
}

Task<void> SubscriptionCore::exchange_renew(std::optional<std::chrono::seconds> requested) {
    std::shared_ptr<const SubConfig> cfg = config;
    std::string renewed_sid = sid.str();
    std::string context = "renew subscription " + sid.str() + " to " + cfg->url_text;
    if (!subscribed() || !device_address) {
        throw Error(make_error_code(uvgena::errc::not_running), context + ": not subscribed");
    }
    // Renewals may overlap (an automatic one and one by hand): the subscription holds
    // NOTIFYs for an unknown SID until the last of them is over, since either answer may
    // carry a new SID. The count is restored however the exchange ends (also when its frame
    // is destroyed).
    struct Running {
        SubscriptionCore* self;
        explicit Running(SubscriptionCore* s) noexcept : self(s) {
            if (self->phase == Phase::active) self->phase = Phase::renewing;
            ++self->renewals_running_;
        }
        Running(const Running&) = delete;
        Running& operator=(const Running&) = delete;
        ~Running() { finish(); }
        void finish() noexcept {
            if (self == nullptr) return;
            if (--self->renewals_running_ == 0 && self->phase == Phase::renewing) {
                self->phase = Phase::active;
            }
            self = nullptr;
        }
    } running(this);
    http::Request request = make_renewal(cfg->url, sid, requested, cfg->user_agent);
    Result<http::Response> response = co_await http::try_send(
        loop(), device_address.get(), std::move(request), client_options(cfg->timeout));
    running.finish();
    if (!response) {
        throw Error(response.error(), context);
    }
    Result<SubscribeAnswer> answer = read_subscribe_response(*response, requested);
    if (!answer) throw Error(answer.error(), answer_context(context, *response, answer.error()));
    if (phase == Phase::ended) co_return;
    if (phase == Phase::resubscribing || sid != renewed_sid) {
        // The subscription was given up meanwhile (it expired while this renewal was queued
        // or in flight, e.g. a process paused past the grant) and a new one is on its way or
        // made: this answer is about the old SID and must not bring it back.
        // The device renewed it: give it back, so that it does not send events for it.
        log(LogLevel::info, "uvgena: renewal of ", renewed_sid,
            " answered after it was replaced: unsubscribing it");
        if (device_address && answer->sid == renewed_sid) {
            start_background(send_unsubscribe(loop(), cfg->url, device_address.get(), renewed_sid,
                                              cfg->timeout, cfg->user_agent, false));
        }
        co_return;
    }
    ++renewals_;
    reset_backoff();
    adopt(*answer, false);
    log(LogLevel::info, "uvgena: renewed ", sid, " at ", cfg->url_text, ", granted ",
        granted_infinite_ ? std::string("infinite") : std::to_string(granted_seconds_) + " s");
}

bool SubscriptionCore::start_auto_renewal() noexcept {
    if (listener == nullptr) return false;
    background_busy = true;
    try {
        listener->scope().spawn(auto_renew_task(shared_from_this(), listener));
        return true;
    } catch (const std::exception& e) {
        background_busy = false;
        log(LogLevel::error, "uvgena: cannot start the renewal of ", url_text(), ": ", e.what());
        return false;
    }
}

Task<void> SubscriptionCore::auto_renew_task(std::shared_ptr<SubscriptionCore> self,
                                             ListenerImpl* owner) {
    // Frees the listener's renewal slot however this ends (also when the listener's scope
    // destroys the task: the listener is stopped by then and starts nothing new).
    struct Slot {
        ListenerImpl* owner;
        ~Slot() { owner->renewal_done(); }
    } slot{owner};
    self->background_busy = true;
    std::optional<std::chrono::seconds> request;
    if (!self->granted_infinite_) request = self->granted().seconds;
    std::string renewed_sid = self->sid.str();
    std::optional<Error> failure;
    try {
        co_await self->exchange_renew(request);
    } catch (const Error& e) {
        failure = e;
    }
    self->background_busy = false;
    if (!failure || is_cancelled(failure->code()) || self->phase == Phase::ended) co_return;
    if (self->phase == Phase::resubscribing || self->sid != renewed_sid) {
        // The SID it renewed was given up meanwhile (expired, resubscribing or resubscribed):
        // its failure is no news, and must not start another resubscription.
        log(LogLevel::info, "uvgena: ", failure->what(), " (the SID was replaced meanwhile)");
        co_return;
    }
    ++self->counters().renewal_failures;
    log(LogLevel::warning, "uvgena: ", failure->what());
    {
        HandlerCall call(*self);
        const HandlerSet* h = call.handlers();
        if (const RenewFailHandler* fn = h ? h->on_renew_failed() : nullptr) {
            call_user(self->listener, "auto_renew_fail handler", [&] { (*fn)(*failure); });
        }
    }
    if (self->phase == Phase::ended) co_return;
    if (failure->code() == errc::precondition_failed) {
        self->lost(failure->code(), context_of(*failure));
        co_return;
    }
    if (std::optional<milliseconds> delay = self->backoff().next()) {
        self->schedule.on_renew_failed(SteadyClock::now(), *delay);
    }
    self->rearm();
}

Task<void> SubscriptionCore::resubscribe_task(std::shared_ptr<SubscriptionCore> self,
                                              bool unsubscribe_old) {
    std::string old_sid = self->sid.str();
    self->reset_backoff();
    for (;;) {
        std::optional<Error> failure;
        try {
            co_await self->exchange_subscribe();
        } catch (const Error& e) {
            failure = e;
        }
        if (!failure) break;
        if (is_cancelled(failure->code()) || self->phase == Phase::ended) co_return;
        ++self->counters().resubscribe_failures;
        log(LogLevel::warning, "uvgena: resubscription failed: ", failure->what());
        std::optional<milliseconds> delay = self->backoff().next();
        if (!delay) {
            self->end(failure->code(), context_of(*failure));
            co_return;
        }
        co_await sleep_for(self->loop(), *delay);
        if (self->phase == Phase::ended) co_return;
    }
    self->reset_backoff();
    ++self->counters().resubscriptions;
    log(LogLevel::info, "uvgena: resubscribed to ", self->url_text(), ": SID ", old_sid, " -> ",
        self->sid);
    if (unsubscribe_old && !old_sid.empty() && old_sid != self->sid && self->device_address) {
        self->start_background(
            send_unsubscribe(self->loop(), self->config->url, self->device_address.get(), old_sid,
                             self->config->timeout, self->config->user_agent, false));
    }
    HandlerCall call(*self);
    const HandlerSet* h = call.handlers();
    if (const ResubscribeHandler* fn = h ? h->on_resubscribe() : nullptr) {
        std::string new_sid = self->sid.str();
        call_user(self->listener, "resubscribe handler", [&] { (*fn)(old_sid, new_sid); });
    }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------

EventNextAwaiter::EventNextAwaiter(std::shared_ptr<detail::SubscriptionCore> state)
    : state_(std::move(state)), inner_(&state_->channel()) {}

EventNextAwaiter::~EventNextAwaiter() = default;

std::optional<Event> EventNextAwaiter::await_resume() {
    std::optional<Event> event = inner_.await_resume();
    if (!event && state_->end_error()) throw Error(state_->end_error(), state_->end_context());
    return event;
}

namespace {
using CorePtr = std::shared_ptr<detail::SubscriptionCore>;
const CorePtr& checked(const CorePtr& s) {
    if (!s) throw Error(make_error_code(uvgena::errc::invalid_argument), "empty Subscription");
    return s;
}
const std::string kEmpty;
}  // namespace

EventNextAwaiter EventStream::next() const {
    return EventNextAwaiter(checked(state_));
}

std::optional<Event> EventStream::try_next() const {
    return checked(state_)->channel().try_next();
}

std::size_t EventStream::size() const noexcept {
    return state_ && state_->events ? state_->events->size() : 0;
}

Subscription::Subscription() noexcept = default;

Subscription::Subscription(std::shared_ptr<detail::SubscriptionCore> state,
                           std::shared_ptr<detail::ListenerImpl> listener) noexcept
    : state_(std::move(state)), listener_(std::move(listener)) {}

Subscription::Subscription(Subscription&& other) noexcept
    : state_(std::move(other.state_)), listener_(std::move(other.listener_)) {}

Subscription& Subscription::operator=(Subscription&& other) noexcept {
    if (this != &other) {
        release();
        state_ = std::move(other.state_);
        listener_ = std::move(other.listener_);
    }
    return *this;
}

Subscription::~Subscription() {
    release();
}

void Subscription::release() noexcept {
    if (!state_) return;
    std::shared_ptr<detail::SubscriptionCore> state = std::move(state_);
    try {
        if (std::optional<Task<void>> unsubscribing = state->end_and_unsubscribe(false)) {
            uvgena::spawn(state->loop(), std::move(*unsubscribing));
        }
    } catch (const std::exception& e) {
        state->end({});
        log(LogLevel::warning, "uvgena: cannot unsubscribe ", state->url_text(), ": ", e.what());
    }
    state.reset();
    detail::ListenerImpl::release(listener_);
}

std::string Subscription::sid() const {
    return state_ ? state_->sid.str() : std::string();
}

Timeout Subscription::timeout() const {
    return state_ ? state_->granted() : Timeout{};
}

std::optional<std::chrono::milliseconds> Subscription::time_left() const {
    using std::chrono::milliseconds;
    if (!state_ || !state_->subscribed()) return milliseconds(0);
    if (state_->granted_infinite_) return std::nullopt;
    auto end = state_->granted_at + state_->granted().seconds;
    auto now = SteadyClock::now();
    if (now >= end) return milliseconds(0);
    return std::chrono::duration_cast<milliseconds>(end - now);
}

// A subscription being re-established (lost, expired or replaced) is not subscribed: the
// device may have forgotten its SID, and events resume only with the new one.
bool Subscription::is_subscribed() const noexcept {
    return state_ && state_->subscribed() &&
           state_->phase != detail::SubscriptionCore::Phase::resubscribing;
}

const std::string& Subscription::service_url() const {
    return state_ ? state_->url_text() : kEmpty;
}

std::string Subscription::callback_url() const {
    return state_ ? state_->callback_url() : std::string();
}

SubscriptionStats Subscription::stats() const {
    return state_ ? state_->stats() : SubscriptionStats{};
}

std::error_code Subscription::error() const {
    return state_ ? state_->end_error() : std::error_code{};
}

std::optional<std::uint32_t> Subscription::last_seq() const {
    return state_ ? state_->last_seq() : std::nullopt;
}

EventStream Subscription::events() const {
    return detail::SubscriberAccess::make_stream(checked(state_));
}

void Subscription::set_callback(EventCallback callback) {
    const auto& state = checked(state_);
    SubscriptionHandlers handlers;
    if (const detail::HandlerSet* old = state->current_handlers()) handlers = old->unpack();
    handlers.on_event = std::move(callback);
    state->set_handlers(detail::HandlerSet::make(std::move(handlers)));
}

void Subscription::set_handlers(SubscriptionHandlers handlers) {
    checked(state_)->set_handlers(detail::HandlerSet::make(std::move(handlers)));
}

Task<void> Subscription::renew(std::optional<std::chrono::seconds> requested_timeout) {
    std::shared_ptr<detail::SubscriptionCore> state = checked(state_);
    std::string renewed_sid = state->sid.str();
    if (!requested_timeout) {
        requested_timeout = state->config->requested_timeout;
        if (!requested_timeout && !state->granted_infinite_)
            requested_timeout = state->granted().seconds;
    }
    std::optional<Error> failure;
    try {
        co_await state->exchange_renew(requested_timeout);
    } catch (const Error& e) {
        failure = e;
    }
    if (!failure) co_return;
    if (failure->code() == errc::precondition_failed &&
        state->phase != detail::SubscriptionCore::Phase::ended && state->sid == renewed_sid) {
        state->lost(failure->code(), context_of(*failure));
    }
    throw *failure;
}

void Subscription::resubscribe_now() {
    if (state_) state_->resubscribe_later(true);
}

Task<void> Subscription::unsubscribe(bool strict) {
    std::shared_ptr<detail::SubscriptionCore> state = state_;
    if (!state) co_return;
    std::optional<Task<void>> unsubscribing = state->end_and_unsubscribe(strict);
    if (unsubscribing) co_await std::move(*unsubscribing);
}

Task<Subscription> subscribe(uv_loop_t* loop, std::string event_url, SubscribeOptions options,
                             SubscriptionHandlers handlers) {
    std::string context = "subscribe to " + event_url;
    std::string reason;
    Result<http::Url> url = http::Url::try_parse(event_url, &reason);
    if (!url) throw Error(url.error(), context + ": " + reason);
    if (url->scheme != "http") {
        throw Error(make_error_code(http::errc::bad_url), context + ": not an http:// URL");
    }
    std::shared_ptr<detail::ListenerImpl> listener =
        options.listener != nullptr ? detail::SubscriberAccess::impl(*options.listener)
                                    : detail::ListenerImpl::shared_for(loop);
    if (listener->loop() != loop) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    context + ": the listener belongs to another loop");
    }
    listener->start();
    detail::HandlerSet handler_set = detail::HandlerSet::make(std::move(handlers));
    std::shared_ptr<const detail::SubConfig> config = listener->intern(
        std::make_shared<detail::SubConfig>(std::move(*url), std::move(event_url), options));
    auto state = std::make_shared<detail::SubscriptionCore>(loop, listener.get(), std::move(config),
                                                            std::move(handler_set));
    std::exception_ptr failure;
    try {
        co_await state->exchange_subscribe();
    } catch (...) {
        failure = std::current_exception();
    }
    if (failure) {
        state->end({});
        state.reset();
        detail::ListenerImpl::release(listener);
        std::rethrow_exception(failure);
    }
    co_return detail::SubscriberAccess::make_subscription(std::move(state), std::move(listener));
}

}  // namespace uvgena::gena
