// A link cut and restored under a live subscription. The test runs in a private network
// namespace (scripts/in-netns.sh; netns_guard refuses to run elsewhere). A child process
// moves into a second, new namespace and runs the device (a Publisher changing a variable
// every 50 ms) on 10.7.0.2; a veth pair joins the two namespaces (10.7.0.1 here). Cutting the
// link (`ip link set dev va down`) makes the renewal fail and the NOTIFYs stop; after
// `ip link set dev va up` the subscription resubscribes, events flow again, and the gap is
// reported (renewal-failure and resubscription handlers, counters). Grants are 2 s and the
// cut lasts 3 s, so that the case takes a few seconds. Nothing leaves the namespaces: both
// vanish with the processes.
#include <doctest/doctest.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "support/peers.hpp"
#include "support/test_device.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/publisher/publisher.hpp"
#include "uvgena/subscriber/listener.hpp"
#include "uvgena/subscriber/subscription.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t kDevicePort = 49200;

// The device of the child process: runs until killed.
[[noreturn]] void run_device(int ready_fd, int go_fd) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    char byte = 0;
    // Wait until the parent configured our end of the link.
    if (::read(go_fd, &byte, 1) != 1) ::_exit(2);
    uv_loop_t loop;
    uv_loop_init(&loop);
    spawn(&loop, [](uv_loop_t* l, int fd) -> Task<void> {
        gena::PublisherOptions options;
        options.policy.min_timeout = 1s;
        options.notify_timeout = 1s;
        options.notify_connect_timeout = 500ms;
        uvtest::TestDevice device(l, options, SocketAddress::parse("10.7.0.2", kDevicePort),
                                  "Counter");
        char ok = 'r';
        if (::write(fd, &ok, 1) != 1) ::_exit(3);
        for (long n = 1;; ++n) {
            co_await sleep_for(l, 50ms);
            device.set(std::to_string(n));
        }
    }(&loop, ready_fd));
    uv_run(&loop, UV_RUN_DEFAULT);
    ::_exit(0);
}

int sh(const std::string& command) {
    int status = std::system(command.c_str());
    if (status != 0)
        std::fprintf(stderr, "link_cut_test: '%s' failed (%d)\n", command.c_str(), status);
    return status;
}

// The child device process and the veth pair to it.
struct DeviceProcess {
    pid_t pid = -1;

    bool start() {
        int ready[2], go[2];
        if (::pipe(ready) != 0 || ::pipe(go) != 0) return false;
        pid = ::fork();
        if (pid < 0) return false;
        if (pid == 0) {
            if (::unshare(CLONE_NEWNET) != 0) ::_exit(4);
            ::close(ready[0]);
            ::close(go[1]);
            run_device(ready[1], go[0]);
        }
        ::close(ready[1]);
        ::close(go[0]);
        // Give the child time to enter its namespace before the veth end is moved there: it
        // does so before anything else, and `ip` names it by pid.
        bool ok = false;
        for (int i = 0; i < 100 && !ok; ++i) {
            std::string mine = ns_of("/proc/self/ns/net");
            std::string its = ns_of("/proc/" + std::to_string(pid) + "/ns/net");
            ok = !its.empty() && its != mine;
            if (!ok) ::usleep(10'000);
        }
        std::string p = std::to_string(pid);
        ok = ok && sh("ip link add va type veth peer name vb netns " + p) == 0 &&
             sh("ip addr add 10.7.0.1/24 dev va && ip link set va up") == 0 &&
             sh("nsenter -t " + p +
                " -n sh -c 'ip link set lo up && "
                "ip addr add 10.7.0.2/24 dev vb && ip link set vb up'") == 0;
        char byte = 'g';
        ok = ok && ::write(go[1], &byte, 1) == 1 && ::read(ready[0], &byte, 1) == 1;
        ::close(go[1]);
        ::close(ready[0]);
        return ok;
    }

    static std::string ns_of(const std::string& path) {
        char buf[256];
        ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }

    ~DeviceProcess() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        // The veth pair dies with the child's namespace; this only tidies a failed start.
        std::system("ip link del va 2>/dev/null");
    }
};

}  // namespace

TEST_SUITE("faults.link") {
    TEST_CASE(
        "a link cut under a subscription: renewal fails and NOTIFYs stop; once restored, "
        "the subscription resubscribes, reports the gap, and events flow again") {
        DeviceProcess device;
        REQUIRE(device.start());
        uvtest::TestLoop loop(40s);
        run(loop, [](uv_loop_t* l) -> Task<void> {
            ListenerOptions lo;
            lo.listen_host = "10.7.0.1";
            lo.port = 0;
            EventListener listener(l, lo);
            struct Seen {
                std::vector<Event> events;
                std::vector<std::error_code> renew_failures;
                std::vector<std::string> resubscribed;
            } seen;
            SubscribeOptions o;
            o.listener = &listener;
            o.requested_timeout = 2s;
            o.auto_renew = true;
            o.auto_resubscribe = true;
            o.timeout = 500ms;
            o.backoff.initial = 100ms;
            o.backoff.max = 500ms;
            SubscriptionHandlers h;
            h.on_event = [&seen](Event e) { seen.events.push_back(std::move(e)); };
            h.on_renew_failed = [&seen](const Error& e) {
                seen.renew_failures.push_back(e.code());
            };
            h.on_resubscribe = [&seen](const std::string&, const std::string& sid) {
                seen.resubscribed.push_back(sid);
            };
            Subscription sub = co_await subscribe(
                l, "http://10.7.0.2:" + std::to_string(kDevicePort) + "/svc/event", o,
                std::move(h));
            std::string first_sid = sub.sid();
            CHECK(co_await peers::eventually(
                l, [&] { return seen.events.size() >= 10; }, 15s));

            REQUIRE(sh("ip link set dev va down") == 0);
            std::size_t before_cut = seen.events.size();
            // The renewal fails (the route is gone), the grant runs out: lost.
            CHECK(co_await peers::eventually(l, [&] { return !sub.is_subscribed(); }));
            CHECK_FALSE(seen.renew_failures.empty());
            co_await sleep_for(l, 1s);
            // Nothing arrived meanwhile (at most NOTIFYs already in flight at the cut).
            std::size_t during_cut = seen.events.size() - before_cut;
            CHECK(during_cut <= 2);
            CHECK(seen.resubscribed.empty());

            REQUIRE(sh("ip link set dev va up") == 0);
            CHECK(co_await peers::eventually(l, [&] { return !seen.resubscribed.empty(); }));
            CHECK(sub.is_subscribed());
            CHECK(sub.sid() != first_sid);
            CHECK(seen.resubscribed.back() == sub.sid());
            CHECK(sub.stats().resubscriptions >= 1);
            CHECK(sub.stats().renewal_failures == seen.renew_failures.size());
            // Events flow again under the new SID, starting with the full state (SEQ 0), in
            // order.
            std::size_t after = seen.events.size();
            CHECK(co_await peers::eventually(l, [&] { return seen.events.size() >= after + 5; }));
            std::uint32_t expected = 0;
            bool started = false;
            for (const Event& e : seen.events) {
                if (e.sid != sub.sid()) continue;
                if (!started) {
                    CHECK(e.seq == 0);
                    started = true;
                } else {
                    CHECK(e.seq == expected);
                }
                CHECK(e.seq_status == gena::SeqStatus::ok);
                expected = e.seq + 1;
            }
            CHECK(started);
            co_await sub.unsubscribe(false);
            co_await listener.stop();
        }(loop));
    }
}
