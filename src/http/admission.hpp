// The http::Server's admission rule, sans-IO: whether a new connection is served and which
// open connection, if any, is closed to make room for it. Kept apart from the server so that
// the rule can be tested without sockets (tests/http/admission_test.cpp).
//
// Two limits: `max_connections` in all, and `per_host` per source address (the host's share),
// so that one host, however many slow or idle connections it opens, leaves the rest of the
// slots to the others (issue 18: 300 connections from one address sending a byte a second
// once locked every device out until the header timeout).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

namespace uvgena::http::detail {

/// Where an open connection stands, as far as eviction is concerned.
enum class SlotState : std::uint8_t {
    unused,  ///< Never sent a byte.
    idle,    ///< Keep-alive, between requests.
    slow,    ///< Inside a request, still receiving its headers or body.
    busy,    ///< Its request is being handled or answered, or it is closing: never evicted.
};

/// One open connection, as the rule sees it.
struct Slot {
    std::size_t host_held = 0;  ///< Open connections of this connection's host (itself too).
    bool same_host = false;     ///< From the new connection's host.
    SlotState state = SlotState::busy;
};

/// The limits the rule enforces.
struct AdmissionLimits {
    std::size_t max_connections = 512;
    std::size_t per_host = 128;
    bool evict = true;  ///< Close an open connection to make room (else refuse).
};

/// The rule's verdict.
struct Admission {
    static constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
    bool admit = false;
    std::size_t victim = none;  ///< Index into the slots of the connection to close, or none.
    bool host_full = false;     ///< Refused because its own host holds its share.
};

/// The share a host may hold: `configured`, or a quarter of max_connections when 0, at least
/// 1 and at most max_connections. A quarter: a device that opens a few connections at once
/// (many send each NOTIFY on a new connection, some keep several alive) stays far below it,
/// while one host, however hostile, leaves three quarters of the slots to the others, and it
/// takes four hosts to fill the server (then eviction of slow connections still lets a host
/// with fewer connections in, see admit()).
inline std::size_t host_share(std::size_t max_connections, std::size_t configured) noexcept {
    std::size_t share = configured != 0 ? configured : max_connections / 4;
    if (share > max_connections) share = max_connections;
    return share == 0 ? 1 : share;
}

/// Decides on a new connection given the open ones, `slots`, oldest first, and those accepted
/// but not started yet (`starting_own` of them from the new connection's host, `starting`
/// in all): these count against the limits but cannot be evicted.
///  1. Its host holds its share: room is made among that host's own connections only (the
///     oldest that never sent a byte, else the oldest keep-alive one between requests); if
///     none is idle it is refused. A host never takes another host's slot beyond its share.
///  2. Below max_connections: served.
///  3. At max_connections: a connection is evicted, in this order of preference: one that
///     never sent a byte, then a keep-alive one between requests, then (fairness) one still
///     receiving a request from another host that, after the swap, still holds more
///     connections than the new connection's host; within each, the host holding the most,
///     then the oldest.
///     Connections whose request is being handled or answered are never evicted. No
///     candidate: refused.
/// Without `evict` nothing is evicted: a new connection beyond either limit is refused.
inline Admission admit(std::span<const Slot> slots, const AdmissionLimits& limits,
                       std::size_t starting_own = 0, std::size_t starting = 0) noexcept {
    Admission verdict;
    std::size_t own = starting_own;
    for (const Slot& s : slots) own += s.same_host ? 1 : 0;
    auto better = [&](std::size_t candidate, std::size_t best, int rank_c, int rank_b) {
        if (best == Admission::none) return true;
        if (rank_c != rank_b) return rank_c < rank_b;
        return slots[candidate].host_held > slots[best].host_held;  // ties: the older stays
    };
    if (own >= limits.per_host) {
        if (!limits.evict) {
            verdict.host_full = true;
            return verdict;
        }
        std::size_t best = Admission::none;
        int best_rank = 0;
        for (std::size_t i = 0; i < slots.size(); ++i) {
            const Slot& s = slots[i];
            if (!s.same_host) continue;
            int rank = s.state == SlotState::unused ? 0 : s.state == SlotState::idle ? 1 : -1;
            if (rank < 0) continue;
            if (best == Admission::none || rank < best_rank) {
                best = i;
                best_rank = rank;
            }
        }
        if (best == Admission::none) {
            verdict.host_full = true;
            return verdict;
        }
        verdict.admit = true;
        verdict.victim = best;
        return verdict;
    }
    if (slots.size() + starting < limits.max_connections) {
        verdict.admit = true;
        return verdict;
    }
    if (!limits.evict) return verdict;
    std::size_t best = Admission::none;
    int best_rank = 0;
    for (std::size_t i = 0; i < slots.size(); ++i) {
        const Slot& s = slots[i];
        int rank = -1;
        if (s.state == SlotState::unused) {
            rank = 0;
        } else if (s.state == SlotState::idle) {
            rank = 1;
        } else if (s.state == SlotState::slow && !s.same_host && s.host_held > own + 2) {
            // After the swap that host still holds more than the new one's host.
            rank = 2;
        }
        if (rank < 0) continue;
        if (better(i, best, rank, best_rank)) {
            best = i;
            best_rank = rank;
        }
    }
    if (best == Admission::none) return verdict;
    verdict.admit = true;
    verdict.victim = best;
    return verdict;
}

}  // namespace uvgena::http::detail
