#include "uvgena/ssdp/message.hpp"

#include <algorithm>
#include <string>

#include "http/token.hpp"
#include "uvgena/core/strings.hpp"

namespace uvgena::ssdp {
namespace {

class SsdpCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "ssdp"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
            case errc::empty:
                return "empty datagram";
            case errc::too_large:
                return "datagram exceeds size limits";
            case errc::bad_start_line:
                return "malformed SSDP start line";
            case errc::bad_header:
                return "malformed SSDP header line";
            case errc::missing_header:
                return "required SSDP header missing";
            case errc::bad_value:
                return "unreadable SSDP header value";
            case errc::conflicting_header:
                return "conflicting duplicate SSDP header";
            case errc::wrong_kind:
                return "SSDP datagram of another kind";
            case errc::bad_body:
                return "SSDP body does not match its Content-Length";
            case errc::bad_xml:
                return "device description is not well-formed XML";
            case errc::bad_description:
                return "not a usable UPnP device description";
            case errc::no_such_device:
                return "no device of that name answered";
            case errc::ambiguous_device:
                return "several devices have that name";
        }
        return "unknown ssdp error " + std::to_string(value);
    }
};

using http::detail::is_token_char;

// Splits off the next line, accepting CRLF or a bare LF.
bool next_line(std::string_view& rest, std::string_view& line) {
    if (rest.empty()) return false;
    auto nl = rest.find('\n');
    if (nl == std::string_view::npos) {
        line = rest;
        rest = {};
    } else {
        line = rest.substr(0, nl);
        rest.remove_prefix(nl + 1);
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
}

// The value of one significant header: absent, or all occurrences equal.
Result<std::optional<std::string_view>> unique_header(const Datagram& d, std::string_view name) {
    std::optional<std::string_view> found;
    for (const auto& [n, v] : d.headers) {
        if (!iequals(n, name)) continue;
        if (found && *found != v) return fail(make_error_code(errc::conflicting_header));
        found = v;
    }
    return found;
}

Result<std::string> required(const Datagram& d, std::string_view name) {
    auto v = unique_header(d, name);
    if (!v) return fail(v.error());
    if (!*v || (*v)->empty()) return fail(make_error_code(errc::missing_header));
    return std::string(**v);
}

Result<std::string> optional_text(const Datagram& d, std::string_view name) {
    auto v = unique_header(d, name);
    if (!v) return fail(v.error());
    return std::string(v->value_or(std::string_view{}));
}

template <typename T>
Result<std::optional<T>> optional_number(const Datagram& d, std::string_view name) {
    auto v = unique_header(d, name);
    if (!v) return fail(v.error());
    if (!*v) return std::optional<T>{};
    auto n = parse_unsigned<T>(trim(**v));
    if (!n) return fail(make_error_code(errc::bad_value));
    return std::optional<T>{*n};
}

// CACHE-CONTROL: "max-age=1800", "max-age = 1800", possibly with other directives.
std::chrono::seconds read_max_age(std::optional<std::string_view> header) {
    constexpr std::chrono::seconds fallback{1800};
    if (!header) return fallback;
    std::string_view rest = *header;
    while (!rest.empty()) {
        auto comma = rest.find(',');
        std::string_view directive = trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        auto eq = directive.find('=');
        if (eq == std::string_view::npos) continue;
        if (!iequals(trim(directive.substr(0, eq)), "max-age")) continue;
        auto value = parse_unsigned<std::uint32_t>(trim(directive.substr(eq + 1)));
        if (value) return std::chrono::seconds{*value};
    }
    return fallback;
}

Result<Advertisement> read_advertisement(const Datagram& d, std::string_view target_header,
                                         bool need_location) {
    Advertisement ad;
    auto usn = required(d, "USN");
    if (!usn) return fail(usn.error());
    ad.usn = std::move(*usn);
    auto target = required(d, target_header);
    if (!target) return fail(target.error());
    ad.target = std::move(*target);
    auto location = need_location ? required(d, "LOCATION") : optional_text(d, "LOCATION");
    if (!location) return fail(location.error());
    ad.location = std::move(*location);
    auto server = optional_text(d, "SERVER");
    if (!server) return fail(server.error());
    ad.server = std::move(*server);
    ad.max_age = read_max_age(d.get("CACHE-CONTROL"));
    auto boot = optional_number<std::uint32_t>(d, "BOOTID.UPNP.ORG");
    auto config = optional_number<std::uint32_t>(d, "CONFIGID.UPNP.ORG");
    auto next_boot = optional_number<std::uint32_t>(d, "NEXTBOOTID.UPNP.ORG");
    auto port = optional_number<std::uint16_t>(d, "SEARCHPORT.UPNP.ORG");
    if (!boot) return fail(boot.error());
    if (!config) return fail(config.error());
    if (!next_boot) return fail(next_boot.error());
    if (!port) return fail(port.error());
    ad.boot_id = *boot;
    ad.config_id = *config;
    ad.next_boot_id = *next_boot;
    ad.search_port = *port;
    return ad;
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
}

void append_optional_ids(std::string& out, const Advertisement& ad) {
    if (ad.boot_id) append_header(out, "BOOTID.UPNP.ORG", std::to_string(*ad.boot_id));
    if (ad.config_id) append_header(out, "CONFIGID.UPNP.ORG", std::to_string(*ad.config_id));
    if (ad.next_boot_id)
        append_header(out, "NEXTBOOTID.UPNP.ORG", std::to_string(*ad.next_boot_id));
    if (ad.search_port) append_header(out, "SEARCHPORT.UPNP.ORG", std::to_string(*ad.search_port));
}

// Splits "urn:domain:kind:type:version" into the part before the version and the version.
bool split_versioned(std::string_view urn, std::string_view& stem, unsigned& version) {
    if (!istarts_with(urn, "urn:")) return false;
    auto colon = urn.rfind(':');
    if (colon == std::string_view::npos || colon + 1 >= urn.size()) return false;
    auto v = parse_unsigned<unsigned>(urn.substr(colon + 1));
    if (!v) return false;
    stem = urn.substr(0, colon);
    version = *v;
    return true;
}

}  // namespace

