// How XML is read for event bodies: the process-wide choice of reader and the bounds on a
// document's shape. Its own header so that the XML tree (src/gena/xml_tree.cpp, which
// defines the switch and enforces the bounds) does not include the readers built on it.
#pragma once

#include <cstddef>

#include "uvgena/core/export.hpp"

namespace uvgena::gena {

/// Selects how NOTIFY bodies, LastChange and DIDL-Lite documents are read, process-wide:
/// true (the default) tries uvgena's own scanner first, a fast reader of the XML that
/// devices send, which hands any document outside its strict subset (DOCTYPE, unknown
/// entities, syntax errors, ...) to tinyxml2; false reads everything with tinyxml2. Both
/// give the same results (tested on every input of the fuzz corpus); the switch exists for
/// comparisons and as a safety valve. Thread-safe.
UVGENA_API void set_xml_scanner(bool enabled) noexcept;
/// The current choice of set_xml_scanner.
UVGENA_API bool xml_scanner() noexcept;

/// Bounds on the shape of every XML document read here (property set, LastChange,
/// DIDL-Lite), so that reading any body costs time linear in its size, whichever reader
/// reads it. Why: tinyxml2 (which reads every document uvgena's scanner declines, and a
/// peer can make it decline any document) checks each new attribute against all earlier
/// ones of its element, so an element's cost grows with the square of its attributes
/// (90,000 attributes on one element of a 979 KB body took 6 s), and it spends about 0.2 us
/// per attribute and 0.5 us per element besides. The bounds are checked before either
/// reader builds anything (the scanner as it reads, a counting pass before tinyxml2) and
/// count the same way, so both readers refuse the same documents; a NOTIFY whose body is
/// refused is still delivered, with Event::parse_error set. With them, the worst 1 MiB body
/// found costs about 25 ms (bench/pathological_body_bench). Real devices stay far below: at most
/// about 30 attributes on an element (a Sonos ZoneGroupMember; a DIDL-Lite <res> about 12),
/// a few hundred to a few thousand elements and attributes in a body.
///
/// Most attributes one element may have; beyond, errc::xml_too_many_attributes.
inline constexpr std::size_t max_xml_attributes_per_element = 256;
/// Most attributes one document may have, all elements together; beyond,
/// errc::xml_too_many_attributes.
inline constexpr std::size_t max_xml_attributes = 16384;
/// Most elements one document may have; beyond, errc::xml_too_many_elements.
inline constexpr std::size_t max_xml_elements = 16384;

}  // namespace uvgena::gena
