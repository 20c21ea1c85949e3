// A threaded program using uvgena through a BackgroundLoop: worker threads that know nothing
// of event loops make HTTP requests and wait for their results, with time limits and
// cancellation. To stay self-contained it serves the requests itself, from an HTTP server
// running on the same background loop (on 127.0.0.1, a free port).
//
//   background_loop [workers=4] [requests per worker=5]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "uvgena/blocking/background_loop.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/http/server.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
    int workers = argc > 1 ? std::max(1, std::atoi(argv[1])) : 4;
    int per_worker = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;

    BackgroundLoop bg;

    // The server is created, used and destroyed on the loop thread; this thread only keeps
    // a pointer to hand back to the loop.
    auto server = bg.run([](uv_loop_t* loop) {
                        http::ServerOptions options;
                        options.address = SocketAddress::ipv4_loopback(0);
                        auto s = std::make_unique<http::Server>(
                            loop,
                            [loop](const http::Request& request,
                                   const http::RequestContext&) -> Task<http::Response> {
                                http::Response response;
                                if (request.target == "/slow") {
                                    co_await sleep_for(loop, 10s);
                                }
                                response.body = "you asked for " + request.target + "\n";
                                co_return response;
                            },
                            options);
                        s->listen();
                        return s;
                    }).wait(5s);
    std::string base = "http://127.0.0.1:" + std::to_string(server->port());
    std::printf("serving on %s\n", base.c_str());

    // Worker threads: each request is a Task run on the loop; the worker blocks in wait().
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
        threads.emplace_back([&bg, &base, w, per_worker] {
            for (int i = 0; i < per_worker; ++i) {
                std::string url = base + "/worker/" + std::to_string(w) + "/" + std::to_string(i);
                try {
                    http::Response r = bg.run([url](uv_loop_t* loop) {
                                             return http::request(loop, "GET", url);
                                         }).wait(5s);
                    std::printf("worker %d: %d %s", w, r.status, r.body.c_str());
                } catch (const std::system_error& e) {
                    std::printf("worker %d: %s\n", w, e.what());
                }
            }
        });
    }
    for (auto& t : threads) t.join();

    // A request that takes too long: wait() gives up after 200 ms, cancel() stops it.
    auto slow =
        bg.run([url = base + "/slow"](uv_loop_t* loop) { return http::request(loop, "GET", url); });
    try {
        (void)slow.wait(200ms);
    } catch (const std::system_error& e) {
        std::printf("slow request: %s; cancelling it\n", e.what());
        slow.cancel();
    }
    try {
        (void)slow.wait();
    } catch (const std::system_error& e) {
        std::printf("slow request ended: %s\n", e.what());
    }

    // Library objects die on the loop thread.
    bg.run([s = std::move(server)](uv_loop_t*) mutable -> Task<void> {
          co_await s->stop(1s);
          s.reset();
      }).wait();
    bg.stop();
    std::printf("stopped cleanly\n");
    return 0;
}
