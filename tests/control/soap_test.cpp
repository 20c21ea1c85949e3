// The SOAP codec (sans-IO), both sides: round trips through build and parse, escaping of any
// string (XML and DIDL-Lite inside values included), faults, gmediarender's real answers, and
// hostile bodies.
#include "uvgena/control/soap.hpp"

#include <doctest/doctest.h>

#include <string>

#include "../gena/capture.hpp"
#include "support/test_loop.hpp"
#include "uvgena/control/error.hpp"
#include "uvgena/gena/error.hpp"
#include "uvgena/gena/xml_scanner.hpp"

using namespace uvgena;
using namespace uvgena::control;

namespace {

const std::string rc_type = "urn:schemas-upnp-org:service:RenderingControl:1";

std::string capture_body(const std::string& name) {
    std::string dir = uvtest::env_dir("UVGENA_TEST_DATA");
    REQUIRE_MESSAGE(!dir.empty(), "UVGENA_TEST_DATA is not set");
    return gena_test::read_capture(dir + "/gmediarender/control/" + name).body;
}

// Builds a request, parses it as a device does, answers, parses the answer: every value must
// come back as it was, through both XML readers.
void round_trip(const Arguments& in) {
    for (bool scanner : {true, false}) {
        CAPTURE(scanner);
        gena::set_xml_scanner(scanner);
        auto request = build_request({rc_type, "Echo", in});
        REQUIRE_MESSAGE(request.ok(), request.error().message());
        auto header = request->headers.get("SOAPACTION");
        REQUIRE(header);
        auto parsed = parse_request(*header, request->body);
        REQUIRE_MESSAGE(parsed.ok(), parsed.error().message());
        CHECK(parsed->service_type == rc_type);
        CHECK(parsed->action == "Echo");
        CHECK(parsed->arguments == in);
        auto response = build_response(rc_type, "Echo", in);
        REQUIRE(response.ok());
        auto out = parse_response(response->body, "Echo");
        REQUIRE_MESSAGE(out.ok(), out.error().message());
        CHECK(*out == in);
        gena::set_xml_scanner(true);
    }
}

}  // namespace

