// Interoperability with HTTP implementations nobody here wrote: curl as a client of
// http::Server, python3's http.server as a server for http::request. Both run as child
// processes of the test, on loopback only, and are ended by their PID.
#include <doctest/doctest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "support.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/http/http.hpp"
#include "uvgena/net/tcp.hpp"

using namespace uvgena;
using namespace uvgena::http;
using namespace std::chrono_literals;

namespace {

// A child process with its stdout collected. Heap-allocated and owned by a list declared
// before the TestLoop, so that it outlives the close callbacks of its handles.
struct Child {
    uv_process_t process{};
    uv_pipe_t out{};
    std::string output;
    std::int64_t exit_status = -1;
    int term_signal = 0;
    bool exited = false;
    bool out_done = false;
    bool spawned = false;

    bool done() const noexcept { return exited && out_done; }
};

using Children = std::vector<std::unique_ptr<Child>>;

Child* spawn_child(uv_loop_t* loop, Children& children, std::vector<std::string> args,
                   bool capture_stdout = true) {
    auto child = std::make_unique<Child>();
    Child* c = child.get();
    children.push_back(std::move(child));
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    uv_pipe_init(loop, &c->out, 0);
    c->out.data = c;
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    if (capture_stdout) {
        stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
        stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&c->out);
    } else {
        stdio[1].flags = UV_IGNORE;
    }
    stdio[2].flags = UV_IGNORE;
    uv_process_options_t options{};
    options.file = argv[0];
    options.args = argv.data();
    options.stdio = stdio;
    options.stdio_count = 3;
    options.exit_cb = [](uv_process_t* p, std::int64_t status, int signal) {
        auto* ch = static_cast<Child*>(p->data);
        ch->exit_status = status;
        ch->term_signal = signal;
        ch->exited = true;
        uv_close(reinterpret_cast<uv_handle_t*>(p), nullptr);
    };
    c->process.data = c;
    int r = uv_spawn(loop, &c->process, &options);
    REQUIRE_MESSAGE(r == 0, "spawn ", args[0], ": ", uv_strerror(r));
    c->spawned = true;
    if (!capture_stdout) {
        c->out_done = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&c->out), nullptr);
        return c;
    }
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->out),
        [](uv_handle_t*, std::size_t suggested, uv_buf_t* b) {
            *b = uv_buf_init(new char[suggested], static_cast<unsigned>(suggested));
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
            auto* ch = static_cast<Child*>(s->data);
            if (n > 0) ch->output.append(b->base, static_cast<std::size_t>(n));
            delete[] b->base;
            if (n < 0) {
                ch->out_done = true;
                uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
            }
        });
    return c;
}

Task<void> wait_for(uv_loop_t* loop, const Child* child) {
    while (!child->done()) co_await sleep_for(loop, 5ms);
}

// Runs curl with `args` (after the common safety options) and returns its stdout.
Task<std::string> curl(uv_loop_t* loop, Children& children, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/curl", "--silent", "--show-error", "--noproxy", "*",
                                     "--max-time",    "10"};
    argv.insert(argv.end(), args.begin(), args.end());
    Child* c = spawn_child(loop, children, argv);
    co_await wait_for(loop, c);
    if (c->exit_status != 0) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "curl exited with " + std::to_string(c->exit_status));
    }
    co_return c->output;
}

// Answers with what the request looked like, for curl to print.
Task<Response> describe_request(const Request& r, const RequestContext&) {
    Response resp;
    resp.headers.add("Content-Type", "text/plain");
    resp.body = r.method + " " + r.target + " HTTP/" + std::to_string(r.version_major) + "." +
                std::to_string(r.version_minor) +
                " te=" + std::string(r.headers.get("transfer-encoding").value_or("-")) +
                " nt=" + std::string(r.headers.get("nt").value_or("-")) +
                " body=" + std::to_string(r.body.size()) +
                " sum=" + std::to_string(std::count(r.body.begin(), r.body.end(), 'x'));
    co_return resp;
}

std::string make_temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "uvgena-http-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    return pattern;
}

}  // namespace

