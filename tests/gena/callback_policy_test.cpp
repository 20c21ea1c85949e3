#include "uvgena/gena/callback_policy.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "uvgena/gena/event_body.hpp"
#include "uvgena/gena/last_change_builder.hpp"

using namespace uvgena;
using namespace uvgena::gena;

namespace {

SocketAddress ip(const char* text) {
    return SocketAddress::parse(text, 0);
}

// The interfaces of a typical host: loopback, a home LAN and an IPv6 link-local address.
std::vector<InterfaceNetwork> home_interfaces() {
    return {
        {ip("127.0.0.1"), ip("255.0.0.0")},
        {ip("192.168.1.10"), ip("255.255.255.0")},
        {ip("fe80::10"), ip("ffff:ffff:ffff:ffff::")},
    };
}

bool allowed(const char* callback, const char* requester, const char* local,
             CallbackScope scope = CallbackScope::same_segment,
             std::span<const IpNetwork> extra = {}) {
    auto interfaces = home_interfaces();
    CallbackCheck check{ip(requester), ip(local), interfaces, scope, extra};
    return callback_allowed(ip(callback), check);
}

}  // namespace

TEST_SUITE("gena.publisher_policy") {
    TEST_CASE("the requester's own address is always allowed, loopback to loopback too") {
        for (auto scope : {CallbackScope::same_host, CallbackScope::same_segment,
                           CallbackScope::private_networks}) {
            CHECK(allowed("192.168.1.20", "192.168.1.20", "192.168.1.10", scope));
            CHECK(allowed("127.0.0.2", "127.0.0.1", "127.0.0.1", scope));
            CHECK(allowed("::1", "127.0.0.1", "127.0.0.1", scope));
            // IPv4-mapped requesters (a dual-stack listener) are compared as IPv4.
            CHECK(allowed("192.168.1.20", "::ffff:192.168.1.20", "::ffff:192.168.1.10", scope));
        }
    }

    TEST_CASE("same_host refuses every other address") {
        CHECK_FALSE(
            allowed("192.168.1.21", "192.168.1.20", "192.168.1.10", CallbackScope::same_host));
        CHECK_FALSE(allowed("8.8.8.8", "127.0.0.1", "127.0.0.1", CallbackScope::same_host));
    }

    TEST_CASE("same_segment allows the segment of the receiving interface, for a requester on it") {
        CHECK(allowed("192.168.1.21", "192.168.1.20", "192.168.1.10"));
        CHECK(allowed("fe80::99", "fe80::20", "fe80::10"));
        // CallStranger: a target outside the segment, or a requester outside it.
        CHECK_FALSE(allowed("8.8.8.8", "192.168.1.20", "192.168.1.10"));
        CHECK_FALSE(allowed("192.168.2.5", "192.168.1.20", "192.168.1.10"));
        CHECK_FALSE(allowed("192.168.1.21", "203.0.113.7", "192.168.1.10"));
        CHECK_FALSE(allowed("8.8.8.8", "127.0.0.1", "127.0.0.1"));
        // The segment is that of the interface the request arrived on, not any interface.
        CHECK_FALSE(allowed("192.168.1.21", "127.0.0.1", "127.0.0.1"));
    }

    TEST_CASE("private_networks serves routed private LANs without opening the internet") {
        auto scope = CallbackScope::private_networks;
        CHECK(allowed("10.20.0.5", "192.168.1.20", "192.168.1.10", scope));
        CHECK(allowed("172.16.4.4", "10.0.0.1", "192.168.1.10", scope));
        CHECK(allowed("fd00::5", "192.168.1.20", "192.168.1.10", scope));
        CHECK_FALSE(allowed("8.8.8.8", "192.168.1.20", "192.168.1.10", scope));
        CHECK_FALSE(allowed("10.0.0.5", "203.0.113.7", "192.168.1.10", scope));
        CHECK_FALSE(allowed("172.32.0.1", "192.168.1.20", "192.168.1.10", scope));
    }

    TEST_CASE("extra networks are allowed in addition; any allows everything") {
        std::vector<IpNetwork> extra{IpNetwork::parse("10.5.0.0/16").value()};
        CHECK(allowed("10.5.3.3", "192.168.1.20", "192.168.1.10", CallbackScope::same_segment,
                      extra));
        CHECK_FALSE(allowed("10.6.3.3", "192.168.1.20", "192.168.1.10", CallbackScope::same_segment,
                            extra));
        CHECK(allowed("8.8.8.8", "203.0.113.7", "192.168.1.10", CallbackScope::any));
    }

    // Issue 20: a subnet broadcast address (10.77.0.255 with an interface in 10.77.0.0/24)
    // was accepted as a CALLBACK host; multicast and limited broadcast are no single host
    // either. Refused in every scope, `any` included.
    TEST_CASE("broadcast, multicast and unspecified CALLBACK hosts are refused in every scope") {
        std::vector<InterfaceNetwork> interfaces{
            {ip("127.0.0.1"), ip("255.0.0.0")},
            {ip("10.77.0.1"), ip("255.255.255.0")},
            {ip("192.168.7.1"), ip("255.255.255.254")},  // a /31: no broadcast address
            {ip("fe80::10"), ip("ffff:ffff:ffff:ffff::")},
        };
        auto check = [&](const char* callback, const char* requester, const char* local,
                         CallbackScope scope) {
            CallbackCheck c{ip(requester), ip(local), interfaces, scope, {}};
            return callback_allowed(ip(callback), c);
        };
        for (auto scope : {CallbackScope::same_host, CallbackScope::same_segment,
                           CallbackScope::private_networks, CallbackScope::any}) {
            CAPTURE(static_cast<int>(scope));
            // Unicast hosts of the segment are still served (same_host: only the requester).
            CHECK(check("10.77.0.20", "10.77.0.20", "10.77.0.1", scope));
            CHECK(check("192.168.7.0", "192.168.7.0", "192.168.7.1", scope));
            // Subnet broadcast and network address, limited broadcast, multicast, 0/8, 240/4.
            CHECK_FALSE(check("10.77.0.255", "10.77.0.20", "10.77.0.1", scope));
            CHECK_FALSE(check("10.77.0.0", "10.77.0.20", "10.77.0.1", scope));
            CHECK_FALSE(check("127.255.255.255", "127.0.0.1", "127.0.0.1", scope));
            CHECK_FALSE(check("255.255.255.255", "10.77.0.20", "10.77.0.1", scope));
            CHECK_FALSE(check("239.255.255.250", "10.77.0.20", "10.77.0.1", scope));
            CHECK_FALSE(check("224.0.0.1", "10.77.0.20", "10.77.0.1", scope));
            CHECK_FALSE(check("0.0.0.0", "10.77.0.20", "10.77.0.1", scope));
            CHECK_FALSE(check("240.0.0.1", "10.77.0.20", "10.77.0.1", scope));
            CHECK_FALSE(check("::ffff:10.77.0.255", "10.77.0.20", "10.77.0.1", scope));
            CHECK_FALSE(check("ff02::1", "fe80::20", "fe80::10", scope));
            CHECK_FALSE(check("ff02::c", "fe80::20", "fe80::10", scope));
            CHECK_FALSE(check("::", "fe80::20", "fe80::10", scope));
        }
        // Even when the requester names itself with a broadcast address.
        CHECK_FALSE(check("10.77.0.255", "10.77.0.255", "10.77.0.1", CallbackScope::same_host));
        CHECK(is_unicast_callback_address(ip("10.77.0.254"), interfaces));
        CHECK_FALSE(is_unicast_callback_address(ip("10.77.0.255"), interfaces));
        // Without the interface, 10.77.0.255 could be a host of a wider network.
        CHECK(is_unicast_callback_address(ip("10.77.0.255"), {}));
    }

    TEST_CASE("IP networks parse in CIDR form and contain what they should") {
        auto net = IpNetwork::parse("192.168.0.0/16");
        REQUIRE(net.ok());
        CHECK(net->prefix == 16);
        CHECK(net->contains(ip("192.168.200.1")));
        CHECK(net->contains(ip("::ffff:192.168.200.1")));
        CHECK_FALSE(net->contains(ip("192.169.0.1")));
        auto host = IpNetwork::parse("10.0.0.1");
        REQUIRE(host.ok());
        CHECK(host->prefix == 32);
        auto v6 = IpNetwork::parse(" fd00::/8 ");
        REQUIRE(v6.ok());
        CHECK(v6->contains(ip("fdab::1")));
        CHECK_FALSE(v6->contains(ip("fe80::1")));
        auto odd = IpNetwork::parse("10.0.0.0/12");
        REQUIRE(odd.ok());
        CHECK(odd->contains(ip("10.15.255.255")));
        CHECK_FALSE(odd->contains(ip("10.16.0.0")));
        CHECK_FALSE(IpNetwork::parse("10.0.0.0/33").ok());
        CHECK_FALSE(IpNetwork::parse("10.0.0.0/").ok());
        CHECK_FALSE(IpNetwork::parse("example.com/8").ok());
    }

    TEST_CASE("private addresses are recognised") {
        for (const char* a : {"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.0.1",
                              "169.254.1.1", "127.0.0.1", "::1", "fe80::1", "fd12::1"}) {
            CHECK_MESSAGE(is_private_address(ip(a)), a);
        }
        for (const char* a : {"8.8.8.8", "172.32.0.1", "192.169.0.1", "2001:db8::1"}) {
            CHECK_FALSE_MESSAGE(is_private_address(ip(a)), a);
        }
        CHECK_FALSE(is_private_address(SocketAddress()));
    }
}

