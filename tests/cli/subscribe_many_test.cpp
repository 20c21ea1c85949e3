// `uvgena subscribe` with several targets (issue 22): one listener for all, the events of
// every service interleaved as they arrive, each JSON line naming its service, "<location>#*"
// for every evented service, --count over all, one summary line per subscription. Against
// `uvgena serve-demo` over loopback.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "child.hpp"

using clitest::Demo;
using clitest::Run;
using clitest::run_cli;

namespace {

// The events printed, per service (event URL), in order; every line must be one JSON object.
std::map<std::string, std::vector<nlohmann::json>> by_service(const std::vector<std::string>& out) {
    std::map<std::string, std::vector<nlohmann::json>> events;
    for (const std::string& line : out) {
        auto event = nlohmann::json::parse(line);
        events[event["service"].get<std::string>()].push_back(event);
    }
    return events;
}

std::size_t count_lines(const std::string& text, const std::string& start) {
    std::size_t n = 0;
    for (std::size_t at = 0; (at = text.find(start, at)) != std::string::npos; ++at) {
        if (at == 0 || text[at - 1] == '\n') ++n;
    }
    return n;
}

}  // namespace

TEST_SUITE("cli.subscribe_many") {
    TEST_CASE("two services of one device: interleaved, each line naming its service") {
        Demo demo({"--interval", "20"});
        std::string rc =
            demo.description.substr(0, demo.description.rfind('/')) + "/RenderingControl/event";
        std::string avt =
            demo.description.substr(0, demo.description.rfind('/')) + "/AVTransport/event";
        Run run = run_cli({"subscribe", demo.target("RenderingControl"), demo.target("AVTransport"),
                           "--json", "--count", "8", "--listen-port", "0"});
        INFO("stderr: ", run.err);
        CHECK(run.status == 0);
        REQUIRE(run.out.size() == 8);  // --count counts the events of all
        auto events = by_service(run.out);
        REQUIRE(events.size() == 2);
        REQUIRE(events.count(rc) == 1);
        REQUIRE(events.count(avt) == 1);
        for (const auto& entry : events) {
            // (Not a structured binding: clang 14 cannot capture one in INFO's lambda.)
            const std::string& service = entry.first;
            const std::vector<nlohmann::json>& list = entry.second;
            INFO(service);
            // Each subscription's own SEQs, from its initial event, in order.
            for (std::size_t i = 0; i < list.size(); ++i) CHECK(list[i]["seq"] == i);
            for (const auto& event : list) CHECK(event["sid"] == list.front()["sid"]);
        }
        CHECK(events[rc].front()["sid"] != events[avt].front()["sid"]);
        CHECK(events[rc].front()["last_change"]["0"].contains("Volume"));
        CHECK(events[avt].front()["last_change"]["0"].contains("TransportState"));
        // One summary per subscription, naming it.
        CHECK(count_lines(run.err, "uvgena: summary of ") == 2);
        CHECK(run.err.find("uvgena: summary of " + rc + ": received ") != std::string::npos);
        CHECK(run.err.find("uvgena: summary of " + avt + ": received ") != std::string::npos);
    }

    TEST_CASE("<location>#* subscribes to every evented service, once each") {
        Demo demo;
        // #* and one of its services again: two subscriptions, not three.
        Run run = run_cli({"subscribe", demo.target("*"), demo.target("AVTransport"), "--json",
                           "--count", "2", "--listen-port", "0", "-v"});
        INFO("stderr: ", run.err);
        CHECK(run.status == 0);
        REQUIRE(run.out.size() == 2);
        auto events = by_service(run.out);
        CHECK(events.size() == 2);  // the two initial events, one per service
        CHECK(count_lines(run.err, "uvgena: subscribed to ") == 2);
        CHECK(count_lines(run.err, "uvgena: unsubscribed ") == 2);
        for (const auto& entry : events) CHECK(entry.second.front()["seq"] == 0);
    }

    TEST_CASE("a target that fails ends the command and unsubscribes the ones made before it") {
        Demo demo({"--interval", "0", "-v"});
        // Port 9 (discard) on loopback: nobody listens there in the test environment.
        Run run = run_cli({"subscribe", demo.target("RenderingControl"),
                           "http://127.0.0.1:9/AVTransport/event", "--listen-port", "0"});
        CHECK(run.status == 1);
        CHECK(run.out.empty());
        CHECK(run.err.find("127.0.0.1:9") != std::string::npos);
        // The device saw the first subscription go away.
        bool unsubscribed = false;
        for (int i = 0; i < 100 && !unsubscribed; ++i) {
            unsubscribed = demo.child.stderr_text().find("unsubscribed uuid:") != std::string::npos;
            if (!unsubscribed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        INFO("serve-demo's log: ", demo.child.stderr_text());
        CHECK(unsubscribed);

        // An unknown service among good ones: nothing is subscribed (targets are resolved
        // first), exit 1 with the device's services listed.
        Run unknown = run_cli({"subscribe", demo.target("RenderingControl"), demo.target("Nope"),
                               "--listen-port", "0"});
        CHECK(unknown.status == 1);
        CHECK(unknown.err.find("it has RenderingControl, AVTransport") != std::string::npos);
        // A malformed one is a usage error before anything happens.
        Run malformed = run_cli({"subscribe", demo.target("RenderingControl"), "ftp://x/#A"});
        CHECK(malformed.status == 2);
    }
}
