// Fan-out of one change to N subscribers (issue #9: 1,000 subscribers in under a second):
// the time from Service::set() until every subscriber's receiver has answered its NOTIFY,
// next to a baseline measured in the same run: the same N NOTIFYs (same body, same
// concurrency bound) sent directly with http::try_send, without the publisher. The ratio
// publisher / baseline is the publisher's own cost.
//
// Subscribers are N callback paths on one in-process http::Server on 127.0.0.1 (loopback
// only). Each figure is the best of R rounds.
//
// Usage: publisher_fanout_bench [--subscribers N] [--rounds R]
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "uvgena/co/co.hpp"
#include "uvgena/gena/gena.hpp"
#include "uvgena/http/http.hpp"

using namespace uvgena;
using Seconds = std::chrono::duration<double>;

namespace {

struct Config {
    int subscribers = 1000;
    int rounds = 5;
    std::size_t concurrency = 128;
};

Task<double> publisher_round(gena::Publisher& publisher, gena::Service& service,
                             std::uint64_t& answered, int n, int round) {
    std::uint64_t before = answered;
    auto start = Clock::now();
    service.set("Volume", std::to_string(round));
    co_await publisher.idle();
    double took = Seconds(Clock::now() - start).count();
    if (answered - before != static_cast<std::uint64_t>(n)) {
        std::fprintf(stderr, "publisher round: %llu of %d NOTIFYs answered\n",
                     static_cast<unsigned long long>(answered - before), n);
    }
    co_return took;
}

// The same NOTIFYs without the publisher: `concurrency` workers over N prepared targets.
Task<double> baseline_round(uv_loop_t* loop, SocketAddress address, int n, std::size_t concurrency,
                            std::string body) {
    std::vector<std::string> paths;
    for (int i = 0; i < n; ++i) paths.push_back("/s" + std::to_string(i));
    std::size_t next = 0;
    int failed = 0;
    auto start = Clock::now();
    {
        Scope workers(loop);
        for (std::size_t w = 0; w < concurrency; ++w) {
            workers.spawn([](uv_loop_t* l, SocketAddress a, std::vector<std::string>& p,
                             std::size_t& i, const std::string& b, int& bad) -> Task<void> {
                while (i < p.size()) {
                    http::Url url = http::Url::parse("http://" + a.to_string() + p[i++]);
                    http::Request r = gena::make_notify(url, "uuid:baseline", 1, b);
                    auto answer = co_await http::try_send(l, a, std::move(r));
                    if (!answer || answer->status != 200) ++bad;
                }
            }(loop, address, paths, next, body, failed));
        }
        co_await workers.join();
    }
    if (failed != 0) std::fprintf(stderr, "baseline round: %d NOTIFYs failed\n", failed);
    co_return Seconds(Clock::now() - start).count();
}

Task<void> bench(uv_loop_t* loop, Config config) {
    std::uint64_t answered = 0;
    http::ServerOptions so;
    so.address = SocketAddress::ipv4_loopback(0);
    so.max_connections = 4096;
    http::Server receiver(
        loop,
        [&answered](const http::Request&, const http::RequestContext&) -> Task<http::Response> {
            ++answered;
            co_return http::Response{};
        },
        so);
    receiver.listen();

    gena::PublisherOptions po;
    po.max_subscriptions_per_host = static_cast<std::size_t>(config.subscribers);
    po.max_subscriptions_per_service = static_cast<std::size_t>(config.subscribers);
    po.max_concurrent_notifies = config.concurrency;
    gena::Publisher publisher(loop, po);
    gena::ServiceConfig sc;
    sc.event_path = "/RenderingControl/event";
    sc.variables = {{"Volume", "0"}};
    gena::Service& service = publisher.add_service(sc);
    http::ServerOptions ps;
    ps.address = SocketAddress::ipv4_loopback(0);
    publisher.listen(ps);

    http::Url event_url = http::Url::parse("http://" + publisher.server()->local_address().to_string() +
                                           "/RenderingControl/event");
    for (int i = 0; i < config.subscribers; ++i) {
        gena::SubscribeParams params;
        params.callbacks = {"http://" + receiver.local_address().to_string() + "/s" + std::to_string(i)};
        auto r = co_await http::try_send(loop, publisher.server()->local_address(),
                                         gena::make_subscribe(event_url, params));
        if (!r || r->status != 200) {
            std::fprintf(stderr, "subscribe %d failed\n", i);
            co_return;
        }
    }
    co_await publisher.idle();  // the initial events

    std::string body = gena::build_property_set({{"Volume", "100"}});
    double best_publisher = 1e9, best_baseline = 1e9;
    for (int round = 1; round <= config.rounds; ++round) {
        best_publisher = std::min(best_publisher, co_await publisher_round(publisher, service, answered,
                                                                           config.subscribers, round));
        best_baseline = std::min(best_baseline, co_await baseline_round(loop, receiver.local_address(),
                                                                         config.subscribers,
                                                                         config.concurrency, body));
    }
    std::printf("fan-out of one change to %d subscribers (best of %d, %zu NOTIFYs in flight):\n",
                config.subscribers, config.rounds, config.concurrency);
    std::printf("  publisher: %8.1f ms  (%.0f NOTIFY/s)\n", best_publisher * 1e3,
                config.subscribers / best_publisher);
    std::printf("  baseline : %8.1f ms  (%.0f NOTIFY/s, http::try_send alone)\n",
                best_baseline * 1e3, config.subscribers / best_baseline);
    std::printf("  ratio publisher/baseline: %.2f\n", best_publisher / best_baseline);
    std::printf("  issue #9 target (< 1000 ms for 1000): %s\n",
                config.subscribers >= 1000 && best_publisher < 1.0 ? "met" : "see figures");
    co_await publisher.stop();
    co_await receiver.stop();
}

}  // namespace

int main(int argc, char** argv) {
    Config config;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--subscribers") == 0) config.subscribers = std::atoi(argv[i + 1]);
        else if (std::strcmp(argv[i], "--rounds") == 0) config.rounds = std::atoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: publisher_fanout_bench [--subscribers N] [--rounds R]\n");
            return 2;
        }
    }
    std::signal(SIGPIPE, SIG_IGN);
    rlimit nofile{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
    uv_loop_t loop;
    uv_loop_init(&loop);
    run(&loop, bench(&loop, config));
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}