const std::error_category& ssdp_category() noexcept {
    static const SsdpCategory category;
    return category;
}

std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), ssdp_category()};
}

std::optional<std::string_view> Datagram::get(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (iequals(n, name)) return std::string_view(v);
    }
    return std::nullopt;
}

Result<Datagram> parse_datagram(std::string_view bytes, const Limits& limits) {
    if (bytes.size() > limits.max_bytes) return fail(make_error_code(errc::too_large));
    // Some stacks pad datagrams with NULs or whitespace; only the text before them counts.
    while (!bytes.empty() && (bytes.back() == '\0')) bytes.remove_suffix(1);
    while (!bytes.empty() && (bytes.front() == '\r' || bytes.front() == '\n'))
        bytes.remove_prefix(1);
    if (trim(bytes).empty()) return fail(make_error_code(errc::empty));

    Datagram d;
    std::string_view rest = bytes;
    std::string_view line;
    next_line(rest, line);
    if (line.size() > limits.max_line) return fail(make_error_code(errc::too_large));

    if (istarts_with(line, "HTTP/")) {
        // "HTTP/1.1 200 OK"
        auto sp = line.find(' ');
        if (sp == std::string_view::npos) return fail(make_error_code(errc::bad_start_line));
        d.version = std::string(line.substr(0, sp));
        auto rest_line = line.substr(sp + 1);
        // value_or: an unparsable code becomes 0 and fails the range check without reading an
        // empty optional's payload (which GCC -O2 may do, and valgrind reports).
        int code = parse_unsigned<int>(rest_line.substr(0, rest_line.find(' '))).value_or(0);
        if (code < 100 || code > 999) return fail(make_error_code(errc::bad_start_line));
        d.status = code;
        d.kind = Kind::response;
    } else {
        // "METHOD * HTTP/1.x"
        auto sp1 = line.find(' ');
        auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos) return fail(make_error_code(errc::bad_start_line));
        auto method = line.substr(0, sp1);
        auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        auto version = trim(line.substr(sp2 + 1));
        if (target != "*" || !istarts_with(version, "HTTP/1.")) {
            return fail(make_error_code(errc::bad_start_line));
        }
        d.version = std::string(version);
        d.method = std::string(method);
        if (method == "M-SEARCH") {
            d.kind = Kind::search;
        } else if (method == "NOTIFY") {
            d.kind = Kind::notify;  // refined below from NT
        } else {
            return fail(make_error_code(errc::bad_start_line));
        }
    }

    while (next_line(rest, line)) {
        if (line.empty()) break;  // end of headers; the rest is the body
        if (line.size() > limits.max_line) return fail(make_error_code(errc::too_large));
        if (d.headers.size() >= limits.max_headers) return fail(make_error_code(errc::too_large));
        auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            return fail(make_error_code(errc::bad_header));
        }
        auto name = line.substr(0, colon);
        if (!std::all_of(name.begin(), name.end(), is_token_char)) {
            return fail(make_error_code(errc::bad_header));
        }
        auto value = trim(line.substr(colon + 1));
        if (value.find('\0') != std::string_view::npos)
            return fail(make_error_code(errc::bad_header));
        d.headers.emplace_back(std::string(name), std::string(value));
    }
    d.body = std::string(rest);

    if (d.kind == Kind::notify) {
        auto nt = d.get("NT");
        if (nt && iequals(trim(*nt), "upnp:event")) d.kind = Kind::event;
    }
    return d;
}

