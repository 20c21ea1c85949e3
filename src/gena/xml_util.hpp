// Internal helpers of the gena layer's XML readers: namespace resolution (neither the
// scanner nor tinyxml2 has any) and one guarded parse entry point.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "gena/xml_tree.hpp"

namespace uvgena::gena::detail {

/// Splits "p:local" into ("p", "local"); ("", name) without a colon.
inline std::pair<std::string_view, std::string_view> split_qname(std::string_view name) {
    auto colon = name.find(':');
    if (colon == std::string_view::npos) return {{}, name};
    return {name.substr(0, colon), name.substr(colon + 1)};
}

/// The xmlns declarations in scope while walking down an XmlTree. Views point into the
/// document, which outlives the scope.
class NsScope {
  public:
    std::size_t mark() const noexcept { return size_; }
    void pop(std::size_t mark) noexcept {
        size_ = mark;
        if (overflow_.size() > overflow_count()) overflow_.resize(overflow_count());
    }

    /// Pushes the xmlns / xmlns:p declarations of `e`.
    void push_declarations(XmlElement e) {
        for (const auto& a : e.attributes()) {
            std::string_view name = a.name;
            if (name.substr(0, 5) != "xmlns") continue;
            if (name.size() == 5) {
                push({}, a.value);
            } else if (name[5] == ':') {
                push(name.substr(6), a.value);
            }
        }
    }

    /// The namespace URI bound to `prefix` ("" prefix: the default namespace, "" if none);
    /// nullopt for an undeclared non-empty prefix.
    std::optional<std::string_view> resolve(std::string_view prefix) const noexcept {
        for (std::size_t i = size_; i-- > 0;) {
            const auto& b = i < inline_capacity ? inline_[i] : overflow_[i - inline_capacity];
            if (b.first == prefix) return b.second;
        }
        if (prefix.empty()) return std::string_view{};
        if (prefix == "xml") return std::string_view{"http://www.w3.org/XML/1998/namespace"};
        return std::nullopt;
    }

  private:
    using Binding = std::pair<std::string_view, std::string_view>;
    static constexpr std::size_t inline_capacity = 12;

    std::size_t overflow_count() const noexcept {
        return size_ > inline_capacity ? size_ - inline_capacity : 0;
    }
    void push(std::string_view prefix, std::string_view uri) {
        if (size_ < inline_capacity) {
            inline_[size_] = {prefix, uri};
        } else {
            overflow_.push_back({prefix, uri});
        }
        ++size_;
    }

    // Declarations are few (2-6 in real bodies): no allocation unless there are many.
    std::array<Binding, inline_capacity> inline_{};
    std::vector<Binding> overflow_;
    std::size_t size_ = 0;
};

/// True for the characters trimmed around documents: NUL and XML whitespace.
inline bool is_trim_char(char c) noexcept {
    return c == '\0' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/// `text` without leading and trailing NULs / whitespace.
inline std::string_view trim_document(std::string_view text) noexcept {
    while (!text.empty() && is_trim_char(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_trim_char(text.back())) text.remove_suffix(1);
    return text;
}

/// Parses `text` into `tree`; on a syntax error retries once with repair_xml(text).
/// `repaired` says whether the retry was needed and succeeded.
std::error_code parse_with_repair(XmlTree& tree, std::string_view text, bool& repaired);

/// Reads a LastChange <Event> element (already parsed) into `out`.
void read_last_change(XmlElement event, NsScope& scope, LastChange& out);

}  // namespace uvgena::gena::detail
