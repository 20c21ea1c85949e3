#include "uvgena/core/error.hpp"

#include <uv.h>

namespace uvgena {
namespace {

class UvgenaCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "uvgena"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
            case errc::cancelled:
                return "operation cancelled";
            case errc::timed_out:
                return "operation timed out";
            case errc::closed:
                return "closed";
            case errc::loop_drained:
                return "event loop drained while the task was suspended";
            case errc::invalid_argument:
                return "invalid argument";
            case errc::wrong_thread:
                return "blocking call on the loop's own thread";
            case errc::queue_full:
                return "queue full";
            case errc::not_running:
                return "not running";
        }
        return "unknown uvgena error " + std::to_string(value);
    }
};

class UvCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "libuv"; }
    std::string message(int value) const override {
        return std::string(uv_err_name(value)) + ": " + uv_strerror(value);
    }
    std::error_condition default_error_condition(int value) const noexcept override {
        // libuv codes on Unix are negated errno values: expose them as generic conditions
        // so that `code == std::errc::connection_refused` works.
        if (value < 0 && value > -4096) return {-value, std::generic_category()};
        return {value, *this};
    }
};

}  // namespace

const std::error_category& uvgena_category() noexcept {
    static const UvgenaCategory category;
    return category;
}

const std::error_category& uv_category() noexcept {
    static const UvCategory category;
    return category;
}

std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), uvgena_category()};
}

std::error_code uv_error(int status) noexcept {
    return {status, uv_category()};
}

std::string context_of(const std::system_error& e) {
    std::string what = e.what();
    std::string message = e.code().message();
    if (what == message) return {};
    std::string suffix = ": " + message;
    if (what.size() >= suffix.size() &&
        what.compare(what.size() - suffix.size(), suffix.size(), suffix) == 0) {
        what.resize(what.size() - suffix.size());
    }
    return what;
}

void throw_error(std::error_code code, const std::string& context) {
    if (context.empty()) throw Error(code);
    throw Error(code, context);
}

bool is_cancelled(std::error_code code) noexcept {
    return code == make_error_code(errc::cancelled) ||
           (code.category() == uv_category() && code.value() == UV_ECANCELED);
}

bool is_timeout(std::error_code code) noexcept {
    return code == make_error_code(errc::timed_out) ||
           (code.category() == uv_category() && code.value() == UV_ETIMEDOUT);
}

}  // namespace uvgena
