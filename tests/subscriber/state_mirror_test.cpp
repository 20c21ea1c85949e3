// StateMirror, the live state mirror, end to end over loopback against uvgena's own
// Publisher: changes seen in the mirror, a SEQ gap and a device reboot each restored by a
// resubscription, destruction while a reader waits, coalescing for a slow reader, and the
// randomized run of issue 22: 10,000 random changes (plain and LastChange, several instances
// and channels) through a proxy that delays, reorders and drops NOTIFYs, the mirror compared
// with the device's true state after every resync and at the end.
#include "uvgena/subscriber/service_state.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "publisher/test_access.hpp"
#include "support/peers.hpp"
#include "support/test_device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/http/server.hpp"
#include "uvgena/publisher/publisher.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace uvgena;
using namespace uvgena::gena;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view rcs_ns = "urn:schemas-upnp-org:metadata-1-0/RCS/";

ListenerOptions loopback_listener(std::uint16_t advertise_port = 0) {
    ListenerOptions o;
    o.listen_host = "127.0.0.1";
    o.port = 0;
    if (advertise_port != 0) {
        o.advertise_host = "127.0.0.1";
        o.advertise_port = advertise_port;
    }
    return o;
}

http::ServerOptions loopback_server() {
    http::ServerOptions o;
    o.address = SocketAddress::ipv4_loopback(0);
    return o;
}

PublisherOptions quick_publisher() {
    PublisherOptions o;
    o.initial_event_delay = 1ms;
    return o;
}

// A service with plain variables and a LastChange (RenderingControl-like).
ServiceConfig mixed_service() {
    ServiceConfig config;
    config.event_path = "/svc/event";
    config.variables = {{"Brightness", "50"}, {"Name", "kitchen"}};
    config.last_change_namespace = std::string(rcs_ns);
    return config;
}

std::string event_url(Publisher& publisher) {
    return "http://" + publisher.server()->local_address().to_string() + "/svc/event";
}

SubscribeOptions mirror_subscription(EventListener& listener) {
    SubscribeOptions o;
    o.listener = &listener;
    o.requested_timeout = 300s;
    o.auto_renew = true;
    o.auto_resubscribe = true;
    o.backoff.initial = 50ms;
    o.backoff.max = 400ms;
    return o;
}

// The next change set within a time limit.
Task<StateChanges> next_changes(uv_loop_t* loop, StateMirror& mirror,
                                std::chrono::milliseconds limit = 10s) {
    std::optional<StateChanges> changes = co_await with_timeout(loop, mirror.changed(), limit);
    REQUIRE(changes.has_value());
    co_return std::move(*changes);
}

// Takes change sets until `done()` holds; false if it does not within `limit`.
template <typename Pred>
Task<bool> changes_until(uv_loop_t* loop, StateMirror& mirror, Pred done,
                         std::chrono::milliseconds limit = 10s) {
    Clock::time_point deadline = Clock::now() + limit;
    while (!done()) {
        if (Clock::now() >= deadline) co_return false;
        try {
            std::optional<StateChanges> changes =
                co_await with_deadline(loop, mirror.changed(), deadline);
            if (!changes) co_return done();
        } catch (const Error& e) {
            if (e.code() != uvgena::errc::timed_out) throw;
            co_return done();
        }
    }
    co_return true;
}

// A NOTIFY proxy between a Publisher and an EventListener (whose CALLBACK URLs name it): it
// answers each NOTIFY 200 at once, then drops it, or forwards it after a random delay (so
// that NOTIFYs overtake each other), or forwards it at once. Bounded: at most
// `max_in_flight` forwards wait at once (beyond, it forwards at once).
class NotifyProxy {
  public:
    struct Chaos {
        double drop = 0;                         // probability that a NOTIFY is dropped
        double delay = 0;                        // probability that it is delayed...
        std::chrono::milliseconds max_delay{0};  // ...by 1 ms up to this
    };

    NotifyProxy(uv_loop_t* loop, std::mt19937_64& rng)
        : loop_(loop),
          rng_(rng),
          server_(
              loop, [this](const http::Request& r, const http::RequestContext&) { return take(r); },
              options()),
          scope_(loop) {
        server_.listen();
    }

