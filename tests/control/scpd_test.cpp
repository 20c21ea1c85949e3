// SCPD parsing (sans-IO) on gmediarender's real descriptions and on malformed, oversized and
// odd ones; the checks of values and calls against a description.
#include "uvgena/control/scpd.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/test_loop.hpp"
#include "uvgena/control/error.hpp"
#include "uvgena/gena/error.hpp"
#include "uvgena/gena/xml_scanner.hpp"

using namespace uvgena;
using namespace uvgena::control;

namespace {

std::string read_data(const std::string& name) {
    std::string dir = uvtest::env_dir("UVGENA_TEST_DATA");
    REQUIRE_MESSAGE(!dir.empty(), "UVGENA_TEST_DATA is not set");
    std::ifstream in(dir + "/gmediarender/control/" + name, std::ios::binary);
    REQUIRE_MESSAGE(in, "cannot read " << name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

Scpd parse_ok(std::string_view xml, const ScpdLimits& limits = {}) {
    auto r = parse_scpd(xml, limits);
    REQUIRE_MESSAGE(r.ok(), r.error().message());
    return std::move(*r);
}

std::string scpd_with(std::string_view actions, std::string_view variables) {
    return "<?xml version=\"1.0\"?><scpd xmlns=\"urn:schemas-upnp-org:service-1-0\">"
           "<specVersion><major>1</major><minor>1</minor></specVersion><actionList>" +
           std::string(actions) + "</actionList><serviceStateTable>" + std::string(variables) +
           "</serviceStateTable></scpd>";
}

std::string variable(std::string_view name, std::string_view type, std::string_view extra = {}) {
    return "<stateVariable sendEvents=\"no\"><name>" + std::string(name) + "</name><dataType>" +
           std::string(type) + "</dataType>" + std::string(extra) + "</stateVariable>";
}

// A one-variable description for value checks.
StateVariableInfo typed(std::string_view type, std::string_view extra = {}) {
    Scpd s = parse_ok(scpd_with({}, variable("V", type, extra)));
    REQUIRE(s.state_variables.size() == 1);
    return s.state_variables[0];
}

std::error_code value_error(const StateVariableInfo& v, std::string_view value) {
    return check_value(v, value).error();
}

}  // namespace

TEST_SUITE("control.scpd") {
    TEST_CASE("gmediarender's RenderingControl description reads completely") {
        Scpd rc = parse_ok(read_data("rendercontrolSCPD.xml"));
        CHECK(rc.spec_major == 1);
        CHECK(rc.spec_minor == 0);
        const ActionInfo* set_volume = rc.action("SetVolume");
        REQUIRE(set_volume != nullptr);
        REQUIRE(set_volume->arguments.size() == 3);
        CHECK(set_volume->arguments[0].name == "InstanceID");
        CHECK(set_volume->arguments[1].name == "Channel");
        CHECK(set_volume->arguments[2].name == "DesiredVolume");
        CHECK(set_volume->arguments[2].direction == Direction::in);
        CHECK(set_volume->arguments[2].related_state_variable == "Volume");
        const ActionInfo* get_volume = rc.action("GetVolume");
        REQUIRE(get_volume != nullptr);
        REQUIRE(get_volume->argument("CurrentVolume") != nullptr);
        CHECK(get_volume->argument("CurrentVolume")->direction == Direction::out);

        const StateVariableInfo* volume = rc.state_variable("Volume");
        REQUIRE(volume != nullptr);
        CHECK(volume->data_type == "ui2");
        CHECK_FALSE(volume->send_events);
        CHECK_FALSE(volume->multicast);
        REQUIRE(volume->allowed_range);
        CHECK(volume->allowed_range->minimum == "0");
        CHECK(volume->allowed_range->maximum == "100");
        CHECK(volume->allowed_range->step == "1");
        const StateVariableInfo* channel = rc.state_variable("A_ARG_TYPE_Channel");
        REQUIRE(channel != nullptr);
        CHECK(channel->data_type == "string");
        CHECK(std::find(channel->allowed_values.begin(), channel->allowed_values.end(), "Master") !=
              channel->allowed_values.end());
        const StateVariableInfo* last_change = rc.state_variable("LastChange");
        REQUIRE(last_change != nullptr);
        CHECK(last_change->send_events);
        // Every argument names a variable of the table.
        for (const auto& action : rc.actions) {
            for (const auto& argument : action.arguments) {
                CHECK_MESSAGE(rc.state_variable(argument.related_state_variable) != nullptr,
                              action.name << "/" << argument.name);
            }
        }
    }

    TEST_CASE(
        "gmediarender's AVTransport and ConnectionManager descriptions read, both readers alike") {
        for (bool scanner : {true, false}) {
            gena::set_xml_scanner(scanner);
            Scpd avt = parse_ok(read_data("rendertransportSCPD.xml"));
            Scpd cm = parse_ok(read_data("renderconnmgrSCPD.xml"));
            gena::set_xml_scanner(true);
            CAPTURE(scanner);
            REQUIRE(avt.action("SetAVTransportURI") != nullptr);
            CHECK(avt.action("SetAVTransportURI")->arguments.size() == 3);
            const auto* state = avt.state_variable("TransportState");
            REQUIRE(state != nullptr);
            CHECK(state->allowed_values.size() >= 3);
            CHECK(avt.actions.size() >= 10);
            REQUIRE(cm.action("GetProtocolInfo") != nullptr);
            CHECK(cm.action("GetProtocolInfo")->arguments.size() == 2);
        }
    }

    TEST_CASE("attributes, defaults, retval and prefixed elements are read") {
        std::string xml =
            "<s:scpd xmlns:s=\"urn:schemas-upnp-org:service-1-0\">"
            "<s:actionList><s:action><s:name> Get </s:name><s:argumentList><s:argument>"
            "<s:name>Out</s:name><s:direction>out</s:direction><s:retval/>"
            "<s:relatedStateVariable>V</s:relatedStateVariable></s:argument></s:argumentList>"
            "</s:action></s:actionList><s:serviceStateTable>"
            "<s:stateVariable sendEvents=\"yes\" multicast=\"yes\"><s:name>V</s:name>"
            "<s:dataType>i4</s:dataType><s:defaultValue>-3</s:defaultValue>"
            "<s:vendorThing>ignored</s:vendorThing></s:stateVariable>"
            "<s:stateVariable><s:name>W</s:name><s:dataType>string</s:dataType>"
            "<s:defaultValue></s:defaultValue></s:stateVariable>"
            "</s:serviceStateTable></s:scpd>";
        Scpd s = parse_ok(xml);
        CHECK(s.spec_major == 1);  // no specVersion: 1.0
        REQUIRE(s.action("Get") != nullptr);
        CHECK(s.action("Get")->arguments[0].retval);
        const auto* v = s.state_variable("V");
        REQUIRE(v != nullptr);
        CHECK(v->send_events);
        CHECK(v->multicast);
        CHECK(v->default_value == std::optional<std::string>("-3"));
        const auto* w = s.state_variable("W");
        REQUIRE(w != nullptr);
        CHECK(w->send_events);  // absent: yes, as UDA says
        CHECK(w->default_value == std::optional<std::string>(""));
        CHECK_FALSE(s.state_variable("v"));  // names are case-sensitive
    }

    TEST_CASE("malformed descriptions are clear errors") {
        CHECK(parse_scpd("").error() == gena::errc::xml_malformed);
        CHECK(parse_scpd("<scpd><actionList>").error() == gena::errc::xml_malformed);
        CHECK(parse_scpd("<root/>").error() == control::errc::bad_scpd);
        CHECK(parse_scpd(scpd_with("<action><argumentList/></action>", {})).error() ==
              control::errc::bad_scpd);  // no name
        CHECK(parse_scpd(scpd_with("<action><name>A</name><argumentList><argument><name>X</name>"
                                   "<direction>sideways</direction></argument></argumentList>"
                                   "</action>",
                                   {}))
                  .error() == control::errc::bad_scpd);
        CHECK(parse_scpd(scpd_with({}, "<stateVariable><dataType>ui4</dataType></stateVariable>"))
                  .error() == control::errc::bad_scpd);
        std::string bomb =
            "<?xml version=\"1.0\"?><!DOCTYPE scpd [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b "
            "\"&a;&a;&a;&a;&a;&a;&a;&a;\">]><scpd><actionList><action><name>&b;</name></action>"
            "</actionList></scpd>";
        CHECK(parse_scpd(bomb).error() == gena::errc::xml_doctype_refused);
        std::string deep = std::string(5000, '<') + "scpd";
        CHECK_FALSE(parse_scpd(deep).ok());
        std::string nested;
        for (int i = 0; i < 3000; ++i) nested += "<a>";
        CHECK_FALSE(parse_scpd("<scpd>" + nested).ok());
        // Binary garbage and NULs never crash.
        const char bytes[] = "<scpd>\0\xff\xfe<action>\x01</scpd>";
        std::string garbage(bytes, sizeof bytes - 1);
        CHECK_FALSE(parse_scpd(garbage).ok());
    }

    TEST_CASE("the bounds refuse oversized descriptions") {
        std::string real = read_data("rendercontrolSCPD.xml");
        // Each bound just below what gmediarender's RenderingControl needs.
        std::vector<std::pair<const char*, std::size_t ScpdLimits::*>> bounds = {
            {"max_actions", &ScpdLimits::max_actions},
            {"max_state_variables", &ScpdLimits::max_state_variables},
            {"max_arguments", &ScpdLimits::max_arguments},
            {"max_allowed_values", &ScpdLimits::max_allowed_values},
            {"max_name_bytes", &ScpdLimits::max_name_bytes},
        };
        std::vector<std::size_t> too_small = {5, 5, 2, 1, 8};  // SetVolume has 3 arguments
        for (std::size_t i = 0; i < bounds.size(); ++i) {
            CAPTURE(bounds[i].first);
            ScpdLimits limits;
            limits.*bounds[i].second = too_small[i];
            CHECK(parse_scpd(real, limits).error() == control::errc::scpd_too_large);
        }
        ScpdLimits limits;
        limits.max_bytes = real.size() - 1;
        CHECK(parse_scpd(real, limits).error() == control::errc::scpd_too_large);
        limits.max_bytes = real.size();
        CHECK(parse_scpd(real, limits).ok());
        // Beyond the XML reader's own element bound, whatever the SCPD bounds say.
        std::string many;
        for (int i = 0; i < 20000; ++i) many += "<x/>";
        CHECK(parse_scpd(scpd_with({}, many)).error() == gena::errc::xml_too_many_elements);
        CHECK(parse_scpd(read_data("rendertransportSCPD.xml")).ok());
    }

    TEST_CASE("values are checked against their dataType") {
        auto ui1 = typed("ui1");
        CHECK(check_value(ui1, "0").ok());
        CHECK(check_value(ui1, "255").ok());
        CHECK(value_error(ui1, "256") == control::errc::bad_value);
        CHECK(value_error(ui1, "-1") == control::errc::bad_value);
        CHECK(value_error(ui1, "") == control::errc::bad_value);
        CHECK(value_error(ui1, " 1") == control::errc::bad_value);
        CHECK(value_error(ui1, "1.0") == control::errc::bad_value);
        CHECK(check_value(typed("ui2"), "65535").ok());
        CHECK_FALSE(check_value(typed("ui2"), "65536").ok());
        CHECK(check_value(typed("ui4"), "4294967295").ok());
        CHECK_FALSE(check_value(typed("ui4"), "4294967296").ok());
        CHECK(check_value(typed("ui8"), "18446744073709551615").ok());
        CHECK_FALSE(check_value(typed("ui8"), "18446744073709551616").ok());
        CHECK(check_value(typed("i1"), "-128").ok());
        CHECK_FALSE(check_value(typed("i1"), "128").ok());
        CHECK(check_value(typed("i2"), "-32768").ok());
        CHECK_FALSE(check_value(typed("i2"), "32768").ok());
        CHECK(check_value(typed("i4"), "-2147483648").ok());
        CHECK(check_value(typed("i4"), "+7").ok());
        CHECK_FALSE(check_value(typed("i4"), "2147483648").ok());
        CHECK(check_value(typed("int"), "-9000000000").ok());
        // The 64-bit ends, exactly (not through a floating type: valgrind's long double is a
        // double, in which 2^64 - 1 and 2^64 are the same number).
        CHECK(check_value(typed("i8"), "-9223372036854775808").ok());
        CHECK_FALSE(check_value(typed("i8"), "-9223372036854775809").ok());
        CHECK(check_value(typed("i8"), "9223372036854775807").ok());
        CHECK_FALSE(check_value(typed("i8"), "9223372036854775808").ok());
        CHECK_FALSE(check_value(typed("ui8"), "18446744073709551617").ok());
        CHECK_FALSE(check_value(typed("int"), "x").ok());
        for (const char* real : {"r4", "r8", "number", "float", "fixed.14.4"}) {
            CAPTURE(real);
            CHECK(check_value(typed(real), "-1.5e3").ok());
            CHECK(check_value(typed(real), "0.25").ok());
            CHECK_FALSE(check_value(typed(real), "nan").ok());
            CHECK_FALSE(check_value(typed(real), "1,5").ok());
        }
        CHECK_FALSE(check_value(typed("r4"), "1e39").ok());
        CHECK(check_value(typed("r8"), "1e39").ok());
        auto boolean = typed("boolean");
        for (const char* ok : {"0", "1", "true", "false", "yes", "no", "True"}) {
            CHECK(check_value(boolean, ok).ok());
        }
        CHECK(value_error(boolean, "2") == control::errc::bad_value);
        CHECK(check_value(typed("char"), "x").ok());
        CHECK(check_value(typed("char"), "\xc3\xa9").ok());  // é
        CHECK_FALSE(check_value(typed("char"), "xy").ok());
        CHECK(check_value(typed("uri"), "http://10.0.0.1/a.mp3").ok());
        CHECK(check_value(typed("uri"), "").ok());
        CHECK_FALSE(check_value(typed("uri"), "http://x/a b").ok());
        CHECK(check_value(typed("bin.hex"), "00ff").ok());
        CHECK_FALSE(check_value(typed("bin.hex"), "0f0").ok());
        CHECK(check_value(typed("bin.base64"), "aGVsbG8=").ok());
        CHECK_FALSE(check_value(typed("bin.base64"), "a*b").ok());
        CHECK(check_value(typed("dateTime"), "2026-12-06T01:02:03").ok());
        CHECK_FALSE(check_value(typed("date"), "yesterday").ok());
        CHECK(check_value(typed("string"), "<DIDL-Lite>&amp;</DIDL-Lite>").ok());
        CHECK(check_value(typed("vendor:thing"), "anything").ok());
    }

    TEST_CASE("allowedValueRange and allowedValueList bound values") {
        auto volume = typed("ui2",
                            "<allowedValueRange><minimum>0</minimum><maximum>100</maximum>"
                            "<step>1</step></allowedValueRange>");
        CHECK(check_value(volume, "0").ok());
        CHECK(check_value(volume, "100").ok());
        CHECK(value_error(volume, "101") == control::errc::value_out_of_range);
        CHECK(value_error(volume, "200") == upnp_condition(601));
        auto stepped = typed("i4",
                             "<allowedValueRange><minimum>-10</minimum><maximum>10</maximum>"
                             "<step>5</step></allowedValueRange>");
        CHECK(check_value(stepped, "-5").ok());
        CHECK(value_error(stepped, "-4") == control::errc::value_out_of_range);
        auto real = typed("r8",
                          "<allowedValueRange><minimum>0</minimum><maximum>1</maximum>"
                          "<step>0.1</step></allowedValueRange>");
        CHECK(check_value(real, "0.3").ok());
        CHECK(value_error(real, "0.35") == control::errc::value_out_of_range);
        CHECK(value_error(real, "1.1") == control::errc::value_out_of_range);
        // A bound that does not parse bounds nothing (the document's fault, not the call's).
        auto sloppy = typed("ui4",
                            "<allowedValueRange><minimum>none</minimum><maximum>9"
                            "</maximum></allowedValueRange>");
        CHECK(check_value(sloppy, "0").ok());
        CHECK_FALSE(check_value(sloppy, "10").ok());
        auto channel = typed("string",
                             "<allowedValueList><allowedValue>Master</allowedValue>"
                             "<allowedValue>LF</allowedValue></allowedValueList>");
        CHECK(check_value(channel, "Master").ok());
        CHECK(value_error(channel, "master") == control::errc::value_not_allowed);
        CHECK(value_error(channel, "") == upnp_condition(600));
    }

    TEST_CASE("calls are checked against the description and put in its order") {
        Scpd rc = parse_ok(read_data("rendercontrolSCPD.xml"));
        std::string bad;
        auto ordered = check_arguments(
            rc, "SetVolume", {{"DesiredVolume", "30"}, {"InstanceID", "0"}, {"Channel", "Master"}});
        REQUIRE(ordered.ok());
        CHECK(*ordered ==
              Arguments{{"InstanceID", "0"}, {"Channel", "Master"}, {"DesiredVolume", "30"}});
        CHECK(check_arguments(rc, "SetVolumes", {}, &bad).error() == control::errc::unknown_action);
        CHECK(bad == "SetVolumes");
        CHECK(check_arguments(rc, "SetVolume",
                              {{"InstanceID", "0"}, {"Channel", "Master"}, {"Volume", "30"}}, &bad)
                  .error() == control::errc::unknown_argument);
        CHECK(bad == "Volume");
        CHECK(check_arguments(rc, "SetVolume", {{"InstanceID", "0"}, {"Channel", "Master"}}, &bad)
                  .error() == control::errc::missing_argument);
        CHECK(bad == "DesiredVolume");
        CHECK(check_arguments(rc, "GetVolume",
                              {{"InstanceID", "0"}, {"Channel", "Master"}, {"CurrentVolume", "1"}},
                              &bad)
                  .error() == control::errc::not_an_input);
        CHECK(check_arguments(rc, "GetVolume",
                              {{"InstanceID", "0"}, {"InstanceID", "0"}, {"Channel", "Master"}})
                  .error() == control::errc::duplicate_argument);
        CHECK(check_arguments(
                  rc, "SetVolume",
                  {{"InstanceID", "0"}, {"Channel", "Master"}, {"DesiredVolume", "200"}}, &bad)
                  .error() == control::errc::value_out_of_range);
        CHECK(bad == "DesiredVolume");
        CHECK(check_arguments(rc, "SetVolume",
                              {{"InstanceID", "x"}, {"Channel", "Master"}, {"DesiredVolume", "2"}})
                  .error() == upnp_condition(600));
        CHECK(check_arguments(rc, "SetVolume",
                              {{"InstanceID", "0"}, {"Channel", "Nowhere"}, {"DesiredVolume", "2"}})
                  .error() == control::errc::value_not_allowed);
        // The conditions that a device would answer with these codes.
        CHECK(make_error_code(control::errc::unknown_argument) == upnp_condition(402));
        CHECK(make_error_code(control::errc::unknown_action) == upnp_condition(401));
        CHECK(upnp_error(402) == upnp_condition(402));
        CHECK(upnp_error(402) != upnp_condition(401));
    }
}
