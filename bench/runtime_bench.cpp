// Costs of the co runtime, each next to a baseline measured in the same run:
//   co_await of a ready Task           vs a plain (non-inlined) function call
//   Channel push + next (item ready)   vs std::deque push + pop
//   Channel hand-off between two tasks vs a std::function callback
//   timer round trip (sleep_for 0)     vs a raw uv_timer_t callback round trip
//   TCP ping-pong of 64 bytes          vs raw libuv callbacks (uv_read_start kept on)
// Ratios: divide the co figure by its baseline (printed by scripts or by hand).
#include <benchmark/benchmark.h>
#include <unistd.h>
#include <uv.h>

#include <array>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <span>
#include <string>

#include "uvgena/co/co.hpp"
#include "uvgena/net/net.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

struct Loop {
    uv_loop_t loop;
    Loop() { uv_loop_init(&loop); }
    ~Loop() {
        for (int i = 0; i < 8; ++i) uv_run(&loop, UV_RUN_NOWAIT);
        if (uv_loop_close(&loop) != 0) std::abort();
    }
};

Task<int> ready_value(int v) {
    co_return v;
}

[[gnu::noinline]] int plain_function(int v) {
    benchmark::ClobberMemory();
    return v;
}

void BM_TaskAwaitReady(benchmark::State& state) {
    Loop l;
    run(&l.loop, [](benchmark::State& st) -> Task<void> {
        int i = 0;
        for (auto _ : st) benchmark::DoNotOptimize(co_await ready_value(++i));
    }(state));
}
BENCHMARK(BM_TaskAwaitReady);

void BM_Baseline_PlainCall(benchmark::State& state) {
    int i = 0;
    for (auto _ : state) benchmark::DoNotOptimize(plain_function(++i));
}
BENCHMARK(BM_Baseline_PlainCall);

void BM_ChannelPushNext(benchmark::State& state) {
    Loop l;
    Channel<int> ch(&l.loop);
    run(&l.loop, [](benchmark::State& st, Channel<int>& c) -> Task<void> {
        int i = 0;
        for (auto _ : st) {
            c.push(++i);
            benchmark::DoNotOptimize(co_await c.next());
        }
    }(state, ch));
}
BENCHMARK(BM_ChannelPushNext);

void BM_Baseline_DequePushPop(benchmark::State& state) {
    std::deque<int> q;
    int i = 0;
    for (auto _ : state) {
        q.push_back(++i);
        benchmark::DoNotOptimize(q.front());
        q.pop_front();
    }
}
BENCHMARK(BM_Baseline_DequePushPop);

// The consumer waits in next(); each push hands the item over through the ready queue.
void BM_ChannelHandOff(benchmark::State& state) {
    Loop l;
    Channel<int> items(&l.loop);
    Channel<int> acks(&l.loop);
    Scope scope(&l.loop);
    scope.spawn([](Channel<int>& in, Channel<int>& out) -> Task<void> {
        while (auto v = co_await in.next()) out.push(*v);
    }(items, acks));
    run(&l.loop, [](benchmark::State& st, Channel<int>& in, Channel<int>& out) -> Task<void> {
        int i = 0;
        for (auto _ : st) {
            in.push(++i);
            benchmark::DoNotOptimize(co_await out.next());
        }
        in.close();
    }(state, items, acks));
    run(&l.loop, [](Scope& s) -> Task<void> { co_await s.join(); }(scope));
    state.SetLabel("two hops per iteration");
}
BENCHMARK(BM_ChannelHandOff);

void BM_Baseline_Callback(benchmark::State& state) {
    int last = 0;
    std::function<void(int)> consumer = [&last](int v) { last = v; };
    benchmark::DoNotOptimize(consumer);
    int i = 0;
    for (auto _ : state) {
        consumer(++i);
        benchmark::DoNotOptimize(last);
    }
}
BENCHMARK(BM_Baseline_Callback);