std::string build_search(const SearchRequest& r) {
    std::string out = "M-SEARCH * HTTP/1.1\r\n";
    append_header(out, "HOST", r.host);
    append_header(out, "MAN", "\"ssdp:discover\"");
    if (!r.unicast) append_header(out, "MX", std::to_string(std::clamp(r.mx, 1, 5)));
    append_header(out, "ST", r.search_target);
    if (!r.user_agent.empty()) append_header(out, "USER-AGENT", r.user_agent);
    if (r.tcp_port) append_header(out, "TCPPORT.UPNP.ORG", std::to_string(*r.tcp_port));
    if (!r.friendly_name.empty()) append_header(out, "CPFN.UPNP.ORG", r.friendly_name);
    out += "\r\n";
    return out;
}

Result<SearchRequest> read_search(const Datagram& d, bool multicast) {
    if (d.kind != Kind::search) return fail(make_error_code(errc::wrong_kind));
    SearchRequest r;
    r.unicast = !multicast;
    auto man = required(d, "MAN");
    if (!man) return fail(man.error());
    if (trim(*man) != "\"ssdp:discover\"") return fail(make_error_code(errc::bad_value));
    auto st = required(d, "ST");
    if (!st) return fail(st.error());
    r.search_target = std::move(*st);
    auto host = optional_text(d, "HOST");
    if (!host) return fail(host.error());
    r.host = std::move(*host);
    if (multicast) {
        auto mx = required(d, "MX");
        if (!mx) return fail(mx.error());
        auto value = parse_unsigned<unsigned>(trim(*mx));
        if (!value || *value == 0) return fail(make_error_code(errc::bad_value));
        r.mx = static_cast<int>(std::min(*value, 5u));
    }
    auto ua = optional_text(d, "USER-AGENT");
    if (!ua) return fail(ua.error());
    r.user_agent = std::move(*ua);
    auto port = optional_number<std::uint16_t>(d, "TCPPORT.UPNP.ORG");
    if (!port) return fail(port.error());
    r.tcp_port = *port;
    auto cpfn = optional_text(d, "CPFN.UPNP.ORG");
    if (!cpfn) return fail(cpfn.error());
    r.friendly_name = std::move(*cpfn);
    return r;
}

Result<Advertisement> read_response(const Datagram& d) {
    if (d.kind != Kind::response) return fail(make_error_code(errc::wrong_kind));
    if (d.status != 200) return fail(make_error_code(errc::bad_start_line));
    return read_advertisement(d, "ST", true);
}

