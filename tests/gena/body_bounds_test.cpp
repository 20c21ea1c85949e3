// Bounded work per NOTIFY body (issue 18, item 3): the bounds on attributes per element and
// elements per document refuse hostile shapes with their own error, with the scanner and
// with tinyxml2 alike, and bodies just inside them still parse. These assert on outcomes;
// before the bounds, the 90,000-attribute body parsed "fine" after 6 s of CPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "uvgena/gena/event_body.hpp"
#include "uvgena/gena/event_builder.hpp"

using namespace uvgena::gena;

namespace {

struct ScannerSwitch {
    ~ScannerSwitch() { set_xml_scanner(true); }
};

std::string ps(const std::string& inner) {
    return R"(<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0"><e:property>)" + inner +
           "</e:property></e:propertyset>";
}

/// One element <X> with `n` distinct attributes a0..a(n-1).
std::string many_attributes(std::size_t n) {
    std::string s = "<X";
    for (std::size_t i = 0; i < n; ++i) s += " a" + std::to_string(i) + "=\"\"";
    return s + "/>";
}

/// `n` empty sibling elements.
std::string many_siblings(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += "<b/>";
    return s;
}

}  // namespace

TEST_SUITE("gena.body_bounds") {
    TEST_CASE("a 90,000-attribute body is refused with xml_too_many_attributes by both readers") {
        ScannerSwitch restore;
        std::string body = ps(many_attributes(90000));
        CHECK(body.size() > 880'000);
        for (bool scanner : {true, false}) {
            CAPTURE(scanner);
            set_xml_scanner(scanner);
            auto r = PropertySet::parse(body);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error() == errc::xml_too_many_attributes);
            CHECK(r.error().message() == "XML element or document with too many attributes");
        }
    }

    TEST_CASE("attributes: the bound is exactly max_xml_attributes_per_element") {
        ScannerSwitch restore;
        for (bool scanner : {true, false}) {
            CAPTURE(scanner);
            set_xml_scanner(scanner);
            auto at = PropertySet::parse(ps(many_attributes(max_xml_attributes_per_element)));
            REQUIRE(at.ok());
            CHECK(at->variables().get("X") == "");
            auto over = PropertySet::parse(ps(many_attributes(max_xml_attributes_per_element + 1)));
            CHECK(over.error() == errc::xml_too_many_attributes);
        }
    }

    TEST_CASE("a too-many-attributes element the scanner would decline is still refused") {
        // A DOCTYPE (declined by the scanner, refused by the reader) after the element, and
        // a syntax error after it: the bound is reported, tinyxml2 never sees the element.
        ScannerSwitch restore;
        std::string big = many_attributes(max_xml_attributes_per_element + 1);
        for (bool scanner : {true, false}) {
            set_xml_scanner(scanner);
            CHECK(PropertySet::parse(ps(big + "<Y>&nbsp;</Y>")).error() ==
                  errc::xml_too_many_attributes);
            CHECK(PropertySet::parse(ps(big + "<Y>")).error() == errc::xml_too_many_attributes);
            CHECK(PropertySet::parse("<!DOCTYPE x>" + ps(big)).error() ==
                  errc::xml_too_many_attributes);
        }
    }

    TEST_CASE("a duplicate among many attributes is malformed with both readers") {
        ScannerSwitch restore;
        std::string dup = many_attributes(200);
        dup.insert(dup.size() - 2, " a7=\"x\"");
        for (bool scanner : {true, false}) {
            set_xml_scanner(scanner);
            CHECK(PropertySet::parse(ps(dup)).error() == errc::xml_malformed);
        }
    }

    TEST_CASE("elements: the bound is exactly max_xml_elements per document") {
        ScannerSwitch restore;
        // ps() has 3 elements (propertyset, property, A) around the siblings.
        const std::size_t around = 3;
        std::string at = ps("<A>" + many_siblings(max_xml_elements - around) + "</A>");
        std::string over = ps("<A>" + many_siblings(max_xml_elements - around + 1) + "</A>");
        for (bool scanner : {true, false}) {
            CAPTURE(scanner);
            set_xml_scanner(scanner);
            CHECK(PropertySet::parse(at).ok());
            auto r = PropertySet::parse(over);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error() == errc::xml_too_many_elements);
        }
    }

    TEST_CASE("an escaped LastChange over a bound fails alone, the property set is read") {
        ScannerSwitch restore;
        std::string event = "<Event><InstanceID val=\"0\">" +
                            many_attributes(max_xml_attributes_per_element + 1) +
                            "</InstanceID></Event>";
        std::string body = build_property_set({{"LastChange", event}, {"Other", "1"}});
        for (bool scanner : {true, false}) {
            set_xml_scanner(scanner);
            auto r = PropertySet::parse(body);
            REQUIRE(r.ok());
            CHECK(r->variables().get("Other") == "1");
            CHECK(r->last_change().error() == errc::xml_too_many_attributes);
            CHECK(parse_last_change(event).error() == errc::xml_too_many_attributes);
        }
    }

    TEST_CASE("attributes in comments, CDATA and declarations are not counted") {
        ScannerSwitch restore;
        std::string big = many_attributes(max_xml_attributes_per_element + 1);
        std::string body =
            "<?xml version=\"1.0\"?>" + ps("<A><!--" + big + "--><![CDATA[" + big + "]]></A>");
        for (bool scanner : {true, false}) {
            set_xml_scanner(scanner);
            CHECK(PropertySet::parse(body).ok());
        }
    }

    TEST_CASE("deep nesting stays xml_too_deep, even with more elements than the bound") {
        ScannerSwitch restore;
        std::string deep;
        for (std::size_t i = 0; i < max_xml_elements + 10; ++i) deep += "<a>";
        for (bool scanner : {true, false}) {
            set_xml_scanner(scanner);
            CHECK(PropertySet::parse(deep).error() == errc::xml_too_deep);
        }
    }
}

TEST_SUITE("gena.body_bounds") {
    TEST_CASE("attributes: the bound per document is exactly max_xml_attributes") {
        ScannerSwitch restore;
        // ps() has one attribute (xmlns:e); the rest in elements of 128 attributes.
        std::string at, over;
        std::size_t left = max_xml_attributes - 1;
        while (left > 0) {
            std::size_t n = std::min<std::size_t>(left, 128);
            at += many_attributes(n);
            left -= n;
        }
        over = at + "<Y z=\"1\"/>";
        for (bool scanner : {true, false}) {
            CAPTURE(scanner);
            set_xml_scanner(scanner);
            CHECK(PropertySet::parse(ps("<A>" + at + "</A>")).ok());
            CHECK(PropertySet::parse(ps("<A>" + over + "</A>")).error() ==
                  errc::xml_too_many_attributes);
        }
    }
}
