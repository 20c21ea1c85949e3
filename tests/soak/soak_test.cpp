// Soak: 200 subscriptions with 5 s grants to several in-process publishers over loopback,
// events flowing all along, and devices restarted at random (publisher stopped, a new one on
// the same port with no memory of the SIDs). Runs UVGENA_SOAK_SECONDS (default 300) and then
// checks:
//   - RSS, sampled every few seconds and printed, does not grow after the warm-up;
//   - the loop's handles and the process's descriptors are back to their baseline;
//   - every event the listener accepted was delivered once, in order (SEQ consecutive and
//     values increasing per SID), nothing dropped, no duplicate;
//   - SEQ gaps: none; the only discontinuities are SID changes after a device restart, and
//     each was reported by the resubscription handler.
// Registered only in the 'soak' suite (not in the default `meson test`):
//     meson test -C build --suite soak
#include <dirent.h>
#include <doctest/doctest.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "support/peers.hpp"
#include "support/test_device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/publisher/publisher.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

constexpr int kDevices = 4;
constexpr int kSubscriptions = 200;

std::chrono::seconds soak_duration() {
    const char* text = std::getenv("UVGENA_SOAK_SECONDS");
    long seconds = text != nullptr ? std::strtol(text, nullptr, 10) : 300;
    return std::chrono::seconds(std::max(10L, seconds));
}

// Resident set size in KiB (/proc/self/statm).
long rss_kib() {
    std::ifstream statm("/proc/self/statm");
    long size = 0, resident = 0;
    statm >> size >> resident;
    return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

std::size_t open_fds() {
    std::size_t n = 0;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
        while (::readdir(dir) != nullptr) ++n;
        ::closedir(dir);
    }
    return n;
}

std::size_t loop_handles(uv_loop_t* loop) {
    std::size_t n = 0;
    uv_walk(
        loop, [](uv_handle_t*, void* arg) { ++*static_cast<std::size_t*>(arg); }, &n);
    return n;
}

// One device: a publisher with one service on a loopback port, restarted at random.
std::unique_ptr<uvtest::TestDevice> make_device(uv_loop_t* loop) {
    gena::PublisherOptions options;
    options.policy.min_timeout = 1s;
    options.max_subscriptions_per_host = kSubscriptions;
    options.notify_timeout = 5s;
    return std::make_unique<uvtest::TestDevice>(loop, options, SocketAddress::ipv4_loopback(),
                                                "Counter");
}

// What one subscription's consumer saw.
struct Seen {
    std::string sid;  // SID of the last event
    std::uint32_t last_seq = 0;
    long last_value = -1;
    std::uint64_t events = 0;
    std::uint64_t out_of_order = 0;  // SEQ not consecutive within a SID, or value went back
    std::uint64_t flagged = 0;       // events not flagged ok
    std::uint64_t sid_changes = 0;
    std::uint64_t unreported_changes = 0;  // SID changes without an on_resubscribe before
    std::vector<std::string> reported;     // new SIDs announced by on_resubscribe
    std::uint64_t renew_failures = 0;
};

void observe(Seen& seen, const Event& e) {
    ++seen.events;
    if (e.seq_status != gena::SeqStatus::ok) ++seen.flagged;
    long value = std::strtol(e.variables().at("Counter").c_str(), nullptr, 10);
    if (e.sid != seen.sid) {
        if (!seen.sid.empty()) {
            ++seen.sid_changes;
            if (std::find(seen.reported.begin(), seen.reported.end(), e.sid) ==
                seen.reported.end()) {
                ++seen.unreported_changes;
            }
        }
        seen.sid = e.sid;
        if (e.seq != 0) ++seen.out_of_order;
    } else if (e.seq != seen.last_seq + 1 || value < seen.last_value) {
        ++seen.out_of_order;
    }
    seen.last_seq = e.seq;
    seen.last_value = value;
}

}  // namespace