TEST_SUITE("control.soap") {
    TEST_CASE("a request has the UDA envelope, SOAPACTION and the arguments in order") {
        auto r =
            build_request({rc_type,
                           "SetVolume",
                           {{"InstanceID", "0"}, {"Channel", "Master"}, {"DesiredVolume", "30"}}});
        REQUIRE(r.ok());
        CHECK(r->headers.get("SOAPACTION") ==
              std::string_view("\"urn:schemas-upnp-org:service:RenderingControl:1#SetVolume\""));
        CHECK(r->headers.get("Content-Type") == std::string_view("text/xml; charset=\"utf-8\""));
        CHECK(
            r->body.find("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
                         "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>"
                         "<u:SetVolume xmlns:u=\"" +
                         rc_type +
                         "\"><InstanceID>0</InstanceID><Channel>Master</Channel>"
                         "<DesiredVolume>30</DesiredVolume></u:SetVolume></s:Body></s:Envelope>") !=
            std::string::npos);
        CHECK(soap_action_header("urn:x:service:Y:1", "Z") == "\"urn:x:service:Y:1#Z\"");
    }

    TEST_CASE("any string value survives the round trip, XML and DIDL-Lite included") {
        std::string didl =
            "<DIDL-Lite xmlns=\"urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/\" "
            "xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><item id=\"1\" parentID=\"0\" "
            "restricted=\"1\"><dc:title>Rock &amp; Roll</dc:title><res protocolInfo="
            "\"http-get:*:audio/mpeg:*\">http://10.0.0.2/a.mp3?x=1&amp;y=2</res></item>"
            "</DIDL-Lite>";
        round_trip({{"CurrentURIMetaData", didl}});
        round_trip({{"A", "a & b < c > d \" e ' f"}, {"B", "]]> <![CDATA[x]]>"}, {"C", "&amp;"}});
        round_trip({{"Empty", ""}, {"Space", " "}, {"Blank", " \t\n "}, {"Lead", "  x  "}});
        round_trip({{"CRLF", "a\r\nb\rc\nd"}, {"Only", "\r\n"}, {"Tab", "\tx"}});
        round_trip({{"Utf8", "Caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xb5"}, {"Ref", "&#38;&lt;"}});
        round_trip({});
        std::string big(200'000, 'x');
        big[1000] = '<';
        round_trip({{"Big", big}});
    }

    TEST_CASE("DIDL-Lite is escaped once, as text, not as markup") {
        auto r = build_request({rc_type, "Set", {{"M", "<DIDL-Lite>R&amp;R</DIDL-Lite>"}}});
        REQUIRE(r.ok());
        CHECK(r->body.find("<M>&lt;DIDL-Lite&gt;R&amp;amp;R&lt;/DIDL-Lite&gt;</M>") !=
              std::string::npos);
    }

    TEST_CASE("what XML cannot carry is refused, not sent mangled") {
        CHECK(build_request({rc_type, "A", {{"X", std::string("a\0b", 3)}}}).error() ==
              control::errc::invalid_character);
        CHECK(build_request({rc_type, "A", {{"X", "bell\x07"}}}).error() ==
              control::errc::invalid_character);
        CHECK(build_request({rc_type, "A", {{"X", "\xef\xbf\xbe"}}}).error() ==
              control::errc::invalid_character);
        CHECK(build_request({rc_type, "A", {{"X", "\xef\xbf\xbd"}}}).ok());  // U+FFFD is fine
        CHECK(build_request({rc_type, "A", {{"1X", "v"}}}).error() == control::errc::invalid_name);
        CHECK(build_request({rc_type, "A", {{"X Y", "v"}}}).error() == control::errc::invalid_name);
        CHECK(build_request({rc_type, "A", {{"", "v"}}}).error() == control::errc::invalid_name);
        CHECK(build_request({rc_type, "A b", {}}).error() == control::errc::invalid_name);
        CHECK(build_request({rc_type, "<A>", {}}).error() == control::errc::invalid_name);
        CHECK(build_request({"urn:a\"b", "A", {}}).error() == control::errc::bad_soap_action);
        CHECK(build_request({"urn:a#b", "A", {}}).error() == control::errc::bad_soap_action);
        CHECK(build_request({"", "A", {}}).error() == control::errc::bad_soap_action);
        CHECK(build_request({"urn:a\r\nX: y", "A", {}}).error() == control::errc::bad_soap_action);
    }

    TEST_CASE("gmediarender's real answers parse") {
        auto volume = parse_response(capture_body("get-volume.response.http"), "GetVolume");
        REQUIRE(volume.ok());
        CHECK(*volume == Arguments{{"CurrentVolume", "33"}});
        auto set = parse_response(capture_body("set-volume.response.http"), "SetVolume");
        REQUIRE(set.ok());
        CHECK(set->empty());
        std::string fault_body = capture_body("unknown-action.response.http");
        CHECK(parse_response(fault_body, "NoSuchAction").error() == control::errc::soap_fault);
        auto fault = parse_fault(fault_body);
        REQUIRE(fault.ok());
        CHECK(fault->error_code == 501);
        CHECK(fault->error_description == "Action Failed");
        CHECK(parse_response(capture_body("get-volume.response.http"), "SetVolume").error() ==
              control::errc::wrong_action);
    }

    TEST_CASE("faults round-trip and map errors to UPnP codes") {
        auto body = build_fault({402, "Invalid Args <here> & \x01there"}).body;
        auto fault = parse_fault(body);
        REQUIRE(fault.ok());
        CHECK(fault->error_code == 402);
        CHECK(fault->error_description == "Invalid Args <here> & there");
        CHECK(parse_response(body, "X").error() == control::errc::soap_fault);
        CHECK(parse_fault(build_fault({718, ""}).body)->error_code == 718);
        CHECK(fault_for(make_error_code(control::errc::unknown_argument)).error_code == 402);
        CHECK(fault_for(make_error_code(control::errc::unknown_action)).error_code == 401);
        CHECK(fault_for(make_error_code(control::errc::value_out_of_range)).error_code == 601);
        CHECK(fault_for(make_error_code(control::errc::bad_value)).error_code == 600);
        CHECK(fault_for(make_error_code(control::errc::wrong_action)).error_code == 401);
        CHECK(fault_for(make_error_code(control::errc::bad_envelope)).error_code == 402);
        CHECK(fault_for(upnp_error(714)).error_code == 714);
        CHECK(fault_for(make_error_code(gena::errc::xml_malformed)).error_code == 501);
        CHECK(fault_for(make_error_code(control::errc::unknown_argument)).error_description ==
              "Invalid Args");
        // A fault whose UPnPError is unreadable.
        std::string no_code =
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault>"
            "<faultcode>s:Client</faultcode><detail><UPnPError><errorCode>four</errorCode>"
            "</UPnPError></detail></s:Fault></s:Body></s:Envelope>";
        CHECK(parse_fault(no_code).error() == control::errc::bad_fault);
        std::string no_detail =
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault>"
            "<faultcode>s:Server</faultcode></s:Fault></s:Body></s:Envelope>";
        CHECK(parse_fault(no_detail).error() == control::errc::bad_fault);
        std::string no_description =
            "<Envelope><Body><Fault><detail><UPnPError><errorCode> 603 </errorCode></UPnPError>"
            "</detail></Fault></Body></Envelope>";
        REQUIRE(parse_fault(no_description).ok());
        CHECK(parse_fault(no_description)->error_code == 603);
        CHECK(parse_fault(no_description)->error_description.empty());
        CHECK(parse_fault(capture_body("get-volume.response.http")).error() ==
              control::errc::bad_envelope);
    }

    TEST_CASE("the device side checks SOAPACTION against the body") {
        auto r = build_request({rc_type, "GetVolume", {{"InstanceID", "0"}}});
        REQUIRE(r.ok());
        CHECK(parse_request("\"" + rc_type + "#SetVolume\"", r->body).error() ==
              control::errc::wrong_action);
        CHECK(parse_request("\"urn:other:service:X:1#GetVolume\"", r->body).error() ==
              control::errc::wrong_action);
        CHECK(parse_request(rc_type + "#GetVolume", r->body).ok());  // unquoted: tolerated
        CHECK(parse_request("\"" + rc_type + "\"", r->body).error() ==
              control::errc::bad_soap_action);
        CHECK(parse_request("\"#GetVolume\"", r->body).error() == control::errc::bad_soap_action);
        CHECK(parse_request("", r->body).error() == control::errc::bad_soap_action);
        auto header = parse_soap_action_header(" \"urn:a:service:B:1#C\" ");
        REQUIRE(header.ok());
        CHECK(header->first == "urn:a:service:B:1");
        CHECK(header->second == "C");
    }

    TEST_CASE("hostile and malformed bodies are errors, never crashes") {
        auto action = "\"" + rc_type + "#A\"";
        CHECK(parse_request(action, "").error() == gena::errc::xml_malformed);
        CHECK(parse_request(action, "<a>").error() == gena::errc::xml_malformed);
        CHECK(parse_request(action, "<Envelope/>").error() == control::errc::bad_envelope);
        CHECK(parse_request(action, "<Envelope><Body/></Envelope>").error() ==
              control::errc::bad_envelope);
        CHECK(parse_request(action, "<Envelope><Header/></Envelope>").error() ==
              control::errc::bad_envelope);
        CHECK(
            parse_request(action, "<Envelope><Body><A><X><y/></X></A></Body></Envelope>").error() ==
            control::errc::bad_envelope);  // markup inside a value
        CHECK(
            parse_request(action, "<Envelope><Body><A><X>v</X></A></Body></Envelope>")->arguments ==
            Arguments{{"X", "v"}});  // no namespaces at all: the header decides
        std::string bomb =
            "<!DOCTYPE e [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]>"
            "<Envelope><Body><A><X>&b;</X></A></Body></Envelope>";
        CHECK(parse_request(action, bomb).error() == gena::errc::xml_doctype_refused);
        CHECK(parse_response(std::string(3000, '<'), "A").error() != std::error_code{});
        SoapLimits small;
        small.max_bytes = 100;
        auto big = build_response(rc_type, "A", {{"X", std::string(200, 'x')}});
        REQUIRE(big.ok());
        CHECK(parse_response(big->body, "A", small).error() == control::errc::message_too_large);
        small = {};
        small.max_arguments = 3;
        auto many = build_response(rc_type, "A", {{"a", ""}, {"b", ""}, {"c", ""}, {"d", ""}});
        REQUIRE(many.ok());
        CHECK(parse_response(many->body, "A", small).error() == control::errc::message_too_large);
        // Repeated names are kept as sent: the caller (or check_arguments) decides.
        auto twice = build_response(rc_type, "A", {{"a", "1"}, {"a", "2"}});
        CHECK(parse_response(twice->body, "A")->size() == 2);
        // Trailing NULs and whitespace of embedded servers are tolerated.
        auto padded = build_response(rc_type, "A", {{"a", "1"}})->body + std::string(4, '\0');
        CHECK(parse_response(padded, "A").ok());
        // A lower-case response element (seen in the wild) is accepted.
        CHECK(parse_response("<s:Envelope xmlns:s=\"x\"><s:Body><u:getvolumeResponse xmlns:u=\"y\">"
                             "<V>1</V></u:getvolumeResponse></s:Body></s:Envelope>",
                             "GetVolume")
                  .ok());
    }
}
