#include "uvgena/ssdp/message.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

// A search response as a Sonos player sends it (bare-bones capture layout, CRLF lines).
constexpr std::string_view kSonosResponse =
    "HTTP/1.1 200 OK\r\n"
    "CACHE-CONTROL: max-age = 1800\r\n"
    "EXT:\r\n"
    "LOCATION: http://192.168.1.20:1400/xml/device_description.xml\r\n"
    "SERVER: Linux UPnP/1.0 Sonos/70.3-35220 (ZPS1)\r\n"
    "ST: urn:schemas-upnp-org:device:ZonePlayer:1\r\n"
    "USN: uuid:RINCON_000E58A0B0C001400::urn:schemas-upnp-org:device:ZonePlayer:1\r\n"
    "X-RINCON-HOUSEHOLD: Sonos_abc\r\n"
    "BOOTID.UPNP.ORG: 42\r\n"
    "\r\n";

ssdp::Datagram parse_ok(std::string_view bytes) {
    auto d = ssdp::parse_datagram(bytes);
    REQUIRE_MESSAGE(d.ok(), d.error().message());
    return *d;
}

}  // namespace

TEST_SUITE("ssdp.message") {
    TEST_CASE("a search built by us is read back by the device side") {
        ssdp::SearchRequest req;
        req.search_target = "urn:schemas-upnp-org:service:AVTransport:1";
        req.mx = 3;
        req.user_agent = "Linux/6 UPnP/1.1 uvgena/0.1";
        std::string bytes = ssdp::build_search(req);
        CHECK(bytes.rfind("M-SEARCH * HTTP/1.1\r\n", 0) == 0);
        CHECK(bytes.find("MAN: \"ssdp:discover\"\r\n") != std::string::npos);
        CHECK(bytes.substr(bytes.size() - 4) == "\r\n\r\n");

        auto d = parse_ok(bytes);
        CHECK(d.kind == ssdp::Kind::search);
        auto back = ssdp::read_search(d);
        REQUIRE(back.ok());
        CHECK(back->search_target == req.search_target);
        CHECK(back->mx == 3);
        CHECK(back->user_agent == req.user_agent);
    }

    TEST_CASE("MX is clamped when built and read leniently, but required for multicast") {
        ssdp::SearchRequest req;
        req.mx = 120;
        CHECK(ssdp::build_search(req).find("MX: 5\r\n") != std::string::npos);

        auto d = parse_ok(
            "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
            "MAN: \"ssdp:discover\"\r\nMX: 60\r\nST: ssdp:all\r\n\r\n");
        CHECK(ssdp::read_search(d)->mx == 5);

        auto no_mx =
            parse_ok("M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST: ssdp:all\r\n\r\n");
        CHECK(ssdp::read_search(no_mx).error() == ssdp::errc::missing_header);
        CHECK(ssdp::read_search(no_mx, /*multicast=*/false).ok());

        auto bad_mx = parse_ok(
            "M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nMX: two\r\nST: ssdp:all\r\n\r\n");
        CHECK(ssdp::read_search(bad_mx).error() == ssdp::errc::bad_value);
        auto bad_man =
            parse_ok("M-SEARCH * HTTP/1.1\r\nMAN: ssdp:discover\r\nMX: 1\r\nST: ssdp:all\r\n\r\n");
        CHECK(ssdp::read_search(bad_man).error() == ssdp::errc::bad_value);
    }

    TEST_CASE("a real search response is read with its max-age, ids and extra headers") {
        auto d = parse_ok(kSonosResponse);
        CHECK(d.kind == ssdp::Kind::response);
        CHECK(d.status == 200);
        CHECK(d.get("x-rincon-household") == "Sonos_abc");
        auto ad = ssdp::read_response(d);
        REQUIRE(ad.ok());
        CHECK(ad->location == "http://192.168.1.20:1400/xml/device_description.xml");
        CHECK(ad->target == "urn:schemas-upnp-org:device:ZonePlayer:1");
        CHECK(ad->max_age == 1800s);
        CHECK(ad->boot_id == 42u);
        CHECK_FALSE(ad->config_id.has_value());
        auto usn = ssdp::split_usn(ad->usn);
        CHECK(usn.udn == "uuid:RINCON_000E58A0B0C001400");
        CHECK(usn.type == "urn:schemas-upnp-org:device:ZonePlayer:1");
    }

    TEST_CASE("bare LF lines, a missing final blank line and NUL padding are tolerated") {
        auto d = parse_ok(
            "HTTP/1.1 200 OK\nST: upnp:rootdevice\nUSN: uuid:x::upnp:rootdevice\n"
            "LOCATION: http://10.0.0.2/d.xml\nCACHE-CONTROL: no-cache, max-age=60");
        auto ad = ssdp::read_response(d);
        REQUIRE(ad.ok());
        CHECK(ad->max_age == 60s);
        std::string padded(kSonosResponse);
        padded.append(8, '\0');
        CHECK(ssdp::read_response(parse_ok(padded)).ok());
    }

    TEST_CASE("responses without a required header or with bad numbers are refused") {
        CHECK(ssdp::read_response(parse_ok("HTTP/1.1 200 OK\r\nST: a\r\nUSN: b\r\n\r\n")).error() ==
              ssdp::errc::missing_header);
        CHECK(ssdp::read_response(parse_ok("HTTP/1.1 200 OK\r\nST: a\r\nUSN: b\r\nLOCATION: c\r\n"
                                           "BOOTID.UPNP.ORG: -1\r\n\r\n"))
                  .error() == ssdp::errc::bad_value);
        CHECK(ssdp::read_response(parse_ok("HTTP/1.1 200 OK\r\nST: a\r\nUSN: b\r\nLOCATION: c\r\n"
                                           "LOCATION: d\r\n\r\n"))
                  .error() == ssdp::errc::conflicting_header);
        CHECK(ssdp::read_response(parse_ok("HTTP/1.1 404 Not Found\r\n\r\n")).error() ==
              ssdp::errc::bad_start_line);
        CHECK(ssdp::read_response(parse_ok("NOTIFY * HTTP/1.1\r\nNT: a\r\n\r\n")).error() ==
              ssdp::errc::wrong_kind);
    }

    TEST_CASE("malformed datagrams fail with a specific error") {
        CHECK(ssdp::parse_datagram("").error() == ssdp::errc::empty);
        CHECK(ssdp::parse_datagram("\r\n\r\n").error() == ssdp::errc::empty);
        CHECK(ssdp::parse_datagram("GET / HTTP/1.1\r\n\r\n").error() == ssdp::errc::bad_start_line);
        CHECK(ssdp::parse_datagram("M-SEARCH *\r\n\r\n").error() == ssdp::errc::bad_start_line);
        CHECK(ssdp::parse_datagram("HTTP/1.1 abc OK\r\n\r\n").error() ==
              ssdp::errc::bad_start_line);
        CHECK(ssdp::parse_datagram("NOTIFY * HTTP/1.1\r\nno colon here\r\n\r\n").error() ==
              ssdp::errc::bad_header);
        CHECK(ssdp::parse_datagram("NOTIFY * HTTP/1.1\r\nbad name: x\r\n\r\n").error() ==
              ssdp::errc::bad_header);
        CHECK(ssdp::parse_datagram(std::string_view("NOTIFY * HTTP/1.1\r\nA: x\0y\r\n\r\n", 30))
                  .error() == ssdp::errc::bad_header);
    }

    TEST_CASE("size limits bound the datagram, each line and the header count") {
        ssdp::Limits limits;
        std::string big(limits.max_bytes + 1, 'a');
        CHECK(ssdp::parse_datagram(big).error() == ssdp::errc::too_large);

        std::string long_line =
            "NOTIFY * HTTP/1.1\r\nX: " + std::string(limits.max_line, 'b') + "\r\n\r\n";
        CHECK(ssdp::parse_datagram(long_line).error() == ssdp::errc::too_large);

        std::string many = "NOTIFY * HTTP/1.1\r\n";
        for (std::size_t i = 0; i <= limits.max_headers; ++i)
            many += "X-" + std::to_string(i) + ": 1\r\n";
        many += "\r\n";
        CHECK(ssdp::parse_datagram(many).error() == ssdp::errc::too_large);
    }

    TEST_CASE("alive, byebye and update advertisements round-trip") {
        ssdp::Notify alive;
        alive.type = ssdp::NotifyType::alive;
        alive.location = "http://10.0.0.5:49152/description.xml";
        alive.usn = "uuid:abc::urn:schemas-upnp-org:service:RenderingControl:1";
        alive.target = "urn:schemas-upnp-org:service:RenderingControl:1";
        alive.server = "Linux/6 UPnP/1.1 uvgena/0.1";
        alive.max_age = 900s;
        alive.boot_id = 7;
        alive.config_id = 1;
        auto back = ssdp::read_notify(parse_ok(ssdp::build_notify(alive)));
        REQUIRE(back.ok());
        CHECK(back->type == ssdp::NotifyType::alive);
        CHECK(back->location == alive.location);
        CHECK(back->usn == alive.usn);
        CHECK(back->target == alive.target);
        CHECK(back->max_age == 900s);
        CHECK(back->boot_id == 7u);

        ssdp::Notify bye = alive;
        bye.type = ssdp::NotifyType::byebye;
        std::string bye_bytes = ssdp::build_notify(bye);
        CHECK(bye_bytes.find("LOCATION") == std::string::npos);
        auto bye_back = ssdp::read_notify(parse_ok(bye_bytes));
        REQUIRE(bye_back.ok());
        CHECK(bye_back->type == ssdp::NotifyType::byebye);

        ssdp::Notify update = alive;
        update.type = ssdp::NotifyType::update;
        update.next_boot_id = 8;
        auto update_back = ssdp::read_notify(parse_ok(ssdp::build_notify(update)));
        REQUIRE(update_back.ok());
        CHECK(update_back->next_boot_id == 8u);

        CHECK(ssdp::read_notify(
                  parse_ok("NOTIFY * HTTP/1.1\r\nNT: a\r\nNTS: ssdp:sleepy\r\nUSN: b\r\n\r\n"))
                  .error() == ssdp::errc::bad_value);
        CHECK(ssdp::read_notify(
                  parse_ok("NOTIFY * HTTP/1.1\r\nNT: a\r\nNTS: ssdp:alive\r\nUSN: b\r\n\r\n"))
                  .error() == ssdp::errc::missing_header);
    }

    TEST_CASE("a search response built by a device carries EXT and DATE") {
        ssdp::Advertisement ad;
        ad.location = "http://10.0.0.5/d.xml";
        ad.usn = "uuid:abc::upnp:rootdevice";
        ad.target = "upnp:rootdevice";
        ad.server = "s";
        std::string bytes = ssdp::build_response(ad, "Sun, 22 Nov 2026 18:00:00 GMT");
        CHECK(bytes.find("\r\nEXT:\r\n") != std::string::npos);
        CHECK(bytes.find("DATE: Sun, 22 Nov 2026 18:00:00 GMT\r\n") != std::string::npos);
        CHECK(ssdp::read_response(parse_ok(bytes))->usn == ad.usn);
    }

    TEST_CASE("search targets match by equality, ssdp:all, and type version") {
        CHECK(ssdp::target_matches("ssdp:all", "upnp:rootdevice"));
        CHECK(ssdp::target_matches("upnp:rootdevice", "upnp:rootdevice"));
        CHECK(ssdp::target_matches("uuid:abc", "uuid:abc"));
        CHECK_FALSE(ssdp::target_matches("uuid:abc", "uuid:abd"));
        CHECK(ssdp::target_matches("urn:schemas-upnp-org:service:AVTransport:1",
                                   "urn:schemas-upnp-org:service:AVTransport:3"));
        CHECK_FALSE(ssdp::target_matches("urn:schemas-upnp-org:service:AVTransport:2",
                                         "urn:schemas-upnp-org:service:AVTransport:1"));
        CHECK_FALSE(ssdp::target_matches("urn:schemas-upnp-org:service:AVTransport:1",
                                         "urn:schemas-upnp-org:service:RenderingControl:1"));
    }

    TEST_CASE("a multicast event round-trips with its body") {
        ssdp::MulticastEvent e;
        e.usn = "uuid:dev::urn:schemas-upnp-org:service:SensorTransportGeneric:1";
        e.service_id = "urn:upnp-org:serviceId:Sensor1";
        e.seq = 5;
        e.level = ssdp::EventLevel::warning;
        e.boot_id = 3;
        e.body = "<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\"/>";
        std::string bytes = ssdp::build_multicast_event(e);
        CHECK(bytes.rfind("NOTIFY * HTTP/1.0\r\n", 0) == 0);
        auto d = parse_ok(bytes);
        CHECK(d.kind == ssdp::Kind::event);
        auto back = ssdp::read_multicast_event(d);
        REQUIRE(back.ok());
        CHECK(back->seq == 5u);
        CHECK(back->level == ssdp::EventLevel::warning);
        CHECK(back->boot_id == 3u);
        CHECK(back->body == e.body);
        CHECK(back->service_id == e.service_id);

        std::string truncated = bytes.substr(0, bytes.size() - 5);
        CHECK(ssdp::read_multicast_event(parse_ok(truncated)).error() == ssdp::errc::bad_body);
        std::string no_lvl = bytes;
        no_lvl.replace(no_lvl.find("LVL: upnp:/warning"), 18, "LVL: upnp:/loud   ");
        CHECK(ssdp::read_multicast_event(parse_ok(no_lvl)).error() == ssdp::errc::bad_value);
    }

    TEST_CASE("the multicast event filter discards stale boots, duplicates and old SEQs") {
        ssdp::MulticastEventFilter filter;
        ssdp::MulticastEvent e;
        e.usn = "uuid:dev::urn:x:service:S:1";
        e.service_id = "svc";
        e.boot_id = 10;
        e.seq = 1;
        CHECK(filter.judge(e) == ssdp::EventVerdict::accept);
        CHECK(filter.judge(e) == ssdp::EventVerdict::duplicate);
        e.seq = 2;
        CHECK(filter.judge(e) == ssdp::EventVerdict::accept);
        e.seq = 1;
        CHECK(filter.judge(e) == ssdp::EventVerdict::old_seq);
        e.boot_id = 9;
        e.seq = 3;
        CHECK(filter.judge(e) == ssdp::EventVerdict::stale_boot);
        e.boot_id = 11;
        e.seq = 1;
        CHECK(filter.judge(e) == ssdp::EventVerdict::rebooted);
        e.seq = 2;
        CHECK(filter.judge(e) == ssdp::EventVerdict::accept);

        // Wrap: far "behind" means the counter wrapped around.
        ssdp::MulticastEvent w = e;
        w.service_id = "wrapping";
        w.seq = 0xFFFFFFF0u;
        CHECK(filter.judge(w) == ssdp::EventVerdict::accept);
        w.seq = 3;
        CHECK(filter.judge(w) == ssdp::EventVerdict::accept);
    }

    TEST_CASE("the multicast event filter stays bounded") {
        ssdp::MulticastEventFilter filter(8);
        ssdp::MulticastEvent e;
        e.boot_id = 1;
        e.seq = 1;
        for (int i = 0; i < 100; ++i) {
            e.usn = "uuid:dev" + std::to_string(i);
            e.service_id = "svc";
            CHECK(filter.judge(e) == ssdp::EventVerdict::accept);
        }
        CHECK(filter.size() <= 8);
    }
}
