// The teardown harness (issue 17): every public asynchronous operation is run against a peer
// that stalls at each step of the exchange, and at that suspension point every object
// involved is destroyed, in every order. Each (operation, stall step, destruction order) is
// one doctest case, registered from a table, so the count is what doctest prints. Checked:
// nothing is touched after free (the suite is meant for the ASan+UBSan build), no callback
// runs after its subscription or owner ended, every waiter is released with an end or an
// error, and the loop then closes with uv_loop_close() == 0.
//
// A case that hits a bug being fixed on another branch is registered with doctest::skip()
// and names the bug (see known_bug()); it is enabled after the merge of that fix. Until bug 2
// is fixed, a late callback in an ordinary case (a timing matter there) is only warned about:
// see kBug2Merged.
//
// Run one row: test_lifetime -tc='lifetime/renew/half_body/task+sub+listener+owner'
// (--no-skip runs the skipped rows too; --list-test-cases lists and counts them).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "peers.hpp"
#include "subscriber/subscription_impl.hpp"  // the event stream of a subscription's core
#include "support/test_loop.hpp"
#include "uvgena/blocking/background_loop.hpp"
#include "uvgena/blocking/subscription.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/http/client.hpp"
#include "uvgena/net/udp.hpp"
#include "uvgena/publisher/publisher.hpp"
#include "uvgena/ssdp/discovery.hpp"
#include "uvgena/ssdp/message.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace uvgena;
using namespace std::chrono_literals;
using lifetime::slow;
using lifetime::Step;

