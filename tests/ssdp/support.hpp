// Helpers of the ssdp I/O tests: a test device (description XML served over HTTP) and
// options that keep every exchange short.
#pragma once

#include <chrono>
#include <csignal>
#include <memory>
#include <string>

#include "uvgena/http/server.hpp"
#include "uvgena/ssdp/advertiser.hpp"
#include "uvgena/ssdp/description.hpp"
#include "uvgena/ssdp/discovery.hpp"

namespace ssdptest {

inline const bool sigpipe_ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();

/// A description of a renderer with two services and an embedded device with one.
inline std::string description_xml(const std::string& udn, const std::string& name) {
    return R"(<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
  <specVersion><major>1</major><minor>1</minor></specVersion>
  <device>
    <deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType>
    <friendlyName>)" +
           name + R"(</friendlyName>
    <manufacturer>uvgena tests</manufacturer>
    <modelName>Test Renderer</modelName>
    <UDN>)" +
           udn + R"(</UDN>
    <presentationURL>/</presentationURL>
    <serviceList>
      <service>
        <serviceType>urn:schemas-upnp-org:service:RenderingControl:1</serviceType>
        <serviceId>urn:upnp-org:serviceId:RenderingControl</serviceId>
        <SCPDURL>/rc.xml</SCPDURL>
        <controlURL>/rc/control</controlURL>
        <eventSubURL>/rc/event</eventSubURL>
      </service>
      <service>
        <serviceType>urn:schemas-upnp-org:service:AVTransport:1</serviceType>
        <serviceId>urn:upnp-org:serviceId:AVTransport</serviceId>
        <SCPDURL>avt.xml</SCPDURL>
        <controlURL>avt/control</controlURL>
        <eventSubURL>avt/event</eventSubURL>
      </service>
    </serviceList>
    <deviceList>
      <device>
        <deviceType>urn:schemas-upnp-org:device:Embedded:1</deviceType>
        <friendlyName>)" +
           name + R"( (embedded)</friendlyName>
        <UDN>)" +
           udn + R"(-sub</UDN>
        <serviceList>
          <service>
            <serviceType>urn:schemas-upnp-org:service:ConnectionManager:2</serviceType>
            <serviceId>urn:upnp-org:serviceId:ConnectionManager</serviceId>
            <SCPDURL>/cm.xml</SCPDURL>
            <controlURL>/cm/control</controlURL>
            <eventSubURL>/cm/event</eventSubURL>
          </service>
        </serviceList>
      </device>
    </deviceList>
  </device>
</root>
)";
}

/// The test device's tree, as a device would know it.
inline uvgena::ssdp::DeviceInfo device_info(const std::string& udn, const std::string& name) {
    return uvgena::ssdp::parse_description(description_xml(udn, name), "http://127.0.0.1/desc.xml")
        .value()
        .root;
}

/// An HTTP server on loopback answering GET /desc.xml with `xml` (and 404 elsewhere).
inline std::unique_ptr<uvgena::http::Server> description_server(uv_loop_t* loop, std::string xml) {
    auto server = std::make_unique<uvgena::http::Server>(
        loop,
        [xml = std::move(xml)](
            const uvgena::http::Request& req,
            const uvgena::http::RequestContext&) -> uvgena::Task<uvgena::http::Response> {
            uvgena::http::Response r;
            if (req.target == "/desc.xml") {
                r.headers.add("Content-Type", "text/xml");
                r.body = xml;
            } else if (req.target == "/broken.xml") {
                r.body = "<root><device>";
            } else {
                r.status = 404;
            }
            co_return r;
        },
        uvgena::http::ServerOptions{.address = uvgena::SocketAddress::ipv4_loopback(0)});
    server->listen();
    return server;
}

/// Advertiser options for the test device: quick answers, LOCATION on `port`.
inline uvgena::ssdp::AdvertiserOptions advertiser_options(const std::string& udn,
                                                          const std::string& name,
                                                          std::uint16_t http_port) {
    uvgena::ssdp::AdvertiserOptions o;
    o.device = device_info(udn, name);
    o.location = "http://{ip}:" + std::to_string(http_port) + "/desc.xml";
    o.max_response_delay = std::chrono::milliseconds(20);
    o.repeats = 1;
    return o;
}

/// Search options that finish fast.
inline uvgena::ssdp::DiscoverOptions quick_search(std::string target = "ssdp:all") {
    uvgena::ssdp::DiscoverOptions o;
    o.search_target = std::move(target);
    o.timeout = std::chrono::milliseconds(300);
    o.mx = 1;
    o.resend_interval = std::chrono::milliseconds(50);
    return o;
}

}  // namespace ssdptest
