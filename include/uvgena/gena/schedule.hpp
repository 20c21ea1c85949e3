// When a subscription does what: renewal at 85% of the granted duration, expiry, retries with
// exponential backoff and jitter, and the event-silence watchdog. Pure code over time points
// (no clock is read here): the subscription feeds it `now` and arms one loop timer for
// `next()`, so the logic is tested with a manual clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "uvgena/core/export.hpp"
#include "uvgena/gena/protocol.hpp"

namespace uvgena::gena {

/// The clock of subscription deadlines (the same as uvgena::Clock).
using SteadyClock = std::chrono::steady_clock;

/// Fraction of the granted duration after which a subscription is renewed.
inline constexpr double default_renew_fraction = 0.85;

/// The renewal time of a subscription granted `granted` at `granted_at`: `fraction` of the
/// duration later. Infinite durations are never renewed (nullopt).
UVGENA_API std::optional<SteadyClock::time_point> renewal_time(
    SteadyClock::time_point granted_at, const Timeout& granted,
    double fraction = default_renew_fraction);

/// When a subscription granted `granted` at `granted_at` expires (nullopt: never).
UVGENA_API std::optional<SteadyClock::time_point> expiry_time(SteadyClock::time_point granted_at,
                                                              const Timeout& granted);

/// How retries (of a renewal, of a resubscription) are spaced.
struct UVGENA_API BackoffOptions {
    std::chrono::milliseconds initial{1'000};  ///< Delay before the first retry.
    std::chrono::milliseconds max{60'000};     ///< Cap of the delay.
    double factor = 2.0;                       ///< Growth per attempt.
    double jitter = 0.2;        ///< Each delay is scaled by a random factor in [1-j, 1+j].
    unsigned max_attempts = 0;  ///< Attempts before giving up; 0: never give up.
};

/// Exponential backoff with jitter and a cap; the random source is a seeded generator so that
/// tests are deterministic.
class UVGENA_API Backoff {
  public:
    /// A backoff with these options; `seed` feeds the jitter.
    explicit Backoff(BackoffOptions options = {}, std::uint64_t seed = 0x9e3779b97f4a7c15u);

    /// The delay before the next attempt (and counts it), or nullopt once `max_attempts`
    /// attempts were made.
    std::optional<std::chrono::milliseconds> next() noexcept;
    /// Starts over (after a success).
    void reset() noexcept { attempts_ = 0; }
    /// Attempts counted since the last reset.
    unsigned attempts() const noexcept { return attempts_; }
    /// The options.
    const BackoffOptions& options() const noexcept { return options_; }

  private:
    double uniform() noexcept;  // in [0, 1)

    BackoffOptions options_;
    std::uint64_t state_;
    unsigned attempts_ = 0;
};

/// What a subscription's deadline asks for.
enum class ScheduledAction {
    none,     ///< Nothing is due.
    renew,    ///< Time to renew (first try or a retry).
    expire,   ///< The granted duration has run out without a successful renewal.
    silence,  ///< No event for the configured silence time (watchdog).
};

/// The deadlines of one subscription. Feed it what happened; ask it what is next.
class UVGENA_API SubscriptionSchedule {
  public:
    using time_point = SteadyClock::time_point;
    using duration = SteadyClock::duration;

    /// `auto_renew`: schedule renewals; `silence`: watchdog period (nullopt: no watchdog);
    /// `fraction`: when to renew within the granted duration.
    explicit SubscriptionSchedule(bool auto_renew = false,
                                  std::optional<duration> silence = std::nullopt,
                                  double fraction = default_renew_fraction) noexcept
        : silence_(silence.value_or(kNone)), fraction_(fraction), auto_renew_(auto_renew) {}

    /// A SUBSCRIBE or renewal succeeded at `now` with `granted`: renewal and expiry are
    /// set from it (an infinite duration has neither), the watchdog restarts.
    void on_granted(time_point now, const Timeout& granted);
    /// A renewal failed at `now`; retry after `delay`, unless that is past the expiry (then
    /// only the expiry remains).
    void on_renew_failed(time_point now, duration delay);
    /// An event arrived at `now`: the watchdog restarts.
    void on_event(time_point now);
    /// Nothing more is scheduled (the subscription ended or is being recreated).
    void clear() noexcept;

    /// The earliest pending deadline, if any.
    std::optional<time_point> next() const noexcept;
    /// The most urgent action due at `now` (expire, then renew, then silence), which is
    /// cleared (silence re-arms itself one period later); none if nothing is due.
    ScheduledAction take_due(time_point now);

    /// Pending renewal time.
    std::optional<time_point> renew_at() const noexcept { return maybe(renew_at_); }
    /// Expiry of the current grant.
    std::optional<time_point> expires_at() const noexcept { return maybe(expires_at_); }
    /// Pending watchdog time.
    std::optional<time_point> silence_at() const noexcept { return maybe(silence_at_); }

  private:
    // "None" is a value of its own (the earliest time point, the most negative duration)
    // rather than a std::optional: every subscription keeps a schedule, and the four flags
    // with their padding made it 80 bytes instead of 48.
    static constexpr time_point kNever = time_point::min();
    static constexpr duration kNone = duration::min();
    static std::optional<time_point> maybe(time_point t) noexcept {
        return t == kNever ? std::nullopt : std::optional<time_point>(t);
    }

    duration silence_;  // kNone: no watchdog
    double fraction_;
    time_point renew_at_ = kNever;
    time_point expires_at_ = kNever;
    time_point silence_at_ = kNever;
    bool auto_renew_;
};

}  // namespace uvgena::gena
