// `uvgena subscribe` across device restarts and on exit (issue 19): the built binary against
// an in-test device on its own loop in a thread of the test, which the test restarts (forgets
// every SID), stops and starts again on the same port, or replaces by a socket that accepts
// connections and never answers. Grants are 2 s so that renewals come within seconds.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "child.hpp"
#include "support/gena_device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/timer.hpp"

using namespace std::chrono_literals;

namespace {

using clitest::Child;

// A ScriptedDevice on its own loop in a thread, driven by commands from the test's thread:
// "forget" (a reboot: every SID forgotten), "down" (nothing listens on the port), "up"
// (listening again on the same port), "set <volume>" (an event to every subscription).
class DeviceThread {
  public:
    explicit DeviceThread(bool initial_event = true) : initial_event_(initial_event) {
        thread_ = std::thread([this] { run_loop(); });
        while (port_.load() == 0) std::this_thread::sleep_for(1ms);
    }
    ~DeviceThread() {
        stop_ = true;
        thread_.join();
    }
    std::string event_url() const {
        return "http://127.0.0.1:" + std::to_string(port_.load()) + "/event";
    }
    std::uint16_t port() const { return port_.load(); }
    void command(std::string c) {
        std::lock_guard lock(mutex_);
        commands_.push_back(std::move(c));
    }
    int subscribes() const { return subscribes_.load(); }
    int subscriptions() const { return subscriptions_.load(); }
    int unsubscribes() const { return unsubscribes_.load(); }
    std::vector<std::string> callbacks() const {
        std::lock_guard lock(mutex_);
        return callbacks_;
    }

  private:
    std::unique_ptr<gena_test::ScriptedDevice> make(uv_loop_t* loop, std::uint16_t port) {
        auto device = std::make_unique<gena_test::ScriptedDevice>(loop, port);
        device->initial_event = initial_event_;
        return device;
    }

    static uvgena::Task<void> serve(uv_loop_t* loop, DeviceThread* self) {
        auto device = self->make(loop, 0);
        std::uint16_t port = device->port();
        self->port_ = port;
        // Counts carried over the device objects of earlier "up"s.
        int subscribes = 0, unsubscribes = 0;
        while (!self->stop_) {
            std::deque<std::string> commands;
            {
                std::lock_guard lock(self->mutex_);
                commands.swap(self->commands_);
            }
            for (const std::string& c : commands) {
                if (c == "forget" && device) {
                    device->forget_all();
                } else if (c == "down" && device) {
                    subscribes += device->subscribes;
                    unsubscribes += device->unsubscribes;
                    co_await device->stop();
                    device.reset();
                } else if (c == "up" && !device) {
                    device = self->make(loop, port);
                } else if (c.rfind("set ", 0) == 0 && device) {
                    std::vector<std::pair<std::string, std::string>> vars{{"Volume", c.substr(4)}};
                    co_await device->notify_all(std::move(vars));
                }
            }
            if (device) {
                self->subscribes_ = subscribes + device->subscribes;
                self->unsubscribes_ = unsubscribes + device->unsubscribes;
                self->subscriptions_ = static_cast<int>(device->subscriptions.size());
                std::lock_guard lock(self->mutex_);
                self->callbacks_ = device->callbacks_seen;
            } else {
                self->subscriptions_ = 0;
            }
            co_await uvgena::sleep_for(loop, 5ms);
        }
        if (device) co_await device->stop();
    }

    void run_loop() {
        uv_loop_t loop;
        uv_loop_init(&loop);
        try {
            uvgena::run(&loop, serve(&loop, this));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "device thread: %s\n", e.what());
            port_ = 1;
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }

    bool initial_event_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint16_t> port_{0};
    std::atomic<int> subscribes_{0}, unsubscribes_{0}, subscriptions_{0};
    mutable std::mutex mutex_;
    std::deque<std::string> commands_;
    std::vector<std::string> callbacks_;
    std::thread thread_;
};

// A TCP socket listening on 127.0.0.1:`port` (0: any) that never accepts: the kernel
// completes connections, nobody answers (a hung device).
class Hung {
  public:
    explicit Hung(std::uint16_t port = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd_, 16) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
    }
    Hung(const Hung&) = delete;
    Hung& operator=(const Hung&) = delete;
    ~Hung() { ::close(fd_); }
    std::uint16_t port() const { return port_; }

