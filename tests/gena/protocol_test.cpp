#include "uvgena/gena/protocol.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <set>
#include <string>
#include <unordered_set>

#include "capture.hpp"
#include "support/test_loop.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/gena/event_body.hpp"
#include "uvgena/gena/event_builder.hpp"

using namespace uvgena::gena;
using namespace std::chrono_literals;
using uvgena::http::Request;
using uvgena::http::Response;
using uvgena::http::Url;

namespace {

const Url event_url = Url::parse("http://192.168.1.20:1400/MediaRenderer/AVTransport/Event");

Request notify(std::initializer_list<std::pair<const char*, const char*>> fields) {
    Request r;
    r.method = "NOTIFY";
    r.target = "/cb";
    for (auto& [n, v] : fields) r.headers.add(n, v);
    return r;
}

Request good_notify(const char* seq = "0") {
    return notify({{"HOST", "10.0.0.2:8080"},
                   {"NT", "upnp:event"},
                   {"NTS", "upnp:propchange"},
                   {"SID", "uuid:abc"},
                   {"SEQ", seq}});
}

bool known(std::string_view sid) {
    return sid == "uuid:abc";
}

Response answer(int status, std::initializer_list<std::pair<const char*, const char*>> fields) {
    Response r;
    r.status = status;
    for (auto& [n, v] : fields) r.headers.add(n, v);
    return r;
}

Request device_request(const char* method,
                       std::initializer_list<std::pair<const char*, const char*>> fields) {
    Request r;
    r.method = method;
    r.target = "/event";
    r.headers.add("HOST", "10.0.0.1:1400");
    for (auto& [n, v] : fields) r.headers.add(n, v);
    return r;
}

std::string data_dir() {
    return uvtest::env_dir("UVGENA_TEST_DATA") + "/gmediarender";
}

}  // namespace

TEST_SUITE("gena.protocol.headers") {
    TEST_CASE("TIMEOUT values: seconds, infinite, lenient forms, and malformed ones") {
        CHECK(parse_timeout("Second-1800").value() == Timeout{false, 1800s});
        CHECK(parse_timeout("  second-300 ").value() == Timeout{false, 300s});
        CHECK(parse_timeout("SECOND-00042").value() == Timeout{false, 42s});
        CHECK(parse_timeout("Second-infinite").value().infinite);
        CHECK(parse_timeout("Second-INFINITE").value().infinite);
        CHECK(parse_timeout("infinite").value().infinite);
        CHECK(parse_timeout("Second-540.0").value() == Timeout{false, 540s});
        CHECK(parse_timeout("Second-0:30:00").value() == Timeout{false, 1800s});
        CHECK(parse_timeout("Second-99999999999999999999").value().seconds.count() == 2147483647);
        for (const char* bad : {"", "Second-", "Second-0", "Second--5", "Second-abc", "1800",
                                "Minute-5", "Second-1.x", "Second-0:3", "Second-1:2:3:4"}) {
            INFO(bad);
            CHECK(parse_timeout(bad).error() == errc::bad_timeout);
        }
        CHECK(format_timeout(1800s) == "Second-1800");
    }

    TEST_CASE("SEQ is an unsigned 32-bit number, leading zeros ignored") {
        CHECK(parse_seq("0").value() == 0u);
        CHECK(parse_seq(" 17 ").value() == 17u);
        CHECK(parse_seq("0000000000000000000042").value() == 42u);
        CHECK(parse_seq("4294967295").value() == 4294967295u);
        for (const char* bad :
             {"", " ", "4294967296", "99999999999", "-1", "+1", "1.0", "0x10", "12 3"}) {
            INFO(bad);
            CHECK(parse_seq(bad).error() == errc::bad_seq);
        }
    }

    TEST_CASE("the user agent has the UDA form OS/version UPnP/1.1 product/version") {
        const std::string& ua = default_user_agent();
        CHECK(ua.find(" UPnP/1.1 uvgena/") != std::string::npos);
        CHECK(ua.find('/') < ua.find(' '));
    }
}