namespace {

// --- the table ----------------------------------------------------------------------------

enum class Op {
    subscribe,            // gena::subscribe, stalled on the SUBSCRIBE answer
    renew,                // Subscription::renew, stalled on the renewal answer
    unsubscribe,          // Subscription::unsubscribe, stalled on the UNSUBSCRIBE answer
    listener_stop,        // EventListener::stop with an UNSUBSCRIBE and a NOTIFY stalled
    listener_drain,       // EventListener::stop done unsubscribing, draining a stalled NOTIFY
    in_callback,          // renew stalled; everything destroyed from inside an event callback
    fetch_description,    // ssdp::fetch_description, stalled on the GET answer
    http_request,         // http::request, stalled on the answer
    publisher_subscribe,  // Publisher::stop / idle while a SUBSCRIBE arrives stalled
    publisher_notify,     // Publisher::stop / idle while a NOTIFY to a subscriber is stalled
    bl_run,               // BackgroundLoop::run(task) stalled (a description fetch)
    bl_subscribe,         // BackgroundLoop::subscribe stalled on the SUBSCRIBE answer
    bl_renew,             // BlockingSubscription::renew stalled, a thread in events().get()
    bl_unsubscribe,       // BlockingSubscription::unsubscribe stalled, likewise
    bl_keep,              // a Subscription kept by keep_until_stop, its renewal stalled
    // SSDP (multicast: only in test_lifetime_net, inside a private network namespace)
    search,        // ssdp::Search, a task in next(); the fake device answers up to step
    discover,      // ssdp::discover (one shot)
    adv_listener,  // ssdp::AdvertisementListener, a task in next()
};

// The objects a case destroys. `task` is the Scope running the operation (and a waiter on
// the subscription's event stream); `owner` is the user's object that owns the Subscription
// and receives its callbacks; `stopper` / `idler` are the tasks awaiting Publisher::stop()
// and Publisher::idle(); `bloop` is the BackgroundLoop, `result` the EventualResult of the
// blocking call, `bsub` the BlockingSubscription.
enum class Obj {
    task,
    cancel,
    sub,
    listener,
    owner,
    publisher,
    stopper,
    idler,
    bloop,
    result,
    bsub,
    ssdp
};

const char* to_string(Op op) {
    switch (op) {
        case Op::subscribe:
            return "subscribe";
        case Op::renew:
            return "renew";
        case Op::unsubscribe:
            return "unsubscribe";
        case Op::listener_stop:
            return "listener_stop";
        case Op::listener_drain:
            return "listener_drain";
        case Op::in_callback:
            return "in_callback";
        case Op::fetch_description:
            return "fetch_description";
        case Op::http_request:
            return "http_request";
        case Op::publisher_subscribe:
            return "publisher_subscribe";
        case Op::publisher_notify:
            return "publisher_notify";
        case Op::bl_run:
            return "bl_run";
        case Op::bl_subscribe:
            return "bl_subscribe";
        case Op::bl_renew:
            return "bl_renew";
        case Op::bl_unsubscribe:
            return "bl_unsubscribe";
        case Op::bl_keep:
            return "bl_keep";
        case Op::search:
            return "search";
        case Op::discover:
            return "discover";
        case Op::adv_listener:
            return "adv_listener";
    }
    return "?";
}

const char* to_string(Obj o) {
    switch (o) {
        case Obj::task:
            return "task";
        case Obj::cancel:
            return "cancel";
        case Obj::sub:
            return "sub";
        case Obj::listener:
            return "listener";
        case Obj::owner:
            return "owner";
        case Obj::publisher:
            return "publisher";
        case Obj::stopper:
            return "stopper";
        case Obj::idler:
            return "idler";
        case Obj::bloop:
            return "bloop";
        case Obj::result:
            return "result";
        case Obj::bsub:
            return "bsub";
        case Obj::ssdp:
            return "ssdp";
    }
    return "?";
}

std::vector<Obj> objects_of(Op op) {
    switch (op) {
        case Op::subscribe:
            return {Obj::task, Obj::listener, Obj::owner};
        case Op::renew:
        case Op::unsubscribe:
        case Op::listener_stop:
        case Op::listener_drain:
        case Op::in_callback:
            return {Obj::task, Obj::sub, Obj::listener, Obj::owner};
        case Op::fetch_description:
        case Op::http_request:
            return {Obj::task, Obj::cancel};
        case Op::publisher_subscribe:
        case Op::publisher_notify:
            return {Obj::publisher, Obj::stopper, Obj::idler};
        case Op::bl_run:
        case Op::bl_subscribe:
        case Op::bl_keep:
            return {Obj::bloop, Obj::result};
        case Op::search:
        case Op::adv_listener:
            return {Obj::task, Obj::ssdp};
        case Op::discover:
            return {Obj::task};
        case Op::bl_renew:
        case Op::bl_unsubscribe:
            return {Obj::bloop, Obj::bsub, Obj::result};
    }
    return {};
}

struct CaseSpec {
    Op op;
    Step step;
    std::vector<Obj> order;
    std::string name;
    const char* known_bug = nullptr;  // skipped until the fix of that bug of issue 17 is merged
};

// Cases that hit a bug of issue 17 were skipped here until its fix was merged (bugs 2, 3, 4
// and the keep_until_stop item): all are fixed. A bug found later is named here, with the
// rows it skips, until its fix lands.
//
// Open: under valgrind only, a listener_drain/close_mid row hung twice in about four CI runs
// (once sub+owner+listener+task, 2026-12-05): EventListener::stop() spawned while a NOTIFY
// client had sent half a head and closed, then the loop never ran the test's 1 ms sleep
// (the watchdog's last step: "listener stop spawned"). Not reproduced natively, under ASan or
// in 12 targeted valgrind runs. Those 24 rows still run in the g++, ASan and clang builds.
const char* known_bug(Op op, Step step, const std::vector<Obj>&) {
    if (op == Op::listener_drain && step == Step::close_mid && uvtest::under_valgrind()) {
        return "the listener_drain/close_mid hang seen under valgrind (open)";
    }
    return nullptr;
}

#ifdef UVGENA_LIFETIME_NET
constexpr Op kOps[] = {Op::search, Op::discover, Op::adv_listener};
#else
constexpr Op kOps[] = {Op::subscribe,         Op::renew,          Op::unsubscribe,
                       Op::listener_stop,     Op::listener_drain, Op::in_callback,
                       Op::fetch_description, Op::http_request,   Op::publisher_subscribe,
                       Op::publisher_notify,  Op::bl_run,         Op::bl_subscribe,
                       Op::bl_renew,          Op::bl_unsubscribe, Op::bl_keep};
#endif

std::vector<CaseSpec>& table() {
    static std::vector<CaseSpec> cases = [] {
        std::vector<CaseSpec> out;
        for (Op op : kOps) {
            for (Step step : lifetime::kSteps) {
                std::vector<Obj> order = objects_of(op);
                std::sort(order.begin(), order.end());
                do {
                    CaseSpec c{op, step, order, {}, nullptr};
                    c.name = std::string("lifetime/") + to_string(op) + "/" +
                             lifetime::to_string(step) + "/";
                    for (std::size_t i = 0; i < order.size(); ++i) {
                        if (i) c.name += "+";
                        c.name += to_string(order[i]);
                    }
                    c.known_bug = known_bug(op, step, order);
                    out.push_back(std::move(c));
                } while (std::next_permutation(order.begin(), order.end()));
            }
        }
        return out;
    }();
    return cases;
}

// --- helpers ------------------------------------------------------------------------------

/// Runs the loop for `d` (timers, I/O and the check phase all get their turn).
void settle(uv_loop_t* loop, std::chrono::milliseconds d = 2ms) {
    uvgena::run(loop, [](uv_loop_t* l, std::chrono::milliseconds t) -> Task<void> {
        co_await sleep_for(l, t);
    }(loop, d));
}

/// Runs the loop until `pred` holds; false after `limit`.
template <typename Pred>
bool wait_until(uv_loop_t* loop, Pred pred, std::chrono::milliseconds limit = slow(2000ms)) {
    auto deadline = Clock::now() + limit;
    while (!pred()) {
        if (Clock::now() >= deadline) return false;
        settle(loop, 1ms);
    }
    return true;
}

/// Runs the loop until nothing keeps it alive; false if something still does after
/// `limit` (a leaked timer, a socket nobody closes, a task that never ends).
bool drain(uv_loop_t* loop, std::chrono::milliseconds limit = slow(2000ms)) {
    uv_timer_t deadline;
    bool expired = false;
    uv_timer_init(loop, &deadline);
    deadline.data = &expired;
    uv_timer_start(
        &deadline, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; },
        static_cast<std::uint64_t>(limit.count()), 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(&deadline));
    while (uv_run(loop, UV_RUN_ONCE) != 0 && !expired) {
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
    uv_run(loop, UV_RUN_NOWAIT);
    return !expired;
}

/// Error-level lines the library logged during a case (e.g. BackgroundLoop reporting a
/// handle left open or a loop it could not close); printed and counted.
std::mutex g_log_mutex;
std::vector<std::string> g_errors;

const bool log_sink_installed = [] {
    set_log_level(LogLevel::warning);
    set_log_sink([](LogLevel level, std::string_view message) {
        if (level < LogLevel::error) return;
        std::lock_guard lock(g_log_mutex);
        g_errors.emplace_back(message);
    });
    return true;
}();

std::vector<std::string> take_errors() {
    std::lock_guard lock(g_log_mutex);
    return std::exchange(g_errors, {});
}

/// A BackgroundLoop left an unclean loop behind (a handle its owner left open, a loop it
/// could not close): these are the blocking facade's equivalents of uv_loop_close() != 0.
bool unclean_loop_reported(const std::vector<std::string>& errors) {
    for (const auto& e : errors) {
        if (e.find("left open") != std::string::npos ||
            e.find("uv_loop_close") != std::string::npos ||
            e.find("is kept") != std::string::npos) {
            return true;
        }
    }
    return false;
}

// Bug 2 of issue 17 (a callback runs after its subscription ended) is fixed on another
// branch. Whether an ordinary case sees one depends on timing (a NOTIFY accepted in the turn
// the subscription is destroyed), so until that fix is merged a late callback there is only
// warned about; the in_callback cases, which provoke it on purpose, check it and are skipped
// (see known_bug). Set to true after the merge of the fix for bug 2.
constexpr bool kBug2Merged = true;

// --- loop cases ---------------------------------------------------------------------------

/// The user's object: owns the Subscription, receives its callbacks. Its string lives on the
/// heap so that a callback reaching a freed owner reads freed memory (ASan).
struct Owner {
    std::string name = std::string(64, 'o');
    std::optional<gena::Subscription> sub;
    int events = 0;
};

struct LoopCase {
    explicit LoopCase(uv_loop_t* l) : loop(l) {}

