// Result<T>: a value or an error_code, for the inner layers (C++20 has no std::expected).
#pragma once

#include <cassert>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "uvgena/core/error.hpp"
#include "uvgena/core/export.hpp"

namespace uvgena {

/// The failure half of a Result, made with `fail(code)`; converts to any Result<T>.
struct UVGENA_API Failure {
    std::error_code code;
};

/// Wraps an error code so that it can be returned as any `Result<T>`.
inline Failure fail(std::error_code code) noexcept {
    return Failure{code};
}

/// Wraps a uvgena condition so that it can be returned as any `Result<T>`.
inline Failure fail(errc e) noexcept {
    return Failure{make_error_code(e)};
}

/// Either a T or a std::error_code. `value()` throws `uvgena::Error` on failure.
template <typename T>
class [[nodiscard]] Result {
  public:
    /// A successful result holding `value`.
    template <typename U = T,
              typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                          !std::is_same_v<std::decay_t<U>, Failure> &&
                                          !std::is_same_v<std::decay_t<U>, Result>>>
    Result(U&& value) : state_(std::in_place_index<0>, std::forward<U>(value)) {}
    /// A failed result.
    Result(Failure f) : state_(std::in_place_index<1>, f.code) { assert(f.code); }

    /// True on success.
    bool ok() const noexcept { return state_.index() == 0; }
    /// True on success.
    explicit operator bool() const noexcept { return ok(); }

    /// The error; an empty error_code on success.
    std::error_code error() const noexcept {
        return ok() ? std::error_code{} : std::get<1>(state_);
    }

    /// The value; throws `Error` if this is a failure.
    T& value() & {
        check();
        return std::get<0>(state_);
    }
    /// The value; throws `Error` if this is a failure.
    const T& value() const& {
        check();
        return std::get<0>(state_);
    }
    /// The value, moved out; throws `Error` if this is a failure.
    T&& value() && {
        check();
        return std::move(std::get<0>(state_));
    }
    /// The value or `fallback` on failure.
    template <typename U>
    T value_or(U&& fallback) const& {
        return ok() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(fallback));
    }

    /// Unchecked access (asserts success).
    T& operator*() & noexcept { return std::get<0>(state_); }
    /// Unchecked access (asserts success).
    const T& operator*() const& noexcept { return std::get<0>(state_); }
    /// Unchecked member access.
    T* operator->() noexcept { return &std::get<0>(state_); }
    /// Unchecked member access.
    const T* operator->() const noexcept { return &std::get<0>(state_); }

  private:
    void check() const {
        if (!ok()) throw_error(std::get<1>(state_));
    }
    std::variant<T, std::error_code> state_;
};

/// Result of an operation that yields nothing but may fail.
template <>
class [[nodiscard]] Result<void> {
  public:
    /// Success.
    Result() noexcept = default;
    /// Failure.
    Result(Failure f) noexcept : code_(f.code) { assert(f.code); }

    /// True on success.
    bool ok() const noexcept { return !code_; }
    /// True on success.
    explicit operator bool() const noexcept { return ok(); }
    /// The error; empty on success.
    std::error_code error() const noexcept { return code_; }
    /// Throws `Error` if this is a failure.
    void value() const {
        if (code_) throw_error(code_);
    }

  private:
    std::error_code code_;
};

}  // namespace uvgena
