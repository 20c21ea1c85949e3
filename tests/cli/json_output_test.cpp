// The JSON line `uvgena subscribe --json` prints for an event, pinned byte for byte: every
// captured device body ($UVGENA_FIXTURES, the project's own tests/data/*/notify-*.http) and
// hand-made edge cases (escapes, control characters, invalid UTF-8, duplicate names, channels,
// broken documents) against tests/data/cli/event-json.expected, which was written by the CLI's
// code before its JSON path was rewritten (issue 23). Regenerate only on purpose:
//   UVGENA_WRITE_EXPECTED=tests/data/cli/event-json.expected build/tests/cli/test_cli_json_output
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../src/cli/event_json.hpp"
#include "support/test_loop.hpp"
#include "uvgena/gena/event.hpp"
#include "uvgena/gena/event_body.hpp"

namespace {

using uvgena::gena::escape_xml;
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

// The CLI's JSON line before issue 23, as it was built: an nlohmann::json object dumped with
// the replace handler. The oracle of the randomized comparison below.
nlohmann::json reference_object(const Event& event) {
    auto iso_time = [](std::chrono::system_clock::time_point t) {
        using namespace std::chrono;
        auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count() % 1000;
        std::time_t secs = system_clock::to_time_t(t);
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char buf[80];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      static_cast<int>(ms));
        return std::string(buf);
    };
    nlohmann::json j;
    j["sid"] = event.sid;
    j["seq"] = event.seq;
    j["service"] = event.service;
    j["timestamp"] = iso_time(event.timestamp);
    j["seq_status"] = std::string(uvgena::gena::to_string(event.seq_status));
    j["missed"] = event.missed;
    if (event.resubscribed) j["resubscribed"] = true;
    nlohmann::json vars = nlohmann::json::object();
    for (const uvgena::gena::Variable& v : event.variables()) vars[v.name] = v.value;
    j["variables"] = std::move(vars);
    if (event.has_last_change()) {
        const auto& lc = event.last_change();
        if (lc) {
            nlohmann::json instances = nlohmann::json::object();
            for (const auto& instance : lc->instances) {
                nlohmann::json values = nlohmann::json::object();
                for (const auto& v : instance.values) {
                    std::string_view channel = v.channel();
                    if (channel.empty()) {
                        values[v.name] = v.value;
                    } else {
                        nlohmann::json& slot = values[v.name];
                        if (!slot.is_object()) slot = nlohmann::json::object();
                        slot[std::string(channel)] = v.value;
                    }
                }
                instances[instance.id] = std::move(values);
            }
            j["last_change"] = std::move(instances);
        } else {
            j["last_change_error"] = lc.error().message();
        }
    }
    if (event.parse_error) j["parse_error"] = event.parse_error.message();
    return j;
}

