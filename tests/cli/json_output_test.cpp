// The JSON line `uvgena subscribe --json` prints for an event, pinned byte for byte: every
// captured device body ($UVGENA_FIXTURES, the project's own tests/data/*/notify-*.http) and
// hand-made edge cases (escapes, control characters, invalid UTF-8, duplicate names, channels,
// broken documents) against tests/data/cli/event-json.expected, which was written by the CLI's
// code before its JSON path was rewritten (issue 23). Regenerate only on purpose:
//   UVGENA_WRITE_EXPECTED=tests/data/cli/event-json.expected build/tests/cli/test_cli_json_output
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../../src/cli/common.hpp"
#include "support/test_loop.hpp"
#include "uvgena/gena/event.hpp"

namespace {

using uvgena::gena::Event;
using uvgena::gena::PropertySet;
using uvgena::gena::SeqStatus;

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// An event as the listener makes it: the body parsed, or parse_error when it does not parse.
Event make_event(std::string_view body, std::uint32_t seq = 0, SeqStatus status = SeqStatus::ok,
                 std::uint32_t missed = 0, bool resubscribed = false,
                 std::string sid = "uuid:RINCON_000E58C0FFEE01400_sub0000000042") {
    Event e;
    e.sid = std::move(sid);
    e.seq = seq;
    // 2026-12-05T21:20:33.457Z: fixed, so that the line is too.
    e.timestamp = std::chrono::system_clock::time_point(std::chrono::milliseconds(1796505633457));
    e.service = "http://192.168.1.20:1400/MediaRenderer/AVTransport/Event";
    e.seq_status = status;
    e.missed = missed;
    e.resubscribed = resubscribed;
    auto parsed = PropertySet::parse(body);
    if (parsed) {
        e.properties = std::move(*parsed);
    } else {
        e.parse_error = parsed.error();
    }
    return e;
}

// The body of a captured NOTIFY request (after the blank line).
std::string http_body(const std::string& request) {
    auto at = request.find("\r\n\r\n");
    return at == std::string::npos ? std::string() : request.substr(at + 4);
}

std::string property_set(const std::vector<std::pair<std::string, std::string>>& vars) {
    std::string body =
        R"(<?xml version="1.0"?><e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">)";
    for (const auto& [name, value] : vars) {
        body += "<e:property><" + name + ">" + value + "</" + name + "></e:property>";
    }
    return body + "</e:propertyset>";
}

std::string xml_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '&':
                out += "&amp;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

// The line the CLI prints for `event`.
std::string json_line(const Event& event) {
    return uvgena::cli::event_json(event).dump(-1, ' ', false,
                                               nlohmann::json::error_handler_t::replace);
}

