// Subscriptions at scale: N (default 10,000) uvgena subscriptions from this process to
// Publishers on several ports in a child process (so that the resident memory measured here
// is the client's alone).
//
// Phases and figures:
//   1. idle loop: lateness of a 10 ms repeating timer (the baseline of phase 4);
//   2. memory baseline: the least a client must keep per subscription (SID, event URL,
//      callback URL and a uv_timer_t in a hash map), RSS growth per entry;
//   3. subscribe N (64 in flight), auto-renewal on: subscriptions per second; once every
//      initial event arrived and the loop is idle, RSS growth per subscription (target
//      <= 0.5 KiB, issue 23; libupnp's control point: 696 bytes) next to the baseline of
//      phase 2;
//   4. the same manual wave with the time slice off (`set_time_slice(0)`, every I/O
//      completion resumed inline, as before the slice existed): the same-run baseline of the
//      manual wave's lateness and CPU per turn;
//   5. renewal churn: every subscription renewed (64 in flight) to a short timeout (default
//      20 s, so that auto-renewal runs every 17 s, about 590 renewals/s at 10,000), then
//      --churn-seconds more: renewals done and failed, subscriptions still live, RSS growth
//      from the end of the manual wave (target: none), lateness of the 10 ms timer from the
//      first manual renewal to the end (target: never > 5 ms) next to phase 1, and apart
//      for the manual wave and the auto-renewals; where the loop's long turns went (see
//      TurnProbe: I/O, check and timer phases, thread CPU, faults, involuntary switches).
//
// The publishers' process runs under SCHED_IDLE by default (`--publisher-sched normal` to
// change): real devices have their own CPUs, and on a 2-core machine a woken publisher
// would otherwise preempt the loop being measured; SCHED_IDLE gives it only the CPU time
// this process leaves (there is a whole idle core for it).
//
//   scale_bench [--subscriptions N] [--publishers P] [--churn-seconds S] [--churn-timeout T]
//               [--renewals-in-flight K]   (ListenerOptions::max_renewals_in_flight)
//               [--publisher-sched idle|normal] [--time-slice-us U] (uvgena::set_time_slice)
//               [--no-mlock]   (see lock_pages)
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "uvgena/co/co.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/publisher/publisher.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

double rss_kib() {
    std::ifstream in("/proc/self/statm");
    long size = 0, resident = 0;
    in >> size >> resident;
    return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1024.0;
}

// Bytes the allocator handed out and has not got back (live heap), and what it holds from
// the system: their difference is fragmentation and free lists.
struct HeapFigures {
    double in_use_kib = 0, held_kib = 0;
};
HeapFigures heap_figures() {
    struct mallinfo2 mi = mallinfo2();
    return {static_cast<double>(mi.uordblks + mi.hblkhd) / 1024.0,
            static_cast<double>(mi.arena + mi.hblkhd) / 1024.0};
}

// Keeps this process's pages resident: on this VM, DAMON pages out file pages it finds cold
// (our code and the libraries'), and the major fault that reads one back stalls the loop for
// 5-250 ms, with no CPU used (seen here: single coroutine resumes of 144-256 ms wall time and
// 0.1 ms CPU). A latency-sensitive application does the same; `--no-mlock` measures without.
// Pages mapped now are locked and populated; later ones are locked when first touched, so
// the resident memory measured is what the program touches, as without the lock.
void lock_pages() {
    if (::mlockall(MCL_CURRENT) != 0 || ::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0) {
        std::perror("scale_bench: mlockall");
    }
}

void raise_fd_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/// The loop's last poll as TurnProbe saw it: from just before epoll_wait to the end of the
/// time libuv measured inside it (uv_metrics_idle_time).
struct PollSpan {
    bool valid = false;
    std::uint64_t start_ns = 0, end_ns = 0;
};
PollSpan g_last_poll;

/// Steal time of all CPUs so far (ms; /proc/stat): time the hypervisor ran something else.
double steal_ms() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    unsigned long long v[8] = {};
    in >> cpu;
    for (auto& x : v) in >> x;
    return static_cast<double>(v[7]) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// The same-run baseline of the churn's lateness: a bare libuv loop in a thread of its own,