TEST_SUITE("gena.protocol.subscriber") {
    TEST_CASE("SUBSCRIBE carries HOST, USER-AGENT, CALLBACK list, NT and TIMEOUT") {
        SubscribeParams p;
        p.callbacks = {"http://10.0.0.2:8080/cb/1", "http://[fe80::2]:8080/cb/1"};
        p.timeout = 600s;
        Request r = make_subscribe(event_url, p);
        CHECK(r.method == "SUBSCRIBE");
        CHECK(r.target == "/MediaRenderer/AVTransport/Event");
        CHECK(r.headers.get("HOST") == "192.168.1.20:1400");
        CHECK(r.headers.get("USER-AGENT") == default_user_agent());
        CHECK(r.headers.get("CALLBACK") ==
              "<http://10.0.0.2:8080/cb/1><http://[fe80::2]:8080/cb/1>");
        CHECK(r.headers.get("NT") == "upnp:event");
        CHECK(r.headers.get("TIMEOUT") == "Second-600");
        CHECK_FALSE(r.headers.contains("SID"));
        std::string wire = uvgena::http::serialize(r);
        CHECK(wire.rfind("SUBSCRIBE /MediaRenderer/AVTransport/Event HTTP/1.1\r\n", 0) == 0);

        p.timeout.reset();
        p.user_agent = "Test/1 UPnP/1.1 t/1";
        Request r2 = make_subscribe(event_url, p);
        CHECK_FALSE(r2.headers.contains("TIMEOUT"));
        CHECK(r2.headers.get("USER-AGENT") == "Test/1 UPnP/1.1 t/1");
    }

    TEST_CASE("SUBSCRIBE refuses missing or unusable callbacks and non-positive timeouts") {
        SubscribeParams p;
        CHECK_THROWS_AS(make_subscribe(event_url, p), uvgena::Error);
        for (const char* bad : {"https://h/cb", "h/cb", "http://h/a>b", "http://h/a b", ""}) {
            INFO(bad);
            p.callbacks = {bad};
            try {
                (void)make_subscribe(event_url, p);
                FAIL("no throw");
            } catch (const uvgena::Error& e) {
                CHECK(e.code() == errc::bad_callback);
            }
        }
        p.callbacks = {"http://h/cb"};
        p.timeout = 0s;
        CHECK_THROWS_AS(make_subscribe(event_url, p), uvgena::Error);
    }

    TEST_CASE("renewal has SID and TIMEOUT only; UNSUBSCRIBE has SID only") {
        Request r = make_renewal(event_url, "uuid:abc", 300s);
        CHECK(r.method == "SUBSCRIBE");
        CHECK(r.headers.get("SID") == "uuid:abc");
        CHECK(r.headers.get("TIMEOUT") == "Second-300");
        CHECK_FALSE(r.headers.contains("CALLBACK"));
        CHECK_FALSE(r.headers.contains("NT"));
        CHECK(r.headers.get("HOST") == "192.168.1.20:1400");
        Request u = make_unsubscribe(event_url, "uuid:abc");
        CHECK(u.method == "UNSUBSCRIBE");
        CHECK(u.headers.get("SID") == "uuid:abc");
        CHECK_FALSE(u.headers.contains("TIMEOUT"));
        CHECK_FALSE(u.headers.contains("NT"));
        CHECK_FALSE(u.headers.contains("CALLBACK"));
    }

    TEST_CASE("a SUBSCRIBE answer gives SID and the granted timeout, whatever was asked") {
        auto a = read_subscribe_response(
            answer(200, {{"sid", "  uuid:new  "}, {"timeout", "second-120"}}), 600s);
        REQUIRE(a.ok());
        CHECK(a->sid == "uuid:new");
        CHECK(a->timeout == Timeout{false, 120s});
        CHECK(a->source == TimeoutSource::granted);

        auto inf =
            read_subscribe_response(answer(200, {{"SID", "s"}, {"TIMEOUT", "infinite"}}), 600s);
        CHECK(inf->timeout.infinite);
    }

    TEST_CASE("a missing or malformed TIMEOUT assumes the requested value, else 1800 s") {
        auto missing = read_subscribe_response(answer(200, {{"SID", "s"}}), 600s);
        CHECK(missing->timeout == Timeout{false, 600s});
        CHECK(missing->source == TimeoutSource::missing);
        auto none = read_subscribe_response(answer(200, {{"SID", "s"}}), std::nullopt);
        CHECK(none->timeout == Timeout{false, 1800s});
        auto bad = read_subscribe_response(answer(200, {{"SID", "s"}, {"TIMEOUT", "soon"}}), 300s);
        CHECK(bad->timeout == Timeout{false, 300s});
        CHECK(bad->source == TimeoutSource::malformed);
    }

    TEST_CASE("a 200 without SID and each error status map to distinct errors") {
        CHECK(read_subscribe_response(answer(200, {}), 1s).error() == errc::missing_sid);
        CHECK(read_subscribe_response(answer(200, {{"SID", "  "}}), 1s).error() ==
              errc::missing_sid);
        CHECK(read_subscribe_response(answer(400, {}), 1s).error() == errc::bad_request);
        CHECK(read_subscribe_response(answer(412, {}), 1s).error() == errc::precondition_failed);
        CHECK(read_subscribe_response(answer(500, {}), 1s).error() == errc::server_error);
        CHECK(read_subscribe_response(answer(503, {}), 1s).error() == errc::server_error);
        CHECK(read_subscribe_response(answer(404, {}), 1s).error() == errc::unexpected_status);
        CHECK(read_subscribe_response(answer(201, {{"SID", "x"}}), 1s).error() ==
              errc::unexpected_status);
        CHECK(read_unsubscribe_response(answer(200, {})).ok());
        CHECK(read_unsubscribe_response(answer(412, {})).error() == errc::precondition_failed);
        CHECK(status_error(200) == std::error_code{});
    }

    TEST_CASE("a renewal answer with another SID gives the new SID to adopt") {
        auto a = read_subscribe_response(
            answer(200, {{"SID", "uuid:second"}, {"TIMEOUT", "Second-60"}}), 60s);
        CHECK(a->sid == "uuid:second");
    }

    TEST_CASE("gmediarender's real answers are read") {
        auto sub = gena_test::read_response(data_dir() + "/subscribe-rc.response.http");
        auto a = read_subscribe_response(sub, 300s);
        REQUIRE(a.ok());
        CHECK(a->sid.rfind("uuid:", 0) == 0);
        CHECK(a->timeout == Timeout{false, 300s});
        auto renew = gena_test::read_response(data_dir() + "/renew-rc.response.http");
        auto b = read_subscribe_response(renew, 600s);
        REQUIRE(b.ok());
        CHECK(b->sid == a->sid);
        CHECK(b->timeout.seconds.count() > 0);
        auto dead = gena_test::read_response(data_dir() + "/renew-unknown-sid.response.http");
        CHECK(read_subscribe_response(dead, 600s).error() == errc::precondition_failed);
        auto bad_nt = gena_test::read_response(data_dir() + "/subscribe-bad-nt.response.http");
        CHECK(read_subscribe_response(bad_nt, 600s).error() == errc::precondition_failed);
        auto unsub = gena_test::read_response(data_dir() + "/unsubscribe-rc.response.http");
        CHECK(read_unsubscribe_response(unsub).ok());
    }
}

