#include "event_json.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <system_error>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace uvgena::cli {
namespace {

// What a byte asks of the string writer: 0 copy, 1 escape, 2 start of a multi-byte sequence
// (or a byte that cannot be one).
constexpr std::array<std::uint8_t, 256> kByteClass = [] {
    std::array<std::uint8_t, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[static_cast<std::size_t>(c)] = 1;
    t['"'] = 1;
    t['\\'] = 1;
    for (int c = 0x80; c < 0x100; ++c) t[static_cast<std::size_t>(c)] = 2;
    return t;
}();

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// Writes the JSON escape of `c` (a control, '"' or '\\') at `w`; returns its length (2 or 6).
std::size_t write_escape(char* w, unsigned char c) {
    char short_form = 0;
    switch (c) {
        case '\b':
            short_form = 'b';
            break;
        case '\t':
            short_form = 't';
            break;
        case '\n':
            short_form = 'n';
            break;
        case '\f':
            short_form = 'f';
            break;
        case '\r':
            short_form = 'r';
            break;
        case '"':
            short_form = '"';
            break;
        case '\\':
            short_form = '\\';
            break;
        default:
            break;
    }
    w[0] = '\\';
    if (short_form != 0) {
        w[1] = short_form;
        return 2;
    }
    constexpr char hex[] = "0123456789abcdef";
    w[1] = 'u';
    w[2] = '0';
    w[3] = '0';
    w[4] = hex[c >> 4];
    w[5] = hex[c & 0xF];
    return 6;
}

// The length of the well-formed UTF-8 sequence starting at p[0] (2-4), or how many of its
// bytes are well-formed before it breaks or the text ends (0 when p[0] cannot start one):
// Table 3-7 of the Unicode standard, which is also what nlohmann's decoder accepts.
struct Utf8Check {
    std::size_t length;  // the sequence's length when complete
    std::size_t valid;   // its bytes that are well-formed (== length when complete)
};
Utf8Check check_utf8(const unsigned char* p, std::size_t available) {
    unsigned char c = p[0];
    std::size_t length = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        length = 2;
    } else if (c == 0xE0) {
        length = 3;
        lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
        length = 3;
    } else if (c == 0xED) {
        length = 3;
        hi = 0x9F;
    } else if (c == 0xF0) {
        length = 4;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
        length = 4;
    } else if (c == 0xF4) {
        length = 4;
        hi = 0x8F;
    } else {
        return {0, 0};
    }
    std::size_t k = 1;
    for (; k < length && k < available; ++k) {
        unsigned char b = p[k];
        if (b < lo || b > hi) break;
        lo = 0x80;
        hi = 0xBF;
    }
    return {length, k};
}

void append_number(std::string& out, std::uint32_t n) {
    char buf[10];
    char* end = buf + sizeof buf;
    char* p = end;
    do {
        *--p = static_cast<char>('0' + n % 10);
        n /= 10;
    } while (n != 0);
    out.append(p, static_cast<std::size_t>(end - p));
}

}  // namespace

void EventJsonWriter::append_timestamp(std::string& out, std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count() % 1000;
    std::time_t secs = system_clock::to_time_t(t);
    // "YYYY-MM-DDTHH:MM:SS" changes once a second: formatted then, reused for the events of
    // that second (gmtime_r and snprintf were the writer's largest cost after escaping).
    if (!second_valid_ || secs != second_) {
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char buf[80];
        int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        second_text_.assign(
            buf, static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1)));
        second_ = secs;
        second_valid_ = true;
    }
    out += '"';
    out += second_text_;
    // Milliseconds as "%03d" printed them (negative only before 1970).
    if (ms >= 0 && ms < 1000) {
        auto v = static_cast<int>(ms);
        char digits[6] = {'.',
                          static_cast<char>('0' + v / 100),
                          static_cast<char>('0' + v / 10 % 10),
                          static_cast<char>('0' + v % 10),
                          'Z',
                          '"'};
        out.append(digits, sizeof digits);
    } else {
        char buf[16];
        int n = std::snprintf(buf, sizeof buf, ".%03dZ\"", static_cast<int>(ms));
        out.append(buf,
                   static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1)));
    }
}

namespace {

// A stable sort of pointers by `key`: insertion sort for the usual handful (no allocation),
// std::stable_sort beyond.
// Byte order, as std::string_view's operator< (which compares as unsigned char); names
// mostly differ in their first byte, which is compared here without a call to memcmp.
inline bool key_less(std::string_view a, std::string_view b) noexcept {
    if (!a.empty() && !b.empty() && a.front() != b.front()) {
        return static_cast<unsigned char>(a.front()) < static_cast<unsigned char>(b.front());
    }
    return a < b;
}

template <typename T, typename Key>
void stable_sort_by(std::vector<const T*>& items, Key key) {
    if (items.size() <= 32) {
        for (std::size_t i = 1; i < items.size(); ++i) {
            const T* item = items[i];
            std::size_t j = i;
            for (; j > 0 && key_less(key(*item), key(*items[j - 1])); --j) items[j] = items[j - 1];
            items[j] = item;
        }
    } else {
        std::stable_sort(items.begin(), items.end(),
                         [&key](const T* a, const T* b) { return key_less(key(*a), key(*b)); });
    }
}

void append_key(std::string& out, std::string_view key) {
    append_json_string(out, key);
    out += ':';
}

}  // namespace

