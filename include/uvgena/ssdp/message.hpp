// SSDP datagrams (UPnP Device Architecture 1.1, section 1), sans-IO: parsing and building of
// M-SEARCH requests and their responses, NOTIFY advertisements (ssdp:alive, ssdp:byebye,
// ssdp:update) and multicast event messages (section 4.3.3). No sockets here.
//
// The parser is deliberately separate from the HTTP/TCP parser: SSDP arrives as single UDP
// datagrams from every device on a LAN, and real devices send bare-LF lines, missing final
// blank lines and odd spacing that a strict HTTP parser would reject. It is lenient in
// layout and strict in bounds: every datagram is bounded in bytes, lines and header count.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "uvgena/core/export.hpp"
#include "uvgena/core/result.hpp"

namespace uvgena::ssdp {

/// IPv4 multicast group of SSDP discovery.
inline constexpr std::string_view kMulticastV4 = "239.255.255.250";
/// IPv6 link-local multicast group of SSDP discovery.
inline constexpr std::string_view kMulticastV6 = "ff02::c";
/// UDP port of SSDP discovery.
inline constexpr std::uint16_t kPort = 1900;
/// IPv4 multicast group of multicast eventing (UDA 1.1 section 4.3.3).
inline constexpr std::string_view kEventMulticastV4 = "239.255.255.246";
/// IPv6 link-local multicast group of multicast eventing.
inline constexpr std::string_view kEventMulticastV6 = "ff02::130";
/// UDP port of multicast eventing.
inline constexpr std::uint16_t kEventPort = 7900;

/// Errors of SSDP parsing.
enum class errc {
    empty = 1,           ///< No bytes, or only whitespace.
    too_large,           ///< Datagram, line or header count above the limits.
    bad_start_line,      ///< Neither a known request line nor an HTTP status line.
    bad_header,          ///< A header line without a colon, or with an invalid name.
    missing_header,      ///< A header the message kind requires is absent.
    bad_value,           ///< A header value that cannot be read (MX, SEQ, BOOTID, ...).
    conflicting_header,  ///< The same significant header twice with different values.
    wrong_kind,          ///< The datagram is valid but not of the expected kind.
    bad_body,            ///< Content-Length does not match the bytes that follow.
    bad_xml,             ///< A device description that is not well-formed XML.
    bad_description,     ///< Well-formed XML that is not a usable device description.
    no_such_device,      ///< No device that answered a search has the name (find_device).
    ambiguous_device,    ///< Several devices that answered a search have the name.
};

/// Category of ssdp::errc.
UVGENA_API const std::error_category& ssdp_category() noexcept;
/// Makes an error_code from an ssdp::errc.
UVGENA_API std::error_code make_error_code(errc e) noexcept;

/// What a datagram is, from its start line.
enum class Kind {
    search,    ///< "M-SEARCH * HTTP/1.1"
    response,  ///< "HTTP/1.1 200 OK" (answer to a search)
    notify,    ///< "NOTIFY * HTTP/1.1" with NTS ssdp:alive / ssdp:byebye / ssdp:update
    event,     ///< "NOTIFY * HTTP/1.0" with NT upnp:event (multicast eventing)
};

/// Bounds applied while parsing (defaults suit any real device).
struct UVGENA_API Limits {
    std::size_t max_bytes = 16 * 1024;  ///< Whole datagram.
    std::size_t max_line = 2048;        ///< One header line.
    std::size_t max_headers = 64;       ///< Header count.
};

/// A parsed datagram: the start line and the headers in received order.
struct UVGENA_API Datagram {
    Kind kind = Kind::search;
    std::string method;   ///< "M-SEARCH" or "NOTIFY"; empty for a response.
    int status = 0;       ///< Status code of a response; 0 for requests.
    std::string version;  ///< "HTTP/1.1" or "HTTP/1.0".
    std::vector<std::pair<std::string, std::string>> headers;  ///< Name as sent, value trimmed.
    std::string body;  ///< Bytes after the blank line (multicast events carry XML).

