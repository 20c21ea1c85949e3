#include "uvgena/gena/seq.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <vector>

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

// --- SeqWindow: the reorder window and the resync rule, with a manual clock ---------------

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// What went out of a window: SEQ, verdict, and the payload (the SEQ again, as a check that
// each payload travels with its own SEQ).
struct Out {
    std::uint32_t seq;
    SeqOrder order;
    std::uint32_t missed;
    std::uint32_t payload;
    std::uint32_t outlier;
};

struct Harness {
    explicit Harness(SeqWindowOptions o = {}) : window(o) {}
    SeqWindow<std::uint32_t> window;
    Clock::time_point now{};  // a manual clock
    std::vector<Out> out;

    void push(std::uint32_t seq) {
        window.push(seq, seq, now, [&](const SeqRelease& r, std::uint32_t&& v) {
            out.push_back({r.seq, r.check.order, r.check.missed, v, r.outlier});
        });
    }
    void advance(Clock::duration d) {
        now += d;
        window.poll(now, [&](const SeqRelease& r, std::uint32_t&& v) {
            out.push_back({r.seq, r.check.order, r.check.missed, v, r.outlier});
        });
    }
    std::vector<std::uint32_t> seqs() const {
        std::vector<std::uint32_t> s;
        for (const Out& o : out) s.push_back(o.seq);
        return s;
    }
    std::vector<SeqOrder> orders() const {
        std::vector<SeqOrder> s;
        for (const Out& o : out) s.push_back(o.order);
        return s;
    }
};

SeqWindowOptions window_of(Clock::duration d) {
    SeqWindowOptions o;
    o.window = d;
    return o;
}

}  // namespace

