// Conformance of uvgena's event-body reader with SoCo's parse_event_xml over every NOTIFY
// body in the shared fixtures (real Sonos captures and SoCo's own test data).
//
// SoCo's results are mapped to uvgena's model here, in the test only:
// - names: SoCo snake_cases them (camel_to_underscore, reproduced below with its odd
//   results such as container_update_i_ds); uvgena keeps the device's names;
// - LastChange: SoCo flattens the first InstanceID into the event; uvgena keeps the
//   LastChange document (all instances), compared here through instances[0];
// - per-channel values: SoCo's {"Master": "12"} dicts are compared with the values that
//   carry a channel attribute.
// Deliberate differences (documented in event_body.hpp as well):
// - SoCo gives null for an empty element; uvgena's values are strings, so "" (null == "");
// - DIDL-Lite: uvgena keeps every item/container (SoCo the first only) and never invents
//   values: Sonos' `<res x-rincon-stream>` (no attribute value) is repaired to an attribute
//   with an empty value, so protocolInfo is "" where SoCo's quirk puts
//   "DUMMY_ADDED_BY_QUIRK"; SoCo's class (DidlMusicTrack...) is compared as upnp:class;
// - edge cases where SoCo raises (TypeError, IndexError, ...) parse cleanly in uvgena or
//   fail with a GENA error code confined to that one value; see the edge-case test.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "support/test_loop.hpp"
#include "uvgena/gena/event_body.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using uvgena::gena::DidlObject;
using uvgena::gena::PropertySet;

