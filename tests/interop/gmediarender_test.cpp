// Interop with a real device nobody here wrote: gmediarender (libupnp). Run by
// gmediarender.sh inside a private network namespace, which exports GMR_BASE (the device's
// http://IP:PORT) and GMR_LISTEN (our address on the namespace's veth).
#include <doctest/doctest.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/control/client.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/ssdp/description.hpp"
#include "uvgena/subscriber/service_state.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    REQUIRE_MESSAGE(v != nullptr, name << " is not set: run this test through gmediarender.sh");
    return v;
}

Task<void> soap(uv_loop_t* loop, const std::string& control_url, const std::string& service,
                const std::string& action, const std::string& args) {
    http::Headers h;
    h.add("Content-Type", "text/xml; charset=\"utf-8\"");
    h.add("SOAPACTION", "\"urn:schemas-upnp-org:service:" + service + ":1#" + action + "\"");
    std::string body =
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
        "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:" +
        action + " xmlns:u=\"urn:schemas-upnp-org:service:" + service + ":1\">" + args +
        "</u:" + action + "></s:Body></s:Envelope>";
    http::Response r =
        co_await http::request(loop, "POST", control_url, std::move(h), std::move(body));
    CHECK_MESSAGE(r.status == 200, action << " answered " << r.status << ": " << r.body);
}

// The next event of `sub` within a few seconds (a hang fails instead).
Task<Event> next(uv_loop_t* loop, Subscription& sub) {
    auto event = co_await with_timeout(
        loop,
        [](Subscription& s) -> Task<std::optional<Event>> {
            co_return co_await s.events().next();
        }(sub),
        10s);
    REQUIRE(event);
    co_return std::move(*event);
}

// Events until one whose LastChange (instance 0) has `name`, with `value` when given:
// gmediarender may split changes, and may announce its own start-up volume late (under load,
// after our first SetVolume was sent), so an event with an older value is skipped.
Task<Event> next_with(uv_loop_t* loop, Subscription& sub, std::string name,
                      std::string value = {}) {
    for (int i = 0; i < 10; ++i) {
        Event e = co_await next(loop, sub);
        if (!e.last_change() || !e.last_change()->instance("0")) continue;
        const auto* variable = e.last_change()->instance("0")->find(name);
        if (variable != nullptr && (value.empty() || variable->value == value)) co_return e;
        std::cerr << "skipped SEQ " << e.seq << " (" << name << " = "
                  << (variable != nullptr ? variable->value : "absent") << ")\n";
    }
    FAIL("no event with " << name << (value.empty() ? "" : " = " + value));
    co_return Event{};
}

// SetVolume and the event that shows it: {event, the volume it shows}. gmediarender reports its
// start-up volume late under load, and that report can land after our SetVolume and override it
// on the device; and it announces changes only, so asking again for the same volume after an
// event went missing would wait for nothing. Each attempt therefore sets another volume
// (`first`, first + 1, ...) and waits for that one, saying on stderr what it saw and when.
struct VolumeSeen {
    Event event;
    std::string volume;
};

Task<VolumeSeen> set_volume_and_see(uv_loop_t* loop, Subscription& sub,
                                    const std::string& control_url, int first) {
    const auto start = std::chrono::steady_clock::now();
    auto elapsed_ms = [&] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start)
            .count();
    };
    for (int attempt = 0; attempt < 3; ++attempt) {
        const std::string value = std::to_string(first + attempt);
        co_await soap(loop, control_url, "RenderingControl", "SetVolume",
                      "<InstanceID>0</InstanceID><Channel>Master</Channel><DesiredVolume>" + value +
                          "</DesiredVolume>");
        std::cerr << elapsed_ms() << " ms: SetVolume(" << value << ") answered\n";
        for (int i = 0; i < 5; ++i) {
            std::optional<Event> event;
            try {
                event = co_await with_timeout(
                    loop,
                    [](Subscription& s) -> Task<std::optional<Event>> {
                        co_return co_await s.events().next();
                    }(sub),
                    5s);
            } catch (const Error& e) {
                if (e.code() != make_error_code(uvgena::errc::timed_out)) throw;
            }
            if (!event) {  // nothing more within 5 s: try another volume
                std::cerr << elapsed_ms() << " ms: no event for 5 s\n";
                break;
            }
            const gena::LastChangeInstance* instance =
                event->last_change() ? event->last_change()->instance("0") : nullptr;
            const auto* volume = instance != nullptr ? instance->find("Volume") : nullptr;
            if (volume != nullptr && volume->value == value)
                co_return VolumeSeen{std::move(*event), value};
            std::cerr << elapsed_ms() << " ms: skipped SEQ " << event->seq
                      << " (Volume = " << (volume != nullptr ? volume->value : "absent") << ")\n";
        }
    }
    const auto stats = sub.stats();
    FAIL("no event with the volume set, after three SetVolume ("
         << first << ".." << first + 2 << "); subscription stats: received "
         << stats.events_received << ", delivered " << stats.events_delivered << ", reordered "
         << stats.events_reordered << ", missed " << stats.events_missed << ", parse errors "
         << stats.parse_errors);
    co_return VolumeSeen{};
}

}  // namespace