    uv_loop_t* loop;
    std::unique_ptr<lifetime::StallPeer> peer;
    std::unique_ptr<lifetime::StallClient> client;
    std::unique_ptr<gena::EventListener> listener;
    Owner* owner = nullptr;
    std::unique_ptr<Scope> task;
    std::unique_ptr<gena::Publisher> publisher;
    gena::Service* service = nullptr;
    std::unique_ptr<Scope> stopper;
    std::unique_ptr<Scope> idler;

    bool sub_gone = false;  // the Subscription was destroyed (or never reached its owner)
    bool owner_gone = false;
    bool listener_gone = false;  // destroying the listener ends its subscriptions
    bool publisher_gone = false;
    int late_callbacks = 0;  // callbacks after their subscription or owner ended
    const std::vector<Obj>* in_callback_order = nullptr;  // Op::in_callback: what to destroy
    bool fired = false;
    void destroy_from_callback(Obj obj);
    int callbacks = 0;
    std::vector<std::string> late;  // which

    gena::SubscribeOptions options() {
        gena::SubscribeOptions opt;
        opt.listener = listener.get();
        opt.timeout = slow(150ms);
        return opt;
    }

    gena::SubscriptionHandlers handlers(Owner* o) {
        gena::SubscriptionHandlers h;  // a named variable (bug 1: never inside co_await)
        LoopCase* c = this;
        h.on_event = [c, o](gena::Event) { c->callback(o, "on_event"); };
        h.on_renew_failed = [c, o](const Error&) { c->callback(o, "on_renew_failed"); };
        h.on_resubscribe = [c, o](const std::string&, const std::string&) {
            c->callback(o, "on_resubscribe");
        };
        return h;
    }

    void callback(Owner* o, const char* which) {
        if (in_callback_order && !fired && !sub_gone && !owner_gone && !listener_gone) {
            fired = true;
            for (Obj obj : *in_callback_order) destroy_from_callback(obj);
            return;
        }
        if (sub_gone || owner_gone || listener_gone) {
            ++late_callbacks;
            late.push_back(std::string(which) + (owner_gone ? " after owner" : "") +
                           (sub_gone ? " after sub" : "") +
                           (listener_gone ? " after listener" : ""));
            return;  // not touching the owner: the count reports it
        }
        o->events += static_cast<int>(o->name.size() > 0);
        ++callbacks;
    }

    void start_listener() {
        gena::ListenerOptions lo;
        lo.listen_host = "127.0.0.1";
        lo.port = 0;
        lo.header_timeout = slow(200ms);
        lo.body_timeout = slow(200ms);
        lo.idle_timeout = slow(200ms);
        lo.write_timeout = slow(200ms);
        listener = std::make_unique<gena::EventListener>(loop, lo);
        listener->start();
    }