TEST_SUITE("gena.seq_window") {
    TEST_CASE("an event ahead waits for its predecessors and all go out in SEQ order") {
        Harness h(window_of(30ms));
        h.push(0);
        h.push(2);
        h.push(3);
        CHECK(h.seqs() == std::vector<std::uint32_t>{0});
        CHECK(h.window.pending() == 2);
        REQUIRE(h.window.next_deadline());
        CHECK(*h.window.next_deadline() == h.now + 30ms);
        h.advance(10ms);
        CHECK(h.seqs() == std::vector<std::uint32_t>{0});
        h.push(1);
        CHECK(h.seqs() == std::vector<std::uint32_t>{0, 1, 2, 3});
        CHECK(h.orders() == std::vector<SeqOrder>{SeqOrder::first, SeqOrder::expected,
                                                  SeqOrder::expected, SeqOrder::expected});
        for (const Out& o : h.out) CHECK(o.payload == o.seq);
        CHECK(h.window.stats().missed == 0);
        CHECK(h.window.stats().reordered == 2);
        CHECK_FALSE(h.window.next_deadline());
    }

    TEST_CASE(
        "when the window ends the waiting events go out with the gap; the missing one "
        "is delivered late and the gap corrected") {
        Harness h(window_of(30ms));
        h.push(0);
        h.push(3);
        h.advance(29ms);
        CHECK(h.out.size() == 1);
        h.advance(1ms);
        REQUIRE(h.out.size() == 2);
        CHECK(h.out[1].seq == 3);
        CHECK(h.out[1].order == SeqOrder::gap);
        CHECK(h.out[1].missed == 2);
        CHECK(h.window.stats().missed == 2);
        h.push(2);
        h.push(1);
        h.push(2);  // an exact retransmission: dropped (handed over flagged)
        h.push(3);
        CHECK(h.orders() == std::vector<SeqOrder>{SeqOrder::first, SeqOrder::gap, SeqOrder::late,
                                                  SeqOrder::late, SeqOrder::stale,
                                                  SeqOrder::duplicate});
        CHECK(h.window.stats().missed == 0);
        CHECK(h.window.stats().recovered == 2);
        CHECK(h.window.stats().duplicates == 2);
        h.push(4);
        CHECK(h.out.back().order == SeqOrder::expected);
    }

    TEST_CASE("window 0: 5 then 4 both go out, 4 late, missed back to 0") {
        Harness h(window_of(0ms));
        for (std::uint32_t s = 0; s <= 3; ++s) h.push(s);
        h.push(5);
        h.push(4);
        CHECK(h.seqs() == std::vector<std::uint32_t>{0, 1, 2, 3, 5, 4});
        CHECK(h.out[4].order == SeqOrder::gap);
        CHECK(h.out[5].order == SeqOrder::late);
        CHECK(h.window.stats().missed == 0);
        CHECK(h.window.pending() == 0);
    }

    TEST_CASE("a retransmission of a waiting event is dropped, the original goes out once") {
        Harness h(window_of(30ms));
        h.push(0);
        h.push(2);
        h.push(2);
        REQUIRE(h.out.size() == 2);
        CHECK(h.out[1].order == SeqOrder::duplicate);
        h.push(1);
        CHECK(h.seqs() == std::vector<std::uint32_t>{0, 2, 1, 2});
        CHECK(h.out[3].order == SeqOrder::expected);
    }

    TEST_CASE("a first event above 0 waits for 0; the SEQs before it count missed") {
        Harness h(window_of(30ms));
        h.push(1);
        h.push(0);
        CHECK(h.seqs() == std::vector<std::uint32_t>{0, 1});
        Harness g(window_of(30ms));
        g.push(3);
        g.advance(30ms);
        REQUIRE(g.out.size() == 1);
        CHECK(g.out[0].order == SeqOrder::gap);
        CHECK(g.out[0].missed == 3);
        g.push(1);
        CHECK(g.out.back().order == SeqOrder::late);
        CHECK(g.window.stats().missed == 2);
    }

    TEST_CASE("the pending bound lets the lowest out at once") {
        SeqWindowOptions o = window_of(1s);
        o.max_pending = 2;
        Harness h(o);
        h.push(0);
        h.push(5);
        h.push(4);
        h.push(3);
        REQUIRE(h.out.size() == 2);
        CHECK(h.out[1].seq == 3);
        CHECK(h.out[1].order == SeqOrder::gap);
        h.push(1);
        CHECK(h.out.back().order == SeqOrder::late);
    }

    TEST_CASE("resync: a forged SEQ far ahead, then the genuine sequence continues") {
        Harness h(window_of(30ms));
        for (std::uint32_t s = 0; s <= 5; ++s) h.push(s);
        h.push(1000000);
        h.push(6);  // goes out at once: expected, the forged one still waits
        h.advance(30ms);
        REQUIRE(h.out.size() == 8);
        CHECK(h.out[7].seq == 1000000);
        CHECK(h.out[7].order == SeqOrder::gap);
        CHECK(h.window.stats().missed == 999993);
        for (std::uint32_t s = 7; s < 60; ++s) h.push(s);
        REQUIRE(h.out.size() == 8 + 53);
        CHECK(h.out[8].order == SeqOrder::late);
        CHECK(h.out[9].order == SeqOrder::late);
        CHECK(h.out[10].order == SeqOrder::resync);
        CHECK(h.out[10].outlier == 1000000);
        for (std::size_t i = 11; i < h.out.size(); ++i) CHECK(h.out[i].order == SeqOrder::expected);
        CHECK(h.window.stats().resyncs == 1);
        CHECK(h.window.stats().missed == 0);
        CHECK(h.window.position() == 59u);
        CHECK(h.window.pending() == 0);
    }

    TEST_CASE("resync with window 0, the outlier right after the initial event") {
        Harness h(window_of(0ms));
        h.push(0);
        h.push(1000000);
        for (std::uint32_t s = 1; s <= 4; ++s) h.push(s);
        CHECK(h.orders() == std::vector<SeqOrder>{SeqOrder::first, SeqOrder::gap, SeqOrder::late,
                                                  SeqOrder::late, SeqOrder::resync,
                                                  SeqOrder::expected});
        CHECK(h.window.stats().missed == 0);
        CHECK(h.window.stats().resyncs == 1);
    }

    TEST_CASE("a genuine jump is not undone: events after it clear the suspicion") {
        Harness h(window_of(0ms));
        h.push(0);
        h.push(5000);
        h.push(5001);
        h.push(1);
        h.push(2);
        h.push(3);  // fill the gap late, but the device is past 5000: no resync
        CHECK(h.window.stats().resyncs == 0);
        CHECK(h.window.position() == 5001u);
        CHECK(h.out.back().order == SeqOrder::late);
        CHECK(h.window.stats().missed == 4999 - 3);
    }

    TEST_CASE("reordering within a small gap never resyncs") {
        Harness h(window_of(0ms));
        h.push(0);
        h.push(10);
        for (std::uint32_t s = 1; s <= 9; ++s) h.push(s);
        h.push(11);
        CHECK(h.window.stats().resyncs == 0);
        CHECK(h.window.stats().missed == 0);
        CHECK(h.out.back().order == SeqOrder::expected);
    }

    TEST_CASE("a device reset to 0 is followed, waiting events of the old counter go first") {
        Harness h(window_of(30ms));
        for (std::uint32_t s = 0; s <= 7; ++s) h.push(s);
        h.push(9);  // waits for 8
        h.push(0);  // restart: 9 goes out first (gap), then 0
        h.push(1);
        h.push(2);
        CHECK(h.seqs() == std::vector<std::uint32_t>{0, 1, 2, 3, 4, 5, 6, 7, 9, 0, 1, 2});
        CHECK(h.out[8].order == SeqOrder::gap);
        CHECK(h.out[9].order == SeqOrder::reset);
        CHECK(h.out[10].order == SeqOrder::expected);
        CHECK(h.window.stats().resets == 1);
        CHECK(h.window.stats().resyncs == 0);
    }

    TEST_CASE("the unsigned wrap: 4294967295 then 1, reordered, with and without a window") {
        for (auto w : {0ms, 30ms}) {
            CAPTURE(w.count());
            Harness h(window_of(w));
            h.push(max_seq - 3);  // the subscription's first event, near the wrap
            h.advance(1s);
            h.push(1);  // 4294967293 .. 4294967295 still missing
            h.push(max_seq);
            h.push(max_seq - 2);
            h.push(max_seq - 1);
            h.advance(1s);
            h.push(2);
            CHECK(h.window.stats().resyncs == 0);
            CHECK(h.window.position() == 2u);
            CHECK(h.window.stats().missed == max_seq - 3);  // the first event's 0 .. 4294967291
            // Every SEQ went out exactly once.
            std::vector<std::uint32_t> s = h.seqs();
            CHECK(s.size() == 6);
            if (w == 0ms) {
                CHECK(h.orders() == std::vector<SeqOrder>{SeqOrder::gap, SeqOrder::gap,
                                                          SeqOrder::late, SeqOrder::late,
                                                          SeqOrder::late, SeqOrder::expected});
                CHECK(h.out[1].missed == 3);
            } else {
                CHECK(s == std::vector<std::uint32_t>{max_seq - 3, max_seq - 2, max_seq - 1,
                                                      max_seq, 1, 2});
            }
        }
    }

    TEST_CASE("the unsigned wrap in order is no jump") {
        Harness g(window_of(0ms));
        g.push(max_seq - 1);
        g.push(max_seq);
        g.push(1);
        g.push(2);
        CHECK(g.orders() == std::vector<SeqOrder>{SeqOrder::gap, SeqOrder::expected,
                                                  SeqOrder::expected, SeqOrder::expected});
        CHECK(g.window.stats().resyncs == 0);
    }

    TEST_CASE("the signed wrap 2147483647 -> 1, reordered, with and without a window") {
        for (auto w : {0ms, 30ms}) {
            CAPTURE(w.count());
            Harness h(window_of(w));
            h.push(max_signed_seq - 2);
            h.advance(1s);
            h.push(max_signed_seq - 1);
            h.push(1);
            h.push(max_signed_seq);
            h.push(2);
            h.push(3);
            h.advance(1s);
            std::vector<std::uint32_t> s = h.seqs();
            CHECK(s.size() == 6);
            if (w == 0ms) {
                CHECK(h.orders() == std::vector<SeqOrder>{SeqOrder::gap, SeqOrder::expected,
                                                          SeqOrder::gap, SeqOrder::late,
                                                          SeqOrder::expected, SeqOrder::expected});
            } else {
                CHECK(s == std::vector<std::uint32_t>{max_signed_seq - 2, max_signed_seq - 1,
                                                      max_signed_seq, 1, 2, 3});
            }
            CHECK(h.window.stats().resyncs == 0);
            CHECK(h.window.position() == 3u);
        }
    }

    TEST_CASE("an old gap does not capture SEQs that come round again after the wrap") {
        // As the publisher test reaches the wrap: two genuine jumps of about 2^31.
        Harness h(window_of(30ms));
        h.push(0);
        h.push(2147483648u);
        h.advance(30ms);
        h.push(1);  // ahead (after the wrap), although the first gap skipped a SEQ 1
        h.push(max_seq);
        h.advance(30ms);
        CHECK(h.seqs() == std::vector<std::uint32_t>{0, 2147483648u, max_seq, 1});
        CHECK(h.orders() == std::vector<SeqOrder>{SeqOrder::first, SeqOrder::gap, SeqOrder::gap,
                                                  SeqOrder::expected});
    }

    TEST_CASE("a forged jump across the wrap is undone too") {
        Harness h(window_of(0ms));
        h.push(max_seq - 10);
        h.push(max_seq - 9);
        h.push(2000000);  // far ahead, past the wrap
        for (std::uint32_t back = 8; back > 0; --back) h.push(max_seq - back);
        h.push(max_seq);
        h.push(1);
        h.push(2);
        CHECK(h.window.stats().resyncs == 1);
        CHECK(h.window.position() == 2u);
        CHECK(h.out.back().order == SeqOrder::expected);
    }

    TEST_CASE(
        "is_retransmission predicts exactly which pushes are dropped as duplicate or stale "
        "(the listener skips parsing those)") {
        for (auto window : {0ms, 30ms}) {
            CAPTURE(window.count());
            SeqWindow<std::uint64_t> w(window_of(window));
            Clock::time_point now{};
            std::uint64_t rng = 7;
            auto next_rand = [&] {
                rng = rng * 6364136223846793005u + 1442695040888963407u;
                return static_cast<std::uint32_t>(rng >> 33);
            };
            std::uint32_t base = 0;
            std::uint64_t predicted = 0, dropped = 0, mismatches = 0;
            for (std::uint64_t i = 0; i < 20000; ++i) {
                std::uint32_t r = next_rand() % 100;
                std::uint32_t seq;
                if (r < 60) {
                    seq = base + next_rand() % 4;  // near the head, reordered
                    if (next_rand() % 2 == 0) ++base;
                } else if (r < 80) {
                    seq = base - next_rand() % 8;  // behind: retransmissions, late ones
                } else if (r < 85) {
                    seq = base + 100 + next_rand() % 2000000;  // a jump (maybe an outlier)
                } else if (r < 87) {
                    seq = 0;  // a counter restart
                    base = 0;
                } else if (r < 89) {
                    base = 4294967290u;  // toward the wrap
                    seq = base;
                } else {
                    seq = base;
                }
                bool expect_drop = w.is_retransmission(seq);
                bool was_dropped = false;
                w.push(seq, i, now, [&](const SeqRelease& rel, std::uint64_t&& tag) {
                    if (tag == i && !rel.check.deliver()) was_dropped = true;
                });
                predicted += expect_drop ? 1 : 0;
                dropped += was_dropped ? 1 : 0;
                if (expect_drop != was_dropped) ++mismatches;
                if (next_rand() % 4 == 0) {
                    now += std::chrono::milliseconds(next_rand() % 20);
                    w.poll(now, [](const SeqRelease&, std::uint64_t&&) {});
                }
            }
            CHECK(mismatches == 0);
            CHECK(dropped > 1000);  // the sequence did exercise retransmissions
            CHECK(predicted == dropped);
            CHECK(w.stats().resyncs + w.stats().resets > 0);
        }
    }
    TEST_CASE(
        "a window rebuilt from the state of a quiet one behaves exactly as the original (a "
        "subscription keeps only that state while events arrive in order)") {
        struct Release {
            std::uint32_t seq;
            SeqOrder order;
            std::uint32_t missed;
            bool initial;
            std::uint32_t outlier;
            std::uint64_t tag;
            bool operator==(const Release&) const = default;
        };
        for (auto window : {0ms, 30ms}) {
            CAPTURE(window.count());
            const SeqWindowOptions options = window_of(window);
            SeqWindow<std::uint64_t> kept(options);
            SeqWindow<std::uint64_t> rebuilt(options);
            std::vector<Release> from_kept, from_rebuilt;
            auto sink = [](std::vector<Release>& out) {
                return [&out](const SeqRelease& r, std::uint64_t&& tag) {
                    out.push_back(
                        {r.seq, r.check.order, r.check.missed, r.initial, r.outlier, tag});
                };
            };
            // After every step, the second window is replaced by one made from its state
            // whenever it is quiet, as SubscriptionCore lets its window go.
            std::uint64_t rebuilds = 0;
            auto settle = [&] {
                if (!rebuilt.quiet()) return;
                SeqLedgerState state = rebuilt.state();
                rebuilt = SeqWindow<std::uint64_t>(options, state);
                ++rebuilds;
            };
            Clock::time_point now{};
            std::uint64_t rng = 11;
            auto next_rand = [&] {
                rng = rng * 6364136223846793005u + 1442695040888963407u;
                return static_cast<std::uint32_t>(rng >> 33);
            };
            std::uint32_t base = 0;
            for (std::uint64_t i = 0; i < 20000; ++i) {
                std::uint32_t r = next_rand() % 100;
                std::uint32_t seq;
                if (r < 70) {
                    seq = base++;  // in order, mostly
                } else if (r < 80) {
                    seq = base + next_rand() % 4;  // a little ahead: waits, or a gap
                    if (next_rand() % 2 == 0) ++base;
                } else if (r < 90) {
                    seq = base - next_rand() % 8;  // behind: retransmissions, late ones
                } else if (r < 93) {
                    seq = base + 100 + next_rand() % 2000000;  // a jump (maybe an outlier)
                } else if (r < 95) {
                    seq = 0;  // a counter restart
                    base = 1;
                } else if (r < 96) {
                    base = 4294967290u;  // toward the wrap
                    seq = base;
                } else {
                    seq = base;
                }
                CHECK(kept.is_retransmission(seq) == rebuilt.is_retransmission(seq));
                kept.push(seq, i, now, sink(from_kept));
                rebuilt.push(seq, i, now, sink(from_rebuilt));
                settle();
                if (next_rand() % 3 == 0) {
                    now += std::chrono::milliseconds(next_rand() % 40);
                    kept.poll(now, sink(from_kept));
                    rebuilt.poll(now, sink(from_rebuilt));
                    settle();
                }
                CHECK(kept.position() == rebuilt.position());
                CHECK(kept.pending() == rebuilt.pending());
                CHECK(kept.next_deadline() == rebuilt.next_deadline());
                if (i % 5000 == 4999) {
                    kept.flush(sink(from_kept));
                    rebuilt.flush(sink(from_rebuilt));
                    kept.reset();
                    rebuilt.reset();
                    settle();
                }
            }
            CHECK(from_kept.size() == from_rebuilt.size());
            CHECK(from_kept == from_rebuilt);
            const SeqWindowStats& a = kept.stats();
            const SeqWindowStats& b = rebuilt.stats();
            CHECK(a.missed == b.missed);
            CHECK(a.recovered == b.recovered);
            CHECK(a.reordered == b.reordered);
            CHECK(a.duplicates == b.duplicates);
            CHECK(a.resets == b.resets);
            CHECK(a.resyncs == b.resyncs);
            // Both kinds of step happened: rebuilt often, and windows that had to be kept.
            CHECK(rebuilds > 5000);
            CHECK(a.reordered + a.recovered > 100);
            CHECK(a.resyncs > 0);
        }
    }
}
