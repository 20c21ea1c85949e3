#include "uvgena/ssdp/description.hpp"

#include <doctest/doctest.h>

#include <string>

#include "uvgena/ssdp/find_device.hpp"
#include "uvgena/ssdp/message.hpp"

using namespace uvgena;

namespace {

// The shape of a Sonos player's description: a ZonePlayer root with its own services and two
// embedded devices (MediaServer, MediaRenderer) whose services repeat short names.
constexpr std::string_view kSonosLike = R"(<?xml version="1.0" encoding="utf-8" ?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
  <specVersion><major>1</major><minor>0</minor></specVersion>
  <device>
    <deviceType>urn:schemas-upnp-org:device:ZonePlayer:1</deviceType>
    <friendlyName>192.168.1.20 - Sonos One - RINCON_000E58A0B0C001400</friendlyName>
    <manufacturer>Sonos, Inc.</manufacturer>
    <manufacturerURL>http://www.sonos.com</manufacturerURL>
    <modelNumber>S18</modelNumber>
    <modelName>Sonos One</modelName>
    <UDN>uuid:RINCON_000E58A0B0C001400</UDN>
    <serviceList>
      <service>
        <serviceType>urn:schemas-upnp-org:service:ZoneGroupTopology:1</serviceType>
        <serviceId>urn:upnp-org:serviceId:ZoneGroupTopology</serviceId>
        <controlURL>/ZoneGroupTopology/Control</controlURL>
        <eventSubURL>/ZoneGroupTopology/Event</eventSubURL>
        <SCPDURL>/xml/ZoneGroupTopology1.xml</SCPDURL>
      </service>
    </serviceList>
    <deviceList>
      <device>
        <deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType>
        <friendlyName>Sonos One Media Server</friendlyName>
        <UDN>uuid:RINCON_000E58A0B0C001400_MS</UDN>
        <serviceList>
          <service>
            <serviceType>urn:schemas-upnp-org:service:ContentDirectory:1</serviceType>
            <serviceId>urn:upnp-org:serviceId:ContentDirectory</serviceId>
            <controlURL>/MediaServer/ContentDirectory/Control</controlURL>
            <eventSubURL>/MediaServer/ContentDirectory/Event</eventSubURL>
            <SCPDURL>/xml/ContentDirectory1.xml</SCPDURL>
          </service>
        </serviceList>
      </device>
      <device>
        <deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType>
        <friendlyName>Sonos One Media Renderer</friendlyName>
        <UDN>uuid:RINCON_000E58A0B0C001400_MR</UDN>
        <serviceList>
          <service>
            <serviceType>urn:schemas-upnp-org:service:RenderingControl:1</serviceType>
            <serviceId>urn:upnp-org:serviceId:RenderingControl</serviceId>
            <controlURL>/MediaRenderer/RenderingControl/Control</controlURL>
            <eventSubURL>/MediaRenderer/RenderingControl/Event</eventSubURL>
            <SCPDURL>/xml/RenderingControl1.xml</SCPDURL>
          </service>
          <service>
            <serviceType>urn:schemas-upnp-org:service:AVTransport:1</serviceType>
            <serviceId>urn:upnp-org:serviceId:AVTransport</serviceId>
            <controlURL>/MediaRenderer/AVTransport/Control</controlURL>
            <eventSubURL>/MediaRenderer/AVTransport/Event</eventSubURL>
            <SCPDURL>/xml/AVTransport1.xml</SCPDURL>
          </service>
        </serviceList>
      </device>
    </deviceList>
  </device>
</root>)";

constexpr std::string_view kLocation = "http://192.168.1.20:1400/xml/device_description.xml";

}  // namespace