Result<Notify> read_notify(const Datagram& d) {
    if (d.kind != Kind::notify) return fail(make_error_code(errc::wrong_kind));
    auto nts = required(d, "NTS");
    if (!nts) return fail(nts.error());
    Notify n;
    std::string_view type = trim(*nts);
    if (iequals(type, "ssdp:alive")) {
        n.type = NotifyType::alive;
    } else if (iequals(type, "ssdp:byebye")) {
        n.type = NotifyType::byebye;
    } else if (iequals(type, "ssdp:update")) {
        n.type = NotifyType::update;
    } else {
        return fail(make_error_code(errc::bad_value));
    }
    auto ad = read_advertisement(d, "NT", n.type != NotifyType::byebye);
    if (!ad) return fail(ad.error());
    static_cast<Advertisement&>(n) = std::move(*ad);
    auto host = optional_text(d, "HOST");
    if (!host) return fail(host.error());
    n.host = std::move(*host);
    return n;
}

std::string build_response(const Advertisement& ad, std::string_view date) {
    std::string out = "HTTP/1.1 200 OK\r\n";
    append_header(out, "CACHE-CONTROL", "max-age=" + std::to_string(ad.max_age.count()));
    if (!date.empty()) append_header(out, "DATE", date);
    out += "EXT:\r\n";
    append_header(out, "LOCATION", ad.location);
    append_header(out, "SERVER", ad.server);
    append_header(out, "ST", ad.target);
    append_header(out, "USN", ad.usn);
    append_optional_ids(out, ad);
    out += "\r\n";
    return out;
}

std::string build_notify(const Notify& n) {
    std::string out = "NOTIFY * HTTP/1.1\r\n";
    append_header(out, "HOST", n.host);
    if (n.type != NotifyType::byebye) {
        append_header(out, "CACHE-CONTROL", "max-age=" + std::to_string(n.max_age.count()));
        append_header(out, "LOCATION", n.location);
    }
    append_header(out, "NT", n.target);
    append_header(out, "NTS",
                  n.type == NotifyType::alive    ? "ssdp:alive"
                  : n.type == NotifyType::byebye ? "ssdp:byebye"
                                                 : "ssdp:update");
    if (n.type == NotifyType::alive) append_header(out, "SERVER", n.server);
    append_header(out, "USN", n.usn);
    append_optional_ids(out, n);
    out += "\r\n";
    return out;
}

UsnParts split_usn(std::string_view usn) {
    auto sep = usn.find("::");
    if (sep == std::string_view::npos) return {std::string(usn), {}};
    return {std::string(usn.substr(0, sep)), std::string(usn.substr(sep + 2))};
}

bool target_matches(std::string_view search_target, std::string_view advertised) {
    search_target = trim(search_target);
    if (iequals(search_target, "ssdp:all")) return true;
    if (search_target == advertised) return true;
    std::string_view want_stem, have_stem;
    unsigned want_version = 0, have_version = 0;
    if (split_versioned(search_target, want_stem, want_version) &&
        split_versioned(advertised, have_stem, have_version)) {
        return want_stem == have_stem && have_version >= want_version;
    }
    return false;
}

std::string_view to_string(EventLevel level) noexcept {
    switch (level) {
        case EventLevel::emergency:
            return "upnp:/emergency";
        case EventLevel::fault:
            return "upnp:/fault";
        case EventLevel::warning:
            return "upnp:/warning";
        case EventLevel::info:
            return "upnp:/info";
        case EventLevel::debug:
            return "upnp:/debug";
        case EventLevel::general:
            return "upnp:/general";
    }
    return "upnp:/general";
}

