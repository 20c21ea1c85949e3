// The process-wide choice of XML reader for event bodies. Its own header so that the XML
// tree (src/gena/xml_tree.cpp, which defines these) does not include the readers built on it.
#pragma once

namespace uvgena::gena {

/// Selects how NOTIFY bodies, LastChange and DIDL-Lite documents are read, process-wide:
/// true (the default) tries uvgena's own scanner first, a fast reader of the XML that
/// devices send, which hands any document outside its strict subset (DOCTYPE, unknown
/// entities, syntax errors, ...) to tinyxml2; false reads everything with tinyxml2. Both
/// give the same results (tested on every input of the fuzz corpus); the switch exists for
/// comparisons and as a safety valve. Thread-safe.
void set_xml_scanner(bool enabled) noexcept;
/// The current choice of set_xml_scanner.
bool xml_scanner() noexcept;

}  // namespace uvgena::gena
