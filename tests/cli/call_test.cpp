// `uvgena call` as a user runs it: the built binary against `uvgena serve-demo` (whose actions
// are the Publisher's handlers, with its SCPDs served), over loopback.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "child.hpp"

using clitest::Child;
using clitest::Demo;
using clitest::Run;
using clitest::run_cli;

TEST_SUITE("cli.call") {
    TEST_CASE("call SetVolume is confirmed by the event a subscriber sees and by GetVolume") {
        Demo demo;
        // A subscriber first: its initial event, then the one our SetVolume causes.
        Child subscriber({"subscribe", demo.target("RenderingControl"), "--json", "--count", "2"});
        auto initial = subscriber.line();
        REQUIRE(initial);
        CHECK(nlohmann::json::parse(*initial)["seq"] == 0);

        Run set = run_cli({"call", demo.target("RenderingControl"), "SetVolume", "InstanceID=0",
                           "Channel=Master", "DesiredVolume=33"});
        INFO("stderr: ", set.err);
        CHECK(set.status == 0);
        CHECK(set.out.empty());  // SetVolume has no out arguments

        auto changed = subscriber.line();
        REQUIRE(changed);
        auto event = nlohmann::json::parse(*changed);
        CHECK(event["seq"] == 1);
        CHECK(event["last_change"]["0"]["Volume"]["Master"] == "33");
        CHECK(subscriber.wait() == 0);

        Run get = run_cli({"call", demo.target("RenderingControl"), "GetVolume", "InstanceID=0",
                           "Channel=Master", "--json"});
        CHECK(get.status == 0);
        REQUIRE(get.out.size() == 1);
        CHECK(nlohmann::json::parse(get.out[0]) == nlohmann::json{{"CurrentVolume", "33"}});

        Run plain = run_cli({"call", demo.target("RenderingControl"), "GetVolume", "InstanceID=0",
                             "Channel=Master"});
        CHECK(plain.status == 0);
        CHECK(plain.out == std::vector<std::string>{"CurrentVolume=33"});

        // Out arguments in the device's order, a value holding '=' and spaces kept whole.
        Run info = run_cli(
            {"call", demo.target("AVTransport"), "GetTransportInfo", "InstanceID=0", "--json"});
        CHECK(info.status == 0);
        REQUIRE(info.out.size() == 1);
        CHECK(info.out[0] == R"({"CurrentTransportState":"STOPPED","CurrentTransportStatus":"OK",)"
                             R"("CurrentSpeed":"1"})");
        Run uri =
            run_cli({"call", demo.target("AVTransport"), "SetAVTransportURI", "InstanceID=0",
                     "CurrentURI=http://127.0.0.1:9/a b.mp3?x=1&y=<2>", "CurrentURIMetaData="});
        INFO("stderr: ", uri.err);
        CHECK(uri.status == 0);
    }

    TEST_CASE("a call its SCPD refuses is a usage error, sent as given it is the device's fault") {
        Demo demo;
        Run wrong_name = run_cli({"call", demo.target("RenderingControl"), "SetVolume",
                                  "InstanceID=0", "Channel=Master", "Volume=20"});
        CHECK(wrong_name.status == 2);
        CHECK(wrong_name.out.empty());
        CHECK(wrong_name.err.find("refused before sending") != std::string::npos);
        CHECK(wrong_name.err.find("Volume") != std::string::npos);

        Run out_of_range = run_cli({"call", demo.target("RenderingControl"), "SetVolume",
                                    "InstanceID=0", "Channel=Master", "DesiredVolume=200"});
        CHECK(out_of_range.status == 2);
        CHECK(out_of_range.err.find("allowedValueRange") != std::string::npos);

        Run unknown_action = run_cli({"call", demo.target("AVTransport"), "Frobnicate"});
        CHECK(unknown_action.status == 2);

        // Sent as given: the device answers a SOAP fault, exit 1 with its code and description.
        Run fault = run_cli({"call", demo.target("RenderingControl"), "SetVolume", "InstanceID=0",
                             "Channel=Master", "DesiredVolume=200", "--no-check", "--json"});
        CHECK(fault.status == 1);
        REQUIRE(fault.out.size() == 1);
        auto error = nlohmann::json::parse(fault.out[0]);
        CHECK(error["error"]["code"] == 601);
        CHECK(error["error"]["description"] == "Argument Value Out of Range");
        CHECK(fault.err == "uvgena: 601 Argument Value Out of Range\n");

        Run not_a_number =
            run_cli({"call", demo.target("RenderingControl"), "SetVolume", "InstanceID=0",
                     "Channel=Master", "DesiredVolume=loud", "--no-check"});
        CHECK(not_a_number.status == 1);
        CHECK(not_a_number.err == "uvgena: 402 Invalid Args\n");

        Run no_action = run_cli({"call", demo.target("AVTransport"), "Frobnicate", "--no-check"});
        CHECK(no_action.status == 1);
        CHECK(no_action.err == "uvgena: 401 Invalid Action\n");

        // The volume is still the demo's start-up one: nothing above changed it.
        Run get = run_cli({"call", demo.target("RenderingControl"), "GetVolume", "InstanceID=0",
                           "Channel=Master"});
        CHECK(get.out == std::vector<std::string>{"CurrentVolume=20"});
    }

    TEST_CASE("call: bad targets and arguments are usage errors, unreachable devices failures") {
        Demo demo;
        Run no_service = run_cli({"call", demo.description, "Play"});
        CHECK(no_service.status == 2);
        Run bad_url = run_cli({"call", "ftp://127.0.0.1/d.xml#AVTransport", "Play"});
        CHECK(bad_url.status == 2);
        Run bad_word = run_cli({"call", demo.target("AVTransport"), "Play", "InstanceID"});
        CHECK(bad_word.status == 2);
        CHECK(bad_word.err.find("'InstanceID' is not an argument Name=Value") != std::string::npos);
        Run empty_name = run_cli({"call", demo.target("AVTransport"), "Play", "=0"});
        CHECK(empty_name.status == 2);

        Run other_service = run_cli({"call", demo.target("ContentDirectory"), "Browse"});
        CHECK(other_service.status == 1);
        CHECK(other_service.err.find("it has RenderingControl, AVTransport") != std::string::npos);

        // Port 9 (discard) on loopback: nobody listens in the test environment.
        Run refused = run_cli(
            {"call", "http://127.0.0.1:9/description.xml#AVTransport", "Play", "--timeout", "2"});
        CHECK(refused.status == 1);
        CHECK_FALSE(refused.err.empty());
    }
}
