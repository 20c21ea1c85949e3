#include "uvgena/gena/seq.hpp"

#include <doctest/doctest.h>

using namespace uvgena::gena;

TEST_SUITE("gena.seq") {
    TEST_CASE("the SEQ after 4294967295 is 1, not 0") {
        CHECK(next_seq(0) == 1);
        CHECK(next_seq(41) == 42);
        CHECK(next_seq(max_seq) == 1);
    }

    TEST_CASE("the first event is SEQ 0; a later first SEQ is a gap from 0") {
        CHECK(classify_seq(std::nullopt, 0).order == SeqOrder::first);
        auto c = classify_seq(std::nullopt, 3);
        CHECK(c.order == SeqOrder::gap);
        CHECK(c.missed == 3);
        CHECK(c.deliver());
    }

    TEST_CASE("next, duplicate, gap, reset and stale are told apart") {
        CHECK(classify_seq(5, 6).order == SeqOrder::expected);
        CHECK(classify_seq(5, 5).order == SeqOrder::duplicate);
        CHECK_FALSE(classify_seq(5, 5).deliver());
        auto gap = classify_seq(5, 9);
        CHECK(gap.order == SeqOrder::gap);
        CHECK(gap.missed == 3);
        CHECK(classify_seq(5, 0).order == SeqOrder::reset);
        CHECK(classify_seq(5, 0).deliver());
        CHECK(classify_seq(5, 3).order == SeqOrder::stale);
        CHECK_FALSE(classify_seq(5, 3).deliver());
        CHECK(classify_seq(0, 1).order == SeqOrder::expected);
    }

    TEST_CASE("the unsigned wrap 4294967295 -> 1 is expected, and gaps across it are counted") {
        CHECK(classify_seq(max_seq, 1).order == SeqOrder::expected);
        auto g = classify_seq(max_seq - 2, 2);  // missed max-1, max, 1
        CHECK(g.order == SeqOrder::gap);
        CHECK(g.missed == 3);
        CHECK(classify_seq(max_seq - 1, max_seq).order == SeqOrder::expected);
        // Old SEQs from before the wrap are stale after it.
        CHECK(classify_seq(2, max_seq - 1).order == SeqOrder::stale);
    }

    TEST_CASE("the signed wrap 2147483647 -> 1 of pupnp and gupnp is accepted") {
        CHECK(classify_seq(max_signed_seq, 1).order == SeqOrder::expected);
        auto g = classify_seq(max_signed_seq - 1, 2);  // missed 2147483647, 1
        CHECK(g.order == SeqOrder::gap);
        CHECK(g.missed == 2);
        // Counting on past 2^31 (a conformant device) is still the plain next.
        CHECK(classify_seq(max_signed_seq, max_signed_seq + 1).order == SeqOrder::expected);
        // Far from the signed limit, a small SEQ is just old.
        CHECK(classify_seq(1000000, 1).order == SeqOrder::stale);
    }

    TEST_CASE("a huge forward jump is a gap up to half the ring, stale beyond") {
        CHECK(classify_seq(1, 1u + 0x80000000u).order == SeqOrder::gap);
        CHECK(classify_seq(1, 2u + 0x80000000u).order == SeqOrder::stale);
    }

    TEST_CASE("the tracker adopts delivered SEQs and counts losses") {
        SeqTracker t;
        CHECK_FALSE(t.last().has_value());
        CHECK(t.observe(0).order == SeqOrder::first);
        CHECK(t.observe(1).order == SeqOrder::expected);
        CHECK(t.observe(1).order == SeqOrder::duplicate);
        CHECK(t.observe(4).order == SeqOrder::gap);
        CHECK(t.observe(3).order == SeqOrder::stale);
        CHECK(t.last() == 4u);
        CHECK(t.observe(0).order == SeqOrder::reset);
        CHECK(t.observe(1).order == SeqOrder::expected);
        CHECK(t.missed() == 2);
        CHECK(t.duplicates() == 1);
        CHECK(t.stale() == 1);
        CHECK(t.resets() == 1);
        t.reset();
        CHECK(t.observe(0).order == SeqOrder::first);
    }
}
