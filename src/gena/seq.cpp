#include "uvgena/gena/seq.hpp"

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
        case SeqOrder::duplicate: ++duplicates_; break;
        case SeqOrder::stale: ++stale_; break;
        case SeqOrder::reset: ++resets_; break;
        case SeqOrder::gap: missed_ += check.missed; break;
        case SeqOrder::first:
        case SeqOrder::expected: break;
    }
    if (check.deliver()) last_ = seq;
    return check;
}

}  // namespace uvgena::gena
