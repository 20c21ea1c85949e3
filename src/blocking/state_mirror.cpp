// Blocking state mirrors: a gena::StateMirror on the BackgroundLoop's thread, its state and
// change sets published under a lock for the application's threads.
#include "uvgena/blocking/state_mirror.hpp"

#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>

#include "blocking/error_copy.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/subscriber/subscription.hpp"

namespace uvgena {
namespace detail {

// What the handle and the loop side share: the published state, the changes not yet taken,
// and why the mirror ended. Everything in it is guarded by `mutex`.
struct BlockingMirrorShared {
    BlockingMirrorShared(std::shared_ptr<const control::Scpd> scpd, std::size_t max_changes)
        : state(std::move(scpd)), pending(max_changes) {}

    // Publishes the loop's state and the changes it made (loop thread).
    void publish(const gena::ServiceState& now, gena::StateChanges&& changes) {
        {
            std::lock_guard lock(mutex);
            state = now;
            pending.add(std::move(changes));
        }
        cv.notify_all();
    }

    // Ends the mirror (loop thread), with the state's last copy and the error that ended it,
    // if any. Only the first call counts.
    void finish(const gena::ServiceState* last, std::exception_ptr error) {
        {
            std::lock_guard lock(mutex);
            if (finished) return;
            finished = true;
            if (last != nullptr) state = *last;
            end_error = copy_error(error);
        }
        cv.notify_all();
    }

    // The changes, the end, or nothing (a time limit passed); `lock` holds `mutex`.
    std::optional<gena::StateChanges> take_locked(std::unique_lock<std::mutex>& lock) {
        if (!pending.empty()) return pending.take(state);
        if (finished && end_error) {
            std::exception_ptr copy = copy_error(end_error);
            lock.unlock();
            std::rethrow_exception(copy);
        }
        return std::nullopt;
    }

    std::mutex mutex;
    std::condition_variable cv;
    gena::ServiceState state;
    gena::StateChangeAccumulator pending;
    std::exception_ptr end_error;
    bool finished = false;
};

// The loop side: owns the StateMirror. Loop thread only; the handle holds a weak reference,
// locked in jobs on the loop thread, so the mirror is always destroyed there.
struct LoopMirror {
    LoopMirror() = default;
    LoopMirror(const LoopMirror&) = delete;
    LoopMirror& operator=(const LoopMirror&) = delete;
    // Ends the handle's side if the pump did not (its frame was destroyed because the
    // BackgroundLoop's shutdown grace ran out): a reader blocked in changed() must wake up.
    ~LoopMirror() {
        if (shared) shared->finish(mirror ? &mirror->state() : nullptr, nullptr);
    }

