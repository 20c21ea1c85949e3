// The http::Server's admission rule (src/http/admission.hpp) without sockets: the per-host
// share and the choice of the connection evicted to make room.
#include <doctest/doctest.h>

#include <vector>

#include "http/admission.hpp"

using namespace uvgena::http::detail;

namespace {

constexpr SlotState U = SlotState::unused;
constexpr SlotState I = SlotState::idle;
constexpr SlotState S = SlotState::slow;
constexpr SlotState B = SlotState::busy;

// Open connections, oldest first, as (host id, state); host 0 is the new connection's host.
std::vector<Slot> slots_of(const std::vector<std::pair<int, SlotState>>& conns) {
    std::vector<Slot> slots;
    for (const auto& [host, state] : conns) {
        std::size_t held = 0;
        for (const auto& other : conns) held += other.first == host ? 1 : 0;
        slots.push_back({held, host == 0, state});
    }
    return slots;
}

Admission decide(const std::vector<std::pair<int, SlotState>>& conns, std::size_t max,
                 std::size_t per_host, bool evict = true) {
    std::vector<Slot> slots = slots_of(conns);
    return admit(slots, {max, per_host, evict});
}

}  // namespace

TEST_SUITE("http.admission") {
    TEST_CASE("the share is a quarter of max_connections unless configured, at least 1") {
        CHECK(host_share(256, 0) == 64);
        CHECK(host_share(512, 0) == 128);
        CHECK(host_share(3, 0) == 1);
        CHECK(host_share(256, 10) == 10);
        CHECK(host_share(8, 100) == 8);
    }

    TEST_CASE("below both limits a connection is served and nothing is evicted") {
        Admission a = decide({{1, S}, {1, S}, {0, B}}, 8, 2);
        CHECK(a.admit);
        CHECK(a.victim == Admission::none);
    }

    TEST_CASE("a host at its share only replaces its own idle connections, never another's") {
        // Host 0 holds 2 (its share), the server has room, host 1 has an unused one.
        Admission a = decide({{1, U}, {0, S}, {0, I}, {0, U}}, 8, 2);
        REQUIRE(a.admit);
        CHECK(a.victim == 3);  // its own connection that never sent a byte, before its idle one
        a = decide({{1, U}, {0, S}, {0, I}}, 8, 2);
        REQUIRE(a.admit);
        CHECK(a.victim == 2);
        // Only slow or busy ones of its own: refused although the server has room and host 1
        // has an unused connection.
        a = decide({{1, U}, {0, S}, {0, B}}, 8, 2);
        CHECK_FALSE(a.admit);
        CHECK(a.host_full);
        // Without eviction: refused.
        a = decide({{0, U}, {0, U}}, 8, 2, false);
        CHECK_FALSE(a.admit);
        CHECK(a.host_full);
    }

    TEST_CASE("at max_connections: unused before idle before slow, the host holding most") {
        // Unused ones of hosts 1 (one) and 2 (two): host 2's older one goes.
        Admission a = decide({{1, U}, {2, I}, {2, U}, {2, U}, {3, B}}, 5, 4);
        REQUIRE(a.admit);
        CHECK(a.victim == 2);
        // No unused one: the idle keep-alive connection of the host holding most.
        a = decide({{1, I}, {2, I}, {2, S}, {3, B}}, 4, 4);
        REQUIRE(a.admit);
        CHECK(a.victim == 1);
        // Only slow ones: from the host that holds most.
        a = decide({{1, S}, {2, S}, {2, S}, {2, S}}, 4, 4);
        REQUIRE(a.admit);
        CHECK(a.victim == 1);
        CHECK_FALSE(a.host_full);
    }

    TEST_CASE("a slow connection is evicted only for a host that holds fewer") {
        // Host 0 holds 1; host 1 holds 3: after the swap 2 > 2 is false: refused.
        Admission a = decide({{0, S}, {1, S}, {1, S}, {1, S}}, 4, 4);
        CHECK_FALSE(a.admit);
        CHECK_FALSE(a.host_full);
        // Host 1 holds 4 (3 after the swap, host 0 then 2): evicted.
        a = decide({{0, S}, {1, S}, {1, S}, {1, S}, {1, S}}, 5, 8);
        REQUIRE(a.admit);
        CHECK(a.victim == 1);
        // Never one of the new connection's own host, never a busy one.
        a = decide({{0, S}, {0, S}, {0, S}, {1, B}, {1, B}, {1, B}, {1, B}, {1, B}}, 8, 4);
        CHECK_FALSE(a.admit);
    }

    TEST_CASE("without eviction a full server refuses") {
        Admission a = decide({{1, U}, {2, U}}, 2, 2, false);
        CHECK_FALSE(a.admit);
        CHECK(a.victim == Admission::none);
    }

    TEST_CASE("connections accepted but not started yet count against both limits") {
        // Host 0 holds 1 open and 1 starting: at its share of 2, and its open one is slow.
        std::vector<Slot> slots = slots_of({{0, S}, {1, S}});
        Admission a = admit(slots, {8, 2, true}, 1, 1);
        CHECK_FALSE(a.admit);
        CHECK(a.host_full);
        // 2 open + 2 starting (another host's) fill 4: an idle one must go.
        slots = slots_of({{1, I}, {2, S}});
        a = admit(slots, {4, 4, true}, 0, 2);
        REQUIRE(a.admit);
        CHECK(a.victim == 0);
        a = admit(slots, {5, 4, true}, 0, 2);
        REQUIRE(a.admit);
        CHECK(a.victim == Admission::none);
    }
}