TEST_SUITE("gena.protocol.listener") {
    TEST_CASE("a good NOTIFY is accepted with its SID and SEQ") {
        auto d = check_notify(good_notify("0042"), known);
        CHECK(d.accepted());
        CHECK(d.status == 200);
        CHECK_FALSE(d.reason);
        CHECK(d.sid == "uuid:abc");
        CHECK(d.seq == 42u);
        Response r = make_notify_response(d);
        CHECK(r.status == 200);
        CHECK(r.body.empty());
    }

    TEST_CASE("header names and values are matched case- and whitespace-tolerantly") {
        auto r = notify({{"nt", " UPNP:EVENT "},
                         {"Nts", "upnp:PropChange"},
                         {"sid", " uuid:abc "},
                         {"seq", " 7 "}});
        auto d = check_notify(r, known);
        CHECK(d.accepted());
        CHECK(d.seq == 7u);
    }

    TEST_CASE("missing NT or NTS is 400; wrong NT or NTS is 412") {
        auto no_nt = notify({{"NTS", "upnp:propchange"}, {"SID", "uuid:abc"}, {"SEQ", "0"}});
        CHECK(check_notify(no_nt, known).status == 400);
        CHECK(check_notify(no_nt, known).reason == errc::missing_nt);
        auto no_nts = notify({{"NT", "upnp:event"}, {"SID", "uuid:abc"}, {"SEQ", "0"}});
        CHECK(check_notify(no_nts, known).status == 400);
        CHECK(check_notify(no_nts, known).reason == errc::missing_nts);
        auto bad_nt = notify(
            {{"NT", "upnp:other"}, {"NTS", "upnp:propchange"}, {"SID", "uuid:abc"}, {"SEQ", "0"}});
        CHECK(check_notify(bad_nt, known).status == 412);
        CHECK(check_notify(bad_nt, known).reason == errc::bad_nt);
        auto bad_nts = notify(
            {{"NT", "upnp:event"}, {"NTS", "ssdp:alive"}, {"SID", "uuid:abc"}, {"SEQ", "0"}});
        CHECK(check_notify(bad_nts, known).status == 412);
        CHECK(check_notify(bad_nts, known).reason == errc::bad_nts);
    }

    TEST_CASE("a missing, empty or unknown SID is 412") {
        auto no_sid = notify({{"NT", "upnp:event"}, {"NTS", "upnp:propchange"}, {"SEQ", "0"}});
        CHECK(check_notify(no_sid, known).status == 412);
        CHECK(check_notify(no_sid, known).reason == errc::unknown_sid);
        auto empty =
            notify({{"NT", "upnp:event"}, {"NTS", "upnp:propchange"}, {"SID", " "}, {"SEQ", "0"}});
        CHECK(check_notify(empty, known).status == 412);
        auto other = notify(
            {{"NT", "upnp:event"}, {"NTS", "upnp:propchange"}, {"SID", "uuid:zzz"}, {"SEQ", "0"}});
        auto d = check_notify(other, known);
        CHECK(d.status == 412);
        CHECK(d.sid == "uuid:zzz");
        CHECK(check_notify(good_notify(), SidPredicate{}).status == 412);  // no registry
        Response r = make_notify_response(d);
        CHECK(r.status == 412);
        CHECK_FALSE(r.keep_alive());
    }

    TEST_CASE("a missing, non-numeric or out-of-range SEQ is 400") {
        auto no_seq =
            notify({{"NT", "upnp:event"}, {"NTS", "upnp:propchange"}, {"SID", "uuid:abc"}});
        CHECK(check_notify(no_seq, known).status == 400);
        CHECK(check_notify(no_seq, known).reason == errc::bad_seq);
        for (const char* bad : {"x", "-1", "4294967296", ""}) {
            INFO(bad);
            auto d = check_notify(good_notify(bad), known);
            CHECK(d.status == 400);
            CHECK(d.reason == errc::bad_seq);
        }
        CHECK(check_notify(good_notify("4294967295"), known).seq == 4294967295u);
    }

    TEST_CASE("a repeated NT, NTS, SID or SEQ is 400, even when both copies look valid") {
        for (const char* name : {"NT", "NTS", "SID", "SEQ"}) {
            INFO(name);
            Request r = good_notify();
            r.headers.add(name, std::string(*r.headers.get(name)));
            auto d = check_notify(r, known);
            CHECK(d.status == 400);
            CHECK(d.reason == errc::repeated_header);
            CHECK_FALSE(make_notify_response(d).keep_alive());
        }
        // A known SID hidden behind an unknown one must not be picked either way.
        Request two = good_notify();
        two.headers.remove("SID");
        two.headers.add("SID", "uuid:other");
        two.headers.add("SID", "uuid:abc");
        CHECK(check_notify(two, known).status == 400);
    }

    TEST_CASE("another method is 405") {
        Request r = good_notify();
        r.method = "POST";
        CHECK(check_notify(r, known).status == 405);
        CHECK(check_notify(r, known).reason == errc::bad_method);
    }

    TEST_CASE("gmediarender's real NOTIFYs pass the checks") {
        std::set<std::string> sids;
        for (int i = 0; i < 4; ++i) {
            auto r = gena_test::read_request(data_dir() + "/notify-" + std::to_string(i) + ".http");
            auto d = check_notify(r, [](std::string_view) { return true; });
            INFO(i);
            CHECK(d.accepted());
            CHECK(d.seq == static_cast<unsigned>(i / 2));
            sids.insert(d.sid);
            CHECK(PropertySet::parse(r.body).ok());
        }
        CHECK(sids.size() == 2);
    }
}

