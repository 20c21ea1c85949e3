// SEQ arithmetic of GENA events (UDA 1.1, 4.3.2): the initial event of a subscription has
// SEQ 0, then 1, 2, ...; after 4294967295 the counter wraps to 1, never back to 0. Devices
// built on pupnp or gupnp keep SEQ in a signed int and wrap from 2147483647 to 1: accepted
// as well. A SEQ of 0 on a subscription that already had events means the device restarted
// its counter (reboot, or the subscription was recreated with the same SID).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "uvgena/core/export.hpp"

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
    stale,      ///< Behind the last one and not known to be missing (classify_seq, SeqTracker;
                ///< SeqWindow: an old SEQ it no longer tracks): not delivered.
    late,       ///< SeqWindow: behind the last one, but one of the SEQs a gap skipped: it
                ///< arrived after its successors went out; delivered (the gap is corrected).
    resync,     ///< SeqWindow: a late event that completed the resync run (see SeqWindow):
                ///< the SEQ jump before it was an outlier, the sequence follows this one.
    outlier,    ///< SeqWindow: a SEQ far ahead that the events arriving meanwhile contradict
                ///< (see SeqWindow): delivered, flagged, but the sequence does not follow it.
};

/// The verdict on one SEQ.
struct UVGENA_API SeqCheck {
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
UVGENA_API SeqCheck classify_seq(std::optional<std::uint32_t> last, std::uint32_t seq) noexcept;

/// The SEQ state of one subscription, with counters that make losses visible.
class UVGENA_API SeqTracker {
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

/// Settings of a SeqWindow.
struct UVGENA_API SeqWindowOptions {
    /// How long an event ahead of the expected SEQ waits for the missing ones; zero: it goes
    /// out at once (as a gap) and the missing ones go out as `late` when they come.
    std::chrono::steady_clock::duration window = std::chrono::milliseconds(30);
    /// Events waiting at most; beyond, the lowest goes out at once (bounds memory).
    std::size_t max_pending = 1024;
    /// Gaps remembered (ranges of SEQs skipped and not arrived yet); beyond, the oldest is
    /// forgotten: its SEQs stay missed, and if one arrives after all it counts as `stale`.
    std::size_t max_holes = 1024;
    /// A jump that skips more than this many SEQs is suspect (see SeqWindow's resync rule).
    std::uint32_t outlier_gap = 1024;
    /// Consecutive SEQs behind a suspect jump that make the window follow them again.
    std::uint32_t resync_run = 3;
};

/// Counters of a SeqWindow (cumulative, also across reset()).
struct UVGENA_API SeqWindowStats {
    std::uint64_t missed = 0;      ///< SEQs skipped by gaps and not arrived (yet): net.
    std::uint64_t recovered = 0;   ///< SEQs first counted missed, then delivered late.
    std::uint64_t reordered = 0;   ///< Events held by the window and released in order.
    std::uint64_t duplicates = 0;  ///< Exact retransmissions (and untracked old SEQs) dropped.
    std::uint64_t resets = 0;      ///< SEQ 0 after events: the device restarted its counter.
    std::uint64_t resyncs = 0;     ///< Outlier jumps undone by the resync rule.
};

/// What a SeqWindow decided about one event as it goes out.
struct UVGENA_API SeqRelease {
    std::uint32_t seq = 0;
    SeqCheck check;        ///< order: first, expected, gap, late, resync, reset, duplicate, stale.
    bool initial = false;  ///< The first event released since construction or reset().
    /// resync only: the suspect jump's SEQ (the outlier) whose gap was undone.
    std::uint32_t outlier = 0;
};

/// What is left of a SeqLedger (and a SeqWindow) when it is quiet(): no gap open, no suspect
/// jump, nothing waiting. A ledger rebuilt from it behaves exactly as the one it came from,
/// so that a subscription keeps this much between events and a whole window only while
/// events wait or gaps are open.
struct UVGENA_API SeqLedgerState {
    std::optional<std::uint32_t> position;  ///< The last SEQ that went out in order.
    SeqWindowStats stats;                   ///< The counters so far.
};

/// The SEQ bookkeeping of a SeqWindow: position, gaps not yet filled, the suspect jump.
/// Sans-IO and without payloads; SeqWindow<T> adds the waiting events.
class UVGENA_API SeqLedger {
  public:
    explicit SeqLedger(const SeqWindowOptions& options) noexcept : options_(options) {}
    /// A ledger that goes on from `state` (see SeqLedgerState). Its in_order() starts from 0
    /// (it only matters relative to the events waiting, and none waits in a quiet window).
    SeqLedger(const SeqWindowOptions& options, const SeqLedgerState& state) noexcept
        : options_(options),
          position_(state.position),
          released_any_(state.position.has_value()),
          stats_(state.stats) {}

