// The XML scanner of the body readers against tinyxml2: on every input, the readers give the
// same results with the scanner as with tinyxml2 alone (set_xml_scanner(false)), and the
// scanner really reads the bodies devices send (it does not decline them all to tinyxml2).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "body_dump.hpp"
#include "gena/xml_tree.hpp"
#include "support/test_loop.hpp"
#include "uvgena/gena/event_body.hpp"
#include "uvgena/gena/event_builder.hpp"

using namespace uvgena::gena;

namespace {

/// Restores the scanner switch however the test ends.
struct ScannerSwitch {
    ~ScannerSwitch() { set_xml_scanner(true); }
};

std::string readers_with(bool scanner, std::string_view bytes) {
    set_xml_scanner(scanner);
    return uvtest::dump_readers(bytes);
}

void check_same(std::string_view bytes) {
    ScannerSwitch restore;
    std::string with_tinyxml2 = readers_with(false, bytes);
    std::string with_scanner = readers_with(true, bytes);
    INFO("input: ", std::string(bytes));
    CHECK(with_scanner == with_tinyxml2);
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string ps(const std::string& inner) {
    return R"(<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0"><e:property>)" + inner +
           "</e:property></e:propertyset>";
}

std::string nested(int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += "<d>";
    s += "x";
    for (int i = 0; i < depth; ++i) s += "</d>";
    return s;
}

/// Inputs at every rule of the scanner: accepted forms and each thing it must decline.
std::vector<std::string> edge_cases() {
    std::vector<std::string> v = {
        // entities and character references
        ps("<A>a&lt;b&gt;c&amp;d&quot;e&apos;f</A>"),
        ps("<A>&#65;&#x42;&#x63;&#0067;&#x10FFFF;&#1114111;&#xD800;&#128;&#2048;&#65536;</A>"),
        ps("<A>&#0;</A>"),
        ps("<A>&#x;</A>"),
        ps("<A>&#;</A>"),
        ps("<A>&#X41;</A>"),
        ps("<A>&#x110000;</A>"),
        ps("<A>&#99999999;</A>"),
        ps("<A>&#00000065;</A>"),
        ps("<A>&#x0000041;</A>"),
        ps("<A>&#65</A>"),
        ps("<A>&#6 5;</A>"),
        ps("<A>&nbsp;</A>"),
        ps("<A>a & b</A>"),
        ps("<A>&lt;&nbsp;&gt;</A>"),
        ps("<A>&lt</A>"),
        ps("<A>&amp;amp;</A>"),
        ps("<A>&LT;</A>"),
        ps("<A>&</A>"),
        // newlines
        ps("<A>a\r\nb\rc\n\rd\n\ne\r\r</A>"),
        ps("<A x=\"1\r\n2\r3\n\r4\">t</A>"),
        ps("<A>\r\n</A>"),
        ps("<A><![CDATA[x\r\ny&lt;]]></A>"),
        // whitespace-only and mixed text
        ps("<A> </A>"),
        ps("<A>\t\v\f </A>"),
        ps("<A> x </A>"),
        ps("<A>x<!--c-->y</A>"),
        ps("<A>x <!--c--> y</A>"),
        ps("<A> <![CDATA[ ]]> </A>"),
        ps("<A><![CDATA[]]></A>"),
        ps("<A>a<B/>b</A>"),
        ps("<A>\n  <B>1</B>\n</A>"),
        ps("<A>a>b</A>"),
        ps("<A>]]></A>"),
        ps("<A>&#x20;</A>"),
        ps("<A>&#32;<B/>&#9;</A>"),
        ps("<A a=\"x\ty\"/>"),
        // attributes
        ps("<A a='1' b=\"2\"/>"),
        ps("<A a = \"1\"\tb\n=\n'2' />"),
        ps("<A a=\"1\"b=\"2\"/>"),
        ps("<A a=\"1\" a=\"2\"/>"),
        ps("<A a=\"<\"/>"),
        ps("<A a=\">\"/>"),
        ps("<A a/>"),
        ps("<A a=1/>"),
        ps("<A a=\"1/>"),
        ps("<A a=\"x'y\" b='x\"y'/>"),
        ps("<A/ >"),
        ps("<A xmlns:p=\"urn:p\"><p:B p:c=\"1\"/></A>"),
        // names
        ps("<_a.b-c:d1>x</_a.b-c:d1>"),
        ps("<1A>x</1A>"),
        ps("<A>x</A >"),
        ps("<A>x</ A>"),
        ps("< A>x</A>"),
        ps("<A>x</B>"),
        ps("<A>x</A b=\"1\">"),
        ps("<\xC3\xA9t\xC3\xA9>1</\xC3\xA9t\xC3\xA9>"),
        // document level
        "<?xml version=\"1.0\"?>" + ps("<A>1</A>"),
        "<?xml version=\"1.0\"?><?other?>" + ps("<A>1</A>"),
        "<!--c--><?xml version=\"1.0\"?>" + ps("<A>1</A>"),
        "<!--c-->" + ps("<A>1</A>") + "<!--d-->",
        ps("<A>1</A>") + "<x/>",
        ps("<A>1</A>") + "text",
        "text" + ps("<A>1</A>"),
        "\xEF\xBB\xBF" + ps("<A>1</A>"),
        "<!DOCTYPE x>" + ps("<A>1</A>"),
        ps("<A><!DOCTYPE x></A>"),
        ps("<A><?pi?></A>"),
        ps("<A>1</A>").substr(0, 40),
        ps("<A>1<A>"),
        ps(std::string("<A>a\0b</A>", 10)),
        "",
        "   ",
        "<",
        "<a",
        "<a>",
        "<a/>",
        "<!--",
        "<![CDATA[x]]>",
        ps("<A>x<!-- -- --></A>"),
        ps("<A>x<!-></A>"),
        // nesting around the scanner's depth limit (64) and far past it
        ps("<A>" + nested(62) + "</A>"),
        ps("<A>" + nested(63) + "</A>"),
        ps("<A>" + nested(64) + "</A>"),
        ps("<A>" + nested(600) + "</A>"),
        // LastChange, inline and escaped, and DIDL-Lite in it
        build_property_set(
            {{"LastChange",
              R"(<Event xmlns="urn:schemas-upnp-org:metadata-1-0/AVT/"><InstanceID val="0">)"
              R"(<TransportState val="PLAYING"/><CurrentTrackMetaData val="&lt;DIDL-Lite )"
              R"(xmlns:dc=&quot;http://purl.org/dc/elements/1.1/&quot;&gt;&lt;item )"
              R"(id=&quot;1&quot;&gt;&lt;dc:title&gt;A &amp;amp; B&lt;/dc:title&gt;&lt;res )"
              R"(protocolInfo=&quot;http-get:*:audio/flac:*&quot;&gt;http://x/1?a=1&amp;amp;b=2)"
              R"(&lt;/res&gt;&lt;/item&gt;&lt;/DIDL-Lite&gt;"/><Volume channel="Master" )"
              R"(val="12"/><Volume channel="LF" val="10"/></InstanceID></Event>)"}}),
        ps(R"(<LastChange><Event xmlns="urn:schemas-upnp-org:metadata-1-0/RCS/">)"
           R"(<InstanceID val="0"><Mute val="0"/></InstanceID></Event></LastChange>)"),
        ps("<LastChange>&lt;Event&gt;&lt;InstanceID val=&quot;0&quot;&gt;&lt;X val=&quot;a&amp;b"
           "&quot;/&gt;&lt;/InstanceID&gt;&lt;/Event&gt;</LastChange>"),
        ps("<LastChange>&lt;Event&gt;&lt;InstanceID val=&quot;0&quot;&gt;&lt;X val&gt;"
           "&lt;/InstanceID&gt;&lt;/Event&gt;</LastChange>"),
        R"(<DIDL-Lite xmlns="urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/" )"
        R"(xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:upnp="urn:schemas-upnp-org:)"
        R"(metadata-1-0/upnp/"><item id="1" parentID="0" restricted="1"><dc:title>T</dc:title>)"
        R"(<upnp:class>object.item</upnp:class><res x-rincon-stream>u</res></item></DIDL-Lite>)",
        R"(<Event><InstanceID val="0"><A val="1"/><B>text &amp; more</B></InstanceID></Event>)",
    };
    return v;
}