TEST_SUITE("gena.protocol.device") {
    const SubscriptionPolicy policy{};
    auto any_sid = [](std::string_view sid) { return sid == "uuid:live"; };

    TEST_CASE("CALLBACK lists: several URLs, http only, bounded in count and length") {
        auto two = parse_callback("<http://10.0.0.2:80/a> <http://10.0.0.3/b>");
        REQUIRE(two.ok());
        REQUIRE(two->size() == 2);
        CHECK(two->at(0).host == "10.0.0.2");
        CHECK(two->at(1).path == "/b");
        auto mixed = parse_callback("<https://x/a><ftp://y/><HTTP://10.0.0.4/c>");
        REQUIRE(mixed.ok());
        CHECK(mixed->size() == 1);
        CHECK(mixed->at(0).host == "10.0.0.4");
        std::string many;
        for (int i = 0; i < 100; ++i) many += "<http://10.0.0." + std::to_string(i) + "/>";
        CHECK(parse_callback(many, 8, 512, 8192)->size() == 8);
        std::string long_url = "<http://h/" + std::string(600, 'a') + ">";
        CHECK(parse_callback(long_url).error() == errc::bad_callback);
        CHECK(parse_callback(std::string(5000, '<')).error() == errc::bad_callback);
        for (const char* bad : {"", "http://h/", "<http://h/", "<>", "<http://>", "x<http://h/>",
                                "<https://h/>", "<http://h/><"}) {
            INFO(bad);
            CHECK(parse_callback(bad).error() == errc::bad_callback);
        }
    }

    TEST_CASE("a new subscription is accepted with callbacks and a clamped timeout") {
        auto d = check_subscription_request(
            device_request("SUBSCRIBE", {{"CALLBACK", "<http://10.0.0.2:9000/x>"},
                                         {"NT", "upnp:event"},
                                         {"TIMEOUT", "Second-300"}}),
            policy, any_sid);
        CHECK(d.accepted());
        CHECK(d.action == SubscriptionAction::subscribe);
        REQUIRE(d.callbacks.size() == 1);
        CHECK(d.callbacks[0].port == 9000);
        CHECK(d.timeout == 300s);

        auto def = check_subscription_request(
            device_request("SUBSCRIBE", {{"CALLBACK", "<http://h/>"}, {"NT", "upnp:event"}}),
            policy, any_sid);
        CHECK(def.timeout == 1800s);
        auto small = check_subscription_request(
            device_request(
                "SUBSCRIBE",
                {{"CALLBACK", "<http://h/>"}, {"NT", "upnp:event"}, {"TIMEOUT", "Second-5"}}),
            policy, any_sid);
        CHECK(small.timeout == 60s);
        auto inf = check_subscription_request(
            device_request("SUBSCRIBE", {{"CALLBACK", "<http://h/>"},
                                         {"NT", "upnp:event"},
                                         {"TIMEOUT", "Second-infinite"}}),
            policy, any_sid);
        CHECK(inf.timeout == 86400s);
        auto junk = check_subscription_request(
            device_request(
                "SUBSCRIBE",
                {{"CALLBACK", "<http://h/>"}, {"NT", "upnp:event"}, {"TIMEOUT", "junk"}}),
            policy, any_sid);
        CHECK(junk.timeout == 1800s);
    }

    TEST_CASE("a missing or invalid CALLBACK or a wrong NT is 412") {
        auto no_cb = check_subscription_request(device_request("SUBSCRIBE", {{"NT", "upnp:event"}}),
                                                policy, any_sid);
        CHECK(no_cb.status == 412);
        CHECK(no_cb.reason == errc::bad_callback);
        auto bad_cb = check_subscription_request(
            device_request("SUBSCRIBE", {{"CALLBACK", "http://h/"}, {"NT", "upnp:event"}}), policy,
            any_sid);
        CHECK(bad_cb.status == 412);
        auto bad_nt = check_subscription_request(
            device_request("SUBSCRIBE", {{"CALLBACK", "<http://h/>"}, {"NT", "upnp:other"}}),
            policy, any_sid);
        CHECK(bad_nt.status == 412);
        CHECK(bad_nt.reason == errc::bad_nt);
        auto no_nt = check_subscription_request(
            device_request("SUBSCRIBE", {{"CALLBACK", "<http://h/>"}}), policy, any_sid);
        CHECK(no_nt.status == 412);
    }

    TEST_CASE("renewal: SID with NT or CALLBACK is 400, unknown SID 412, known SID 200") {
        auto both = check_subscription_request(
            device_request("SUBSCRIBE", {{"SID", "uuid:live"}, {"NT", "upnp:event"}}), policy,
            any_sid);
        CHECK(both.status == 400);
        CHECK(both.reason == errc::sid_with_nt_or_callback);
        auto with_cb = check_subscription_request(
            device_request("SUBSCRIBE", {{"SID", "uuid:live"}, {"CALLBACK", "<http://h/>"}}),
            policy, any_sid);
        CHECK(with_cb.status == 400);
        auto unknown = check_subscription_request(
            device_request("SUBSCRIBE", {{"SID", "uuid:gone"}, {"TIMEOUT", "Second-100"}}), policy,
            any_sid);
        CHECK(unknown.status == 412);
        CHECK(unknown.reason == errc::unknown_sid);
        auto ok = check_subscription_request(
            device_request("SUBSCRIBE", {{"sid", " uuid:live "}, {"TIMEOUT", "Second-100"}}),
            policy, any_sid);
        CHECK(ok.accepted());
        CHECK(ok.action == SubscriptionAction::renew);
        CHECK(ok.sid == "uuid:live");
        CHECK(ok.timeout == 100s);
    }

    TEST_CASE("UNSUBSCRIBE: known SID 200, unknown or missing 412, with NT/CALLBACK 400") {
        auto ok = check_subscription_request(device_request("UNSUBSCRIBE", {{"SID", "uuid:live"}}),
                                             policy, any_sid);
        CHECK(ok.accepted());
        CHECK(ok.action == SubscriptionAction::unsubscribe);
        CHECK(check_subscription_request(device_request("UNSUBSCRIBE", {{"SID", "uuid:x"}}), policy,
                                         any_sid)
                  .status == 412);
        CHECK(
            check_subscription_request(device_request("UNSUBSCRIBE", {}), policy, any_sid).status ==
            412);
        CHECK(check_subscription_request(
                  device_request("UNSUBSCRIBE", {{"SID", "uuid:live"}, {"NT", "upnp:event"}}),
                  policy, any_sid)
                  .status == 400);
        CHECK(check_subscription_request(device_request("GET", {}), policy, any_sid).status == 405);
    }

    TEST_CASE("responses and NOTIFY requests carry the UDA headers") {
        Response r = make_subscribe_response("uuid:1", 1800s);
        CHECK(r.status == 200);
        CHECK(r.headers.get("SID") == "uuid:1");
        CHECK(r.headers.get("TIMEOUT") == "Second-1800");
        CHECK(r.headers.get("SERVER") == default_user_agent());
        auto back = read_subscribe_response(r, std::nullopt);
        CHECK(back->timeout == Timeout{false, 1800s});
        CHECK(make_error_response(412).status == 412);
        CHECK_FALSE(make_error_response(400).keep_alive());

        std::string body = build_property_set({{"Volume", "12"}});
        Request n = make_notify(Url::parse("http://10.0.0.2:8080/cb?x=1"), "uuid:1", 7, body);
        CHECK(n.method == "NOTIFY");
        CHECK(n.target == "/cb?x=1");
        CHECK(n.headers.get("HOST") == "10.0.0.2:8080");
        CHECK(n.headers.get("CONTENT-TYPE") == "text/xml; charset=\"utf-8\"");
        CHECK(n.headers.get("NT") == "upnp:event");
        CHECK(n.headers.get("NTS") == "upnp:propchange");
        CHECK(n.headers.get("SID") == "uuid:1");
        CHECK(n.headers.get("SEQ") == "7");
        // What the publisher builds, the listener accepts and the reader parses.
        auto d = check_notify(n, [](std::string_view s) { return s == "uuid:1"; });
        CHECK(d.accepted());
        CHECK(d.seq == 7u);
        CHECK(PropertySet::parse(n.body)->variables().at("Volume") == "12");
    }

    TEST_CASE("SIDs are unique random version-4 UUIDs") {
        std::set<std::string> seen;
        for (int i = 0; i < 100; ++i) {
            std::string sid = make_sid();
            CHECK(sid.size() == 41);
            CHECK(sid.rfind("uuid:", 0) == 0);
            CHECK(sid[19] == '4');
            seen.insert(sid);
        }
        CHECK(seen.size() == 100);
    }

    // Issue 20: 100 k SIDs are distinct, well-formed v4 UUIDs, and their 122 random bits are
    // uniform. The bounds are far out (about 10 standard deviations) so that a correct
    // generator never fails them, while a constant, a counter or a stuck bit does.
    TEST_CASE("100k SIDs: distinct, UUID v4 format, uniform nibbles and bits") {
        constexpr int n = 100'000;
        std::unordered_set<std::string> seen;
        seen.reserve(n);
        // The 32 hex digits of a SID, without "uuid:" and the dashes.
        std::array<std::array<std::uint32_t, 16>, 32> nibble_counts{};
        std::array<std::uint32_t, 128> bit_ones{};
        bool format_ok = true;
        for (int i = 0; i < n; ++i) {
            std::string sid = make_sid();
            // uuid:xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx, lower-case hex.
            bool ok = sid.size() == 41 && sid.rfind("uuid:", 0) == 0 && sid[13] == '-' &&
                      sid[18] == '-' && sid[23] == '-' && sid[28] == '-' && sid[19] == '4' &&
                      std::string_view("89ab").find(sid[24]) != std::string_view::npos;
            int digit = 0;
            for (std::size_t k = 5; ok && k < sid.size(); ++k) {
                if (k == 13 || k == 18 || k == 23 || k == 28) continue;
                char c = sid[k];
                int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                if (v < 0) {
                    ok = false;
                    break;
                }
                ++nibble_counts[static_cast<std::size_t>(digit)][static_cast<std::size_t>(v)];
                for (int b = 0; b < 4; ++b) {
                    if ((v >> (3 - b)) & 1) ++bit_ones[static_cast<std::size_t>(digit * 4 + b)];
                }
                ++digit;
            }
            if (!ok || digit != 32) {
                format_ok = false;
                INFO("bad SID: ", sid);
                CHECK(ok);
                break;
            }
            seen.insert(std::move(sid));
        }
        REQUIRE(format_ok);
        CHECK(seen.size() == static_cast<std::size_t>(n));

        // Chi-square of every fully random hex digit (all but digit 12, the version, and
        // digit 16, whose top two bits are the variant): 30 digits x 15 degrees of freedom =
        // 450, standard deviation 30; the bound is mean + 10 sd.
        double chi2 = 0;
        int free_degrees = 0;
        for (std::size_t d = 0; d < 32; ++d) {
            if (d == 12 || d == 16) continue;
            double expected = n / 16.0;
            for (std::uint32_t count : nibble_counts[d]) {
                chi2 += (count - expected) * (count - expected) / expected;
            }
            free_degrees += 15;
        }
        INFO("chi-square ", chi2, " over ", free_degrees, " degrees of freedom");
        CHECK(chi2 < free_degrees + 10 * std::sqrt(2.0 * free_degrees));
        CHECK(chi2 > free_degrees - 10 * std::sqrt(2.0 * free_degrees));
        // Each of the 122 random bits is set in half the SIDs: sd = sqrt(n)/2 = 158; +-10 sd.
        int random_bits = 0;
        for (std::size_t bit = 0; bit < 128; ++bit) {
            if (bit / 4 == 12 || bit == 64 || bit == 65) {
                // The fixed bits: version 0100, variant 10.
                std::uint32_t expected_ones =
                    bit / 4 == 12 ? (bit == 49 ? n : 0) : (bit == 64 ? n : 0);
                CHECK(bit_ones[bit] == expected_ones);
                continue;
            }
            ++random_bits;
            double deviation = std::abs(static_cast<double>(bit_ones[bit]) - n / 2.0);
            if (deviation >= 10 * std::sqrt(n) / 2) {
                INFO("bit ", bit, " set in ", bit_ones[bit], " of ", n);
                CHECK(deviation < 10 * std::sqrt(n) / 2);
            }
        }
        CHECK(random_bits == 122);
    }

    // Issue 20: the SID came from a thread_local std::mt19937_64: recoverable from observed
    // SIDs, and duplicated by fork(), after which parent and child hand out the same SIDs.
    // From the OS generator, a forked child's SIDs are its own.
    TEST_CASE("SIDs come from the OS generator: a forked child does not repeat the parent's") {
        (void)make_sid();  // any per-thread generator state exists before the fork
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            std::string sid = make_sid();
            ssize_t w = ::write(fds[1], sid.data(), sid.size());
            ::_exit(w == static_cast<ssize_t>(sid.size()) ? 0 : 1);
        }
        ::close(fds[1]);
        std::string parent_sid = make_sid();
        char buffer[64];
        std::string child_sid;
        for (ssize_t r; (r = ::read(fds[0], buffer, sizeof buffer)) > 0;) {
            child_sid.append(buffer, static_cast<std::size_t>(r));
        }
        ::close(fds[0]);
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        CHECK(WIFEXITED(status));
        REQUIRE(child_sid.size() == 41);
        CHECK(child_sid != parent_sid);
    }

    TEST_CASE("format_uuid_v4 sets the version and variant bits and nothing else") {
        std::array<std::byte, 16> ones{};
        ones.fill(std::byte{0xFF});
        CHECK(format_uuid_v4(ones) == "ffffffff-ffff-4fff-bfff-ffffffffffff");
        std::array<std::byte, 16> zeros{};
        CHECK(format_uuid_v4(zeros) == "00000000-0000-4000-8000-000000000000");
        std::array<std::byte, 16> counting{};
        for (std::size_t i = 0; i < 16; ++i) counting[i] = static_cast<std::byte>(i * 17);
        CHECK(format_uuid_v4(counting) == "00112233-4455-4677-8899-aabbccddeeff");
    }
}