/// with nothing but the same 10 ms repeating timer, run during the churn. What it suffers is
/// what the kernel and the hypervisor do to any loop on this machine at that time (it may run
/// on the other CPU, so it sees that CPU's stalls).
class BareLoopThread {
  public:
    BareLoopThread() {
        uv_loop_init(&loop_);
        uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
            auto* self = static_cast<BareLoopThread*>(a->data);
            uv_timer_stop(&self->timer_);
            uv_close(reinterpret_cast<uv_handle_t*>(&self->timer_), nullptr);
            uv_close(reinterpret_cast<uv_handle_t*>(&self->stop_), nullptr);
        });
        stop_.data = this;
        uv_timer_init(&loop_, &timer_);
        timer_.data = this;
        thread_ = std::thread([this] {
            expected_ = uv_hrtime() + 10'000'000;
            uv_timer_start(
                &timer_,
                [](uv_timer_t* t) {
                    auto* self = static_cast<BareLoopThread*>(t->data);
                    std::uint64_t now = uv_hrtime();
                    double late = now > self->expected_
                                      ? static_cast<double>(now - self->expected_) / 1e6
                                      : 0.0;
                    self->max_ = std::max(self->max_, late);
                    if (late > 5) ++self->over5_;
                    ++self->ticks_;
                    self->expected_ = now + 10'000'000;
                },
                10, 10);
            uv_run(&loop_, UV_RUN_DEFAULT);
        });
    }
    BareLoopThread(const BareLoopThread&) = delete;
    BareLoopThread& operator=(const BareLoopThread&) = delete;
    /// Stops the thread (idempotent); the figures are final afterwards.
    void stop() {
        if (!thread_.joinable()) return;
        uv_async_send(&stop_);
        thread_.join();
        uv_loop_close(&loop_);
    }
    ~BareLoopThread() { stop(); }
    double max() const { return max_; }
    std::size_t over5() const { return over5_; }
    std::size_t ticks() const { return ticks_; }

  private:
    uv_loop_t loop_{};
    uv_async_t stop_{};
    uv_timer_t timer_{};
    std::thread thread_;
    std::uint64_t expected_ = 0;
    double max_ = 0;
    std::size_t over5_ = 0, ticks_ = 0;
};

/// Lateness of a 10 ms repeating timer (raw libuv: it measures the loop, not uvgena's timers).
/// While TurnProbe runs, each tick's lateness is split: if the tick fell due while the loop
/// was blocked in the poll, the part until the poll returned is the wake-up delay of the
/// kernel and hypervisor (late_wake_ms, including libuv's rounding of the poll timeout to
/// whole ms); the rest is the loop's own work (I/O callbacks, check phase, timers before it).
struct LagProbe {
    uv_timer_t timer{};
    std::uint64_t expected = 0;
    std::vector<double> late_ms, late_wake_ms;
    bool running = false;

    static void on_tick(uv_timer_t* t) {
        auto* self = static_cast<LagProbe*>(t->data);
        std::uint64_t now = uv_hrtime();
        double late = now > self->expected ? static_cast<double>(now - self->expected) / 1e6 : 0.0;
        double wake = 0;
        const PollSpan& poll = g_last_poll;
        if (poll.valid && self->expected >= poll.start_ns && self->expected < poll.end_ns) {
            wake = std::min(late, static_cast<double>(poll.end_ns - self->expected) / 1e6);
        }
        self->late_ms.push_back(late);
        self->late_wake_ms.push_back(wake);
        self->expected = now + 10'000'000;
    }
    /// The most lateness of one tick in [from, to) caused by the loop's work.
    double max_busy(std::size_t from, std::size_t to) const {
        double m = 0;
        for (std::size_t i = from; i < to && i < late_wake_ms.size(); ++i) {
            m = std::max(m, late_ms[i] - late_wake_ms[i]);
        }
        return m;
    }
    /// The longest late wake-up from the poll of a tick in [from, to).
    double max_wake(std::size_t from, std::size_t to) const {
        double m = 0;
        for (std::size_t i = from; i < to && i < late_wake_ms.size(); ++i) {
            m = std::max(m, late_wake_ms[i]);
        }
        return m;
    }
    void start(uv_loop_t* loop) {
        late_ms.clear();
        late_wake_ms.clear();
        if (!timer.data) {
            uv_timer_init(loop, &timer);
            timer.data = this;
        }
        uv_update_time(loop);
        expected = uv_hrtime() + 10'000'000;
        uv_timer_start(&timer, on_tick, 10, 10);
        running = true;
    }
    void stop() {
        uv_timer_stop(&timer);
        running = false;
    }
    double max() const {
        return late_ms.empty() ? 0 : *std::max_element(late_ms.begin(), late_ms.end());
    }
    double p99() {
        if (late_ms.empty()) return 0;
        auto v = late_ms;
        auto k = static_cast<std::size_t>(0.99 * static_cast<double>(v.size() - 1));
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
        return v[k];
    }
};