TEST_SUITE("ssdp.description") {
    TEST_CASE("a Sonos-like description gives the device tree with absolute URLs") {
        auto d = ssdp::parse_description(kSonosLike, kLocation);
        REQUIRE_MESSAGE(d.ok(), d.error().message());
        CHECK(d->spec_major == 1);
        CHECK(d->root.device_type == "urn:schemas-upnp-org:device:ZonePlayer:1");
        CHECK(d->root.model_name == "Sonos One");
        CHECK(d->root.udn == "uuid:RINCON_000E58A0B0C001400");
        REQUIRE(d->root.devices.size() == 2);
        CHECK(d->root.devices[1].friendly_name == "Sonos One Media Renderer");
        CHECK(d->root.all_services().size() == 4);

        const ssdp::ServiceInfo* rc = d->service("RenderingControl");
        REQUIRE(rc != nullptr);
        CHECK(rc->event_sub_url == "http://192.168.1.20:1400/MediaRenderer/RenderingControl/Event");
        CHECK(rc->control_url == "http://192.168.1.20:1400/MediaRenderer/RenderingControl/Control");
        CHECK(rc->scpd_url == "http://192.168.1.20:1400/xml/RenderingControl1.xml");
        CHECK(rc->short_name() == "RenderingControl");
    }

    TEST_CASE("services are found by short name, full type, id, or an older version") {
        auto d = ssdp::parse_description(kSonosLike, kLocation);
        REQUIRE(d.ok());
        CHECK(d->service("avtransport") != nullptr);
        CHECK(d->service("urn:schemas-upnp-org:service:AVTransport:1") != nullptr);
        CHECK(d->service("urn:upnp-org:serviceId:ContentDirectory") != nullptr);
        CHECK(d->service("urn:schemas-upnp-org:service:AVTransport:2") == nullptr);
        CHECK(d->service("Nonexistent") == nullptr);
        CHECK(d->service("") == nullptr);
        // Depth first: the root's own service comes before embedded ones.
        CHECK(d->root.all_services().front()->short_name() == "ZoneGroupTopology");
    }

    TEST_CASE("URLBase, when present, is the base of relative URLs") {
        std::string xml = std::string(kSonosLike);
        xml.replace(xml.find("<specVersion>"), 0, "<URLBase>http://10.0.0.9:8080/base/</URLBase>");
        auto d = ssdp::parse_description(xml, kLocation);
        REQUIRE(d.ok());
        CHECK(d->url_base == "http://10.0.0.9:8080/base/");
        CHECK(d->service("ZoneGroupTopology")->event_sub_url ==
              "http://10.0.0.9:8080/ZoneGroupTopology/Event");
    }

    TEST_CASE("relative URLs without a leading slash resolve against the location's path") {
        constexpr std::string_view xml = R"(<root xmlns="urn:schemas-upnp-org:device-1-0">
          <device><deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType>
          <UDN>uuid:abc</UDN><serviceList><service>
            <serviceType>urn:schemas-upnp-org:service:RenderingControl:1</serviceType>
            <serviceId>urn:upnp-org:serviceId:RenderingControl</serviceId>
            <SCPDURL>rc/scpd.xml</SCPDURL><controlURL>rc/control</controlURL>
            <eventSubURL>rc/event</eventSubURL></service></serviceList></device></root>)";
        auto d = ssdp::parse_description(xml, "http://10.0.0.1:49494/upnp/description.xml");
        REQUIRE(d.ok());
        CHECK(d->service("RenderingControl")->event_sub_url ==
              "http://10.0.0.1:49494/upnp/rc/event");
    }

    TEST_CASE("prefixed elements, a service without eventSubURL and one without type") {
        constexpr std::string_view xml = R"(<d:root xmlns:d="urn:schemas-upnp-org:device-1-0">
          <d:device><d:deviceType>urn:x:device:Thing:1</d:deviceType><d:UDN>uuid:t</d:UDN>
          <d:serviceList>
            <d:service><d:serviceType>urn:x:service:Quiet:1</d:serviceType>
              <d:serviceId>urn:x:serviceId:Quiet</d:serviceId><d:controlURL>/c</d:controlURL>
            </d:service>
            <d:service><d:serviceId>urn:x:serviceId:Broken</d:serviceId></d:service>
          </d:serviceList></d:device></d:root>)";
        auto d = ssdp::parse_description(xml, "http://10.0.0.1/d.xml");
        REQUIRE(d.ok());
        REQUIRE(d->root.services.size() == 1);
        CHECK(d->service("Quiet")->event_sub_url.empty());
        CHECK(d->service("Quiet")->control_url == "http://10.0.0.1/c");
    }

    TEST_CASE("malformed and hostile descriptions are refused with a specific error") {
        CHECK(ssdp::parse_description("", kLocation).error() == ssdp::errc::bad_xml);
        CHECK(ssdp::parse_description("<root><device>", kLocation).error() == ssdp::errc::bad_xml);
        CHECK(ssdp::parse_description("<html><body/></html>", kLocation).error() ==
              ssdp::errc::bad_description);
        CHECK(ssdp::parse_description("<root><specVersion/></root>", kLocation).error() ==
              ssdp::errc::bad_description);
        CHECK(ssdp::parse_description(
                  "<root><device><friendlyName>x</friendlyName></device></root>", kLocation)
                  .error() == ssdp::errc::bad_description);
        constexpr std::string_view bomb =
            R"(<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>
               <root><device><deviceType>&lol2;</deviceType></device></root>)";
        CHECK(ssdp::parse_description(bomb, kLocation).error() == ssdp::errc::bad_xml);

        std::string deep = "<root>";
        for (int i = 0; i < 5000; ++i) deep += "<a>";
        CHECK(ssdp::parse_description(deep, kLocation).error() == ssdp::errc::bad_xml);
    }

    TEST_CASE("limits bound devices, services, nesting and size") {
        std::string nested = "<root><device><deviceType>urn:x:device:D:1</deviceType>";
        for (int i = 0; i < 12; ++i)
            nested += "<deviceList><device><deviceType>urn:x:device:D:1</deviceType>";
        for (int i = 0; i < 12; ++i) nested += "</device></deviceList>";
        nested += "</device></root>";
        CHECK(ssdp::parse_description(nested, kLocation).error() == ssdp::errc::too_large);

        ssdp::DescriptionLimits small;
        small.max_services = 2;
        CHECK(ssdp::parse_description(kSonosLike, kLocation, small).error() ==
              ssdp::errc::too_large);
        small = {};
        small.max_bytes = 100;
        CHECK(ssdp::parse_description(kSonosLike, kLocation, small).error() ==
              ssdp::errc::too_large);
    }

    TEST_CASE("trailing NULs after the document are ignored") {
        std::string padded(kSonosLike);
        padded.append(4, '\0');
        CHECK(ssdp::parse_description(padded, kLocation).ok());
    }
}

