// A canonical text dump of everything the NOTIFY body readers return for one input: the
// property set (variables, LastChange, DIDL-Lite of every variable and LastChange value) and
// the standalone LastChange / DIDL-Lite parsers. Two readers agree on an input when their
// dumps are equal (used to hold the XML scanner to tinyxml2's results, by a test and a fuzz
// target).
#pragma once

#include <string>
#include <string_view>

#include "uvgena/gena/event_body.hpp"

namespace uvtest {

inline void dump_text(std::string& out, std::string_view label, std::string_view text) {
    out.append(label).append("[").append(std::to_string(text.size())).append("]=");
    out.append(text).append("\n");
}

inline void dump_attributes(std::string& out, const std::vector<uvgena::gena::Attribute>& attrs) {
    for (const auto& a : attrs) {
        dump_text(out, "  attr-name", a.name);
        dump_text(out, "  attr-value", a.value);
    }
}

inline void dump_didl(std::string& out, const uvgena::Result<uvgena::gena::DidlLite>& didl) {
    if (!didl) {
        out += "didl-error " + didl.error().message() + "\n";
        return;
    }
    out += didl->repaired ? "didl repaired\n" : "didl\n";
    for (const auto& o : didl->objects) {
        out += o.is_container ? "container" : "item";
        out += o.restricted ? " restricted\n" : "\n";
        dump_text(out, " id", o.id);
        dump_text(out, " parent", o.parent_id);
        dump_text(out, " title", o.title);
        dump_text(out, " creator", o.creator);
        dump_text(out, " artist", o.artist);
        dump_text(out, " album", o.album);
        dump_text(out, " class", o.upnp_class);
        dump_text(out, " art", o.album_art_uri);
        dump_attributes(out, o.attributes);
        for (const auto& r : o.resources) {
            dump_text(out, " res", r.uri);
            dump_text(out, " protocol", r.protocol_info);
            dump_attributes(out, r.attributes);
        }
        for (const auto& e : o.elements) {
            dump_text(out, " element", e.name);
            dump_text(out, " ns", e.ns);
            dump_text(out, " text", e.text);
            dump_attributes(out, e.attributes);
        }
    }
}

inline void dump_last_change(std::string& out, const uvgena::Result<uvgena::gena::LastChange>& lc) {
    if (!lc) {
        out += "last-change-error " + lc.error().message() + "\n";
        return;
    }
    out += lc->repaired ? "last-change repaired\n" : "last-change\n";
    dump_text(out, " ns", lc->ns);
    for (const auto& inst : lc->instances) {
        dump_text(out, " instance", inst.element);
        dump_text(out, " id", inst.id);
        for (const auto& v : inst.values) {
            dump_text(out, "  name", v.name);
            dump_text(out, "  value", v.value);
            dump_attributes(out, v.attributes);
        }
    }
}

/// Everything the readers make of `bytes`.
inline std::string dump_readers(std::string_view bytes) {
    using namespace uvgena::gena;
    std::string out;
    dump_last_change(out, parse_last_change(bytes));
    dump_didl(out, parse_didl(bytes));
    auto parsed = PropertySet::parse(bytes);
    if (!parsed) {
        out += "property-set-error " + parsed.error().message() + "\n";
        return out;
    }
    const PropertySet& set = *parsed;
    out += set.trimmed() ? "property-set trimmed\n" : "property-set\n";
    for (const auto& v : set.variables()) {
        dump_text(out, "var", v.name);
        dump_text(out, " value", v.value);
        dump_text(out, " ns", v.ns);
        dump_didl(out, set.didl(v.name));
    }
    if (set.has_last_change()) {
        const auto& lc = set.last_change();
        dump_last_change(out, lc);
        if (lc) {
            for (const auto& inst : lc->instances) {
                for (const auto& v : inst.values) dump_didl(out, set.didl(v.name, inst.id));
            }
        }
    }
    return out;
}

}  // namespace uvtest
