// Requests per second of uvgena's http::Server answering NOTIFY-like requests (1.5 KB), next
// to a minimal libuv+llhttp server written here as the ceiling, with keep-alive connections
// and with `Connection: close` (one connection per request).
//
// The load generator is a raw libuv client in a forked child process; on a machine with two
// or more cores the server is pinned to CPU 0 and the generator to CPU 1, so that both get a
// core of their own. Each figure is the best of a few short rounds, servers interleaved (in
// alternating order), so that noise from the machine hits both alike.
//
// Usage: http_bench [--seconds S] [--connections N] [--rounds R] [--only baseline|uvgena]
//                   [--mode keep-alive|close]
#include <llhttp.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "uvgena/co/co.hpp"
#include "uvgena/http/http.hpp"

namespace {

enum class Mode { keep_alive, close };

struct Config {
    double seconds = 2.0;
    double warmup = 0.3;
    int connections = 32;
    int rounds = 3;
    std::string only;  // "baseline" or "uvgena" to run one server alone (for profiling)
    std::string mode;  // "keep-alive" or "close" to run one mode alone
};

std::string notify_request(Mode mode) {
    std::string body =
        "<?xml version=\"1.0\"?>\n<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\">\n"
        "<e:property><LastChange>&lt;Event xmlns=&quot;urn:schemas-upnp-org:metadata-1-0/AVT/"
        "&quot;&gt;&lt;InstanceID val=&quot;0&quot;&gt;";
    while (body.size() < 1200) body += "&lt;TransportState val=&quot;PLAYING&quot;/&gt;";
    body += "&lt;/InstanceID&gt;&lt;/Event&gt;</LastChange></e:property>\n</e:propertyset>\n";
    std::string req =
        "NOTIFY /event/7 HTTP/1.1\r\n"
        "HOST: 127.0.0.1:49152\r\n"
        "CONTENT-TYPE: text/xml; charset=\"utf-8\"\r\n"
        "NT: upnp:event\r\n"
        "NTS: upnp:propchange\r\n"
        "SID: uuid:6bd5eabd-b8e8-4f46-ab12-0123456789ab\r\n"
        "SEQ: 42\r\n";
    if (mode == Mode::close) req += "Connection: close\r\n";
    req += "CONTENT-LENGTH: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return req;
}

void pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) < 2) return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

// ---------------------------------------------------------------------------------------
// Load generator (child process): N connections, each sends a request and waits for the
// whole response before sending the next (keep-alive) or reconnecting (close).
// ---------------------------------------------------------------------------------------

struct Generator;

struct ClientConn {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    llhttp_t parser;
    Generator* gen = nullptr;
    bool complete = false;
    char buffer[16 * 1024];
};

struct Generator {
    uv_loop_t* loop = nullptr;
    sockaddr_in address{};
    Mode mode = Mode::keep_alive;
    std::string request;
    llhttp_settings_t settings{};
    std::uint64_t responses = 0;
    std::uint64_t errors = 0;
    bool stopping = false;
};

void client_start(Generator* gen, ClientConn* c);

void client_closed(uv_handle_t* handle) {
    auto* c = static_cast<ClientConn*>(handle->data);
    if (c->gen->stopping) {
        delete c;
        return;
    }
    client_start(c->gen, c);
}

void client_send(ClientConn* c) {
    uv_buf_t buf =
        uv_buf_init(c->gen->request.data(), static_cast<unsigned>(c->gen->request.size()));
    llhttp_init(&c->parser, HTTP_RESPONSE, &c->gen->settings);
    c->parser.data = c;
    c->complete = false;
    uv_write(&c->write_req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1,
             [](uv_write_t* req, int status) {
                 auto* conn = static_cast<ClientConn*>(req->data);
                 if (status < 0 && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&conn->tcp))) {
                     ++conn->gen->errors;
                     uv_close(reinterpret_cast<uv_handle_t*>(&conn->tcp), client_closed);
                 }
             });
}

