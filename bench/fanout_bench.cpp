// Publisher fan-out: one variable change delivered to N subscribers (default 1,000), all
// uvgena subscriptions with consumers awaiting next() on the same loop as the Publisher.
// Measured: time from Service::set() until the last subscriber has the event, NOTIFYs per
// second, and the check that every subscriber got exactly SEQ 1 with the new value.
// Baseline in the same run: notify_loadgen (raw libuv, another process) sending the same
// number of NOTIFYs, one connection each, with the Publisher's concurrency, to
// ingest_baseline_transport (libuv + llhttp, no XML).
//
//   fanout_bench [--subscribers N] [--changes K]
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "uvgena/co/co.hpp"
#include "uvgena/publisher/publisher.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"
#include "support/bench_util.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

using namespace uvgena_bench;

struct Shared {
    std::uint64_t got_initial = 0, got_change = 0, wrong = 0, last_rx = 0;
    std::uint32_t expect_seq = 1;
    std::string expect_value;
};

Task<void> consume(const gena::Subscription& sub, Shared& s) {
    std::uint32_t expected = 0;
    while (auto ev = co_await sub.events().next()) {
        if (ev->seq != expected) ++s.wrong;
        expected = ev->seq + 1;
        if (ev->seq == 0) {
            ++s.got_initial;
        } else {
            auto v = ev->variables().get("Volume");
            if (!v || *v != s.expect_value || ev->seq != s.expect_seq) ++s.wrong;
            ++s.got_change;
            s.last_rx = now_ns();
        }
    }
}

/// Runs a command line to completion (blocking: the baseline runs before the loop is used).
std::string run_capture(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
    return out;
}

/// The baseline: N NOTIFYs, one connection each, 128 at a time, raw libuv on both sides.
double baseline_ms(const std::string& bindir, int n) {
    char tmpl[] = "/tmp/uvgena-fanout-XXXXXX";
    if (!::mkdtemp(tmpl)) return 0;
    std::string dir = tmpl;
    {
        std::ofstream t(dir + "/targets");
        for (int i = 0; i < n; ++i) t << "/evt/" << i << " uuid:fanout-" << i << '\n';
    }
    int port = free_port();
    std::string cmd =
        "sh -c '" + bindir + "/ingest_baseline_transport --port " + std::to_string(port) +
        " --targets " + dir + "/targets > " + dir + "/server.out & s=$!; " + bindir +
        "/notify_loadgen --port " + std::to_string(port) + " --targets " + dir +
        "/targets --mode close --body small --seconds 10 --count " + std::to_string(n) +
        " --slots 128; kill $s; wait $s; cat " + dir + "/server.out'";
    std::string out = run_capture(cmd);
    std::istringstream lines(out);
    std::string gen_line, server_line;
    std::getline(lines, gen_line);
    std::getline(lines, server_line);
    auto g = parse_kv(gen_line);
    auto s = parse_kv(server_line);
    std::system(("rm -rf '" + dir + "'").c_str());
    if (s["received"] != n) {
        std::printf("baseline: %0.f of %d received\n", s["received"], n);
    }
    return (s["last_rx_ns"] - g["start_ns"]) / 1e6;
}