    std::unique_ptr<gena::StateMirror> mirror;
    std::shared_ptr<BlockingMirrorShared> shared;
    // Stops the pump: requested by the handle's release, forwarded from the loop's scope.
    std::stop_source stop;
};

namespace {

// Publishes every change set of the mirror until it ends.
Task<void> pump_changes(LoopMirror* m) {
    while (auto changes = co_await m->mirror->changed()) {
        m->shared->publish(m->mirror->state(), std::move(*changes));
    }
}

// Publishes the mirror's changes until it ends or the pump is stopped (handle released,
// BackgroundLoop stopping); then unsubscribes leniently, under a token of its own, and ends
// the handle's side.
Task<void> pump(std::shared_ptr<LoopMirror> lm) {
    std::stop_token scope_token = co_await current_stop_token();
    std::stop_callback<StopForwarder> forward(scope_token, StopForwarder{&lm->stop});
    std::exception_ptr end_error;
    bool stopped = false;
    try {
        co_await with_stop_token(pump_changes(lm.get()), lm->stop.get_token());
    } catch (const std::system_error& e) {
        if (is_cancelled(e.code()) && lm->stop.stop_requested()) {
            stopped = true;
        } else {
            end_error = std::current_exception();
        }
    } catch (...) {
        end_error = std::current_exception();
    }
    if (stopped) {
        try {
            co_await with_stop_token(lm->mirror->unsubscribe(false), std::stop_token());
        } catch (const std::exception& e) {
            log(LogLevel::warning, "blocking state mirror: lenient unsubscribe: ", e.what());
        }
    }
    lm->shared->finish(&lm->mirror->state(), end_error);
    // The mirror and its Subscription die here, on the loop thread.
    lm->mirror.reset();
}

// Runs `f(mirror)` on the loop and waits for its value; the mirror must still be there
// (else Error(errc::closed)).
template <typename F>
auto on_loop(const LoopPoster& poster, const std::weak_ptr<LoopMirror>& w, F f) {
    return poster
        .run([w, f = std::move(f)]() mutable {
            auto lm = w.lock();
            if (!lm || !lm->mirror) {
                throw Error(make_error_code(errc::closed), "blocking state mirror ended");
            }
            return f(*lm->mirror);
        })
        .wait();
}

}  // namespace
}  // namespace detail

// --- BlockingStateMirror ---------------------------------------------------------------

BlockingStateMirror::BlockingStateMirror(
    detail::LoopPoster poster, std::weak_ptr<detail::LoopMirror> loop_side,
    std::shared_ptr<detail::BlockingMirrorShared> shared) noexcept
    : poster_(std::move(poster)), loop_side_(std::move(loop_side)), shared_(std::move(shared)) {}

BlockingStateMirror& BlockingStateMirror::operator=(BlockingStateMirror&& other) noexcept {
    if (this != &other) {
        release();
        poster_ = std::move(other.poster_);
        loop_side_ = std::move(other.loop_side_);
        shared_ = std::move(other.shared_);
    }
    return *this;
}

BlockingStateMirror::~BlockingStateMirror() {
    release();
}

void BlockingStateMirror::release() noexcept {
    if (!shared_) return;
    shared_.reset();
    try {
        // The pump unsubscribes leniently and lets the mirror go, on the loop thread.
        (void)poster_.run([w = std::move(loop_side_)] {
            if (auto lm = w.lock()) lm->stop.request_stop();
        });
    } catch (const std::exception&) {
        // The loop stopped: its shutdown already ended the mirror.
    }
}

namespace {

detail::BlockingMirrorShared& shared_of(const std::shared_ptr<detail::BlockingMirrorShared>& s) {
    if (!s) throw Error(make_error_code(errc::invalid_argument), "empty BlockingStateMirror");
    return *s;
}

}  // namespace

std::optional<gena::StateChanges> BlockingStateMirror::changed() {
    detail::BlockingMirrorShared& s = shared_of(shared_);
    std::unique_lock lock(s.mutex);
    s.cv.wait(lock, [&s] { return !s.pending.empty() || s.finished; });
    return s.take_locked(lock);
}

std::optional<gena::StateChanges> BlockingStateMirror::changed_for(
    std::chrono::nanoseconds timeout) {
    detail::BlockingMirrorShared& s = shared_of(shared_);
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
    std::unique_lock lock(s.mutex);
    s.cv.wait_until(lock, deadline, [&s] { return !s.pending.empty() || s.finished; });
    return s.take_locked(lock);
}

bool BlockingStateMirror::ended() const {
    detail::BlockingMirrorShared& s = shared_of(shared_);
    std::lock_guard lock(s.mutex);
    return s.finished && s.pending.empty();
}

gena::ServiceState BlockingStateMirror::state() const {
    detail::BlockingMirrorShared& s = shared_of(shared_);
    std::lock_guard lock(s.mutex);
    return s.state;
}

std::optional<std::string> BlockingStateMirror::get(std::string_view name,
                                                    const gena::StateKey& key) const {
    detail::BlockingMirrorShared& s = shared_of(shared_);
    std::lock_guard lock(s.mutex);
    std::optional<std::string_view> value = s.state.get(name, key);
    if (!value) return std::nullopt;
    return std::string(*value);
}

bool BlockingStateMirror::stale() const {
    detail::BlockingMirrorShared& s = shared_of(shared_);
    std::lock_guard lock(s.mutex);
    return s.state.stale();
}

std::uint64_t BlockingStateMirror::version() const {
    detail::BlockingMirrorShared& s = shared_of(shared_);
    std::lock_guard lock(s.mutex);
    return s.state.version();
}

std::string BlockingStateMirror::sid() const {
    return detail::on_loop(poster_, loop_side_,
                           [](gena::StateMirror& m) { return m.subscription().sid(); });
}

gena::StateMirrorStats BlockingStateMirror::stats() const {
    return detail::on_loop(poster_, loop_side_, [](gena::StateMirror& m) { return m.stats(); });
}

gena::SubscriptionStats BlockingStateMirror::subscription_stats() const {
    return detail::on_loop(poster_, loop_side_,
                           [](gena::StateMirror& m) { return m.subscription().stats(); });
}

EventualResult<void> BlockingStateMirror::unsubscribe(bool strict) {
    return poster_
        .run([w = loop_side_, strict]() -> Task<void> {
            auto lm = w.lock();
            if (!lm || !lm->mirror) co_return;  // already ended
            co_await lm->mirror->unsubscribe(strict);
        })
        .describe("BlockingStateMirror::unsubscribe");
}

// --- BackgroundLoop::mirror ------------------------------------------------------------

EventualResult<BlockingStateMirror> BackgroundLoop::mirror(std::string event_url) {
    return mirror(std::move(event_url), gena::SubscribeOptions{}, gena::StateMirrorOptions{});
}

EventualResult<BlockingStateMirror> BackgroundLoop::mirror(std::string event_url,
                                                           gena::SubscribeOptions options) {
    return mirror(std::move(event_url), options, gena::StateMirrorOptions{});
}

EventualResult<BlockingStateMirror> BackgroundLoop::mirror(
    std::string event_url, gena::SubscribeOptions options,
    gena::StateMirrorOptions mirror_options) {
    std::string what = "BackgroundLoop::mirror " + event_url;
    return run([url = std::move(event_url), options, mirror_options = std::move(mirror_options),
                poster = poster_](detail::JobContext context) mutable -> Task<BlockingStateMirror> {
               auto shared = std::make_shared<detail::BlockingMirrorShared>(
                   mirror_options.scpd, mirror_options.max_pending_changes);
               auto lm = std::make_shared<detail::LoopMirror>();
               lm->shared = shared;
               gena::Subscription subscription =
                   co_await gena::subscribe(context.loop, std::move(url), options);
               lm->mirror = std::make_unique<gena::StateMirror>(
                   context.loop, std::move(subscription), std::move(mirror_options));
               context.scope->spawn(detail::pump(lm));
               co_return BlockingStateMirror(std::move(poster), lm, std::move(shared));
           })
        .describe(std::move(what));
}

}  // namespace uvgena