Result<MulticastEvent> read_multicast_event(const Datagram& d) {
    if (d.kind != Kind::event) return fail(make_error_code(errc::wrong_kind));
    auto nts = required(d, "NTS");
    if (!nts) return fail(nts.error());
    if (!iequals(trim(*nts), "upnp:propchange")) return fail(make_error_code(errc::bad_value));
    MulticastEvent e;
    auto host = optional_text(d, "HOST");
    auto usn = required(d, "USN");
    auto svcid = required(d, "SVCID");
    auto lvl = required(d, "LVL");
    auto seq = optional_number<std::uint32_t>(d, "SEQ");
    auto boot = optional_number<std::uint32_t>(d, "BOOTID.UPNP.ORG");
    auto length = optional_number<std::size_t>(d, "CONTENT-LENGTH");
    for (auto* r : {&host, &usn, &svcid, &lvl}) {
        if (!*r) return fail(r->error());
    }
    if (!seq) return fail(seq.error());
    if (!boot) return fail(boot.error());
    if (!length) return fail(length.error());
    if (!*seq || !*boot) return fail(make_error_code(errc::missing_header));
    e.host = std::move(*host);
    e.usn = std::move(*usn);
    e.service_id = std::move(*svcid);
    e.seq = **seq;
    e.boot_id = **boot;
    bool known_level = false;
    for (auto level : {EventLevel::emergency, EventLevel::fault, EventLevel::warning,
                       EventLevel::info, EventLevel::debug, EventLevel::general}) {
        if (iequals(trim(*lvl), to_string(level))) {
            e.level = level;
            known_level = true;
        }
    }
    if (!known_level) return fail(make_error_code(errc::bad_value));
    if (*length) {
        if (**length > d.body.size()) return fail(make_error_code(errc::bad_body));
        e.body = d.body.substr(0, **length);
    } else {
        e.body = d.body;
    }
    return e;
}

std::string build_multicast_event(const MulticastEvent& e) {
    std::string out = "NOTIFY * HTTP/1.0\r\n";
    append_header(out, "HOST", e.host);
    append_header(out, "CONTENT-TYPE", "text/xml; charset=\"utf-8\"");
    append_header(out, "USN", e.usn);
    append_header(out, "SVCID", e.service_id);
    append_header(out, "NT", "upnp:event");
    append_header(out, "NTS", "upnp:propchange");
    append_header(out, "SEQ", std::to_string(e.seq));
    append_header(out, "LVL", to_string(e.level));
    append_header(out, "BOOTID.UPNP.ORG", std::to_string(e.boot_id));
    append_header(out, "CONTENT-LENGTH", std::to_string(e.body.size()));
    out += "\r\n";
    out += e.body;
    return out;
}

void MulticastEventFilter::evict_if_full() {
    if (services_.size() < max_) return;
    auto oldest = std::min_element(services_.begin(), services_.end(), [](auto& a, auto& b) {
        return a.second.last_used < b.second.last_used;
    });
    services_.erase(oldest);
    // Boot ids are per device and few; keep the map from outgrowing the service map.
    if (boot_ids_.size() > max_) boot_ids_.clear();
}

EventVerdict MulticastEventFilter::judge(const MulticastEvent& event) {
    ++clock_;
    std::string udn = split_usn(event.usn).udn;
    bool rebooted = false;
    auto boot = boot_ids_.find(udn);
    if (boot != boot_ids_.end()) {
        if (event.boot_id < boot->second) return EventVerdict::stale_boot;
        if (event.boot_id > boot->second) {
            rebooted = true;
            // Every service of that device starts counting again.
            std::erase_if(services_, [&](const auto& entry) {
                return split_usn(entry.first.substr(0, entry.first.find('\n'))).udn == udn;
            });
        }
    }
    boot_ids_[udn] = event.boot_id;

    std::string key = event.usn + '\n' + event.service_id;
    auto it = services_.find(key);
    if (it == services_.end()) {
        evict_if_full();
        services_.emplace(std::move(key), ServiceState{event.seq, clock_});
        return rebooted ? EventVerdict::rebooted : EventVerdict::accept;
    }
    ServiceState& state = it->second;
    if (event.seq == state.seq) return EventVerdict::duplicate;
    // Serial-number arithmetic: a SEQ up to half the space behind the last one is old;
    // further behind means the counter wrapped.
    std::uint32_t behind = state.seq - event.seq;
    if (behind < 0x80000000u) return EventVerdict::old_seq;
    state.seq = event.seq;
    state.last_used = clock_;
    return EventVerdict::accept;
}

}  // namespace uvgena::ssdp
