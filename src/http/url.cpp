#include "uvgena/http/url.hpp"

#include <charconv>

#include "uvgena/core/strings.hpp"
#include "uvgena/http/error.hpp"

namespace uvgena::http {
namespace {

// The five components of RFC 3986 appendix B, each with "defined" kept apart from "empty"
// because the resolution algorithm distinguishes them ("?" differs from no query).
struct Parts {
    std::string_view scheme, authority, path, query, fragment;
    bool has_scheme = false, has_authority = false, has_query = false, has_fragment = false;
};

Parts split(std::string_view s) {
    Parts p;
    std::size_t colon = s.find_first_of(":/?#");
    if (colon != std::string_view::npos && s[colon] == ':' && colon > 0 && is_ascii_alpha(s[0])) {
        bool valid = true;
        for (char c : s.substr(0, colon)) {
            valid = valid &&
                    (is_ascii_alpha(c) || is_ascii_digit(c) || c == '+' || c == '-' || c == '.');
        }
        if (valid) {
            p.scheme = s.substr(0, colon);
            p.has_scheme = true;
            s.remove_prefix(colon + 1);
        }
    }
    if (s.substr(0, 2) == "//") {
        s.remove_prefix(2);
        std::size_t end = s.find_first_of("/?#");
        p.authority = s.substr(0, end);
        p.has_authority = true;
        s.remove_prefix(end == std::string_view::npos ? s.size() : end);
    }
    std::size_t hash = s.find('#');
    if (hash != std::string_view::npos) {
        p.fragment = s.substr(hash + 1);
        p.has_fragment = true;
        s = s.substr(0, hash);
    }
    std::size_t question = s.find('?');
    if (question != std::string_view::npos) {
        p.query = s.substr(question + 1);
        p.has_query = true;
        s = s.substr(0, question);
    }
    p.path = s;
    return p;
}

// RFC 3986 5.2.4.
std::string remove_dot_segments(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    while (!in.empty()) {
        if (in.substr(0, 3) == "../") {
            in.remove_prefix(3);
        } else if (in.substr(0, 2) == "./") {
            in.remove_prefix(2);
        } else if (in.substr(0, 3) == "/./") {
            in.remove_prefix(2);
        } else if (in == "/.") {
            in = "/";
        } else if (in.substr(0, 4) == "/../" || in == "/..") {
            in = in.size() == 3 ? std::string_view("/") : in.substr(3);
            std::size_t last = out.rfind('/');
            out.erase(last == std::string::npos ? 0 : last);
        } else if (in == "." || in == "..") {
            in = {};
        } else {
            std::size_t next = in.find('/', in[0] == '/' ? 1 : 0);
            if (next == std::string_view::npos) next = in.size();
            out.append(in.substr(0, next));
            in.remove_prefix(next);
        }
    }
    return out;
}

std::string merge(const Parts& base, std::string_view ref_path) {
    if (base.has_authority && base.path.empty()) {
        std::string out = "/";
        out += ref_path;
        return out;
    }
    std::size_t last = base.path.rfind('/');
    if (last == std::string_view::npos) return std::string(ref_path);
    return std::string(base.path.substr(0, last + 1)) + std::string(ref_path);
}

Failure bad_url(std::string* reason, std::string_view text, const std::string& why) {
    if (reason) *reason = "invalid URL \"" + std::string(text) + "\": " + why;
    return fail(make_error_code(errc::bad_url));
}

bool has_forbidden_byte(std::string_view s) noexcept {
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c == 0x7f) return true;
    }
    return false;
}

}  // namespace

std::uint16_t default_port(std::string_view scheme) noexcept {
    if (scheme == "http") return 80;
    if (scheme == "https") return 443;
    return 0;
}

Result<Url> Url::try_parse(std::string_view text, std::string* reason) {
    if (text.empty()) return bad_url(reason, text, "empty");
    if (has_forbidden_byte(text)) {
        return bad_url(reason, text, "contains a space or a control character");
    }
    Parts p = split(text);
    if (!p.has_scheme) return bad_url(reason, text, "no scheme (expected e.g. \"http://\")");
    if (!p.has_authority) return bad_url(reason, text, "no \"//host\" after the scheme");
    Url url;
    url.scheme.reserve(p.scheme.size());
    for (char c : p.scheme) {
        url.scheme += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    std::string_view auth = p.authority;
    if (std::size_t at = auth.rfind('@'); at != std::string_view::npos) {
        url.userinfo = std::string(auth.substr(0, at));
        auth.remove_prefix(at + 1);
    }
    std::string_view port_text;
    bool has_port = false;
    if (!auth.empty() && auth[0] == '[') {
        std::size_t close = auth.find(']');
        if (close == std::string_view::npos) return bad_url(reason, text, "unclosed '['");
        std::string_view literal = auth.substr(1, close - 1);
        std::string_view rest = auth.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') return bad_url(reason, text, "unexpected text after ']'");
            port_text = rest.substr(1);
            has_port = true;
        }
        std::size_t percent = literal.find('%');
        if (percent != std::string_view::npos) {
            std::string_view zone = literal.substr(percent + 1);
            // RFC 6874 spells the separator "%25"; a bare "%" is accepted as browsers do.
            if (zone.substr(0, 2) == "25" && zone.size() > 2) zone.remove_prefix(2);
            if (zone.empty()) return bad_url(reason, text, "empty IPv6 zone");
            url.zone = std::string(zone);
            literal = literal.substr(0, percent);
        }
        if (literal.find(':') == std::string_view::npos) {
            return bad_url(reason, text, "bracketed host is not an IPv6 address");
        }
        for (char c : literal) {
            if (!is_ascii_hex(c) && c != ':' && c != '.') {
                return bad_url(reason, text, "invalid character in IPv6 address");
            }
        }
        url.host = std::string(literal);
    } else {
        std::size_t colon = auth.rfind(':');
        std::string_view host = auth.substr(0, colon);
        if (colon != std::string_view::npos) {
            port_text = auth.substr(colon + 1);
            has_port = true;
        }
        for (char c : host) {
            bool ok = is_ascii_alpha(c) || is_ascii_digit(c) ||
                      std::string_view("-._~%!$&'()*+,;=").find(c) != std::string_view::npos;
            if (!ok) return bad_url(reason, text, "invalid character in host");
        }
        url.host = std::string(host);
    }
    if (url.host.empty()) return bad_url(reason, text, "empty host");
    url.port = default_port(url.scheme);
    if (has_port && !port_text.empty()) {
        unsigned value = 0;
        auto [end, ec] =
            std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 ||
            value > 65535) {
            return bad_url(reason, text, "invalid port \"" + std::string(port_text) + "\"");
        }
        url.port = static_cast<std::uint16_t>(value);
        url.explicit_port = true;
    }
    if (url.port == 0) {
        return bad_url(reason, text, "no port and no default port for scheme " + url.scheme);
    }
    url.path = std::string(p.path);
    url.query = std::string(p.query);
    url.has_query = p.has_query;
    url.fragment = std::string(p.fragment);
    url.has_fragment = p.has_fragment;
    return url;
}