TEST_SUITE("soak") {
    TEST_CASE(
        "200 subscriptions with 5 s grants, continuous events and random device restarts "
        "run without leaks, growth, loss or unreported gaps") {
        const std::chrono::seconds duration = soak_duration();
        // Descriptors are compared around the loop's whole life (libuv keeps some of its own,
        // e.g. the thread pool's wakeup, until uv_loop_close).
        // libuv's process-wide descriptors (the signal lock pipe of the first loop) exist from
        // the first loop on: open and close one before counting.
        {
            uv_loop_t warm;
            uv_loop_init(&warm);
            uv_loop_close(&warm);
        }
        const std::size_t fds_before = open_fds();
        {
            uvtest::TestLoop loop(duration + 120s);
            run(loop, [](uv_loop_t* l, std::chrono::seconds total) -> Task<void> {
                // The runtime's own handles (ready queue, timers) exist once it ran; everything
                // the soak opens comes on top.
                co_await sleep_for(l, 1ms);
                const std::size_t handles_baseline = loop_handles(l);
                ListenerOptions lo;
                lo.listen_host = "127.0.0.1";
                lo.port = 0;
                EventListener listener(l, lo);
                std::vector<std::unique_ptr<uvtest::TestDevice>> devices;
                for (int i = 0; i < kDevices; ++i) devices.push_back(make_device(l));
                // Every change sets a device's Counter to a value higher than any before.
                long counter = 0;
                auto change_all = [&] {
                    for (auto& d : devices) d->set(std::to_string(++counter));
                };

                std::vector<Seen> seen(kSubscriptions);
                std::vector<Subscription> subs;
                for (int i = 0; i < kSubscriptions; ++i) {
                    Seen* s = &seen[static_cast<std::size_t>(i)];
                    SubscribeOptions o;
                    o.listener = &listener;
                    o.requested_timeout = 5s;
                    o.auto_renew = true;
                    o.auto_resubscribe = true;
                    o.timeout = 2s;
                    o.backoff.initial = 200ms;
                    o.backoff.max = 2s;
                    SubscriptionHandlers h;
                    h.on_event = [s](Event e) { observe(*s, e); };
                    h.on_resubscribe = [s](const std::string&, const std::string& new_sid) {
                        s->reported.push_back(new_sid);
                    };
                    h.on_renew_failed = [s](const Error&) { ++s->renew_failures; };
                    subs.push_back(co_await subscribe(
                        l, devices[static_cast<std::size_t>(i % kDevices)]->url(), o,
                        std::move(h)));
                }

                std::mt19937 random(20261122);
                std::uniform_int_distribution<int> pick(0, kDevices - 1);
                std::uniform_int_distribution<int> restart_every(50, 250);  // in 100 ms ticks
                auto start = Clock::now();
                auto end = start + total;
                auto warmup_end = start + std::max<std::chrono::seconds>(total / 3, 10s);
                std::vector<long> rss;
                std::vector<long> heap;   // bytes in use by malloc (mallinfo2), in KiB
                std::vector<long> arena;  // bytes malloc holds from the system, in KiB
                long rss_baseline = 0;
                std::size_t warmup_index = 0;
                int next_restart = restart_every(random);
                int restarts = 0;
                int tick = 0;
                const int rss_every = 50;  // ticks of 100 ms: every 5 s
                while (Clock::now() < end) {
                    co_await sleep_for(l, 100ms);
                    ++tick;
                    // Events: every device changes every tick (10 events/s each, 50 subscribers).
                    change_all();
                    if (--next_restart == 0) {
                        co_await devices[static_cast<std::size_t>(pick(random))]->restart();
                        ++restarts;
                        next_restart = restart_every(random);
                    }
                    if (tick % rss_every == 0) {
                        rss.push_back(rss_kib());
                        struct mallinfo2 info = mallinfo2();
                        heap.push_back(static_cast<long>(info.uordblks / 1024));
                        arena.push_back(static_cast<long>((info.arena + info.hblkhd) / 1024));
                        if (rss_baseline == 0 && Clock::now() >= warmup_end) {
                            rss_baseline = rss.back();
                            warmup_index = rss.size() - 1;
                        }
                    }
                }
                // Let the last restarts heal (renewal at 85% of 5 s, then resubscription).
                co_await sleep_for(l, 8s);
                change_all();
                co_await sleep_for(l, 2s);

                // Figures.
                std::uint64_t received = 0, delivered = 0, dropped = 0, duplicates = 0, missed = 0,
                              resubscriptions = 0, renewals = 0, renew_failures = 0;
                for (auto& sub : subs) {
                    const gena::SubscriptionStats& st = sub.stats();
                    received += st.events_received;
                    delivered += st.events_delivered;
                    dropped += st.events_dropped;
                    duplicates += st.duplicates;
                    missed += st.events_missed;
                    resubscriptions += st.resubscriptions;
                    renewals += st.renewals;
                    renew_failures += st.renewal_failures;
                }
                std::uint64_t consumed = 0, out_of_order = 0, flagged = 0, sid_changes = 0,
                              unreported = 0;
                for (const Seen& s : seen) {
                    consumed += s.events;
                    out_of_order += s.out_of_order;
                    flagged += s.flagged;
                    sid_changes += s.sid_changes;
                    unreported += s.unreported_changes;
                }
                std::printf("soak: %lld s, %d devices, %d subscriptions, %d restarts\n",
                            static_cast<long long>(total.count()), kDevices, kSubscriptions,
                            restarts);
                std::printf(
                    "soak: events received %llu, delivered %llu, consumed %llu, dropped %llu, "
                    "duplicates %llu, missed %llu, out of order %llu, flagged %llu\n",
                    static_cast<unsigned long long>(received),
                    static_cast<unsigned long long>(delivered),
                    static_cast<unsigned long long>(consumed),
                    static_cast<unsigned long long>(dropped),
                    static_cast<unsigned long long>(duplicates),
                    static_cast<unsigned long long>(missed),
                    static_cast<unsigned long long>(out_of_order),
                    static_cast<unsigned long long>(flagged));
                std::printf(
                    "soak: renewals %llu, renewal failures %llu, resubscriptions %llu, SID "
                    "changes seen %llu (unreported %llu)\n",
                    static_cast<unsigned long long>(renewals),
                    static_cast<unsigned long long>(renew_failures),
                    static_cast<unsigned long long>(resubscriptions),
                    static_cast<unsigned long long>(sid_changes),
                    static_cast<unsigned long long>(unreported));
                std::printf("soak: RSS KiB every 5 s:");
                for (long r : rss) std::printf(" %ld", r);
                std::printf("\nsoak: heap in use KiB every 5 s:");
                for (long h : heap) std::printf(" %ld", h);
                std::printf("\nsoak: malloc arena KiB every 5 s:");
                for (long a : arena) std::printf(" %ld", a);
                std::printf("\nsoak: RSS after warm-up %ld KiB, max after %ld KiB\n", rss_baseline,
                            *std::max_element(rss.begin(), rss.end()));
                std::fflush(stdout);

                CHECK(restarts > 0);
                CHECK(received > 0);
                CHECK(delivered == received);
                CHECK(consumed == delivered);
                CHECK(dropped == 0);
                CHECK(duplicates == 0);
                CHECK(missed == 0);
                CHECK(out_of_order == 0);
                CHECK(flagged == 0);
                CHECK(unreported == 0);
                CHECK(sid_changes == resubscriptions);
                for (auto& sub : subs) CHECK(sub.is_subscribed());
                // No growth after the warm-up (the first third): RSS samples stay within 10% (at
                // least 4 MiB) of the one taken when it ended; malloc holds no more memory from
                // the system than then (+10%); and the floor of the bytes in use over the last
                // third (in-flight bursts come and go, a leak raises the floor) is where it was.
                REQUIRE(rss_baseline > 0);
                REQUIRE(warmup_index < rss.size());
                long tolerance = std::max(4096L, rss_baseline / 10);
                for (std::size_t i = warmup_index; i < rss.size(); ++i) {
                    if (rss[i] > rss_baseline + tolerance) {
                        FAIL_CHECK("RSS sample ", i, " is ", rss[i], " KiB, baseline ",
                                   rss_baseline);
                    }
                    CHECK(arena[i] <= arena[warmup_index] + arena[warmup_index] / 10);
                }
                long floor =
                    *std::min_element(heap.end() - static_cast<long>(heap.size() / 3), heap.end());
                CHECK(floor <= heap[warmup_index] + 512);

                for (auto& sub : subs) co_await sub.unsubscribe(false);
                subs.clear();
                co_await listener.stop();
                for (auto& d : devices) co_await d->stop();
                devices.clear();
                // Let the closes complete, then compare with the baseline.
                co_await sleep_for(l, 200ms);
                std::size_t handles_after = loop_handles(l);
                std::printf("soak: loop handles before %zu, after %zu\n", handles_baseline,
                            handles_after);
                CHECK(handles_after == handles_baseline);
            }(loop, duration));
        }
        std::size_t fds_after = open_fds();
        if (fds_after != fds_before) {
            if (DIR* dir = ::opendir("/proc/self/fd")) {
                while (dirent* entry = ::readdir(dir)) {
                    char target[256] = {};
                    std::string path = std::string("/proc/self/fd/") + entry->d_name;
                    ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
                    if (n > 0) std::printf("soak: open fd %s -> %s\n", entry->d_name, target);
                }
                ::closedir(dir);
            }
        }
        std::printf("soak: descriptors before %zu, after %zu\n", fds_before, fds_after);
        CHECK(fds_after == fds_before);
    }
}
