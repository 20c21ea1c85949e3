// DeviceTracker: what advertisements mean, with a manual clock (no sockets).
#include <doctest/doctest.h>

#include "uvgena/ssdp/discovery.hpp"

using namespace uvgena;
using namespace uvgena::ssdp;
using namespace std::chrono_literals;

namespace {

using TP = DeviceTracker::Clock::time_point;
const TP t0{};
const SocketAddress kFrom = SocketAddress::parse("192.168.1.20", 1900);

Notify notify(NotifyType type, std::string udn, std::optional<std::uint32_t> boot = 1,
              std::string location = "http://192.168.1.20:1400/desc.xml") {
    Notify n;
    n.type = type;
    n.usn = udn + "::upnp:rootdevice";
    n.target = "upnp:rootdevice";
    n.location = std::move(location);
    n.server = "Test/1 UPnP/1.1 x/1";
    n.boot_id = boot;
    n.max_age = 100s;
    return n;
}

}  // namespace

TEST_SUITE("ssdp.tracker") {
    TEST_CASE("the first alive of a device is an appearance, repeats are silent") {
        DeviceTracker t;
        auto c = t.on_notify(notify(NotifyType::alive, "uuid:a"), kFrom, t0);
        REQUIRE(c);
        CHECK(c->event == DeviceEvent::appeared);
        CHECK(c->udn == "uuid:a");
        CHECK(c->location == "http://192.168.1.20:1400/desc.xml");
        CHECK(c->from == kFrom);
        CHECK_FALSE(t.on_notify(notify(NotifyType::alive, "uuid:a"), kFrom, t0 + 1s));
        // Another target of the same device is the same device.
        Notify other = notify(NotifyType::alive, "uuid:a");
        other.usn = "uuid:a::urn:schemas-upnp-org:service:AVTransport:1";
        CHECK_FALSE(t.on_notify(other, kFrom, t0 + 2s));
        CHECK(t.size() == 1);
        CHECK(t.knows("uuid:a"));
    }

    TEST_CASE("a higher BOOTID is a reboot; a lower one is a late message and ignored") {
        DeviceTracker t;
        (void)t.on_notify(notify(NotifyType::alive, "uuid:a", 5), kFrom, t0);
        auto c = t.on_notify(notify(NotifyType::alive, "uuid:a", 6), kFrom, t0 + 1s);
        REQUIRE(c);
        CHECK(c->event == DeviceEvent::rebooted);
        CHECK(c->boot_id == 6u);
        CHECK(c->previous_boot_id == 5u);
        CHECK_FALSE(t.on_notify(notify(NotifyType::alive, "uuid:a", 5), kFrom, t0 + 2s));
        CHECK_FALSE(t.on_notify(notify(NotifyType::alive, "uuid:a", 6), kFrom, t0 + 3s));
    }

    TEST_CASE("ssdp:update announces the next BOOTID, which is then no reboot") {
        DeviceTracker t;
        (void)t.on_notify(notify(NotifyType::alive, "uuid:a", 5), kFrom, t0);
        Notify up = notify(NotifyType::update, "uuid:a", 5);
        up.next_boot_id = 6;
        CHECK_FALSE(t.on_notify(up, kFrom, t0 + 1s));
        CHECK_FALSE(t.on_notify(notify(NotifyType::alive, "uuid:a", 6), kFrom, t0 + 2s));
    }

    TEST_CASE("a new LOCATION or CONFIGID in the same boot is an update") {
        DeviceTracker t;
        (void)t.on_notify(notify(NotifyType::alive, "uuid:a"), kFrom, t0);
        auto c = t.on_notify(notify(NotifyType::alive, "uuid:a", 1, "http://10.0.0.9/d.xml"), kFrom,
                             t0 + 1s);
        REQUIRE(c);
        CHECK(c->event == DeviceEvent::updated);
        CHECK(c->location == "http://10.0.0.9/d.xml");
        Notify cfg = notify(NotifyType::alive, "uuid:a", 1, "http://10.0.0.9/d.xml");
        cfg.config_id = 3;
        c = t.on_notify(cfg, kFrom, t0 + 2s);
        REQUIRE(c);
        CHECK(c->event == DeviceEvent::updated);
        CHECK(c->config_id == 3u);
    }

    TEST_CASE("byebye forgets the device once; byebyes of unknown devices are silent") {
        DeviceTracker t;
        (void)t.on_notify(notify(NotifyType::alive, "uuid:a"), kFrom, t0);
        auto c = t.on_notify(notify(NotifyType::byebye, "uuid:a"), kFrom, t0 + 1s);
        REQUIRE(c);
        CHECK(c->event == DeviceEvent::left);
        CHECK(c->location == "http://192.168.1.20:1400/desc.xml");
        CHECK(t.size() == 0);
        // The same device's byebyes for its other targets, and unknown devices.
        CHECK_FALSE(t.on_notify(notify(NotifyType::byebye, "uuid:a"), kFrom, t0 + 1s));
        CHECK_FALSE(t.on_notify(notify(NotifyType::byebye, "uuid:b"), kFrom, t0 + 1s));
        // Afterwards the device appears again.
        c = t.on_notify(notify(NotifyType::alive, "uuid:a"), kFrom, t0 + 2s);
        REQUIRE(c);
        CHECK(c->event == DeviceEvent::appeared);
    }

    TEST_CASE("devices expire after their max-age unless renewed") {
        DeviceTracker t;
        (void)t.on_notify(notify(NotifyType::alive, "uuid:a"), kFrom, t0);
        (void)t.on_notify(notify(NotifyType::alive, "uuid:b"), kFrom, t0 + 50s);
        CHECK(t.expire(t0 + 99s).empty());
        (void)t.on_notify(notify(NotifyType::alive, "uuid:a"), kFrom, t0 + 90s);  // renews a
        CHECK(t.expire(t0 + 120s).empty());
        auto gone = t.expire(t0 + 151s);
        REQUIRE(gone.size() == 1);
        CHECK(gone[0].udn == "uuid:b");
        CHECK(gone[0].event == DeviceEvent::expired);
        CHECK_FALSE(gone[0].from.valid());
        gone = t.expire(t0 + 191s);
        REQUIRE(gone.size() == 1);
        CHECK(gone[0].udn == "uuid:a");
        CHECK(t.size() == 0);
    }

    TEST_CASE("the table is bounded: the device closest to expiry is forgotten first") {
        DeviceTracker t(2);
        (void)t.on_notify(notify(NotifyType::alive, "uuid:a"), kFrom, t0 + 10s);
        (void)t.on_notify(notify(NotifyType::alive, "uuid:b"), kFrom, t0);
        auto c = t.on_notify(notify(NotifyType::alive, "uuid:c"), kFrom, t0 + 20s);
        REQUIRE(c);
        CHECK(c->event == DeviceEvent::appeared);
        CHECK(t.size() == 2);
        CHECK_FALSE(t.knows("uuid:b"));
        CHECK(t.knows("uuid:a"));
        CHECK(t.knows("uuid:c"));
    }

    TEST_CASE("search responses teach the tracker too; a USN without a UDN is ignored") {
        DeviceTracker t;
        Advertisement ad = notify(NotifyType::alive, "uuid:r", 3);
        auto c = t.on_response(ad, kFrom, t0);
        REQUIRE(c);
        CHECK(c->event == DeviceEvent::appeared);
        CHECK(c->boot_id == 3u);
        Notify empty = notify(NotifyType::alive, "");
        empty.usn = "";
        CHECK_FALSE(t.on_notify(empty, kFrom, t0));
    }

    TEST_CASE(
        "a remembered device (subscribed to before its advertisements were heard) reports its "
        "byebye, and with a known BOOTID its reboot; remembering reports nothing") {
        DeviceTracker t;
        // Not remembered: its byebye is silent (the tracker cannot know it left).
        CHECK_FALSE(t.on_notify(notify(NotifyType::byebye, "uuid:a"), kFrom, t0));
        Advertisement only_udn;
        only_udn.usn = "uuid:a";
        t.remember(only_udn, t0);
        CHECK(t.knows("uuid:a"));
        auto left = t.on_notify(notify(NotifyType::byebye, "uuid:a"), kFrom, t0 + 1s);
        REQUIRE(left);
        CHECK(left->event == DeviceEvent::left);
        auto back = t.on_notify(notify(NotifyType::alive, "uuid:a"), kFrom, t0 + 2s);
        REQUIRE(back);
        CHECK(back->event == DeviceEvent::appeared);

        // Remembered from a search response with its BOOTID: a higher one is a reboot.
        Advertisement searched;
        searched.usn = "uuid:b::upnp:rootdevice";
        searched.location = "http://192.168.1.21/d.xml";
        searched.boot_id = 3;
        t.remember(searched, t0);
        auto rebooted = t.on_notify(
            notify(NotifyType::alive, "uuid:b", 4, "http://192.168.1.21/d.xml"), kFrom, t0 + 1s);
        REQUIRE(rebooted);
        CHECK(rebooted->event == DeviceEvent::rebooted);
        CHECK(rebooted->previous_boot_id == 3u);
        // Remembering a known device fills in what was missing (here the BOOTID a search
        // answered after the UDN alone was remembered), silently.
        Advertisement first;
        first.usn = "uuid:c";
        t.remember(first, t0);
        Advertisement later;
        later.usn = "uuid:c::upnp:rootdevice";
        later.boot_id = 9;
        t.remember(later, t0 + 3s);
        auto again = t.on_notify(notify(NotifyType::alive, "uuid:c", 10), kFrom, t0 + 4s);
        REQUIRE(again);
        CHECK(again->event == DeviceEvent::rebooted);
        CHECK(again->previous_boot_id == 9u);
    }

    TEST_CASE("device events have names") {
        CHECK(to_string(DeviceEvent::appeared) == "appeared");
        CHECK(to_string(DeviceEvent::rebooted) == "rebooted");
        CHECK(to_string(DeviceEvent::left) == "left");
        CHECK(to_string(DeviceEvent::expired) == "expired");
        CHECK(to_string(DeviceEvent::updated) == "updated");
    }
}
