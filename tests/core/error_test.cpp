#include "uvgena/core/error.hpp"
#include "uvgena/core/result.hpp"

#include <doctest/doctest.h>
#include <uv.h>

#include <string>
#include <system_error>

TEST_SUITE("core.error") {
    TEST_CASE("libuv codes keep their value and compare to generic conditions") {
        auto code = uvgena::uv_error(UV_ECONNREFUSED);
        CHECK(code.value() == UV_ECONNREFUSED);
        CHECK(code.category().name() == std::string("libuv"));
        CHECK(code == std::errc::connection_refused);
        CHECK(code.message().find("ECONNREFUSED") != std::string::npos);
    }

    TEST_CASE("cancellation and timeout are recognised in both categories") {
        CHECK(uvgena::is_cancelled(uvgena::errc::cancelled));
        CHECK(uvgena::is_cancelled(uvgena::uv_error(UV_ECANCELED)));
        CHECK_FALSE(uvgena::is_cancelled(uvgena::uv_error(UV_EOF)));
        CHECK(uvgena::is_timeout(uvgena::errc::timed_out));
        CHECK(uvgena::is_timeout(uvgena::uv_error(UV_ETIMEDOUT)));
    }

    TEST_CASE("Error is a system_error carrying code and context") {
        try {
            uvgena::throw_error(uvgena::uv_error(UV_ECONNRESET), "read from 127.0.0.1:1400");
            FAIL("throw_error returned");
        } catch (const std::system_error& e) {
            CHECK(e.code() == uvgena::uv_error(UV_ECONNRESET));
            CHECK(std::string(e.what()).find("read from 127.0.0.1:1400") != std::string::npos);
        }
    }

    TEST_CASE("Result holds a value or an error") {
        uvgena::Result<int> good = 42;
        CHECK(good.ok());
        CHECK(*good == 42);
        CHECK(good.value_or(7) == 42);

        uvgena::Result<int> bad = uvgena::fail(uvgena::errc::closed);
        CHECK_FALSE(bad.ok());
        CHECK(bad.error() == uvgena::errc::closed);
        CHECK(bad.value_or(7) == 7);
        CHECK_THROWS_AS(bad.value(), uvgena::Error);

        uvgena::Result<std::string> moved = std::string("abc");
        std::string s = std::move(moved).value();
        CHECK(s == "abc");

        uvgena::Result<void> ok_void;
        CHECK(ok_void.ok());
        uvgena::Result<void> bad_void = uvgena::fail(uvgena::uv_error(UV_EPIPE));
        CHECK_THROWS_AS(bad_void.value(), uvgena::Error);
    }

    TEST_CASE("context_of gives what() without the message system_error appends") {
        auto code = uvgena::make_error_code(uvgena::errc::closed);
        CHECK(uvgena::context_of(uvgena::Error(code, "read from 10.0.0.1:80")) ==
              "read from 10.0.0.1:80");
        // An error made without context has none (not the message, which would repeat).
        CHECK(uvgena::context_of(uvgena::Error(code)).empty());
        // A context that reads like the message is still a context.
        CHECK(uvgena::context_of(uvgena::Error(code, "closed")) == "closed");
    }
}
