#include "uvgena/gena/seq.hpp"

#include <algorithm>

namespace uvgena::gena {
namespace {

constexpr std::uint32_t half_ring = 0x80000000u;
constexpr std::uint32_t signed_wrap_window = 65536;

SeqCheck ahead(std::uint64_t distance) noexcept {
    if (distance == 1) return {SeqOrder::expected, 0};
    return {SeqOrder::gap, static_cast<std::uint32_t>(distance - 1)};
}

}  // namespace

SeqCheck classify_seq(std::optional<std::uint32_t> last, std::uint32_t seq) noexcept {
    if (!last) {
        if (seq == 0) return {SeqOrder::first, 0};
        return {SeqOrder::gap, seq};  // events 0 .. seq-1 never arrived
    }
    const std::uint32_t prev = *last;
    if (seq == prev) return {SeqOrder::duplicate, 0};
    if (seq == 0) return {SeqOrder::reset, 0};
    if (seq > prev) {
        std::uint64_t d = seq - prev;
        if (d <= half_ring) return ahead(d);
        return {SeqOrder::stale, 0};  // prev wrapped recently; seq is from before the wrap
    }
    // seq < prev: either a wrap happened or seq is old.
    if (prev <= max_signed_seq) {
        std::uint64_t ds = static_cast<std::uint64_t>(max_signed_seq - prev) + seq;
        if (max_signed_seq - prev < signed_wrap_window && seq <= signed_wrap_window) {
            return ahead(ds);
        }
    }
    std::uint64_t du = static_cast<std::uint64_t>(max_seq - prev) + seq;
    if (du <= half_ring) return ahead(du);
    return {SeqOrder::stale, 0};
}

SeqCheck SeqTracker::observe(std::uint32_t seq) noexcept {
    SeqCheck check = classify_seq(last_, seq);
    switch (check.order) {
        case SeqOrder::duplicate:
            ++duplicates_;
            break;
        case SeqOrder::stale:
            ++stale_;
            break;
        case SeqOrder::reset:
            ++resets_;
            break;
        case SeqOrder::gap:
            missed_ += check.missed;
            break;
        case SeqOrder::first:
        case SeqOrder::expected:
        case SeqOrder::late:
        case SeqOrder::resync:
        case SeqOrder::outlier:
            break;
    }
    if (check.deliver()) last_ = seq;
    return check;
}

}  // namespace uvgena::gena

