// The NOTIFY body readers' XML tree: the scanner, and tinyxml2 for what it declines (see
// xml_tree.hpp for why and for the equivalence rule).
#include "gena/xml_tree.hpp"

#include <tinyxml2.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "uvgena/gena/error.hpp"
#include "uvgena/gena/xml_scanner.hpp"

namespace uvgena::gena {

namespace {
std::atomic<bool> g_scanner_enabled{true};
}  // namespace

void set_xml_scanner(bool enabled) noexcept {
    g_scanner_enabled.store(enabled, std::memory_order_relaxed);
}

bool xml_scanner() noexcept {
    return g_scanner_enabled.load(std::memory_order_relaxed);
}

namespace detail {

namespace {

// tinyxml2's character classes (XMLUtil::IsWhiteSpace / IsNameStartChar / IsNameChar in the
// "C" locale): the scanner must split names and skip whitespace exactly where it does.
enum : std::uint8_t { space_class = 1, name_start_class = 2, name_class = 4 };

constexpr std::array<std::uint8_t, 256> make_classes() {
    std::array<std::uint8_t, 256> t{};
    for (int c = 0; c < 256; ++c) {
        bool start =
            c >= 128 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == ':' || c == '_';
        bool name = start || (c >= '0' && c <= '9') || c == '.' || c == '-';
        bool space = c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
        t[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(
            (space ? space_class : 0) | (start ? name_start_class : 0) | (name ? name_class : 0));
    }
    return t;
}

constexpr std::array<std::uint8_t, 256> char_classes = make_classes();

constexpr bool in_class(char c, std::uint8_t cls) noexcept {
    return (char_classes[static_cast<unsigned char>(c)] & cls) != 0;
}
constexpr bool is_space(char c) noexcept {
    return in_class(c, space_class);
}
constexpr bool is_name_start(char c) noexcept {
    return in_class(c, name_start_class);
}
constexpr bool is_name_char(char c) noexcept {
    return in_class(c, name_class);
}

bool all_space(std::string_view s) noexcept {
    return std::all_of(s.begin(), s.end(), [](char c) { return is_space(c); });
}

/// Parses `&#...;` at s[i] (s[i] == '&', s[i+1] == '#'): the code point and the index after
/// ';', or false for anything but 1-7 decimal / 1-6 hex digits naming U+0001..U+10FFFF.
bool char_ref(std::string_view s, std::size_t i, std::uint32_t& cp, std::size_t& after) {
    std::size_t j = i + 2;
    bool hex = j < s.size() && s[j] == 'x';
    if (hex) ++j;
    std::size_t digits = 0;
    std::uint32_t value = 0;
    for (; j < s.size() && s[j] != ';'; ++j, ++digits) {
        char c = s[j];
        std::uint32_t d;
        if (c >= '0' && c <= '9') {
            d = static_cast<std::uint32_t>(c - '0');
        } else if (hex && c >= 'a' && c <= 'f') {
            d = static_cast<std::uint32_t>(c - 'a' + 10);
        } else if (hex && c >= 'A' && c <= 'F') {
            d = static_cast<std::uint32_t>(c - 'A' + 10);
        } else {
            return false;
        }
        if (digits >= (hex ? 6u : 7u)) return false;
        value = value * (hex ? 16u : 10u) + d;
    }
    if (j >= s.size() || digits == 0 || value == 0 || value > 0x10FFFF) return false;
    cp = value;
    after = j + 1;
    return true;
}

/// UTF-8 of a code point, as tinyxml2's ConvertUTF32ToUTF8 writes it (surrogates included).
std::size_t put_utf8(std::uint32_t cp, char* out) noexcept {
    if (cp < 0x80) {
        out[0] = static_cast<char>(cp);
        return 1;
    }
    if (cp < 0x800) {
        out[0] = static_cast<char>(0xC0 | (cp >> 6));
        out[1] = static_cast<char>(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = static_cast<char>(0xE0 | (cp >> 12));
        out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out[2] = static_cast<char>(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = static_cast<char>(0xF0 | (cp >> 18));
    out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[3] = static_cast<char>(0x80 | (cp & 0x3F));
    return 4;
}

/// The index of the first `quote`, '<', '&' or '\r' at or after `i` in an attribute value
/// (s.size() if none): one pass instead of a search for each (the values of a LastChange are
/// mostly a few bytes long, where four memchr calls cost more than the bytes).
std::size_t find_value_stop(std::string_view s, std::size_t i, char quote) noexcept {
    const std::size_t n = s.size();
#if defined(__SSE2__)
    const __m128i q = _mm_set1_epi8(quote);
    const __m128i lt = _mm_set1_epi8('<');
    const __m128i amp = _mm_set1_epi8('&');
    const __m128i cr = _mm_set1_epi8('\r');
    for (; i + 16 <= n; i += 16) {
        __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(chunk, q), _mm_cmpeq_epi8(chunk, lt)),
                                   _mm_or_si128(_mm_cmpeq_epi8(chunk, amp), _mm_cmpeq_epi8(chunk, cr)));
        auto mask = static_cast<unsigned>(_mm_movemask_epi8(hit));
        if (mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(mask));
    }
#endif
    for (; i < n; ++i) {
        char c = s[i];
        if (c == quote || c == '<' || c == '&' || c == '\r') return i;
    }
    return n;
}

/// The index of the first '&' or '\r' at or after `i` (s.size() if none).
std::size_t find_entity_or_cr(std::string_view s, std::size_t i) noexcept {
    const std::size_t n = s.size();
#if defined(__SSE2__)
    const __m128i amp = _mm_set1_epi8('&');
    const __m128i cr = _mm_set1_epi8('\r');
    for (; i + 16 <= n; i += 16) {
        __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
        auto mask = static_cast<unsigned>(_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(chunk, amp), _mm_cmpeq_epi8(chunk, cr))));
        if (mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(mask));
    }
#endif
    for (; i < n; ++i) {
        if (s[i] == '&' || s[i] == '\r') return i;
    }
    return n;
}

/// The predefined entity at s[i] ('&'), or 0 when it is none of the five.
char named_entity(std::string_view s, std::size_t i, std::size_t& after) noexcept {
    // Compared in place (an escaped LastChange has an entity every few bytes): no substr,
    // and the fixed-length compares are inlined.
    const char* c = s.data() + i + 1;
    const std::size_t available = s.size() - i - 1;
    if (available < 3) return '\0';
    switch (c[0]) {
        case 'l':
            if (c[1] == 't' && c[2] == ';') {
                after = i + 4;
                return '<';
            }
            return '\0';
        case 'g':
            if (c[1] == 't' && c[2] == ';') {
                after = i + 4;
                return '>';
            }
            return '\0';
        case 'q':
            if (available >= 5 && std::memcmp(c, "quot;", 5) == 0) {
                after = i + 6;
                return '"';
            }
            return '\0';
        case 'a':
            if (available >= 4 && std::memcmp(c, "amp;", 4) == 0) {
                after = i + 5;
                return '&';
            }
            if (available >= 5 && std::memcmp(c, "apos;", 5) == 0) {
                after = i + 6;
                return '\'';
            }
            return '\0';
        default:
            return '\0';
    }
}

/// The bounds on attributes per element and elements per document, checked on `s` before
/// tinyxml2 sees it (its duplicate-attribute check costs the square of an element's
/// attribute count). Reads the markup as tinyxml2 and the scanner do (text up to '<',
/// `<?...?>`, `<!--...-->`, `<![CDATA[...]]>`, `<!...>`, start tags of name and
/// name="value" / name='value' attributes), counting an element at its name and an
/// attribute at its closing quote; where a tag stops making sense the counting of its
/// attributes stops (the parser will refuse it). On every document the scanner reads, the
/// counts are the scanner's, and the first bound exceeded is the one the scanner reports.
/// Once TINYXML2_MAX_ELEMENT_DEPTH elements are open, tinyxml2 has failed with its depth
/// error by that point (an element's content is parsed one level deeper), so the counting
/// stops and xml_too_deep stays the answer for deep documents, as before. One pass, no
/// allocation.
std::error_code check_bounds(std::string_view s) noexcept {
    // tinyxml2 reads a C string: nothing after a NUL exists for it.
    if (const void* nul = std::memchr(s.data(), '\0', s.size())) {
        s = s.substr(0, static_cast<std::size_t>(static_cast<const char*>(nul) - s.data()));
    }
    const std::size_t n = s.size();
    std::size_t elements = 0, all_attributes = 0;
    int open = 0;  // elements whose start tag ended with '>' minus end tags
    std::size_t i = 0;
    auto skip_past = [&](std::string_view end, std::size_t from) {
        auto at = s.find(end, from);
        i = at == std::string_view::npos ? n : at + end.size();
    };
    auto skip_space = [&] {
        while (i < n && is_space(s[i])) ++i;
    };
    auto skip_name = [&] {
        if (i >= n || !is_name_start(s[i])) return false;
        ++i;
        while (i < n && is_name_char(s[i])) ++i;
        return true;
    };
    while (i < n) {
        const void* lt = std::memchr(s.data() + i, '<', n - i);
        if (lt == nullptr) break;
        std::size_t at = static_cast<std::size_t>(static_cast<const char*>(lt) - s.data());
        i = at + 1;
        if (i >= n) break;
        std::string_view rest = s.substr(at);
        if (s[i] == '?') {
            skip_past("?>", at + 2);
            continue;
        }
        if (s[i] == '!') {
            if (rest.substr(0, 4) == "<!--") {
                skip_past("-->", at + 4);
            } else if (rest.substr(0, 9) == "<![CDATA[") {
                skip_past("]]>", at + 9);
            } else {
                skip_past(">", at + 2);
            }
            continue;
        }
        if (s[i] == '/') {
            if (open > 0) --open;
            continue;
        }
        if (!skip_name()) continue;  // a '<' that starts nothing
        if (++elements > max_xml_elements) return errc::xml_too_many_elements;
        std::size_t attributes = 0;
        for (;;) {
            skip_space();
            if (!skip_name()) break;  // '>', '/>' or an error
            skip_space();
            if (i >= n || s[i] != '=') break;
            ++i;
            skip_space();
            if (i >= n || (s[i] != '"' && s[i] != '\'')) break;
            char quote = s[i++];
            auto close = s.find(quote, i);
            if (close == std::string_view::npos) return {};  // unterminated: refused anyway
            if (++attributes > max_xml_attributes_per_element ||
                ++all_attributes > max_xml_attributes) {
                return errc::xml_too_many_attributes;
            }
            i = close + 1;
        }
        if (i < n && s[i] == '>' && ++open >= TINYXML2_MAX_ELEMENT_DEPTH) return {};
    }
    return {};
}

}  // namespace

// --------------------------------------------------------------------------------------
// XmlElement

std::string_view XmlElement::name() const noexcept {
    return tree_->nodes_[index_].name;
}

XmlElement XmlElement::first_child_element() const noexcept {
    for (auto i = tree_->nodes_[index_].first_child; i != XmlTree::none;
         i = tree_->nodes_[i].next_sibling) {
        if (!tree_->nodes_[i].is_text) return {tree_, i};
    }
    return {};
}

XmlElement XmlElement::next_sibling_element() const noexcept {
    for (auto i = tree_->nodes_[index_].next_sibling; i != XmlTree::none;
         i = tree_->nodes_[i].next_sibling) {
        if (!tree_->nodes_[i].is_text) return {tree_, i};
    }
    return {};
}

std::span<const XmlAttribute> XmlElement::attributes() const noexcept {
    const auto& n = tree_->nodes_[index_];
    return {tree_->attributes_.data() + n.attr_begin, n.attr_end - n.attr_begin};
}

std::optional<std::string_view> XmlElement::attribute(std::string_view qname) const noexcept {
    for (const auto& a : attributes()) {
        if (a.name == qname) return a.value;
    }
    return std::nullopt;
}

void XmlElement::append_text(std::string& out) const {
    for (auto i = tree_->nodes_[index_].first_child; i != XmlTree::none;
         i = tree_->nodes_[i].next_sibling) {
        if (tree_->nodes_[i].is_text) out += tree_->nodes_[i].text;
    }
}

// --------------------------------------------------------------------------------------
// XmlTree

XmlTree::XmlTree() = default;
XmlTree::~XmlTree() = default;

XmlElement XmlTree::root() const noexcept {
    return root_ == none ? XmlElement{} : XmlElement{this, root_};
}

void XmlTree::clear() {
    nodes_.clear();
    attributes_.clear();
    decoded_size_ = 0;
    root_ = none;
    scanned_ = false;
    if (doc_) doc_->Clear();
}

void XmlTree::trim() {
    // Arrays and buffers of up to this many bytes stay for the next parse; a big document's
    // are freed rather than held by an idle thread.
    constexpr std::size_t keep_bytes = 64 * 1024;
    clear();
    doc_.reset();
    owned_ = std::string();
    if (decoded_capacity_ > keep_bytes) {
        decoded_.reset();
        decoded_capacity_ = 0;
    }
    if (nodes_.capacity() * sizeof(Node) > keep_bytes) std::vector<Node>().swap(nodes_);
    if (attributes_.capacity() * sizeof(XmlAttribute) > keep_bytes) {
        std::vector<XmlAttribute>().swap(attributes_);
    }
}

namespace {
// A few spare trees per thread: enough for the nesting of one read (property set, then
// LastChange or DIDL-Lite), never more than a handful of small buffers.
constexpr std::size_t max_spare_trees = 4;
thread_local std::vector<std::unique_ptr<XmlTree>> t_spare_trees;
}  // namespace

XmlTreeLease::XmlTreeLease() {
    t_spare_trees.reserve(max_spare_trees);  // so that giving back never allocates
    if (t_spare_trees.empty()) {
        tree_ = std::make_unique<XmlTree>();
    } else {
        tree_ = std::move(t_spare_trees.back());
        t_spare_trees.pop_back();
    }
}

XmlTreeLease::~XmlTreeLease() {
    tree_->trim();
    if (t_spare_trees.size() < max_spare_trees) t_spare_trees.push_back(std::move(tree_));
}

std::uint32_t XmlTree::add_node(std::uint32_t parent, std::uint32_t& last_child, Node node) {
    auto index = static_cast<std::uint32_t>(nodes_.size());
    nodes_.push_back(node);
    if (parent != none) {
        if (last_child == none) {
            nodes_[parent].first_child = index;
        } else {
            nodes_[last_child].next_sibling = index;
        }
        last_child = index;
    }
    return index;
}

bool XmlTree::decode(std::string_view raw, bool entities, std::string_view& out) {
    // One pass for both bytes (texts are mostly short, where each memchr call costs more
    // than the bytes it reads).
    const std::size_t first_stop = find_entity_or_cr(raw, 0);
    if (first_stop == raw.size() || (!entities && raw[first_stop] == '&' &&
                                     std::memchr(raw.data() + first_stop, '\r',
                                                 raw.size() - first_stop) == nullptr)) {
        out = raw;  // the common case: a view into the input, no copy
        return true;
    }
    // Decoding never lengthens a text (an entity or a reference is longer than what it
    // stands for), so a buffer the size of the input holds every decoded text. It is made
    // at the first text that needs decoding, before any view into it exists.
    if (decoded_capacity_ < decode_limit_) {
        if (decoded_size_ != 0) return false;
        decoded_.reset(new char[decode_limit_]);
        decoded_capacity_ = decode_limit_;
    }
    if (decoded_size_ + raw.size() > decoded_capacity_) return false;
    char* const begin = decoded_.get() + decoded_size_;
    char* q = begin;
    std::size_t i = 0;
    // One entity or reference at raw[i] ('&'), written at q; false if the scanner declines it.
    auto entity = [&] {
        std::size_t after = 0;
        if (i + 1 < raw.size() && raw[i + 1] == '#') {
            std::uint32_t cp = 0;
            if (!char_ref(raw, i, cp, after)) return false;
            q += put_utf8(cp, q);
        } else {
            char v = named_entity(raw, i, after);
            if (v == 0) return false;  // tinyxml2 has its own handling of unknown ones
            *q++ = v;
        }
        i = after;
        return true;
    };
    const bool has_cr =
        raw[first_stop] == '\r' ||
        std::memchr(raw.data() + first_stop, '\r', raw.size() - first_stop) != nullptr;
    if (!has_cr) {
        // Entities only (the usual escaped LastChange or topology text): copy the runs
        // between them whole.
        while (i < raw.size()) {
#if defined(__SSE2__)
            // An escaped LastChange has an entity every few bytes, so a memchr and a memcpy
            // per run cost more than the runs: 16 bytes are copied per step and q advances
            // to the '&' among them. Writing 16 bytes at q stays inside this text's share of
            // the buffer: q - begin <= i, and i + 16 <= raw.size().
            const __m128i ampersand = _mm_set1_epi8('&');
            bool found = false;
            while (i + 16 <= raw.size()) {
                __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(raw.data() + i));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(q), chunk);
                auto mask =
                    static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, ampersand)));
                if (mask != 0) {
                    auto run = static_cast<std::size_t>(__builtin_ctz(mask));
                    q += run;
                    i += run;
                    found = true;
                    break;
                }
                q += 16;
                i += 16;
            }
            if (found) {
                if (!entity()) return false;
                continue;
            }