void client_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<ClientConn*>(stream->data);
    (void)buf;
    if (n == 0) return;
    if (n < 0) {
        // In close mode the server closes after the response: that EOF is expected.
        if (!(n == UV_EOF && c->complete)) ++c->gen->errors;
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(stream))) {
            uv_close(reinterpret_cast<uv_handle_t*>(stream), client_closed);
        }
        return;
    }
    llhttp_errno_t err = llhttp_execute(&c->parser, c->buffer, static_cast<std::size_t>(n));
    if (err != HPE_OK && err != HPE_PAUSED) {
        ++c->gen->errors;
        uv_close(reinterpret_cast<uv_handle_t*>(stream), client_closed);
        return;
    }
    if (!c->complete) return;
    ++c->gen->responses;
    if (c->gen->stopping) {
        uv_close(reinterpret_cast<uv_handle_t*>(stream), client_closed);
    } else if (c->gen->mode == Mode::keep_alive) {
        client_send(c);
    }
    // Close mode: wait for the server's EOF, then reconnect from the close callback.
}

void client_start(Generator* gen, ClientConn* c) {
    c->gen = gen;
    uv_tcp_init(gen->loop, &c->tcp);
    c->tcp.data = c;
    c->connect_req.data = c;
    c->write_req.data = c;
    uv_tcp_connect(&c->connect_req, &c->tcp, reinterpret_cast<const sockaddr*>(&gen->address),
                   [](uv_connect_t* req, int status) {
                       auto* conn = static_cast<ClientConn*>(req->data);
                       if (status < 0) {
                           ++conn->gen->errors;
                           uv_close(reinterpret_cast<uv_handle_t*>(&conn->tcp), client_closed);
                           return;
                       }
                       uv_tcp_nodelay(&conn->tcp, 1);
                       uv_read_start(
                           reinterpret_cast<uv_stream_t*>(&conn->tcp),
                           [](uv_handle_t* h, std::size_t, uv_buf_t* b) {
                               auto* cc = static_cast<ClientConn*>(h->data);
                               *b = uv_buf_init(cc->buffer, sizeof cc->buffer);
                           },
                           client_read);
                       client_send(conn);
                   });
}

// Runs the generator against 127.0.0.1:port and returns requests per second.
double generate_load(std::uint16_t port, Mode mode, const Config& config, std::uint64_t* errors) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    Generator gen;
    gen.loop = &loop;
    gen.mode = mode;
    gen.request = notify_request(mode);
    uv_ip4_addr("127.0.0.1", port, &gen.address);
    llhttp_settings_init(&gen.settings);
    gen.settings.on_message_complete = [](llhttp_t* p) {
        static_cast<ClientConn*>(p->data)->complete = true;
        return 0;
    };
    for (int i = 0; i < config.connections; ++i) client_start(&gen, new ClientConn);

    struct Window {
        Generator* gen;
        std::uint64_t start_count = 0;
        std::chrono::steady_clock::time_point start;
        double rps = 0;
        double seconds = 0;
        uv_timer_t timer;
    } window{&gen, 0, {}, 0, config.seconds, {}};
    uv_timer_init(&loop, &window.timer);
    window.timer.data = &window;
    uv_timer_start(
        &window.timer,
        [](uv_timer_t* t) {
            auto* w = static_cast<Window*>(t->data);
            w->start_count = w->gen->responses;
            w->start = std::chrono::steady_clock::now();
            uv_timer_start(
                t,
                [](uv_timer_t* t2) {
                    auto* w2 = static_cast<Window*>(t2->data);
                    double elapsed =
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - w2->start)
                            .count();
                    w2->rps = static_cast<double>(w2->gen->responses - w2->start_count) / elapsed;
                    w2->gen->stopping = true;
                    uv_stop(t2->loop);
                },
                static_cast<std::uint64_t>(w->seconds * 1000), 0);
        },
        static_cast<std::uint64_t>(config.warmup * 1000), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    *errors = gen.errors;
    // The process exits right after: no need to tear the connections down.
    return window.rps;
}

// ---------------------------------------------------------------------------------------
// Baseline: the least a libuv+llhttp server must do — parse each request with llhttp and
// answer it with one write, no per-request allocation.
// ---------------------------------------------------------------------------------------