  private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit = 5s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// Reads JSON lines until one has Volume == `volume`; the events read, in order.
std::vector<nlohmann::json> read_until(Child& cli, const std::string& volume,
                                       std::chrono::milliseconds limit) {
    std::vector<nlohmann::json> events;
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        auto l = cli.line(std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now()));
        if (!l) break;
        events.push_back(nlohmann::json::parse(*l));
        if (events.back()["variables"].value("Volume", "") == volume) break;
    }
    return events;
}

std::vector<std::string> base_args(const DeviceThread& device) {
    return {"subscribe", device.event_url(), "--json", "--listen-host",
            "127.0.0.1", "--listen-port",    "0",      "--timeout",
            "2"};
}

}  // namespace

TEST_SUITE("cli.recovery") {
    TEST_CASE(
        "a device restart (renewal answered 412) under 5 subscribers: each resubscribes, says "
        "so once, prints the change made after the restart, and runs to --duration") {
        uvtest::Watchdog watchdog(40s);
        DeviceThread device;
        constexpr int n = 5;
        std::vector<std::unique_ptr<Child>> clis;
        for (int i = 0; i < n; ++i) {
            std::vector<std::string> args = base_args(device);
            for (const char* a : {"--auto-renew", "--duration", "5", "-v"}) args.push_back(a);
            clis.push_back(std::make_unique<Child>(args));
        }
        for (auto& cli : clis) {
            auto first = cli->line(5s);
            REQUIRE_MESSAGE(first, "stderr: " << cli->stderr_text());
            CHECK_FALSE(nlohmann::json::parse(*first).contains("resubscribed"));
        }
        REQUIRE(wait_for([&] { return device.subscriptions() == n; }));
        device.command("forget");  // the reboot
        // Renewals at 75-85% of 2 s get 412; each CLI subscribes again.
        REQUIRE(wait_for([&] { return device.subscribes() == 2 * n; }, 5s));
        device.command("set 42");
        for (auto& cli : clis) {
            std::vector<nlohmann::json> events = read_until(*cli, "42", 5s);
            REQUIRE_MESSAGE(events.size() == 2, "stderr: " << cli->stderr_text());
            // The new SID's initial event, flagged, then the change.
            CHECK(events[0]["seq"] == 0);
            CHECK(events[0]["resubscribed"] == true);
            CHECK(events[1]["seq"] == 1);
            CHECK_FALSE(events[1].contains("resubscribed"));
            CHECK(events[1]["sid"] == events[0]["sid"]);
        }
        for (auto& cli : clis) {
            CHECK(cli->wait(10s) == 0);
            std::string err = cli->stderr_text();
            // One line for the loss and one for the recovery; -v: the subscription, the
            // unsubscribe.
            CHECK(count_of(err, "uvgena: subscription lost: ") == 1);
            CHECK(err.find("412") != std::string::npos);
            CHECK(count_of(err, "uvgena: resubscribed: SID ") == 1);
            CHECK(count_of(err, "uvgena: subscribed to " + device.event_url() + ": SID uuid:") ==
                  1);
            CHECK(err.find(", granted 2 s, callback http://127.0.0.1:") != std::string::npos);
            CHECK(err.find("uvgena: unsubscribed uuid:") != std::string::npos);
        }
        CHECK(wait_for([&] { return device.subscriptions() == 0; }));
    }

    TEST_CASE(
        "a device down across the expiry and back on the same port: the subscription is "
        "recovered and -v logs the renewals and the resubscription") {
        uvtest::Watchdog watchdog(40s);
        DeviceThread device;
        std::vector<std::string> args = base_args(device);
        for (const char* a : {"--auto-renew", "--duration", "6", "-v"}) args.push_back(a);
        Child cli(args);
        REQUIRE_MESSAGE(cli.line(5s), "stderr: " << cli.stderr_text());
        // One successful renewal (at 1.5-1.7 s), then down for longer than the grant.
        REQUIRE(wait_for([&] { return cli.stderr_text().find("renewed") != std::string::npos; }));
        device.command("down");
        std::this_thread::sleep_for(2500ms);
        device.command("up");
        REQUIRE(wait_for([&] { return device.subscriptions() == 1; }, 5s));
        device.command("set 7");
        std::vector<nlohmann::json> events = read_until(cli, "7", 5s);
        REQUIRE_MESSAGE(events.size() == 2, "stderr: " << cli.stderr_text());
        CHECK(events[0]["resubscribed"] == true);
        CHECK(events[1]["variables"]["Volume"] == "7");
        CHECK(cli.wait(10s) == 0);
        std::string err = cli.stderr_text();
        CHECK(err.find("uvgena: renewed uuid:") != std::string::npos);
        CHECK(err.find(", granted 2 s") != std::string::npos);
        CHECK(count_of(err, "uvgena: subscription lost: ") == 1);
        CHECK(err.find("expired") != std::string::npos);
        CHECK(count_of(err, "uvgena: resubscribed: SID ") == 1);
    }

    TEST_CASE("a subscriber paused (SIGSTOP) past its grant recovers on resume") {
        uvtest::Watchdog watchdog(40s);
        DeviceThread device;
        std::vector<std::string> args = base_args(device);
        for (const char* a : {"--auto-renew", "--duration", "6", "-v"}) args.push_back(a);
        Child cli(args);
        REQUIRE_MESSAGE(cli.line(5s), "stderr: " << cli.stderr_text());
        cli.signal(SIGSTOP);
        std::this_thread::sleep_for(2500ms);  // past the 2 s grant: its renewal never went out
        device.command("forget");             // and the device let it expire meanwhile
        REQUIRE(wait_for([&] { return device.subscriptions() == 0; }));
        cli.signal(SIGCONT);
        REQUIRE(wait_for([&] { return device.subscriptions() == 1; }, 5s));
        device.command("set 5");
        std::vector<nlohmann::json> events = read_until(cli, "5", 5s);
        REQUIRE_MESSAGE(!events.empty(), "stderr: " << cli.stderr_text());
        CHECK(events.back()["variables"]["Volume"] == "5");
        CHECK(events.front()["resubscribed"] == true);
        CHECK(cli.wait(10s) == 0);
        CHECK_MESSAGE(count_of(cli.stderr_text(), "uvgena: resubscribed: SID ") == 1,
                      cli.stderr_text());
    }

    TEST_CASE("--no-resubscribe keeps the old exit on loss (exit 1)") {
        uvtest::Watchdog watchdog(30s);
        DeviceThread device;
        std::vector<std::string> args = base_args(device);
        for (const char* a : {"--auto-renew", "--no-resubscribe"}) args.push_back(a);
        Child cli(args);
        REQUIRE_MESSAGE(cli.line(5s), "stderr: " << cli.stderr_text());
        REQUIRE(wait_for([&] { return device.subscriptions() == 1; }));
        device.command("forget");
        CHECK(cli.wait(10s) == 1);
        std::string err = cli.stderr_text();
        CHECK(err.find("412") != std::string::npos);
        CHECK(err.find("resubscribed") == std::string::npos);
        CHECK(device.subscribes() == 1);
    }

    TEST_CASE("a device that never sends the initial event produces a warning line") {
        uvtest::Watchdog watchdog(30s);
        DeviceThread device(false);
        std::vector<std::string> args = base_args(device);
        for (const char* a : {"--initial-event-timeout", "0.5", "--duration", "1.5"}) {
            args.push_back(a);
        }
        Child cli(args);
        CHECK(cli.wait(10s) == 0);
        std::string err = cli.stderr_text();
        CHECK(count_of(err, "uvgena: warning: no initial event within 0.5") == 1);
        CHECK(err.find("callback URL http://127.0.0.1:") != std::string::npos);
        CHECK_FALSE(cli.line(100ms));
    }

    TEST_CASE("--silence warns when the events stop") {
        uvtest::Watchdog watchdog(30s);
        DeviceThread device;
        std::vector<std::string> args = base_args(device);
        for (const char* a : {"--silence", "0.5", "--duration", "1.5"}) args.push_back(a);
        Child cli(args);
        REQUIRE(cli.line(5s));  // the initial event, then nothing
        CHECK(cli.wait(10s) == 0);
        CHECK(count_of(cli.stderr_text(), "uvgena: warning: no event for ") >= 1);
    }

    TEST_CASE("an explicit --listen-port that is taken is an error, unless a range is given") {
        uvtest::Watchdog watchdog(30s);
        DeviceThread device;
        Hung taken;
        std::string port = std::to_string(taken.port());
        Child strict({"subscribe", device.event_url(), "--listen-host", "127.0.0.1",
                      "--listen-port", port, "--count", "1"});
        CHECK(strict.wait() == 1);
        CHECK(strict.stderr_text().find("address already in use") != std::string::npos);
        CHECK_FALSE(strict.line(100ms));
        CHECK(device.subscribes() == 0);
        // With a range, the next free port; --advertise-port goes into the CALLBACK URL.
        Child ranged({"subscribe", device.event_url(), "--listen-host", "127.0.0.1",
                      "--listen-port", port, "--listen-port-range", "10", "--duration", "0.3",
                      "--advertise-port", "5555", "--initial-event-timeout", "0"});
        CHECK(ranged.wait() == 0);
        std::vector<std::string> callbacks = device.callbacks();
        REQUIRE(callbacks.size() == 1);
        CHECK(callbacks[0].find("<http://127.0.0.1:5555/") == 0);
    }

    TEST_CASE("Ctrl-C before the subscription is established exits 130 and says so") {
        uvtest::Watchdog watchdog(30s);
        Hung hung;
        Child cli({"subscribe", "http://127.0.0.1:" + std::to_string(hung.port()) + "/event",
                   "--listen-host", "127.0.0.1", "--listen-port", "0"});
        std::this_thread::sleep_for(500ms);
        cli.signal(SIGINT);
        CHECK(cli.wait(5s) == 130);
        CHECK(cli.stderr_text().find("interrupted before the subscription was established") !=
              std::string::npos);
    }

    TEST_CASE(
        "Ctrl-C while the UNSUBSCRIBE hangs: bounded to 2 s with a line saying so; a second "
        "Ctrl-C exits at once") {
        uvtest::Watchdog watchdog(40s);
        for (bool twice : {false, true}) {
            CAPTURE(twice);
            DeviceThread device;
            std::vector<std::string> args = base_args(device);
            args.back() = "300";  // --timeout: no expiry during the test
            Child cli(args);
            REQUIRE_MESSAGE(cli.line(5s), "stderr: " << cli.stderr_text());
            // The device hangs: its port accepts connections and never answers.
            device.command("down");
            REQUIRE(wait_for([&] { return device.subscriptions() == 0; }));
            std::this_thread::sleep_for(100ms);
            Hung hung(device.port());
            auto start = std::chrono::steady_clock::now();
            cli.signal(SIGINT);
            REQUIRE(wait_for([&] {
                return cli.stderr_text().find("unsubscribing uuid:") != std::string::npos;
            }));
            if (twice) cli.signal(SIGINT);
            int code = cli.wait(10s);
            auto took = std::chrono::steady_clock::now() - start;
            std::string err = cli.stderr_text();
            CHECK(err.find("(waiting up to 2 s for the device; Ctrl-C again to exit now)") !=
                  std::string::npos);
            if (twice) {
                CHECK(code == 130);
                CHECK(took < 1500ms);
                CHECK(err.find("interrupted again: exiting now") != std::string::npos);
            } else {
                CHECK(code == 0);
                CHECK(took >= 1900ms);
                CHECK(took < 4s);
                CHECK(err.find("no answer to UNSUBSCRIBE within 2 s") != std::string::npos);
            }
        }
    }
}