    std::uint16_t port() const { return server_.local_address().port(); }
    void forward_to(const SocketAddress& target) { target_ = target; }
    void set_chaos(Chaos chaos) noexcept { chaos_ = chaos; }
    /// Drops the next `n` initial events (SEQ 0), whatever the chaos.
    void drop_initial_events(std::size_t n) noexcept { drop_initial_ = n; }
    std::size_t in_flight() const noexcept { return in_flight_; }

    std::uint64_t received = 0, dropped = 0, delayed = 0, forwarded = 0, refused = 0;

    Task<void> stop() {
        co_await server_.stop(100ms);
        co_await scope_.join();
    }

  private:
    static constexpr std::size_t max_in_flight = 256;

    static http::ServerOptions options() {
        http::ServerOptions o = loopback_server();
        // As the listener's: the Publisher's NOTIFYs ask to close and get the close at once;
        // a connection the proxy closes on its own (its stop) waits for the publisher's close.
        o.close_grace = 5ms;
        return o;
    }

    Task<http::Response> take(const http::Request& request) {
        ++received;
        std::uniform_real_distribution<double> chance(0.0, 1.0);
        http::Response ok;
        ok.status = 200;
        if (drop_initial_ > 0 && request.headers.get("SEQ") == "0") {
            --drop_initial_;
            ++dropped;
            co_return ok;
        }
        if (chance(rng_) < chaos_.drop) {
            ++dropped;
            co_return ok;
        }
        std::chrono::milliseconds delay{0};
        if (chance(rng_) < chaos_.delay && chaos_.max_delay.count() > 0 &&
            in_flight_ < max_in_flight) {
            std::uniform_int_distribution<int> ms(1, static_cast<int>(chaos_.max_delay.count()));
            delay = std::chrono::milliseconds(ms(rng_));
            ++delayed;
        }
        ++in_flight_;
        scope_.spawn(forward(this, request, delay));
        co_return ok;
    }

    static Task<void> forward(NotifyProxy* self, http::Request request,
                              std::chrono::milliseconds delay) {
        if (delay.count() > 0) co_await sleep_for(self->loop_, delay);
        auto answer = co_await http::try_send(self->loop_, self->target_, std::move(request));
        --self->in_flight_;
        // A NOTIFY for a SID the subscription gave up meanwhile is answered 412.
        if (answer && answer->status == 200) {
            ++self->forwarded;
        } else {
            ++self->refused;
        }
    }

    uv_loop_t* loop_;
    std::mt19937_64& rng_;
    Chaos chaos_;
    SocketAddress target_;
    std::size_t in_flight_ = 0;
    std::size_t drop_initial_ = 0;
    http::Server server_;
    Scope scope_;  // last: destroyed first
};

// The device's true state against the mirror: every value the device holds is mirrored with
// the same value, and the mirror holds nothing else. Describes the first difference.
std::string difference(const Service& svc, const std::vector<std::string>& plain_names,
                       const std::vector<std::string>& instances, const ServiceState& state) {
    std::size_t expected = 0;
    for (const std::string& name : plain_names) {
        std::optional<std::string> truth = svc.value(name);
        ++expected;
        if (state.get(name) != truth) {
            return name + ": device " + truth.value_or("-") + ", mirror " +
                   std::string(state.get(name).value_or("-"));
        }
    }
    const LastChangeState* lc = svc.last_change();
    for (const std::string& instance : instances) {
        for (const char* channel : {"Master", "LF", "RF"}) {
            const std::string* truth = lc->value(instance, "Volume", {{"channel", channel}});
            if (truth == nullptr) continue;
            ++expected;
            auto mirrored = state.get("Volume", {.instance = instance, .channel = channel});
            if (mirrored != std::string_view(*truth)) {
                return "Volume " + instance + "/" + channel + ": device " + *truth + ", mirror " +
                       std::string(mirrored.value_or("-"));
            }
        }
        for (const char* name : {"Mute", "TransportState"}) {
            const std::string* truth = lc->value(instance, name);
            if (truth == nullptr) continue;
            ++expected;
            if (state.get(name, {.instance = instance}) != std::string_view(*truth)) {
                return std::string(name) + " " + instance + ": device " + *truth + ", mirror " +
                       std::string(state.get(name, {.instance = instance}).value_or("-"));
            }
        }
    }
    if (state.size() != expected) {
        return "the mirror holds " + std::to_string(state.size()) + " values, the device " +
               std::to_string(expected);
    }
    return {};
}

