// `uvgena subscribe` as a user runs it: the built binary against an in-test device that
// runs on its own loop in a thread of the test.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child.hpp"
#include "support/gena_device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/net/tcp.hpp"

using namespace std::chrono_literals;

namespace {

using clitest::Child;

// A ScriptedDevice on its own loop in a thread. After the first SUBSCRIBE it sends
// `extra_events` events (Volume 11, 12, ...), then serves until stopped.
class DeviceThread {
  public:
    explicit DeviceThread(int extra_events, std::vector<std::uint32_t> seqs = {})
        : extra_(extra_events), seqs_(std::move(seqs)) {
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
    int unsubscribes() const { return unsubscribes_.load(); }
    int subscribes() const { return subscribes_.load(); }

  private:
    static uvgena::Task<void> serve(uv_loop_t* loop, DeviceThread* self) {
        gena_test::ScriptedDevice device(loop);
        uvgena::gena::LastChangeBuilder lc("urn:schemas-upnp-org:metadata-1-0/RCS/");
        lc.instance("0")
            .set("Volume", "10", {{"channel", "Master"}})
            .set("PresetNameList", "FactoryDefaults");
        device.variables = {{"LastChange", lc.document()}};
        self->port_ = device.port();
        bool sent = false;
        while (!self->stop_) {
            if (!sent && !device.subscriptions.empty()) {
                sent = true;
                co_await uvgena::sleep_for(loop, 50ms);
                for (int i = 0; i < self->extra_ && !device.subscriptions.empty(); ++i) {
                    std::vector<std::pair<std::string, std::string>> vars{
                        {"Volume", std::to_string(11 + i)}};
                    co_await device.notify_all(vars);
                }
                // Then events with these SEQs, in this order (reordered, repeated).
                for (std::uint32_t seq : self->seqs_) {
                    if (device.subscriptions.empty()) break;
                    std::vector<std::pair<std::string, std::string>> vars{
                        {"Volume", std::to_string(seq)}};
                    co_await device.notify(device.subscriptions.front(),
                                           gena_test::ScriptedDevice::body_of(vars), seq);
                }
            }
            self->subscribes_ = device.subscribes;
            self->unsubscribes_ = device.unsubscribes;
            co_await uvgena::sleep_for(loop, 5ms);
        }
        co_await device.stop();
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

    int extra_;
    std::vector<std::uint32_t> seqs_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint16_t> port_{0};
    std::atomic<int> subscribes_{0}, unsubscribes_{0};
    std::thread thread_;
};

// A port with nothing listening on it.
std::uint16_t closed_port() {
    uvtest::TestLoop loop;
    auto l = uvgena::TcpListener::bind(loop, uvgena::SocketAddress::ipv4_loopback(0));
    std::uint16_t port = l.port();
    l.close();
    return port;
}

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit = 5s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

}  // namespace

TEST_SUITE("cli.subscribe") {
    TEST_CASE("subscribe --count 3 --json prints three JSON lines and unsubscribes") {
        uvtest::Watchdog watchdog(30s);
        DeviceThread device(2);
        Child cli({"subscribe", device.event_url(), "--count", "3", "--json", "--listen-host",
                   "127.0.0.1", "--listen-port", "0", "--timeout", "300"});
        std::vector<nlohmann::json> events;
        for (int i = 0; i < 3; ++i) {
            auto l = cli.line();
            REQUIRE_MESSAGE(l, "stderr: " << cli.stderr_text());
            events.push_back(nlohmann::json::parse(*l));
        }
        CHECK(cli.wait() == 0);
        CHECK_FALSE(cli.line(100ms));
        // Only the summary line on stderr.
        CHECK(cli.stderr_text() ==
              "uvgena: summary: received 3, delivered 3, late 0, missed 0, duplicates dropped 0, "
              "queue drops 0, parse errors 0\n");
        for (int i = 0; i < 3; ++i) {
            CHECK(events[i]["seq"] == i);
            CHECK(events[i]["seq_status"] == "ok");
            CHECK(events[i]["service"] == device.event_url());
            CHECK(events[i]["sid"].get<std::string>().rfind("uuid:", 0) == 0);
            CHECK(events[i]["variables"].is_object());
        }
        CHECK(events[0]["last_change"]["0"]["Volume"]["Master"] == "10");
        CHECK(events[0]["last_change"]["0"]["PresetNameList"] == "FactoryDefaults");
        CHECK(events[0]["variables"].contains("LastChange"));
        CHECK_FALSE(events[1].contains("last_change"));
        CHECK(events[1]["variables"]["Volume"] == "11");
        CHECK(events[2]["variables"]["Volume"] == "12");
        CHECK(wait_for([&] { return device.unsubscribes() == 1; }));
    }

    TEST_CASE(
        "a late event is printed flagged late, a retransmission is dropped, and the "
        "summary line counts them; -v logs each as it happens") {
        // After the initial event: 1, 2, 3, then 5 (a gap of one), 5 again, and 4 late.
        DeviceThread device(0, {1, 2, 3, 5, 5, 4});
        Child cli({"subscribe", device.event_url(), "--count", "6", "--json", "--reorder-window",
                   "0", "-v", "--listen-host", "127.0.0.1", "--listen-port", "0"});
        std::vector<nlohmann::json> events;
        for (int i = 0; i < 6; ++i) {
            auto l = cli.line(5s);
            REQUIRE_MESSAGE(l, "stderr: " << cli.stderr_text());
            events.push_back(nlohmann::json::parse(*l));
        }
        CHECK(cli.wait() == 0);
        std::vector<std::uint32_t> seqs;
        for (const auto& e : events) {
            seqs.push_back(e["seq"].get<std::uint32_t>());
            CHECK(e.contains("missed"));
        }
        CHECK(seqs == std::vector<std::uint32_t>{0, 1, 2, 3, 5, 4});
        CHECK(events[3]["seq_status"] == "ok");
        CHECK(events[3]["missed"] == 0);
        CHECK(events[4]["seq_status"] == "gap");
        CHECK(events[4]["missed"] == 1);
        CHECK(events[5]["seq_status"] == "late");
        CHECK(events[5]["variables"]["Volume"] == "4");
        std::string err = cli.stderr_text();
        CHECK(err.find("uvgena: summary: received 7, delivered 6, late 1, missed 0, duplicates "
                       "dropped 1, queue drops 0, parse errors 0\n") != std::string::npos);
        // The summary is the last line; -v logged the drop and the late event before it.
        CHECK(err.rfind("uvgena: summary: ") == err.rfind('\n', err.size() - 2) + 1);
        CHECK(err.find("SEQ 5 is a retransmission: dropped") != std::string::npos);
        CHECK(err.find("SEQ 4 arrived late") != std::string::npos);
        CHECK(err.find("1 event(s) missed before SEQ 5") != std::string::npos);
    }

    TEST_CASE("subscribe prints human-readable events and ends after --duration") {
        uvtest::Watchdog watchdog(30s);
        DeviceThread device(0);
        Child cli({"subscribe", device.event_url(), "--duration", "0.5", "--listen-host",
                   "127.0.0.1", "--listen-port", "0"});
        auto l = cli.line();
        REQUIRE(l);
        CHECK(l->find("SEQ 0") != std::string::npos);
        auto volume = cli.line();
        REQUIRE(volume);
        CHECK(volume->find("Volume(Master) = 10") != std::string::npos);
        CHECK(cli.wait() == 0);
        CHECK(wait_for([&] { return device.unsubscribes() == 1; }));
    }

    TEST_CASE("SIGTERM unsubscribes and exits 0") {
        uvtest::Watchdog watchdog(30s);
        DeviceThread device(0);
        Child cli({"subscribe", device.event_url(), "--json", "--listen-host", "127.0.0.1",
                   "--listen-port", "0"});
        REQUIRE(cli.line());
        cli.signal(SIGTERM);
        CHECK(cli.wait() == 0);
        CHECK(wait_for([&] { return device.unsubscribes() == 1; }));
    }

    // stdout is a pipe here, so the lines are written in blocks (StdoutLines): every end of
    // the command must write the lines still pending, none twice, none after the count.
    TEST_CASE("a burst of events: every line printed at --count, at --duration and on SIGINT") {
        uvtest::Watchdog watchdog(60s);
        // Reads stdout to its end, each line parsed as JSON (a partial line would not be).
        auto read_all = [](Child& cli, std::vector<std::uint32_t>& seqs) {
            while (auto l = cli.line(5s)) {
                auto seq = nlohmann::json::parse(*l).at("seq").get<std::uint32_t>();
                seqs.push_back(seq);
            }
        };
        auto in_order = [](const std::vector<std::uint32_t>& seqs) {
            for (std::size_t i = 0; i < seqs.size(); ++i) {
                if (seqs[i] != i) return false;
            }
            return true;
        };
        {
            DeviceThread device(300);
            Child cli({"subscribe", device.event_url(), "--count", "250", "--json", "--listen-host",
                       "127.0.0.1", "--listen-port", "0"});
            std::vector<std::uint32_t> seqs;
            read_all(cli, seqs);
            CHECK(cli.wait() == 0);
            CHECK(seqs.size() == 250);
            CHECK(in_order(seqs));
        }
        {
            DeviceThread device(300);
            Child cli({"subscribe", device.event_url(), "--duration", "1.5", "--json",
                       "--listen-host", "127.0.0.1", "--listen-port", "0"});
            std::vector<std::uint32_t> seqs;
            read_all(cli, seqs);
            CHECK(cli.wait() == 0);
            CHECK(seqs.size() == 301);  // the initial event and 300 more
            CHECK(in_order(seqs));
            CHECK(cli.stderr_text().find("delivered 301,") != std::string::npos);
        }
        {
            DeviceThread device(300);
            Child cli({"subscribe", device.event_url(), "--json", "--listen-host", "127.0.0.1",
                       "--listen-port", "0"});
            auto first = cli.line();
            REQUIRE(first);
            std::vector<std::uint32_t> seqs{
                nlohmann::json::parse(*first).at("seq").get<std::uint32_t>()};
            std::this_thread::sleep_for(200ms);  // the burst is on its way
            cli.signal(SIGINT);
            read_all(cli, seqs);
            CHECK(cli.wait() == 0);
            CHECK(in_order(seqs));
            // Whole lines only (each parsed above), in SEQ order, none twice; the summary
            // is still the last line on stderr.
            std::string err = cli.stderr_text();
            CHECK(err.rfind("uvgena: summary: ") == err.rfind('\n', err.size() - 2) + 1);
        }
    }

    TEST_CASE("a bad URL is a usage error (exit 2)") {
        uvtest::Watchdog watchdog(30s);
        Child bad({"subscribe", "not a url"});
        CHECK(bad.wait() == 2);
        CHECK(bad.stderr_text().find("bad event URL") != std::string::npos);
        Child missing({"subscribe"});
        CHECK(missing.wait() == 2);
        Child unknown({"subscribe", "http://127.0.0.1:1/x", "--count", "x"});
        CHECK(unknown.wait() == 2);
    }

    TEST_CASE("a refused subscription prints one line on stderr and exits 1") {
        uvtest::Watchdog watchdog(30s);
        std::string url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/event";
        Child cli({"subscribe", url, "--listen-host", "127.0.0.1", "--listen-port", "0"});
        CHECK(cli.wait() == 1);
        std::string err = cli.stderr_text();
        CHECK(err.rfind("uvgena: subscribe to " + url + ": ", 0) == 0);
        CHECK(err.find("connection refused") != std::string::npos);
        CHECK(std::count(err.begin(), err.end(), '\n') == 1);
        CHECK_FALSE(cli.line(100ms));
    }

    TEST_CASE("help works for the subcommand") {
        uvtest::Watchdog watchdog(30s);
        Child cli({"subscribe", "--help"});
        auto first = cli.line();
        REQUIRE(first);
        CHECK(cli.wait() == 0);
    }
}