const char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
const char kOkClose[] = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

struct BaselineServer;

struct BaselineConn {
    uv_tcp_t tcp;
    llhttp_t parser;
    BaselineServer* server = nullptr;
    unsigned answers = 0;
    bool close_after = false;
    char buffer[64 * 1024];
};

struct BaselineServer {
    uv_tcp_t listener;
    llhttp_settings_t settings{};
    std::vector<BaselineConn*> conns;
    std::uint64_t served = 0;
};

void baseline_closed(uv_handle_t* h) {
    auto* c = static_cast<BaselineConn*>(h->data);
    auto& v = c->server->conns;
    v.erase(std::find(v.begin(), v.end(), c));
    delete c;
}

void baseline_close(BaselineConn* c) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp))) {
        uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), baseline_closed);
    }
}

void baseline_read(uv_stream_t* stream, ssize_t n, const uv_buf_t*) {
    auto* c = static_cast<BaselineConn*>(stream->data);
    if (n < 0) {
        baseline_close(c);
        return;
    }
    if (n == 0) return;
    c->answers = 0;
    llhttp_errno_t err = llhttp_execute(&c->parser, c->buffer, static_cast<std::size_t>(n));
    if (err != HPE_OK) {
        baseline_close(c);
        return;
    }
    c->server->served += c->answers;
    for (unsigned i = 0; i < c->answers; ++i) {
        const char* text = c->close_after ? kOkClose : kOk;
        std::size_t len = c->close_after ? sizeof kOkClose - 1 : sizeof kOk - 1;
        uv_buf_t buf = uv_buf_init(const_cast<char*>(text), static_cast<unsigned>(len));
        int written = uv_try_write(stream, &buf, 1);
        if (written < static_cast<int>(len)) {
            if (written < 0 && written != UV_EAGAIN) {
                baseline_close(c);
                return;
            }
            std::size_t done = written > 0 ? static_cast<std::size_t>(written) : 0;
            auto* req = new uv_write_t;
            buf = uv_buf_init(const_cast<char*>(text + done), static_cast<unsigned>(len - done));
            uv_write(req, stream, &buf, 1, [](uv_write_t* r, int) { delete r; });
        }
    }
    if (c->close_after) baseline_close(c);
}

void baseline_accept(uv_stream_t* listener, int status) {
    if (status < 0) return;
    auto* server = static_cast<BaselineServer*>(listener->data);
    auto* c = new BaselineConn;
    c->server = server;
    uv_tcp_init(listener->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
                 [](uv_handle_t* h) { delete static_cast<BaselineConn*>(h->data); });
        return;
    }
    server->conns.push_back(c);
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &server->settings);
    c->parser.data = c;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, std::size_t, uv_buf_t* b) {
            auto* cc = static_cast<BaselineConn*>(h->data);
            *b = uv_buf_init(cc->buffer, sizeof cc->buffer);
        },
        baseline_read);
}

// ---------------------------------------------------------------------------------------
// One measurement: a server on this process's loop, the generator in a child process that
// reports its figure through a pipe; the report ends the server.
// ---------------------------------------------------------------------------------------

struct Report {
    double rps = 0;                         // measured by the generator
    std::uint64_t errors = 0;               // failed connections or responses seen by the generator
    double server_us_per_request = 0;       // server process CPU (user+sys) per request it served
    double server_user_us_per_request = 0;  // the user-space part of it
    std::uint64_t served = 0;               // requests the server answered in the whole run
};