    /// True when no gap is open and no jump is suspect: state() then says everything.
    bool quiet() const noexcept { return holes_.empty() && !jump_; }
    /// The position and the counters (all there is to it when quiet()).
    SeqLedgerState state() const noexcept { return {position_, stats_}; }

    /// The last SEQ that went out in order (nullopt before the first).
    std::optional<std::uint32_t> position() const noexcept { return position_; }
    /// The SEQ expected next (0 before the first event).
    std::uint32_t expected() const noexcept { return position_ ? next_seq(*position_) : 0; }
    /// How far ahead of the position `seq` is (1: expected), nullopt if not ahead (behind,
    /// equal, or 0 after events: a reset).
    std::optional<std::uint64_t> ahead(std::uint32_t seq) const noexcept;
    /// True if `seq` is one of the SEQs a gap skipped that has not arrived yet.
    bool missing(std::uint32_t seq) const noexcept;
    /// True if `seq` is missing and at most `outlier_gap` behind the position (counting the
    /// signed wrap): then it is late, even if it also reads as far ahead.
    bool missing_just_behind(std::uint32_t seq) const noexcept;
    /// Moves the position to `seq` (ahead of it, or a reset): the verdict of that event.
    SeqRelease advance(std::uint32_t seq);
    /// The verdict of `seq` that is not ahead: late (a gap skipped it: it fills the gap; may
    /// complete a resync), duplicate (== position) or stale (already out, or untracked).
    SeqRelease behind(std::uint32_t seq);
    /// Forgets the position and the gaps (a new SID); counters stay.
    void reset() noexcept;
    const SeqWindowStats& stats() const noexcept { return stats_; }
    /// Events that went out in order (first, expected) so far.
    std::uint64_t in_order() const noexcept { return in_order_; }
    /// True if `seq`, which waited since in_order() was `in_order_at`, is an outlier (rule 1).
    bool is_outlier(std::uint32_t seq, std::uint64_t in_order_at) const noexcept;
    /// The verdict of an outlier: it goes out, the position stays.
    SeqRelease outlier(std::uint32_t seq);
    /// Counts an event released in order after waiting.
    void count_reordered() noexcept { ++stats_.reordered; }
    /// Counts a duplicate found among the waiting events.
    void count_duplicate() noexcept { ++stats_.duplicates; }
    const SeqWindowOptions& options() const noexcept { return options_; }

  private:
    struct Hole {
        std::uint32_t after = 0;  // the missing SEQs follow this one...
        std::uint32_t count = 0;  // ...this many of them
        bool from_start = false;  // or: SEQs 0 .. count-1 (a first event > 0)
    };
    struct Jump {
        std::uint32_t at = 0;        // the suspect SEQ
        std::uint32_t run_last = 0;  // last SEQ of the current run behind it
        std::uint32_t run_len = 0;
    };
    std::optional<std::uint64_t> offset_in(const Hole& hole, std::uint32_t seq) const noexcept;
    void add_hole(Hole hole);
    SeqRelease resync(std::uint32_t seq);