#endif
            const void* amp = std::memchr(raw.data() + i, '&', raw.size() - i);
            std::size_t run =
                amp != nullptr
                    ? static_cast<std::size_t>(static_cast<const char*>(amp) - (raw.data() + i))
                    : raw.size() - i;
            std::memcpy(q, raw.data() + i, run);
            q += run;
            i += run;
            if (amp != nullptr && !entity()) return false;
        }
    } else {
        while (i < raw.size()) {
            char c = raw[i];
            if (c == '\r' || c == '\n') {
                // tinyxml2: CR LF, LF CR and CR alone all become one LF.
                char pair = c == '\r' ? '\n' : '\r';
                i += (i + 1 < raw.size() && raw[i + 1] == pair) ? 2 : 1;
                *q++ = '\n';
            } else if (c == '&' && entities) {
                if (!entity()) return false;
            } else {
                *q++ = c;
                ++i;
            }
        }
    }
    auto length = static_cast<std::size_t>(q - begin);
    decoded_size_ += length;
    out = std::string_view(begin, length);
    return true;
}

XmlTree::Scan XmlTree::scan(std::string_view s) {
    constexpr int max_depth = 64;  // deeper documents go to tinyxml2 and its own limit
    // Up to this many attributes an element's duplicates are found by comparing each with
    // the earlier ones; beyond, by sorting the names once at the end of the tag (the
    // comparisons would cost the square of the count).
    constexpr std::size_t few_attributes = 16;
    if (s.size() >= none / 2) return Scan::declined;
    if (std::memchr(s.data(), '\0', s.size()) != nullptr) return Scan::declined;
    decode_limit_ = s.size();
    std::uint32_t open[max_depth];
    std::uint32_t last_child[max_depth + 1];
    last_child[0] = none;
    int depth = 0;
    std::size_t elements = 0;
    bool prolog = true;  // only declarations so far at the document level
    const std::size_t n = s.size();
    std::size_t i = 0;
    auto skip_space = [&] {
        while (i < n && is_space(s[i])) ++i;
    };
    auto read_name = [&](std::string_view& name) {
        std::size_t start = i;
        if (i >= n || !is_name_start(s[i])) return false;
        ++i;
        while (i < n && is_name_char(s[i])) ++i;
        name = s.substr(start, i - start);
        return true;
    };

    if (s.substr(0, 3) == "\xEF\xBB\xBF") return Scan::declined;
    while (i < n) {
        if (s[i] != '<') {
            auto lt = s.find('<', i);
            std::string_view run = s.substr(i, lt == std::string_view::npos ? n - i : lt - i);
            if (!all_space(run)) {
                // Text: only inside an element, and it must be followed by markup.
                if (depth == 0 || lt == std::string_view::npos) return Scan::declined;
                Node text;
                text.is_text = true;
                if (!decode(run, true, text.text)) return Scan::declined;
                add_node(open[depth - 1], last_child[depth], text);
            }
            if (lt == std::string_view::npos) break;
            i = lt;
            continue;
        }
        if (i + 1 >= n) return Scan::declined;
        char next = s[i + 1];
        if (next == '/') {  // an end tag: exactly </name> or </name >
            if (depth == 0) return Scan::declined;
            i += 2;
            std::string_view name;
            if (!read_name(name) || name != nodes_[open[depth - 1]].name) return Scan::declined;
            skip_space();
            if (i >= n || s[i] != '>') return Scan::declined;
            ++i;
            --depth;
            continue;
        }
        if (next == '?') {  // a declaration: only before everything else
            if (depth != 0 || !prolog) return Scan::declined;
            auto end = s.find("?>", i + 2);
            if (end == std::string_view::npos) return Scan::declined;
            i = end + 2;
            continue;
        }
        if (next == '!') {
            if (s.substr(i, 4) == "<!--") {
                auto end = s.find("-->", i + 4);
                if (end == std::string_view::npos) return Scan::declined;
                i = end + 3;
                prolog = false;
                continue;
            }
            if (s.substr(i, 9) == "<![CDATA[" && depth > 0) {
                auto end = s.find("]]>", i + 9);
                if (end == std::string_view::npos) return Scan::declined;
                Node text;
                text.is_text = true;
                if (!decode(s.substr(i + 9, end - i - 9), false, text.text)) return Scan::declined;
                add_node(open[depth - 1], last_child[depth], text);
                i = end + 3;
                continue;
            }
            return Scan::declined;  // DOCTYPE, ENTITY and the like: tinyxml2 decides
        }
        // A start tag.
        if (depth == 0 && root_ != none) return Scan::declined;  // a second root
        prolog = false;
        ++i;
        Node element;
        if (!read_name(element.name)) return Scan::declined;
        if (++elements > max_xml_elements) {
            refusal_ = errc::xml_too_many_elements;
            return Scan::refused;
        }
        element.attr_begin = static_cast<std::uint32_t>(attributes_.size());
        bool empty_element = false;
        for (;;) {
            skip_space();
            if (i >= n) return Scan::declined;
            if (s[i] == '>') {
                ++i;
                break;
            }
            if (s[i] == '/') {
                if (i + 1 >= n || s[i + 1] != '>') return Scan::declined;
                i += 2;
                empty_element = true;
                break;
            }
            XmlAttribute attr;
            if (!read_name(attr.name)) return Scan::declined;
            skip_space();
            if (i >= n || s[i] != '=') return Scan::declined;
            ++i;
            skip_space();
            if (i >= n || (s[i] != '"' && s[i] != '\'')) return Scan::declined;
            char quote = s[i++];
            bool needs_decoding = false;
            std::size_t close = i;
            for (;;) {
                close = find_value_stop(s, close, quote);
                if (close == n) return Scan::declined;  // no closing quote
                char c = s[close];
                if (c == quote) break;
                if (c == '<') return Scan::declined;
                needs_decoding = true;  // '&' or '\r'
                ++close;
            }
            // Counted where check_bounds counts it, so that both report the same bound.
            std::size_t count = attributes_.size() - element.attr_begin;
            if (count + 1 > max_xml_attributes_per_element ||
                attributes_.size() + 1 > max_xml_attributes) {
                refusal_ = errc::xml_too_many_attributes;
                return Scan::refused;
            }
            if (!needs_decoding) {
                attr.value = s.substr(i, close - i);  // what decode would give, without its scans
            } else if (!decode(s.substr(i, close - i), true, attr.value)) {
                return Scan::declined;
            }
            i = close + 1;
            if (count < few_attributes) {
                for (auto k = element.attr_begin; k < attributes_.size(); ++k) {
                    // A duplicate is an error for tinyxml2: let it report it.
                    if (attributes_[k].name == attr.name) return Scan::declined;
                }
            }
            attributes_.push_back(attr);
        }
        element.attr_end = static_cast<std::uint32_t>(attributes_.size());
        if (element.attr_end - element.attr_begin > few_attributes) {
            names_.clear();
            for (auto k = element.attr_begin; k < element.attr_end; ++k) {
                names_.push_back(attributes_[k].name);
            }
            std::sort(names_.begin(), names_.end());
            if (std::adjacent_find(names_.begin(), names_.end()) != names_.end()) {
                return Scan::declined;
            }
        }
        std::uint32_t parent = depth > 0 ? open[depth - 1] : none;
        auto index = add_node(parent, last_child[depth], element);
        if (depth == 0) root_ = index;
        if (!empty_element) {
            if (depth + 1 > max_depth) return Scan::declined;
            open[depth++] = index;
            last_child[depth] = none;
        }
    }
    return depth == 0 && root_ != none ? Scan::accepted : Scan::declined;
}