// Devices by name (find_device's matching, sans-IO).
TEST_SUITE("ssdp.names") {
    TEST_CASE("a device is named by its friendlyName (any case, spaces around) or its UDN") {
        uvgena::ssdp::DeviceInfo device;
        device.friendly_name = " Living Room ";
        device.udn = "uuid:RINCON_000E58A0B1C201400";
        using uvgena::ssdp::device_has_name;
        CHECK(device_has_name(device, "Living Room"));
        CHECK(device_has_name(device, "living room"));
        CHECK(device_has_name(device, "  LIVING ROOM\t"));
        CHECK(device_has_name(device, "uuid:RINCON_000E58A0B1C201400"));
        CHECK(device_has_name(device, "UUID:rincon_000e58a0b1c201400"));
        CHECK(device_has_name(device, "RINCON_000E58A0B1C201400"));
        CHECK_FALSE(device_has_name(device, "Living"));
        CHECK_FALSE(device_has_name(device, "Living Room 2"));
        CHECK_FALSE(device_has_name(device, ""));
        CHECK_FALSE(device_has_name(device, "   "));
        CHECK_FALSE(device_has_name(device, "uuid:"));
        CHECK_FALSE(device_has_name(device, "RINCON_000E58A0B1C2014"));
        uvgena::ssdp::DeviceInfo nameless;  // an empty UDN never matches
        CHECK_FALSE(device_has_name(nameless, "uuid:"));
    }

    TEST_CASE("a location is a URL with a scheme; anything else is a device name") {
        using uvgena::ssdp::is_location;
        CHECK(is_location("http://192.168.1.20:1400/xml/device_description.xml"));
        CHECK(is_location("http://[fd00::5]:41235/description.xml"));
        CHECK(is_location("htp://x/d.xml"));  // a URL, of a scheme the caller then refuses
        CHECK_FALSE(is_location("Living Room"));
        CHECK_FALSE(is_location("uuid:RINCON_000E58A0B1C201400"));
        CHECK_FALSE(is_location("://nothing"));
        CHECK_FALSE(is_location("Room: //x"));
        CHECK_FALSE(is_location(""));
    }
}