// The device of the randomized runs: three plain variables and a LastChange with three
// instances (Volume on three channels, Mute, TransportState), changed at random.
struct RandomDevice {
    explicit RandomDevice(uv_loop_t* loop) : publisher(loop, quick_publisher()) {
        ServiceConfig config;
        config.event_path = "/svc/event";
        for (const std::string& name : plain_names) config.variables.emplace_back(name, "0");
        config.last_change_namespace = std::string(rcs_ns);
        svc = &publisher.add_service(std::move(config));
        svc->update_last_change([&](LastChangeState& lc) {
            for (const std::string& instance : instances) {
                lc.set(instance, "Volume", "0", {{"channel", "Master"}});
                lc.set(instance, "Mute", "0");
            }
        });
        publisher.listen(loopback_server());
    }

    // One random change: 30 % a plain variable, 45 % a Volume, 15 % a Mute, 10 % a
    // TransportState, in a random instance.
    void change(std::mt19937_64& random) {
        static const char* const channels[] = {"Master", "LF", "RF"};
        static const char* const states[] = {"PLAYING", "STOPPED", "PAUSED_PLAYBACK",
                                             "TRANSITIONING"};
        std::uniform_int_distribution<int> percent(0, 99);
        std::uniform_int_distribution<int> value(0, 100);
        std::uniform_int_distribution<std::size_t> pick_instance(0, instances.size() - 1);
        int what = percent(random);
        std::string v = std::to_string(value(random));
        const std::string& instance = instances[pick_instance(random)];
        auto index = static_cast<std::size_t>(what);
        if (what < 30) {
            svc->set(plain_names[index % plain_names.size()], v);
        } else if (what < 75) {
            svc->set_last_change(instance, "Volume", v, {{"channel", channels[index % 3]}});
        } else if (what < 90) {
            svc->set_last_change(instance, "Mute", what % 2 == 0 ? "1" : "0");
        } else {
            svc->set_last_change(instance, "TransportState", states[index % 4]);
        }
    }

    // The first difference between the device's true state and `state` ("" if none).
    std::string difference(const ServiceState& state) const {
        return ::difference(*svc, plain_names, instances, state);
    }

    std::string url() { return event_url(publisher); }

    const std::vector<std::string> plain_names = {"Brightness", "Contrast", "Name"};
    const std::vector<std::string> instances = {"0", "1", "2"};
    Publisher publisher;
    Service* svc = nullptr;
};

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') return fallback;
    return std::strtoull(text, nullptr, 10);
}

}  // namespace