/// Where the loop's long turns go (bench instrumentation, not the library): a uv_prepare
/// (just before the poll) and a uv_check (just after it) time every turn. Per turn: the work
/// done inside the poll phase (I/O callbacks: poll wall time minus the idle time libuv
/// measured in epoll_wait), the check phase (the scheduler's drain of ready coroutines, and
/// the closing handles) and the timer phase (with pending and idle) of the next iteration,
/// split at the loop time libuv takes after the poll and at the iteration's start (ms
/// resolution). Thread CPU time, minor faults and involuntary context switches per turn tell
/// work from preemption (the publishers, a child process, share the 2 cores).
struct TurnProbe {
    struct Turn {
        double busy_ms = 0, io_ms = 0, check_ms = 0, timers_ms = 0, cpu_ms = 0;
        long minflt = 0, majflt = 0, nivcsw = 0, nvcsw = 0;
        int phase = 0;
    };
    uv_prepare_t prepare{};
    uv_check_t check{};
    uv_loop_t* loop = nullptr;
    bool have_prev = false, active = false;
    int phase = 0;  // set by the bench (see kPhases)
    std::uint64_t p_ns = 0, c_ns = 0, idle_p = 0, idle_c = 0, cpu_p = 0;
    long minflt_p = 0, majflt_p = 0, nivcsw_p = 0, nvcsw_p = 0;
    std::uint64_t turns = 0, over2 = 0, over5 = 0;
    // Phases: 0 manual renewal wave, 1 auto-renewal churn, 2 manual wave without time slice.
    static constexpr int kPhases = 3;
    std::vector<Turn> top[kPhases];         // per phase, the turns with the most thread CPU time
    Turn sum5;                              // sums over the turns longer than 5 ms (phases 0 and 1)
    double max_cpu[kPhases] = {};           // per phase, the most thread CPU time in one turn
    std::uint64_t cpu_over2[kPhases] = {};  // per phase, turns with more than 2 ms of CPU

