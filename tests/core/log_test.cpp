#include "uvgena/core/log.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

TEST_SUITE("core.log") {
    TEST_CASE("messages at or above the level reach a custom sink, formatted") {
        std::vector<std::pair<uvgena::LogLevel, std::string>> seen;
        uvgena::set_log_sink([&](uvgena::LogLevel level, std::string_view message) {
            seen.emplace_back(level, std::string(message));
        });
        uvgena::set_log_level(uvgena::LogLevel::info);
        uvgena::log(uvgena::LogLevel::debug, "hidden ", 1);
        uvgena::log(uvgena::LogLevel::info, "port ", 1400, " chosen");
        uvgena::log(uvgena::LogLevel::error, "boom");
        uvgena::set_log_level(uvgena::LogLevel::warning);
        uvgena::set_log_sink(nullptr);

        REQUIRE(seen.size() == 2);
        CHECK(seen[0].first == uvgena::LogLevel::info);
        CHECK(seen[0].second == "port 1400 chosen");
        CHECK(seen[1].first == uvgena::LogLevel::error);
        CHECK(uvgena::log_level() == uvgena::LogLevel::warning);
        CHECK(uvgena::to_string(uvgena::LogLevel::warning) == "warning");
    }
}