TEST_SUITE("http.interop") {
    TEST_CASE("curl talks to http::Server: GET, chunked NOTIFY, keep-alive, HTTP/1.0, limits") {
        Children children;
        uvtest::TestLoop loop(std::chrono::seconds(40));
        ServerOptions options;
        options.address = SocketAddress::ipv4_loopback(0);
        Server server(loop, describe_request, options);
        server.listen();
        std::string base = "http://127.0.0.1:" + std::to_string(server.port());
        std::string dir = make_temp_dir();
        std::string upload = dir + "/event.xml";
        std::ofstream(upload) << std::string(50'000, 'x');

        auto scenario = [](uv_loop_t* l, Children& ch, std::string b,
                           std::string file) -> Task<std::vector<std::string>> {
            // Each argument list is built apart: g++ 12 cannot keep a braced list alive
            // across a co_await in the same expression.
            std::vector<std::vector<std::string>> calls = {
                {"-w", " %{http_code}", b + "/get"},
                {"-X", "NOTIFY", "-H", "Transfer-Encoding: chunked", "-H", "NT: upnp:event", "-H",
                 "Content-Type: text/xml", "--data-binary", "@" + file, "-w", " %{http_code}",
                 b + "/event/1"},
                {"-X", "NOTIFY", "-H", "Expect: 100-continue", "--data-binary", "@" + file, "-w",
                 " %{http_code}", b + "/expect"},
                {"-w", " %{num_connects}\\n", b + "/k1", b + "/k2", b + "/k3"},
                {"-0", "-w", " %{http_code}", b + "/old"},
                {"-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Big: " + std::string(9000, 'h'),
                 b + "/big"},
            };
            std::vector<std::string> out;
            for (auto& args : calls) out.push_back(co_await curl(l, ch, std::move(args)));
            co_return out;
        };
        auto out = run(loop, scenario(loop, children, base, upload));
        REQUIRE(out.size() == 6);
        CHECK(out[0] == "GET /get HTTP/1.1 te=- nt=- body=0 sum=0 200");
        CHECK(out[1] ==
              "NOTIFY /event/1 HTTP/1.1 te=chunked nt=upnp:event body=50000 sum=50000 200");
        CHECK(out[2] == "NOTIFY /expect HTTP/1.1 te=- nt=- body=50000 sum=50000 200");
        // curl reuses the first connection for the next two URLs: one connect, then none.
        CHECK(out[3] ==
              "GET /k1 HTTP/1.1 te=- nt=- body=0 sum=0 1\n"
              "GET /k2 HTTP/1.1 te=- nt=- body=0 sum=0 0\n"
              "GET /k3 HTTP/1.1 te=- nt=- body=0 sum=0 0\n");
        CHECK(out[4] == "GET /old HTTP/1.0 te=- nt=- body=0 sum=0 200");
        CHECK(out[5] == "431");
        run(loop, server.stop());
        std::filesystem::remove_all(dir);
    }

    TEST_CASE("http::request fetches from python3's http.server") {
        Children children;
        uvtest::TestLoop loop(std::chrono::seconds(40));
        std::string dir = make_temp_dir();
        std::string content = "<root>" + std::string(20'000, 'd') + "</root>\n";
        std::ofstream(dir + "/description.xml") << content;
        // A free port: bound by us, released, then given to python.
        std::uint16_t port;
        {
            TcpListener probe = TcpListener::bind(loop, SocketAddress::ipv4_loopback(0));
            port = probe.port();
        }
        uv_run(loop, UV_RUN_NOWAIT);
        Child* python = spawn_child(loop, children,
                                    {"/usr/bin/env", "python3", "-m", "http.server", "--bind",
                                     "127.0.0.1", "--directory", dir, std::to_string(port)},
                                    false);
        auto scenario = [](uv_loop_t* l, std::uint16_t p, Child* py,
                           std::string expected) -> Task<std::string> {
            // Wait until it accepts connections (python takes a moment to start).
            for (int attempt = 0;; ++attempt) {
                try {
                    TcpStream probe = co_await connect(l, SocketAddress::ipv4_loopback(p));
                    break;
                } catch (const Error&) {
                    if (attempt > 300 || py->exited) throw;
                }
                co_await sleep_for(l, 30ms);
            }
            std::string base = "http://127.0.0.1:" + std::to_string(p);
            Response file = co_await request(l, "GET", base + "/description.xml");
            Response listing = co_await request(l, "GET", base + "/");
            Response missing = co_await request(l, "GET", base + "/missing.xml");
            Response head = co_await request(l, "HEAD", base + "/description.xml");
            co_return std::to_string(file.status) + (file.body == expected ? " same" : " differs") +
                " " + std::to_string(listing.status) +
                (listing.body.find("description.xml") != std::string::npos ? " listed"
                                                                           : " unlisted") +
                " " + std::to_string(missing.status) + " " + std::to_string(head.status) + " " +
                std::string(head.headers.get("content-length").value_or("?")) + " " +
                std::to_string(head.body.size());
        };
        std::string result;
        try {
            result = run(loop, scenario(loop, port, python, content));
        } catch (const std::exception& e) {
            result = e.what();
        }
        // End python by its PID and wait for it.
        if (!python->exited) uv_process_kill(&python->process, SIGTERM);
        run(loop, wait_for(loop, python));
        CHECK(result == "200 same 200 listed 404 200 " + std::to_string(content.size()) + " 0");
        std::filesystem::remove_all(dir);
    }
}
