// SEQ arithmetic of GENA events (UDA 1.1, 4.3.2): the initial event of a subscription has
// SEQ 0, then 1, 2, ...; after 4294967295 the counter wraps to 1, never back to 0. Devices
// built on pupnp or gupnp keep SEQ in a signed int and wrap from 2147483647 to 1: accepted
// as well. A SEQ of 0 on a subscription that already had events means the device restarted
// its counter (reboot, or the subscription was recreated with the same SID).
#pragma once

#include <cstdint>
#include <optional>

namespace uvgena::gena {

/// The largest SEQ (2^32 - 1).
inline constexpr std::uint32_t max_seq = 0xFFFFFFFFu;
/// The largest SEQ of devices that keep it in a signed 32-bit int (pupnp, gupnp).
inline constexpr std::uint32_t max_signed_seq = 0x7FFFFFFFu;

/// The SEQ that follows `seq` per UDA: seq + 1, and 4294967295 -> 1.
constexpr std::uint32_t next_seq(std::uint32_t seq) noexcept {
    return seq == max_seq ? 1u : seq + 1u;
}

/// How a received SEQ relates to the last accepted one.
enum class SeqOrder {
    first,      ///< No event seen yet on this subscription, and SEQ is 0 (as it should be).
    expected,   ///< Exactly the next SEQ (wraps included).
    gap,        ///< Ahead of the next: `missed` events were lost (includes a first event > 0).
    duplicate,  ///< Same as the last one (a retransmission): not delivered again.
    reset,      ///< SEQ 0 after events were seen: the device restarted its counter.
    stale,      ///< Behind the last one (reordered or delayed): not delivered, since its
                ///< values are older than what the application already has.
};

/// The verdict on one SEQ.
struct SeqCheck {
    SeqOrder order = SeqOrder::first;
    std::uint32_t missed = 0;  ///< Events lost before this one (gap only).

    /// True if the event should be handed to the application (all but duplicate / stale).
    constexpr bool deliver() const noexcept {
        return order != SeqOrder::duplicate && order != SeqOrder::stale;
    }
};

/// Classifies `seq` against `last` (nullopt: nothing accepted yet). A forward distance of
/// up to 2^31 counts as a gap, farther counts as stale (serial-number arithmetic on the
/// ring 1..2^32-1); the signed wrap (2147483647 -> 1) is recognised when `last` is within
/// 65536 of 2147483647 and `seq` is within the same distance past it.
SeqCheck classify_seq(std::optional<std::uint32_t> last, std::uint32_t seq) noexcept;

/// The SEQ state of one subscription, with counters that make losses visible.
class SeqTracker {
public:
    /// Classifies `seq`, and adopts it as the last SEQ when it is delivered.
    SeqCheck observe(std::uint32_t seq) noexcept;

    /// The last delivered SEQ, nullopt before the first event.
    std::optional<std::uint32_t> last() const noexcept { return last_; }
    /// Forgets the last SEQ (e.g. after a resubscription with a new SID).
    void reset() noexcept { last_.reset(); }

    /// Events reported missing by gaps so far.
    std::uint64_t missed() const noexcept { return missed_; }
    /// Duplicates seen so far.
    std::uint64_t duplicates() const noexcept { return duplicates_; }
    /// Stale (reordered) events dropped so far.
    std::uint64_t stale() const noexcept { return stale_; }
    /// Counter restarts (SEQ 0 again) seen so far.
    std::uint64_t resets() const noexcept { return resets_; }

private:
    std::optional<std::uint32_t> last_;
    std::uint64_t missed_ = 0, duplicates_ = 0, stale_ = 0, resets_ = 0;
};

}  // namespace uvgena::gena
