#include "support/test_loop.hpp"

#include <doctest/doctest.h>

TEST_SUITE("support.test_loop") {
    TEST_CASE("a loop whose handles were closed closes clean") {
        uvtest::TestLoop loop;
        auto* timer = new uv_timer_t;
        uv_timer_init(loop, timer);
        uv_close(reinterpret_cast<uv_handle_t*>(timer),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        CHECK(loop.close() == 0);
    }

    TEST_CASE("a handle left open is detected") {
        uvtest::TestLoop loop;
        uv_timer_t timer;
        uv_timer_init(loop, &timer);
        CHECK(loop.close() == UV_EBUSY);
    }
}