double cpu_seconds(bool user_only = false) {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto secs = [](timeval t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return secs(u.ru_utime) + (user_only ? 0.0 : secs(u.ru_stime));
}

struct PipeReader {
    uv_pipe_t pipe;
    Report report;
    std::string data;
    std::function<void()> on_report;
};

// Forks the generator and arranges for `on_report` to run in the loop when it reports.
pid_t start_generator(uv_loop_t* loop, std::uint16_t port, Mode mode, const Config& config,
                      PipeReader* reader) {
    int fds[2];
    if (pipe(fds) != 0) std::abort();
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        pin_to_cpu(1);
        Report r;
        r.rps = generate_load(port, mode, config, &r.errors);
        if (write(fds[1], &r, sizeof r) != sizeof r) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    uv_pipe_init(loop, &reader->pipe, 0);
    reader->pipe.data = reader;
    uv_pipe_open(&reader->pipe, fds[0]);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&reader->pipe),
        [](uv_handle_t*, std::size_t, uv_buf_t* b) {
            static char chunk[256];
            *b = uv_buf_init(chunk, sizeof chunk);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
            auto* r = static_cast<PipeReader*>(s->data);
            if (n > 0) r->data.append(b->base, static_cast<std::size_t>(n));
            if (n < 0 || r->data.size() >= sizeof(Report)) {
                if (r->data.size() >= sizeof(Report)) {
                    std::memcpy(&r->report, r->data.data(), sizeof(Report));
                }
                uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
                r->on_report();
            }
        });
    return pid;
}

Report run_baseline(Mode mode, const Config& config) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    BaselineServer server;
    llhttp_settings_init(&server.settings);
    server.settings.on_message_complete = [](llhttp_t* p) {
        auto* c = static_cast<BaselineConn*>(p->data);
        ++c->answers;
        c->close_after = !llhttp_should_keep_alive(p);
        return 0;
    };
    uv_tcp_init(&loop, &server.listener);
    server.listener.data = &server;
    sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_bind(&server.listener, reinterpret_cast<const sockaddr*>(&addr), 0);
    uv_listen(reinterpret_cast<uv_stream_t*>(&server.listener), 511, baseline_accept);
    sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&server.listener, reinterpret_cast<sockaddr*>(&bound), &len);
    auto port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

    PipeReader reader;
    reader.on_report = [&] {
        uv_close(reinterpret_cast<uv_handle_t*>(&server.listener), nullptr);
        for (BaselineConn* c : std::vector<BaselineConn*>(server.conns)) baseline_close(c);
    };
    double cpu_start = cpu_seconds();
    double user_start = cpu_seconds(true);
    pid_t pid = start_generator(&loop, port, mode, config, &reader);
    uv_run(&loop, UV_RUN_DEFAULT);
    double cpu = cpu_seconds() - cpu_start;
    double user = cpu_seconds(true) - user_start;
    waitpid(pid, nullptr, 0);
    if (uv_loop_close(&loop) != 0) std::fprintf(stderr, "baseline: loop not closed clean\n");
    reader.report.server_us_per_request = cpu * 1e6 / static_cast<double>(server.served);
    reader.report.server_user_us_per_request = user * 1e6 / static_cast<double>(server.served);
    reader.report.served = server.served;
    return reader.report;
}

Report run_uvgena(Mode mode, const Config& config) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    Report report;
    {
        uvgena::http::ServerOptions options;
        options.address = uvgena::SocketAddress::ipv4_loopback(0);
        uvgena::http::Server server(
            &loop,
            [](const uvgena::http::Request&, const uvgena::http::RequestContext&)
                -> uvgena::Task<uvgena::http::Response> { co_return uvgena::http::Response{}; },
            options);
        server.listen();
        PipeReader reader;
        reader.on_report = [&] {
            uvgena::spawn(&loop, server.stop(std::chrono::milliseconds(500)));
        };
        double cpu_start = cpu_seconds();
        double user_start = cpu_seconds(true);
        pid_t pid = start_generator(&loop, server.port(), mode, config, &reader);
        uv_run(&loop, UV_RUN_DEFAULT);
        double cpu = cpu_seconds() - cpu_start;
        double user = cpu_seconds(true) - user_start;
        waitpid(pid, nullptr, 0);
        report = reader.report;
        auto served = static_cast<double>(server.stats().requests);
        report.server_us_per_request = cpu * 1e6 / served;
        report.server_user_us_per_request = user * 1e6 / served;
        report.served = server.stats().requests;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) std::fprintf(stderr, "uvgena: loop not closed clean\n");
    return report;
}

}  // namespace

