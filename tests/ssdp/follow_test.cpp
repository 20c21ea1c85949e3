// DeviceFollower: a device that grants 300 s and restarts is resubscribed seconds after it
// says it is back (byebye then alive, or a higher BOOTID), not at the renewal ~4 minutes
// later. Real multicast: inside the private network namespace made by the test's wrapper.
#include "uvgena/subscriber/device_follower.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"
#include "support/peers.hpp"
#include "support/test_device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/ssdp/advertiser.hpp"
#include "uvgena/subscriber/listener.hpp"

using namespace uvgena;
using namespace uvgena::ssdp;
using namespace std::chrono_literals;

namespace {

const std::string kUdn = "uuid:follow-test-0000-0000-000000000001";

// A device (uvgena's Publisher) that grants 300 s whatever is asked, as GUPnP devices do.
std::unique_ptr<uvtest::TestDevice> make_device(uv_loop_t* loop) {
    gena::PublisherOptions o;
    o.policy.min_timeout = 300s;
    o.policy.max_timeout = 300s;
    return std::make_unique<uvtest::TestDevice>(loop, o, SocketAddress::ipv4_loopback(), "Volume",
                                                "0");
}

AdvertiserOptions advertiser_options(std::uint16_t port, std::uint32_t boot_id) {
    AdvertiserOptions o = ssdptest::advertiser_options(kUdn, "Follow", port);
    o.device.devices.clear();  // one UDN only
    o.boot_id = boot_id;
    return o;
}

gena::ListenerOptions loopback_listener() {
    gena::ListenerOptions o;
    o.listen_host = "127.0.0.1";
    o.port = 0;
    return o;
}

gena::SubscribeOptions healing(gena::EventListener& listener) {
    gena::SubscribeOptions o;
    o.listener = &listener;
    o.requested_timeout = 300s;
    o.auto_renew = true;
    o.auto_resubscribe = true;
    o.timeout = 2s;
    o.backoff.initial = 100ms;
    o.backoff.max = 400ms;
    return o;
}

Task<gena::Event> next_event(uv_loop_t* loop, gena::Subscription& sub) {
    std::optional<gena::Event> e = co_await with_timeout(
        loop,
        [](gena::Subscription& s) -> Task<std::optional<gena::Event>> {
            co_return co_await s.events().next();
        }(sub),
        5s);
    REQUIRE(e.has_value());
    co_return std::move(*e);
}

// What the follower's handler saw.
struct Seen {
    std::vector<std::pair<DeviceEvent, std::size_t>> changes;
    bool has(DeviceEvent event) const {
        for (const auto& c : changes) {
            if (c.first == event) return true;
        }
        return false;
    }
};

// Subscribes to a fresh 300 s device, follows it, restarts it the way `restart` says, and
// checks that the subscription is resubscribed within a few seconds of the device's return
// and that a change made 10 s after the restart is delivered.
using Restart = Task<void> (*)(uv_loop_t*, uvtest::TestDevice&, std::optional<Advertiser>&, Seen&);

void check_restart_followed(Restart how, DeviceEvent what) {
    uvtest::TestLoop loop(60s);
    run(loop, [](uv_loop_t* l, Restart restart, DeviceEvent expected) -> Task<void> {
        gena::EventListener listener(l, loopback_listener());
        auto device = make_device(l);
        // The device advertised before the follower started: the follower has heard nothing
        // of it when it follows it (it asks with an M-SEARCH for its BOOTID).
        std::optional<Advertiser> adv;
        adv.emplace(Advertiser::start(l, advertiser_options(device->address().port(), 1)));
        co_await sleep_for(l, 100ms);
        DeviceFollower follower(l);
        Seen seen;
        follower.set_handler([&seen](const DeviceChange& c, std::size_t resubscribing) {
            seen.changes.emplace_back(c.event, resubscribing);
        });
        gena::Subscription sub = co_await gena::subscribe(l, device->url(), healing(listener));
        CHECK(sub.timeout().seconds == 300s);
        follower.follow(sub, kUdn);
        CHECK(follower.following() == 1);
        gena::Event first = co_await next_event(l, sub);
        CHECK_FALSE(first.resubscribed);
        // Following (and the search's answer) is no return: nothing happens.
        co_await sleep_for(l, 500ms);
        CHECK(sub.stats().resubscriptions == 0);
        CHECK(seen.changes.empty());
        std::string old_sid = sub.sid();

        co_await restart(l, *device, adv, seen);
        auto back = Clock::now();
        CHECK(co_await peers::eventually(
            l, [&] { return sub.stats().resubscriptions == 1 && sub.is_subscribed(); }, 5s));
        CHECK(Clock::now() - back < 3s);  // not the renewal at 225-255 s
        CHECK(sub.sid() != old_sid);
        CHECK(follower.resubscriptions() == 1);
        REQUIRE_FALSE(seen.changes.empty());
        CHECK(seen.changes.back().first == expected);
        CHECK(seen.changes.back().second == 1);
        gena::Event initial = co_await next_event(l, sub);
        CHECK(initial.resubscribed);
        CHECK(initial.sid == sub.sid());
        CHECK(initial.variables().at("Volume") == "rebooted");
        // The check: a change made 10 s after the restart arrives within 15 s of it.
        co_await sleep_until(l, back + 10s);
        device->set("after");
        gena::Event after = co_await next_event(l, sub);
        CHECK(Clock::now() - back < 15s);
        CHECK_FALSE(after.resubscribed);
        CHECK(after.variables().at("Volume") == "after");
        CHECK(device->publisher().subscriber_count() == 1);

        co_await sub.unsubscribe();
        co_await follower.close();
        adv->close();
        co_await listener.stop();
        co_await device->stop();
    }(loop, how, what));
}

}  // namespace

TEST_SUITE("ssdp.follow") {
    TEST_CASE(
        "a followed device that says byebye, restarts and says alive (same BOOTID) is "
        "resubscribed at once") {
        check_restart_followed(
            [](uv_loop_t* l, uvtest::TestDevice& device, std::optional<Advertiser>& adv,
               Seen& seen) -> Task<void> {
                co_await adv->stop();  // ssdp:byebye
                CHECK(co_await peers::eventually(l, [&] { return seen.has(DeviceEvent::left); }));
                adv.reset();
                co_await device.restart("rebooted");  // forgets every SID
                adv.emplace(Advertiser::start(l, advertiser_options(device.address().port(), 1)));
            },
            DeviceEvent::appeared);
    }

    TEST_CASE(
        "a followed device that restarts without byebye but with a higher BOOTID is "
        "resubscribed at once") {
        check_restart_followed(
            [](uv_loop_t* l, uvtest::TestDevice& device, std::optional<Advertiser>& adv,
               Seen&) -> Task<void> {
                adv->close();  // a crash: no byebye
                adv.reset();
                co_await device.restart("rebooted");
                adv.emplace(Advertiser::start(l, advertiser_options(device.address().port(), 2)));
            },
            DeviceEvent::rebooted);
    }
}