    static std::uint64_t thread_cpu_ns() {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
               static_cast<std::uint64_t>(ts.tv_nsec);
    }
    static void on_prepare(uv_prepare_t* h) {
        auto* self = static_cast<TurnProbe*>(h->data);
        std::uint64_t now = uv_hrtime(), cpu = thread_cpu_ns();
        rusage ru{};
        getrusage(RUSAGE_THREAD, &ru);
        if (self->have_prev) {
            Turn t;
            double poll_wall = static_cast<double>(self->c_ns - self->p_ns) / 1e6;
            double idle = static_cast<double>(self->idle_c - self->idle_p) / 1e6;
            t.io_ms = std::max(0.0, poll_wall - idle);
            double after = static_cast<double>(now - self->c_ns) / 1e6;
            // uv_now() is the iteration's start (ms, truncated): timers ran after it.
            double start_ns = static_cast<double>(uv_now(self->loop)) * 1e6;
            t.timers_ms = std::clamp((static_cast<double>(now) - start_ns) / 1e6, 0.0, after);
            t.check_ms = after - t.timers_ms;
            t.busy_ms = t.io_ms + after;
            t.cpu_ms = static_cast<double>(cpu - self->cpu_p) / 1e6;
            t.minflt = ru.ru_minflt - self->minflt_p;
            t.majflt = ru.ru_majflt - self->majflt_p;
            t.nivcsw = ru.ru_nivcsw - self->nivcsw_p;
            t.nvcsw = ru.ru_nvcsw - self->nvcsw_p;
            t.phase = self->phase;
            self->record(t);
        }
        self->have_prev = true;
        self->p_ns = uv_hrtime();
        self->idle_p = uv_metrics_idle_time(self->loop);
        self->cpu_p = cpu;
        self->minflt_p = ru.ru_minflt;
        self->majflt_p = ru.ru_majflt;
        self->nivcsw_p = ru.ru_nivcsw;
        self->nvcsw_p = ru.ru_nvcsw;
    }
    static void on_check(uv_check_t* h) {
        auto* self = static_cast<TurnProbe*>(h->data);
        self->c_ns = uv_hrtime();
        self->idle_c = uv_metrics_idle_time(self->loop);
        g_last_poll = {self->have_prev, self->p_ns, self->p_ns + (self->idle_c - self->idle_p)};
    }
    void record(const Turn& t) {
        max_cpu[t.phase] = std::max(max_cpu[t.phase], t.cpu_ms);
        if (t.cpu_ms > 2) ++cpu_over2[t.phase];
        if (t.phase == 2) return;  // the baseline: only its CPU per turn is reported
        ++turns;
        if (t.busy_ms > 2) ++over2;
        if (t.busy_ms > 5) {
            ++over5;
            sum5.busy_ms += t.busy_ms;
            sum5.io_ms += t.io_ms;
            sum5.check_ms += t.check_ms;
            sum5.timers_ms += t.timers_ms;
            sum5.cpu_ms += t.cpu_ms;
            sum5.minflt += t.minflt;
            sum5.majflt += t.majflt;
            sum5.nivcsw += t.nivcsw;
            sum5.nvcsw += t.nvcsw;
        }
        const std::size_t keep = 6;
        auto& list = top[t.phase];
        if (list.size() < keep || t.cpu_ms > list.back().cpu_ms) {
            list.push_back(t);
            std::sort(list.begin(), list.end(),
                      [](const Turn& a, const Turn& b) { return a.cpu_ms > b.cpu_ms; });
            if (list.size() > keep) list.pop_back();
        }
    }
    void start(uv_loop_t* l) {
        loop = l;
        if (!prepare.data) {
            uv_prepare_init(l, &prepare);
            uv_check_init(l, &check);
            prepare.data = check.data = this;
        }
        // Started last, the check runs first in its phase (libuv inserts at the head), so
        // the scheduler's drain counts in check_ms.
        uv_prepare_start(&prepare, on_prepare);
        uv_check_start(&check, on_check);
        active = true;
    }
    void stop() {
        uv_prepare_stop(&prepare);
        uv_check_stop(&check);
        have_prev = active = false;
        g_last_poll.valid = false;
    }
    void close() {
        if (!prepare.data) return;
        uv_close(reinterpret_cast<uv_handle_t*>(&prepare), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
    }
    void report() const {
        std::printf("loop turns: %llu, busy > 2 ms: %llu, > 5 ms: %llu\n",
                    static_cast<unsigned long long>(turns), static_cast<unsigned long long>(over2),
                    static_cast<unsigned long long>(over5));
        if (over5 > 0) {
            std::printf(
                "  turns > 5 ms, summed: busy %.1f ms = I/O %.1f + check %.1f + timers "
                "%.1f; thread CPU %.1f ms; %ld minor and %ld major faults; %ld involuntary and "
                "%ld voluntary switches\n",
                sum5.busy_ms, sum5.io_ms, sum5.check_ms, sum5.timers_ms, sum5.cpu_ms, sum5.minflt,
                sum5.majflt, sum5.nivcsw, sum5.nvcsw);
        }
        std::printf(
            "  most thread CPU in one turn: manual wave %.2f ms (%llu turns > 2 ms), "
            "auto-renewals %.2f ms (%llu turns > 2 ms)\n",
            max_cpu[0], static_cast<unsigned long long>(cpu_over2[0]), max_cpu[1],
            static_cast<unsigned long long>(cpu_over2[1]));
        std::printf(
            "  (time slice off) most thread CPU in one turn: manual wave %.2f ms (%llu turns > 2 "
            "ms)\n",
            max_cpu[2], static_cast<unsigned long long>(cpu_over2[2]));
        std::printf("  turns with the most CPU (ms; phase 0 = manual wave, 1 = auto churn):\n");
        for (const Turn& t : top[0]) print(t);
        for (const Turn& t : top[1]) print(t);
    }
    static void print(const Turn& t) {
        {
            std::printf(
                "    busy %6.2f  I/O %6.2f  check %6.2f  timers %6.2f  cpu %6.2f  "
                "minflt %4ld  majflt %3ld  invol.sw %2ld  vol.sw %2ld  phase %d\n",
                t.busy_ms, t.io_ms, t.check_ms, t.timers_ms, t.cpu_ms, t.minflt, t.majflt, t.nivcsw,
                t.nvcsw, t.phase);
        }
    }
};

// ---- child: the publishers -------------------------------------------------------------

int serve(int publishers, std::size_t capacity, const std::string& port_file,
          const std::string& policy, bool lock) {
    // Never outlive the measuring process (killed by a time limit, say).
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (lock) lock_pages();
    if (policy == "idle") {
        sched_param param{};
        if (sched_setscheduler(0, SCHED_IDLE, &param) != 0) {
            std::perror("scale_bench publishers: SCHED_IDLE");
        }
    }
    raise_fd_limit();
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = 0;
    try {
        rc = uvgena::run(
            &loop, [](uv_loop_t* l, int n, std::size_t cap, std::string file) -> Task<int> {
                std::vector<std::unique_ptr<gena::Publisher>> pubs;
                std::string ports;
                for (int i = 0; i < n; ++i) {
                    gena::PublisherOptions po;
                    po.max_subscriptions_per_host = cap;
                    po.max_subscriptions_per_service = cap;
                    po.policy.min_timeout = std::chrono::seconds(1);
                    auto p = std::make_unique<gena::Publisher>(l, po);
                    gena::ServiceConfig sc;
                    sc.event_path = "/evt";
                    sc.variables.emplace_back("Volume", "10");
                    p->add_service(sc);
                    http::ServerOptions so;
                    so.address = SocketAddress::ipv4_loopback(0);
                    so.limits = http::ParserLimits{};
                    p->listen(so);
                    ports += std::to_string(p->server()->port()) + "\n";
                    pubs.push_back(std::move(p));
                }
                {
                    std::ofstream out(file + ".tmp");
                    out << ports;
                }
                std::rename((file + ".tmp").c_str(), file.c_str());
                // Until the parent's SIGTERM.
                bool stop = false;
                uv_signal_t* sig = new uv_signal_t;
                uv_signal_init(l, sig);
                sig->data = &stop;
                uv_signal_start(
                    sig, [](uv_signal_t* s, int) { *static_cast<bool*>(s->data) = true; }, SIGTERM);
                while (!stop) co_await sleep_for(l, 20ms);
                uv_close(reinterpret_cast<uv_handle_t*>(sig),
                         [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
                std::uint64_t subscribes = 0, renewals = 0, sent = 0;
                for (auto& p : pubs) {
                    subscribes += p->stats().subscribes;
                    renewals += p->stats().renewals;
                    sent += p->stats().notifies_sent;
                }
                std::printf("publishers: %llu subscribes, %llu renewals, %llu NOTIFYs sent\n",
                            static_cast<unsigned long long>(subscribes),
                            static_cast<unsigned long long>(renewals),
                            static_cast<unsigned long long>(sent));
                for (auto& p : pubs) co_await p->stop(100ms);
                co_return 0;
            }(&loop, publishers, capacity, port_file));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "scale_bench publishers: %s\n", e.what());
        rc = 1;
    }
    for (int i = 0; i < 16; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    return rc;
}

// ---- parent: the subscriptions ---------------------------------------------------------

struct Config {
    int n = 10'000;
    int publishers = 5;
    double churn_seconds = 8;
    int churn_timeout = 20;
    int renewals_in_flight = 0;  // 0: the library's default
    std::string publisher_sched = "idle";
    long time_slice_us = -1;  // -1: the library's default
    bool lock_pages = true;
    std::string self;
};

struct MinimalRecord {
    std::string event_url, callback_url;
    uv_timer_t renew_timer;
};

Task<int> bench(uv_loop_t* loop, Config c) {
    // Publishers in a child process.
    char tmpl[] = "/tmp/uvgena-scale-XXXXXX";
    if (!::mkdtemp(tmpl)) co_return -1;
    std::string port_file = std::string(tmpl) + "/ports";
    struct Child {
        uv_process_t proc{};
        std::shared_ptr<bool> exited = std::make_shared<bool>(false);
    };
    auto* child = new Child;  // freed in the close callback of its handle
    child->proc.data = child;
    std::shared_ptr<bool> child_exited = child->exited;
    std::string n_text = std::to_string(c.publishers), cap_text = std::to_string(c.n);
    char serve_flag[] = "--serve";
    std::string lock_text = c.lock_pages ? "lock" : "nolock";
    char* args[] = {c.self.data(),    serve_flag,       n_text.data(),
                    cap_text.data(),  port_file.data(), c.publisher_sched.data(),
                    lock_text.data(), nullptr};
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 1;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    uv_process_options_t popts{};
    popts.file = args[0];
    popts.args = args;
    popts.stdio = stdio;
    popts.stdio_count = 3;
    popts.exit_cb = [](uv_process_t* p, std::int64_t, int) {
        auto* ch = static_cast<Child*>(p->data);
        *ch->exited = true;
        uv_close(reinterpret_cast<uv_handle_t*>(p),
                 [](uv_handle_t* h) { delete static_cast<Child*>(h->data); });
    };
    if (uv_spawn(loop, &child->proc, &popts) < 0) {
        std::fprintf(stderr, "scale_bench: cannot start the publishers\n");
        uv_close(reinterpret_cast<uv_handle_t*>(&child->proc),
                 [](uv_handle_t* h) { delete static_cast<Child*>(h->data); });
        co_return -1;
    }
    int child_pid = child->proc.pid;
    std::vector<int> ports;
    for (int i = 0; i < 500 && ports.empty(); ++i) {
        co_await sleep_for(loop, 10ms);
        std::ifstream in(port_file);
        for (int p; in >> p;) ports.push_back(p);
    }
    if (ports.empty()) {
        std::fprintf(stderr, "scale_bench: publishers did not start\n");
        co_return -1;
    }
    int missed = 0;

    // 1. Idle loop latency.
    LagProbe lag;
    lag.start(loop);
    co_await sleep_for(loop, 1s);
    lag.stop();
    double idle_max = lag.max(), idle_p99 = lag.p99();

    gena::ListenerOptions lo;
    lo.listen_host = "127.0.0.1";
    lo.port = 0;
    lo.max_connections = 2048;
    lo.max_connections_per_host = lo.max_connections;  // every peer is 127.0.0.1 here
    if (c.renewals_in_flight > 0) {
        lo.max_renewals_in_flight = static_cast<std::size_t>(c.renewals_in_flight);
    }
    gena::EventListener listener(loop, lo);
    listener.start();
    co_await sleep_for(loop, 50ms);

    // 2. Memory baseline: the least state a client keeps per subscription.
    double rss_a = rss_kib();
    std::unordered_map<std::string, MinimalRecord> minimal;
    for (int i = 0; i < c.n; ++i) {
        auto& r = minimal["uuid:" + std::to_string(100000000 + i) + "-0000-1000-8000-000e58abcdef"];
        r.event_url = "http://127.0.0.1:" + std::to_string(ports[0]) + "/evt";
        r.callback_url = "<http://127.0.0.1:1400/uvgena/" + std::to_string(i) + ">";
        std::memset(&r.renew_timer, 0, sizeof r.renew_timer);
    }
    double base_kib = (rss_kib() - rss_a) / c.n;

    // 3. Subscribe.
    std::uint64_t events = 0;
    std::vector<gena::Subscription> subs(static_cast<std::size_t>(c.n));
    std::uint64_t failures = 0;
    double rss0 = rss_kib();
    HeapFigures heap0 = heap_figures();
    auto t0 = std::chrono::steady_clock::now();
    {
        Scope workers(loop);
        const int width = 64;
        for (int w = 0; w < width; ++w) {
            workers.spawn([](uv_loop_t* l, const Config& cfg, const std::vector<int>& ps,
                             gena::EventListener& lis, std::vector<gena::Subscription>& out,
                             std::uint64_t& ev, std::uint64_t& fail, int first,
                             int step) -> Task<void> {
                for (int i = first; i < cfg.n; i += step) {
                    gena::SubscribeOptions o;
                    o.listener = &lis;
                    o.requested_timeout = std::chrono::seconds(3600);
                    o.auto_renew = true;
                    gena::SubscriptionHandlers h;
                    h.on_event = [&ev](gena::Event) { ++ev; };
                    std::string url = "http://127.0.0.1:" +
                                      std::to_string(ps[static_cast<std::size_t>(i) % ps.size()]) +
                                      "/evt";
                    try {
                        out[static_cast<std::size_t>(i)] =
                            co_await gena::subscribe(l, std::move(url), o, std::move(h));
                    } catch (const std::exception& e) {
                        if (fail++ == 0) std::fprintf(stderr, "subscribe: %s\n", e.what());
                    }
                }
            }(loop, c, ports, listener, subs, events, failures, w, width));
        }
        co_await workers.join();
    }
    double sub_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (int i = 0; i < 3000 && events < static_cast<std::uint64_t>(c.n); ++i) {
        co_await sleep_for(loop, 1ms);
    }
    co_await sleep_for(loop, 300ms);
    double rss1 = rss_kib();
    HeapFigures heap1 = heap_figures();
    double per_sub = (rss1 - rss0) / c.n;
    std::printf("subscribed %d (failures %llu) in %.2f s: %.0f/s; initial events %llu\n", c.n,
                static_cast<unsigned long long>(failures), sub_s, c.n / sub_s,
                static_cast<unsigned long long>(events));
    std::printf(
        "RSS: before %.0f KiB, idle with %d subscriptions %.0f KiB: %.3f KiB each "
        "(minimal record baseline %.3f KiB)\n",
        rss0, c.n, rss1, per_sub, base_kib);
    std::printf(
        "heap: live %.3f KiB per subscription, held from the system %.3f KiB per "
        "subscription\n",
        (heap1.in_use_kib - heap0.in_use_kib) / c.n, (heap1.held_kib - heap0.held_kib) / c.n);
    std::printf("RESULT scale subscribe rate (%d)|%.0f|-|-|info|subscriptions/s (%llu failed)\n",
                c.n, c.n / sub_s, static_cast<unsigned long long>(failures));
    std::printf(
        "RESULT scale RSS per idle subscription|%.3f|%.3f|%.2f|value<=0.5|KiB (baseline: "
        "SID+URLs+uv_timer_t in a hash map)\n",
        per_sub, base_kib, base_kib > 0 ? per_sub / base_kib : 0);
    std::printf(
        "RESULT scale heap in use per idle subscription|%.3f|%.3f|-|info|KiB (mallinfo2; "
        "held from the system %.3f)\n",
        (heap1.in_use_kib - heap0.in_use_kib) / c.n, base_kib,
        (heap1.held_kib - heap0.held_kib) / c.n);
    if (per_sub > 0.5 || failures > 0) ++missed;

    // Every subscription renewed to the churn timeout, 64 renewals in flight.
    auto manual_wave = [](uv_loop_t* l, std::vector<gena::Subscription>& all,
                          int timeout) -> Task<void> {
        Scope workers(l);
        const int width = 64;
        for (int w = 0; w < width; ++w) {
            workers.spawn([](std::vector<gena::Subscription>& subs_, int first, int step,
                             int t) -> Task<void> {
                for (std::size_t i = static_cast<std::size_t>(first); i < subs_.size();
                     i += static_cast<std::size_t>(step)) {
                    if (!subs_[i].valid()) continue;
                    try {
                        co_await subs_[i].renew(std::chrono::seconds(t));
                    } catch (const std::exception&) {
                    }
                }
            }(all, w, width, timeout));
        }
        co_await workers.join();
    };

    // 4. Baseline: the manual wave with the time slice off.
    TurnProbe turns;
    double steal0 = steal_ms();
    std::chrono::microseconds slice = time_slice();
    set_time_slice(std::chrono::microseconds(0));
    turns.phase = 2;
    turns.start(loop);
    lag.start(loop);
    co_await manual_wave(loop, subs, c.churn_timeout);
    lag.stop();
    turns.stop();
    set_time_slice(slice);
    double off_wave_max = lag.max();
    std::printf(
        "manual wave with the time slice off: 10 ms timer max lateness %.2f ms, most "
        "thread CPU in one turn %.2f ms\n",
        off_wave_max, turns.max_cpu[2]);

    // 5. Renewal churn: the loop is probed from the first manual renewal on.
    turns.phase = 0;
    turns.start(loop);
    lag.start(loop);
    BareLoopThread bare;
    auto churn_start = std::chrono::steady_clock::now();
    co_await manual_wave(loop, subs, c.churn_timeout);
    auto renewals = [&] {
        std::uint64_t ok = 0, failed = 0;
        for (const auto& s : subs) {
            if (!s.valid()) continue;
            ok += s.stats().renewals;
            failed += s.stats().renewal_failures;
        }
        return std::pair{ok, failed};
    };
    auto [r0, f0] = renewals();
    double wave_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - churn_start).count();
    std::printf("manual renewal wave of %d subscriptions to %d s: %.2f s (%.0f/s)\n", c.n,
                c.churn_timeout, wave_s, c.n / wave_s);
    double rss_c0 = rss_kib();
    turns.phase = 1;
    std::size_t wave_ticks = lag.late_ms.size();
    co_await sleep_for(loop, std::chrono::milliseconds(static_cast<long>(c.churn_seconds * 1000)));
    lag.stop();
    turns.stop();
    bare.stop();
    double rss_c1 = rss_kib();
    auto [r1, f1] = renewals();
    std::size_t live = 0;
    for (const auto& s : subs) live += s.valid() && s.is_subscribed();
    double churn_max = lag.max(), churn_p99 = lag.p99();
    std::printf(
        "churn: %.1f s with %d s timeouts: %llu auto-renewals (%.0f/s), %llu failed, %zu "
        "of %d still subscribed\n",
        c.churn_seconds, c.churn_timeout, static_cast<unsigned long long>(r1 - r0),
        static_cast<double>(r1 - r0) / c.churn_seconds, static_cast<unsigned long long>(f1 - f0),
        live, c.n);
    std::printf(
        "10 ms timer lateness: idle max %.2f ms p99 %.2f ms; during churn max %.2f ms "
        "p99 %.2f ms (%zu ticks)\n",
        idle_max, idle_p99, churn_max, churn_p99, lag.late_ms.size());
    // The manual wave (the bench's own 64 renewals in flight) and the library's
    // auto-renewals (at most ListenerOptions::max_renewals_in_flight), apart.
    auto mid = lag.late_ms.begin() + static_cast<std::ptrdiff_t>(wave_ticks);
    double wave_max = mid == lag.late_ms.begin() ? 0 : *std::max_element(lag.late_ms.begin(), mid);
    double auto_max = mid == lag.late_ms.end() ? 0 : *std::max_element(mid, lag.late_ms.end());
    std::printf(
        "10 ms timer max lateness: during the manual wave %.2f ms (%zu ticks), during "
        "the auto-renewals %.2f ms (%zu ticks)\n",
        wave_max, wave_ticks, auto_max, lag.late_ms.size() - wave_ticks);
    std::size_t ticks = lag.late_ms.size();
    std::size_t over5 = static_cast<std::size_t>(
        std::count_if(lag.late_ms.begin(), lag.late_ms.end(), [](double l) { return l > 5; }));
    std::printf(
        "  ticks more than 5 ms late: %zu of %zu; a bare libuv loop in another thread at the "
        "same time: %zu of %zu, max %.2f ms\n",
        over5, ticks, bare.over5(), bare.ticks(), bare.max());
    double busy_max = lag.max_busy(0, ticks), wake_max = lag.max_wake(0, ticks);
    double steal = steal_ms() - steal0;
    std::printf(
        "  split: most lateness from the loop's work %.2f ms (manual wave %.2f, auto-renewals "
        "%.2f); longest late wake-up from the poll %.2f ms; steal time of the 2 CPUs since the "
        "first wave %.0f ms\n",
        busy_max, lag.max_busy(0, wave_ticks), lag.max_busy(wave_ticks, ticks), wake_max, steal);
    std::printf(
        "RESULT scale renewals during churn|%llu|-|-|info|renewals (%llu failed, %zu/%d "
        "live)\n",
        static_cast<unsigned long long>(r1 - r0), static_cast<unsigned long long>(f1 - f0), live,
        c.n);
    std::printf(
        "RESULT scale RSS growth over churn per subscription|%.3f|0|-|value<=0.05|KiB "
        "(%.0f -> %.0f KiB)\n",
        (rss_c1 - rss_c0) / c.n, rss_c0, rss_c1);
    std::printf(
        "RESULT scale 10 ms timer max lateness during churn|%.2f|%.2f|%.2f|value<=5|ms "
        "(baseline: idle loop)\n",
        churn_max, idle_max, idle_max > 0 ? churn_max / idle_max : 0);
    std::printf("RESULT scale 10 ms timer p99 lateness during churn|%.2f|%.2f|%.2f|info|ms\n",
                churn_p99, idle_p99, idle_p99 > 0 ? churn_p99 / idle_p99 : 0);
    std::printf(
        "RESULT scale 10 ms timer max lateness, bare libuv loop in a thread during the "
        "churn|%.2f|-|-|info|ms (%zu of %zu ticks > 5 ms; uvgena's loop: %zu of %zu)\n",
        bare.max(), bare.over5(), bare.ticks(), over5, ticks);
    std::printf(
        "RESULT scale 10 ms timer max lateness from the loop's work|%.2f|%.2f|%.2f|info|ms "
        "(lateness minus late wake-up from the poll; baseline: idle loop)\n",
        busy_max, idle_max, idle_max > 0 ? busy_max / idle_max : 0);
    std::printf(
        "RESULT scale 10 ms timer longest late wake-up from the poll|%.2f|-|-|info|ms (kernel "
        "and hypervisor; steal %.0f ms)\n",
        wake_max, steal);
    std::printf(
        "RESULT scale 10 ms timer max lateness, manual wave|%.2f|%.2f|%.2f|info|ms "
        "(64 renewals in flight by the bench; baseline: the same wave, time slice off)\n",
        wave_max, off_wave_max, off_wave_max > 0 ? wave_max / off_wave_max : 0);
    std::printf(
        "RESULT scale 10 ms timer max lateness, auto-renewals|%.2f|%.2f|%.2f|info|ms "
        "(the library's own renewals)\n",
        auto_max, idle_max, idle_max > 0 ? auto_max / idle_max : 0);
    std::printf(
        "RESULT scale most thread CPU in one loop turn, manual wave|%.2f|%.2f|%.2f|info|ms "
        "(baseline: time slice off)\n",
        turns.max_cpu[0], turns.max_cpu[2],
        turns.max_cpu[2] > 0 ? turns.max_cpu[0] / turns.max_cpu[2] : 0);
    std::printf("RESULT scale most thread CPU in one loop turn, auto-renewals|%.2f|-|-|info|ms\n",
                turns.max_cpu[1]);
    turns.report();
    if (churn_max > 5 || f1 > f0 || live != static_cast<std::size_t>(c.n)) ++missed;
    std::fflush(stdout);

    // Shutdown: publishers first, so that the UNSUBSCRIBEs of stop() fail fast.
    uv_close(reinterpret_cast<uv_handle_t*>(&lag.timer), nullptr);
    turns.close();
    uv_kill(child_pid, SIGTERM);
    for (int i = 0; i < 1000 && !*child_exited; ++i) co_await sleep_for(loop, 10ms);
    if (!*child_exited) uv_kill(child_pid, SIGKILL);
    co_await listener.stop();
    subs.clear();
    std::system(("rm -rf '" + std::string(tmpl) + "'").c_str());
    co_return missed;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 7 && std::string(argv[1]) == "--serve") {
        return serve(std::atoi(argv[2]), static_cast<std::size_t>(std::atol(argv[3])) + 16, argv[4],
                     argv[5], std::string(argv[6]) == "lock");
    }
    Config c;
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--no-mlock") c.lock_pages = false;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--no-mlock") {
            --i;  // a flag without a value
            continue;
        }
        if (a == "--subscriptions") c.n = std::atoi(argv[i + 1]);
        if (a == "--publishers") c.publishers = std::atoi(argv[i + 1]);
        if (a == "--churn-seconds") c.churn_seconds = std::atof(argv[i + 1]);
        if (a == "--churn-timeout") c.churn_timeout = std::atoi(argv[i + 1]);
        if (a == "--renewals-in-flight") c.renewals_in_flight = std::atoi(argv[i + 1]);
        if (a == "--publisher-sched") c.publisher_sched = argv[i + 1];
        if (a == "--time-slice-us") c.time_slice_us = std::atol(argv[i + 1]);
    }
    if (c.time_slice_us >= 0) set_time_slice(std::chrono::microseconds(c.time_slice_us));
    char exe[4096];
    ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return 2;
    exe[len] = 0;
    c.self = exe;
    if (c.lock_pages) lock_pages();
    raise_fd_limit();
    // The lenient UNSUBSCRIBEs to the stopped publishers at the end each log a warning.
    uvgena::set_log_level(uvgena::LogLevel::error);
    std::signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_loop_configure(&loop, UV_METRICS_IDLE_TIME);  // for TurnProbe
    int rc = 0;
    try {
        rc = uvgena::run(&loop, bench(&loop, c));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "scale_bench: %s\n", e.what());
        rc = -1;
    }
    // Missed targets are reported in the figures; the exit status says whether it ran.
    std::printf("targets missed: %d\n", rc < 0 ? 0 : rc);
    return rc < 0 ? 1 : 0;
}