TEST_SUITE("subscriber.state_mirror") {
    TEST_CASE("the mirror follows the device's plain and LastChange variables") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            Publisher publisher(l, quick_publisher());
            Service& svc = publisher.add_service(mixed_service());
            svc.update_last_change([](LastChangeState& lc) {
                lc.set("0", "Volume", "20", {{"channel", "Master"}});
                lc.set("0", "Mute", "0", {{"channel", "Master"}});
            });
            publisher.listen(loopback_server());
            EventListener listener(l, loopback_listener());
            StateMirror mirror(
                l, co_await subscribe(l, event_url(publisher), mirror_subscription(listener)));
            CHECK(mirror.state().stale());  // nothing known before the initial event

            StateChanges first = co_await next_changes(l, mirror);
            CHECK(first.replaced);
            CHECK_FALSE(mirror.state().stale());
            CHECK(mirror.state().get("Brightness") == "50");
            CHECK(mirror.state().get("Volume", {.channel = "Master"}) == "20");
            CHECK_FALSE(mirror.state().contains("LastChange"));

            svc.set("Brightness", "60");
            StateChanges plain = co_await next_changes(l, mirror);
            CHECK(plain.contains("Brightness"));
            CHECK_FALSE(plain.contains("Volume", {.channel = "Master"}));
            CHECK(mirror.state().get("Brightness") == "60");

            svc.set_last_change("0", "Volume", "33", {{"channel", "Master"}});
            StateChanges volume = co_await next_changes(l, mirror);
            REQUIRE(volume.variables.size() == 1);
            CHECK(volume.contains("Volume", {.channel = "Master"}));
            CHECK(mirror.state().get_int("Volume", {.channel = "Master"}).value() == 33);
            CHECK(mirror.state().get("Mute", {.channel = "Master"}) == "0");

            // A new instance appears with its first change.
            svc.set_last_change("1", "Volume", "7", {{"channel", "LF"}});
            StateChanges other = co_await next_changes(l, mirror);
            CHECK(other.contains("Volume", {.instance = "1", .channel = "LF"}));
            CHECK(mirror.state().get("Volume", {.instance = "1", .channel = "LF"}) == "7");
            CHECK(mirror.stats().resyncs_requested == 0);

            co_await mirror.unsubscribe();
            std::optional<StateChanges> end = co_await mirror.changed();
            CHECK_FALSE(end.has_value());  // the end
            co_await listener.stop();
            co_await publisher.stop();
        }(loop));
    }

    TEST_CASE("a slow reader gets the changes coalesced, each variable once, values current") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            Publisher publisher(l, quick_publisher());
            Service& svc = publisher.add_service(mixed_service());
            publisher.listen(loopback_server());
            EventListener listener(l, loopback_listener());
            StateMirrorOptions options;
            options.max_pending_changes = 3;
            StateMirror mirror(
                l, co_await subscribe(l, event_url(publisher), mirror_subscription(listener)),
                options);
            (void)co_await next_changes(l, mirror);
            for (int i = 1; i <= 30; ++i) {
                svc.set("Brightness", std::to_string(i));
                if (i % 5 == 0) co_await publisher.idle();
            }
            CHECK(co_await peers::eventually(
                l, [&] { return mirror.state().get("Brightness") == "30"; }));
            StateChanges changes = co_await next_changes(l, mirror);
            REQUIRE(changes.variables.size() == 1);
            CHECK(changes.contains("Brightness"));
            CHECK_FALSE(changes.overflowed);

            // More distinct variables than the bound: the set says so.
            svc.update_last_change([](LastChangeState& lc) {
                for (const char* instance : {"0", "1", "2", "3", "4"}) {
                    lc.set(instance, "Volume", "1", {{"channel", "Master"}});
                }
            });
            co_await publisher.idle();
            CHECK(co_await peers::eventually(l, [&] {
                return mirror.state().contains("Volume", {.instance = "4", .channel = "Master"});
            }));
            StateChanges many = co_await next_changes(l, mirror);
            CHECK(many.overflowed);
            CHECK(many.variables.size() == 3);
            CHECK(many.contains("Anything"));  // overflowed: everything may have changed
            co_await mirror.unsubscribe();
            co_await listener.stop();
            co_await publisher.stop();
        }(loop));
    }

    TEST_CASE("a SEQ gap makes the mirror stale and resubscribe; the initial event restores it") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            Publisher publisher(l, quick_publisher());
            Service& svc = publisher.add_service(mixed_service());
            publisher.listen(loopback_server());
            EventListener listener(l, loopback_listener());
            SubscribeOptions o = mirror_subscription(listener);
            o.reorder_window = 0ms;  // the gap goes out at once
            StateMirror mirror(l, co_await subscribe(l, event_url(publisher), o));
            (void)co_await next_changes(l, mirror);
            std::string first_sid = mirror.subscription().sid();
            co_await publisher.idle();

            // The device skips SEQs 1..4 (as if they were lost) and changes a variable the
            // mirror then never hears of directly.
            REQUIRE(gena::detail::PublisherTestAccess::set_next_seq(publisher, first_sid, 5));
            svc.set("Name", "hall");
            CHECK(co_await changes_until(l, mirror, [&] { return mirror.state().stale(); }));
            CHECK(mirror.state().get("Name") == "hall");  // kept, flagged

            CHECK(co_await changes_until(l, mirror, [&] { return !mirror.state().stale(); }));
            CHECK(mirror.subscription().sid() != first_sid);
            CHECK(mirror.stats().resyncs_requested == 1);
            CHECK(mirror.state().stats().replacements == 2);
            CHECK(mirror.state().get("Name") == "hall");
            CHECK(publisher.subscriber_count() == 1);  // the old SID was unsubscribed

            svc.set("Name", "attic");
            CHECK(co_await changes_until(l, mirror,
                                         [&] { return mirror.state().get("Name") == "attic"; }));
            CHECK_FALSE(mirror.state().stale());
            co_await mirror.unsubscribe();
            co_await listener.stop();
            co_await publisher.stop();
        }(loop));
    }

    TEST_CASE(
        "a device that reboots and forgets its SIDs: the mirror is restored by the "
        "resubscription's initial event") {
        uvtest::TestLoop loop(30s);
        run(loop, [](uv_loop_t* l) -> Task<void> {
            gena::PublisherOptions po;
            po.policy.min_timeout = 1s;
            po.initial_event_delay = 1ms;
            auto device = std::make_unique<uvtest::TestDevice>(
                l, po, SocketAddress::ipv4_loopback(), "Volume", "10");
            EventListener listener(l, loopback_listener());
            SubscribeOptions o = mirror_subscription(listener);
            o.requested_timeout = 2s;  // renewed after ~1.7 s: that renewal meets the reboot
            o.timeout = 1s;
            StateMirror mirror(l, co_await subscribe(l, device->url(), o));
            (void)co_await next_changes(l, mirror);
            CHECK(mirror.state().get("Volume") == "10");
            device->set("11");
            CHECK(co_await changes_until(l, mirror,
                                         [&] { return mirror.state().get("Volume") == "11"; }));

            // Reboot: a new publisher on the same port, its variable changed meanwhile.
            co_await device->restart("rebooted");
            bool saw_stale = false;
            CHECK(co_await changes_until(
                l, mirror,
                [&] {
                    saw_stale = saw_stale || mirror.state().stale();
                    return mirror.state().get("Volume") == "rebooted" && !mirror.state().stale();
                },
                15s));
            CHECK(saw_stale);  // the loss was visible before the restoration
            CHECK(mirror.subscription().stats().resubscriptions >= 1);
            CHECK(mirror.state().stats().replacements == 2);
            device->set("12");
            CHECK(co_await changes_until(l, mirror,
                                         [&] { return mirror.state().get("Volume") == "12"; }));
            co_await mirror.unsubscribe();
            co_await listener.stop();
            co_await device->stop();
        }(loop));
    }

    TEST_CASE("a subscription that ends by an error ends the mirror's changed() with it") {
        uvtest::TestLoop loop(30s);
        run(loop, [](uv_loop_t* l) -> Task<void> {
            gena::PublisherOptions po;
            po.policy.min_timeout = 1s;
            po.initial_event_delay = 1ms;
            auto device = std::make_unique<uvtest::TestDevice>(
                l, po, SocketAddress::ipv4_loopback(), "Volume", "10");
            EventListener listener(l, loopback_listener());
            SubscribeOptions o = mirror_subscription(listener);
            o.auto_resubscribe = false;  // a loss ends the subscription
            o.requested_timeout = 2s;
            o.timeout = 1s;
            StateMirror mirror(l, co_await subscribe(l, device->url(), o));
            (void)co_await next_changes(l, mirror);
            co_await device->restart();  // the renewal will get 412
            std::error_code failure;
            try {
                for (;;) {
                    std::optional<StateChanges> changes =
                        co_await with_timeout(l, mirror.changed(), 10s);
                    if (!changes) break;
                }
            } catch (const Error& e) {
                failure = e.code();
            }
            CHECK(failure == gena::errc::precondition_failed);
            CHECK(mirror.state().stale());  // it went stale when the loss was found
            co_await listener.stop();
            co_await device->stop();
        }(loop));
    }

    TEST_CASE(
        "a mirror made after the initial event was taken resubscribes at its first "
        "event, whose values alone are not the whole state") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            Publisher publisher(l, quick_publisher());
            Service& svc = publisher.add_service(mixed_service());
            publisher.listen(loopback_server());
            EventListener listener(l, loopback_listener());
            Subscription sub =
                co_await subscribe(l, event_url(publisher), mirror_subscription(listener));
            std::optional<Event> initial = co_await with_timeout(
                l,
                [](Subscription& subscription) -> Task<std::optional<Event>> {
                    co_return co_await subscription.events().next();
                }(sub),
                5s);
            REQUIRE(initial.has_value());
            CHECK(initial->seq == 0);
            StateMirror mirror(l, std::move(sub));
            svc.set("Name", "porch");
            CHECK(co_await changes_until(l, mirror, [&] {
                return !mirror.state().stale() && mirror.state().stats().replacements == 1;
            }));
            CHECK(mirror.stats().resyncs_requested == 1);
            CHECK(mirror.state().get("Name") == "porch");
            CHECK(mirror.state().get("Brightness") == "50");  // from the new initial event
            co_await mirror.unsubscribe();
            co_await listener.stop();
            co_await publisher.stop();
        }(loop));
    }

    TEST_CASE("destroying the mirror while a reader waits releases the reader; the loop closes") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            Publisher publisher(l, quick_publisher());
            publisher.add_service(mixed_service());
            publisher.listen(loopback_server());
            EventListener listener(l, loopback_listener());
            auto mirror = std::make_unique<StateMirror>(
                l, co_await subscribe(l, event_url(publisher), mirror_subscription(listener)));
            (void)co_await next_changes(l, *mirror);
            bool released = false;
            bool ended = false;
            Scope scope(l);
            scope.spawn([](StateMirror& m, bool& rel, bool& end) -> Task<void> {
                std::optional<StateChanges> c = co_await m.changed();
                rel = true;
                end = !c.has_value();
            }(*mirror, released, ended));
            co_await sleep_for(l, 10ms);
            CHECK_FALSE(released);
            mirror.reset();
            co_await scope.join();
            CHECK(released);
            CHECK(ended);
            // The dropped subscription's UNSUBSCRIBE reaches the device.
            CHECK(co_await peers::eventually(l, [&] { return publisher.subscriber_count() == 0; }));
            co_await listener.stop();
            co_await publisher.stop();
        }(loop));
    }
    TEST_CASE(
        "a resubscription whose initial event is lost too: asked again after "
        "restore_timeout") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            std::mt19937_64 random(1);
            Publisher publisher(l, quick_publisher());
            Service& svc = publisher.add_service(mixed_service());
            publisher.listen(loopback_server());
            NotifyProxy proxy(l, random);
            EventListener listener(l, loopback_listener(proxy.port()));
            listener.start();
            proxy.forward_to(listener.local_address());
            SubscribeOptions o = mirror_subscription(listener);
            o.reorder_window = 0ms;
            StateMirrorOptions mo;
            mo.restore_timeout = 200ms;
            StateMirror mirror(l, co_await subscribe(l, event_url(publisher), o), mo);
            CHECK(co_await changes_until(l, mirror, [&] { return !mirror.state().stale(); }));
            co_await publisher.idle();

            proxy.drop_initial_events(1);
            REQUIRE(gena::detail::PublisherTestAccess::set_next_seq(
                publisher, mirror.subscription().sid(), 3));
            svc.set("Name", "lost");
            CHECK(co_await changes_until(l, mirror, [&] { return mirror.state().stale(); }));
            Clock::time_point stale_at = Clock::now();
            // The resubscription's initial event is dropped: nothing else comes, until the
            // mirror asks again.
            CHECK(co_await changes_until(l, mirror, [&] { return !mirror.state().stale(); }));
            CHECK(Clock::now() - stale_at >= 150ms);
            CHECK(proxy.dropped == 1);
            CHECK(mirror.stats().resyncs_requested == 2);
            CHECK(mirror.state().get("Name") == "lost");
            CHECK(mirror.state().stats().replacements == 2);
            co_await mirror.unsubscribe();
            co_await listener.stop();
            co_await proxy.stop();
            co_await publisher.stop();
        }(loop));
    }

    TEST_CASE(
        "randomized: 10,000 changes through a proxy that delays, reorders and drops "
        "NOTIFYs; the mirror equals the device after every resync and at the end") {
        // Replay a failure with UVGENA_MIRROR_SEED; scale with UVGENA_MIRROR_CHANGES (1,000
        // by default under valgrind, whose slowdown would turn 10,000 into minutes).
        std::uint64_t seed = env_number("UVGENA_MIRROR_SEED", std::random_device{}());
        std::uint64_t count =
            env_number("UVGENA_MIRROR_CHANGES", uvtest::under_valgrind() ? 1'000 : 10'000);
        std::fprintf(stderr, "state mirror randomized: seed %llu, %llu changes\n",
                     static_cast<unsigned long long>(seed), static_cast<unsigned long long>(count));
        INFO("UVGENA_MIRROR_SEED=" << seed);
        uvtest::TestLoop loop(240s);
        std::mt19937_64 rng(seed);
        run(loop, [](uv_loop_t* l, std::mt19937_64& random, std::uint64_t changes) -> Task<void> {
            Clock::time_point started = Clock::now();
            RandomDevice device(l);
            NotifyProxy proxy(l, random);
            EventListener listener(l, loopback_listener(proxy.port()));
            listener.start();
            proxy.forward_to(listener.local_address());
            SubscribeOptions o = mirror_subscription(listener);
            o.reorder_window = 15ms;
            StateMirrorOptions mo;
            mo.restore_timeout = 300ms;  // an initial event dropped too: ask again soon
            StateMirror mirror(l, co_await subscribe(l, device.url(), o), mo);
            CHECK(co_await changes_until(l, mirror, [&] { return !mirror.state().stale(); }));
            CHECK(device.difference(mirror.state()) == "");
            proxy.set_chaos({.drop = 0.004, .delay = 0.03, .max_delay = 40ms});

            std::uint64_t resyncs = 0, checks = 0;
            for (std::uint64_t i = 0; i < changes; ++i) {
                if (mirror.state().stale()) {
                    // A resync is under way: no change until it is done, then the mirror
                    // must equal the device (the initial event came after the last change).
                    ++resyncs;
                    bool restored = co_await changes_until(
                        l, mirror, [&] { return !mirror.state().stale(); }, 20s);
                    REQUIRE_MESSAGE(restored, "not restored, resync " << resyncs);
                    std::string diff = device.difference(mirror.state());
                    CHECK_MESSAGE(diff == "", "after resync " << resyncs << ": " << diff);
                    ++checks;
                }
                device.change(random);
                // Let the NOTIFYs flow: a few changes per round trip, so that the publisher
                // rarely has to coalesce its queue.
                if (i % 4 == 3) co_await device.publisher.idle();
            }

            // The end: the network heals, and one more change makes a loss of the last
            // NOTIFYs visible (no protocol can see the loss of a last event before the next).
            proxy.set_chaos({});
            CHECK(co_await peers::eventually(
                l, [&] { return proxy.in_flight() == 0; }, 10s));
            device.svc->set("Name", "end");
            CHECK(co_await changes_until(
                l, mirror,
                [&] { return !mirror.state().stale() && mirror.state().get("Name") == "end"; },
                20s));
            co_await device.publisher.idle();
            CHECK(co_await peers::eventually(
                l, [&] { return proxy.in_flight() == 0; }, 10s));
            std::string diff = device.difference(mirror.state());
            CHECK_MESSAGE(diff == "", "at the end: " << diff);
            CHECK_FALSE(mirror.state().stale());

            const ServiceStateStats& st = mirror.state().stats();
            SubscriptionStats sub = mirror.subscription().stats();
            double seconds = std::chrono::duration<double>(Clock::now() - started).count();
            std::fprintf(
                stderr,
                "state mirror randomized: %llu changes in %.1f s; NOTIFYs %llu, dropped "
                "%llu, delayed %llu, refused (old SID) %llu; events applied %llu, late "
                "%llu (%llu older values kept), reordered in the window %llu, went stale %llu; "
                "resyncs %llu (%llu checked equal), resubscriptions %llu, asked %llu\n",
                static_cast<unsigned long long>(changes), seconds,
                static_cast<unsigned long long>(proxy.received),
                static_cast<unsigned long long>(proxy.dropped),
                static_cast<unsigned long long>(proxy.delayed),
                static_cast<unsigned long long>(proxy.refused),
                static_cast<unsigned long long>(st.events),
                static_cast<unsigned long long>(st.late_events),
                static_cast<unsigned long long>(st.late_values_kept),
                static_cast<unsigned long long>(sub.events_reordered),
                static_cast<unsigned long long>(st.stale_marks),
                static_cast<unsigned long long>(resyncs), static_cast<unsigned long long>(checks),
                static_cast<unsigned long long>(sub.resubscriptions),
                static_cast<unsigned long long>(mirror.stats().resyncs_requested));
            // Each initial event followed a (re)subscription; one whose initial event was dropped
            // was followed by another.
            CHECK(st.replacements <= sub.resubscriptions + 1);
            if (changes >= 10'000) {
                // The chaos was real: NOTIFYs were lost and overtaken, and the mirror resynced.
                CHECK(proxy.dropped > 0);
                CHECK(proxy.delayed > 0);
                CHECK(resyncs > 0);
                CHECK(sub.events_reordered + st.late_events > 0);
            }
            co_await mirror.unsubscribe();
            co_await listener.stop();
            co_await proxy.stop();
            co_await device.publisher.stop();
        }(loop, rng, count));
    }
    TEST_CASE(
        "randomized, nothing dropped and no resubscription: late events fill every gap and "
        "the mirror ends equal to the device (late values never overwrite newer ones)") {
        // With the resync of the first test, a wrongly applied late event would be erased by
        // the next initial event; here nothing restores the state but the late rule.
        std::uint64_t seed = env_number("UVGENA_MIRROR_SEED", std::random_device{}());
        std::uint64_t count =
            env_number("UVGENA_MIRROR_CHANGES", uvtest::under_valgrind() ? 1'000 : 10'000) / 3;
        std::fprintf(stderr, "state mirror late rule: seed %llu, %llu changes\n",
                     static_cast<unsigned long long>(seed), static_cast<unsigned long long>(count));
        INFO("UVGENA_MIRROR_SEED=" << seed);
        uvtest::TestLoop loop(240s);
        std::mt19937_64 rng(seed);
        run(loop, [](uv_loop_t* l, std::mt19937_64& random, std::uint64_t changes) -> Task<void> {
            RandomDevice device(l);
            NotifyProxy proxy(l, random);
            EventListener listener(l, loopback_listener(proxy.port()));
            listener.start();
            proxy.forward_to(listener.local_address());
            SubscribeOptions o = mirror_subscription(listener);
            o.reorder_window = 2ms;  // most delayed NOTIFYs arrive after it: late
            StateMirrorOptions mo;
            mo.resubscribe_when_stale = false;
            StateMirror mirror(l, co_await subscribe(l, device.url(), o), mo);
            CHECK(co_await changes_until(l, mirror, [&] { return !mirror.state().stale(); }));
            proxy.set_chaos({.drop = 0, .delay = 0.05, .max_delay = 30ms});
            for (std::uint64_t i = 0; i < changes; ++i) {
                device.change(random);
                if (i % 4 == 3) co_await device.publisher.idle();
            }
            co_await device.publisher.idle();
            CHECK(co_await peers::eventually(
                l, [&] { return proxy.in_flight() == 0; }, 10s));
            // Every NOTIFY reached the subscription: what it reported missed arrived late.
            CHECK(co_await peers::eventually(
                l, [&] { return mirror.subscription().stats().events_missed == 0; }, 5s));
            co_await sleep_for(l, 20ms);  // the last events through the window and the mirror
            std::string diff = device.difference(mirror.state());
            CHECK_MESSAGE(diff == "", "at the end: " << diff);
            const ServiceStateStats& st = mirror.state().stats();
            std::fprintf(stderr,
                         "state mirror late rule: %llu changes; NOTIFYs %llu, delayed %llu; "
                         "late events %llu, older values kept %llu, stale marks %llu\n",
                         static_cast<unsigned long long>(changes),
                         static_cast<unsigned long long>(proxy.received),
                         static_cast<unsigned long long>(proxy.delayed),
                         static_cast<unsigned long long>(st.late_events),
                         static_cast<unsigned long long>(st.late_values_kept),
                         static_cast<unsigned long long>(st.stale_marks));
            CHECK(proxy.dropped == 0);
            CHECK(mirror.stats().resyncs_requested == 0);
            if (changes >= 3'000) {
                CHECK(st.late_events > 0);
                CHECK(st.late_values_kept > 0);  // the rule was exercised
            }
            co_await mirror.unsubscribe();
            co_await listener.stop();
            co_await proxy.stop();
            co_await device.publisher.stop();
        }(loop, rng, count));
    }
}