int main(int argc, char** argv) {
    Config config;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string arg = argv[i];
        if (arg == "--seconds") config.seconds = std::atof(argv[i + 1]);
        if (arg == "--connections") config.connections = std::atoi(argv[i + 1]);
        if (arg == "--rounds") config.rounds = std::atoi(argv[i + 1]);
        if (arg == "--only") config.only = argv[i + 1];
        if (arg == "--mode") config.mode = argv[i + 1];
    }
    std::signal(SIGPIPE, SIG_IGN);
    pin_to_cpu(0);
    std::printf("http_bench: NOTIFY of %zu bytes, %d connections, %d rounds of %.1f s, best of\n",
                notify_request(Mode::keep_alive).size(), config.connections, config.rounds,
                config.seconds);
    bool below_target = false;
    std::uint64_t total_served = 0;
    for (Mode mode : {Mode::keep_alive, Mode::close}) {
        if (!config.mode.empty() && config.mode != (mode == Mode::close ? "close" : "keep-alive")) {
            continue;
        }
        Report best_base, best_uvgena;
        double base_cpu = 1e300, uvgena_cpu = 1e300, base_user = 1e300, uvgena_user = 1e300;
        for (int round = 0; round < config.rounds; ++round) {
            // Alternating the order (baseline first, then uvgena first) keeps whatever the
            // first run of a pair leaves behind from always falling on the same server.
            Report b, u;
            for (bool uvgena_turn : {round % 2 == 1, round % 2 == 0}) {
                if (uvgena_turn) {
                    if (config.only != "baseline") u = run_uvgena(mode, config);
                } else if (config.only != "uvgena") {
                    b = run_baseline(mode, config);
                }
            }
            if (b.rps > best_base.rps) best_base = b;
            if (u.rps > best_uvgena.rps) best_uvgena = u;
            total_served += b.served + u.served;
            base_cpu = std::min(base_cpu, b.server_us_per_request);
            uvgena_cpu = std::min(uvgena_cpu, u.server_us_per_request);
            base_user = std::min(base_user, b.server_user_us_per_request);
            uvgena_user = std::min(uvgena_user, u.server_user_us_per_request);
        }
        double ratio = best_base.rps > 0 ? best_uvgena.rps / best_base.rps : 0;
        // Throughput can be bound by the generator; CPU per request is the server's own cost.
        double cpu_ratio = uvgena_cpu > 0 ? base_cpu / uvgena_cpu : 0;
        below_target = below_target || ratio < 0.85;
        const char* name = mode == Mode::keep_alive ? "keep-alive" : "close";
        std::printf(
            "%-10s req/s:      baseline (libuv+llhttp) %8.0f | uvgena http::Server %8.0f"
            " | ratio %.2f | errors %llu/%llu\n",
            name, best_base.rps, best_uvgena.rps, ratio,
            static_cast<unsigned long long>(best_base.errors),
            static_cast<unsigned long long>(best_uvgena.errors));
        std::printf(
            "%-10s server CPU: baseline %6.1f us/request (user %4.1f) | uvgena %6.1f"
            " us/request (user %4.1f) | efficiency ratio %.2f\n",
            name, base_cpu, base_user, uvgena_cpu, uvgena_user, cpu_ratio);
        // Machine-readable lines for scripts/bench.sh: figure|value|baseline|ratio|target|unit.
        std::printf("RESULT http server %s req/s|%.0f|%.0f|%.3f|ratio>=0.85|req/s\n", name,
                    best_uvgena.rps, best_base.rps, ratio);
        std::printf(
            "RESULT http server %s CPU/request|%.2f|%.2f|%.3f|info|us (ratio = "
            "baseline / uvgena)\n",
            name, uvgena_cpu, base_cpu, cpu_ratio);
    }
    std::printf("target: ratio >= 0.85 in both modes: %s\n", below_target ? "MISSED" : "met");
    // For `perf stat -i` (parent only): instructions per request = counter / this.
    std::fprintf(stderr, "requests served by the server(s) of this process: %llu\n",
                 static_cast<unsigned long long>(total_served));
    return 0;
}
