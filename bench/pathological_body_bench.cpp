// Bounded work per NOTIFY body (issue 18, item 3): hostile body shapes of 1 MiB each (the
// listener's default max_body_bytes), parsed the way the listener parses a NOTIFY
// (PropertySet::parse with the default ParseOptions, LastChange included), next to a normal
// 1.2 KB LastChange body (gmediarender notify-0) parsed in the same run and scaled per MiB.
//
// Each shape is parsed as is (the scanner reads it, or refuses it for a bound) and with an
// unknown entity in a last element, which makes the scanner decline the document after
// reading it all so that the bounds pass and tinyxml2 read it again: the worst a peer can
// choose. A body refused for a bound is timed too (the time to refuse it).
//
// Prints per shape: size, outcome, ms per parse (median of the rounds), ms per MiB; then the
// worst ms of one body (target: <= 50 ms, i.e. no body stalls the loop longer) and the
// worst ms per MiB against the baseline's ms per MiB (a ratio: how much more a hostile byte
// costs than a normal one).
//
//   pathological_body_bench [--rounds N]     (default 7)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "uvgena/gena/event_body.hpp"
#include "uvgena/gena/event_builder.hpp"

using namespace uvgena::gena;

namespace {

constexpr std::size_t mib = 1u << 20;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string dir_from_env(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

const std::string ps_open = R"(<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">)";
const std::string ps_close = "</e:propertyset>";
// Makes the scanner decline after reading everything before it (tinyxml2 keeps it as text).
const std::string decline_tail = "<e:property><Z>&nbsp;</Z></e:property>";

/// A property set whose one property holds `unit` repeated up to about `size` bytes, as the
/// content of <V> (between `open` and `close`).
std::string fill(std::size_t size, const std::string& open, const std::string& unit,
                 const std::string& close) {
    std::string s = ps_open + "<e:property>" + open;
    std::string end = close + "</e:property>" + ps_close;
    while (s.size() + unit.size() + end.size() + decline_tail.size() <= size) s += unit;
    return s + end;
}

std::string with_decline(std::string body) {
    body.insert(body.rfind(ps_close), decline_tail);
    return body;
}

struct Shape {
    std::string name;
    std::string body;
};

std::string escaped_last_change(std::size_t size, const std::string& instance_fmt) {
    std::string inner = R"(<Event xmlns="urn:schemas-upnp-org:metadata-1-0/RCS/">)";
    std::string body;
    for (int id = 0;; ++id) {
        std::string inst = instance_fmt;
        for (std::size_t at; (at = inst.find("{}")) != std::string::npos;) {
            inst.replace(at, 2, std::to_string(id));
        }
        std::string next = inner + inst;
        if (ps_open.size() + escape_xml(next).size() + 200 > size) break;
        inner = std::move(next);
    }
    inner += "</Event>";
    return build_property_set({{"LastChange", inner}});
}

std::vector<Shape> shapes(const std::string& normal_avt) {
    std::vector<Shape> v;
    // One element with as many attributes as fit (the 90,000-attribute body of issue 18).
    {
        std::string s = ps_open + "<e:property><X";
        for (int i = 0; s.size() < mib - 100; ++i) s += " a" + std::to_string(i) + "=\"\"";
        v.push_back({"attributes_one_element", s + "/></e:property>" + ps_close});
    }
    // Elements each at the per-element attribute bound, as many as fit (refused at the
    // per-document bound), and the worst accepted mix: as many such elements as the
    // per-document bound allows (tinyxml2's quadratic part at its largest), then elements
    // with text up to the element bound, filling 1 MiB.
    {
        std::string element = "<X";
        for (std::size_t i = 0; i < max_xml_attributes_per_element; ++i) {
            element += " a" + std::to_string(i) + "=\"\"";
        }
        element += "/>";
        v.push_back({"attributes_dense", fill(mib, "<V>", element, "</V>")});
        // `size` bytes: the attribute-bound elements, then elements with text up to the
        // element bound (less a few for what is around them).
        auto mixed = [&](std::size_t size) {
            std::string inner;
            std::size_t elements = 8, attributes = 1;  // around them; xmlns:e
            while (attributes + max_xml_attributes_per_element <= max_xml_attributes) {
                inner += element;
                attributes += max_xml_attributes_per_element;
                ++elements;
            }
            std::size_t left = max_xml_elements - elements;
            std::size_t room = size - inner.size() - 300;
            std::string unit = "<b>" + std::string(room / left - 7, 'x') + "</b>";
            for (std::size_t i = 0; i < left; ++i) inner += unit;
            return inner;
        };
        v.push_back({"mixed_at_bounds",
                     ps_open + "<e:property><V>" + mixed(mib) + "</V></e:property>" + ps_close});
        // The same as an escaped LastChange that parses only after the repair pass (an
        // attribute without a value at its end): the nested document is read twice. The
        // escaping makes it longer: 1 MiB with it.
        std::string event = "<Event>" + mixed(mib * 7 / 10) + "<R bare/></Event>";
        v.push_back({"mixed_lastchange_repaired", build_property_set({{"LastChange", event}})});
    }
    // Siblings: empty ones (beyond the element bound) and ones at the element bound.
    v.push_back({"siblings_empty", fill(mib, "<V>", "<b/>", "</V>")});
    {
        // As many as the bound allows with the 3 around them and the 2 of decline_tail.
        std::size_t count = max_xml_elements - 6;
        std::string unit = "<b>" + std::string(mib / count - 8, 'x') + "</b>";
        std::string s = ps_open + "<e:property><V>";
        for (std::size_t i = 0; i < count; ++i) s += unit;
        v.push_back({"siblings_at_bound", s + "</V></e:property>" + ps_close});
    }
    // Deep nesting: chains as deep as the scanner reads (64 with the 3 around them), and as
    // deep as tinyxml2 reads (99), repeated.
    // Names long enough for 1 MiB to hold about max_xml_elements elements.
    const std::string name(mib / max_xml_elements / 2 - 2, 'd');
    for (int depth : {61, 96}) {
        std::string chain;
        for (int i = 0; i < depth; ++i) chain += "<" + name + ">";
        chain += "x";
        for (int i = 0; i < depth; ++i) chain += "</" + name + ">";
        v.push_back({"nesting_" + std::to_string(depth + 3), fill(mib, "<V>", chain, "</V>")});
    }
    // Entity-dense text, plain and as an escaped document (LastChange parses it again).
    v.push_back({"entities_text", fill(mib, "<V>", "&lt;&amp;&#x41;&#65;&gt;&quot;", "</V>")});
    v.push_back({"entities_lastchange",
                 fill(mib, "<LastChange>&lt;Event&gt;&lt;InstanceID val=&quot;0&quot;&gt;&lt;A>",
                      "&amp;lt;&amp;amp;&amp;#65;",
                      "&lt;/A&gt;&lt;/InstanceID&gt;&lt;/Event&gt;"
                      "</LastChange>")});
    // LastChange with thousands of instances (escaped, as devices send it).
    v.push_back({"lastchange_instances",
                 escaped_last_change(mib, R"(<InstanceID val="{}"><AVTransportURI val="http://)"
                                          R"(192.168.1.20:8200/MediaItems/{}.flac"/>)"
                                          R"(</InstanceID>)")});
    // Namespace declarations at the bound on the root, then as many properties as fit: every
    // property's name is resolved against all of them.
    {
        std::string root = R"(<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0")";
        for (std::size_t i = 1; i < max_xml_attributes_per_element; ++i) {
            root += " xmlns:n" + std::to_string(i) + "=\"u\"";
        }
        root += ">";
        std::string s = root;
        std::size_t props = (max_xml_elements - 4) / 2;
        std::string prop =
            "<e:property><e:" + std::string(mib / props - 30, 'V') + "/></e:property>";
        while (s.size() + prop.size() + 64 < mib) s += prop;
        v.push_back({"namespaces", s + ps_close});
    }
    // A normal captured body (Sonos AVTransport LastChange, 5.9 KB) with its properties
    // repeated to 1 MiB.
    if (!normal_avt.empty()) {
        auto first = normal_avt.find("<e:property>");
        auto last = normal_avt.rfind("</e:property>");
        if (first != std::string::npos && last != std::string::npos) {
            std::string props = normal_avt.substr(first, last + 13 - first);
            std::string s = normal_avt.substr(0, first);
            std::string end = normal_avt.substr(last + 13);
            while (s.size() + props.size() + end.size() + decline_tail.size() <= mib) s += props;
            v.push_back({"captured_avt_scaled", s + end});
        }
    }
    return v;
}