Url Url::parse(std::string_view text) {
    std::string reason;
    Result<Url> url = try_parse(text, &reason);
    if (!url) throw_error(url.error(), reason);
    return std::move(url).value();
}

std::string url_host(std::string_view host) {
    if (host.empty() || host.front() == '[' || host.find(':') == std::string_view::npos) {
        return std::string(host);
    }
    std::string out = "[";
    std::size_t percent = host.find('%');
    out += host.substr(0, percent);
    if (percent != std::string_view::npos) {
        out += "%25";
        out += host.substr(percent + 1);
    }
    out += ']';
    return out;
}

bool Url::is_ipv6() const noexcept {
    return host.find(':') != std::string::npos;
}

std::string Url::target() const {
    std::string t = path.empty() ? std::string("/") : path;
    if (has_query) {
        t += '?';
        t += query;
    }
    return t;
}

// Appended piece by piece: GCC 12 at -O3 reports `"[" + host + "]"` as an overlapping memcpy
// (a -Wrestrict false positive, GCC PR 105329).
std::string Url::host_header() const {
    std::string h;
    if (is_ipv6()) {
        h += '[';
        h += host;
        h += ']';
    } else {
        h = host;
    }
    if (port != default_port(scheme)) {
        h += ':';
        h += std::to_string(port);
    }
    return h;
}

std::string Url::authority() const {
    std::string a;
    if (is_ipv6()) {
        a += '[';
        a += host;
        a += ']';
    } else {
        a = host;
    }
    a += ':';
    a += std::to_string(port);
    return a;
}

std::string Url::to_string() const {
    std::string s = scheme;
    s += "://";
    if (!userinfo.empty()) {
        s += userinfo;
        s += '@';
    }
    if (is_ipv6()) {
        s += '[';
        s += host;
        if (!zone.empty()) {
            s += "%25";
            s += zone;
        }
        s += ']';
    } else {
        s += host;
    }
    if (explicit_port || port != default_port(scheme)) {
        s += ':';
        s += std::to_string(port);
    }
    s += path;
    if (has_query) {
        s += '?';
        s += query;
    }
    if (has_fragment) {
        s += '#';
        s += fragment;
    }
    return s;
}

Result<std::string> resolve_reference(std::string_view base_text, std::string_view ref_text) {
    Parts base = split(base_text);
    if (!base.has_scheme) return fail(make_error_code(errc::bad_url));
    Parts ref = split(ref_text);
    // RFC 3986 5.2.2, strict: a reference with a scheme is absolute even if it is the base's.
    std::string_view scheme, authority, query;
    bool has_authority = false, has_query = false;
    std::string path;
    if (ref.has_scheme) {
        scheme = ref.scheme;
        authority = ref.authority;
        has_authority = ref.has_authority;
        path = remove_dot_segments(ref.path);
        query = ref.query;
        has_query = ref.has_query;
    } else {
        scheme = base.scheme;
        if (ref.has_authority) {
            authority = ref.authority;
            has_authority = true;
            path = remove_dot_segments(ref.path);
            query = ref.query;
            has_query = ref.has_query;
        } else {
            authority = base.authority;
            has_authority = base.has_authority;
            if (ref.path.empty()) {
                path = std::string(base.path);
                query = ref.has_query ? ref.query : base.query;
                has_query = ref.has_query || base.has_query;
            } else {
                if (ref.path[0] == '/') {
                    path = remove_dot_segments(ref.path);
                } else {
                    path = remove_dot_segments(merge(base, ref.path));
                }
                query = ref.query;
                has_query = ref.has_query;
            }
        }
    }
    // RFC 3986 5.3.
    std::string out;
    out.reserve(base_text.size() + ref_text.size());
    out.append(scheme).append(":");
    if (has_authority) out.append("//").append(authority);
    out += path;
    if (has_query) out.append("?").append(query);
    if (ref.has_fragment) out.append("#").append(ref.fragment);
    return out;
}

Url resolve(const Url& base, std::string_view reference) {
    Result<std::string> text = resolve_reference(base.to_string(), reference);
    if (!text) throw_error(text.error(), "resolve \"" + std::string(reference) + "\"");
    return Url::parse(*text);
}

}  // namespace uvgena::http