void BM_TimerRoundTrip(benchmark::State& state) {
    Loop l;
    run(&l.loop, [](benchmark::State& st, uv_loop_t* loop) -> Task<void> {
        for (auto _ : st) co_await sleep_for(loop, 0ms);
    }(state, &l.loop));
}
BENCHMARK(BM_TimerRoundTrip);

void raw_timer_cb(uv_timer_t* t) {
    auto* st = static_cast<benchmark::State*>(t->data);
    if (st->KeepRunning()) uv_timer_start(t, raw_timer_cb, 0, 0);
}

void BM_Baseline_UvTimerRoundTrip(benchmark::State& state) {
    // Like sleep_for(0) in a loop: the callback re-arms the timer until the run ends.
    Loop l;
    uv_timer_t timer;
    uv_timer_init(&l.loop, &timer);
    timer.data = &state;
    if (state.KeepRunning()) uv_timer_start(&timer, raw_timer_cb, 0, 0);
    uv_run(&l.loop, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
}
BENCHMARK(BM_Baseline_UvTimerRoundTrip);

// ---- TCP ping-pong: a 64-byte message echoed back, one in flight.

constexpr std::size_t kMessage = 64;

void BM_TcpPingPong(benchmark::State& state) {
    Loop l;
    uv_loop_t* loop = &l.loop;
    TcpListener listener = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
    Scope scope(loop);
    scope.spawn([](TcpListener& li) -> Task<void> {
        TcpStream s = co_await li.accept();
        std::array<char, kMessage> buf;
        for (;;) {
            std::size_t got = 0;
            while (got < kMessage) {
                std::size_t n = co_await s.read(std::span<char>(buf.data() + got, kMessage - got));
                if (n == 0) co_return;
                got += n;
            }
            co_await s.write(std::string_view(buf.data(), kMessage));
        }
    }(listener));
    run(loop, [](benchmark::State& st, uv_loop_t* lp, SocketAddress a) -> Task<void> {
        TcpStream s = co_await connect(lp, a);
        std::string msg(kMessage, 'p');
        std::array<char, kMessage> buf;
        for (auto _ : st) {
            co_await s.write(std::string_view(msg));
            std::size_t got = 0;
            while (got < kMessage) {
                got += co_await s.read(std::span<char>(buf.data() + got, kMessage - got));
            }
        }
        co_await s.shutdown();
    }(state, loop, listener.local_address()));
    run(loop, [](Scope& s) -> Task<void> { co_await s.join(); }(scope));
}
BENCHMARK(BM_TcpPingPong);

// The same exchange with plain libuv callbacks.
struct RawPeer {
    uv_tcp_t tcp;
    std::array<char, 65536> buf;
    std::size_t got = 0;
    bool is_client = false;
    bool done = false;  // client: a full echo arrived
    uv_write_t req;
};

void raw_alloc(uv_handle_t* h, std::size_t, uv_buf_t* out) {
    auto* p = static_cast<RawPeer*>(h->data);
    *out = uv_buf_init(p->buf.data() + p->got, static_cast<unsigned>(p->buf.size() - p->got));
}

void raw_send(RawPeer* p, const char* data) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(data), kMessage);
    // Like the co version: try first, queue the rest.
    int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&p->tcp), &b, 1);
    if (n == static_cast<int>(kMessage)) return;
    if (n < 0) n = 0;
    b = uv_buf_init(const_cast<char*>(data) + n, kMessage - static_cast<unsigned>(n));
    uv_write(&p->req, reinterpret_cast<uv_stream_t*>(&p->tcp), &b, 1, [](uv_write_t*, int) {});
}

void raw_read(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
    auto* p = static_cast<RawPeer*>(s->data);
    if (nread <= 0) {
        if (nread < 0) uv_read_stop(s);
        return;
    }
    p->got += static_cast<std::size_t>(nread);
    if (p->got < kMessage) return;
    p->got = 0;
    if (p->is_client) {
        p->done = true;
    } else {
        raw_send(p, p->buf.data());
    }
}