struct Timing {
    double median_ms = 0;
    std::string outcome;
};

Timing time_parse(const std::string& body, int rounds) {
    std::vector<double> ms;
    std::string outcome;
    for (int r = 0; r < rounds; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        auto parsed = PropertySet::parse(body);
        auto t1 = std::chrono::steady_clock::now();
        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        if (!parsed) {
            outcome = parsed.error().message();
        } else if (parsed->last_change() || parsed->variables().get("LastChange")) {
            outcome = parsed->last_change()
                          ? "ok, LastChange ok"
                          : "ok, LastChange: " + parsed->last_change().error().message();
        } else {
            outcome = "ok";
        }
    }
    std::sort(ms.begin(), ms.end());
    return {ms[ms.size() / 2], outcome};
}

}  // namespace

int main(int argc, char** argv) {
    int rounds = 7;
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::max(1, std::atoi(argv[++i]));
    }
    std::string fx = dir_from_env("UVGENA_FIXTURES", UVGENA_BENCH_FIXTURES) + "/soco/";
    std::string data = dir_from_env("UVGENA_TEST_DATA", UVGENA_BENCH_TEST_DATA);
    std::string raw = read_file(data + "/gmediarender/notify-0.http");
    if (raw.find("\r\n\r\n") == std::string::npos) {
        std::fprintf(stderr, "cannot read %s/gmediarender/notify-0.http\n", data.c_str());
        return 2;
    }
    std::string normal = raw.substr(raw.find("\r\n\r\n") + 4);
    std::string avt = read_file(fx + "nsd_avtransportlastchange.xml");
    if (avt.empty()) std::fprintf(stderr, "note: no %s, shape skipped\n", fx.c_str());

    // Baseline: the normal body, parsed enough times to be measurable, per MiB.
    double baseline_ms_per_mib = 0;
    {
        const int n = 2000;
        std::vector<double> per;
        for (int r = 0; r < rounds; ++r) {
            auto t0 = std::chrono::steady_clock::now();
            for (int i = 0; i < n; ++i) {
                auto parsed = PropertySet::parse(normal);
                if (!parsed || !parsed->last_change()) return 3;
            }
            auto t1 = std::chrono::steady_clock::now();
            per.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count() / n);
        }
        std::sort(per.begin(), per.end());
        baseline_ms_per_mib =
            per[per.size() / 2] * static_cast<double>(mib) / static_cast<double>(normal.size());
        std::printf("baseline: normal LastChange body %zu B: %.4f ms per parse, %.2f ms/MiB\n",
                    normal.size(), per[per.size() / 2], baseline_ms_per_mib);
    }

    std::printf("%-32s %9s %9s %9s  %s\n", "shape", "bytes", "ms", "ms/MiB", "outcome");
    double worst_ms = 0, worst_per_mib = 0;
    std::string worst_name;
    for (const auto& shape : shapes(avt)) {
        for (bool decline : {false, true}) {
            std::string name = shape.name + (decline ? "+declined" : "");
            std::string body = decline ? with_decline(shape.body) : shape.body;
            Timing t = time_parse(body, rounds);
            double per_mib =
                t.median_ms * static_cast<double>(mib) / static_cast<double>(body.size());
            std::printf("%-32s %9zu %9.2f %9.2f  %s\n", name.c_str(), body.size(), t.median_ms,
                        per_mib, t.outcome.c_str());
            if (t.median_ms > worst_ms) {
                worst_ms = t.median_ms;
                worst_name = name;
            }
            worst_per_mib = std::max(worst_per_mib, per_mib);
        }
    }
    std::printf(
        "worst: %s, %.2f ms for one body (target <= 50 ms); worst %.2f ms/MiB = %.1fx "
        "the normal body's %.2f ms/MiB\n",
        worst_name.c_str(), worst_ms, worst_per_mib, worst_per_mib / baseline_ms_per_mib,
        baseline_ms_per_mib);
    std::printf("RESULT pathological_body_worst_ms|%.3f|-|-|value<=50|ms\n", worst_ms);
    std::printf("RESULT pathological_body_worst_ms_per_MiB|%.3f|%.3f|%.3f|info|ms/MiB\n",
                worst_per_mib, baseline_ms_per_mib, worst_per_mib / baseline_ms_per_mib);
    return 0;
}