TEST_SUITE("gena.last_change_state") {
    TEST_CASE("changes are taken per instance in order, the full document keeps everything") {
        LastChangeState lc("urn:schemas-upnp-org:metadata-1-0/RCS/");
        CHECK_FALSE(lc.has_changes());
        lc.set("0", "Volume", "12", {{"channel", "Master"}});
        lc.set("0", "Mute", "0", {{"channel", "Master"}});
        lc.set("1", "Volume", "3", {{"channel", "Master"}});
        lc.set("0", "Volume", "5", {{"channel", "LF"}});
        CHECK(lc.has_changes());
        std::string first = lc.take_changes();
        CHECK_FALSE(lc.has_changes());
        auto parsed = parse_last_change(first);
        REQUIRE(parsed.ok());
        CHECK(parsed->ns == "urn:schemas-upnp-org:metadata-1-0/RCS/");
        REQUIRE(parsed->instances.size() == 2);
        CHECK(parsed->instance("0")->values.size() == 3);
        CHECK(parsed->instance("0")->find("Volume", "LF")->value == "5");
        CHECK(parsed->instance("1")->get("Volume") == "3");

        lc.set("0", "Volume", "13", {{"channel", "Master"}});
        lc.set("0", "Volume", "14", {{"channel", "Master"}});  // coalesced: the last value
        auto second = parse_last_change(lc.take_changes());
        REQUIRE(second.ok());
        REQUIRE(second->instances.size() == 1);
        REQUIRE(second->instance("0")->values.size() == 1);
        CHECK(second->instance("0")->find("Volume", "Master")->value == "14");

        auto full = parse_last_change(lc.full_document());
        REQUIRE(full.ok());
        CHECK(full->instance("0")->values.size() == 3);
        CHECK(full->instance("0")->find("Volume", "Master")->value == "14");
        CHECK(full->instance("1")->values.size() == 1);
        CHECK(*lc.value("0", "Volume", {{"channel", "LF"}}) == "5");
        CHECK(lc.value("0", "Volume") == nullptr);
        CHECK(lc.value("7", "Volume") == nullptr);
    }

    TEST_CASE("values are escaped and bad names refused") {
        LastChangeState lc("urn:schemas-upnp-org:metadata-1-0/AVT/");
        lc.set("0", "AVTransportURIMetaData", "<DIDL-Lite>\"a&b\"</DIDL-Lite>");
        auto parsed = parse_last_change(lc.full_document());
        REQUIRE(parsed.ok());
        CHECK(parsed->instance("0")->get("AVTransportURIMetaData") ==
              "<DIDL-Lite>\"a&b\"</DIDL-Lite>");
        CHECK_THROWS_AS(lc.set("0", "bad name", "x"), Error);
        CHECK_THROWS_AS(lc.set("0", "Volume", "x", {{"val", "1"}}), Error);
        CHECK_THROWS_AS(lc.set("0", "Volume", "x", {{"1channel", "1"}}), Error);
    }
}