namespace {

// Makes room for `k` more bytes at `w` in `out` (and for `rest` after them); returns the new
// end of the room. Rare: called only when a string outgrows the room made at its start.
[[gnu::noinline]] std::size_t grow_room(std::string& out, std::size_t w, std::size_t k,
                                        std::size_t rest) {
    out.resize(std::max(out.size() + out.size() / 2, w + k + rest));
    return out.size();
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    // Written through a pointer into room made beforehand, not appended piece by piece: an
    // escaped XML value (a LastChange) has a quote every few bytes, and an append per run and
    // per escape cost more than the bytes (issue 23). The room is grown when an escape or a
    // 16-byte block would not fit; what is left over is cut at the end. The buffer's address
    // and end are kept in locals: a store through the pointer could alias the string's own
    // fields, so checks against out.size() would reload them at every step.
    constexpr std::size_t kBlock = 16;
    constexpr std::size_t kMaxPiece = 6;  // the longest escape ("\u00XX")
    std::size_t w = out.size();
    out.resize(w + n + 2 + kBlock + kMaxPiece);
    char* d = out.data();
    std::size_t limit = out.size();
#define UVGENA_JSON_ROOM(k)                             \
    if (limit - w < (k)) {                              \
        limit = grow_room(out, w, (k), n - i + kBlock); \
        d = out.data();                                 \
    }
    d[w++] = '"';
    std::size_t i = 0;
    std::size_t run_start = 0;  // where the bytes copied as they are up to i begin
    while (i < n) {
#if defined(__SSE2__)
        // The bytes of a block that are not copied as they are, one bit each. One signed
        // compare catches both the controls and the non-ASCII bytes.
        auto special_bytes = [](__m128i chunk) {
            __m128i special = _mm_or_si128(
                _mm_cmplt_epi8(chunk, _mm_set1_epi8(0x20)),
                _mm_or_si128(_mm_cmpeq_epi8(chunk, _mm_set1_epi8('"')),
                             _mm_cmpeq_epi8(chunk, _mm_set1_epi8('\\'))));
            return static_cast<unsigned>(_mm_movemask_epi8(special));
        };
        bool stopped = false;
        while (i + kBlock <= n) {
            UVGENA_JSON_ROOM(kBlock)
            __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(d + w), chunk);
            unsigned mask = special_bytes(chunk);
            if (mask != 0) {
                auto run = static_cast<std::size_t>(__builtin_ctz(mask));
                w += run;
                i += run;
                stopped = true;
                break;
            }
            w += kBlock;
            i += kBlock;
        }
        if (!stopped) {
            // Fewer than a block left. When the block that ends the text overlaps only bytes
            // that were copied as they are (since run_start), it is stored over their copy,
            // which it leaves unchanged, and its mask tells where the rest stops; else byte
            // by byte.
            UVGENA_JSON_ROOM(kBlock)
            const std::size_t rest = n - i;
            const std::size_t back = kBlock - rest;
            if (rest != 0 && n >= kBlock && i - run_start >= back) {
                __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + n - kBlock));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(d + w - back), chunk);
                unsigned mask = special_bytes(chunk) >> back;
                if (mask == 0) {
                    w += rest;
                    break;
                }
                auto run = static_cast<std::size_t>(__builtin_ctz(mask));
                w += run;
                i += run;
            } else {
                while (i < n && kByteClass[p[i]] == 0) d[w++] = static_cast<char>(p[i++]);
                if (i == n) break;
            }
        }
#else
        (void)run_start;
        UVGENA_JSON_ROOM(n - i)
        while (i < n && kByteClass[p[i]] == 0) d[w++] = static_cast<char>(p[i++]);
        if (i == n) break;
#endif
        UVGENA_JSON_ROOM(kMaxPiece)
        if (kByteClass[p[i]] == 1) {
            w += write_escape(d + w, p[i]);
            run_start = ++i;
            continue;
        }
        Utf8Check seq = check_utf8(p + i, n - i);
        if (seq.length != 0 && seq.valid == seq.length) {
            std::memcpy(d + w, p + i, seq.length);
            w += seq.length;
            i += seq.length;
        } else {
            // A byte that starts nothing is dropped; a broken sequence is dropped up to the
            // byte that broke it, which is read again.
            std::memcpy(d + w, kReplacement.data(), kReplacement.size());
            w += kReplacement.size();
            i += std::max<std::size_t>(seq.valid, 1);
        }
        run_start = i;
    }
    UVGENA_JSON_ROOM(1)
