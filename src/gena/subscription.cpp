// Subscriptions: the SUBSCRIBE / renewal / UNSUBSCRIBE exchanges, SEQ checks and delivery,
// and the background work driven by the schedule (auto-renewal, resubscription, watchdog).
#include "uvgena/gena/subscription.hpp"

#include <algorithm>

#include "gena/subscription_impl.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/tcp.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/http/error.hpp"

namespace uvgena::gena {

std::string_view to_string(SeqStatus status) noexcept {
    switch (status) {
        case SeqStatus::ok: return "ok";
        case SeqStatus::gap: return "gap";
        case SeqStatus::duplicate: return "duplicate";
        case SeqStatus::reset: return "reset";
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
    std::string ip = url.zone.empty() ? url.host : url.host + "%" + url.zone;
    if (auto literal = SocketAddress::try_parse(ip, url.port)) co_return *literal;
    std::vector<SocketAddress> found;
    try {
        found = co_await uvgena::resolve(loop, url.host, url.port);
    } catch (const Error& e) {
        if (is_cancelled(e.code())) throw;
        throw Error(make_error_code(http::errc::resolve_failed),
                    context + ": cannot resolve " + url.host);
    }
    if (found.empty()) {
        throw Error(make_error_code(http::errc::resolve_failed),
                    context + ": no address for " + url.host);
    }
    co_return found.front();
}

// The context of an error: what() without the ": <message>" that system_error appends, so
// that an error made again from it does not repeat the message.
std::string context_of(const Error& e) {
    std::string what = e.what();
    std::string suffix = ": " + e.code().message();
    if (what.size() >= suffix.size() &&
        what.compare(what.size() - suffix.size(), suffix.size(), suffix) == 0) {
        what.resize(what.size() - suffix.size());
    }
    return what;
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

SubState::SubState(uv_loop_t* l, ListenerImpl* li, http::Url u, std::string text,
                   SubscribeOptions o)
    : loop(l),
      listener(li),
      url(std::move(u)),
      url_text(std::move(text)),
      options(std::move(o)),
      schedule(options.auto_renew,
               options.silence_timeout
                   ? std::optional<SteadyClock::duration>(*options.silence_timeout)
                   : std::nullopt),
      backoff(options.backoff),
      error_context("subscribe to " + url_text),
      user_agent(options.user_agent),
      ctx_(l) {
    options.user_agent = {};
    if (options.on_event) {
        callback = std::make_shared<const EventCallback>(std::move(options.on_event));
        options.on_event = nullptr;
    }
    timer_.fire = &SubState::on_timer;
    timer_.owner = this;
    id = listener->add(this);
    backoff = Backoff(options.backoff, 0x9e3779b97f4a7c15u ^ id);
}

SubState::~SubState() {
    ctx_->remove_timer(&timer_);
    if (listener != nullptr) listener->remove(id);
}

Channel<Event>& SubState::channel() {
    if (!events) {
        Overflow policy = options.overflow == Overflow::wait ? Overflow::reject_new : options.overflow;
        events = std::make_unique<Channel<Event>>(loop, std::max<std::size_t>(options.queue_capacity, 1),
                                                  policy);
        if (phase == Phase::ended) events->close();
    }
    return *events;
}

void SubState::rearm() noexcept {
    ctx_->remove_timer(&timer_);
    if (phase == Phase::ended) return;
    if (auto next = schedule.next()) {
        timer_.deadline = *next;
        try {
            ctx_->add_timer(&timer_);
        } catch (const std::exception& e) {
            log(LogLevel::error, "uvgena: cannot arm the timer of ", url_text, ": ", e.what());
        }
    }
}

void SubState::on_timer(uvgena::detail::TimerNode* node) noexcept {
    static_cast<SubState*>(node->owner)->on_deadline();
}

void SubState::on_deadline() noexcept {
    // The state may end (and be released) by what runs here: keep it alive until we are done.
    std::shared_ptr<SubState> self = shared_from_this();
    SteadyClock::time_point now = SteadyClock::now();
    for (;;) {
        ScheduledAction action = schedule.take_due(now);
        if (action == ScheduledAction::none || phase == Phase::ended) break;
        switch (action) {
            case ScheduledAction::renew:
                if (!background_busy && phase == Phase::active) {
                    start_background(auto_renew_task(self));
                }
                break;
            case ScheduledAction::expire:
                lost(make_error_code(uvgena::errc::timed_out),
                     "subscription " + sid + " to " + url_text + " expired");
                break;
            case ScheduledAction::silence: {
                ++stats.silences;
                milliseconds silence = options.silence_timeout.value_or(milliseconds(0));
                log(LogLevel::warning, "uvgena: no event from ", url_text, " for ",
                    silence.count(), " ms (is the callback address ", callback_url,
                    " reachable from the device?)");
                if (options.on_silence) {
                    call_user(listener, "silence handler", [&] { options.on_silence(silence); });
                }
                if (options.resubscribe_on_silence) resubscribe_later(true);
                break;
            }
            case ScheduledAction::none: break;
        }
    }
    rearm();
}

void SubState::start_background(Task<void> task) {
    if (listener == nullptr) return;
    try {
        listener->scope().spawn(std::move(task));
    } catch (const std::exception& e) {
        log(LogLevel::error, "uvgena: cannot start background work for ", url_text, ": ",
            e.what());
    }
}

void SubState::adopt(const SubscribeAnswer& answer, bool fresh) {
    if (!sid.empty() && answer.sid != sid) {
        log(LogLevel::info, "uvgena: ", url_text, ": SID ", sid, " is now ", answer.sid);
        fresh = true;
    }
    sid = answer.sid;
    granted = answer.timeout;
    granted_at = SteadyClock::now();
    phase = Phase::active;
    if (fresh) seq.reset();
    schedule.on_granted(granted_at, granted);
    rearm();
    if (held.empty()) return;
    // NOTIFYs that overtook the answer: those for this SID, in SEQ order; others never will
    // be ours (an older SID, or garbage that guessed the path).
    std::vector<Event> pending = std::move(held);
    held.clear();
    std::stable_sort(pending.begin(), pending.end(),
                     [](const Event& a, const Event& b) { return a.seq < b.seq; });
    for (Event& event : pending) {
        if (event.sid == sid && phase != Phase::ended) {
            accept(std::move(event));
        } else {
            if (listener != nullptr) ++listener->stats.held_dropped;
            log(LogLevel::warning, "uvgena: dropped a held NOTIFY for SID ", event.sid, " SEQ ",
                event.seq, " at ", callback_url, ": the subscription's SID is ", sid);
        }
    }
}

void SubState::accept(Event event) {
    ++stats.events_received;
    if (event.parse_error) ++stats.parse_errors;
    bool had_events = seq.last().has_value();
    SeqCheck check = seq.observe(event.seq);
    event.seq_order = check.order;
    event.missed = check.missed;
    switch (check.order) {
        case SeqOrder::first:
        case SeqOrder::expected: event.seq_status = SeqStatus::ok; break;
        case SeqOrder::gap:
            event.seq_status = SeqStatus::gap;
            stats.events_missed += check.missed;
            log(LogLevel::warning, "uvgena: ", url_text, ": ", check.missed,
                " event(s) missed before SEQ ", event.seq);
            break;
        case SeqOrder::duplicate:
        case SeqOrder::stale:
            event.seq_status = SeqStatus::duplicate;
            ++stats.duplicates;
            break;
        case SeqOrder::reset:
            event.seq_status = SeqStatus::reset;
            ++stats.seq_resets;
            break;
    }
    schedule.on_event(SteadyClock::now());
    rearm();
    bool gap = check.order == SeqOrder::gap && had_events;
    if (check.deliver() || options.deliver_duplicates) {
        ++stats.events_delivered;
        if (callback && listener != nullptr) {
            listener->queue_callback(shared_from_this(), std::move(event));
        } else {
            Channel<Event>& ch = channel();
            std::size_t dropped_before = ch.dropped();
            bool pushed = ch.push(std::move(event));
            if (!pushed || ch.dropped() != dropped_before) {
                ++stats.events_dropped;
                if (!pushed) --stats.events_delivered;
                log(LogLevel::warning, "uvgena: ", url_text,
                    ": event queue full, an event was dropped");
            }
        }
    }
    if (gap && options.resubscribe_on_gap) resubscribe_later(true);
}

void SubState::hold(Event event) {
    std::size_t limit = listener != nullptr ? listener->options.max_held_events : 0;
    if (held.size() >= limit) {
        if (listener != nullptr) ++listener->stats.held_dropped;
        log(LogLevel::warning, "uvgena: dropped a NOTIFY for unknown SID ", event.sid,
            " at ", callback_url, ": too many held");
        return;
    }
    if (listener != nullptr) ++listener->stats.held;
    held.push_back(std::move(event));
}

void SubState::end(std::error_code error, std::string context) {
    if (phase == Phase::ended) return;
    phase = Phase::ended;
    end_error = error;
    end_context = std::move(context);
    schedule.clear();
    ctx_->remove_timer(&timer_);
    if (!held.empty()) {
        if (listener != nullptr) listener->stats.held_dropped += held.size();
        log(LogLevel::warning, "uvgena: dropped ", held.size(),
            " held NOTIFY(s) at ", callback_url, ": their SID never became known");
        held.clear();
    }
    if (listener != nullptr) {
        listener->remove(id);
        listener = nullptr;
    }
    if (error) log(LogLevel::warning, "uvgena: subscription ended: ", end_context);
    if (events) events->close();
}

void SubState::flush_queue_to_callback() {
    if (!events || listener == nullptr) return;
    while (std::optional<Event> event = events->try_next()) {
        listener->queue_callback(shared_from_this(), std::move(*event));
    }
}

void SubState::lost(const std::error_code& error, const std::string& context) {
    if (options.auto_resubscribe && listener != nullptr) {
        log(LogLevel::warning, "uvgena: ", context, "; resubscribing");
        resubscribe_later(false);
    } else {
        end(error, context);
    }
}

void SubState::resubscribe_later(bool unsubscribe_old) {
    if (phase == Phase::ended || phase == Phase::resubscribing || listener == nullptr) return;
    phase = Phase::resubscribing;
    schedule.clear();
    rearm();
    start_background(resubscribe_task(shared_from_this(), unsubscribe_old));
}

Task<void> SubState::exchange_subscribe() {
    SocketAddress device = co_await device_address_of(loop, url, error_context);
    if (phase == Phase::ended || listener == nullptr) {
        throw Error(make_error_code(uvgena::errc::closed), error_context + ": ended");
    }
    device_address = device;
    Result<SocketAddress> local = local_address_towards(device);
    callback_url = listener->callback_url(local ? std::optional(*local) : std::nullopt, id);
    SubscribeParams params;
    params.callbacks = {callback_url};
    params.timeout = options.requested_timeout;
    params.user_agent = user_agent;
    http::Request request = make_subscribe(url, params);
    Result<http::Response> response =
        co_await http::try_send(loop, device, std::move(request), client_options(options.timeout));
    if (!response) {
        throw Error(response.error(), error_context);
    }
    Result<SubscribeAnswer> answer = read_subscribe_response(*response, options.requested_timeout);
    if (!answer) {
        throw Error(answer.error(), answer_context(error_context, *response, answer.error()));
    }
    if (phase == Phase::ended || listener == nullptr) {
        // Ended while the answer was on its way: give the device its UNSUBSCRIBE.
        uvgena::spawn(loop, send_unsubscribe(loop, url, device, answer->sid, options.timeout,
                                             user_agent, false));
        throw Error(make_error_code(uvgena::errc::closed), error_context + ": ended meanwhile");
    }
    adopt(*answer, true);
}

Task<void> SubState::exchange_renew(std::optional<std::chrono::seconds> requested) {
    std::string context = "renew subscription " + sid + " to " + url_text;
    if (!subscribed() || !device_address) {
        throw Error(make_error_code(uvgena::errc::not_running), context + ": not subscribed");
    }
    bool was_active = phase == Phase::active;
    if (was_active) phase = Phase::renewing;
    http::Request request = make_renewal(url, sid, requested, user_agent);
    Result<http::Response> response = co_await http::try_send(
        loop, *device_address, std::move(request), client_options(options.timeout));
    if (phase == Phase::renewing) phase = Phase::active;
    if (!response) {
        throw Error(response.error(), context);
    }
    Result<SubscribeAnswer> answer = read_subscribe_response(*response, requested);
    if (!answer) throw Error(answer.error(), answer_context(context, *response, answer.error()));
    if (phase == Phase::ended) co_return;
    ++stats.renewals;
    backoff.reset();
    adopt(*answer, false);
}

Task<void> SubState::auto_renew_task(std::shared_ptr<SubState> self) {
    self->background_busy = true;
    std::optional<std::chrono::seconds> request;
    if (!self->granted.infinite) request = self->granted.seconds;
    std::optional<Error> failure;
    try {
        co_await self->exchange_renew(request);
    } catch (const Error& e) {
        failure = e;
    }
    self->background_busy = false;
    if (!failure || is_cancelled(failure->code()) || self->phase == Phase::ended) co_return;
    ++self->stats.renewal_failures;
    log(LogLevel::warning, "uvgena: ", failure->what());
    if (self->options.on_renew_failed) {
        call_user(self->listener, "auto_renew_fail handler",
                  [&] { self->options.on_renew_failed(*failure); });
    }
    if (self->phase == Phase::ended) co_return;
    if (failure->code() == errc::precondition_failed) {
        self->lost(failure->code(), context_of(*failure));
        co_return;
    }
    if (std::optional<milliseconds> delay = self->backoff.next()) {
        self->schedule.on_renew_failed(SteadyClock::now(), *delay);
    }
    self->rearm();
}

Task<void> SubState::resubscribe_task(std::shared_ptr<SubState> self, bool unsubscribe_old) {
    std::string old_sid = self->sid;
    self->backoff.reset();
    for (;;) {
        std::optional<Error> failure;
        try {
            co_await self->exchange_subscribe();
        } catch (const Error& e) {
            failure = e;
        }
        if (!failure) break;
        if (is_cancelled(failure->code()) || self->phase == Phase::ended) co_return;
        log(LogLevel::warning, "uvgena: resubscription failed: ", failure->what());
        std::optional<milliseconds> delay = self->backoff.next();
        if (!delay) {
            self->end(failure->code(), context_of(*failure));
            co_return;
        }
        co_await sleep_for(self->loop, *delay);
        if (self->phase == Phase::ended) co_return;
    }
    self->backoff.reset();
    ++self->stats.resubscriptions;
    log(LogLevel::info, "uvgena: resubscribed to ", self->url_text, ": SID ", old_sid, " -> ",
        self->sid);
    if (unsubscribe_old && !old_sid.empty() && old_sid != self->sid && self->device_address) {
        self->start_background(send_unsubscribe(self->loop, self->url, *self->device_address,
                                                old_sid, self->options.timeout,
                                                self->user_agent, false));
    }
    if (self->options.on_resubscribe) {
        call_user(self->listener, "resubscribe handler",
                  [&] { self->options.on_resubscribe(old_sid, self->sid); });
    }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------

EventNextAwaiter::EventNextAwaiter(std::shared_ptr<detail::SubState> state)
    : state_(std::move(state)), inner_(&state_->channel()) {}

EventNextAwaiter::~EventNextAwaiter() = default;

std::optional<Event> EventNextAwaiter::await_resume() {
    std::optional<Event> event = inner_.await_resume();
    if (!event && state_->end_error) throw Error(state_->end_error, state_->end_context);
    return event;
}

namespace {
const std::shared_ptr<detail::SubState>& checked(const std::shared_ptr<detail::SubState>& s) {
    if (!s) throw Error(make_error_code(uvgena::errc::invalid_argument), "empty Subscription");
    return s;
}
const std::string kEmpty;
const SubscriptionStats kNoStats;
}  // namespace

EventNextAwaiter EventStream::next() const { return EventNextAwaiter(checked(state_)); }

std::optional<Event> EventStream::try_next() const {
    return checked(state_)->channel().try_next();
}

std::size_t EventStream::size() const noexcept {
    return state_ && state_->events ? state_->events->size() : 0;
}

Subscription::Subscription() noexcept = default;

Subscription::Subscription(std::shared_ptr<detail::SubState> state,
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

Subscription::~Subscription() { release(); }

void Subscription::release() noexcept {
    if (!state_) return;
    std::shared_ptr<detail::SubState> state = std::move(state_);
    if (state->subscribed() && state->device_address) {
        std::string sid = state->sid;
        state->end({});
        try {
            uvgena::spawn(state->loop,
                          detail::send_unsubscribe(state->loop, state->url,
                                                   *state->device_address, std::move(sid),
                                                   state->options.timeout,
                                                   state->user_agent, false));
        } catch (const std::exception& e) {
            log(LogLevel::warning, "uvgena: cannot unsubscribe ", state->url_text, ": ",
                e.what());
        }
    } else {
        state->end({});
    }
    state.reset();
    detail::ListenerImpl::release(listener_);
}

const std::string& Subscription::sid() const { return state_ ? state_->sid : kEmpty; }

Timeout Subscription::timeout() const { return state_ ? state_->granted : Timeout{}; }

std::optional<std::chrono::milliseconds> Subscription::time_left() const {
    using std::chrono::milliseconds;
    if (!state_ || !state_->subscribed()) return milliseconds(0);
    if (state_->granted.infinite) return std::nullopt;
    auto end = state_->granted_at + state_->granted.seconds;
    auto now = SteadyClock::now();
    if (now >= end) return milliseconds(0);
    return std::chrono::duration_cast<milliseconds>(end - now);
}

// A subscription being re-established (lost, expired or replaced) is not subscribed: the
// device may have forgotten its SID, and events resume only with the new one.
bool Subscription::is_subscribed() const noexcept {
    return state_ && state_->subscribed() && state_->phase != detail::SubState::Phase::resubscribing;
}

const std::string& Subscription::service_url() const {
    return state_ ? state_->url_text : kEmpty;
}

const std::string& Subscription::callback_url() const {
    return state_ ? state_->callback_url : kEmpty;
}

const SubscriptionStats& Subscription::stats() const { return state_ ? state_->stats : kNoStats; }

std::error_code Subscription::error() const {
    return state_ ? state_->end_error : std::error_code{};
}

std::optional<std::uint32_t> Subscription::last_seq() const {
    return state_ ? state_->seq.last() : std::nullopt;
}

EventStream Subscription::events() const { return EventStream(checked(state_)); }

void Subscription::set_callback(EventCallback callback) {
    const auto& state = checked(state_);
    if (callback) {
        state->callback = std::make_shared<const EventCallback>(std::move(callback));
        state->flush_queue_to_callback();
    } else {
        state->callback.reset();
    }
}

Task<void> Subscription::renew(std::optional<std::chrono::seconds> requested_timeout) {
    std::shared_ptr<detail::SubState> state = checked(state_);
    if (!requested_timeout) {
        requested_timeout = state->options.requested_timeout;
        if (!requested_timeout && !state->granted.infinite) requested_timeout = state->granted.seconds;
    }
    std::optional<Error> failure;
    try {
        co_await state->exchange_renew(requested_timeout);
    } catch (const Error& e) {
        failure = e;
    }
    if (!failure) co_return;
    if (failure->code() == errc::precondition_failed && state->phase != detail::SubState::Phase::ended) {
        state->lost(failure->code(), detail::context_of(*failure));
    }
    throw *failure;
}

Task<void> Subscription::unsubscribe(bool strict) {
    std::shared_ptr<detail::SubState> state = state_;
    if (!state || state->phase == detail::SubState::Phase::ended) co_return;
    bool send = state->subscribed() && state->device_address.has_value();
    std::string sid = state->sid;
    state->end({});
    if (!send) co_return;
    co_await detail::send_unsubscribe(state->loop, state->url, *state->device_address,
                                      std::move(sid), state->options.timeout,
                                      state->user_agent, strict);
}

Task<Subscription> subscribe(uv_loop_t* loop, std::string event_url, SubscribeOptions options) {
    std::string context = "subscribe to " + event_url;
    std::string reason;
    Result<http::Url> url = http::Url::try_parse(event_url, &reason);
    if (!url) throw Error(url.error(), context + ": " + reason);
    if (url->scheme != "http") {
        throw Error(make_error_code(http::errc::bad_url), context + ": not an http:// URL");
    }
    std::shared_ptr<detail::ListenerImpl> listener =
        options.listener != nullptr ? options.listener->impl()
                                    : detail::ListenerImpl::shared_for(loop);
    if (listener->loop != loop) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    context + ": the listener belongs to another loop");
    }
    listener->start();
    auto state = std::make_shared<detail::SubState>(loop, listener.get(), std::move(*url),
                                                    std::move(event_url), std::move(options));
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
    co_return Subscription(std::move(state), std::move(listener));
}

}  // namespace uvgena::gena