    /// First value of a header, case-insensitive.
    std::optional<std::string_view> get(std::string_view name) const;
};

/// Parses one datagram. Never throws; every failure is an ssdp::errc.
UVGENA_API Result<Datagram> parse_datagram(std::string_view bytes, const Limits& limits = {});

// --------------------------------------------------------------------------------------
// Search (control point → devices) and its responses.
// --------------------------------------------------------------------------------------

/// An M-SEARCH request.
struct UVGENA_API SearchRequest {
    std::string host = "239.255.255.250:1900";  ///< HOST header.
    std::string search_target = "ssdp:all";  ///< ST: ssdp:all, upnp:rootdevice, uuid:…, urn:….
    int mx = 2;                              ///< MX seconds (1..5); ignored for unicast.
    bool unicast = false;                    ///< Unicast searches carry no MX.
    std::string user_agent;                  ///< USER-AGENT (optional).
    std::optional<std::uint16_t> tcp_port;   ///< TCPPORT.UPNP.ORG (optional).
    std::string friendly_name;               ///< CPFN.UPNP.ORG (optional).
};

/// Serialises an M-SEARCH (MAN: "ssdp:discover").
UVGENA_API std::string build_search(const SearchRequest& request);

/// Reads an M-SEARCH as a device does: MAN must be "ssdp:discover", ST present, MX an
/// integer for multicast searches (values above 5 are read as 5, as UDA 1.1 says).
UVGENA_API Result<SearchRequest> read_search(const Datagram& datagram, bool multicast = true);

/// The header fields that search responses and advertisements share.
struct UVGENA_API Advertisement {
    std::string location;                       ///< LOCATION: URL of the device description.
    std::string usn;                            ///< USN: unique service name.
    std::string target;                         ///< ST (response) or NT (notify).
    std::string server;                         ///< SERVER (may be empty in byebye).
    std::chrono::seconds max_age{1800};         ///< CACHE-CONTROL max-age.
    std::optional<std::uint32_t> boot_id;       ///< BOOTID.UPNP.ORG.
    std::optional<std::uint32_t> config_id;     ///< CONFIGID.UPNP.ORG.
    std::optional<std::uint32_t> next_boot_id;  ///< NEXTBOOTID.UPNP.ORG (ssdp:update).
    std::optional<std::uint16_t> search_port;   ///< SEARCHPORT.UPNP.ORG.
};

/// Subtype of a NOTIFY advertisement.
enum class NotifyType { alive, byebye, update };

/// A NOTIFY advertisement.
struct UVGENA_API Notify : Advertisement {
    NotifyType type = NotifyType::alive;
    std::string host = "239.255.255.250:1900";
};

/// Reads a search response (status 200; LOCATION, USN, ST required; CACHE-CONTROL
/// max-age read leniently, defaulting to 1800 s when missing).
UVGENA_API Result<Advertisement> read_response(const Datagram& datagram);

/// Reads a NOTIFY advertisement (NTS ssdp:alive needs LOCATION; byebye needs only NT/USN).
UVGENA_API Result<Notify> read_notify(const Datagram& datagram);

/// Serialises a search response (with EXT and DATE headers, as the spec requires).
UVGENA_API std::string build_response(const Advertisement& ad, std::string_view date_rfc1123);

/// Serialises a NOTIFY advertisement.
UVGENA_API std::string build_notify(const Notify& notify);

/// A USN split into the device UDN ("uuid:…") and the type after "::" (may be empty).
struct UVGENA_API UsnParts {
    std::string udn;
    std::string type;
};

/// Splits "uuid:X::urn:schemas-upnp-org:service:AVTransport:1" into its parts.
UVGENA_API UsnParts split_usn(std::string_view usn);

/// True if an advertised target answers a search for `search_target` (ssdp:all matches
/// everything; urn:…:type:v matches the same type at version v or later).
UVGENA_API bool target_matches(std::string_view search_target, std::string_view advertised);

// --------------------------------------------------------------------------------------
// Multicast eventing (UDA 1.1 section 4.3.3).
// --------------------------------------------------------------------------------------

/// Importance level of a multicast event (LVL header).
enum class EventLevel { emergency, fault, warning, info, debug, general };

/// Name of a level as sent in LVL ("upnp:/info", ...).
UVGENA_API std::string_view to_string(EventLevel level) noexcept;

/// A multicast event message.
struct UVGENA_API MulticastEvent {
    std::string host = "239.255.255.246:7900";
    std::string usn;         ///< USN of the publishing service's device.
    std::string service_id;  ///< SVCID.
    std::uint32_t seq = 0;   ///< SEQ.
    EventLevel level = EventLevel::general;
    std::uint32_t boot_id = 0;  ///< BOOTID.UPNP.ORG.
    std::string body;           ///< The property set.
};

/// Reads a multicast event (NT upnp:event, NTS upnp:propchange, USN, SVCID, SEQ, LVL,
/// BOOTID.UPNP.ORG required; Content-Length, when present, must match the body).
UVGENA_API Result<MulticastEvent> read_multicast_event(const Datagram& datagram);

/// Serialises a multicast event (NOTIFY * HTTP/1.0).
UVGENA_API std::string build_multicast_event(const MulticastEvent& event);

/// What a receiver does with a multicast event.
enum class EventVerdict {
    accept,      ///< New: deliver it.
    duplicate,   ///< Same SEQ as the last one from this service (a resend).
    old_seq,     ///< A SEQ behind the last one: out of order or replayed; discard.
    stale_boot,  ///< A BOOTID older than one already seen for this device; discard.
    rebooted,    ///< A newer BOOTID: the device restarted; accept and reset the SEQ.
};

/// Remembers the last BOOTID per device and SEQ per service, and judges each new event.
/// Bounded: it keeps at most `max_services` entries, forgetting the least recently seen.
class UVGENA_API MulticastEventFilter {
  public:
    explicit MulticastEventFilter(std::size_t max_services = 1024) : max_(max_services) {}
    /// Judges `event` and, when it is accepted, records it.
    EventVerdict judge(const MulticastEvent& event);
    /// Number of services remembered.
    std::size_t size() const noexcept { return services_.size(); }

  private:
    struct ServiceState {
        std::uint32_t seq;
        std::uint64_t last_used;
    };
    void evict_if_full();
    std::size_t max_;
    std::uint64_t clock_ = 0;
    std::unordered_map<std::string, ServiceState> services_;   // key: USN + '\n' + SVCID
    std::unordered_map<std::string, std::uint32_t> boot_ids_;  // key: device UDN
};

}  // namespace uvgena::ssdp

template <>
struct std::is_error_code_enum<uvgena::ssdp::errc> : std::true_type {};