Task<int> bench(uv_loop_t* loop, int n, int changes, double base_ms) {
    gena::PublisherOptions po;
    po.max_subscriptions_per_host = static_cast<std::size_t>(n) + 16;
    po.max_subscriptions_per_service = static_cast<std::size_t>(n) + 16;
    po.callback_scope = gena::CallbackScope::same_segment;
    gena::Publisher publisher(loop, po);
    gena::ServiceConfig sc;
    sc.event_path = "/RenderingControl/event";
    sc.variables.emplace_back("Volume", "10");
    gena::Service& service = publisher.add_service(sc);
    http::ServerOptions so;
    so.address = SocketAddress::ipv4_loopback(0);
    publisher.listen(so);
    gena::ListenerOptions lo;
    lo.listen_host = "127.0.0.1";
    lo.port = 0;
    lo.max_connections = 1024;
    lo.max_connections_per_host = lo.max_connections;  // every peer is 127.0.0.1 here
    gena::EventListener listener(loop, lo);
    listener.start();
    std::string url =
        "http://127.0.0.1:" + std::to_string(publisher.server()->port()) + sc.event_path;
    std::vector<gena::Subscription> subs;
    subs.reserve(static_cast<std::size_t>(n));
    Shared shared;
    Scope consumers(loop);
    auto t_sub = now_ns();
    for (int i = 0; i < n; ++i) {
        gena::SubscribeOptions o;
        o.listener = &listener;
        o.requested_timeout = std::chrono::seconds(600);
        subs.push_back(co_await gena::subscribe(loop, url, o));
        consumers.spawn(consume(subs.back(), shared));
    }
    double subscribe_ms = static_cast<double>(now_ns() - t_sub) / 1e6;
    for (int i = 0; i < 5000 && shared.got_initial < static_cast<std::uint64_t>(n); ++i) {
        co_await sleep_for(loop, 1ms);
    }
    std::printf("%d subscriptions in %.0f ms; initial events received: %llu\n", n, subscribe_ms,
                static_cast<unsigned long long>(shared.got_initial));
    int missed = 0;
    double worst_ms = 0;
    for (int k = 1; k <= changes; ++k) {
        shared.got_change = 0;
        shared.expect_seq = static_cast<std::uint32_t>(k);
        shared.expect_value = std::to_string(20 + k);
        auto t0 = now_ns();
        service.set("Volume", shared.expect_value);
        for (int i = 0; i < 10'000 && shared.got_change < static_cast<std::uint64_t>(n); ++i) {
            co_await sleep_for(loop, 1ms);
        }
        double ms = static_cast<double>(shared.last_rx - t0) / 1e6;
        worst_ms = std::max(worst_ms, ms);
        std::printf(
            "change %d: %llu of %d subscribers received it, the last after %.1f ms "
            "(%.0f NOTIFY/s); wrong SEQ or value: %llu\n",
            k, static_cast<unsigned long long>(shared.got_change), n, ms,
            ms > 0 ? n / ms * 1000 : 0, static_cast<unsigned long long>(shared.wrong));
        if (shared.got_change != static_cast<std::uint64_t>(n)) ++missed;
    }
    std::printf("baseline: %d NOTIFYs raw libuv -> libuv+llhttp, 128 concurrent: %.1f ms\n", n,
                base_ms);
    std::printf(
        "RESULT fan-out %d subscribers: time to last|%.1f|%.1f|%.3f|value<=1000|ms "
        "(worst of %d changes; baseline raw libuv)\n",
        n, worst_ms, base_ms, base_ms > 0 ? worst_ms / base_ms : 0, changes);
    std::printf("RESULT fan-out NOTIFY/s|%.0f|%.0f|%.3f|info|NOTIFY/s\n",
                worst_ms > 0 ? n / worst_ms * 1000 : 0, base_ms > 0 ? n / base_ms * 1000 : 0,
                base_ms > 0 ? base_ms / worst_ms : 0);
    std::printf(
        "RESULT fan-out lost+wrong events|%d|0|-|value<=0|events (changes not fully "
        "delivered + wrong SEQ/value: %llu)\n",
        missed + static_cast<int>(shared.wrong), static_cast<unsigned long long>(shared.wrong));
    for (auto& s : subs) co_await s.unsubscribe(false);
    co_await consumers.join();
    co_await listener.stop();
    co_await publisher.stop(1s);
    co_return missed;
}

}  // namespace

int main(int argc, char** argv) {
    int n = 1000, changes = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--subscribers") n = std::atoi(argv[i + 1]);
        if (a == "--changes") changes = std::atoi(argv[i + 1]);
    }
    char exe[4096];
    ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return 2;
    exe[len] = 0;
    std::string bindir = std::string(exe).substr(0, std::string(exe).rfind('/'));
    std::signal(SIGPIPE, SIG_IGN);
    double base = baseline_ms(bindir, n);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = 0;
    try {
        rc = uvgena::run(&loop, bench(&loop, n, changes, base));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fanout_bench: %s\n", e.what());
        rc = -1;
    }
    for (int i = 0; i < 16; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&loop) != 0) std::fprintf(stderr, "fanout_bench: loop not closed\n");
    // Missed targets are reported in the figures; the exit status says whether it ran.
    std::printf("changes not fully delivered: %d\n", rc < 0 ? 0 : rc);
    return rc < 0 ? 1 : 0;
}
