#include "uvgena/gena/values.hpp"

#include <charconv>

#include "uvgena/core/strings.hpp"

namespace uvgena::gena {

Result<std::int64_t> to_integer(std::string_view text, std::int64_t min, std::int64_t max) {
    text = trim(text);
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    if (text.empty()) return fail(errc::value_not_integer);
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc::result_out_of_range) return fail(errc::value_out_of_range);
    if (ec != std::errc{} || end != text.data() + text.size()) {
        return fail(errc::value_not_integer);
    }
    if (value < min || value > max) return fail(errc::value_out_of_range);
    return value;
}

Result<bool> to_boolean(std::string_view text) {
    text = trim(text);
    if (text == "1" || iequals(text, "true") || iequals(text, "yes")) return true;
    if (text == "0" || iequals(text, "false") || iequals(text, "no")) return false;
    return fail(errc::value_not_boolean);
}

Result<std::chrono::milliseconds> to_duration(std::string_view text) {
    text = trim(text);
    std::int64_t parts[3] = {0, 0, 0};
    std::size_t pos = 0;
    for (int i = 0; i < 3; ++i) {
        std::size_t start = pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9' && pos - start < 12) {
            parts[i] = parts[i] * 10 + (text[pos] - '0');
            ++pos;
        }
        if (pos == start) return fail(errc::value_not_integer);
        if (i < 2) {
            if (pos >= text.size() || text[pos] != ':') return fail(errc::value_not_integer);
            ++pos;
        }
    }
    if (parts[1] > 59 || parts[2] > 59) return fail(errc::value_out_of_range);
    std::int64_t millis = ((parts[0] * 60 + parts[1]) * 60 + parts[2]) * 1000;
    if (pos < text.size()) {
        if (text[pos] != '.') return fail(errc::value_not_integer);
        ++pos;
        // Fraction: either decimal digits (".5" = 500 ms) or UPnP's "F0/F1" form, cut to ms.
        std::int64_t scale = 100;
        std::size_t start = pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
            millis += (text[pos] - '0') * scale;
            scale /= 10;
            ++pos;
        }
        if (pos < text.size() && text[pos] == '/') {
            return fail(errc::value_not_integer);  // F0/F1 fractions: not seen in practice
        }
        if (pos == start || pos != text.size()) return fail(errc::value_not_integer);
    }
    return std::chrono::milliseconds(millis);
}

}  // namespace uvgena::gena
