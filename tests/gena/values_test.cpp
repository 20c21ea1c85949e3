#include "uvgena/gena/values.hpp"

#include <doctest/doctest.h>

#include <cstdint>

#include "uvgena/core/error.hpp"

using namespace uvgena::gena;

TEST_SUITE("gena.values") {
    TEST_CASE("integers are read with sign and whitespace, and range-checked") {
        CHECK(to_integer("42").value() == 42);
        CHECK(to_integer(" -7 ").value() == -7);
        CHECK(to_integer("+5").value() == 5);
        CHECK(to_integer("100", 0, 100).value() == 100);
        CHECK(to_integer("101", 0, 100).error() == errc::value_out_of_range);
        CHECK(to_integer("99999999999999999999").error() == errc::value_out_of_range);
        CHECK(to_integer("").error() == errc::value_not_integer);
        CHECK(to_integer("12a").error() == errc::value_not_integer);
        CHECK(to_integer("1.5").error() == errc::value_not_integer);
        CHECK(to_integer_as<std::uint16_t>("65535").value() == 65535);
        CHECK(to_integer_as<std::uint16_t>("65536").error() == errc::value_out_of_range);
        CHECK(to_integer_as<std::uint8_t>("-1").error() == errc::value_out_of_range);
        CHECK(to_integer_as<std::uint64_t>("9223372036854775807").value() ==
              9223372036854775807ull);
        CHECK(to_integer_as<std::int32_t>("-2147483648").value() == INT32_MIN);
    }

    TEST_CASE("a failed Result throws a clear uvgena::Error on value()") {
        try {
            (void)to_integer("x").value();
            FAIL("no throw");
        } catch (const uvgena::Error& e) {
            CHECK(e.code() == errc::value_not_integer);
            CHECK(std::string(e.what()).find("integer") != std::string::npos);
        }
    }

    TEST_CASE("booleans accept 0/1, true/false, yes/no in any case") {
        for (const char* t : {"1", "true", "TRUE", "True", "yes", "Yes", " 1 "}) {
            INFO(t);
            CHECK(to_boolean(t).value());
        }
        for (const char* f : {"0", "false", "FALSE", "no", "NO"}) {
            INFO(f);
            CHECK_FALSE(to_boolean(f).value());
        }
        for (const char* bad : {"", "2", "on", "y", "truee"}) {
            INFO(bad);
            CHECK(to_boolean(bad).error() == errc::value_not_boolean);
        }
    }

    TEST_CASE("durations H:MM:SS with optional fraction become milliseconds") {
        using std::chrono::milliseconds;
        CHECK(to_duration("0:05:18").value() == milliseconds(318000));
        CHECK(to_duration("1:00:00.5").value() == milliseconds(3600500));
        CHECK(to_duration("10:00:01.250").value() == milliseconds(36001250));
        CHECK(to_duration("0:60:00").error() == errc::value_out_of_range);
        CHECK_FALSE(to_duration("NOT_IMPLEMENTED").ok());
        CHECK_FALSE(to_duration("").ok());
        CHECK_FALSE(to_duration("1:2").ok());
        CHECK_FALSE(to_duration("0:00:01.").ok());
        CHECK_FALSE(to_duration("0:00:01x").ok());
    }
}