/// `n` attributes a0..a(n-1) (then `extra`) on one element <X>.
std::string attributes(std::size_t n, const std::string& extra = {}) {
    std::string s = "<X";
    for (std::size_t i = 0; i < n; ++i) s += " a" + std::to_string(i) + "=\"" + "\"";
    return s + extra + "/>";
}

/// Inputs at the bounds on attributes per element and elements per document.
std::vector<std::string> bound_cases() {
    const std::size_t max = max_xml_attributes_per_element;
    std::string siblings;
    for (std::size_t i = 0; i < max_xml_elements - 3; ++i) siblings += "<b/>";
    return {
        ps(attributes(16)),
        ps(attributes(16, " a3=\"\"")),
        ps(attributes(17)),
        ps(attributes(17, " a0=\"\"")),
        ps(attributes(max - 1, " a0='x'")),
        ps(attributes(max)),
        ps(attributes(max + 1)),
        ps(attributes(max, " a1=\"x\"")),
        ps(attributes(max + 1) + "<Y>&nbsp;</Y>"),
        ps(attributes(max + 1) + "<Y>"),
        ps(attributes(max) + attributes(max)),
        "<!DOCTYPE x>" + ps(attributes(max + 1)),
        ps("<A><!--" + attributes(max + 1) + "--></A>"),
        ps("<A><![CDATA[" + attributes(max + 1) + "]]></A>"),
        ps("<A>" + nested(70) + attributes(max + 1) + "</A>"),
        ps("<A>" + siblings + "</A>"),
        ps("<A>" + siblings + "<b/></A>"),
        ps("<A>" + siblings + "<b>&nbsp;</b></A>"),
        ps("<LastChange>&lt;Event&gt;" + escape_xml(attributes(max + 1)) +
           "&lt;/Event&gt;</LastChange>"),
    };
}

}  // namespace