std::string reference_line(const Event& event) {
    return reference_object(event).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The line the CLI prints for `event`.
std::string json_line(const Event& event) {
    static uvgena::cli::EventJsonWriter writer;  // reused, as the CLI reuses it
    std::string line;
    writer.append(line, event);
    return line;
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
               escape_xml(lc(
                   R"(<InstanceID val="0"><Volume channel="Master" val="10"/><Volume channel="LF" val="11"/>)"
                   R"(<Mute val="0"/><Mute channel="Master" val="1"/><Loudness channel="Master" val="1"/>)"
                   R"(<Loudness val="0"/><Volume channel="Master" val="12"/><Bass val="1"/><Bass val="2"/>)"
                   R"(<Treble>text &amp; "quoted"</Treble></InstanceID>)"
                   R"(<InstanceID val="1"><Volume val="5"/></InstanceID>)"
                   R"(<InstanceID val="10"><A val="\"/></InstanceID>)"))}})},
        {"lastchange-duplicate-instance",
         property_set(
             {{"LastChange",
               escape_xml(lc(
                   R"(<InstanceID val="0"><Volume val="1"/></InstanceID><InstanceID val="1"><Mute val="0"/></InstanceID>)"
                   R"(<InstanceID val="0"><Late val="x"/></InstanceID>)"))}})},
        {"lastchange-broken",
         property_set(
             {{"LastChange", escape_xml("<Event><InstanceID val=\"0\"><Volume val=\"1\">")},
              {"Other", "kept"}})},
        {"lastchange-and-variables",
         property_set(
             {{"Zeta", "z"},
              {"LastChange",
               escape_xml(
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
    for (const auto& pinned : cases) {
        const std::string& name = pinned.first;
        const Event& event = pinned.second;
        CAPTURE(name);
        REQUIRE(want.count(name) == 1);
        CHECK(json_line(event) == want[name]);
    }
    CHECK(rendered == expected);
}

TEST_CASE("every pinned event: the writer and the nlohmann DOM it replaced print the same line") {
    for (const auto& pinned : pinned_cases()) {
        const std::string& name = pinned.first;
        const Event& event = pinned.second;
        CAPTURE(name);
        CHECK(json_line(event) == reference_line(event));
    }
}

TEST_CASE("strings: the writer escapes random bytes exactly as nlohmann::json's replace handler") {
    std::mt19937 rng(23);
    // Bytes that matter most: controls, quote, backslash, DEL, every kind of UTF-8 lead and
    // continuation byte, and the boundaries of the ranges Table 3-7 allows after E0, ED, F0, F4.
    const std::vector<unsigned char> interesting{
        0x00, 0x01, 0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x1B, 0x1F, 0x20, '"',  '\\', '/',
        'a',  0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
        0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFE, 0xFF};
    std::uniform_int_distribution<int> length(0, 24);
    std::uniform_int_distribution<std::size_t> pick(0, interesting.size() - 1);
    std::uniform_int_distribution<int> any(0, 255);
    std::uniform_int_distribution<int> coin(0, 3);
    for (int round = 0; round < 200'000; ++round) {
        std::string text;
        int n = length(rng);
        for (int i = 0; i < n; ++i) {
            text += static_cast<char>(coin(rng) == 0 ? any(rng) : interesting[pick(rng)]);
        }
        std::string ours;
        uvgena::cli::append_json_string(ours, text);
        std::string theirs =
            nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        if (ours != theirs) {
            std::string hex;
            for (unsigned char c : text) {
                char b[4];
                std::snprintf(b, sizeof b, "%02x ", c);
                hex += b;
            }
            CAPTURE(hex);
            REQUIRE(ours == theirs);
        }
    }
    // Every valid code point once, in one string.
    std::string all;
    for (std::uint32_t cp = 1; cp <= 0x10FFFF; ++cp) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        if (cp < 0x80) {
            all += static_cast<char>(cp);
        } else if (cp < 0x800) {
            all += static_cast<char>(0xC0 | (cp >> 6));
            all += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            all += static_cast<char>(0xE0 | (cp >> 12));
            all += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            all += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            all += static_cast<char>(0xF0 | (cp >> 18));
            all += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            all += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            all += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    std::string ours;
    uvgena::cli::append_json_string(ours, all);
    CHECK(ours ==
          nlohmann::json(all).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

TEST_CASE("events: random names, duplicates, instances and channels print as the DOM did") {
    std::mt19937 rng(2023);
    const std::vector<std::string> names{
        "Volume", "Mute", "A", "B", "Zeta", "LastChange2", "Volume_", "a", "\xC3\xA9t\xC3\xA9"};
    const std::vector<std::string> channels{"Master", "LF", "RF", "", "lf", "M\xC3\xA4"};
    const std::vector<std::string> ids{"0", "1", "10", "2", "00"};
    const std::vector<std::string> values{"",          "1",           "x \" y",      "a\\b",
                                          "&lt;b&gt;", "&#9;tab",     "caf\xC3\xA9", "\xE2\x82",
                                          "&#1;",      "line&#10;two"};
    auto one_of = [&rng](const std::vector<std::string>& v) {
        return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)];
    };
    std::uniform_int_distribution<int> count(0, 6);
    for (int round = 0; round < 3000; ++round) {
        std::vector<std::pair<std::string, std::string>> vars;
        for (int i = count(rng); i > 0; --i) vars.emplace_back(one_of(names), one_of(values));
        if (count(rng) > 1) {
            std::string lc = R"(<Event xmlns="urn:schemas-upnp-org:metadata-1-0/RCS/">)";
            for (int i = count(rng); i > 0; --i) {
                lc += "<InstanceID val=\"" + one_of(ids) + "\">";
                for (int k = count(rng) * 2; k > 0; --k) {
                    std::string channel = one_of(channels);
                    lc += "<" + one_of(names).substr(0, 6) +
                          (channel.empty() ? std::string() : " channel=\"" + channel + "\"") +
                          " val=\"" + escape_xml(one_of(values)) + "\"/>";
                }
                lc += "</InstanceID>";
            }
            lc += "</Event>";
            vars.emplace_back("LastChange", escape_xml(lc));
        }
        std::shuffle(vars.begin(), vars.end(), rng);
        Event event = make_event(property_set(vars), static_cast<std::uint32_t>(round),
                                 static_cast<SeqStatus>(round % 6),
                                 static_cast<std::uint32_t>(round % 3), round % 7 == 0);
        // Timestamps across many seconds and days, before 1970 too (the writer caches the
        // formatted second).
        event.timestamp = std::chrono::system_clock::time_point(
            std::chrono::milliseconds((round - 1000) * 86'400'007LL + round % 3));
        CAPTURE(property_set(vars));
        REQUIRE(json_line(event) == reference_line(event));
    }
}
