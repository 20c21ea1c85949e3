// `uvgena serve-demo` as a user runs it: the built binary, subscribed to by the test over
// loopback, ended by SIGTERM or --duration.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "../gena/publisher_support.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/ssdp/description.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

std::string cli_path() {
    const char* root = std::getenv("UVGENA_BUILD_ROOT");
    REQUIRE_MESSAGE(root != nullptr, "UVGENA_BUILD_ROOT is not set (run under meson test)");
    return std::string(root) + "/src/cli/uvgena";
}

// The CLI in a child process, its stdout read through a pipe (stderr inherited).
class Child {
public:
    explicit Child(std::vector<std::string> args) {
        args.insert(args.begin(), cli_path());
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        pid_ = fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            dup2(fds[1], 1);
            close(fds[0]);
            close(fds[1]);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(argv[0], argv.data());
            _exit(127);
        }
        close(fds[1]);
        out_ = fds[0];
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        if (!reaped_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        close(out_);
    }

    /// The next line of stdout, or nullopt at EOF or after `limit`.
    std::optional<std::string> line(std::chrono::milliseconds limit = 10s) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
                std::string l = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                return l;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
            char buf[4096];
            ssize_t n = read(out_, buf, sizeof buf);
            if (n <= 0) return std::nullopt;
            buffer_.append(buf, static_cast<std::size_t>(n));
        }
    }

    /// Sends a signal.
    void signal(int sig) { kill(pid_, sig); }

    /// Waits for the exit; the exit code, or 128 + signal.
    int wait() {
        int status = 0;
        waitpid(pid_, &status, 0);
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    bool reaped_ = false;
    std::string buffer_;
};

// The URL after the label of a start line ("description:      http://...").
std::string url_in(const std::optional<std::string>& line) {
    REQUIRE(line);
    auto at = line->find("http://");
    REQUIRE(at != std::string::npos);
    return line->substr(at);
}

}  // namespace

TEST_SUITE("cli.serve_demo") {
    TEST_CASE("serve-demo prints its URLs, sends events to a subscriber and exits on SIGTERM") {
        Child child({"serve-demo", "--interval", "20"});
        REQUIRE(child.line());  // the device's UDN
        std::string description = url_in(child.line());
        std::string rendering = url_in(child.line());
        std::string transport = url_in(child.line());
        {
            uvtest::TestLoop loop;
            pubtest::Receiver receiver(loop);
            auto test = [&]() -> Task<void> {
                http::Response d = co_await http::request(loop, "GET", description);
                CHECK(d.status == 200);
                auto parsed = ssdp::parse_description(d.body, description);
                REQUIRE(parsed.ok());
                REQUIRE(parsed->service("RenderingControl") != nullptr);
                CHECK(parsed->service("RenderingControl")->event_sub_url == rendering);
                CHECK(parsed->service("AVTransport")->event_sub_url == transport);
                // A named vector: GCC 12 miscompiles braced lists in co_await arguments.
                std::vector<std::string> callbacks{receiver.url()};
                http::Response r =
                    co_await pubtest::subscribe(loop, http::Url::parse(rendering), callbacks);
                CHECK(r.status == 200);
                pubtest::Notify initial = co_await receiver.next();
                CHECK(initial.seq == 0);
                CHECK(initial.properties.state("Volume").has_value());
                pubtest::Notify next = co_await receiver.next();
                CHECK(next.seq == 1);
                co_await receiver.server().stop();
            };
            run(loop, test());
        }
        child.signal(SIGTERM);
        auto summary = child.line();
        REQUIRE(summary);
        CHECK(summary->find("served") == 0);
        CHECK(child.wait() == 0);
    }

    TEST_CASE("serve-demo ends by itself after --duration") {
        Child child({"serve-demo", "--duration", "0.2", "--interval", "0"});
        for (int i = 0; i < 4; ++i) REQUIRE(child.line());
        auto summary = child.line();
        REQUIRE(summary);
        CHECK(summary->find("served 0 ticks") == 0);
        CHECK(child.wait() == 0);
    }

    TEST_CASE("a bad --host is a usage error and --help works") {
        Child bad({"serve-demo", "--host", "not-an-ip"});
        CHECK(bad.wait() == 2);
        Child help({"serve-demo", "--help"});
        auto first = help.line();
        REQUIRE(first);
        CHECK(first->find("simulated UPnP renderer") != std::string::npos);
        CHECK(help.wait() == 0);
    }
}