TEST_SUITE("gena.xml_scanner") {
    TEST_CASE("the scanner and tinyxml2 give the same results on hand-made edge cases") {
        for (const auto& input : edge_cases()) check_same(input);
    }

    TEST_CASE("the scanner and tinyxml2 refuse the same documents for a bound") {
        for (const auto& input : bound_cases()) {
            check_same(input);
            ScannerSwitch restore;
            set_xml_scanner(true);
            auto with_scanner = PropertySet::parse(input);
            set_xml_scanner(false);
            auto with_tinyxml2 = PropertySet::parse(input);
            CHECK(with_scanner.ok() == with_tinyxml2.ok());
            if (!with_scanner.ok() && !with_tinyxml2.ok()) {
                CHECK(with_scanner.error() == with_tinyxml2.error());
            }
        }
    }

    TEST_CASE("the scanner and tinyxml2 agree on every captured device body, cut anywhere") {
        std::string dir = uvtest::env_dir("UVGENA_FIXTURES");
        std::vector<std::string> bodies;
        for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
            if (entry.path().extension() == ".xml") bodies.push_back(read_file(entry.path()));
        }
        REQUIRE(bodies.size() >= 10);
        for (const auto& body : bodies) {
            check_same(body);
            // Truncations and single-byte damage hit the decline paths at every position.
            for (std::size_t cut = 0; cut < body.size(); cut += 1 + body.size() / 97) {
                check_same(std::string_view(body).substr(0, cut));
                std::string damaged = body;
                damaged[cut] = "<>&;\"'\r/"[cut % 8];
                check_same(damaged);
            }
        }
    }

    TEST_CASE("the scanner reads device bodies itself, declining only what is outside XML") {
        std::string dir = uvtest::env_dir("UVGENA_FIXTURES");
        int scanned = 0, total = 0;
        for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
            if (entry.path().extension() != ".xml") continue;
            std::string body = read_file(entry.path());
            uvgena::gena::detail::XmlTree tree;
            auto text = std::string_view(body);
            while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) {
                text.remove_suffix(1);
            }
            ++total;
            if (!tree.parse(text) && tree.scanned()) ++scanned;
        }
        CHECK(total >= 10);
        CHECK(scanned == total);
    }

    TEST_CASE("a scanned tree keeps names and values as views, decoding only where needed") {
        std::string body = R"(<a x="plain" y="a&amp;b"><b>text</b><b>c&lt;d</b></a>)";
        uvgena::gena::detail::XmlTree tree;
        REQUIRE_FALSE(tree.parse(body));
        REQUIRE(tree.scanned());
        auto root = tree.root();
        CHECK(root.name() == "a");
        auto x = root.attribute("x");
        REQUIRE(x);
        CHECK(*x == "plain");
        CHECK(x->data() >= body.data());
        CHECK(x->data() < body.data() + body.size());  // no copy of an entity-free value
        CHECK(root.attribute("y") == "a&b");
        auto b = root.first_child_element();
        std::string text;
        b.append_text(text);
        CHECK(text == "text");
        text.clear();
        b.next_sibling_element().append_text(text);
        CHECK(text == "c<d");
        CHECK_FALSE(b.next_sibling_element().next_sibling_element());
    }
}