void XmlTree::convert(const tinyxml2::XMLElement* e, std::uint32_t parent,
                      std::uint32_t& last_child) {
    Node element;
    element.name = e->Name();
    element.attr_begin = static_cast<std::uint32_t>(attributes_.size());
    for (auto* a = e->FirstAttribute(); a != nullptr; a = a->Next()) {
        attributes_.push_back({a->Name(), a->Value()});
    }
    element.attr_end = static_cast<std::uint32_t>(attributes_.size());
    auto index = add_node(parent, last_child, element);
    if (parent == none) root_ = index;
    std::uint32_t my_last = none;
    for (auto* c = e->FirstChild(); c != nullptr; c = c->NextSibling()) {
        if (auto* child = c->ToElement()) {
            convert(child, index, my_last);
        } else if (auto* t = c->ToText()) {
            Node text;
            text.is_text = true;
            text.text = t->Value();
            add_node(index, my_last, text);
        }
    }
}

std::error_code XmlTree::parse(std::string_view text) {
    clear();
    if (xml_scanner()) {
        switch (scan(text)) {
            case Scan::accepted:
                scanned_ = true;
                return {};
            case Scan::refused: {
                std::error_code refusal = refusal_;
                clear();
                return refusal;
            }
            case Scan::declined:
                break;
        }
    }
    clear();
    // Before tinyxml2 builds anything: the scanner declines documents without reading them
    // to the end, and tinyxml2's work on an element grows with the square of its attributes.
    if (auto ec = check_bounds(text)) return ec;
    if (!doc_) doc_ = std::make_unique<tinyxml2::XMLDocument>();
    tinyxml2::XMLError err = doc_->Parse(text.data(), text.size());
    switch (err) {
        case tinyxml2::XML_SUCCESS:
            break;
        case tinyxml2::XML_ELEMENT_DEPTH_EXCEEDED:
            return errc::xml_too_deep;
        default:
            return errc::xml_malformed;
    }
    for (auto* n = doc_->FirstChild(); n != nullptr; n = n->NextSibling()) {
        // Only <!DOCTYPE ...> / <!ENTITY ...> / <!ELEMENT ...> become XMLUnknown at this level.
        if (n->ToUnknown() != nullptr) return errc::xml_doctype_refused;
    }
    const tinyxml2::XMLElement* root = doc_->RootElement();
    if (root == nullptr) return errc::xml_malformed;
    std::uint32_t unused = none;
    convert(root, none, unused);
    return {};
}

std::error_code XmlTree::parse_owned(std::string text) {
    owned_ = std::move(text);
    return parse(owned_);
}

}  // namespace detail
}  // namespace uvgena::gena
