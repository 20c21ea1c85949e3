// A read-only XML element tree for the NOTIFY body readers (property set, LastChange,
// DIDL-Lite). Built by a fast scanner for the documents devices actually send, or, for any
// document outside the scanner's subset, by tinyxml2 (which then also reports the errors).
//
// Why a scanner of our own: tinyxml2 builds a DOM of heap nodes and decodes entities with a
// strncmp per candidate entity; a 1.5 KB LastChange event costs it about 110k instructions,
// more than everything else in the receive path together. The scanner reads the same bytes
// once, keeps names and values as views into the input (decoding only where there is an
// entity or a CR), and builds flat arrays.
//
// Equivalence: the scanner accepts only a strict subset of XML whose meaning is fixed
// (elements, attributes, text, the five predefined entities, character references of real
// code points, CDATA, comments, leading <?xml ...?> declarations), decoded exactly as tinyxml2
// decodes it (newline normalization included, whitespace-only text between markup dropped).
// Anything else (DOCTYPE, unknown entities, odd character references, NUL bytes, a BOM,
// deep nesting, any syntax error) declines, and the same text goes to tinyxml2, whose tree is
// converted. So errors, repairs and tinyxml2's leniencies stay exactly as before; tests and a
// fuzz target compare both paths on every input.
//
// Bounded work: the bounds on attributes per element and elements per document
// (event_body.hpp) are checked by the scanner as it reads and, for a document it declines
// or when it is off, by one counting pass before tinyxml2 (whose duplicate-attribute check
// is quadratic per element). Both count the same way, so a document is refused for a bound
// whichever reader is chosen. The scanner finds duplicates of a many-attribute element by
// sorting its names, so its own work stays linear too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tinyxml2 {
class XMLDocument;
class XMLElement;
}  // namespace tinyxml2

namespace uvgena::gena::detail {

/// An attribute: qualified name as written, decoded value.
struct XmlAttribute {
    std::string_view name;
    std::string_view value;
};

class XmlTree;

/// An element of an XmlTree, or no element (false). Cheap to copy; valid while the tree is.
class XmlElement {
  public:
    XmlElement() = default;
    XmlElement(const XmlTree* tree, std::uint32_t index) noexcept : tree_(tree), index_(index) {}

    explicit operator bool() const noexcept { return tree_ != nullptr; }
    /// Qualified name as written ("e:property").
    std::string_view name() const noexcept;
    /// The first child element, or none.
    XmlElement first_child_element() const noexcept;
    /// The next sibling element, or none.
    XmlElement next_sibling_element() const noexcept;
    /// Attributes in document order.
    std::span<const XmlAttribute> attributes() const noexcept;
    /// The value of the attribute with exactly this qualified name.
    std::optional<std::string_view> attribute(std::string_view qname) const noexcept;
    /// Appends the concatenated direct text children (CDATA included).
    void append_text(std::string& out) const;

  private:
    const XmlTree* tree_ = nullptr;
    std::uint32_t index_ = 0;
};

/// A parsed document. Views may point into the parsed text: keep it alive while reading.
class XmlTree {
  public:
    XmlTree();
    ~XmlTree();
    XmlTree(const XmlTree&) = delete;
    XmlTree& operator=(const XmlTree&) = delete;

    /// Parses `text` (its bytes must outlive the reading of the tree). Errors:
    /// xml_malformed, xml_too_deep, xml_doctype_refused, and xml_too_many_attributes /
    /// xml_too_many_elements beyond max_xml_attributes_per_element / max_xml_elements
    /// (event_body.hpp), refused alike whichever reader is chosen, before tinyxml2 runs.
    /// Costs time linear in the size of `text`.
    std::error_code parse(std::string_view text);
    /// The same on a text the tree keeps (for texts made on the fly, e.g. repaired ones).
    std::error_code parse_owned(std::string text);
    /// The root element (none before a successful parse).
    XmlElement root() const noexcept;
    /// True when the last parse was done by the scanner (false: by tinyxml2).
    bool scanned() const noexcept { return scanned_; }
    /// Forgets the document, keeping the arrays of a small one for the next parse.
    void trim();

  private:
    friend class XmlElement;
    static constexpr std::uint32_t none = 0xffffffffu;
    struct Node {
        std::string_view name;  ///< Element name; empty for a text node.
        std::string_view text;  ///< Text node's decoded text.
        std::uint32_t attr_begin = 0, attr_end = 0;
        std::uint32_t first_child = none, next_sibling = none;
        bool is_text = false;
    };

    /// What the scanner made of a document: a tree, not its subset (tinyxml2's turn), or a
    /// bound exceeded (refusal_ says which; tinyxml2 is not tried).
    enum class Scan { accepted, declined, refused };

    void clear();
    Scan scan(std::string_view text);
    bool decode(std::string_view raw, bool entities, std::string_view& out);
    std::uint32_t add_node(std::uint32_t parent, std::uint32_t& last_child, Node node);
    void convert(const tinyxml2::XMLElement* e, std::uint32_t parent, std::uint32_t& last_child);

    std::vector<Node> nodes_;
    std::vector<XmlAttribute> attributes_;
    std::vector<std::string_view> names_;  // scratch: one element's attribute names, sorted
    std::error_code refusal_;
    std::unique_ptr<char[]> decoded_;  // decoded texts; sized once per parse, never moves
    std::size_t decoded_size_ = 0, decoded_capacity_ = 0, decode_limit_ = 0;
    std::string owned_;
    std::unique_ptr<tinyxml2::XMLDocument> doc_;  // backs the views of a converted tree
    std::uint32_t root_ = none;
    bool scanned_ = false;
};

/// A tree borrowed from this thread's spares, given back (trimmed) when the lease ends, so
/// that reading an event does not allocate its arrays each time. Leases nest (a property
/// set's tree is held while its LastChange is parsed).
class XmlTreeLease {
  public:
    XmlTreeLease();
    ~XmlTreeLease();
    XmlTreeLease(const XmlTreeLease&) = delete;
    XmlTreeLease& operator=(const XmlTreeLease&) = delete;
    XmlTree& operator*() const noexcept { return *tree_; }
    XmlTree* operator->() const noexcept { return tree_.get(); }

  private:
    std::unique_ptr<XmlTree> tree_;
};

}  // namespace uvgena::gena::detail