namespace uvgena::gena {

std::optional<std::uint64_t> SeqLedger::ahead(std::uint32_t seq) const noexcept {
    if (!position_) return std::uint64_t{seq} + 1;
    SeqCheck c = classify_seq(position_, seq);
    if (c.order == SeqOrder::expected) return 1;
    if (c.order == SeqOrder::gap) return std::uint64_t{c.missed} + 1;
    return std::nullopt;
}

std::optional<std::uint64_t> SeqLedger::offset_in(const Hole& hole,
                                                  std::uint32_t seq) const noexcept {
    std::uint64_t d = 0;
    if (hole.from_start) {
        d = std::uint64_t{seq} + 1;
    } else {
        SeqCheck c = classify_seq(hole.after, seq);
        if (c.order == SeqOrder::expected) {
            d = 1;
        } else if (c.order == SeqOrder::gap) {
            d = std::uint64_t{c.missed} + 1;
        } else {
            return std::nullopt;
        }
    }
    if (d > hole.count) return std::nullopt;
    return d;
}

bool SeqLedger::missing(std::uint32_t seq) const noexcept {
    for (const Hole& h : holes_) {
        if (offset_in(h, seq)) return true;
    }
    return false;
}

bool SeqLedger::missing_just_behind(std::uint32_t seq) const noexcept {
    if (!position_) return false;
    SeqCheck c = classify_seq(seq, *position_);
    if (c.order != SeqOrder::expected && c.order != SeqOrder::gap) return false;
    if (c.missed > options_.outlier_gap) return false;
    return missing(seq);
}

void SeqLedger::add_hole(Hole hole) {
    if (hole.count == 0) return;
    if (holes_.size() >= std::max<std::size_t>(options_.max_holes, 1)) {
        holes_.erase(holes_.begin());  // its SEQs stay missed
    }
    holes_.push_back(hole);
}

SeqRelease SeqLedger::advance(std::uint32_t seq) {
    SeqRelease r;
    r.seq = seq;
    r.initial = !released_any_;
    released_any_ = true;
    if (position_ && seq == 0) {
        // A counter restart: the old counter's gaps and suspicion mean nothing any more
        // (their SEQs stay counted missed).
        r.check = {SeqOrder::reset, 0};
        ++stats_.resets;
        holes_.clear();
        jump_.reset();
        position_ = 0;
        return r;
    }
    std::uint64_t d = ahead(seq).value_or(1);
    if (!position_ && seq == 0) {
        r.check = {SeqOrder::first, 0};
        ++in_order_;
    } else if (d == 1) {
        r.check = {SeqOrder::expected, 0};
        ++in_order_;
    } else {
        auto missed = static_cast<std::uint32_t>(d - 1);
        r.check = {SeqOrder::gap, missed};
        stats_.missed += missed;
        Hole hole;
        hole.count = missed;
        if (position_) {
            hole.after = *position_;
            add_hole(hole);
        } else if (missed <= options_.outlier_gap) {
            // A first event a little above 0: 0 .. seq-1 may still come (reordered). Far
            // above, the device had events before we subscribed (or wraps soon): none of
            // those will come, and a signed wrap's 1, 2, ... must not look like them.
            hole.from_start = true;
            add_hole(hole);
        }
    }
    // An event ahead of a suspect jump (or the jump itself) decides the suspicion: the
    // device is past it, or this is a new suspect. A first event is never a suspect: there
    // is no sequence to go back to.
    const bool had_position = position_.has_value();
    jump_.reset();
    if (had_position && r.check.order == SeqOrder::gap && r.check.missed > options_.outlier_gap) {
        jump_ = Jump{seq, 0, 0};
    }
    position_ = seq;
    return r;
}

bool SeqLedger::is_outlier(std::uint32_t seq, std::uint64_t in_order_at) const noexcept {
    if (!position_) return false;
    std::optional<std::uint64_t> d = ahead(seq);
    return d && *d > std::uint64_t{options_.outlier_gap} + 1 &&
           in_order_ - in_order_at >= std::max<std::uint32_t>(options_.resync_run, 1);
}

SeqRelease SeqLedger::outlier(std::uint32_t seq) {
    ++stats_.resyncs;
    SeqRelease r;
    r.seq = seq;
    r.check = {SeqOrder::outlier, 0};
    r.outlier = seq;
    return r;
}

SeqRelease SeqLedger::behind(std::uint32_t seq) {
    SeqRelease r;
    r.seq = seq;
    if (position_ && seq == *position_) {
        r.check = {SeqOrder::duplicate, 0};
        ++stats_.duplicates;
        return r;
    }
    for (std::size_t i = 0; i < holes_.size(); ++i) {
        std::optional<std::uint64_t> d = offset_in(holes_[i], seq);
        if (!d) continue;
        // Fills one SEQ of the gap: the hole splits around it.
        Hole h = holes_[i];
        Hole left = h;
        left.count = static_cast<std::uint32_t>(*d - 1);
        Hole right;
        right.after = seq;
        right.count = static_cast<std::uint32_t>(h.count - *d);
        holes_.erase(holes_.begin() + static_cast<std::ptrdiff_t>(i));
        std::size_t at = i;
        if (left.count > 0) holes_.insert(holes_.begin() + static_cast<std::ptrdiff_t>(at++), left);
        if (right.count > 0) holes_.insert(holes_.begin() + static_cast<std::ptrdiff_t>(at), right);
        if (stats_.missed > 0) --stats_.missed;
        ++stats_.recovered;
        r.check = {SeqOrder::late, 0};
        if (jump_) {
            if (jump_->run_len > 0 && seq == next_seq(jump_->run_last)) {
                ++jump_->run_len;
            } else {
                jump_->run_len = 1;
            }
            jump_->run_last = seq;
            if (jump_->run_len >= std::max<std::uint32_t>(options_.resync_run, 1)) {
                return resync(seq);
            }
        }
        return r;
    }
    r.check = {SeqOrder::stale, 0};
    ++stats_.duplicates;
    return r;
}

SeqRelease SeqLedger::resync(std::uint32_t seq) {
    const std::uint32_t outlier = jump_->at;
    // The SEQs between the run and the outlier were never skipped by the device: forget
    // them as missing.
    std::optional<std::uint64_t> span;
    {
        SeqCheck c = classify_seq(seq, outlier);
        if (c.order == SeqOrder::gap || c.order == SeqOrder::expected) span = c.missed + 1ull;
    }
    std::uint64_t forgotten = 0;
    std::erase_if(holes_, [&](const Hole& h) {
        if (h.from_start || !span) return false;
        bool above = h.after == seq;
        if (!above) {
            SeqCheck c = classify_seq(seq, h.after);
            above = (c.order == SeqOrder::gap || c.order == SeqOrder::expected) &&
                    c.missed + 1ull < *span;
        }
        if (above) forgotten += h.count;
        return above;
    });
    stats_.missed -= std::min<std::uint64_t>(stats_.missed, forgotten);
    ++stats_.resyncs;
    jump_.reset();
    position_ = seq;
    SeqRelease r;
    r.seq = seq;
    r.check = {SeqOrder::resync, 0};
    r.outlier = outlier;
    return r;
}

void SeqLedger::reset() noexcept {
    position_.reset();
    holes_.clear();
    jump_.reset();
    released_any_ = false;
}

}  // namespace uvgena::gena
