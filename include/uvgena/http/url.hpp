// URLs of the devices we talk to: parse, print, and resolve relative references.
//
// Device descriptions give SCPDURL, controlURL and eventSubURL relative to URLBase (or to the
// description's own URL), so RFC 3986 section 5 reference resolution is part of the job.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"

namespace uvgena::http {

/// An absolute URL with an authority, as used for HTTP requests.
struct UVGENA_API Url {
    std::string scheme;          ///< Lower case, e.g. "http".
    std::string userinfo;        ///< Before '@' in the authority; usually empty.
    std::string host;            ///< Name or address; an IPv6 literal without brackets.
    std::string zone;            ///< IPv6 scope ("eth0", "2") given as "%25zone"; usually empty.
    std::uint16_t port = 0;      ///< Explicit port, else the scheme's default (http 80).
    bool explicit_port = false;  ///< True if the URL spelled a port.
    std::string path;            ///< As written (percent-encoding kept); may be empty.
    std::string query;           ///< Without the '?'; meaningful if has_query.
    bool has_query = false;
    std::string fragment;  ///< Without the '#'; meaningful if has_fragment.
    bool has_fragment = false;

    /// Parses an absolute URL ("http://[fe80::1%25eth0]:1400/desc.xml?x"). Throws
    /// `uvgena::Error` (errc::bad_url) whose message says what is wrong.
    static Url parse(std::string_view text);
    /// Same as parse without throwing; `reason`, if given, receives the explanation.
    static Result<Url> try_parse(std::string_view text, std::string* reason = nullptr);

    /// True if `host` is an IPv6 literal.
    bool is_ipv6() const noexcept;
    /// The request-target: path (or "/") plus "?query".
    std::string target() const;
    /// The value for a Host header: host (bracketed if IPv6, no zone) plus ":port" if the
    /// port is not the scheme default.
    std::string host_header() const;
    /// Host and port for messages and logs: "[::1]:8080", "example.com:80".
    std::string authority() const;
    /// The whole URL, normalised only in scheme case and bracketed IPv6 hosts.
    std::string to_string() const;

    /// Component-wise equality.
    friend bool operator==(const Url&, const Url&) = default;
};

/// The host part of a URL for `host`, an IP as SocketAddress::ip() prints it or a name:
/// IPv6 literals bracketed with their zone spelled "%25" as RFC 6874 wants
/// ("fe80::1%eth0" -> "[fe80::1%25eth0]"); IPv4, names and already bracketed hosts unchanged.
/// The zone is kept: without it a link-local address is reachable by no one, and this
/// library's own URL parser and Publisher read it back.
UVGENA_API std::string url_host(std::string_view host);

/// Default port of a scheme ("http" 80, "https" 443), 0 if unknown.
UVGENA_API std::uint16_t default_port(std::string_view scheme) noexcept;

/// Resolves `reference` against `base` per RFC 3986 section 5.2 on any URI (both strings are
/// generic URIs; the result may have another scheme). Fails (errc::bad_url) only if `base` is
/// not an absolute URI.
UVGENA_API Result<std::string> resolve_reference(std::string_view base, std::string_view reference);

/// Resolves `reference` (relative or absolute) against `base` and parses the result as a Url.
/// Throws `uvgena::Error` (errc::bad_url) if the result is not a valid URL.
UVGENA_API Url resolve(const Url& base, std::string_view reference);

}  // namespace uvgena::http
