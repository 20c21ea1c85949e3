#include "uvgena/gena/event_body.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "capture.hpp"
#include "support/test_loop.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/gena/event_builder.hpp"

using namespace uvgena::gena;
using namespace std::string_literals;

namespace {

const std::string avt_ns = "urn:schemas-upnp-org:metadata-1-0/AVT/";

std::string property_set(const std::string& inner) {
    return R"(<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">)" + inner +
           "</e:propertyset>";
}

std::string last_change_body(const std::string& event_doc) {
    return build_property_set({{"LastChange", event_doc}});
}

PropertySet parse_ok(std::string_view body) {
    auto r = PropertySet::parse(body);
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    return std::move(r).value();
}

}  // namespace

TEST_SUITE("gena.event_body") {
    TEST_CASE("a property set gives its variables in order, matched by namespace not prefix") {
        auto ps =
            parse_ok(R"(<x:propertyset xmlns:x="urn:schemas-upnp-org:event-1-0">)"
                     R"(<x:property><SystemUpdateID>53</SystemUpdateID></x:property>)"
                     R"(<x:property><ContainerUpdateIDs>Q:0,52</ContainerUpdateIDs></x:property>)"
                     R"(</x:propertyset>)");
        REQUIRE(ps.variables().size() == 2);
        CHECK(ps.variables()[0].name == "SystemUpdateID");
        CHECK(ps.variables()[0].value == "53");
        CHECK(ps.variables()[1].name == "ContainerUpdateIDs");
        CHECK(ps.variables().at("ContainerUpdateIDs") == "Q:0,52");
        CHECK_FALSE(ps.has_last_change());
        CHECK(ps.last_change().error() == errc::no_such_variable);
    }

    TEST_CASE("a default-namespace property set and a no-namespace one are read") {
        auto a = parse_ok(R"(<propertyset xmlns="urn:schemas-upnp-org:event-1-0"><property>)"
                          R"(<Foo>1</Foo></property></propertyset>)");
        CHECK(a.variables().get("Foo") == "1");
        CHECK(a.variables()[0].ns.empty());
        auto b = parse_ok("<propertyset><property><Foo>2</Foo></property></propertyset>");
        CHECK(b.variables().get("Foo") == "2");
    }

    TEST_CASE("a wrong root or a wrong namespace is a wrong_root error") {
        CHECK(PropertySet::parse("<html><body/></html>").error() == errc::xml_wrong_root);
        CHECK(PropertySet::parse(R"(<e:propertyset xmlns:e="urn:other"/>)").error() ==
              errc::xml_wrong_root);
        CHECK(PropertySet::parse(R"(<e:propertyset/>)").error() == errc::xml_wrong_root);
    }

    TEST_CASE("repeated variables are kept, lookups give the last one") {
        auto ps =
            parse_ok(property_set("<e:property><A>1</A></e:property>"
                                  "<e:property><A>2</A><B>3</B></e:property>"));
        CHECK(ps.variables().size() == 3);
        CHECK(ps.variables().at("A") == "2");
        CHECK(ps.variables().at("B") == "3");
        CHECK_THROWS_AS(ps.variables().at("C"), uvgena::Error);
        try {
            (void)ps.variables().at("Missing");
        } catch (const uvgena::Error& e) {
            CHECK(e.code() == errc::no_such_variable);
            CHECK(std::string(e.what()).find("Missing") != std::string::npos);
        }
    }

    TEST_CASE("values keep whitespace, decode entities, and read CDATA") {
        auto ps =
            parse_ok(property_set("<e:property><A>\n  x &amp; y &#x41;&#66;  \n</A></e:property>"
                                  "<e:property><B><![CDATA[<raw & text>]]></B></e:property>"
                                  "<e:property><C/></e:property>"));
        CHECK(ps.variables().at("A") == "\n  x & y AB  \n");
        CHECK(ps.variables().at("B") == "<raw & text>");
        CHECK(ps.variables().at("C").empty());
    }

    TEST_CASE("trailing NULs and whitespace, a BOM and an XML declaration are tolerated") {
        std::string body = "\xEF\xBB\xBF<?xml version=\"1.0\"?>" +
                           property_set("<e:property><A>1</A></e:property>") + "\r\n\n";
        body.append(3, '\0');
        auto ps = parse_ok(body);
        CHECK(ps.variables().at("A") == "1");
        CHECK(ps.trimmed());
    }

    TEST_CASE("an empty body is an event without variables") {
        CHECK(parse_ok("").variables().empty());
        CHECK(parse_ok(" \r\n\0\0"s).variables().empty());
    }

    TEST_CASE("malformed documents give a parse error, never a crash") {
        for (const char* bad :
             {"<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\">", "<a><b></a>", "garbage",
              "<", "<e:property></e:propertyset>", "<?xml version=\"1.0\"?>"}) {
            INFO(bad);
            auto r = PropertySet::parse(bad);
            CHECK_FALSE(r.ok());
            CHECK(r.error().category() == gena_category());
        }
    }

    TEST_CASE("huge nesting is refused with xml_too_deep without recursion trouble") {
        std::string deep;
        for (int i = 0; i < 100000; ++i) deep += "<a>";
        auto r = PropertySet::parse(deep);
        CHECK(r.error() == errc::xml_too_deep);
        auto lc = parse_last_change(deep);
        CHECK(lc.error() == errc::xml_too_deep);
    }

    TEST_CASE("DOCTYPE and ENTITY declarations are refused at both levels") {
        std::string bomb =
            "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
            "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>" +
            property_set("<e:property><A>&lol2;</A></e:property>");
        auto r = PropertySet::parse(bomb);
        REQUIRE_FALSE(r.ok());
        CHECK((r.error() == errc::xml_doctype_refused || r.error() == errc::xml_malformed));
        auto simple = PropertySet::parse("<!DOCTYPE x>" + property_set(""));
        CHECK(simple.error() == errc::xml_doctype_refused);
        auto nested =
            parse_ok(last_change_body("<!DOCTYPE Event><Event><InstanceID val=\"0\"/></Event>"));
        CHECK(nested.last_change().error() == errc::xml_doctype_refused);
    }

    TEST_CASE("bodies above the size limit are refused, 50 KB bodies parse") {
        std::string value(50 * 1024, 'x');
        auto ps = parse_ok(build_property_set({{"Big", value}, {"Small", "1"}}));
        CHECK(ps.variables().at("Big").size() == value.size());
        ParseOptions small;
        small.max_body_bytes = 1000;
        CHECK(PropertySet::parse(build_property_set({{"Big", value}}), small).error() ==
              errc::body_too_large);
    }

    TEST_CASE("bytes that are not UTF-8 pass through unchanged") {
        auto ps =
            parse_ok(property_set("<e:property><Name>K\xFC"
                                  "che\xC3</Name></e:property>"));
        CHECK(ps.variables().at("Name") ==
              "K\xFC"
              "che\xC3");
    }

    TEST_CASE("LastChange is parsed per instance, keeping channel attributes") {
        LastChangeBuilder lc("urn:schemas-upnp-org:metadata-1-0/RCS/");
        lc.instance("0")
            .set("Volume", "12", {{"channel", "Master"}})
            .set("Volume", "100", {{"channel", "LF"}})
            .set("Mute", "0", {{"channel", "Master"}})
            .set("PresetNameList", "FactoryDefaults");
        lc.instance("1").set("Volume", "30", {{"channel", "Master"}});
        auto ps = parse_ok(last_change_body(lc.document()));
        const auto& r = ps.last_change();
        REQUIRE(r.ok());
        CHECK(r->ns == "urn:schemas-upnp-org:metadata-1-0/RCS/");
        REQUIRE(r->instances.size() == 2);
        const auto* i0 = r->instance("0");
        REQUIRE(i0 != nullptr);
        CHECK(i0->element == "InstanceID");
        CHECK(i0->get("Volume") == "12");  // Master preferred
        REQUIRE(i0->find("Volume", "LF") != nullptr);
        CHECK(i0->find("Volume", "LF")->value == "100");
        CHECK(i0->find("Volume", "RF") == nullptr);
        CHECK(i0->find("Mute")->channel() == "Master");
        CHECK(i0->get("PresetNameList") == "FactoryDefaults");
        CHECK(r->instance("1")->get("Volume") == "30");
        CHECK(r->instance("7") == nullptr);
        CHECK(ps.state("Volume") == "12");
        CHECK(ps.state("Volume", "1") == "30");
        CHECK_FALSE(ps.state("Nothing").has_value());
    }

    TEST_CASE("a LastChange value without val takes the element text; with both, val wins") {
        auto lc = parse_last_change(
            "<Event xmlns=\"" + avt_ns +
            "\" xmlns:r=\"urn:schemas-rinconnetworks-com:metadata-1-0/\">"
            "<InstanceID val=\"0\"><TransportState>PLAYING</TransportState>"
            "<r:SleepTimerGeneration val=\"3\">ignored</r:SleepTimerGeneration><Empty/>"
            "</InstanceID></Event>");
        REQUIRE(lc.ok());
        const auto* i = lc->instance();
        REQUIRE(i != nullptr);
        CHECK(i->get("TransportState") == "PLAYING");
        CHECK(i->get("SleepTimerGeneration") == "3");
        CHECK(i->get("Empty") == "");
    }

    TEST_CASE("a broken LastChange spoils only itself") {
        auto ps = parse_ok(build_property_set(
            {{"LastChange", "<Event><InstanceID val=\"0\"><Volume val=\"1\"></Event>"},
             {"Other", "fine"}}));
        CHECK(ps.has_last_change());
        CHECK(ps.last_change().error() == errc::xml_malformed);
        CHECK(ps.variables().at("Other") == "fine");
        CHECK(ps.variables().at("LastChange").find("<Event>") == 0);
    }

    TEST_CASE("a LastChange whose root is not Event is a wrong_root error") {
        CHECK(parse_last_change("<Foo/>").error() == errc::xml_wrong_root);
        CHECK(parse_last_change("  ").ok());
    }

    TEST_CASE("an unescaped LastChange document inside the property is read") {
        auto ps = parse_ok(property_set(
            "<e:property><LastChange><Event xmlns=\"" + avt_ns +
            "\"><InstanceID val=\"0\"><TransportState val=\"STOPPED\"/></InstanceID></Event>"
            "</LastChange></e:property>"));
        REQUIRE(ps.last_change().ok());
        CHECK(ps.state("TransportState") == "STOPPED");
    }

    TEST_CASE("bare ampersands and valueless attributes in nested documents are repaired") {
        std::string didl =
            "<DIDL-Lite xmlns=\"urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/\" "
            "xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><item id=\"1\" parentID=\"0\" "
            "restricted=\"1\"><dc:title>Rock & Roll</dc:title>"
            "<res x-rincon-stream protocolInfo=\"a<b\">http://h/a?x=1&y=2</res></item></DIDL-Lite>";
        auto d = parse_didl(didl);
        REQUIRE_MESSAGE(d.ok(), d.error().message());
        REQUIRE(d->objects.size() == 1);
        CHECK(d->objects[0].title == "Rock & Roll");
        CHECK(d->objects[0].resources.at(0).uri == "http://h/a?x=1&y=2");
        CHECK(d->objects[0].resources.at(0).protocol_info == "a<b");
        CHECK(d->objects[0].resources.at(0).attribute("x-rincon-stream") == "");

        CHECK(repair_xml("<a b c='1' d=e>x & y &amp; &#38; &#x26; &bogus</a>") ==
              "<a b=\"\" c='1' d=\"e\">x &amp; y &amp; &#38; &#x26; &amp;bogus</a>");
        CHECK(repair_xml("<a/><!-- & --><?pi x?>") == "<a/><!-- &amp; --><?pi x?>");
    }

    TEST_CASE("DIDL-Lite is parsed lazily, once, into items and containers") {
        std::string didl =
            "<DIDL-Lite xmlns=\"urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/\" "
            "xmlns:dc=\"http://purl.org/dc/elements/1.1/\" "
            "xmlns:u=\"urn:schemas-upnp-org:metadata-1-0/upnp/\" "
            "xmlns:r=\"urn:schemas-rinconnetworks-com:metadata-1-0/\">"
            "<item id=\"T1\" parentID=\"A1\" restricted=\"true\">"
            "<dc:title>Song</dc:title><dc:creator>Singer</dc:creator>"
            "<u:artist role=\"Performer\">Band</u:artist><u:album>Album</u:album>"
            "<u:class>object.item.audioItem.musicTrack</u:class>"
            "<u:albumArtURI>/art?id=1</u:albumArtURI>"
            "<res protocolInfo=\"http-get:*:audio/flac:*\" duration=\"0:03:09.500\" "
            "size=\"1234\">http://h/1.flac</res><res protocolInfo=\"x:*:*:*\">x://2</res>"
            "<r:streamContent>live</r:streamContent></item>"
            "<container id=\"C\" parentID=\"0\" restricted=\"0\" childCount=\"3\">"
            "<dc:title>Box</dc:title><u:class>object.container</u:class></container>"
            "</DIDL-Lite>";
        auto ps = parse_ok(build_property_set({{"CurrentTrackMetaData", didl}}));
        const auto& d = ps.didl("CurrentTrackMetaData");
        REQUIRE_MESSAGE(d.ok(), d.error().message());
        CHECK(&d == &ps.didl("CurrentTrackMetaData"));  // cached: same object
        REQUIRE(d->objects.size() == 2);
        const auto& item = d->objects[0];
        CHECK_FALSE(item.is_container);
        CHECK(item.id == "T1");
        CHECK(item.parent_id == "A1");
        CHECK(item.restricted);
        CHECK(item.title == "Song");
        CHECK(item.creator == "Singer");
        CHECK(item.artist == "Band");
        CHECK(item.album == "Album");
        CHECK(item.upnp_class == "object.item.audioItem.musicTrack");
        CHECK(item.album_art_uri == "/art?id=1");
        REQUIRE(item.resources.size() == 2);
        CHECK(item.resources[0].uri == "http://h/1.flac");
        CHECK(item.resources[0].protocol_info == "http-get:*:audio/flac:*");
        CHECK(item.resources[0].duration() == "0:03:09.500");
        CHECK(item.resources[0].attribute("size") == "1234");
        CHECK(item.resources[1].duration().empty());
        REQUIRE(item.find("streamContent") != nullptr);
        CHECK(item.find("urn:schemas-rinconnetworks-com:metadata-1-0/", "streamContent")->text ==
              "live");
        CHECK(item.find(upnp_namespace, "artist")->attributes.at(0).value == "Performer");
        const auto& box = d->objects[1];
        CHECK(box.is_container);
        CHECK_FALSE(box.restricted);
        CHECK(box.title == "Box");
        CHECK(box.attributes.size() == 4);

        // A copy shares what was parsed and still answers.
        PropertySet copy = ps;
        CHECK(copy.didl("CurrentTrackMetaData")->objects.size() == 2);
    }

    TEST_CASE("DIDL with undeclared dc/upnp prefixes falls back to their usual namespaces") {
        auto d = parse_didl(
            "<DIDL-Lite><item id=\"1\"><dc:title>T</dc:title>"
            "<upnp:class>object.item</upnp:class></item></DIDL-Lite>");
        // tinyxml2 does not check prefixes, so this parses; fields are still recognised.
        REQUIRE(d.ok());
        CHECK(d->objects.at(0).title == "T");
        CHECK(d->objects.at(0).upnp_class == "object.item");
    }

    TEST_CASE("didl() reports missing variables, non-DIDL values and broken DIDL distinctly") {
        auto ps = parse_ok(build_property_set({{"Empty", ""},
                                               {"Text", "hello"},
                                               {"Broken", "<DIDL-Lite><item></DIDL-Lite>"},
                                               {"Html", "<html/>"}}));
        CHECK(ps.didl("Nope").error() == errc::no_such_variable);
        CHECK(ps.didl("Empty").error() == errc::not_didl);
        CHECK(ps.didl("Text").error() == errc::not_didl);
        CHECK(ps.didl("Html").error() == errc::not_didl);
        CHECK(ps.didl("Broken").error() == errc::xml_malformed);
        CHECK(ps.variables().at("Text") == "hello");
    }

    TEST_CASE("DIDL inside LastChange is found per instance") {
        LastChangeBuilder lc(avt_ns);
        lc.instance("0").set(
            "CurrentTrackMetaData",
            "<DIDL-Lite><item id=\"a\"><dc:title>Zero</dc:title></item></DIDL-Lite>");
        lc.instance("1").set(
            "CurrentTrackMetaData",
            "<DIDL-Lite><item id=\"b\"><dc:title>One</dc:title></item></DIDL-Lite>");
        auto ps = parse_ok(last_change_body(lc.document()));
        CHECK(ps.didl("CurrentTrackMetaData")->objects.at(0).title == "Zero");
        CHECK(ps.didl("CurrentTrackMetaData", "1")->objects.at(0).title == "One");
        CHECK(ps.didl("CurrentTrackMetaData", "2").error() == errc::no_such_variable);
    }

    TEST_CASE("the property-set builder escapes values and round-trips") {
        auto body = build_property_set({{"A", "x<y & \"z\" 'w'"}, {"B", ""}});
        CHECK(body.find("x&lt;y &amp; &quot;z&quot; &apos;w&apos;") != std::string::npos);
        auto ps = parse_ok(body);
        CHECK(ps.variables().at("A") == "x<y & \"z\" 'w'");
        CHECK(ps.variables().at("B").empty());
        CHECK_THROWS_AS(build_property_set({{"bad name", "1"}}), uvgena::Error);
        CHECK_THROWS_AS(build_property_set({{"", "1"}}), uvgena::Error);
        CHECK_THROWS_AS(LastChangeBuilder("x").set("1x", "1"), uvgena::Error);
        CHECK(is_valid_variable_name("A_b.c-1"));
        CHECK_FALSE(is_valid_variable_name("e:A"));
    }

    TEST_CASE("LastChange attribute values are escaped by the builder") {
        LastChangeBuilder lc(avt_ns);
        CHECK(lc.empty());
        lc.set("AVTransportURIMetaData", "<DIDL-Lite>&amp;</DIDL-Lite>", {{"x", "\"q\""}});
        CHECK_FALSE(lc.empty());
        auto ps = parse_ok(last_change_body(lc.document()));
        const auto* v = ps.last_change()->instance()->find("AVTransportURIMetaData");
        REQUIRE(v != nullptr);
        CHECK(v->value == "<DIDL-Lite>&amp;</DIDL-Lite>");
        CHECK(v->attribute("x") == "\"q\"");
    }

    TEST_CASE("gmediarender captures parse into the expected LastChange values") {
        std::string dir = uvtest::env_dir("UVGENA_TEST_DATA");
        REQUIRE(!dir.empty());
        dir += "/gmediarender";
        auto rc0 = gena_test::read_capture(dir + "/notify-0.http");
        auto ps0 = parse_ok(rc0.body);
        CHECK(ps0.trimmed());  // libupnp ends bodies with blank lines
        REQUIRE(ps0.last_change().ok());
        CHECK(ps0.last_change()->ns == "urn:schemas-upnp-org:metadata-1-0/RCS/");
        CHECK(ps0.state("Volume") == "100");
        CHECK(ps0.last_change()->instance()->find("Volume", "Master")->value == "100");
        CHECK(ps0.state("PresetNameList") == "");

        auto rc1 = gena_test::read_capture(dir + "/notify-2.http");
        auto ps1 = parse_ok(rc1.body);
        CHECK(ps1.state("Volume") == "42");

        auto avt1 = gena_test::read_capture(dir + "/notify-3.http");
        auto ps3 = parse_ok(avt1.body);
        CHECK(ps3.state("AVTransportURI") == "http://10.203.0.2:9/none.mp3");
        CHECK(ps3.state("NumberOfTracks") == "1");
        const auto& d = ps3.didl("AVTransportURIMetaData");
        REQUIRE_MESSAGE(d.ok(), d.error().message());
        REQUIRE(d->objects.size() == 1);
        CHECK(d->objects[0].id == "42");
        CHECK(d->objects[0].restricted);
        CHECK(d->objects[0].title == "Rock & Roll");
        CHECK(d->objects[0].creator == "Capture");
        CHECK(d->objects[0].upnp_class == "object.item.audioItem.musicTrack");
        CHECK(d->objects[0].resources.at(0).duration() == "0:03:21");
        CHECK(d->objects[0].resources.at(0).uri == "http://10.203.0.2:9/none.mp3");
        CHECK_FALSE(d->repaired);

        auto avt0 = gena_test::read_capture(dir + "/notify-1.http");
        auto ps2 = parse_ok(avt0.body);
        CHECK(ps2.state("TransportState").has_value());
        CHECK(ps2.last_change()->instances.size() == 1);
    }
}
