// The discovery path of the `uvgena` tool, end to end with the built binary: `serve-demo
// --ssdp` is found by `discover`, read by `describe`, subscribed to by `subscribe
// '<location>#RenderingControl'`, and says ssdp:byebye when it shuts down; over IPv4 on
// loopback and over IPv6 across the veth pair uvg6a <-> uvg6b. Runs inside a private network
// namespace (scripts/in-netns.sh --veth6): its multicast never leaves it.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "child.hpp"
#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/net/udp.hpp"
#include "uvgena/ssdp/message.hpp"

using namespace uvgena;
using namespace std::chrono_literals;
using clitest::Child;
using clitest::url_in;

namespace {

const std::string kUdn = "uuid:c1e5d0a4-7f1b-4a44-9d7e-2b1f3c5d6e70";
const std::string kUdnBye = "uuid:c1e5d0a4-7f1b-4a44-9d7e-2b1f3c5d6e71";
const std::string kUdnFollow = "uuid:c1e5d0a4-7f1b-4a44-9d7e-2b1f3c5d6e72";

// A running `serve-demo --ssdp` with the URLs it printed.
struct Demo {
    Child child;
    std::string description;
    std::string rendering_control;

    explicit Demo(std::vector<std::string> extra) : child(args(std::move(extra))) {
        REQUIRE(child.line());  // the UDN
        description = url_in(child.line());
        rendering_control = url_in(child.line());
        REQUIRE(child.line());  // AVTransport
        auto ssdp = child.line();
        REQUIRE(ssdp);
        CHECK(ssdp->find("SSDP:") == 0);
    }