#undef UVGENA_JSON_ROOM
    d[w++] = '"';
    out.resize(w);
}

void EventJsonWriter::append(std::string& out, const gena::Event& event) {
    out += '{';
    if (event.has_last_change()) {
        const Result<gena::LastChange>& lc = event.last_change();
        if (lc) {
            append_key(out, "last_change");
            append_last_change(out, *lc);
        } else {
            append_key(out, "last_change_error");
            append_json_string(out, lc.error().message());
        }
        out += ',';
    }
    out += "\"missed\":";
    append_number(out, event.missed);
    if (event.parse_error) {
        out += ",\"parse_error\":";
        append_json_string(out, event.parse_error.message());
    }
    if (event.resubscribed) out += ",\"resubscribed\":true";
    out += ",\"seq\":";
    append_number(out, event.seq);
    out += ",\"seq_status\":";
    append_json_string(out, gena::to_string(event.seq_status));
    out += ",\"service\":";
    append_json_string(out, event.service);
    out += ",\"sid\":";
    append_json_string(out, event.sid);
    out += ",\"timestamp\":";
    append_timestamp(out, event.timestamp);
    out += ",\"variables\":{";
    // Sorted by name; of equal names the last one received (as a JSON object assigned in
    // received order keeps it).
    variables_.clear();
    for (const gena::Variable& v : event.variables()) variables_.push_back(&v);
    stable_sort_by(variables_, [](const gena::Variable& v) -> std::string_view { return v.name; });
    bool first = true;
    for (std::size_t i = 0; i < variables_.size(); ++i) {
        if (i + 1 < variables_.size() && variables_[i + 1]->name == variables_[i]->name) continue;
        if (!first) out += ',';
        first = false;
        append_key(out, variables_[i]->name);
        append_json_string(out, variables_[i]->value);
    }
    out += "}}";
}

void EventJsonWriter::append_last_change(std::string& out, const gena::LastChange& lc) {
    instances_.clear();
    for (const gena::LastChangeInstance& instance : lc.instances) instances_.push_back(&instance);
    stable_sort_by(instances_,
                   [](const gena::LastChangeInstance& i) -> std::string_view { return i.id; });
    out += '{';
    bool first = true;
    for (std::size_t i = 0; i < instances_.size(); ++i) {
        // A later instance of the same id replaced the whole earlier one.
        if (i + 1 < instances_.size() && instances_[i + 1]->id == instances_[i]->id) continue;
        if (!first) out += ',';
        first = false;
        append_key(out, instances_[i]->id);
        append_instance(out, *instances_[i]);
    }
    out += '}';
}

void EventJsonWriter::append_instance(std::string& out, const gena::LastChangeInstance& instance) {
    values_.clear();
    for (const gena::LastChangeValue& v : instance.values) values_.push_back(&v);
    stable_sort_by(values_,
                   [](const gena::LastChangeValue& v) -> std::string_view { return v.name; });
    out += '{';
    bool first = true;
    for (std::size_t begin = 0; begin < values_.size();) {
        std::size_t end = begin + 1;
        while (end < values_.size() && values_[end]->name == values_[begin]->name) ++end;
        if (!first) out += ',';
        first = false;
        append_key(out, values_[begin]->name);
        // In received order, a value without a channel replaced whatever the name had, and a
        // value with one turned the name into an object (dropping a plain value) and set its
        // channel: what is left is the last plain value if no channel came after it, else
        // the channels that came after it.
        std::size_t plain = end;  // the last value without a channel
        for (std::size_t k = begin; k < end; ++k) {
            if (values_[k]->channel().empty()) plain = k;
        }
        std::size_t from = plain == end ? begin : plain + 1;
        if (plain != end && from == end) {
            append_json_string(out, values_[plain]->value);
        } else {
            channels_.assign(values_.begin() + static_cast<std::ptrdiff_t>(from),
                             values_.begin() + static_cast<std::ptrdiff_t>(end));
            stable_sort_by(channels_, [](const gena::LastChangeValue& v) { return v.channel(); });
            out += '{';
            bool first_channel = true;
            for (std::size_t k = 0; k < channels_.size(); ++k) {
                if (k + 1 < channels_.size() &&
                    channels_[k + 1]->channel() == channels_[k]->channel()) {
                    continue;
                }
                if (!first_channel) out += ',';
                first_channel = false;
                append_key(out, channels_[k]->channel());
                append_json_string(out, channels_[k]->value);
            }
            out += '}';
        }
        begin = end;
    }
    out += '}';
}

}  // namespace uvgena::cli