    SeqWindowOptions options_;
    std::optional<std::uint32_t> position_;
    std::vector<Hole> holes_;  // oldest first
    std::optional<Jump> jump_;
    bool released_any_ = false;
    std::uint64_t in_order_ = 0;
    SeqWindowStats stats_;
};

/// The reorder window of one subscription: events (any payload T) go in as they arrive, and
/// come out exactly once, in SEQ order as far as the window allows, each with its verdict.
/// Sans-IO: the caller passes `now`, arms a timer for next_deadline() and calls poll().
///
/// - An event with the expected SEQ goes out at once, with any waiting successors.
/// - An event ahead of it waits until the missing SEQs arrive or `window` has passed since it
///   arrived; then it and everything below it go out in SEQ order, the missing SEQs counted
///   in stats().missed (order gap, with `missed`).
/// - A missing SEQ that arrives after its successors went out goes out flagged `late`; it
///   is no longer counted missed (stats().recovered).
/// - Only an exact retransmission (the SEQ already went out, or waits) is dropped (order
///   duplicate or stale, given to the sink so that it can count it or deliver it anyway).
/// - SEQ 0 after events is a counter restart: waiting events go out first, then it (reset).
/// - Wraps: after 4294967295 comes 1; a signed-int device's 2147483647 -> 1 is accepted.
///
/// Resync rule (a forged or corrupt SEQ far ahead must not make the genuine sequence stale
/// forever). A SEQ more than `outlier_gap` ahead is a suspect. (1) While it waits in the
/// window: if `resync_run` (3) events went out in order meanwhile (the device's sequence goes
/// on without it), it goes out flagged `outlier` when its window ends, and the position does
/// not move (stats().resyncs counts it). (2) Once a suspect went out as a gap (window 0, or
/// nothing arrived in its window), it is undone after the fact: if,
/// before any event ahead of the suspect arrives, `resync_run` (3) consecutive SEQs arrive
/// that the jump skipped (each the next of the one before, so they agree with each other and
/// not with the suspect), the suspect was an outlier: the window follows them again (its
/// position becomes the last of them), the SEQs between them and the outlier are no longer
/// counted missed, stats().resyncs counts it, and the event that completed the run has order
/// `resync` (SeqRelease::outlier names the outlier). Those run events themselves were
/// delivered as `late`. Any event ahead of the suspect clears the suspicion (the device is
/// genuinely past it). A device reset to 0 and both wraps are not jumps.
template <typename T>
class SeqWindow {
  public:
    using time_point = std::chrono::steady_clock::time_point;

    explicit SeqWindow(SeqWindowOptions options = {}) : ledger_(options) {}
    /// A window that goes on from `state` (see SeqLedgerState), nothing waiting.
    SeqWindow(const SeqWindowOptions& options, const SeqLedgerState& state) noexcept
        : ledger_(options, state) {}

    /// True when nothing waits, no gap is open and no jump is suspect: state() then says
    /// everything, and a window rebuilt from it behaves as this one.
    bool quiet() const noexcept { return pending_.empty() && ledger_.quiet(); }
    /// The position and the counters (all there is to it when quiet()).
    SeqLedgerState state() const noexcept { return ledger_.state(); }

    /// One arriving event. Whatever goes out now is passed to `sink(SeqRelease, T&&)`, in
    /// order (this event, or earlier waiting ones, or none if it waits).
    template <typename Sink>
    void push(std::uint32_t seq, T value, time_point now, Sink&& sink) {
        std::optional<std::uint64_t> d = ledger_.ahead(seq);
        // A SEQ a recent gap skipped is behind, although it may look ahead (2147483647
        // after a signed wrap to 1).
        if (d && *d > 1 && ledger_.missing_just_behind(seq)) d.reset();
        if (d) {
            if (*d == 1) {
                emit(ledger_.advance(seq), std::move(value), sink);
                drain(sink);
                return;
            }
            auto pos = std::lower_bound(
                pending_.begin(), pending_.end(), *d,
                [&](const Waiting& w, std::uint64_t key) { return distance(w.seq) < key; });
            if (pos != pending_.end() && pos->seq == seq) {
                ledger_.count_duplicate();
                SeqRelease r{seq, {SeqOrder::duplicate, 0}, false, 0};
                sink(r, std::move(value));
                return;
            }
            if (ledger_.options().window <= std::chrono::steady_clock::duration::zero()) {
                emit(ledger_.advance(seq), std::move(value), sink);
                return;
            }
            pending_.insert(pos, Waiting{seq, now + ledger_.options().window, ledger_.in_order(),
                                         std::move(value)});
            if (pending_.size() > ledger_.options().max_pending) release_front(sink);
            return;
        }
        if (seq == 0 && ledger_.position() && (*ledger_.position() != 0 || !pending_.empty())) {
            // A counter restart (SEQ 0 after later SEQs): what waits belongs to the old
            // counter and goes out first.
            flush(sink);
            emit(ledger_.advance(seq), std::move(value), sink);
            return;
        }
        SeqRelease r = ledger_.behind(seq);
        sink(r, std::move(value));
        if (r.check.order == SeqOrder::resync) {
            std::sort(pending_.begin(), pending_.end(), [&](const Waiting& a, const Waiting& b) {
                return distance(a.seq) < distance(b.seq);
            });
            drain(sink);
        }
    }