// Every pinned case: name -> event.
std::vector<std::pair<std::string, Event>> pinned_cases() {
    std::vector<std::pair<std::string, Event>> cases;
    std::vector<std::pair<std::string, std::string>> bodies;  // name, body
    std::string fixtures = uvtest::env_dir("UVGENA_FIXTURES");
    std::string data = uvtest::env_dir("UVGENA_TEST_DATA");
    for (const auto& entry : std::filesystem::recursive_directory_iterator(fixtures)) {
        if (entry.path().extension() != ".xml") continue;
        bodies.emplace_back(
            "fixtures/" + std::filesystem::relative(entry.path(), fixtures).generic_string(),
            read_file(entry.path()));
    }
    for (const auto& entry : std::filesystem::recursive_directory_iterator(data)) {
        std::string name = entry.path().filename().string();
        if (name.rfind("notify-", 0) != 0 || entry.path().extension() != ".http") continue;
        bodies.emplace_back(
            "data/" + std::filesystem::relative(entry.path(), data).generic_string(),
            http_body(read_file(entry.path())));
    }
    std::sort(bodies.begin(), bodies.end());
    REQUIRE(bodies.size() >= 14);

    // Hand-made edge cases: what the escaping and the object building must keep.
    auto lc = [](std::string_view inner) {
        return std::string(R"(<Event xmlns="urn:schemas-upnp-org:metadata-1-0/AVT/">)") +
               std::string(inner) + "</Event>";
    };
    std::vector<std::pair<std::string, std::string>> edge{
        {"escapes",
         property_set({{"Quote", "say &quot;hi&quot; \\ back\\slash /slash"},
                       {"Controls", "a&#1;b&#8;c&#9;d&#10;e&#12;f&#13;g&#27;h&#31;i&#127;j"},
                       {"Unicode", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\xB5 &#xFFFD;&#x10FFFF;"},
                       {"Empty", ""},
                       {"Spaces", "  lead and trail  "}})},
        {"invalid-utf8", property_set({{"Lone", "a\x80z"},
                                       {"Bad2", "a\xC3\x28z"},
                                       {"Overlong", "a\xC0\xAFz\xC1\xBF"},
                                       {"Surrogate", "a\xED\xA0\x80z"},
                                       {"TooHigh", "a\xF4\x90\x80\x80z\xF5\x80"},
                                       {"Truncated3", "a\xE2\x82z"},
                                       {"Truncated4", "a\xF0\x9F\x8Ez"},
                                       {"FF", "\xFF\xFE"},
                                       {"AtEnd", "end\xE2\x82"},
                                       {"AtEnd4", "end\xF0\x9F\x8E"},
                                       {"Mixed", "\xE2\x82\xAC\x80\xE2\x82\xAC\xC3"}})},
        {"duplicate-names",
         property_set(
             {{"Volume", "1"}, {"Mute", "0"}, {"Volume", "2"}, {"A", "first"}, {"Volume", "3"}})},
        {"lastchange-channels",
         property_set(
             {{"LastChange",
               xml_escape(lc(
                   R"(<InstanceID val="0"><Volume channel="Master" val="10"/><Volume channel="LF" val="11"/>)"
                   R"(<Mute val="0"/><Mute channel="Master" val="1"/><Loudness channel="Master" val="1"/>)"
                   R"(<Loudness val="0"/><Volume channel="Master" val="12"/><Bass val="1"/><Bass val="2"/>)"
                   R"(<Treble>text &amp; "quoted"</Treble></InstanceID>)"
                   R"(<InstanceID val="1"><Volume val="5"/></InstanceID>)"
                   R"(<InstanceID val="10"><A val="\"/></InstanceID>)"))}})},
        {"lastchange-duplicate-instance",
         property_set(
             {{"LastChange",
               xml_escape(lc(
                   R"(<InstanceID val="0"><Volume val="1"/></InstanceID><InstanceID val="1"><Mute val="0"/></InstanceID>)"
                   R"(<InstanceID val="0"><Late val="x"/></InstanceID>)"))}})},
        {"lastchange-broken",
         property_set(
             {{"LastChange", xml_escape("<Event><InstanceID val=\"0\"><Volume val=\"1\">")},
              {"Other", "kept"}})},
        {"lastchange-and-variables",
         property_set(
             {{"Zeta", "z"},
              {"LastChange",
               xml_escape(
                   lc(R"(<InstanceID val="0"><TransportState val="PLAYING"/></InstanceID>)"))},
              {"Alpha", "a"}})},
        {"not-xml", "this is not a property set"},
        {"wrong-root", "<root><Volume>1</Volume></root>"},
        {"empty-body", ""},
    };
    for (auto& [name, body] : edge) bodies.emplace_back("edge/" + name, std::move(body));

    for (const auto& [name, body] : bodies) {
        cases.emplace_back(name, make_event(body, 7));
    }
    // The header fields in every state, once each.
    const std::string& some = bodies.front().second;
    cases.emplace_back("state/gap", make_event(some, 12, SeqStatus::gap, 4));
    cases.emplace_back("state/late", make_event(some, 9, SeqStatus::late));
    cases.emplace_back("state/duplicate", make_event(some, 9, SeqStatus::duplicate));
    cases.emplace_back("state/reset", make_event(some, 0, SeqStatus::reset));
    cases.emplace_back("state/outlier", make_event(some, 4294967295u, SeqStatus::outlier));
    cases.emplace_back("state/resubscribed", make_event(some, 0, SeqStatus::ok, 0, true));
    cases.emplace_back("state/odd-sid", make_event(some, 1, SeqStatus::ok, 0, false,
                                                   "uuid:\"q\"\\\x01\xC3\x28\xE2\x82\xAC"));
    return cases;
}

}  // namespace

TEST_CASE("the JSON line of every pinned event is byte-identical to the recorded one") {
    auto cases = pinned_cases();
    std::string rendered;
    for (const auto& [name, event] : cases) {
        rendered += name;
        rendered += '\t';
        rendered += json_line(event);
        rendered += '\n';
    }
    if (const char* out = std::getenv("UVGENA_WRITE_EXPECTED")) {
        std::ofstream(out, std::ios::binary) << rendered;
        MESSAGE("wrote " << std::string(out));
        return;
    }
    std::string expected = read_file(std::filesystem::path(uvtest::env_dir("UVGENA_TEST_DATA")) /
                                     "cli" / "event-json.expected");
    REQUIRE_FALSE(expected.empty());
    // Line by line, so that a difference names its case.
    std::map<std::string, std::string> want;
    std::istringstream in(expected);
    for (std::string line; std::getline(in, line);) {
        auto tab = line.find('\t');
        REQUIRE(tab != std::string::npos);
        want[line.substr(0, tab)] = line.substr(tab + 1);
    }
    CHECK(want.size() == cases.size());
    for (const auto& [name, event] : cases) {
        CAPTURE(name);
        REQUIRE(want.count(name) == 1);
        CHECK(json_line(event) == want[name]);
    }
    CHECK(rendered == expected);
}