    static std::vector<std::string> args(std::vector<std::string> extra) {
        std::vector<std::string> a{"serve-demo", "--ssdp", "--ssdp-response-delay", "100"};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
};

// Everything the child prints on stdout until it exits.
std::string all_output(Child& child) {
    std::string out;
    while (auto line = child.line(20s)) out += *line + "\n";
    return out;
}

std::size_t lines_of(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

const nlohmann::json* service_named(const nlohmann::json& device, const std::string& name) {
    for (const nlohmann::json& s : device.at("services")) {
        if (s.at("name") == name) return &s;
    }
    return nullptr;
}

}  // namespace

TEST_SUITE("cli.ssdp") {
    TEST_CASE("discover finds serve-demo --ssdp, describe shows its services and event URLs") {
        Demo demo({"--interval", "0", "--udn", kUdn});

        Child discover({"discover", "--json", "--timeout", "2"});
        std::string out = all_output(discover);
        REQUIRE(discover.wait() == 0);
        nlohmann::json found = nlohmann::json::parse(out);
        REQUIRE(found.is_array());
        auto it = std::find_if(found.begin(), found.end(), [](const nlohmann::json& d) {
            const auto& udns = d.at("udns");
            return std::find(udns.begin(), udns.end(), kUdn) != udns.end();
        });
        REQUIRE_MESSAGE(it != found.end(), out);
        CHECK(it->at("location") == demo.description);
        CHECK(it->at("address") == "127.0.0.1");
        const nlohmann::json& description = it->at("description");
        CHECK(description.at("udn") == kUdn);
        const nlohmann::json* rc = service_named(description, "RenderingControl");
        REQUIRE(rc != nullptr);
        CHECK(rc->at("event_sub_url") == demo.rendering_control);
        REQUIRE(service_named(description, "AVTransport") != nullptr);

        Child describe({"describe", demo.description, "--json"});
        std::string text = all_output(describe);
        REQUIRE(describe.wait() == 0);
        nlohmann::json d = nlohmann::json::parse(text);
        CHECK(d.at("location") == demo.description);
        CHECK(d.at("device").at("udn") == kUdn);
        rc = service_named(d.at("device"), "RenderingControl");
        REQUIRE(rc != nullptr);
        CHECK(rc->at("event_sub_url") == demo.rendering_control);
        CHECK(rc->at("service_id") == "urn:upnp-org:serviceId:RenderingControl");
        const nlohmann::json* avt = service_named(d.at("device"), "AVTransport");
        REQUIRE(avt != nullptr);
        CHECK(avt->at("event_sub_url").get<std::string>().find("/AVTransport/event") !=
              std::string::npos);

        demo.child.signal(SIGTERM);
        CHECK(demo.child.wait() == 0);
    }

    TEST_CASE("over IPv6, discover --ipv6 finds a bracketed LOCATION that subscribe can use") {
        const char* veth = std::getenv("UVGENA_VETH6");
        REQUIRE_MESSAGE(veth != nullptr, "run through in-netns.sh --veth6");
        // The device on uvg6a's address (so advertised on uvg6a only, over IPv6 only), the
        // control point on uvg6b: the multicast crosses the link.
        Demo demo({"--host", "fd75:7667::1", "--interval", "50", "--udn", kUdn});
        CHECK(demo.description.rfind("http://[fd75:7667::1]:", 0) == 0);
        Child discover({"discover", "--ipv6", "--interface", "uvg6b", "--json", "--timeout", "2"});
        std::string out = all_output(discover);
        REQUIRE(discover.wait() == 0);
        nlohmann::json found = nlohmann::json::parse(out);
        REQUIRE_MESSAGE(found.size() == 1, out);
        CHECK(found[0].at("location") == demo.description);
        // Both ends live in this namespace, so the kernel answers a unicast reply to a
        // local address from that same address: only the multicast M-SEARCH crosses the link.
        CHECK(found[0].at("address").get<std::string>().rfind("fd75:7667::", 0) == 0);
        CHECK(found[0].at("interface") == "uvg6b");
        CHECK(found[0].at("description").at("udn") == kUdn);

        Child sub({"subscribe", found[0].at("location").get<std::string>() + "#RenderingControl",
                   "--count", "2", "--json", "--listen-host", "fd75:7667::2", "--listen-port",
                   "0"});
        std::vector<nlohmann::json> events;
        while (auto line = sub.line(20s)) events.push_back(nlohmann::json::parse(*line));
        CHECK(sub.wait() == 0);
        // Only the summary line on stderr.
        std::string err = sub.stderr_text();
        CHECK(err.rfind("uvgena: summary: received ", 0) == 0);
        CHECK(std::count(err.begin(), err.end(), '\n') == 1);
        REQUIRE(events.size() == 2);
        CHECK(events[1].at("seq") == 1);
        demo.child.signal(SIGTERM);
        CHECK(demo.child.wait() == 0);
    }

    TEST_CASE("subscribe '<location>#RenderingControl' --count 3 --json prints three events") {
        Demo demo({"--interval", "50", "--udn", kUdn});
        Child sub({"subscribe", demo.description + "#RenderingControl", "--count", "3", "--json",
                   "--listen-host", "127.0.0.1", "--listen-port", "0"});
        std::vector<nlohmann::json> events;
        while (auto line = sub.line(20s)) events.push_back(nlohmann::json::parse(*line));
        CHECK(sub.wait() == 0);
        // Only the summary line on stderr.
        std::string err = sub.stderr_text();
        CHECK(err.rfind("uvgena: summary: received ", 0) == 0);
        CHECK(std::count(err.begin(), err.end(), '\n') == 1);
        REQUIRE(events.size() == 3);
        for (std::size_t i = 0; i < events.size(); ++i) {
            CHECK(events[i].at("seq") == i);
            CHECK(events[i].at("sid") == events[0].at("sid"));
            // The demo renderer events RenderingControl through LastChange.
            CHECK(events[i].at("last_change").contains("0"));
        }
        CHECK(events[0].at("last_change").at("0").contains("Volume"));

        // The serviceId and the full serviceType name the same service.
        Child by_type({"subscribe",
                       demo.description + "#urn:schemas-upnp-org:service:AVTransport:1", "--count",
                       "1", "--json", "--listen-host", "127.0.0.1", "--listen-port", "0"});
        auto first = by_type.line(20s);
        REQUIRE(first);
        CHECK(nlohmann::json::parse(*first).at("last_change").at("0").contains("TransportState"));
        CHECK(by_type.wait() == 0);

        demo.child.signal(SIGTERM);
        CHECK(demo.child.wait() == 0);
    }

    TEST_CASE("an unknown service is one line naming the device's services, and exit 1") {
        Demo demo({"--interval", "0", "--udn", kUdn});
        Child sub({"subscribe", demo.description + "#NoSuchService", "--listen-host", "127.0.0.1",
                   "--listen-port", "0"});
        CHECK(all_output(sub).empty());
        CHECK(sub.wait() == 1);
        std::string err = sub.stderr_text();
        CHECK(lines_of(err) == 1);
        CHECK(err.rfind("uvgena: ", 0) == 0);
        CHECK(err.find("'NoSuchService'") != std::string::npos);
        CHECK(err.find("RenderingControl") != std::string::npos);
        CHECK(err.find("AVTransport") != std::string::npos);
        demo.child.signal(SIGTERM);
        CHECK(demo.child.wait() == 0);
    }

    TEST_CASE("a description that cannot be fetched is exit 1 with the reason") {
        // Nothing listens on port 1 in a fresh namespace.
        Child sub({"subscribe", "http://127.0.0.1:1/description.xml#RenderingControl",
                   "--listen-host", "127.0.0.1", "--listen-port", "0"});
        CHECK(sub.wait() == 1);
        std::string err = sub.stderr_text();
        CHECK(lines_of(err) == 1);
        CHECK(err.find("http://127.0.0.1:1/description.xml") != std::string::npos);
        CHECK(err.find("connection refused") != std::string::npos);
    }

    TEST_CASE("a bad description URL or a missing service name is a usage error (exit 2)") {
        // (Text that is no URL before '#' is a device name, looked up by discovery: see the
        // test of names below; a blank one is a usage error.)
        for (const char* target : {"htp://127.0.0.1/d.xml#RenderingControl", " #RenderingControl",
                                   "http://127.0.0.1:1/d.xml#"}) {
            CAPTURE(target);
            Child sub({"subscribe", target});
            CHECK(sub.wait() == 2);
            std::string err = sub.stderr_text();
            CHECK(lines_of(err) == 1);
            CHECK(err.find("bad description URL") != std::string::npos);
        }
        Child help({"subscribe", "--help"});
        std::string text = all_output(help);
        CHECK(help.wait() == 0);
        CHECK(text.find("#<service>") != std::string::npos);
        Child demo_help({"serve-demo", "--help"});
        text = all_output(demo_help);
        CHECK(demo_help.wait() == 0);
        CHECK(text.find("--ssdp") != std::string::npos);
        CHECK(text.find("byebye") != std::string::npos);
    }

    TEST_CASE(
        "serve-demo --ssdp sends ssdp:alive at start and ssdp:byebye for each target on SIGTERM") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            // Listens to the SSDP group on loopback like any control point would.
            UdpSocket watcher =
                UdpSocket::bind(l, SocketAddress::ipv4_any(ssdp::kPort), {.reuse_address = true});
            watcher.join_group(ssdp::kMulticastV4, "127.0.0.1");
            Demo demo({"--interval", "0", "--udn", kUdnBye});
            // root device: upnp:rootdevice, its UDN, its type; then its two service types.
            const std::set<std::string> usns{
                kUdnBye + "::upnp:rootdevice", kUdnBye,
                kUdnBye + "::urn:schemas-upnp-org:device:MediaRenderer:1",
                kUdnBye + "::urn:schemas-upnp-org:service:RenderingControl:1",
                kUdnBye + "::urn:schemas-upnp-org:service:AVTransport:1"};
            auto collect = [&](ssdp::NotifyType type) -> Task<std::set<std::string>> {
                std::set<std::string> seen;
                while (seen.size() < usns.size()) {
                    UdpPacket p = co_await watcher.receive();
                    auto datagram = ssdp::parse_datagram(p.data);
                    if (!datagram || datagram->kind != ssdp::Kind::notify) continue;
                    auto notify = ssdp::read_notify(*datagram);
                    REQUIRE(notify);
                    if (notify->type != type || ssdp::split_usn(notify->usn).udn != kUdnBye) {
                        continue;
                    }
                    if (type == ssdp::NotifyType::alive) {
                        CHECK(notify->location == demo.description);
                        CHECK(notify->max_age == 1800s);
                    }
                    CHECK(notify->boot_id.has_value());
                    seen.insert(notify->usn);
                }
                co_return seen;
            };
            std::set<std::string> alive =
                co_await with_timeout(l, collect(ssdp::NotifyType::alive), 10s);
            CHECK(alive == usns);
            demo.child.signal(SIGTERM);
            std::set<std::string> bye =
                co_await with_timeout(l, collect(ssdp::NotifyType::byebye), 10s);
            CHECK(bye == usns);
            auto summary = demo.child.line();
            REQUIRE(summary);
            CHECK(summary->find("served") == 0);
            CHECK(summary->find("searches answered") != std::string::npos);
            CHECK(demo.child.wait() == 0);
        }(loop));
    }

    TEST_CASE(
        "subscribe '<location>#RenderingControl' --auto-renew follows the device: serve-demo "
        "stopped (byebye) and started again on the same port and UDN is resubscribed within "
        "seconds, not at the renewal of its 300 s grant") {
        std::optional<Demo> demo;
        demo.emplace(std::vector<std::string>{"--interval", "200", "--udn", kUdnFollow});
        std::string description = demo->description;
        auto colon = description.find(':', 7);
        std::string port = description.substr(colon + 1, description.find('/', colon) - colon - 1);
        Child sub({"subscribe", description + "#RenderingControl", "--json", "--auto-renew",
                   "--timeout", "300", "--listen-host", "127.0.0.1", "--listen-port", "0", "-v"});
        auto first = sub.line(20s);
        REQUIRE_MESSAGE(first, "stderr: " << sub.stderr_text());
        std::string old_sid = nlohmann::json::parse(*first).at("sid");
        auto err_has = [&](const std::string& what) {
            for (int i = 0; i < 1000; ++i) {
                if (sub.stderr_text().find(what) != std::string::npos) return true;
                std::this_thread::sleep_for(10ms);
            }
            return false;
        };
        REQUIRE(err_has("following the advertisements of " + kUdnFollow));
        CHECK(err_has(", granted 300 s"));
        demo->child.signal(SIGTERM);  // ssdp:byebye
        CHECK(demo->child.wait() == 0);
        demo.reset();
        CHECK(err_has("device " + kUdnFollow + " said goodbye (ssdp:byebye)"));
        auto restarted = std::chrono::steady_clock::now();
        demo.emplace(
            std::vector<std::string>{"--interval", "200", "--udn", kUdnFollow, "--port", port});
        CHECK(demo->description == description);
        // Events go on; the first of the new SID says it is a resubscription.
        std::optional<nlohmann::json> initial;
        while (auto line = sub.line(10s)) {
            nlohmann::json e = nlohmann::json::parse(*line);
            if (e.value("resubscribed", false)) {
                initial = e;
                break;
            }
        }
        REQUIRE_MESSAGE(initial, "stderr: " << sub.stderr_text());
        CHECK(std::chrono::steady_clock::now() - restarted < 5s);
        CHECK(initial->at("sid") != old_sid);
        CHECK(initial->at("seq") == 0);
        auto next = sub.line(5s);
        REQUIRE(next);
        nlohmann::json change = nlohmann::json::parse(*next);
        CHECK(change.at("sid") == initial->at("sid"));
        CHECK(change.at("seq") == 1);
        sub.signal(SIGTERM);
        CHECK(sub.wait() == 0);
        std::string err = sub.stderr_text();
        CHECK(err.find("uvgena: device " + kUdnFollow + " is back (appeared): resubscribing") !=
              std::string::npos);
        CHECK(err.find("uvgena: resubscribed: SID " + old_sid + " -> ") != std::string::npos);
        demo->child.signal(SIGTERM);
        CHECK(demo->child.wait() == 0);
    }

    TEST_CASE(
        "devices by name: 'Living Room#RenderingControl' and a UDN are found by discovery for "
        "subscribe and call; an ambiguous or unknown name lists the devices, exit 1") {
        const std::string living = "uuid:c1e5d0a4-7f1b-4a44-9d7e-2b1f3c5d6e80";
        const std::string kitchen = "uuid:c1e5d0a4-7f1b-4a44-9d7e-2b1f3c5d6e81";
        const std::string kitchen2 = "uuid:c1e5d0a4-7f1b-4a44-9d7e-2b1f3c5d6e82";
        Demo living_room({"--interval", "0", "--udn", living, "--name", "Living Room"});
        Demo kitchen_demo({"--interval", "0", "--udn", kitchen, "--name", "Kitchen"});

        // A friendly name, in another case and with spaces around: found, subscribed to.
        Child sub({"subscribe", "  living room #RenderingControl", "--json", "--count", "1",
                   "--listen-host", "127.0.0.1", "--listen-port", "0"});
        auto event = sub.line(20s);
        REQUIRE_MESSAGE(event, "stderr: " << sub.stderr_text());
        CHECK(nlohmann::json::parse(*event).at("service") == living_room.rendering_control);
        CHECK(sub.wait() == 0);

        // call by name, then by UDN (with and without uuid:), each reaching its own device.
        Child set({"call", "Kitchen#RenderingControl", "SetVolume", "InstanceID=0",
                   "Channel=Master", "DesiredVolume=61"});
        CHECK_MESSAGE(set.wait(20s) == 0, "stderr: " << set.stderr_text());
        Child get(
            {"call", kitchen + "#RenderingControl", "GetVolume", "InstanceID=0", "Channel=Master"});
        CHECK(get.line(20s) == std::optional<std::string>("CurrentVolume=61"));
        CHECK(get.wait(20s) == 0);
        Child other({"call", living.substr(5) + "#RenderingControl", "GetVolume", "InstanceID=0",
                     "Channel=Master"});
        auto other_volume = other.line(20s);
        CHECK(other_volume != std::optional<std::string>("CurrentVolume=61"));
        CHECK(other.wait(20s) == 0);

        // A second "Kitchen": the name is ambiguous, both are listed with their UDNs.
        Demo kitchen_again({"--interval", "0", "--udn", kitchen2, "--name", "kitchen"});
        Child ambiguous(
            {"call", "Kitchen#RenderingControl", "GetVolume", "InstanceID=0", "Channel=Master"});
        CHECK(ambiguous.wait(20s) == 1);
        std::string err = ambiguous.stderr_text();
        INFO("stderr: ", err);
        CHECK(err.find("2 devices have that name") != std::string::npos);
        CHECK(err.find(kitchen) != std::string::npos);
        CHECK(err.find(kitchen2) != std::string::npos);
        CHECK(err.find(living) == std::string::npos);

        // No such device: the ones that answered are listed.
        Child unknown({"subscribe", "Garage#RenderingControl", "--listen-port", "0"});
        CHECK(unknown.wait(20s) == 1);
        std::string unknown_err = unknown.stderr_text();
        INFO("stderr: ", unknown_err);
        CHECK(unknown_err.find("find device 'Garage'") != std::string::npos);
        CHECK(unknown_err.find("'Living Room' (" + living) != std::string::npos);

        // "#*" with a name: every evented service of that device.
        Child all({"subscribe", "Living Room#*", "--json", "--count", "2", "--listen-host",
                   "127.0.0.1", "--listen-port", "0"});
        std::set<std::string> services;
        while (auto line = all.line(20s))
            services.insert(nlohmann::json::parse(*line).at("service"));
        CHECK(all.wait() == 0);
        CHECK(services.size() == 2);
        CHECK(services.count(living_room.rendering_control) == 1);
    }
}