void BM_Baseline_RawUvPingPong(benchmark::State& state) {
    Loop l;
    uv_loop_t* loop = &l.loop;
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_bind(&server, reinterpret_cast<sockaddr*>(&addr), 0);
    RawPeer srv, cli;
    cli.is_client = true;
    server.data = &srv;
    uv_listen(reinterpret_cast<uv_stream_t*>(&server), 16, [](uv_stream_t* s, int) {
        auto* p = static_cast<RawPeer*>(s->data);
        uv_tcp_init(s->loop, &p->tcp);
        p->tcp.data = p;
        uv_accept(s, reinterpret_cast<uv_stream_t*>(&p->tcp));
        uv_read_start(reinterpret_cast<uv_stream_t*>(&p->tcp), raw_alloc, raw_read);
    });
    int len = sizeof addr;
    uv_tcp_getsockname(&server, reinterpret_cast<sockaddr*>(&addr), &len);
    uv_tcp_init(loop, &cli.tcp);
    cli.tcp.data = &cli;
    uv_tcp_nodelay(&cli.tcp, 1);
    uv_connect_t creq;
    bool connected = false;
    creq.data = &connected;
    uv_tcp_connect(&creq, &cli.tcp, reinterpret_cast<sockaddr*>(&addr),
                   [](uv_connect_t* r, int) { *static_cast<bool*>(r->data) = true; });
    while (!connected) uv_run(loop, UV_RUN_ONCE);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&cli.tcp), raw_alloc, raw_read);
    std::string msg(kMessage, 'p');
    for (auto _ : state) {
        cli.done = false;
        raw_send(&cli, msg.data());
        while (!cli.done) uv_run(loop, UV_RUN_ONCE);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&cli.tcp), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&srv.tcp), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&server), nullptr);
}
BENCHMARK(BM_Baseline_RawUvPingPong);

// Prints the usual table, then each co figure divided by its baseline (CPU time).
class RatioReporter : public benchmark::ConsoleReporter {
  public:
    RatioReporter() : ConsoleReporter(isatty(1) ? OO_Defaults : OO_Tabular) {}
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& r : runs) cpu_ns_[r.benchmark_name()] = r.GetAdjustedCPUTime();
        ConsoleReporter::ReportRuns(runs);
    }
    void Finalize() override {
        ConsoleReporter::Finalize();
        const std::pair<const char*, const char*> pairs[] = {
            {"BM_TaskAwaitReady", "BM_Baseline_PlainCall"},
            {"BM_ChannelPushNext", "BM_Baseline_DequePushPop"},
            {"BM_ChannelHandOff", "BM_Baseline_Callback"},
            {"BM_TimerRoundTrip", "BM_Baseline_UvTimerRoundTrip"},
            {"BM_TcpPingPong", "BM_Baseline_RawUvPingPong"},
        };
        std::printf("\n%-22s %12s %12s %8s\n", "co figure", "co ns", "baseline ns", "ratio");
        for (auto [co, base] : pairs) {
            auto a = cpu_ns_.find(co);
            auto b = cpu_ns_.find(base);
            if (a == cpu_ns_.end() || b == cpu_ns_.end() || b->second <= 0) continue;
            std::printf("%-22s %12.1f %12.1f %8.2f\n", co + 3, a->second, b->second,
                        a->second / b->second);
        }
        // Machine-readable lines for scripts/bench.sh: figure|value|baseline|ratio|target|unit.
        for (auto [co, base] : pairs) {
            auto a = cpu_ns_.find(co);
            auto b = cpu_ns_.find(base);
            if (a == cpu_ns_.end() || b == cpu_ns_.end() || b->second <= 0) continue;
            std::printf("RESULT runtime %s|%.1f|%.1f|%.3f|info|ns CPU (ratio = cost / baseline)\n",
                        co + 3, a->second, b->second, a->second / b->second);
        }
    }

  private:
    std::map<std::string, double> cpu_ns_;
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
