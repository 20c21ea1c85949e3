// Blocking state mirrors: a service's live state for threads that are not event-driven.
//
//     uvgena::BackgroundLoop bg;
//     uvgena::BlockingStateMirror mirror =
//         bg.mirror(url, {.auto_renew = true, .auto_resubscribe = true}).wait(10s);
//     while (auto changes = mirror.changed(1s)) {            // nullopt: a quiet second
//         if (changes->contains("Volume", {.channel = "Master"}))
//             print(mirror.get("Volume", {.channel = "Master"}).value_or("?"));
//     }
//
// The gena::StateMirror itself lives on the BackgroundLoop's thread; after each change set
// it publishes a copy of the state and the change set to a lock-protected place that any
// thread reads: get() and state() never wait for the loop, changed() waits only for a change.
// A reader always sees a state at least as new as the changes it was handed (both are
// published together), and the state is never torn (one lock, one copy).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "uvgena/blocking/background_loop.hpp"
#include "uvgena/blocking/eventual_result.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/subscriber/service_state.hpp"

namespace uvgena {

namespace detail {
struct BlockingMirrorShared;
struct LoopMirror;
}  // namespace detail

/// A gena::StateMirror used from threads other than its loop's (made by
/// BackgroundLoop::mirror). Move-only. Reads (get, state, stale, changed) may be made from
/// any thread, the loop's included: they never wait for the loop. Calls that ask the loop
/// (sid, stats, unsubscribe's wait) throw Error(errc::wrong_thread) when waited on from the
/// loop thread. Destroying the handle unsubscribes leniently on the loop, without waiting;
/// so does stopping the BackgroundLoop. The handle may outlive the BackgroundLoop: the state
/// stays readable (stale), changed() reports the end.
class UVGENA_API BlockingStateMirror {
  public:
    /// An empty handle (valid() is false).
    BlockingStateMirror() noexcept = default;
    BlockingStateMirror(BlockingStateMirror&&) noexcept = default;
    /// Releases the current mirror (as the destructor does), then takes `other`'s.
    BlockingStateMirror& operator=(BlockingStateMirror&& other) noexcept;
    BlockingStateMirror(const BlockingStateMirror&) = delete;
    BlockingStateMirror& operator=(const BlockingStateMirror&) = delete;
    /// Unsubscribes leniently on the loop (not waited for).
    ~BlockingStateMirror();

    /// Internal: made by BackgroundLoop::mirror.
    UVGENA_LOCAL BlockingStateMirror(detail::LoopPoster poster,
                                     std::weak_ptr<detail::LoopMirror> loop_side,
                                     std::shared_ptr<detail::BlockingMirrorShared> shared) noexcept;

    /// True unless empty.
    bool valid() const noexcept { return shared_ != nullptr; }

    /// What changed since the previous call (at once if something did), coalesced when this
    /// thread is slower than the events (see gena::StateChangeAccumulator); the values are in
    /// state() and get(). Waits as long as it takes; std::nullopt once the subscription ended
    /// normally (unsubscribed, handle released elsewhere, loop stopped) and every change was
    /// taken. Throws the error that ended the subscription (a loss without auto_resubscribe).
    std::optional<gena::StateChanges> changed();
    /// Like changed(), but std::nullopt also when nothing changes within `timeout` (ended()
    /// tells the two apart).
    template <typename Rep, typename Period>
    std::optional<gena::StateChanges> changed(std::chrono::duration<Rep, Period> timeout) {
        return changed_for(std::chrono::ceil<std::chrono::nanoseconds>(timeout));
    }
    /// True once the subscription ended and every change was taken.
    bool ended() const;

    /// A copy of the mirrored state now (typed reads, DIDL-Lite, iteration: see
    /// gena::ServiceState); it belongs to the calling thread.
    gena::ServiceState state() const;
    /// The value designated by `name` and `key` now (see gena::StateKey), if present.
    std::optional<std::string> get(std::string_view name, const gena::StateKey& key = {}) const;
    /// True when the values may be out of date (see gena::ServiceState::stale).
    bool stale() const;
    /// Incremented whenever a value changed (see gena::ServiceState::version): a cheap test
    /// for "anything new since I last looked?".
    std::uint64_t version() const;

    /// The subscription's current SID (asked on the loop: it changes on resubscription).
    std::string sid() const;
    /// The mirror's counters (resyncs asked for, dropped events), asked on the loop.
    gena::StateMirrorStats stats() const;
    /// The subscription's counters (a copy, taken on the loop).
    gena::SubscriptionStats subscription_stats() const;
    /// Unsubscribes (see gena::Subscription::unsubscribe); changed() then reports the end
    /// once drained. A second call does nothing.
    EventualResult<void> unsubscribe(bool strict = true);

  private:
    std::optional<gena::StateChanges> changed_for(std::chrono::nanoseconds timeout);
    void release() noexcept;

    detail::LoopPoster poster_;
    std::weak_ptr<detail::LoopMirror> loop_side_;
    std::shared_ptr<detail::BlockingMirrorShared> shared_;
};

}  // namespace uvgena