    std::string notify_head() const {
        return "NOTIFY /uvgena/1 HTTP/1.1\r\nHOST: 127.0.0.1\r\nCONTENT-TYPE: text/xml\r\n"
               "NT: upnp:event\r\nNTS: upnp:propchange\r\nSID: uuid:lifetime-1\r\nSEQ: 7\r\n";
    }
};

Task<void> events_waiter(std::shared_ptr<gena::detail::SubscriptionCore> core) {
    gena::EventStream stream = gena::detail::SubscriberAccess::make_stream(std::move(core));
    try {
        while (co_await stream.next()) {
        }
    } catch (const Error&) {
        // an end by error is an end
    }
}

Task<void> subscribe_into(LoopCase* c, Owner* o) {
    gena::SubscribeOptions opt = c->options();
    gena::SubscriptionHandlers handlers = c->handlers(o);
    gena::Subscription s =
        co_await gena::subscribe(c->loop, c->peer->url(), opt, std::move(handlers));
    if (c->owner_gone || c->task == nullptr) co_return;  // nobody to hand it to
    o->sub.emplace(std::move(s));
}

void LoopCase::destroy_from_callback(Obj obj) {
    switch (obj) {
        case Obj::task:
            task.reset();
            break;
        case Obj::sub:
            sub_gone = true;
            if (!owner_gone) owner->sub.reset();
            break;
        case Obj::listener:
            listener_gone = true;
            listener.reset();
            break;
        case Obj::owner:
            owner_gone = true;
            delete owner;
            break;
        default:
            break;
    }
}

void destroy(LoopCase& c, const CaseSpec& spec, Obj obj) {
    switch (obj) {
        case Obj::task:
            // Waiters must have been released once everything they wait on is gone.
            if ((c.sub_gone || c.owner_gone || spec.op == Op::subscribe) && c.listener_gone) {
                bool released = wait_until(
                    c.loop, [&] { return c.task->empty(); }, slow(1000ms));
                CHECK_MESSAGE(released,
                              "a task awaiting " << to_string(spec.op) << " was never released");
            }
            if (spec.op == Op::subscribe && (c.owner_gone || !c.owner->sub)) c.sub_gone = true;
            c.task.reset();
            break;
        case Obj::cancel:
            // A stop request on the task: it must end promptly (the exchange's own timeout
            // is 2 s, far beyond this bound), with an error.
            if (c.task) {
                c.task->request_stop();
                bool released = wait_until(
                    c.loop, [&] { return c.task->empty(); }, slow(500ms));
                CHECK_MESSAGE(released, "a stopped " << to_string(spec.op)
                                                     << " was not released before its timeout");
            }
            break;
        case Obj::sub:
            c.sub_gone = true;
            if (!c.owner_gone) c.owner->sub.reset();
            break;
        case Obj::listener:
            c.listener_gone = true;
            c.listener.reset();
            break;
        case Obj::owner:
            c.owner_gone = true;
            delete c.owner;  // destroys the Subscription it still holds
            break;
        case Obj::publisher:
            c.publisher_gone = true;
            c.service = nullptr;
            c.publisher.reset();
            break;
        case Obj::stopper:
        case Obj::idler: {
            auto& scope = obj == Obj::stopper ? c.stopper : c.idler;
            if (c.publisher_gone) {
                bool released = wait_until(
                    c.loop, [&] { return scope->empty(); }, slow(1000ms));
                CHECK_MESSAGE(released, "a task awaiting Publisher::"
                                            << (obj == Obj::stopper ? "stop" : "idle")
                                            << " was never released");
            }
            scope.reset();
            break;
        }
        default:
            FAIL("not a loop object");
            break;
    }
}

Task<http::Response> raw_subscribe(uv_loop_t* loop, std::string url, std::string callback) {
    http::Headers h;
    h.set("CALLBACK", "<" + callback + ">");
    h.set("NT", "upnp:event");
    h.set("TIMEOUT", "Second-300");
    http::ClientOptions o;
    o.timeout = slow(500ms);
    co_return co_await http::request(loop, "SUBSCRIBE", url, std::move(h), {}, o);
}

void run_loop_case(const CaseSpec& spec) {
    uvtest::TestLoop loop(slow(20s));
    {
        LoopCase c(loop);
        c.owner = new Owner;
        bool owner_freed = false;
        switch (spec.op) {
            case Op::subscribe:
            case Op::renew:
            case Op::unsubscribe:
            case Op::listener_stop:
            case Op::listener_drain:
            case Op::in_callback: {
                // listener_drain: the peer answers everything; only the NOTIFY stalls.
                int stall_at = spec.op == Op::subscribe        ? 0
                               : spec.op == Op::listener_drain ? 1000
                                                               : 1;
                c.peer = std::make_unique<lifetime::StallPeer>(loop, spec.step, stall_at);
                c.start_listener();
                c.task = std::make_unique<Scope>(loop, [](std::exception_ptr) {});
                if (spec.op == Op::subscribe) {
                    c.task->spawn(subscribe_into(&c, c.owner));
                    break;
                }
                uvtest::note_step("subscribe");
                uvgena::run(loop, subscribe_into(&c, c.owner));
                REQUIRE(c.owner->sub);
                uvtest::note_step("wait for the initial event");
                // The initial event arrives and goes to the callback.
                CHECK(wait_until(loop, [&] { return c.callbacks > 0; }));
                gena::Subscription* s = &*c.owner->sub;
                c.task->spawn(events_waiter(gena::detail::SubscriberAccess::core(*s)));
                if (spec.op == Op::in_callback) c.in_callback_order = &spec.order;
                if (spec.op == Op::renew || spec.op == Op::in_callback) {
                    c.task->spawn([](gena::Subscription* target) -> Task<void> {
                        co_await target->renew();
                    }(s));
                } else if (spec.op == Op::unsubscribe) {
                    c.task->spawn([](gena::Subscription* target) -> Task<void> {
                        co_await target->unsubscribe(true);
                    }(s));
                } else {
                    c.client = std::make_unique<lifetime::StallClient>(loop, c.listener->port(),
                                                                       spec.step, c.notify_head());
                    uvtest::note_step("wait for the stalled NOTIFY client");
                    REQUIRE(wait_until(loop, [&] { return c.client->stalled(); }));
                    uvtest::note_step("listener stop spawned");
                    c.task->spawn([](gena::EventListener* l) -> Task<void> {
                        co_await l->stop();
                    }(c.listener.get()));
                    if (spec.op == Op::listener_drain) {
                        // The UNSUBSCRIBE was answered: stop() now waits for the server.
                        REQUIRE(wait_until(loop, [&] { return c.peer->answered() >= 2; }));
                    }
                }
                break;
            }
            case Op::fetch_description: {
                c.peer = std::make_unique<lifetime::StallPeer>(loop, spec.step, 0);
                c.task = std::make_unique<Scope>(loop, [](std::exception_ptr) {});
                c.task->spawn([](uv_loop_t* l, std::string url) -> Task<void> {
                    ssdp::FetchOptions fo;
                    fo.timeout = slow(2s);
                    (void)co_await ssdp::fetch_description(l, std::move(url), fo);
                }(loop, c.peer->url("/desc.xml")));
                break;
            }
            case Op::http_request: {
                c.peer = std::make_unique<lifetime::StallPeer>(loop, spec.step, 0);
                c.task = std::make_unique<Scope>(loop, [](std::exception_ptr) {});
                c.task->spawn([](uv_loop_t* l, std::string url) -> Task<void> {
                    http::ClientOptions o;
                    o.timeout = slow(2s);
                    (void)co_await http::request(l, "GET", url, {}, {}, o);
                }(loop, c.peer->url("/x")));
                break;
            }
            case Op::publisher_subscribe:
            case Op::publisher_notify: {
                gena::PublisherOptions po;
                po.notify_timeout = slow(150ms);
                po.notify_connect_timeout = slow(100ms);
                // The NOTIFY must be in flight when stop() comes, right after the SUBSCRIBE.
                po.initial_event_delay = 0ms;
                c.publisher = std::make_unique<gena::Publisher>(loop, po);
                gena::ServiceConfig sc;
                sc.event_path = "/event";
                sc.variables = {{"Volume", "1"}};
                c.service = &c.publisher->add_service(std::move(sc));
                http::ServerOptions so;
                so.address = SocketAddress::ipv4_loopback(0);
                so.header_timeout = slow(200ms);
                so.body_timeout = slow(200ms);
                so.idle_timeout = slow(200ms);
                so.write_timeout = slow(200ms);
                c.publisher->listen(so);
                std::uint16_t port = c.publisher->server()->port();
                if (spec.op == Op::publisher_subscribe) {
                    c.client = std::make_unique<lifetime::StallClient>(
                        loop, port, spec.step,
                        "SUBSCRIBE /event HTTP/1.1\r\nHOST: 127.0.0.1\r\nCALLBACK: "
                        "<http://127.0.0.1:9/cb>\r\nNT: upnp:event\r\nTIMEOUT: Second-300\r\n");
                    REQUIRE(wait_until(loop, [&] { return c.client->stalled(); }));
                } else {
                    c.peer = std::make_unique<lifetime::StallPeer>(loop, spec.step, 0);
                    http::Response r = uvgena::run(
                        loop,
                        raw_subscribe(loop, "http://127.0.0.1:" + std::to_string(port) + "/event",
                                      c.peer->url("/cb")));
                    REQUIRE(r.status == 200);
                    c.service->set("Volume", "2");
                }
                c.stopper = std::make_unique<Scope>(loop, [](std::exception_ptr) {});
                c.idler = std::make_unique<Scope>(loop, [](std::exception_ptr) {});
                c.idler->spawn(c.publisher->idle());
                c.stopper->spawn(c.publisher->stop(slow(50ms)));
                break;
            }
            default:
                FAIL("not a loop case");
                return;
        }
        if (c.peer && spec.op != Op::listener_drain) {
            REQUIRE(wait_until(loop, [&] { return c.peer->stalled() > 0; }));
        }
        uvtest::note_step("settle before destruction");
        settle(loop);  // the client side reads what the peer sent; events are delivered

        if (spec.op == Op::in_callback) {
            // The stalled peer's NOTIFYs reach the callback, which destroys everything.
            CHECK_MESSAGE(wait_until(loop, [&] { return c.fired; }),
                          "no event reached the callback");
            if (c.fired)
                owner_freed = std::count(spec.order.begin(), spec.order.end(), Obj::owner) > 0;
            settle(loop);
        } else {
            for (Obj obj : spec.order) {
                if (obj == Obj::owner) owner_freed = true;
                uvtest::note_step(to_string(obj));
                destroy(c, spec, obj);
                settle(loop, 1ms);  // callbacks, completions and timers between destructions
            }
        }
        if (!owner_freed) {
            c.owner_gone = true;
            delete c.owner;
        }
        uvtest::note_step("close the stalled client");
        if (c.client) uvgena::run(loop, c.client->close());
        uvtest::note_step("close the peer");
        if (c.peer) uvgena::run(loop, c.peer->close());
        uvtest::note_step("reset the rest");
        if (kBug2Merged || spec.op == Op::in_callback) {
            CHECK_MESSAGE(c.late_callbacks == 0,
                          "callbacks after their subscription or owner ended: "
                              << (c.late.empty() ? std::string() : c.late.front()));
        } else if (c.late_callbacks != 0) {
            WARN_MESSAGE(c.late_callbacks == 0, "bug 2: " << c.late.front());
        }
        c.listener.reset();
        c.publisher.reset();
        c.task.reset();
        c.stopper.reset();
        c.idler.reset();
        c.client.reset();
        c.peer.reset();
        uvtest::note_step("drain");
        CHECK_MESSAGE(drain(loop), "the loop did not become idle after every object was gone");
    }
    uvtest::note_step("close the loop");
    CHECK(loop.close() == 0);
    auto errors = take_errors();
    for (const auto& e : errors) MESSAGE("logged: " << e);
}

// --- blocking cases ---------------------------------------------------------------------

// Subscribes on the loop thread and hands the Subscription to keep_until_stop, the
// documented owner of loop-thread objects; the caller gets a weak reference.
Task<std::weak_ptr<gena::Subscription>> subscribe_kept(BackgroundLoop* b, uv_loop_t* l,
                                                       std::string url, gena::SubscribeOptions so) {
    auto sub = std::make_shared<gena::Subscription>(
        co_await gena::subscribe(l, std::move(url), std::move(so)));
    b->keep_until_stop(sub);
    co_return sub;
}

Task<void> renew_kept(std::weak_ptr<gena::Subscription> w) {
    auto sub = w.lock();
    if (!sub) co_return;
    co_await sub->renew();
}

void run_blocking_case(const CaseSpec& spec) {
    uvtest::Watchdog watchdog(slow(20s));
    (void)take_errors();
    // The peer runs on a loop of its own, so that this thread may block.
    auto peer_loop = std::make_unique<BackgroundLoop>();
    std::shared_ptr<lifetime::StallPeer> peer;
    int stall_at = (spec.op == Op::bl_run || spec.op == Op::bl_subscribe) ? 0 : 1;
    peer_loop
        ->run([&](uv_loop_t* l) {
            peer = std::make_shared<lifetime::StallPeer>(l, spec.step, stall_at);
        })
        .wait();
    std::string url = peer->url(spec.op == Op::bl_run ? "/desc.xml" : "/event");

    BackgroundLoopOptions bo;
    bo.shutdown_grace = slow(100ms);  // shorter than the exchanges' timeout: the grace runs out
    auto bloop = std::make_unique<BackgroundLoop>(bo);
    // The blocking call's result; ready() tells whether its waiter would be released.
    std::function<bool()> result_ready;
    std::function<void()> drop_result;
    std::optional<EventualResult<void>> void_result;
    std::optional<EventualResult<ssdp::DeviceDescription>> desc_result;
    std::optional<EventualResult<BlockingSubscription>> sub_result;
    std::optional<BlockingSubscription> bsub;
    std::atomic<bool> stream_ended{false};
    std::thread stream_waiter;

    gena::SubscribeOptions so;
    so.timeout = slow(250ms);
    switch (spec.op) {
        case Op::bl_run:
            desc_result.emplace(bloop->run([u = url](uv_loop_t* l) {
                ssdp::FetchOptions fo;
                fo.timeout = slow(250ms);
                return ssdp::fetch_description(l, u, fo);
            }));
            result_ready = [&] { return desc_result->ready(); };
            drop_result = [&] { desc_result.reset(); };
            break;
        case Op::bl_subscribe:
            sub_result.emplace(bloop->subscribe(url, so));
            result_ready = [&] { return sub_result->ready(); };
            drop_result = [&] { sub_result.reset(); };
            break;
        case Op::bl_renew:
        case Op::bl_unsubscribe: {
            bsub.emplace(bloop->subscribe(url, so).wait(slow(2s)));
            // A thread blocked on the stream without a timeout: it must see the end.
            stream_waiter = std::thread([stream = bsub->events(), &stream_ended]() mutable {
                try {
                    while (stream.get()) {
                    }
                } catch (const std::exception&) {
                    // an end by error is an end
                }
                stream_ended = true;
            });
            void_result.emplace(spec.op == Op::bl_renew ? bsub->renew() : bsub->unsubscribe(true));
            result_ready = [&] { return void_result->ready(); };
            drop_result = [&] { void_result.reset(); };
            break;
        }
        case Op::bl_keep: {
            BackgroundLoop* b = bloop.get();
            std::weak_ptr<gena::Subscription> kept =
                bloop->run([b, url, so](uv_loop_t* l) { return subscribe_kept(b, l, url, so); })
                    .wait(slow(2s));
            void_result.emplace(bloop->run([kept] { return renew_kept(kept); }));
            result_ready = [&] { return void_result->ready(); };
            drop_result = [&] { void_result.reset(); };
            break;
        }
        default:
            FAIL("not a blocking case");
            return;
    }
    auto until = [](auto pred, std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (!pred()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(1ms);
        }
        return true;
    };
    REQUIRE(until([&] { return peer->stalled() > 0; }, slow(2000ms)));
    std::this_thread::sleep_for(2ms);

    bool bloop_gone = false;
    for (Obj obj : spec.order) {
        switch (obj) {
            case Obj::bloop:
                bloop.reset();  // stops the loop (grace), joins its thread
                bloop_gone = true;
                break;
            case Obj::result:
                if (bloop_gone) {
                    CHECK_MESSAGE(until(result_ready, slow(1000ms)),
                                  "a thread waiting on the result would never be released");
                }
                drop_result();
                break;
            case Obj::bsub:
                bsub.reset();
                break;
            default:
                FAIL("not a blocking object");
                break;
        }
        std::this_thread::sleep_for(1ms);
    }
    if (stream_waiter.joinable()) {
        bool ended = until([&] { return stream_ended.load(); }, slow(2000ms));
        CHECK_MESSAGE(ended, "a thread in events().get() was never released");
        if (ended) {
            stream_waiter.join();
        } else {
            stream_waiter.detach();  // blocked for good: leaked so that the run goes on
        }
    }
    peer_loop
        ->run([&]() -> Task<void> {
            co_await peer->close();
            peer.reset();
        })
        .wait();
    peer_loop.reset();
    auto errors = take_errors();
    for (const auto& e : errors) MESSAGE("logged: " << e);
    CHECK_MESSAGE(!unclean_loop_reported(errors),
                  "a BackgroundLoop could not close its loop clean");
}

// --- SSDP cases ---------------------------------------------------------------------------

// A fake device for Search / discover: answers each M-SEARCH only as far as `step` (silent:
// never; mid_headers: half a response; headers_only: a response; half_body: a response and
// a truncated one; close_mid: a response, then its socket closes).
Task<void> fake_ssdp_device(uv_loop_t* loop, Step step, bool* stalled) {
    UdpSocket s =
        UdpSocket::bind(loop, SocketAddress::ipv4_any(ssdp::kPort), {.reuse_address = true});
    s.join_group(ssdp::kMulticastV4, "127.0.0.1");
    ssdp::Advertisement ad;
    ad.location = "http://127.0.0.1:9/d.xml";
    ad.usn = "uuid:lifetime::upnp:rootdevice";
    ad.target = "upnp:rootdevice";
    ad.server = "Fake/1 UPnP/1.1 fake/1";
    std::string response = ssdp::build_response(ad, "Sun, 22 Nov 2026 18:00:00 GMT");
    for (;;) {
        UdpPacket p = co_await s.receive();
        auto d = ssdp::parse_datagram(p.data);
        if (!d || d->kind != ssdp::Kind::search) continue;
        switch (step) {
            case Step::silent:
                break;
            case Step::mid_headers:
                co_await s.send_to(response.substr(0, 40), p.sender);
                break;
            case Step::headers_only:
                co_await s.send_to(response, p.sender);
                break;
            case Step::half_body:
                co_await s.send_to(response, p.sender);
                co_await s.send_to(response.substr(0, response.size() / 2), p.sender);
                break;
            case Step::close_mid:
                co_await s.send_to(response, p.sender);
                *stalled = true;
                co_return;
        }
        *stalled = true;
    }
}

// Advertisements sent as far as `step` (silent: none; mid_headers: a truncated NOTIFY;
// headers_only: an alive; half_body: an alive and a malformed one; close_mid: alive, byebye).
Task<void> fake_advertiser(uv_loop_t* loop, Step step, bool* stalled) {
    UdpSocket s = UdpSocket::bind(loop, SocketAddress::ipv4_loopback(0));
    s.set_multicast_interface("127.0.0.1");
    SocketAddress group = SocketAddress::parse(ssdp::kMulticastV4, ssdp::kPort);
    ssdp::Notify alive;
    alive.type = ssdp::NotifyType::alive;
    alive.location = "http://127.0.0.1:9/d.xml";
    alive.usn = "uuid:lifetime::upnp:rootdevice";
    alive.target = "upnp:rootdevice";
    alive.max_age = 1s;
    std::string text = ssdp::build_notify(alive);
    switch (step) {
        case Step::silent:
            break;
        case Step::mid_headers:
            co_await s.send_to(text.substr(0, 30), group);
            break;
        case Step::headers_only:
            co_await s.send_to(text, group);
            break;
        case Step::half_body:
            co_await s.send_to(text, group);
            co_await s.send_to(text.substr(0, text.size() / 2), group);
            break;
        case Step::close_mid: {
            co_await s.send_to(text, group);
            ssdp::Notify bye = alive;
            bye.type = ssdp::NotifyType::byebye;
            co_await s.send_to(ssdp::build_notify(bye), group);
            break;
        }
    }
    *stalled = true;
}

void run_ssdp_case(const CaseSpec& spec) {
    uvtest::TestLoop loop(slow(20s));
    {
        bool stalled = false;
        bool ssdp_gone = false;
        auto device = std::make_unique<Scope>(loop, [](std::exception_ptr) {});
        auto task = std::make_unique<Scope>(loop, [](std::exception_ptr) {});
        std::optional<ssdp::Search> search;
        std::optional<ssdp::AdvertisementListener> adl;
        ssdp::DiscoverOptions dopt;
        dopt.interface = "lo";
        dopt.timeout = slow(150ms);
        dopt.mx = 1;
        dopt.resend_interval = 20ms;
        switch (spec.op) {
            case Op::search:
                device->spawn(fake_ssdp_device(loop, spec.step, &stalled));
                settle(loop);
                search.emplace(ssdp::Search::start(loop, dopt));
                // Stops asking once the object is gone: a next() on a destroyed Search
                // would be the harness's own use after free.
                task->spawn([](std::optional<ssdp::Search>* sp, bool* gone) -> Task<void> {
                    while (!*gone && co_await (*sp)->next()) {
                    }
                }(&search, &ssdp_gone));
                break;
            case Op::discover:
                device->spawn(fake_ssdp_device(loop, spec.step, &stalled));
                settle(loop);
                task->spawn([](uv_loop_t* l, ssdp::DiscoverOptions o) -> Task<void> {
                    (void)co_await ssdp::discover(l, o);
                }(loop, dopt));
                break;
            case Op::adv_listener: {
                ssdp::AdvertisementListenerOptions ao;
                ao.interface = "lo";
                ao.expiry_check = 20ms;
                adl.emplace(ssdp::AdvertisementListener::start(loop, ao));
                task->spawn(
                    [](std::optional<ssdp::AdvertisementListener>* lp, bool* gone) -> Task<void> {
                        while (!*gone && co_await (*lp)->next()) {
                        }
                    }(&adl, &ssdp_gone));
                device->spawn(fake_advertiser(loop, spec.step, &stalled));
                break;
            }
            default:
                FAIL("not an ssdp case");
                return;
        }
        if (spec.step == Step::silent) {
            settle(loop, 30ms);  // a search or two went out unanswered
        } else {
            REQUIRE(wait_until(loop, [&] { return stalled; }));
        }
        settle(loop);
        for (Obj obj : spec.order) {
            if (obj == Obj::task) {
                if (ssdp_gone || spec.op == Op::discover) {
                    bool released = wait_until(
                        loop, [&] { return task->empty(); }, slow(1000ms));
                    CHECK_MESSAGE(released, "a task awaiting " << to_string(spec.op)
                                                               << " was never released");
                }
                task.reset();
            } else {
                ssdp_gone = true;
                search.reset();
                adl.reset();
            }
            settle(loop, 1ms);
        }
        device.reset();
        CHECK_MESSAGE(drain(loop), "the loop did not become idle after every object was gone");
    }
    CHECK(loop.close() == 0);
}

// --- registration -------------------------------------------------------------------------

void run_current_case() {
    static const std::map<std::string, const CaseSpec*> by_name = [] {
        std::map<std::string, const CaseSpec*> m;
        for (const auto& c : table()) m.emplace(c.name, &c);
        return m;
    }();
    auto it = by_name.find(uvtest::current_test_name());
    REQUIRE(it != by_name.end());
    const CaseSpec& spec = *it->second;
    switch (spec.op) {
        case Op::bl_run:
        case Op::bl_subscribe:
        case Op::bl_renew:
        case Op::bl_unsubscribe:
        case Op::bl_keep:
            run_blocking_case(spec);
            break;
        case Op::search:
        case Op::discover:
        case Op::adv_listener:
            run_ssdp_case(spec);
            break;
        default:
            run_loop_case(spec);
            break;
    }
}

const int registered = [] {
    int n = 0;
    for (const auto& c : table()) {
        doctest::detail::regTest(
            doctest::detail::TestCase(run_current_case, __FILE__, static_cast<unsigned>(__LINE__),
                                      doctest_detail_test_suite_ns::getCurrentTestSuite()) *
            c.name.c_str() * doctest::skip(c.known_bug != nullptr));
        ++n;
    }
    return n;
}();

}  // namespace

// The table itself: the number of cases per operation is what the harness promises to run.
TEST_CASE("lifetime: the case table covers every operation, stall step and order") {
    std::map<std::string, int> per_op;
    std::map<std::string, int> per_bug;
    int skipped = 0;
    for (const auto& c : table()) {
        ++per_op[to_string(c.op)];
        if (c.known_bug) {
            ++skipped;
            ++per_bug[c.known_bug];
        }
    }
    for (const auto& [op, n] : per_op) MESSAGE(op << ": " << n << " cases");
    for (const auto& [bug, n] : per_bug) MESSAGE("skipped for " << bug << ": " << n);
    MESSAGE("total: " << table().size() << " cases, " << skipped << " skipped for known bugs");
    CHECK(registered == static_cast<int>(table().size()));
    CHECK(per_op.size() == std::size(kOps));
}
