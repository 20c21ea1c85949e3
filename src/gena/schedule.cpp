#include "uvgena/gena/schedule.hpp"

#include <algorithm>
#include <cmath>

namespace uvgena::gena {

using std::chrono::duration_cast;

std::optional<SteadyClock::time_point> renewal_time(SteadyClock::time_point granted_at,
                                                    const Timeout& granted, double fraction) {
    if (granted.infinite) return std::nullopt;
    fraction = std::clamp(fraction, 0.0, 1.0);
    auto total = duration_cast<SteadyClock::duration>(granted.seconds);
    auto part =
        duration_cast<SteadyClock::duration>(std::chrono::duration<double, SteadyClock::period>(
            static_cast<double>(total.count()) * fraction));
    return granted_at + part;
}

std::optional<SteadyClock::time_point> expiry_time(SteadyClock::time_point granted_at,
                                                   const Timeout& granted) {
    if (granted.infinite) return std::nullopt;
    return granted_at + duration_cast<SteadyClock::duration>(granted.seconds);
}

Backoff::Backoff(BackoffOptions options, std::uint64_t seed) : options_(options), state_(seed) {}

double Backoff::uniform() noexcept {
    // splitmix64: small, fast, and good enough for jitter.
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
}

std::optional<std::chrono::milliseconds> Backoff::next() noexcept {
    if (options_.max_attempts != 0 && attempts_ >= options_.max_attempts) return std::nullopt;
    double base = static_cast<double>(options_.initial.count()) *
                  std::pow(std::max(options_.factor, 1.0), static_cast<double>(attempts_));
    base = std::min(base, static_cast<double>(options_.max.count()));
    double jitter = std::clamp(options_.jitter, 0.0, 1.0);
    double scaled = base * (1.0 - jitter + 2.0 * jitter * uniform());
    ++attempts_;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::max(scaled, 0.0)));
}

void SubscriptionSchedule::on_granted(time_point now, const Timeout& granted) {
    expires_at_ = expiry_time(now, granted).value_or(kNever);
    renew_at_ = auto_renew_ ? renewal_time(now, granted, fraction_).value_or(kNever) : kNever;
    on_event(now);
}

void SubscriptionSchedule::on_renew_failed(time_point now, duration delay) {
    time_point retry = now + delay;
    if (expires_at_ != kNever && retry >= expires_at_) {
        renew_at_ = kNever;
    } else {
        renew_at_ = retry;
    }
}

void SubscriptionSchedule::on_event(time_point now) {
    if (silence_ != kNone) silence_at_ = now + silence_;
}

void SubscriptionSchedule::clear() noexcept {
    renew_at_ = kNever;
    expires_at_ = kNever;
    silence_at_ = kNever;
}

std::optional<SubscriptionSchedule::time_point> SubscriptionSchedule::next() const noexcept {
    std::optional<time_point> best;
    for (time_point t : {renew_at_, expires_at_, silence_at_}) {
        if (t != kNever && (!best || t < *best)) best = t;
    }
    return best;
}

ScheduledAction SubscriptionSchedule::take_due(time_point now) {
    if (expires_at_ != kNever && expires_at_ <= now) {
        expires_at_ = kNever;
        renew_at_ = kNever;
        return ScheduledAction::expire;
    }
    if (renew_at_ != kNever && renew_at_ <= now) {
        renew_at_ = kNever;
        return ScheduledAction::renew;
    }
    if (silence_at_ != kNever && silence_at_ <= now) {
        silence_at_ = now + silence_;
        return ScheduledAction::silence;
    }
    return ScheduledAction::none;
}

}  // namespace uvgena::gena