TEST_SUITE("interop.gmediarender") {
    TEST_CASE(
        "subscriptions to gmediarender's RenderingControl and AVTransport see volume and "
        "URI changes, renew and unsubscribe") {
        uvtest::TestLoop loop(std::chrono::seconds(50));
        run(loop, [](uv_loop_t* l) -> Task<void> {
            std::string base = env("GMR_BASE");
            ListenerOptions lo;
            lo.listen_host = env("GMR_LISTEN");
            lo.port = 0;
            EventListener listener(l, lo);

            http::Response d = co_await http::request(l, "GET", base + "/description.xml");
            REQUIRE(d.status == 200);
            auto description = ssdp::parse_description(d.body, base + "/description.xml");
            REQUIRE(description);
            const ssdp::ServiceInfo* rc = description->service("RenderingControl");
            const ssdp::ServiceInfo* avt = description->service("AVTransport");
            REQUIRE(rc != nullptr);
            REQUIRE(avt != nullptr);

            Subscription rcs = co_await subscribe(
                l, rc->event_sub_url, {.requested_timeout = 300s, .listener = &listener});
            Subscription avts = co_await subscribe(
                l, avt->event_sub_url, {.requested_timeout = 300s, .listener = &listener});
            CHECK(rcs.sid().starts_with("uuid:"));
            CHECK(rcs.timeout() == gena::Timeout{false, 300s});
            CHECK(rcs.callback_url().starts_with("http://" + lo.listen_host + ":"));

            // Initial events: SEQ 0, every variable in LastChange.
            Event rc0 = co_await next(l, rcs);
            CHECK(rc0.seq == 0);
            CHECK(rc0.seq_status == gena::SeqStatus::ok);
            REQUIRE(rc0.last_change());
            const gena::LastChangeInstance* rci = rc0.last_change()->instance("0");
            REQUIRE(rci != nullptr);
            REQUIRE(rci->find("Volume") != nullptr);
            CHECK(rci->find("Volume")->channel() == "Master");
            Event avt0 = co_await next(l, avts);
            CHECK(avt0.seq == 0);
            REQUIRE(avt0.last_change());
            CHECK(avt0.last_change()->instance("0")->get("TransportState").has_value());

            VolumeSeen seen = co_await set_volume_and_see(l, rcs, rc->control_url, 42);
            const Event& rc1 = seen.event;
            CHECK(rc1.seq >= 1);
            CHECK(rc1.seq_status == gena::SeqStatus::ok);
            CHECK(rc1.last_change()->instance("0")->find("Volume", "Master")->value == seen.volume);

            std::string uri = "http://" + lo.listen_host + ":9/none.mp3";
            std::string didl =
                "&lt;DIDL-Lite xmlns=&quot;urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/&quot; "
                "xmlns:dc=&quot;http://purl.org/dc/elements/1.1/&quot; "
                "xmlns:upnp=&quot;urn:schemas-upnp-org:metadata-1-0/upnp/&quot;&gt;&lt;item "
                "id=&quot;7&quot; parentID=&quot;0&quot; restricted=&quot;1&quot;&gt;&lt;dc:title"
                "&gt;Interop &amp;amp; Co&lt;/dc:title&gt;&lt;upnp:class&gt;object.item."
                "audioItem.musicTrack&lt;/upnp:class&gt;&lt;/item&gt;&lt;/DIDL-Lite&gt;";
            co_await soap(l, avt->control_url, "AVTransport", "SetAVTransportURI",
                          "<InstanceID>0</InstanceID><CurrentURI>" + uri +
                              "</CurrentURI><CurrentURIMetaData>" + didl + "</CurrentURIMetaData>");
            Event avt1 = co_await next_with(l, avts, "AVTransportURI", uri);
            CHECK(avt1.seq >= 1);
            CHECK(avt1.seq_status == gena::SeqStatus::ok);
            CHECK(avt1.state("AVTransportURI") == uri);
            const Result<gena::DidlLite>& meta = avt1.didl("AVTransportURIMetaData");
            REQUIRE(meta);
            REQUIRE(meta->objects.size() == 1);
            CHECK(meta->objects[0].title == "Interop & Co");

            co_await rcs.renew(600s);
            CHECK(rcs.is_subscribed());
            CHECK(rcs.stats().renewals == 1);
            CHECK(rcs.timeout().seconds >= 1s);
            co_await avts.renew();
            CHECK(avts.stats().renewals == 1);

            // Events in SEQ order after the renewal too.
            co_await soap(l, rc->control_url, "RenderingControl", "SetVolume",
                          "<InstanceID>0</InstanceID><Channel>Master</Channel>"
                          "<DesiredVolume>7</DesiredVolume>");
            Event rc2 = co_await next_with(l, rcs, "Volume", "7");
            CHECK(rc2.seq > rc1.seq);
            CHECK(rc2.last_change()->instance("0")->find("Volume", "Master")->value == "7");
            CHECK(rcs.stats().events_missed == 0);
            CHECK(avts.stats().events_missed == 0);

            co_await rcs.unsubscribe();
            co_await avts.unsubscribe();
            CHECK_FALSE(rcs.is_subscribed());
            CHECK(listener.stats().unknown == 0);
            co_await listener.stop();
        }(loop));
    }

    // Issue 22's first "done when", in full: a call_action SetVolume 33 (checked against the
    // SCPD), the StateMirror's Volume(Master) is 33 after the event, typed by the SCPD, and
    // equals GetVolume's answer.
    TEST_CASE("a StateMirror of gmediarender's RenderingControl follows a SetVolume 33") {
        uvtest::TestLoop loop(std::chrono::seconds(40));
        run(loop, [](uv_loop_t* l) -> Task<void> {
            std::string base = env("GMR_BASE");
            ListenerOptions lo;
            lo.listen_host = env("GMR_LISTEN");
            lo.port = 0;
            EventListener listener(l, lo);
            http::Response d = co_await http::request(l, "GET", base + "/description.xml");
            REQUIRE(d.status == 200);
            auto description = ssdp::parse_description(d.body, base + "/description.xml");
            REQUIRE(description);
            const ssdp::ServiceInfo* rc = description->service("RenderingControl");
            REQUIRE(rc != nullptr);

            SubscribeOptions so;
            so.requested_timeout = 300s;
            so.auto_renew = true;
            so.auto_resubscribe = true;
            so.listener = &listener;
            gena::StateMirrorOptions mo;
            mo.scpd = co_await control::fetch_scpd(l, rc->scpd_url);
            StateMirror mirror(l, co_await subscribe(l, rc->event_sub_url, so), mo);
            auto volume = [&] { return mirror.state().get("Volume", {.channel = "Master"}); };

            // The initial event: the whole state, Volume(Master) in it.
            while (mirror.state().stale() || !volume()) {
                auto changes = co_await with_timeout(l, mirror.changed(), 10s);
                REQUIRE(changes);
            }
            // Another value than now, so that the device has a change to event.
            const std::string target = *volume() == "33" ? "34" : "33";
            control::Arguments set{
                {"InstanceID", "0"}, {"Channel", "Master"}, {"DesiredVolume", target}};
            control::Arguments out = co_await control::call_action(l, *rc, "SetVolume", set);
            CHECK(out.empty());
            for (int i = 0; i < 10 && volume() != std::optional<std::string_view>(target); ++i) {
                auto changes = co_await with_timeout(l, mirror.changed(), 10s);
                REQUIRE(changes);
            }
            REQUIRE(volume() == std::optional<std::string_view>(target));
            CHECK_FALSE(mirror.state().stale());
            Result<std::int64_t> typed = mirror.state().get_int("Volume", {.channel = "Master"});
            REQUIRE(typed);
            CHECK(*typed == std::stoll(target));

            control::Arguments get{{"InstanceID", "0"}, {"Channel", "Master"}};
            control::Arguments now = co_await control::call_action(l, *rc, "GetVolume", get);
            REQUIRE(now.size() == 1);
            CHECK(now[0].first == "CurrentVolume");
            CHECK(now[0].second == *volume());
            CHECK(mirror.stats().resyncs_requested == 0);

            co_await mirror.unsubscribe();
            co_await listener.stop();
        }(loop));
    }
}