    /// True if push(seq) would drop the event now as a retransmission (order duplicate or
    /// stale: the SEQ went out already, waits, or is older than anything tracked), without
    /// changing anything. Lets the caller skip the work of decoding a payload that would be
    /// thrown away (the listener does not parse such a NOTIFY's body).
    bool is_retransmission(std::uint32_t seq) const noexcept {
        std::optional<std::uint64_t> d = ledger_.ahead(seq);
        if (d && *d > 1 && ledger_.missing_just_behind(seq)) d.reset();
        if (d) {
            if (*d == 1) return false;
            auto pos = std::lower_bound(
                pending_.begin(), pending_.end(), *d,
                [&](const Waiting& w, std::uint64_t key) { return distance(w.seq) < key; });
            return pos != pending_.end() && pos->seq == seq;
        }
        if (seq == 0 && ledger_.position() && (*ledger_.position() != 0 || !pending_.empty())) {
            return false;  // a counter restart
        }
        // What behind() calls late (a SEQ a gap skipped) is delivered; the rest is dropped.
        return !ledger_.missing(seq);
    }

    /// Releases the events whose window has ended by `now` (with everything below them).
    template <typename Sink>
    void poll(time_point now, Sink&& sink) {
        for (;;) {
            auto oldest = std::min_element(
                pending_.begin(), pending_.end(),
                [](const Waiting& a, const Waiting& b) { return a.deadline < b.deadline; });
            if (oldest == pending_.end() || oldest->deadline > now) return;
            std::size_t upto = static_cast<std::size_t>(oldest - pending_.begin());
            for (std::size_t i = 0; i <= upto; ++i) release_front(sink);
            drain(sink);
        }
    }

    /// Releases every waiting event now, in SEQ order (before a reset or the end).
    template <typename Sink>
    void flush(Sink&& sink) {
        while (!pending_.empty()) release_front(sink);
    }

    /// When poll() has something to release (nullopt: nothing waits).
    std::optional<time_point> next_deadline() const noexcept {
        std::optional<time_point> first;
        for (const Waiting& w : pending_) {
            if (!first || w.deadline < *first) first = w.deadline;
        }
        return first;
    }

    /// Events waiting now.
    std::size_t pending() const noexcept { return pending_.size(); }
    /// The last SEQ that went out in order (nullopt before the first).
    std::optional<std::uint32_t> position() const noexcept { return ledger_.position(); }
    /// Forgets the position and the gaps (a new SID); flush() first, or waiting events are
    /// dropped. Counters stay.
    void reset() noexcept {
        pending_.clear();
        ledger_.reset();
    }
    const SeqWindowStats& stats() const noexcept { return ledger_.stats(); }

  private:
    struct Waiting {
        std::uint32_t seq;
        time_point deadline;
        std::uint64_t in_order_at;  // ledger_.in_order() when it arrived
        T value;
    };

    std::uint64_t distance(std::uint32_t seq) const noexcept {
        return ledger_.ahead(seq).value_or(0);
    }
    template <typename Sink>
    void emit(SeqRelease release, T&& value, Sink& sink) {
        sink(release, std::move(value));
    }
    template <typename Sink>
    void release_front(Sink& sink) {
        Waiting w = std::move(pending_.front());
        pending_.erase(pending_.begin());
        if (ledger_.is_outlier(w.seq, w.in_order_at)) {
            emit(ledger_.outlier(w.seq), std::move(w.value), sink);
        } else if (ledger_.ahead(w.seq)) {
            emit(ledger_.advance(w.seq), std::move(w.value), sink);
        } else {
            sink(ledger_.behind(w.seq), std::move(w.value));
        }
    }
    // Releases the waiting events that are now expected, in order.
    template <typename Sink>
    void drain(Sink& sink) {
        while (!pending_.empty() && ledger_.ahead(pending_.front().seq) == std::uint64_t{1}) {
            ledger_.count_reordered();
            release_front(sink);
        }
    }

    SeqLedger ledger_;
    std::vector<Waiting> pending_;  // by distance ahead of the position, nearest first
};

}  // namespace uvgena::gena