namespace {

std::string fixtures_dir() {
    std::string base = uvtest::env_dir("UVGENA_FIXTURES");
    if (base.empty()) return {};
    std::string dir = base + "/soco";
    return fs::exists(dir) ? dir : std::string{};
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// soco.utils.camel_to_underscore, regex for regex.
std::string camel_to_underscore(const std::string& s) {
    static const std::regex first_cap("(.)([A-Z][a-z]+)");
    static const std::regex all_cap("([a-z0-9])([A-Z])");
    std::string r = std::regex_replace(s, first_cap, "$1_$2");
    r = std::regex_replace(r, all_cap, "$1_$2");
    for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

/// SoCo's DIDL class name for a upnp:class (only the ones the fixtures use).
std::string soco_class_to_upnp(const std::string& soco) {
    static const std::map<std::string, std::string> m = {
        {"DidlItem", "object.item"},
        {"DidlMusicTrack", "object.item.audioItem.musicTrack"},
        {"DidlAudioLineIn", "object.item.audioItem.linein"},
        {"DidlPlaylistContainer", "object.container.playlistContainer"},
        {"DidlAudioBroadcast", "object.item.audioItem.audioBroadcast"},
        {"DidlContainer", "object.container"},
    };
    auto it = m.find(soco);
    return it == m.end() ? "?" + soco : it->second;
}

std::string text_of(const DidlObject& o, const char* local) {
    auto* e = o.find(local);
    return e ? e->text : std::string{};
}

/// Compares one DIDL value with SoCo's to_dict() of its first object. (The loops name the
/// key and value instead of binding them: clang 14 cannot capture a structured binding in
/// the lambdas that doctest's macros make.)
void check_didl(const PropertySet& ps, const std::string& name, const json& expected) {
    INFO("DIDL variable " << name);
    const auto& didl = ps.didl(name);
    REQUIRE_MESSAGE(didl.ok(), didl.error().message());
    REQUIRE(!didl->objects.empty());
    const DidlObject& o = didl->objects.front();
    CHECK(o.upnp_class == soco_class_to_upnp(expected["__didl__"].get<std::string>()));
    for (auto& item : expected.items()) {
        const std::string& key = item.key();
        const json& value = item.value();
        INFO("field " << key);
        auto str = [&](const std::string& ours) {
            CHECK(ours == (value.is_null() ? std::string{} : value.get<std::string>()));
        };
        if (key == "__didl__") continue;
        if (key == "title")
            str(o.title);
        else if (key == "creator")
            str(o.creator);
        else if (key == "album")
            str(o.album);
        else if (key == "album_art_uri")
            str(o.album_art_uri);
        else if (key == "item_id")
            str(o.id);
        else if (key == "parent_id")
            str(o.parent_id);
        else if (key == "restricted")
            CHECK(o.restricted == value.get<bool>());
        else if (key == "desc")
            str(text_of(o, "desc"));
        else if (key == "stream_content")
            str(text_of(o, "streamContent"));
        else if (key == "radio_show")
            str(text_of(o, "radioShowMd"));
        else if (key == "resources") {
            REQUIRE(o.resources.size() == value.size());
            for (std::size_t i = 0; i < value.size(); ++i) {
                const auto& r = value[i];
                CHECK(o.resources[i].uri == r["uri"].get<std::string>());
                std::string pinfo = r["protocol_info"].get<std::string>();
                if (pinfo == "DUMMY_ADDED_BY_QUIRK") {
                    // Deliberate: uvgena repairs `<res x-rincon-stream>` and invents nothing.
                    CHECK(o.resources[i].protocol_info.empty());
                    CHECK(o.resources[i].attribute("x-rincon-stream") == std::string_view{});
                    CHECK(didl->repaired);
                } else {
                    CHECK(o.resources[i].protocol_info == pinfo);
                }
                if (r.contains("duration")) {
                    CHECK(o.resources[i].duration() == r["duration"].get<std::string>());
                }
            }
        } else {
            FAIL_CHECK("SoCo DIDL field not mapped: " << key);
        }
    }
}

/// uvgena's event in SoCo's shape: snake_case names, LastChange's first instance flattened,
/// channel dicts. DIDL values are left as their raw strings (checked separately).
json to_soco_shape(const PropertySet& ps) {
    json out = json::object();
    for (const auto& v : ps.variables()) {
        if (v.name == "LastChange") continue;
        std::string key = v.ns.empty() ? v.name : "{" + v.ns + "}" + v.name;
        out[camel_to_underscore(key)] = v.value;
    }
    if (const auto& lc = ps.last_change(); lc.ok() && !lc->instances.empty()) {
        for (const auto& v : lc->instances.front().values) {
            std::string key = camel_to_underscore(v.name);
            if (auto ch = v.attribute("channel")) {
                if (!out[key].is_object()) out[key] = json::object();
                out[key][std::string(*ch)] = v.value;
            } else {
                out[key] = v.value;
            }
        }
    }
    return out;
}

/// Every variable and value SoCo returns, compared (null == ""; DIDL dicts via check_didl).
void check_against_soco(const PropertySet& ps, const json& expected) {
    json ours = to_soco_shape(ps);
    for (auto& item : expected.items()) {
        const std::string& key = item.key();
        const json& value = item.value();
        INFO("variable " << key);
        REQUIRE_MESSAGE(ours.contains(key), "uvgena lacks " << key);
        if (value.is_object() && value.contains("__didl__")) {
            // The device name of the variable: find the LastChange value of that snake name.
            std::string device_name;
            for (const auto& v : ps.last_change().value().instances.at(0).values) {
                if (camel_to_underscore(v.name) == key) device_name = v.name;
            }
            REQUIRE(!device_name.empty());
            check_didl(ps, device_name, value);
        } else if (value.is_null()) {
            CHECK(ours[key] == "");
        } else {
            CHECK(ours[key] == value);
        }
    }
    for (auto& item : ours.items()) {
        const std::string& key = item.key();
        INFO("variable " << key);
        CHECK_MESSAGE(expected.contains(key), "uvgena has a variable SoCo lacks: " << key);
    }
}

}  // namespace

TEST_SUITE("gena.soco_conformance") {
    TEST_CASE("every SoCo fixture parses to the same variables and values as SoCo") {
        std::string dir = fixtures_dir();
        if (dir.empty()) {
            MESSAGE("SKIPPED: shared SoCo fixtures not found (UVGENA_FIXTURES unset or no soco/)");
            return;
        }
        int count = 0;
        for (const auto& entry : fs::directory_iterator(dir)) {
            if (entry.path().extension() != ".xml") continue;
            fs::path expected_path = entry.path();
            expected_path.replace_extension(".soco_expected.json");
            REQUIRE_MESSAGE(fs::exists(expected_path), expected_path.string());
            INFO("fixture " << entry.path().filename().string());
            std::string body = read_file(entry.path());
            json expected = json::parse(read_file(expected_path));
            auto ps = PropertySet::parse(body);
            REQUIRE_MESSAGE(ps.ok(), ps.error().message());
            check_against_soco(*ps, expected);
            ++count;
        }
        CHECK(count >= 11);  // INDEX.md lists 11 bodies
    }

    TEST_CASE("every SoCo edge case parses or fails cleanly, agreeing with SoCo where it answers") {
        std::string dir = fixtures_dir();
        if (dir.empty()) {
            MESSAGE("SKIPPED: shared SoCo fixtures not found");
            return;
        }
        json cases = json::parse(read_file(dir + "/edge_cases.soco_behaviour.json"));
        REQUIRE(cases.size() == 26);
        int agreed = 0;
        for (const auto& c : cases) {
            std::string name = c["case"].get<std::string>();
            INFO("edge case: " << name);
            auto ps = PropertySet::parse(c["body"].get<std::string>());
            // No edge case is a broken top-level document: all must parse.
            REQUIRE_MESSAGE(ps.ok(), ps.error().message());
            // Touching every DIDL-looking value must never fail other than cleanly.
            if (const auto& lc = ps->last_change(); lc.ok()) {
                for (const auto& inst : lc->instances) {
                    for (const auto& v : inst.values) {
                        const auto& d = ps->didl(v.name, inst.id);
                        if (!d) CHECK(d.error().category() == uvgena::gena::gena_category());
                    }
                }
            }
            if (!c.contains("soco_result")) continue;
            const json& soco = c["soco_result"];
            if (name == "property without e: ns") {
                // Deliberate: a propertyset in no namespace is accepted (SoCo ignores it).
                CHECK(ps->variables().get("Foo") == "1");
                continue;
            }
            json ours = to_soco_shape(*ps);
            for (auto& item : soco.items()) {
                const std::string& key = item.key();
                const json& value = item.value();
                INFO("variable " << key);
                REQUIRE(ours.contains(key));
                if (value.is_string() && value.get<std::string>().rfind("Didl", 0) == 0) {
                    // SoCo's class name of a parsed DIDL value.
                    std::string device_name = "CurrentTrackMetaData";
                    const auto& d = ps->didl(device_name);
                    REQUIRE(d.ok());
                    REQUIRE(!d->objects.empty());
                    CHECK(d->objects.front().upnp_class == soco_class_to_upnp(value));
                } else if (value.is_string() &&
                           value.get<std::string>().rfind("SoCoFault", 0) == 0) {
                    // SoCo refused this DIDL; uvgena reads what is there (checked below).
                } else if (value.is_null()) {
                    CHECK(ours[key] == "");
                } else {
                    CHECK(ours[key] == value);
                }
            }
            ++agreed;
        }
        CHECK(agreed == 18);  // cases where SoCo returns a result rather than raising
    }

    TEST_CASE("edge cases where SoCo raises give defined results in uvgena") {
        std::string dir = fixtures_dir();
        if (dir.empty()) {
            MESSAGE("SKIPPED: shared SoCo fixtures not found");
            return;
        }
        json cases = json::parse(read_file(dir + "/edge_cases.soco_behaviour.json"));
        std::map<std::string, std::string> bodies;
        for (const auto& c : cases) bodies[c["case"]] = c["body"];
        auto parse = [&](const char* name) {
            INFO(name);
            REQUIRE(bodies.count(name) == 1);
            auto r = PropertySet::parse(bodies[name]);
            REQUIRE(r.ok());
            return std::move(r).value();
        };
        {
            auto ps = parse("unknown ns LastChange");
            CHECK(ps.state("X") == "1");
            CHECK(ps.last_change().value().ns == "urn:example:other");
        }
        {
            auto ps = parse("no-ns LastChange");
            CHECK(ps.state("X") == "1");
            CHECK(ps.last_change().value().ns.empty());
        }
        {
            auto ps = parse("empty LastChange");
            REQUIRE(ps.has_last_change());
            REQUIRE(ps.last_change().ok());
            CHECK(ps.last_change()->instances.empty());
        }
        {
            auto ps = parse("DIDL empty (no items)");
            const auto& d = ps.didl("CurrentTrackMetaData");
            REQUIRE(d.ok());
            CHECK(d->objects.empty());
        }
        {
            auto ps = parse("DIDL missing class");
            const auto& d = ps.didl("CurrentTrackMetaData");
            REQUIRE(d.ok());
            REQUIRE(d->objects.size() == 1);
            CHECK(d->objects[0].upnp_class.empty());
            CHECK(d->objects[0].title == "x");
        }
        {
            auto ps = parse("DIDL bad class");
            const auto& d = ps.didl("CurrentTrackMetaData");
            REQUIRE(d.ok());
            CHECK(d->objects.at(0).upnp_class == "foo.bar");
        }
        {
            auto ps = parse("DIDL missing id");
            const auto& d = ps.didl("CurrentTrackMetaData");
            REQUIRE(d.ok());
            CHECK(d->objects.at(0).id.empty());
            CHECK(d->objects.at(0).parent_id == "0");
        }
        {
            auto ps = parse("DIDL with desc child");
            const auto& d = ps.didl("CurrentTrackMetaData");
            REQUIRE(d.ok());
            CHECK(d->objects.empty());  // <desc> directly under DIDL-Lite is no object
        }
        {
            auto ps = parse("DIDL garbage");
            CHECK(ps.state("CurrentTrackMetaData") == "<DIDL-Lite <<<");
            const auto& d = ps.didl("CurrentTrackMetaData");
            REQUIRE_FALSE(d.ok());
            CHECK(d.error() == uvgena::gena::errc::xml_malformed);
        }
        {
            auto ps = parse("illegal control char");
            CHECK(ps.variables().at("ZoneGroupName") == std::string("a\x01"
                                                                    "b"));
        }
    }
}
